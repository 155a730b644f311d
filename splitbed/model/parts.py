"""The two halves of a split model: ``DevicePart`` (embeddings + layers [0, L)) and
``ServerPart`` (layers [L, n) + pooling).

Each side reads only its own tensors from the safetensors file (the device
never reads layers >= L, the server never reads the embeddings) and prunes
while it loads, one layer at a time. ``reprune`` reloads the side's layers from
the file and prunes them to the new ratio, so pruning is never cumulative and
no dense copy stays in memory.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import torch
from torch import Tensor, nn

from splitbed.errors import FailedPrecondition, InvalidArgument
from splitbed.model.alloc import lean_allocations
from splitbed.model.layers import ATTN_IMPLS, Embeddings, Encoder, EncoderLayer, extended_mask, pool
from splitbed.model.prune import (
    PRUNABLE_LINEARS,
    PruneReport,
    check_method,
    check_rho,
    layer_prunable,
    prune_layer,
)
from splitbed.model.source import ModelSource
from splitbed.model.weights import WeightReader

logger = logging.getLogger(__name__)

_LAYER_NORM_KEYS = (
    "attention.output.LayerNorm.weight",
    "attention.output.LayerNorm.bias",
    "output.LayerNorm.weight",
    "output.LayerNorm.bias",
)
_EMBEDDING_KEYS = (
    "word_embeddings.weight",
    "position_embeddings.weight",
    "token_type_embeddings.weight",
    "LayerNorm.weight",
    "LayerNorm.bias",
)


def check_split(src: ModelSource, split: int) -> int:
    if isinstance(split, bool) or not isinstance(split, int) or not 0 <= split <= src.n_layers:
        raise InvalidArgument(f"split {split!r} must be an integer in [0, {src.n_layers}] for {src.name}")
    return split


def check_device(device: str | torch.device) -> torch.device:
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise InvalidArgument(f"unknown torch device {device!r}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise FailedPrecondition(f"device {device!r} requested but CUDA is not available here")
    return dev


class _Part(nn.Module):
    """What both halves share: the split, the layer range, loading and re-pruning."""

    side = ""

    def __init__(self, src: ModelSource, split: int, layers: range, device: torch.device, attn_impl: str) -> None:
        super().__init__()
        if attn_impl not in ATTN_IMPLS:
            raise InvalidArgument(f"attention implementation {attn_impl!r} not in {ATTN_IMPLS}")
        self.source = src
        self.split = split
        self.layer_range = layers
        self.device_ = device
        self.attn_impl = attn_impl
        self.encoder = Encoder()
        self.rho = 1.0
        self.method = "structured-magnitude"
        self.seed = 0
        self._kept: dict[int, int] = {}
        self.report = PruneReport("structured-magnitude", 1.0, 1.0, 0, 0, 0, True)

    def layers(self) -> Iterator[EncoderLayer]:
        yield from self.encoder.ordered()

    def reprune(self, rho: float, method: str | None = None, seed: int = 0) -> PruneReport:
        """Re-prune this side to ``rho`` starting from the dense weights in the file."""
        rho = check_rho(rho)
        method = check_method(method if method is not None else self.method)
        with lean_allocations(), WeightReader(self.source.weights_path) as reader:
            self._load_layers(reader, rho, method, seed)
        logger.info("%s part of %s at split %s pruned: %s", self.side, self.source.name, self.split, self.report)
        return self.report

    def _load_layers(self, reader: WeightReader, rho: float, method: str, seed: int) -> None:
        config = self.source.config
        for i in self.layer_range:
            prefix = f"encoder.layer.{i}."

            def read(key: str, prefix: str = prefix) -> Tensor:
                return reader.get(prefix + key)

            # Drop the old (pruned) layer before reading the new one, so the two never coexist.
            if str(i) in self.encoder.layer:
                del self.encoder.layer[str(i)]
            tensors, kept = prune_layer(read, config, rho, method, seed, i)
            tensors.update({k: read(k) for k in _LAYER_NORM_KEYS})
            self.encoder.layer[str(i)] = EncoderLayer(tensors, config, self.attn_impl).to(self.device_)
            del tensors
            self._kept[i] = kept
        self.rho, self.method, self.seed = rho, method, seed
        self.report = self._make_report(rho, method)

    def _make_report(self, rho: float, method: str) -> PruneReport:
        total = len(self.layer_range) * layer_prunable(self.source.config)
        kept = sum(self._kept.values())
        present_prunable = sum(
            getattr(layer.get_submodule(n), attr).numel()
            for layer in self.layers()
            for n in PRUNABLE_LINEARS
            for attr in ("weight", "bias")
        )
        present = sum(p.numel() for p in self.parameters())
        return PruneReport(
            method=method,
            target_rho=rho,
            achieved_rho=kept / total if total else 1.0,
            kept_prunable=kept,
            total_prunable=total,
            params_after=present - (present_prunable - kept),
            structured=method.startswith("structured"),
        )


class DevicePart(_Part):
    """Embeddings + encoder layers [0, L): token ids in, hidden state [B, S, H] out."""

    side = "device"

    def __init__(self, src: ModelSource, split: int, device: torch.device, attn_impl: str) -> None:
        super().__init__(src, split, range(0, split), device, attn_impl)
        with lean_allocations(), WeightReader(src.weights_path) as reader:
            emb = reader.get_many(["embeddings." + k for k in _EMBEDDING_KEYS])
        self.embeddings = Embeddings({k[len("embeddings.") :]: v for k, v in emb.items()}, src.config).to(device)

    def forward(self, input_ids: Tensor, attention_mask: Tensor, token_type_ids: Tensor | None = None) -> Tensor:
        if input_ids.dim() != 2 or attention_mask.shape != input_ids.shape:
            raise InvalidArgument(
                f"input_ids {tuple(input_ids.shape)} and attention_mask {tuple(attention_mask.shape)} "
                "must both be [batch, seq]"
            )
        input_ids = input_ids.to(self.device_)
        attention_mask = attention_mask.to(self.device_)
        if token_type_ids is not None:
            token_type_ids = token_type_ids.to(self.device_)
        hidden = self.embeddings(input_ids, token_type_ids)
        return self.encoder(hidden, extended_mask(attention_mask, hidden.dtype))


class ServerPart(_Part):
    """Encoder layers [L, n) + the model's pooling: hidden state in, sentence embedding [B, H] out."""

    side = "server"

    def __init__(self, src: ModelSource, split: int, device: torch.device, attn_impl: str) -> None:
        super().__init__(src, split, range(split, src.n_layers), device, attn_impl)

    def forward(self, hidden: Tensor, attention_mask: Tensor) -> Tensor:
        h = self.source.hidden_size
        if hidden.dim() != 3 or hidden.shape[-1] != h or attention_mask.shape != hidden.shape[:2]:
            raise InvalidArgument(
                f"hidden {tuple(hidden.shape)} must be [batch, seq, {h}] and attention_mask "
                f"{tuple(attention_mask.shape)} must be [batch, seq]"
            )
        hidden = hidden.to(self.device_, torch.float32)
        attention_mask = attention_mask.to(self.device_)
        out = self.encoder(hidden, extended_mask(attention_mask, hidden.dtype))
        return pool(out, attention_mask, self.source.pooling, self.source.normalize)


def load_device_part(
    src: ModelSource,
    split: int,
    *,
    rho: float = 1.0,
    method: str = "structured-magnitude",
    device: str = "cpu",
    seed: int = 0,
    attn_impl: str = "sdpa",
) -> DevicePart:
    """Load (and prune to ``rho``) the device side of ``src`` split at ``split``."""
    check_split(src, split)
    rho, method = check_rho(rho), check_method(method)
    part = DevicePart(src, split, check_device(device), attn_impl)
    part.reprune(rho, method, seed)
    return part.eval()


def load_server_part(
    src: ModelSource,
    split: int,
    *,
    rho: float = 1.0,
    method: str = "structured-magnitude",
    device: str = "cpu",
    seed: int = 0,
    attn_impl: str = "sdpa",
) -> ServerPart:
    """Load (and prune to ``rho``) the server side of ``src`` split at ``split``."""
    check_split(src, split)
    rho, method = check_rho(rho), check_method(method)
    part = ServerPart(src, split, check_device(device), attn_impl)
    part.reprune(rho, method, seed)
    return part.eval()
