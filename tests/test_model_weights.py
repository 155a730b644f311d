"""Weight reading, model sources and random-init materialisation."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from splitbed.errors import InvalidArgument, NotFound
from splitbed.model import load_device_part, load_full_model, load_server_part, resolve_model
from splitbed.model.source import minilm_dir
from splitbed.model.weights import WeightReader, random_bert_state


@pytest.fixture()
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SPLITBED_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_reader_matches_safe_open() -> None:
    path = minilm_dir() / "model.safetensors"
    with WeightReader(path) as reader, safe_open(str(path), "pt") as ref:
        ref_keys = list(ref.keys())
        assert set(reader.keys()) == set(ref_keys)
        for key in ref_keys:
            assert torch.equal(reader.get(key), ref.get_tensor(key)), key


def test_reader_strips_checkpoint_prefix(tmp_path: Path) -> None:
    file = tmp_path / "m.safetensors"
    save_file(
        {"bert.embeddings.word_embeddings.weight": torch.arange(6.0).view(3, 2), "cls.bias": torch.ones(2)}, str(file)
    )
    with WeightReader(file) as reader:
        assert reader.prefix == "bert."
        assert reader.keys() == ["embeddings.word_embeddings.weight"]
        assert torch.equal(reader.get("embeddings.word_embeddings.weight"), torch.arange(6.0).view(3, 2))
        with pytest.raises(NotFound):
            reader.get("encoder.layer.0.attention.self.query.weight")


def test_reader_errors(tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        WeightReader(tmp_path / "absent.safetensors")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"abc")
    with pytest.raises(InvalidArgument):
        WeightReader(bad)
    other = tmp_path / "other.safetensors"
    save_file({"w": torch.ones(2)}, str(other))
    with pytest.raises(InvalidArgument, match="BERT"):
        WeightReader(other)


def test_random_model_is_cached_and_deterministic(cache: Path) -> None:
    tiny = resolve_model("bert-tiny")
    assert tiny.random_init and "RANDOM INIT" in tiny.label and "MiniLM tokenizer" in tiny.label
    assert tiny.weights_path.parent == cache / "random"
    mtime = tiny.weights_path.stat().st_mtime_ns
    assert resolve_model("bert-tiny").weights_path.stat().st_mtime_ns == mtime  # not rewritten
    again = random_bert_state(tiny.config, seed=0)
    with WeightReader(tiny.weights_path) as reader:
        assert set(reader.keys()) == set(again)
        assert all(torch.equal(reader.get(k), again[k]) for k in again)
    assert not torch.equal(random_bert_state(tiny.config, seed=1)["pooler.dense.weight"], again["pooler.dense.weight"])


def test_random_model_splits_like_its_reference(cache: Path) -> None:
    tiny = resolve_model("bert-tiny")
    ids = torch.randint(0, tiny.config.vocab_size, (2, 12))
    mask = torch.ones(2, 12, dtype=torch.long)
    mask[1, 7:] = 0
    with torch.no_grad():
        ref = load_full_model(tiny)(ids, mask)
        for split in range(tiny.n_layers + 1):
            out = load_server_part(tiny, split)(load_device_part(tiny, split)(ids, mask), mask)
            assert torch.allclose(out, ref, atol=1e-5)


def test_plain_hf_folder_defaults(tmp_path: Path) -> None:
    src_dir = minilm_dir()
    folder = tmp_path / "plain-bert"
    folder.mkdir()
    for name in ("config.json", "vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(src_dir / name, folder / name)
    (folder / "model.safetensors").symlink_to(src_dir / "model.safetensors")
    src = resolve_model(str(folder))
    assert (src.pooling, src.normalize, src.max_seq_len) == ("mean", True, 512)
    assert not src.random_init and src.name == str(folder)


def test_folder_with_cls_pooling(tmp_path: Path) -> None:
    folder = tmp_path / "cls-bert"
    shutil.copytree(minilm_dir(), folder, ignore=shutil.ignore_patterns("model.safetensors"))
    (folder / "model.safetensors").symlink_to(minilm_dir() / "model.safetensors")
    (folder / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode_cls_token": True}))
    (folder / "modules.json").write_text(
        json.dumps([{"type": "sentence_transformers.models.Pooling", "path": "1_Pooling"}])
    )
    src = resolve_model(str(folder))
    assert (src.pooling, src.normalize, src.max_seq_len) == ("cls", False, 256)


def test_non_bert_folder_rejected(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    with pytest.raises(InvalidArgument, match="gpt2"):
        resolve_model(str(tmp_path))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(NotFound, match=r"config\.json"):
        resolve_model(str(empty))


def test_aliases_resolve_to_the_package_folder() -> None:
    for name in ("minilm", "all-MiniLM-L6-v2"):
        src = resolve_model(name)
        assert src.name == "minilm" and src.weights_path == minilm_dir() / "model.safetensors"
