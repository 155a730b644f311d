"""Pruning of one side's encoder layers to a kept-parameter ratio rho.

What counts (``PRUNABLE``): the weights AND biases of the six Linear layers of
every encoder layer on the side being pruned -- attention query, key, value,
attention output dense, FFN intermediate dense, FFN output dense. Embeddings,
LayerNorms and the (unused) HF pooler never count and are never pruned.
``rho = kept prunable / total prunable`` of that side; rho = 1 leaves the side
dense and untouched.

Methods (all deterministic given ``seed``; all start from the dense weights):

- ``structured-magnitude``: per layer, keep ``round(rho * heads)`` attention
  heads, then as many FFN neurons as bring the layer's kept count nearest to
  ``rho`` of its prunable parameters. Heads are ranked by the L2 norm of their
  Q/K/V rows (weights and biases) and attention-output columns, neurons by the
  norm of their intermediate row (and bias) and FFN-output column. Removed heads
  and neurons are PHYSICALLY cut out of the Linear layers, so FLOPs, latency and
  memory drop. A head costs ``4*H*d + 3*d`` parameters, a neuron ``2*H + 1``;
  the two output biases (``2*H``) always stay.
- ``structured-random``: the same budget, heads and neurons drawn at random.
- ``unstructured-magnitude``: per tensor, keep the ``round(rho * numel)``
  entries of largest magnitude and zero the rest; shapes are unchanged (the
  paper's scheme: no speedup on dense kernels).
- ``unstructured-random``: per tensor, keep a random ``round(rho * numel)``.

Pruning reads and cuts one tensor at a time, so a side never holds more
than one dense tensor beyond what it keeps.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor
from transformers import BertConfig

from splitbed.errors import InvalidArgument
from splitbed.kinds import PRUNE_METHODS

logger = logging.getLogger(__name__)

# Linear layers (relative to ``encoder.layer.<i>.``) whose weight and bias count as prunable.
PRUNABLE_LINEARS = (
    "attention.self.query",
    "attention.self.key",
    "attention.self.value",
    "attention.output.dense",
    "intermediate.dense",
    "output.dense",
)
PRUNABLE = (
    "weights and biases of the attention query/key/value/output-dense and FFN intermediate/output "
    "Linear layers of the side's encoder layers; embeddings and LayerNorms do not count"
)


@dataclass(frozen=True)
class PruneReport:
    method: str
    target_rho: float
    achieved_rho: float
    kept_prunable: int
    total_prunable: int
    params_after: int  # params present (structured) minus zeroed prunable ones (unstructured), whole part
    structured: bool


def check_method(method: str) -> str:
    if method not in PRUNE_METHODS:
        raise InvalidArgument(f"unknown pruning method {method!r}; expected one of {PRUNE_METHODS}")
    return method


def check_rho(rho: float) -> float:
    try:
        value = float(rho)
    except (TypeError, ValueError):
        raise InvalidArgument(f"rho {rho!r} is not a number") from None
    if not (0.0 < value <= 1.0) or math.isnan(value):
        raise InvalidArgument(f"rho {rho!r} must lie in (0, 1]")
    return value


def layer_prunable(config: BertConfig) -> int:
    """Prunable parameters of one dense encoder layer."""
    h, f = int(config.hidden_size), int(config.intermediate_size)
    return 4 * (h * h + h) + (h * f + f) + (f * h + h)


def structured_budget(config: BertConfig, rho: float) -> tuple[int, int]:
    """(heads, FFN neurons) a layer keeps at ratio rho under structured pruning."""
    h, f = int(config.hidden_size), int(config.intermediate_size)
    n_heads = int(config.num_attention_heads)
    d = h // n_heads
    head_cost, neuron_cost, fixed = 4 * h * d + 3 * d, 2 * h + 1, 2 * h
    heads = min(n_heads, max(0, round(rho * n_heads)))
    spare = rho * layer_prunable(config) - fixed - heads * head_cost
    neurons = min(f, max(0, round(spare / neuron_cost)))
    return heads, neurons


def _generator(seed: int, layer: int, salt: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 1_000_003 + layer * 97 + salt)


def _top(scores: Tensor, k: int) -> Tensor:
    order = torch.argsort(scores, descending=True, stable=True)
    return torch.sort(order[:k]).values


def _pick(n: int, k: int, scores: Tensor | None, gen: torch.Generator) -> Tensor:
    if scores is not None:
        return _top(scores, k)
    return torch.sort(torch.randperm(n, generator=gen)[:k]).values


def prune_layer(
    read: Callable[[str], Tensor], config: BertConfig, rho: float, method: str, seed: int, layer: int
) -> tuple[dict[str, Tensor], int]:
    """The pruned prunable tensors of one layer, and how many prunable parameters they keep.

    ``read(key)`` returns a fresh dense tensor (key relative to the layer) from
    the weights file each time it is called. Tensors are read one at a time and
    cut down (or zeroed in place) before the next is read, so pruning never
    holds a whole dense layer: structured magnitude pruning reads each tensor
    twice, once to score heads and neurons and once to slice it.
    """
    if rho >= 1.0:
        return {k: read(k) for k in _prunable_keys()}, layer_prunable(config)
    if method.startswith("structured"):
        return _structured(read, config, rho, method == "structured-magnitude", seed, layer)
    return _unstructured(read, rho, method == "unstructured-magnitude", seed, layer)


def _prunable_keys() -> list[str]:
    return [n + s for n in PRUNABLE_LINEARS for s in (".weight", ".bias")]


_QKV = ("attention.self.query", "attention.self.key", "attention.self.value")


def _magnitude_scores(read: Callable[[str], Tensor], n_heads: int, d: int) -> tuple[Tensor, Tensor]:
    """L2 norms of every head (Q/K/V rows + biases, output columns) and every FFN neuron."""

    # vector_norm reduces without a squared copy of the weight matrix.
    def sq(key: str, dim: int) -> Tensor:
        return torch.linalg.vector_norm(read(key), dim=dim).square()

    head_sq = sq("attention.output.dense.weight", 0)
    for name in _QKV:
        head_sq += sq(name + ".weight", 1)
        head_sq += read(name + ".bias").square()
    neuron_sq = sq("intermediate.dense.weight", 1) + read("intermediate.dense.bias").square()
    neuron_sq += sq("output.dense.weight", 0)
    return head_sq.view(n_heads, d).sum(dim=1).sqrt(), neuron_sq.sqrt()


def _structured(
    read: Callable[[str], Tensor], config: BertConfig, rho: float, magnitude: bool, seed: int, layer: int
) -> tuple[dict[str, Tensor], int]:
    h, f = int(config.hidden_size), int(config.intermediate_size)
    n_heads = int(config.num_attention_heads)
    d = h // n_heads
    keep_heads, keep_neurons = structured_budget(config, rho)
    head_scores, neuron_scores = _magnitude_scores(read, n_heads, d) if magnitude else (None, None)
    heads = _pick(n_heads, keep_heads, head_scores, _generator(seed, layer, 1))
    neurons = _pick(f, keep_neurons, neuron_scores, _generator(seed, layer, 2))
    rows = (heads[:, None] * d + torch.arange(d)[None, :]).reshape(-1)

    out: dict[str, Tensor] = {}
    for name in _QKV:
        out[name + ".weight"] = read(name + ".weight").index_select(0, rows)
        out[name + ".bias"] = read(name + ".bias").index_select(0, rows)
    out["attention.output.dense.weight"] = read("attention.output.dense.weight").index_select(1, rows)
    out["attention.output.dense.bias"] = read("attention.output.dense.bias")
    out["intermediate.dense.weight"] = read("intermediate.dense.weight").index_select(0, neurons)
    out["intermediate.dense.bias"] = read("intermediate.dense.bias").index_select(0, neurons)
    out["output.dense.weight"] = read("output.dense.weight").index_select(1, neurons)
    out["output.dense.bias"] = read("output.dense.bias")
    kept = keep_heads * (4 * h * d + 3 * d) + keep_neurons * (2 * h + 1) + 2 * h
    return out, kept


def _unstructured(
    read: Callable[[str], Tensor], rho: float, magnitude: bool, seed: int, layer: int
) -> tuple[dict[str, Tensor], int]:
    out: dict[str, Tensor] = {}
    kept = 0
    for salt, key in enumerate(_prunable_keys(), start=10):
        tensor = read(key)
        n = tensor.numel()
        k = min(n, max(0, round(rho * n)))
        if magnitude:
            # topk is ~7x faster than a full argsort here; re-pruning MiniLM must stay under 1 s.
            idx = torch.topk(tensor.abs().reshape(-1), k, sorted=False).indices
        else:
            idx = torch.randperm(n, generator=_generator(seed, layer, salt))[:k]
        drop = torch.ones(n, dtype=torch.bool)
        drop[idx] = False
        tensor.masked_fill_(drop.view_as(tensor), 0.0)
        out[key] = tensor
        kept += k
    return out, kept
