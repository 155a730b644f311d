"""Analytic FLOPs and sizes against docs/design.md (section 8) and against FlopCounterMode."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from splitbed.codec import encode_float
from splitbed.errors import InvalidArgument
from splitbed.kinds import ENCODINGS, Encoding
from splitbed.model import (
    ModelSource,
    load_device_part,
    load_server_part,
    payload_bytes,
    profile_part,
    resolve_model,
    split_table,
)
from splitbed.model.weights import WeightReader
from splitbed.side.profile import split_costs


@pytest.fixture(scope="module")
def src() -> ModelSource:
    return resolve_model("minilm")


def _counted_flops(fn: object, *args: torch.Tensor) -> int:
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        fn(*args)  # type: ignore[operator]
    return int(counter.get_total_flops())


def test_minilm_flops_match_design(src: ModelSource) -> None:
    table = split_table(src, 128)
    assert len(table) == 7
    total = table[0].server_flops
    assert total == table[6].device_flops
    assert round(total / 1e9, 2) == 2.87
    assert round((table[1].device_flops) / 1e9, 3) == 0.478
    for row in table:
        assert row.device_flops + row.server_flops == total
        assert set(row.payload_bytes) == set(ENCODINGS)


def test_split_table_params_match_loaded_parts(src: ModelSource) -> None:
    with WeightReader(src.weights_path) as reader:
        file_params = sum(torch.Size(reader.shape(k)).numel() for k in reader if "position_ids" not in k)
    pooler = 384 * 384 + 384  # HF pooler: stored, unused by mean pooling, never loaded
    for row in split_table(src, 128):
        assert row.device_params + row.server_params + pooler == file_params == 22_713_216
        if row.split in (0, 2, 6):
            device, server = load_device_part(src, row.split), load_server_part(src, row.split)
            assert sum(p.numel() for p in device.parameters()) == row.device_params
            assert sum(p.numel() for p in server.parameters()) == row.server_params
            assert profile_part(device, 128).flops == row.device_flops
            assert profile_part(server, 128).params == row.server_params
            assert profile_part(server, 128).prunable_params == row.server_prunable


@pytest.mark.parametrize("split", [0, 2, 6])
@pytest.mark.parametrize("rho", [1.0, 0.5])
def test_analytic_flops_match_flop_counter(src: ModelSource, split: int, rho: float) -> None:
    seq = 64
    ids = torch.randint(1000, 2000, (1, seq))
    mask = torch.ones(1, seq, dtype=torch.long)
    mask[0, -5:] = 0  # padded rows exercise the masked path
    device = load_device_part(src, split, rho=rho, attn_impl="eager")
    server = load_server_part(src, split, rho=rho, attn_impl="eager")
    assert _counted_flops(device, ids, mask) == profile_part(device, seq).flops
    hidden = torch.randn(1, seq, 384)
    assert _counted_flops(server, hidden, mask) == profile_part(server, seq).flops


def test_bert_base_random_is_labelled_and_sized(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache: Path = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("SPLITBED_CACHE_DIR", str(cache))
    bert = resolve_model("bert-base")
    assert bert.random_init and "RANDOM INIT, timing only" in bert.label
    assert bert.weights_path.is_relative_to(cache)
    assert bert.tokenizer_dir == src_dir()
    with WeightReader(bert.weights_path) as reader:
        assert sum(torch.Size(reader.shape(k)).numel() for k in reader) == 109_482_240
    table = split_table(bert, 128)
    assert round(table[0].server_flops / 1e9, 2) == 22.35
    assert round(table[1].device_flops / 1e9, 3) == 1.862
    assert table[4].payload_bytes["fp16"] == 128 * 768 * 2


def src_dir() -> Path:
    from splitbed.model.source import minilm_dir

    return minilm_dir()


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize(("hidden", "seq"), [(384, 128), (768, 256), (384, 1), (7, 13)])
def test_payload_bytes_is_the_codecs_real_size(encoding: Encoding, hidden: int, seq: int) -> None:
    """What the controller plans with (payload_bits in the profile) is what the codec actually puts on the wire."""
    hidden_state = np.random.default_rng(0).standard_normal((1, seq, hidden)).astype(np.float32)
    msg = encode_float(hidden_state, encoding)
    assert payload_bytes(hidden, seq, encoding) == len(msg.data) + len(msg.scales)


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("seq", [128, 9])
def test_node_profile_payload_bits_are_the_codecs(src: ModelSource, encoding: Encoding, seq: int) -> None:
    """The split-cost rows a device sends the controller carry 8 x the bytes the codec really encodes."""
    hidden_state = np.zeros((1, seq, src.hidden_size), np.float32)
    msg = encode_float(hidden_state, encoding)
    rows = split_costs(src, seq, encoding)
    assert len(rows) == src.n_layers + 1
    assert {r.payload_bits for r in rows[:-1]} == {8 * (len(msg.data) + len(msg.scales))}
    assert rows[-1].payload_bits == 0  # L = n: the device pools itself and uploads nothing
    assert {r.payload_bits for r in split_costs(src, seq, None)} == {0}  # the server's rows carry no payload


def test_payload_bytes_rejects_bad_input() -> None:
    with pytest.raises(InvalidArgument):
        payload_bytes(384, 128, "bf8")
    with pytest.raises(InvalidArgument):
        payload_bytes(384, 0, "fp32")


def test_profile_rejects_bad_seq(src: ModelSource) -> None:
    with pytest.raises(InvalidArgument, match="seq_len"):
        split_table(src, 0)
    with pytest.raises(InvalidArgument, match="seq_len"):
        profile_part(load_server_part(src, 6), 10_000)
