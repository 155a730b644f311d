"""Model core: load, split, prune and profile a BERT-family sentence-embedding model.

See ``source`` (where weights come from), ``parts`` (device / server halves),
``prune`` (what counts as prunable and how each method prunes) and
``profile`` (analytic FLOPs, parameters, payload bytes).
"""

from splitbed.model.parts import DevicePart, ServerPart, load_device_part, load_server_part
from splitbed.model.profile import (
    PartProfile,
    SplitProfile,
    payload_bytes,
    profile_part,
    split_table,
)
from splitbed.model.prune import PRUNABLE, PRUNABLE_LINEARS, PruneReport
from splitbed.model.reference import FullModel, load_full_model
from splitbed.model.source import RANDOM_MODELS, ModelSource, resolve_model
from splitbed.model.tokenizer import load_tokenizer, tokenize

__all__ = [
    "PRUNABLE",
    "PRUNABLE_LINEARS",
    "RANDOM_MODELS",
    "DevicePart",
    "FullModel",
    "ModelSource",
    "PartProfile",
    "PruneReport",
    "ServerPart",
    "SplitProfile",
    "load_device_part",
    "load_full_model",
    "load_server_part",
    "load_tokenizer",
    "payload_bytes",
    "profile_part",
    "resolve_model",
    "split_table",
    "tokenize",
]
