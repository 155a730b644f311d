"""FLOPs and latency versus the kept ratio rho, for every pruning method.

The whole model runs in one process (device part at L = n plus the server's
pooling), batch 1, sequence length 128, ``torch.set_num_threads(2)``. For each
model and method the part is loaded once and re-pruned from the dense weights
to each rho (the re-prune time is reported too). Latency is the median of
``--reps`` timed calls after warm-up (``measured:perf_counter``), each call
alternated with a call of a dense copy, and the ratio to dense is taken
within that same window (the machine may be shared); FLOPs are the
analytic count of ``splitbed.model.profile`` (``modelled:analytic-matmul``).
For the real MiniLM weights the table also gives the minimum cosine, over
eight sentences, between the pruned and the dense embedding.

Usage: ``python bench/pruning.py [--quick] [--models minilm,bert-base]``
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from splitbed.kinds import PRUNE_METHODS  # noqa: E402
from splitbed.model import (  # noqa: E402
    ModelSource,
    load_device_part,
    load_server_part,
    load_tokenizer,
    profile_part,
    resolve_model,
    tokenize,
)

RESULTS = ROOT / "bench" / "results"
SEQ = 128
TARGET = 0.65  # structured keep 0.5 latency / dense latency
QUALITY_TEXTS = [
    "A man is eating food.",
    "The new movie is awesome.",
    "Split inference runs the first layers on a phone and the rest on an edge server.",
    "The cat sits outside on the warm wall.",
    "Quantum computers exploit superposition and entanglement.",
    "It rained all day in Paris, so we stayed in and read.",
    "Transmit power and clock frequency are chosen jointly.",
    "Hi!",
]
PARAGRAPH = (
    "Large AI models are increasingly deployed at the wireless edge, where a device runs the first layers of a "
    "network and an edge server completes the inference. Pruning both halves trades accuracy for latency and "
    "energy, while the transmit power and the clock frequencies set how fast each stage can go. "
)

logger = logging.getLogger(__name__)


def _interleaved_ms(fns: list[Any], reps: int, warmup: int) -> list[list[float]]:
    """Time several callables in alternation, so a busy machine slows them all alike."""
    samples: list[list[float]] = [[] for _ in fns]
    with torch.inference_mode():
        for _ in range(warmup):
            for fn in fns:
                fn()
        for _ in range(reps):
            for i, fn in enumerate(fns):
                t0 = time.perf_counter()
                fn()
                samples[i].append((time.perf_counter() - t0) * 1e3)
    return samples


def bench_model(
    src: ModelSource, rhos: list[float], methods: list[str], reps: int, device: str = "cpu"
) -> list[dict[str, Any]]:
    """Every (method, rho) point is timed interleaved with a dense copy; ratios come from the same window."""
    tok = load_tokenizer(src)
    batch = tokenize(tok, [PARAGRAPH * 4], src.max_seq_len, pad_to=SEQ)
    quality = tokenize(tok, QUALITY_TEXTS, src.max_seq_len)
    n = src.n_layers
    sync = torch.cuda.synchronize if device.startswith("cuda") else None
    server = load_server_part(src, n, device=device)
    dense = load_device_part(src, n, device=device)
    dense_flops = profile_part(dense, SEQ).flops
    with torch.inference_mode():
        dense_emb = server(dense(**quality), quality["attention_mask"])
    rows: list[dict[str, Any]] = []
    for method in methods:
        part = load_device_part(src, n, method=method, device=device)
        for rho in rhos:
            t0 = time.perf_counter()
            report = part.reprune(rho, method, seed=0)
            reprune_s = time.perf_counter() - t0
            flops = profile_part(part, SEQ).flops

            def run(p: Any) -> Any:
                def call() -> None:
                    server(p(**batch), batch["attention_mask"])
                    if sync is not None:
                        sync()

                return call

            pruned_ms, dense_ms = _interleaved_ms([run(part), run(dense)], reps, warmup=max(3, reps // 5))
            with torch.inference_mode():
                emb = server(part(**quality), quality["attention_mask"])
            cos = float(torch.nn.functional.cosine_similarity(emb, dense_emb).min())
            med, q = statistics.median(pruned_ms), statistics.quantiles(pruned_ms, n=10)
            dense_med = statistics.median(dense_ms)
            rows.append(
                {
                    "model": src.name,
                    "label": src.label,
                    "method": method,
                    "rho": rho,
                    "achieved_rho": round(report.achieved_rho, 4),
                    "gflops": round(flops / 1e9, 4),
                    "flops_ratio": round(flops / dense_flops, 4),
                    "latency_ms": round(med, 3),
                    "latency_p10_ms": round(q[0], 3),
                    "latency_p90_ms": round(q[-1], 3),
                    "dense_latency_ms": round(dense_med, 3),
                    "latency_ratio": round(med / dense_med, 4),
                    "reprune_s": round(reprune_s, 3),
                    "min_cos_vs_dense": None if src.random_init else round(cos, 4),
                    "latency_source": "measured:perf_counter",
                    "flops_source": "modelled:analytic-matmul",
                }
            )
            logger.info("%s", rows[-1])
        del part
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer ratios and repetitions")
    parser.add_argument("--models", default="minilm,bert-base")
    parser.add_argument("--reps", type=int, default=None, help="timed calls per point")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu", help="torch device for both parts (cpu, cuda, cuda:1)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rhos = [1.0, 0.5, 0.25] if args.quick else [1.0, 0.9, 0.75, 0.5, 0.3]
    reps = args.reps or (10 if args.quick else 40)

    from rich.console import Console
    from rich.table import Table

    console = Console(width=170)
    rows: list[dict[str, Any]] = []
    for name in [m.strip() for m in args.models.split(",") if m.strip()]:
        src = resolve_model(name)
        console.print(
            f"[bold]{src.label}[/bold]: seq {SEQ}, batch 1, {args.threads} threads, {reps} reps, {args.device}"
        )
        rows.extend(bench_model(src, rhos, list(PRUNE_METHODS), reps, args.device))

    table = Table(title="Pruning: FLOPs and latency vs rho (whole model, one process)")
    for col in ("model", "method", "rho", "achieved", "GFLOPs", "FLOPs x dense", "latency ms (p10-p90)",
                "dense ms", "latency x dense", "re-prune s", "min cos"):  # fmt: skip
        table.add_column(col, justify="right")
    for r in rows:
        cos = "random" if r["min_cos_vs_dense"] is None else f"{r['min_cos_vs_dense']:.4f}"
        table.add_row(
            r["model"], r["method"], f"{r['rho']:.2f}", f"{r['achieved_rho']:.3f}", f"{r['gflops']:.3f}",
            f"{r['flops_ratio']:.3f}", f"{r['latency_ms']:.2f} ({r['latency_p10_ms']:.2f}-{r['latency_p90_ms']:.2f})",
            f"{r['dense_latency_ms']:.2f}", f"{r['latency_ratio']:.3f}", f"{r['reprune_s']:.3f}", cos,
        )  # fmt: skip
    console.print(table)
    verdicts = []
    for r in rows:
        if r["method"] == "structured-magnitude" and r["rho"] == 0.5:
            ok = r["latency_ratio"] <= TARGET
            verdicts.append({"model": r["model"], "latency_ratio": r["latency_ratio"], "limit": TARGET, "pass": ok})
            console.print(
                f"target {r['model']} structured keep 0.5: {r['latency_ratio']:.3f}x dense latency "
                f"(<= {TARGET}) {'PASS' if ok else 'FAIL'}"
            )

    RESULTS.mkdir(parents=True, exist_ok=True)
    with open(RESULTS / "pruning.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0].keys()))
        writer.writeheader()
        writer.writerows(rows)
    meta = {
        "seq_len": SEQ,
        "batch": 1,
        "threads": args.threads,
        "device": args.device,
        "reps": reps,
        "torch": torch.__version__,
    }
    (RESULTS / "pruning.json").write_text(json.dumps({"meta": meta, "rows": rows, "targets": verdicts}, indent=2))
    plot(rows, RESULTS / "pruning.png")
    console.print(f"wrote {RESULTS / 'pruning.csv'}, pruning.json, pruning.png")


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = list(dict.fromkeys(r["model"] for r in rows))
    fig, axes = plt.subplots(1, len(models), figsize=(6 * len(models), 4.2), squeeze=False)
    for ax, model in zip(axes[0], models, strict=True):
        for method in PRUNE_METHODS:
            pts = sorted((r["rho"], r["latency_ratio"]) for r in rows if r["model"] == model and r["method"] == method)
            if pts:
                ax.plot(*zip(*pts, strict=True), marker="o", label=f"{method} latency")
        fl = sorted((r["rho"], r["flops_ratio"]) for r in rows
                    if r["model"] == model and r["method"] == PRUNE_METHODS[0])
        ax.plot(*zip(*fl, strict=True), "k--", label="structured FLOPs")
        random = all(r.get("min_cos_vs_dense") is None for r in rows if r["model"] == model)
        label = " (RANDOM INIT, timing only)" if random else " (pretrained)"
        ax.set_title(f"{model}{label}: seq {SEQ}, batch 1, whole model", fontsize=10)
        ax.set_xlabel("kept ratio rho")
        ax.set_ylabel("x dense")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    main()
