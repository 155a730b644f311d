"""The unsplit, unpruned reference: Hugging Face ``BertModel`` + the model's pooling.

It shares no layer code with ``parts.py`` on purpose: tests check that device
part + server part reproduce it at every split.
"""

from __future__ import annotations

import copy
import logging

import torch
from torch import Tensor, nn
from transformers import BertModel

from splitbed.errors import InvalidArgument
from splitbed.model.layers import ATTN_IMPLS, pool
from splitbed.model.parts import check_device
from splitbed.model.source import ModelSource
from splitbed.model.weights import WeightReader

logger = logging.getLogger(__name__)

_IGNORED = ("embeddings.position_ids", "pooler.dense.weight", "pooler.dense.bias")


class FullModel(nn.Module):
    """callable(input_ids, attention_mask, token_type_ids) -> embedding [B, H]."""

    def __init__(self, src: ModelSource, bert: BertModel, device: torch.device) -> None:
        super().__init__()
        self.source = src
        self.bert = bert
        self.device_ = device

    def forward(self, input_ids: Tensor, attention_mask: Tensor, token_type_ids: Tensor | None = None) -> Tensor:
        dev = self.device_
        out = self.bert(
            input_ids=input_ids.to(dev),
            attention_mask=attention_mask.to(dev),
            token_type_ids=None if token_type_ids is None else token_type_ids.to(dev),
        )
        return pool(out.last_hidden_state, attention_mask.to(dev), self.source.pooling, self.source.normalize)


def load_full_model(src: ModelSource, device: str = "cpu", attn_impl: str = "sdpa") -> FullModel:
    """The whole model in one piece, through transformers' own ``BertModel``."""
    if attn_impl not in ATTN_IMPLS:
        raise InvalidArgument(f"attention implementation {attn_impl!r} not in {ATTN_IMPLS}")
    dev = check_device(device)
    bert = BertModel(copy.deepcopy(src.config), add_pooling_layer=False)
    bert.set_attn_implementation(attn_impl)
    with WeightReader(src.weights_path) as reader:
        state = reader.get_many(reader.keys())
    missing, unexpected = bert.load_state_dict(state, strict=False)
    bad = [k for k in (*missing, *unexpected) if k not in _IGNORED]
    if bad:
        raise InvalidArgument(f"{src.weights_path} does not match the BERT config: {bad[:5]}")
    bert = bert.to(dev)  # type: ignore[arg-type]  # transformers types .to() for dtypes only
    return FullModel(src, bert.eval(), dev).eval()
