"""Tokenizer loading (local folder only) and batch tokenisation."""

from __future__ import annotations

import logging
from typing import Any

import torch
from transformers import AutoTokenizer

from splitbed.errors import InvalidArgument
from splitbed.model.source import ModelSource

logger = logging.getLogger(__name__)


def load_tokenizer(src: ModelSource) -> Any:
    """The model's tokenizer, read from its local folder; never touches a hub."""
    return AutoTokenizer.from_pretrained(str(src.tokenizer_dir), local_files_only=True)


def tokenize(tokenizer: Any, texts: list[str], max_seq_len: int, pad_to: int | None = None) -> dict[str, torch.Tensor]:
    """``input_ids``, ``attention_mask``, ``token_type_ids`` as int64 tensors [B, S].

    Texts are truncated at ``max_seq_len`` tokens (special tokens included).
    Without ``pad_to`` the batch is padded to its longest text; with it every
    row is truncated/padded to exactly ``pad_to`` tokens (fixed-shape
    benchmarks), which must not exceed ``max_seq_len``.
    """
    if isinstance(texts, str) or not texts:
        raise InvalidArgument("texts must be a non-empty list of strings")
    if max_seq_len < 2:
        raise InvalidArgument(f"max_seq_len {max_seq_len} is too small (need room for [CLS] and [SEP])")
    if pad_to is not None and not 2 <= pad_to <= max_seq_len:
        raise InvalidArgument(f"pad_to {pad_to} must lie in [2, max_seq_len={max_seq_len}]")
    enc = tokenizer(
        list(texts),
        padding="max_length" if pad_to is not None else "longest",
        truncation=True,
        max_length=pad_to if pad_to is not None else max_seq_len,
        return_tensors="pt",
        return_token_type_ids=True,
        return_attention_mask=True,
    )
    return {k: enc[k].to(torch.long) for k in ("input_ids", "attention_mask", "token_type_ids")}
