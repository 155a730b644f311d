"""Split correctness: device part + server part == the unsplit model, at every split point."""

from __future__ import annotations

import os

import pytest
import torch

from splitbed.errors import FailedPrecondition, InvalidArgument, NotFound
from splitbed.model import (
    DevicePart,
    ModelSource,
    ServerPart,
    load_device_part,
    load_full_model,
    load_server_part,
    load_tokenizer,
    resolve_model,
    tokenize,
)

TEXTS = [
    "A man is eating food.",
    "The new movie is awesome and everyone at the cinema loved it.",
    "Split inference runs the first layers of a network on a phone and the rest on an edge server.",
    "Hi!",
    "The cat sits outside on the warm stone wall, watching the birds in the garden.",
    "Quantum computers exploit superposition and entanglement to solve certain problems faster.",
    "It rained all day in Paris, so we stayed in and read.",
    "Transmit power, clock frequency and pruning ratio are chosen jointly to meet a latency budget.",
]


@pytest.fixture(scope="module")
def src() -> ModelSource:
    return resolve_model("minilm")


@pytest.fixture(scope="module")
def batch(src: ModelSource) -> dict[str, torch.Tensor]:
    return tokenize(load_tokenizer(src), TEXTS, src.max_seq_len)


@pytest.fixture(scope="module")
def reference(src: ModelSource, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    with torch.no_grad():
        return load_full_model(src)(**batch)


def run_split(src: ModelSource, split: int, batch: dict[str, torch.Tensor], **kw: object) -> torch.Tensor:
    device = load_device_part(src, split, **kw)  # type: ignore[arg-type]
    server = load_server_part(src, split, **kw)  # type: ignore[arg-type]
    with torch.no_grad():
        hidden = device(**batch)
        assert hidden.shape == (*batch["input_ids"].shape, src.hidden_size)
        return server(hidden, batch["attention_mask"])


def test_minilm_source_reads_sentence_transformers_config(src: ModelSource) -> None:
    assert not src.random_init
    assert (src.n_layers, src.hidden_size) == (6, 384)
    assert (src.pooling, src.normalize, src.max_seq_len) == ("mean", True, 256)
    assert src.weights_path.name == "model.safetensors"


def test_batch_is_padded(batch: dict[str, torch.Tensor]) -> None:
    lengths = batch["attention_mask"].sum(dim=1)
    assert lengths.min() < lengths.max()  # the comparison below covers padded rows


@pytest.mark.parametrize("split", range(7))
def test_split_equals_full_model(
    src: ModelSource, batch: dict[str, torch.Tensor], reference: torch.Tensor, split: int
) -> None:
    out = run_split(src, split, batch)
    assert out.shape == (len(TEXTS), 384)
    assert torch.allclose(out, reference, atol=1e-5, rtol=0)
    assert torch.allclose(out.norm(dim=1), torch.ones(len(TEXTS)), atol=1e-5)


def test_eager_attention_matches_sdpa(
    src: ModelSource, batch: dict[str, torch.Tensor], reference: torch.Tensor
) -> None:
    out = run_split(src, 2, batch, attn_impl="eager")
    assert torch.allclose(out, reference, atol=1e-5, rtol=0)


def test_padding_does_not_change_embeddings(src: ModelSource) -> None:
    tok = load_tokenizer(src)
    single = tokenize(tok, TEXTS[:1], src.max_seq_len)
    padded = tokenize(tok, TEXTS[:1], src.max_seq_len, pad_to=64)
    assert padded["input_ids"].shape == (1, 64)
    a, b = run_split(src, 3, single), run_split(src, 3, padded)
    assert torch.allclose(a, b, atol=1e-5)


def test_matches_sentence_transformers(src: ModelSource, reference: torch.Tensor) -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    st = pytest.importorskip("sentence_transformers", reason="sentence-transformers not installed")
    model = st.SentenceTransformer(str(src.tokenizer_dir), device="cpu")
    expected = model.encode(TEXTS, convert_to_tensor=True, batch_size=len(TEXTS))
    assert torch.allclose(reference, expected.cpu(), atol=1e-5, rtol=0)
    # Unrelated sentences stay far apart: the weights are the real pretrained ones.
    sims = reference @ reference.T
    assert sims[0, 3] < 0.5


def test_device_part_holds_only_its_layers(src: ModelSource) -> None:
    device = load_device_part(src, 2)
    keys = set(device.state_dict())
    assert "embeddings.word_embeddings.weight" in keys
    assert any(k.startswith("encoder.layer.1.") for k in keys)
    assert not any(k.startswith(f"encoder.layer.{i}.") for k in keys for i in range(2, 6))
    server = load_server_part(src, 2)
    skeys = set(server.state_dict())
    assert not any(k.startswith("embeddings.") for k in skeys)
    assert not any(k.startswith(("encoder.layer.0.", "encoder.layer.1.")) for k in skeys)
    assert {int(k.split(".")[2]) for k in skeys} == {2, 3, 4, 5}
    # Keys are the file's keys, so a part is exactly a slice of the checkpoint.
    assert keys | skeys <= {k for k in _file_keys(src)}


def _file_keys(src: ModelSource) -> list[str]:
    from splitbed.model.weights import WeightReader

    with WeightReader(src.weights_path) as reader:
        return reader.keys()


def test_empty_sides_at_the_ends(src: ModelSource) -> None:
    device0 = load_device_part(src, 0)
    assert isinstance(device0, DevicePart) and len(list(device0.layers())) == 0
    server_n = load_server_part(src, 6)
    assert isinstance(server_n, ServerPart) and len(list(server_n.layers())) == 0
    assert server_n.report.total_prunable == 0 and server_n.report.achieved_rho == 1.0


@pytest.mark.parametrize("split", [-1, 7, 2.5, True, "3"])
def test_invalid_split(src: ModelSource, split: object) -> None:
    with pytest.raises(InvalidArgument, match="split"):
        load_device_part(src, split)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="split"):
        load_server_part(src, split)  # type: ignore[arg-type]


def test_server_rejects_bad_shapes(src: ModelSource) -> None:
    server = load_server_part(src, 5)
    with pytest.raises(InvalidArgument):
        server(torch.zeros(1, 4, 100), torch.ones(1, 4, dtype=torch.long))
    with pytest.raises(InvalidArgument):
        server(torch.zeros(1, 4, 384), torch.ones(1, 5, dtype=torch.long))


def test_unknown_model_and_bad_tokenize(src: ModelSource) -> None:
    with pytest.raises(NotFound, match="no-such-model"):
        resolve_model("no-such-model")
    tok = load_tokenizer(src)
    with pytest.raises(InvalidArgument):
        tokenize(tok, [], 128)
    with pytest.raises(InvalidArgument, match="pad_to"):
        tokenize(tok, ["x"], 128, pad_to=300)


def test_truncation_at_max_seq_len(src: ModelSource) -> None:
    enc = tokenize(load_tokenizer(src), ["word " * 400], src.max_seq_len)
    assert enc["input_ids"].shape == (1, 256)


def test_cuda_device(src: ModelSource, batch: dict[str, torch.Tensor], reference: torch.Tensor) -> None:
    if not torch.cuda.is_available():
        with pytest.raises(FailedPrecondition, match="cuda"):
            load_device_part(src, 2, device="cuda")
        return
    out = run_split(src, 2, batch, device="cuda")
    assert torch.allclose(out.cpu(), reference, atol=1e-4)
