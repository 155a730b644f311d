"""The BERT building blocks both sides run: embeddings, a prunable encoder layer, masks, pooling.

Module and parameter names mirror Hugging Face's ``BertModel`` so that a part's
``state_dict`` keys are exactly the keys of the safetensors file
(``encoder.layer.3.attention.self.query.weight``). The layer does its own
attention so that it can run with any number of heads, including zero after
structured pruning, and so that the device and the server build the attention
mask the same way (``extended_mask``).
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from transformers import BertConfig
from transformers.activations import ACT2FN

from splitbed.errors import InvalidArgument

logger = logging.getLogger(__name__)

ATTN_IMPLS = ("sdpa", "eager")


def linear_from(weight: Tensor, bias: Tensor) -> nn.Linear:
    """An ``nn.Linear`` that owns the given tensors (no random init, no copy)."""
    # Built 1x1 on meta (no init work, no zero-size init warning), then given the real tensors.
    lin = nn.Linear(1, 1, device="meta")
    lin.in_features, lin.out_features = weight.shape[1], weight.shape[0]
    lin.weight = nn.Parameter(weight, requires_grad=False)
    lin.bias = nn.Parameter(bias, requires_grad=False)
    return lin


def layer_norm_from(weight: Tensor, bias: Tensor, eps: float) -> nn.LayerNorm:
    ln = nn.LayerNorm(weight.shape[0], eps=eps, device="meta")
    ln.weight = nn.Parameter(weight, requires_grad=False)
    ln.bias = nn.Parameter(bias, requires_grad=False)
    return ln


def embedding_from(weight: Tensor) -> nn.Embedding:
    emb = nn.Embedding(weight.shape[0], weight.shape[1], device="meta")
    emb.weight = nn.Parameter(weight, requires_grad=False)
    return emb


def extended_mask(attention_mask: Tensor, dtype: torch.dtype) -> Tensor | None:
    """Additive attention bias [B, 1, 1, S] from a 0/1 mask [B, S]; ``None`` when nothing is padded.

    Both sides call this one function, so the device and the server apply the
    identical mask to the identical scores.
    """
    if attention_mask.dim() != 2:
        raise InvalidArgument(f"attention_mask must be [batch, seq], got shape {tuple(attention_mask.shape)}")
    if bool((attention_mask != 0).all()):
        return None
    keep = (attention_mask != 0).to(dtype)
    return ((1.0 - keep) * torch.finfo(dtype).min)[:, None, None, :]


class Embeddings(nn.Module):
    """Word + position + token-type embeddings, then LayerNorm (absolute positions)."""

    def __init__(self, tensors: dict[str, Tensor], config: BertConfig) -> None:
        super().__init__()
        self.word_embeddings = embedding_from(tensors["word_embeddings.weight"])
        self.position_embeddings = embedding_from(tensors["position_embeddings.weight"])
        self.token_type_embeddings = embedding_from(tensors["token_type_embeddings.weight"])
        self.LayerNorm = layer_norm_from(
            tensors["LayerNorm.weight"], tensors["LayerNorm.bias"], float(config.layer_norm_eps)
        )

    def forward(self, input_ids: Tensor, token_type_ids: Tensor | None = None) -> Tensor:
        seq = input_ids.shape[1]
        if seq > self.position_embeddings.num_embeddings:
            raise InvalidArgument(f"sequence length {seq} exceeds {self.position_embeddings.num_embeddings}")
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        positions = torch.arange(seq, device=input_ids.device)[None, :]
        x = self.word_embeddings(input_ids) + self.token_type_embeddings(token_type_ids)
        x = x + self.position_embeddings(positions)
        return self.LayerNorm(x)


class SelfAttention(nn.Module):
    """Q, K, V projections of the heads still present; ``num_attention_heads`` may be 0."""

    def __init__(self, query: nn.Linear, key: nn.Linear, value: nn.Linear, head_size: int) -> None:
        super().__init__()
        self.query, self.key, self.value = query, key, value
        self.attention_head_size = head_size
        self.num_attention_heads = query.out_features // head_size
        self.all_head_size = self.num_attention_heads * head_size


class DenseNorm(nn.Module):
    """``dense`` then residual add then ``LayerNorm`` (BertSelfOutput / BertOutput)."""

    def __init__(self, dense: nn.Linear, norm: nn.LayerNorm) -> None:
        super().__init__()
        self.dense = dense
        self.LayerNorm = norm

    def forward(self, x: Tensor, residual: Tensor) -> Tensor:
        return self.LayerNorm(self.dense(x) + residual)


class Attention(nn.Module):
    def __init__(self, self_attn: SelfAttention, output: DenseNorm) -> None:
        super().__init__()
        self.add_module("self", self_attn)  # HF's name; not reachable as a plain attribute
        self.output = output

    @property
    def heads(self) -> SelfAttention:
        module = self._modules["self"]
        assert isinstance(module, SelfAttention)
        return module


class Intermediate(nn.Module):
    def __init__(self, dense: nn.Linear, act: str) -> None:
        super().__init__()
        self.dense = dense
        self.act_name = act
        self.act = ACT2FN[act]

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.dense(x))


class EncoderLayer(nn.Module):
    """One BERT encoder layer built from (possibly pruned) tensors keyed relative to the layer."""

    def __init__(self, tensors: dict[str, Tensor], config: BertConfig, attn_impl: str = "sdpa") -> None:
        super().__init__()
        if attn_impl not in ATTN_IMPLS:
            raise InvalidArgument(f"attention implementation {attn_impl!r} not in {ATTN_IMPLS}")
        if not isinstance(config.hidden_act, str):
            raise InvalidArgument("hidden_act must be a named activation")
        self.attn_impl = attn_impl
        eps = float(config.layer_norm_eps)
        head_size = int(config.hidden_size) // int(config.num_attention_heads)

        def lin(name: str) -> nn.Linear:
            return linear_from(tensors[name + ".weight"], tensors[name + ".bias"])

        def norm(name: str) -> nn.LayerNorm:
            return layer_norm_from(tensors[name + ".weight"], tensors[name + ".bias"], eps)

        self_attn = SelfAttention(
            lin("attention.self.query"), lin("attention.self.key"), lin("attention.self.value"), head_size
        )
        self.attention = Attention(
            self_attn, DenseNorm(lin("attention.output.dense"), norm("attention.output.LayerNorm"))
        )
        self.intermediate = Intermediate(lin("intermediate.dense"), config.hidden_act)
        self.output = DenseNorm(lin("output.dense"), norm("output.LayerNorm"))

    def forward(self, hidden: Tensor, mask: Tensor | None) -> Tensor:
        heads = self.attention.heads
        batch, seq, _ = hidden.shape
        n_heads, head_size = heads.num_attention_heads, heads.attention_head_size
        if n_heads == 0:
            context = hidden.new_zeros(batch, seq, 0)
        else:
            shape = (batch, seq, n_heads, head_size)
            q = heads.query(hidden).view(shape).transpose(1, 2)
            k = heads.key(hidden).view(shape).transpose(1, 2)
            v = heads.value(hidden).view(shape).transpose(1, 2)
            scale = head_size**-0.5
            if self.attn_impl == "sdpa":
                ctx = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale)
            else:
                scores = torch.matmul(q, k.transpose(-1, -2)) * scale
                if mask is not None:
                    scores = scores + mask
                ctx = torch.matmul(torch.softmax(scores, dim=-1), v)
            context = ctx.transpose(1, 2).reshape(batch, seq, n_heads * head_size)
        attn_out = self.attention.output(context, hidden)
        return self.output(self.intermediate(attn_out), attn_out)


class Encoder(nn.Module):
    """Encoder layers keyed by their global index, so keys read ``encoder.layer.<i>.*``."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.ModuleDict()

    def ordered(self) -> list[EncoderLayer]:
        # Re-pruning deletes and re-inserts layers, so the dict's order is not the layer order.
        return [self.layer[k] for k in sorted(self.layer.keys(), key=int)]  # type: ignore[misc]

    def forward(self, hidden: Tensor, mask: Tensor | None) -> Tensor:
        for module in self.ordered():
            hidden = module(hidden, mask)
        return hidden


def pool(hidden: Tensor, attention_mask: Tensor, pooling: str, normalize: bool) -> Tensor:
    """Sentence embedding [B, H]: masked mean (or [CLS]) pooling, then optional L2 normalisation."""
    if pooling == "mean":
        keep = attention_mask.to(hidden.dtype).unsqueeze(-1)
        summed = (hidden * keep).sum(dim=1)
        out = summed / keep.sum(dim=1).clamp(min=1e-9)
    elif pooling == "cls":
        out = hidden[:, 0]
    else:
        raise InvalidArgument(f"pooling {pooling!r} not in ('mean', 'cls')")
    return F.normalize(out, p=2, dim=1) if normalize else out
