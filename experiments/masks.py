"""Pruning masks for the distortion measurements (fig3 and the measured-objective points).

These zero weights in place of removing them, so the pruned model keeps the dense model's shapes and
||W - W^||^2 is the sum of squares of the zeroed entries. Zeroing a head's Q/K/V rows and its output
columns, or a neuron's row, bias and output column, computes exactly what removing it computes, so
structured masks here measure the same distortion as the testbed's structured pruning (same budget rule:
round(rho * heads) heads, then FFN neurons up to rho of the layer's prunable count).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

_LINEARS = ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense",
            "intermediate.dense", "output.dense")


@dataclass
class MaskResult:
    kept: int
    total: int
    sq_error: float  # ||W - W^||^2 over the prunable tensors
    sq_norm: float  # ||W||^2 over the prunable tensors


def _linear(layer: nn.Module, name: str) -> nn.Linear:
    mod = layer
    for part in name.split("."):
        mod = getattr(mod, part)
    assert isinstance(mod, nn.Linear)
    return mod


def _zero(t: torch.Tensor, drop: torch.Tensor) -> float:
    err = float(t[drop].double().square().sum())
    t[drop] = 0.0
    return err


def unstructured_magnitude(tensors: list[torch.Tensor], rho: float) -> MaskResult:
    """Per tensor, keep the round(rho * numel) entries of largest magnitude (the paper's criterion)."""
    kept = total = 0
    err = norm = 0.0
    with torch.no_grad():
        for t in tensors:
            n = t.numel()
            k = min(n, max(0, round(rho * n)))
            norm += float(t.double().square().sum())
            flat = t.view(-1)
            drop = torch.ones(n, dtype=torch.bool)
            drop[torch.topk(flat.abs(), k, sorted=False).indices] = False
            err += _zero(flat, drop)
            kept += k
            total += n
    return MaskResult(kept, total, err, norm)


def bert_prunable(layers: list[nn.Module]) -> list[torch.Tensor]:
    return [getattr(_linear(layer, n), attr).data for layer in layers for n in _LINEARS for attr in ("weight", "bias")]


def bert_structured_magnitude(layers: list[nn.Module], rho: float, n_heads: int) -> MaskResult:
    """Per layer keep the heads and FFN neurons of largest L2 norm; zero the rest (equivalent to removal)."""
    kept = total = 0
    err = norm = 0.0
    with torch.no_grad():
        for layer in layers:
            q, k_, v, o = (_linear(layer, n) for n in _LINEARS[:4])
            inter, out = _linear(layer, "intermediate.dense"), _linear(layer, "output.dense")
            h, f = o.weight.shape[0], inter.weight.shape[0]
            d = h // n_heads
            prunable = 4 * (h * h + h) + 2 * h * f + f + h
            norm += sum(float(t.double().square().sum()) for t in bert_prunable([layer]))
            total += prunable
            if rho >= 1.0:
                kept += prunable
                continue
            head_sq = o.weight.square().sum(0)
            for lin in (q, k_, v):
                head_sq = head_sq + lin.weight.square().sum(1) + lin.bias.square()
            head_score = head_sq.view(n_heads, d).sum(1)
            neuron_score = inter.weight.square().sum(1) + inter.bias.square() + out.weight.square().sum(0)
            keep_heads = min(n_heads, max(0, round(rho * n_heads)))
            spare = rho * prunable - 2 * h - keep_heads * (4 * h * d + 3 * d)
            keep_neurons = min(f, max(0, round(spare / (2 * h + 1))))
            heads = torch.argsort(head_score, descending=True, stable=True)[keep_heads:]
            neurons = torch.argsort(neuron_score, descending=True, stable=True)[keep_neurons:]
            rows = (heads[:, None] * d + torch.arange(d)[None, :]).reshape(-1)
            row_mask = torch.zeros(h, dtype=torch.bool)
            row_mask[rows] = True
            n_mask = torch.zeros(f, dtype=torch.bool)
            n_mask[neurons] = True
            for lin in (q, k_, v):
                err += _zero(lin.weight.data, row_mask[:, None].expand_as(lin.weight))
                err += _zero(lin.bias.data, row_mask)
            err += _zero(o.weight.data, row_mask[None, :].expand_as(o.weight))
            err += _zero(inter.weight.data, n_mask[:, None].expand_as(inter.weight))
            err += _zero(inter.bias.data, n_mask)
            err += _zero(out.weight.data, n_mask[None, :].expand_as(out.weight))
            kept += keep_heads * (4 * h * d + 3 * d) + keep_neurons * (2 * h + 1) + 2 * h
    return MaskResult(kept, total, err, norm)


def mlp_structured_magnitude(linears: list[nn.Linear], rho: float) -> MaskResult:
    """Per hidden layer keep round(sqrt(rho) * width) neurons of largest incoming-row norm; zero row, bias, column.

    A neuron owns a row of its layer and a column of the next, so keeping sqrt(rho) of the neurons keeps about
    rho of the weights; the achieved ratio is reported.
    """
    norm = sum(float(lin.weight.detach().double().square().sum()) for lin in linears)
    total = sum(lin.weight.numel() for lin in linears)
    err = 0.0
    with torch.no_grad():
        for i, lin in enumerate(linears[:-1]):
            width = lin.weight.shape[0]
            keep = min(width, max(1, round(rho ** 0.5 * width)))
            drop_idx = torch.argsort(lin.weight.square().sum(1), descending=True, stable=True)[keep:]
            mask = torch.zeros(width, dtype=torch.bool)
            mask[drop_idx] = True
            err += _zero(lin.weight.data, mask[:, None].expand_as(lin.weight))
            lin.bias.data[mask] = 0.0
            nxt = linears[i + 1]
            err += _zero(nxt.weight.data, mask[None, :].expand_as(nxt.weight))
    kept = sum(int((lin.weight != 0).sum()) for lin in linears)
    return MaskResult(kept, total, err, norm)
