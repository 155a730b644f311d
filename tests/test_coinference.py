"""Two real processes: the device part runs here, the server part in an edge-server subprocess.

For every split point with no pruning, the co-inference output over fp32
equals the unsplit model's output (and sentence-transformers' embedding)
within 1e-5; compressed encodings stay within cosine 0.999 of fp32.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch

from device_agent.runner import DeviceRunner
from device_agent.settings import AgentSettings
from splitbed.model import load_full_model, resolve_model
from tests.launch import ROOT, child_env, start_edge

TEXTS = [
    "The quick brown fox jumps over the lazy dog.",
    "Beautiful is better than ugly.",
    "A lexical analyzer class for simple shell-like syntaxes, used for parsing command lines.",
    "Heap queue algorithm (a.k.a. priority queue).",
    "Errors should never pass silently, unless explicitly silenced.",
    "The weather in Stockholm is cold in November, and the days are short.",
]
N_LAYERS = 6


@pytest.fixture(scope="module")
def servers():
    with ThreadPoolExecutor(4) as pool:
        procs = dict(zip(range(N_LAYERS + 1), pool.map(start_edge, range(N_LAYERS + 1)), strict=True))
    yield procs
    for p in procs.values():
        p.stop()


@pytest.fixture(scope="module")
def reference() -> np.ndarray:
    src = resolve_model("minilm")
    full = load_full_model(src)
    runner_inputs = _inputs(src)
    with torch.inference_mode():
        return torch.cat([full(i["input_ids"], i["attention_mask"], i.get("token_type_ids"))
                          for i in runner_inputs]).numpy()


def _inputs(src):
    from splitbed.model import load_tokenizer, tokenize

    tok = load_tokenizer(src)
    return [tokenize(tok, [t], src.max_seq_len) for t in TEXTS]


async def _co_infer(address: str, split: int, encoding: str = "fp32") -> np.ndarray:
    runner = DeviceRunner(AgentSettings(server=address, split=split, rho=1.0, encoding=encoding, warmup=0))
    try:
        await runner.connect()
        records = await runner.run(TEXTS)
    finally:
        await runner.close()
    return np.stack([r.embedding for r in records])


@pytest.mark.parametrize("split", range(N_LAYERS + 1))
def test_two_process_fp32_equals_unsplit(servers, reference, split):
    out = asyncio.run(_co_infer(servers[split].address, split))
    assert out.shape == reference.shape
    np.testing.assert_allclose(out, reference, atol=1e-5, rtol=0)


def test_two_process_equals_sentence_transformers(servers, reference):
    st = pytest.importorskip("sentence_transformers", reason="sentence-transformers is a test-only dependency")
    src = resolve_model("minilm")
    model = st.SentenceTransformer(str(src.tokenizer_dir), device="cpu", local_files_only=True)
    expected = model.encode(TEXTS, convert_to_numpy=True, normalize_embeddings=False)
    for split in (0, 3, N_LAYERS):
        out = asyncio.run(_co_infer(servers[split].address, split))
        np.testing.assert_allclose(out, expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("encoding", ["fp16", "int8"])
@pytest.mark.parametrize("split", [1, 3, 5])
def test_compressed_encodings_keep_cosine(servers, split, encoding):
    fp32 = asyncio.run(_co_infer(servers[split].address, split, "fp32"))
    out = asyncio.run(_co_infer(servers[split].address, split, encoding))
    cos = np.sum(out * fp32, axis=1) / (np.linalg.norm(out, axis=1) * np.linalg.norm(fp32, axis=1))
    assert cos.min() >= 0.999, cos


def test_agent_cli_writes_records(servers, tmp_path):
    texts = tmp_path / "texts.txt"
    texts.write_text("\n".join(TEXTS) + "\n")
    out = tmp_path / "out.jsonl"
    proc = subprocess.run(
        [sys.executable, "-m", "device_agent", "run", "--server", servers[2].address, "--model", "minilm",
         "--split", "2", "--rho", "1.0", "--method", "structured-magnitude", "--encoding", "fp16",
         "--texts", str(texts), "--out", str(out), "--reference"],
        capture_output=True, text=True, env=child_env(), cwd=ROOT, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert "end-to-end" in proc.stdout and "fidelity" in proc.stdout
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["text"] for r in records] == TEXTS
    for r in records:
        assert len(r["embedding"]) == 384
        assert r["cosine"] > 0.9999 and r["l2"] < 1e-2
        t = r["timings"]
        for key in ("device_compute_s", "encode_s", "transfer_s", "server_compute_s", "e2e_s"):
            assert t[key] >= 0
        assert t["e2e_s"] >= t["device_compute_s"] + t["server_compute_s"]
        assert r["timing_sources"]["e2e_s"].startswith("measured")


def test_agent_cli_refuses_mismatched_split(servers, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "device_agent", "run", "--server", servers[2].address, "--split", "4",
         "--out", str(tmp_path / "o.jsonl")],
        capture_output=True, text=True, env=child_env(), cwd=ROOT, timeout=300,
    )
    assert proc.returncode == 2
    assert "serves split 2" in proc.stderr


def test_standalone_power_paces_uplink_and_reports_energy(servers):
    from splitbed.channel import gain_from_distance, rate_bps

    async def go():
        runner = DeviceRunner(AgentSettings(server=servers[2].address, split=2, warmup=0, power_w=0.05,
                                            encoding="fp16"))
        try:
            await runner.connect()
            return await runner.run(TEXTS[:3])
        finally:
            await runner.close()

    rate = rate_bps(0.05, 5e6, 2e-19, gain_from_distance(500, -30, 2.8))
    for record in asyncio.run(go()):
        rec = record.to_dict()
        expected = rec["payload_bytes"] * 8 / rate
        # A paced upload never finishes early (sleeps only overshoot); this checks the pacing, not the clock.
        assert rec["timings"]["upload_pacing_s"] >= 0.95 * expected
        assert rec["energy"]["upload_source"] == "modelled:p*t_upload"
        assert rec["energy"]["upload_j"] == pytest.approx(0.05 * rec["timings"]["upload_pacing_s"])
