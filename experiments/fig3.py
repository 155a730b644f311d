"""Fig 3: output distortion against parameter distortion as the kept ratio changes.

Normalisation (the paper plots both on one axis, relative to the unpruned model):
- output distortion = mean over the inputs of ||y - y^||^2 / mean of ||y||^2, y the dense model's output
  (the embedding for MiniLM and bert-base, the reconstruction for the FCDNNs), y^ the pruned model's;
- parameter distortion = ||W - W^||^2 / ||W||^2 over the prunable weights (transformers: the weights and
  biases of every encoder layer's Q, K, V, attention-output, FFN Linear layers; FCDNNs: every Linear weight).
Both are 0 for the dense model and 1 when everything is pruned to zero output. The raw figures are kept in
`output_mse` and `parameter_sq_error`.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import nn

from experiments import fcdnn, masks
from experiments.config import Fig3Spec
from experiments.retrieval import corpus_texts

logger = logging.getLogger(__name__)


def _out_distortion(dense: torch.Tensor, pruned: torch.Tensor) -> tuple[float, float]:
    mse = float((dense - pruned).double().square().sum(1).mean())
    return mse / float(dense.double().square().sum(1).mean()), mse / dense.shape[1]


def fcdnn_rows(name: str, spec: Fig3Spec) -> Iterator[tuple[str, float, Callable[[], dict[str, Any]]]]:
    state: dict[str, Any] = {}

    def trained() -> tuple[nn.Sequential, torch.Tensor, torch.Tensor]:
        if not state:
            t0 = time.perf_counter()
            model, x_test, mse = fcdnn.train(name, spec.train_epochs)
            logger.info("%s trained in %.1f s, held-out MSE %.4f", name, time.perf_counter() - t0, mse)
            x = x_test[: max(spec.n_inputs, 64)]
            with torch.no_grad():
                state["v"] = (model, x, model(x))
        return state["v"]  # type: ignore[no-any-return]

    for method in spec.methods:
        for rho in spec.keep_ratios:
            def one(method: str = method, rho: float = rho) -> dict[str, Any]:
                model, x, y = trained()
                pruned = copy.deepcopy(model)
                lins = fcdnn.linears(pruned)
                if method == "unstructured-magnitude":
                    res = masks.unstructured_magnitude([lin.weight.data for lin in lins], rho)
                else:
                    res = masks.mlp_structured_magnitude(lins, rho)
                with torch.no_grad():
                    y_hat = pruned(x)
                return _row(name, method, rho, y, y_hat, res, len(x))
            yield method, rho, one


def _row(model: str, method: str, rho: float, y: torch.Tensor, y_hat: torch.Tensor, res: masks.MaskResult,
         n: int) -> dict[str, Any]:
    rel, mse = _out_distortion(y, y_hat)
    return {"model": model, "method": method, "keep_ratio": rho, "output_distortion": rel,
            "parameter_distortion": res.sq_error / res.sq_norm, "achieved_keep_ratio": res.kept / res.total,
            "output_mse": mse, "parameter_sq_error": res.sq_error, "n_inputs": n}


def bert_inputs(src: Any, n: int, seq_len: int = 64) -> dict[str, torch.Tensor]:
    from splitbed.model import load_tokenizer, tokenize

    texts = corpus_texts(n)
    return tokenize(load_tokenizer(src), texts, max_seq_len=src.max_seq_len, pad_to=min(seq_len, src.max_seq_len))


def embed(full: Any, inputs: dict[str, torch.Tensor], batch: int = 8) -> torch.Tensor:
    outs = []
    with torch.inference_mode():
        for i in range(0, inputs["input_ids"].shape[0], batch):
            outs.append(full(inputs["input_ids"][i:i + batch], inputs["attention_mask"][i:i + batch],
                             inputs["token_type_ids"][i:i + batch]))
    return torch.cat(outs).float()


def prune_bert(full: Any, layers: range, method: str, rho: float) -> masks.MaskResult:
    """Prune (zero) the given encoder layers of a loaded FullModel in place."""
    enc = [full.bert.encoder.layer[i] for i in layers]
    if method == "unstructured-magnitude":
        return masks.unstructured_magnitude(masks.bert_prunable(enc), rho)
    return masks.bert_structured_magnitude(enc, rho, int(full.source.config.num_attention_heads))


def transformer_rows(name: str, spec: Fig3Spec) -> Iterator[tuple[str, float, Callable[[], dict[str, Any]]]]:
    state: dict[str, Any] = {}

    def dense() -> tuple[Any, dict[str, torch.Tensor], torch.Tensor, dict[str, torch.Tensor]]:
        if not state:
            from safetensors.torch import load_file

            from splitbed.model import load_full_model, resolve_model

            src = resolve_model(name)
            full = load_full_model(src)
            n = spec.n_inputs if name == "minilm" else max(2, spec.n_inputs // 2)
            inputs = bert_inputs(src, n)
            # Re-pruning starts from the dense weights each time (never cumulative).
            weights = {k: v for k, v in load_file(str(src.weights_path)).items() if ".encoder.layer." in k
                       or k.startswith("encoder.layer.")}
            state["v"] = (full, inputs, embed(full, inputs), weights)
        return state["v"]  # type: ignore[no-any-return]

    label = "bert-base (random init)" if name == "bert-base" else "all-MiniLM-L6-v2"
    for method in spec.methods:
        for rho in spec.keep_ratios:
            def one(method: str = method, rho: float = rho) -> dict[str, Any]:
                full, inputs, y, weights = dense()
                restore(full, weights)
                res = prune_bert(full, range(full.source.n_layers), method, rho)
                y_hat = embed(full, inputs)
                restore(full, weights)
                return _row(label, method, rho, y, y_hat, res, y.shape[0])
            yield method, rho, one


def restore(full: Any, weights: dict[str, torch.Tensor]) -> None:
    state = full.bert.state_dict()
    with torch.no_grad():
        for key, value in weights.items():
            k = key.removeprefix("bert.")
            if k in state:
                state[k].copy_(value)


def jobs(spec: Fig3Spec) -> Iterator[tuple[str, str, float, Callable[[], dict[str, Any]]]]:
    """(model label, method, keep ratio, compute-the-row) for every fig3 point, lazily."""
    torch.set_num_threads(1)
    for name in spec.models:
        gen = fcdnn_rows(name, spec) if name.startswith("fcdnn") else transformer_rows(name, spec)
        label = {"bert-base": "bert-base (random init)", "minilm": "all-MiniLM-L6-v2"}.get(name, name)
        for method, rho, fn in gen:
            yield label, method, rho, fn
