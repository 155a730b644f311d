"""Pruning: ratio accuracy, physical shrinking, FLOPs, determinism, non-cumulative re-pruning."""

from __future__ import annotations

import pytest
import torch

from splitbed.errors import InvalidArgument
from splitbed.kinds import PRUNE_METHODS
from splitbed.model import (
    ModelSource,
    load_device_part,
    load_server_part,
    load_tokenizer,
    profile_part,
    resolve_model,
    tokenize,
)
from splitbed.model.layers import EncoderLayer
from splitbed.model.parts import DevicePart, ServerPart
from splitbed.model.prune import PRUNABLE_LINEARS, layer_prunable

SEQ = 128


@pytest.fixture(scope="module")
def src() -> ModelSource:
    return resolve_model("minilm")


@pytest.fixture(scope="module")
def batch(src: ModelSource) -> dict[str, torch.Tensor]:
    texts = ["Pruning removes attention heads.", "A short one.", "Edge servers batch many devices."]
    return tokenize(load_tokenizer(src), texts, src.max_seq_len)


def _prunable_present(part: DevicePart | ServerPart) -> int:
    return sum(
        getattr(layer.get_submodule(n), a).numel()
        for layer in part.layers()
        for n in PRUNABLE_LINEARS
        for a in ("weight", "bias")
    )


def _nonzero_prunable(part: DevicePart | ServerPart) -> int:
    return sum(
        int((getattr(layer.get_submodule(n), a) != 0).sum())
        for layer in part.layers()
        for n in PRUNABLE_LINEARS
        for a in ("weight", "bias")
    )


@pytest.mark.parametrize("method", PRUNE_METHODS)
@pytest.mark.parametrize(("side", "split"), [("device", 2), ("device", 6), ("server", 0), ("server", 3)])
def test_ratio_within_two_percent(src: ModelSource, method: str, side: str, split: int) -> None:
    loader = load_device_part if side == "device" else load_server_part
    part = loader(src, split, rho=0.3, method=method, seed=1)
    n_layers = split if side == "device" else src.n_layers - split
    for rho in (0.3, 0.5, 0.75, 0.9):
        report = part.reprune(rho, method, seed=1) if rho != 0.3 else part.report
        assert report.total_prunable == n_layers * layer_prunable(src.config)
        assert abs(report.achieved_rho - rho) <= 0.02, (method, rho, report)
        assert report.kept_prunable == round(report.achieved_rho * report.total_prunable)
        assert report.structured == method.startswith("structured")
        # The reported count is what really remains in the tensors.
        if report.structured:
            assert _prunable_present(part) == report.kept_prunable
        else:
            assert _prunable_present(part) == report.total_prunable
            assert abs(_nonzero_prunable(part) - report.kept_prunable) <= 10  # exact zeros in the checkpoint


def test_structured_shrinks_tensors_and_flops(src: ModelSource, batch: dict[str, torch.Tensor]) -> None:
    dense = load_server_part(src, 0)
    pruned = load_server_part(src, 0, rho=0.5, method="structured-magnitude")
    layer = next(pruned.layers())
    assert isinstance(layer, EncoderLayer)
    heads = layer.attention.heads
    assert heads.num_attention_heads == 6 and heads.all_head_size == 6 * 32
    assert heads.query.weight.shape == (192, 384)
    assert layer.attention.output.dense.weight.shape == (384, 192)
    neurons = layer.intermediate.dense.out_features
    assert 700 < neurons < 800 and layer.output.dense.weight.shape == (384, neurons)
    f_dense, f_half = profile_part(dense, SEQ).flops, profile_part(pruned, SEQ).flops
    assert abs(f_half / f_dense - 0.5) < 0.02
    # Parameter memory shrinks with the tensors.
    assert sum(p.numel() for p in pruned.parameters()) < 0.52 * sum(p.numel() for p in dense.parameters())
    with torch.no_grad():
        out = pruned(torch.randn(3, batch["input_ids"].shape[1], 384), batch["attention_mask"])
    assert out.shape == (3, 384) and torch.isfinite(out).all()


@pytest.mark.parametrize("rho", [0.25, 0.5, 0.8])
def test_structured_flops_scale_with_rho(src: ModelSource, rho: float) -> None:
    dense_flops = profile_part(load_device_part(src, 6), SEQ).flops
    part = load_device_part(src, 6, rho=rho, method="structured-random")
    assert abs(profile_part(part, SEQ).flops / dense_flops - rho) < 0.03


