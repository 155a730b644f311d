"""Model memory of each process: device part, server part, and the whole model, at several splits and ratios.

Every measurement runs in a fresh Python subprocess, started by a parent that
never imports torch: Linux carries a parent's RSS at fork into the child's
``ru_maxrss``, so a heavy parent would mask the child's own peak. The child imports torch
and splitbed, loads the tokenizer and tokenises its input, and (unless ``--cold``) warms the torch runtime
by running the same code paths on the tiny random model (none of that is
model memory), then resets its peak RSS to the current RSS (``/proc/self/clear_refs``),
records that RSS as the baseline, loads the part, runs one
inference (batch 1, seq 128) and reports ``ru_maxrss`` (peak RSS) minus that
baseline. "whole" is the unsplit model through the same loader (device part at
L = n plus the server's pooling); "whole-hf" is transformers' ``BertModel``
loaded by ``load_full_model``, for reference.

Usage: ``python bench/memory.py [--quick] [--models minilm,bert-base]``
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "results"
SEQ = 128
TARGETS = {("bert-base", 4): 0.40, ("minilm", 2): 0.65}  # device part at rho 0.5, share of whole

logger = logging.getLogger(__name__)


def _rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _reset_peak() -> bool:
    """Reset this process's peak RSS to its current RSS (Linux >= 4.0); ru_maxrss follows.

    Without it a warm-up or tokenizer transient larger than a small part would
    hide that part's peak altogether.
    """
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        return False
    return True


def _peak() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def _vmhwm_bytes() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def _warm_runtime(spec: dict[str, Any], batch: dict[str, Any]) -> None:
    """Run the same code paths once on the tiny random model and free it.

    The first call of a kernel faults in its code pages (libtorch is large) and
    BLAS/oneDNN set up workspaces; that is runtime, not model, memory, and as a
    fixed cost it would otherwise inflate small parts' share of the whole.
    """
    import gc

    import torch

    from splitbed.model import load_device_part, load_full_model, load_server_part, resolve_model

    tiny = resolve_model("bert-tiny")
    rho = spec["rho"] if spec["rho"] < 1.0 else 0.5
    with torch.inference_mode():
        for r in (1.0, rho):
            dev = load_device_part(tiny, 1, rho=r, method=spec["method"])
            srv = load_server_part(tiny, 1, rho=r, method=spec["method"])
            srv(dev(**batch), batch["attention_mask"])
            del dev, srv
        if spec["kind"] == "whole-hf":
            load_full_model(tiny)(**batch)
    gc.collect()


def child(spec: dict[str, Any]) -> dict[str, Any]:
    """Measure one configuration in this (fresh) process."""
    import torch

    from splitbed.model import load_device_part, load_full_model, load_server_part, load_tokenizer, resolve_model

    torch.set_num_threads(2)
    src = resolve_model(spec["model"])
    tok = load_tokenizer(src)
    from splitbed.model import tokenize

    batch = tokenize(tok, ["memory benchmark " * 100], src.max_seq_len, pad_to=SEQ)
    hidden_in = torch.randn(1, SEQ, src.hidden_size)
    if spec["warm"]:
        _warm_runtime(spec, batch)
    peak_reset = _reset_peak()
    base = _rss_bytes()
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    kind, split, rho, method = spec["kind"], spec["split"], spec["rho"], spec["method"]
    params = 0
    with torch.inference_mode():
        if kind == "device":
            part: Any = load_device_part(src, split, rho=rho, method=method)
            loaded = _peak()
            part(**batch)
            params = sum(p.numel() for p in part.parameters())
        elif kind == "server":
            part = load_server_part(src, split, rho=rho, method=method)
            loaded = _peak()
            part(hidden_in, batch["attention_mask"])
            params = sum(p.numel() for p in part.parameters())
        elif kind == "whole":
            dev = load_device_part(src, src.n_layers, rho=rho, method=method)
            srv = load_server_part(src, src.n_layers)
            loaded = _peak()
            srv(dev(**batch), batch["attention_mask"])
            params = sum(p.numel() for p in dev.parameters())
        elif kind == "whole-hf":
            full = load_full_model(src)
            loaded = _peak()
            full(**batch)
            params = sum(p.numel() for p in full.parameters())
        else:
            raise ValueError(kind)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    if peak <= peak_before:
        # Linux carries the parent's RSS at fork into a child's ru_maxrss; a peak set before
        # loading would hide the model. The parent stays lean (no torch) so this should not happen.
        raise RuntimeError(f"peak RSS {peak} was already reached before loading ({peak_before}); measurement void")
    return {
        **spec,
        "load_mb": round((loaded - base) / 2**20, 1),
        "model_mb": round((peak - base) / 2**20, 1),
        "vmhwm_model_mb": round((_vmhwm_bytes() - base) / 2**20, 1),
        "resident_after_mb": round((_rss_bytes() - base) / 2**20, 1),
        "param_mb": round(params * 4 / 2**20, 1),
        "params": params,
        "peak_reset": peak_reset,
        "source": "measured:ru_maxrss-minus-baseline-rss",
    }


def plan(models: list[str], quick: bool, warm: bool) -> list[dict[str, Any]]:
    specs: list[dict[str, Any]] = []
    for model in models:
        n = 6 if model == "minilm" else 12
        splits = [2] if model == "minilm" else [4]
        if not quick:
            splits = [2, 4] if model == "minilm" else [4, 8]
        rhos = [1.0, 0.5] if quick else [1.0, 0.75, 0.5, 0.3]
        base = {"model": model, "method": "structured-magnitude", "warm": warm}
        specs.append({**base, "kind": "whole", "split": n, "rho": 1.0})
        if not quick:
            specs.append({**base, "kind": "whole-hf", "split": n, "rho": 1.0})
        for split in splits:
            for rho in rhos:
                specs.append({**base, "kind": "device", "split": split, "rho": rho})
                specs.append({**base, "kind": "server", "split": split, "rho": rho})
        if not quick:
            specs.append({**base, "kind": "device", "split": splits[0], "rho": 0.5, "method": "unstructured-magnitude"})
    return specs


def run_child(spec: dict[str, Any]) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, __file__, "--child", json.dumps(spec)],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"child {spec} failed:\n{proc.stderr[-2000:]}")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer splits and ratios")
    parser.add_argument("--models", default="minilm,bert-base")
    parser.add_argument("--cold", action="store_true", help="do not warm the torch runtime before the baseline")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--prepare", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return
    if args.prepare:
        from splitbed.model import resolve_model

        resolve_model(args.prepare)
        return

    from rich.console import Console
    from rich.table import Table

    models = [m.strip() for m in args.models.split(",") if m.strip()]
    for m in [*models, "bert-tiny"]:  # materialise random weights once, outside the measured children
        subprocess.run([sys.executable, __file__, "--prepare", m], check=True, cwd=ROOT)
    rows = []
    for spec in plan(models, args.quick, not args.cold):
        row = run_child(spec)
        rows.append(row)
        logger.info("%s", row)
    whole = {r["model"]: r for r in rows if r["kind"] == "whole"}
    for r in rows:
        r["share_of_whole"] = round(r["model_mb"] / whole[r["model"]]["model_mb"], 3)
        r["share_of_whole_load"] = round(r["load_mb"] / whole[r["model"]]["load_mb"], 3)

    table = Table(
        title=f"Model memory per process (peak RSS - baseline), seq {SEQ}, batch 1, "
        f"runtime {'cold' if args.cold else 'warmed'}"
    )
    cols = ("model", "kind", "L", "method", "rho", "params MiB", "load MiB", "load+infer MiB", "share", "share load")
    for col in cols:
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(
            r["model"], r["kind"], str(r["split"]), r["method"], f"{r['rho']:.2f}", f"{r['param_mb']:.1f}",
            f"{r['load_mb']:.1f}", f"{r['model_mb']:.1f}", f"{r['share_of_whole']:.1%}",
            f"{r['share_of_whole_load']:.1%}",
        )  # fmt: skip
    console = Console(width=160)
    console.print(table)
    verdicts = []
    for (model, split), limit in TARGETS.items():
        hit = [
            r for r in rows
            if r["model"] == model and r["kind"] == "device" and r["split"] == split and r["rho"] == 0.5
            and r["method"] == "structured-magnitude"
        ]  # fmt: skip
        if hit:
            share = hit[0]["share_of_whole"]
            verdict = "PASS" if share <= limit else "FAIL"
            verdicts.append({"model": model, "split": split, "share": share, "limit": limit, "verdict": verdict})
            console.print(f"target {model} device L={split} rho=0.5: {share:.1%} of whole (<= {limit:.0%}) {verdict}")

    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = "memory_cold" if args.cold else "memory"
    with open(RESULTS / f"{stem}.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0].keys()))
        writer.writeheader()
        writer.writerows(rows)
    meta = {"seq_len": SEQ, "batch": 1, "runtime": "cold" if args.cold else "warmed"}
    (RESULTS / f"{stem}.json").write_text(json.dumps({"meta": meta, "rows": rows, "targets": verdicts}, indent=2))
    plot(rows, RESULTS / f"{stem}.png")
    console.print(f"wrote {RESULTS / stem}.csv, .json, .png")


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = sorted({r["model"] for r in rows})
    fig, axes = plt.subplots(1, len(models), figsize=(6 * len(models), 4), squeeze=False)
    for ax, model in zip(axes[0], models, strict=True):
        mine = [r for r in rows if r["model"] == model and r["method"] == "structured-magnitude"]
        whole = next(r["model_mb"] for r in mine if r["kind"] == "whole")
        ax.axhline(whole, color="k", linestyle="--", label="whole model")
        for kind in ("device", "server"):
            for split in sorted({r["split"] for r in mine if r["kind"] == kind}):
                pts = sorted((r["rho"], r["model_mb"]) for r in mine if r["kind"] == kind and r["split"] == split)
                ax.plot(*zip(*pts, strict=True), marker="o", label=f"{kind} L={split}")
        ax.set_title(f"{model}: model memory (structured-magnitude)")
        ax.set_xlabel("kept ratio rho")
        ax.set_ylabel("peak RSS - baseline (MiB)")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    main()
