"""Selective reading of safetensors files, and the cached random-init weights.

Why not ``safetensors.safe_open``: it memory-maps the file, and on Linux every
page a tensor from that map touches counts in the process's RSS for as long as
the map lives. Copying a tensor out (as structured pruning must, to shrink it)
then costs the dense bytes twice at peak: measured on all-MiniLM-L6-v2, loading
every tensor through ``safe_open`` + ``clone`` peaked at 176 MB of RSS against
87 MB with positioned reads. The safetensors layout is simple (8-byte
little-endian header length, JSON header of dtype/shape/byte range, raw
little-endian data), so this module reads exactly the byte ranges of the keys
asked for into tensors it owns. ``tests/test_model_weights.py`` checks every
tensor against ``safe_open``.
"""

from __future__ import annotations

import json
import logging
import os
import struct
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

import torch
from safetensors.torch import save_file
from transformers import BertConfig

from splitbed.errors import InvalidArgument, NotFound

logger = logging.getLogger(__name__)

_DTYPES: dict[str, torch.dtype] = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}
_MAX_HEADER = 100 * 1024 * 1024


class WeightReader:
    """Reads named tensors from one safetensors file without memory-mapping it.

    Keys are addressed without the checkpoint's prefix: a ``BertForX`` file
    stores ``bert.encoder.layer.0...``; callers ask for ``encoder.layer.0...``.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        try:
            self._fh = open(self.path, "rb")  # noqa: SIM115 - closed in close()
        except FileNotFoundError as exc:
            raise NotFound(f"weights file {self.path} does not exist") from exc
        raw_len = self._fh.read(8)
        if len(raw_len) != 8:
            raise InvalidArgument(f"{self.path} is not a safetensors file (too short)")
        (header_len,) = struct.unpack("<Q", raw_len)
        if header_len > _MAX_HEADER:
            raise InvalidArgument(f"{self.path} has an implausible header length {header_len}")
        header = json.loads(self._fh.read(header_len))
        header.pop("__metadata__", None)
        self._data_start = 8 + header_len
        self.prefix = _detect_prefix(header.keys(), self.path)
        self._entries: dict[str, dict[str, object]] = {
            key[len(self.prefix) :]: value for key, value in header.items() if key.startswith(self.prefix)
        }

    def keys(self) -> list[str]:
        return sorted(self._entries)

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def shape(self, key: str) -> tuple[int, ...]:
        return tuple(int(d) for d in self._entry(key)["shape"])  # type: ignore[attr-defined]

    def get(self, key: str) -> torch.Tensor:
        entry = self._entry(key)
        dtype_name = str(entry["dtype"])
        if dtype_name not in _DTYPES:
            raise InvalidArgument(f"tensor {key} in {self.path} has unsupported dtype {dtype_name}")
        start, end = (int(x) for x in entry["data_offsets"])  # type: ignore[attr-defined]
        tensor = torch.empty(self.shape(key), dtype=_DTYPES[dtype_name])
        nbytes = end - start
        if tensor.numel() * tensor.element_size() != nbytes:
            raise InvalidArgument(f"tensor {key} in {self.path}: byte range does not match its shape")
        if nbytes:
            view = tensor.view(torch.uint8).reshape(-1).numpy().data.cast("B")
            self._fh.seek(self._data_start + start)
            got = self._fh.readinto(view)
            if got != nbytes:
                raise InvalidArgument(f"{self.path} is truncated inside tensor {key}")
        return tensor

    def get_many(self, keys: list[str]) -> dict[str, torch.Tensor]:
        return {k: self.get(k) for k in keys}

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> WeightReader:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _entry(self, key: str) -> dict[str, object]:
        try:
            return self._entries[key]
        except KeyError:
            raise NotFound(f"tensor {key!r} not in {self.path}") from None


def _detect_prefix(keys: object, path: Path) -> str:
    anchor = "embeddings.word_embeddings.weight"
    for key in keys:  # type: ignore[attr-defined]
        if isinstance(key, str) and key.endswith(anchor):
            return key[: -len(anchor)]
    anchor = "encoder.layer.0.attention.self.query.weight"
    for key in keys:  # type: ignore[attr-defined]
        if isinstance(key, str) and key.endswith(anchor):
            return key[: -len(anchor)]
    raise InvalidArgument(f"{path} holds no BERT encoder weights (no *embeddings.word_embeddings.weight key)")


def cache_dir() -> Path:
    """Where random-init weights are materialised: ``$SPLITBED_CACHE_DIR`` or ``~/.cache/splitbed``."""
    env = os.environ.get("SPLITBED_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "splitbed"


def random_bert_state(config: BertConfig, seed: int) -> dict[str, torch.Tensor]:
    """Dense weights of a ``BertModel`` (pooler included) drawn like Hugging Face's ``_init_weights``.

    Linear and embedding weights ~ N(0, initializer_range), biases 0, LayerNorm
    (1, 0), the padding row of the word embeddings 0. Every tensor is drawn from
    one generator seeded with ``seed`` in a fixed key order, so the file is the
    same on every machine.
    """
    gen = torch.Generator().manual_seed(seed)
    std = float(config.initializer_range)
    h, ffn = config.hidden_size, config.intermediate_size

    def normal(*shape: int) -> torch.Tensor:
        return torch.empty(shape).normal_(0.0, std, generator=gen)

    state: dict[str, torch.Tensor] = {}
    word = normal(config.vocab_size, h)
    if config.pad_token_id is not None:
        word[config.pad_token_id].zero_()
    state["embeddings.word_embeddings.weight"] = word
    state["embeddings.position_embeddings.weight"] = normal(config.max_position_embeddings, h)
    state["embeddings.token_type_embeddings.weight"] = normal(config.type_vocab_size, h)
    state["embeddings.LayerNorm.weight"] = torch.ones(h)
    state["embeddings.LayerNorm.bias"] = torch.zeros(h)
    linears = {
        "attention.self.query": (h, h),
        "attention.self.key": (h, h),
        "attention.self.value": (h, h),
        "attention.output.dense": (h, h),
        "intermediate.dense": (ffn, h),
        "output.dense": (h, ffn),
    }
    for i in range(config.num_hidden_layers):
        p = f"encoder.layer.{i}."
        for name, (out_f, in_f) in linears.items():
            state[p + name + ".weight"] = normal(out_f, in_f)
            state[p + name + ".bias"] = torch.zeros(out_f)
        for ln in ("attention.output.LayerNorm", "output.LayerNorm"):
            state[p + ln + ".weight"] = torch.ones(h)
            state[p + ln + ".bias"] = torch.zeros(h)
    state["pooler.dense.weight"] = normal(h, h)
    state["pooler.dense.bias"] = torch.zeros(h)
    return state


def materialise_random(name: str, config: BertConfig, seed: int) -> Path:
    """Write the random dense weights of ``name`` once; later calls return the cached file.

    Written to a temp file and renamed so that concurrent processes never see a
    half-written file.
    """
    target = cache_dir() / "random" / f"{name}-seed{seed}.safetensors"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    logger.info("materialising random-init weights of %s (seed %s) into %s", name, seed, target)
    state = random_bert_state(config, seed)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=target.name, suffix=".tmp")
    os.close(fd)
    try:
        save_file(state, tmp, metadata={"splitbed": "random-init", "model": name, "seed": str(seed)})
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target
