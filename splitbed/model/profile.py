"""Analytic profiles of model parts: parameters, FLOPs per inference, uploaded bytes.

FLOPs count matrix multiplications only, at 2 FLOPs per multiply-accumulate,
for batch 1 at a given sequence length S: the six Linear layers of every
encoder layer and the two attention matmuls (Q K^T and A V). Element-wise work
(embedding lookups and adds, LayerNorm, GELU, softmax, bias adds, pooling) is
left out, as ``torch.utils.flop_counter.FlopCounterMode`` leaves it out. With
attention width ``a = heads * head_dim`` and ``f`` FFN neurons, one layer costs

    8 S H a  (Q, K, V, attention output)  +  4 S^2 a  (QK^T, AV)  +  4 S H f  (FFN)

which for all-MiniLM-L6-v2 at S = 128 is 0.478 GFLOPs a layer, 2.87 GFLOPs in
all; for bert-base 1.862 a layer, 22.35 in all. Structured pruning lowers a and
f (read from the pruned tensors' shapes); unstructured pruning zeroes weights
but dense kernels still do every multiply, so its FLOPs stay dense.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from transformers import BertConfig

from splitbed.errors import InvalidArgument
from splitbed.kinds import ENCODINGS, Encoding
from splitbed.model.parts import DevicePart, ServerPart
from splitbed.model.prune import layer_prunable
from splitbed.model.source import ModelSource

logger = logging.getLogger(__name__)

@dataclass(frozen=True)
class PartProfile:
    side: str
    split: int
    params: int  # params present, minus prunable ones zeroed by unstructured pruning
    prunable_params: int  # kept prunable params
    flops: int  # per inference, batch 1, at seq_len
    seq_len: int


@dataclass(frozen=True)
class SplitProfile:
    split: int
    device_flops: int
    server_flops: int
    device_params: int
    server_params: int
    device_prunable: int
    server_prunable: int
    payload_bytes: dict[Encoding, int]  # hidden state uploaded per inference, per wire encoding


def layer_flops(seq_len: int, hidden: int, attn_width: int, ffn: int) -> int:
    s = seq_len
    return 8 * s * hidden * attn_width + 4 * s * s * attn_width + 4 * s * hidden * ffn


def embedding_params(config: BertConfig) -> int:
    h = int(config.hidden_size)
    return (int(config.vocab_size) + int(config.max_position_embeddings) + int(config.type_vocab_size)) * h + 2 * h


def layer_params(config: BertConfig) -> int:
    """All parameters of one dense encoder layer (prunable + two LayerNorms)."""
    return layer_prunable(config) + 4 * int(config.hidden_size)


def payload_bytes(hidden_size: int, seq_len: int, encoding: Encoding | str) -> int:
    """Bytes of one uploaded hidden state [1, S, H]; int8 carries one fp32 scale per hidden channel."""
    if hidden_size < 1 or seq_len < 1:
        raise InvalidArgument(f"hidden_size {hidden_size} and seq_len {seq_len} must be positive")
    n = hidden_size * seq_len
    if encoding == "fp32":
        return 4 * n
    if encoding == "fp16":
        return 2 * n
    if encoding == "int8":
        return n + 4 * hidden_size
    raise InvalidArgument(f"unknown wire encoding {encoding!r}; expected one of {ENCODINGS}")


def _check_seq(seq_len: int, config: BertConfig) -> None:
    if not 1 <= seq_len <= int(config.max_position_embeddings):
        raise InvalidArgument(f"seq_len {seq_len} must lie in [1, {config.max_position_embeddings}]")


def profile_part(part: DevicePart | ServerPart, seq_len: int) -> PartProfile:
    """Profile of ``part`` as it is pruned now."""
    config = part.source.config
    _check_seq(seq_len, config)
    flops = sum(
        layer_flops(
            seq_len,
            int(config.hidden_size),
            layer.attention.heads.query.out_features,
            layer.intermediate.dense.out_features,
        )
        for layer in part.layers()
    )
    return PartProfile(
        side=part.side,
        split=part.split,
        params=part.report.params_after,
        prunable_params=part.report.kept_prunable,
        flops=flops,
        seq_len=seq_len,
    )


def split_table(src: ModelSource, seq_len: int) -> list[SplitProfile]:
    """Dense profile of every split point L in [0, n], computed from the config alone."""
    config = src.config
    _check_seq(seq_len, config)
    h = src.hidden_size
    per_layer = layer_flops(seq_len, h, h, int(config.intermediate_size))
    payload = {enc: payload_bytes(h, seq_len, enc) for enc in ENCODINGS}
    n = src.n_layers
    return [
        SplitProfile(
            split=split,
            device_flops=split * per_layer,
            server_flops=(n - split) * per_layer,
            device_params=embedding_params(config) + split * layer_params(config),
            server_params=(n - split) * layer_params(config),
            device_prunable=split * layer_prunable(config),
            server_prunable=(n - split) * layer_prunable(config),
            payload_bytes=dict(payload),
        )
        for split in range(n + 1)
    ]