def test_unstructured_keeps_shapes_and_zeroes(src: ModelSource) -> None:
    dense = load_device_part(src, 3)
    pruned = load_device_part(src, 3, rho=0.4, method="unstructured-magnitude")
    dense_state, pruned_state = dense.state_dict(), pruned.state_dict()
    assert {k: v.shape for k, v in dense_state.items()} == {k: v.shape for k, v in pruned_state.items()}
    w_dense = dense_state["encoder.layer.1.intermediate.dense.weight"]
    w = pruned_state["encoder.layer.1.intermediate.dense.weight"]
    kept = w != 0
    assert abs(kept.float().mean().item() - 0.4) < 0.01
    # Magnitude: every kept weight is at least as large as every zeroed one.
    assert w_dense.abs()[kept].min() >= w_dense.abs()[~kept].max()
    assert torch.equal(w[kept], w_dense[kept])
    # Embeddings and LayerNorms are untouched.
    for key in ("embeddings.word_embeddings.weight", "encoder.layer.0.output.LayerNorm.weight"):
        assert torch.equal(dense_state[key], pruned_state[key])
    assert profile_part(pruned, SEQ).flops == profile_part(dense, SEQ).flops
    assert pruned.report.params_after < sum(p.numel() for p in pruned.parameters())


@pytest.mark.parametrize("method", PRUNE_METHODS)
def test_repruning_is_not_cumulative(src: ModelSource, method: str) -> None:
    direct = load_server_part(src, 2, rho=0.9, method=method, seed=3)
    part = load_server_part(src, 2, rho=0.5, method=method, seed=3)
    part.reprune(0.9, seed=3)
    assert part.method == method and part.rho == 0.9
    a, b = direct.state_dict(), part.state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert part.report == direct.report
    # Layers are re-inserted while re-pruning; the forward pass must still run them in order.
    hidden = torch.randn(2, 9, 384)
    mask = torch.ones(2, 9, dtype=torch.long)
    with torch.no_grad():
        assert torch.equal(part(hidden, mask), direct(hidden, mask))


def test_rho_one_is_dense_and_untouched(src: ModelSource) -> None:
    dense = load_server_part(src, 1)
    part = load_server_part(src, 1, rho=0.5, method="unstructured-random")
    part.reprune(1.0)
    a, b = dense.state_dict(), part.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert part.report.achieved_rho == 1.0


def test_seed_determinism(src: ModelSource) -> None:
    a = load_device_part(src, 2, rho=0.5, method="structured-random", seed=7).state_dict()
    b = load_device_part(src, 2, rho=0.5, method="structured-random", seed=7).state_dict()
    c = load_device_part(src, 2, rho=0.5, method="structured-random", seed=8).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(a[k].shape == c[k].shape and torch.equal(a[k], c[k]) for k in a)


def test_magnitude_keeps_strongest_heads(src: ModelSource) -> None:
    mag = load_server_part(src, 5, rho=0.5, method="structured-magnitude")
    rnd = load_server_part(src, 5, rho=0.5, method="structured-random")

    def norm(part: ServerPart) -> float:
        return sum(float(p.pow(2).sum()) for p in part.parameters())

    assert norm(mag) > norm(rnd)


def test_pruned_model_degrades_gracefully(src: ModelSource, batch: dict[str, torch.Tensor]) -> None:
    device = load_device_part(src, 3)
    dense_server = load_server_part(src, 3)
    server = load_server_part(src, 3, rho=0.9, method="unstructured-magnitude")
    with torch.no_grad():
        hidden = device(**batch)
        cos = torch.nn.functional.cosine_similarity(
            dense_server(hidden, batch["attention_mask"]), server(hidden, batch["attention_mask"])
        )
    assert cos.min() > 0.95


@pytest.mark.parametrize("rho", [0.0, -0.1, 1.5, float("nan"), "x"])
def test_invalid_rho(src: ModelSource, rho: object) -> None:
    with pytest.raises(InvalidArgument, match="rho"):
        load_device_part(src, 2, rho=rho)  # type: ignore[arg-type]
    part = load_server_part(src, 5)
    with pytest.raises(InvalidArgument, match="rho"):
        part.reprune(rho)  # type: ignore[arg-type]


def test_unknown_method(src: ModelSource) -> None:
    with pytest.raises(InvalidArgument, match="l1-global"):
        load_server_part(src, 2, rho=0.5, method="l1-global")
    with pytest.raises(InvalidArgument, match="l1-global"):
        load_server_part(src, 2).reprune(0.5, "l1-global")


def test_very_low_rho_removes_all_heads(src: ModelSource, batch: dict[str, torch.Tensor]) -> None:
    part = load_server_part(src, 4, rho=0.02, method="structured-magnitude")
    assert abs(part.report.achieved_rho - 0.02) <= 0.02
    assert all(layer.attention.heads.num_attention_heads == 0 for layer in part.layers())
    with torch.no_grad():
        out = part(torch.randn(3, batch["input_ids"].shape[1], 384), batch["attention_mask"])
    assert torch.isfinite(out).all()
