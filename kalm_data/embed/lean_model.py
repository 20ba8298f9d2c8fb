"""A sentence-transformers model folder run with transformers alone, when it is the common
Transformer -> Pooling -> (Normalize) stack.

Why: importing sentence-transformers pulls in its trainers, cross- and sparse encoders and
their dependencies (datasets, scikit-learn, peft, ...), none of which the teacher uses; the
teacher needs only the model's forward pass and its pooling. Without them, a process that
holds the teacher starts in 0.60x the time with 0.77x the resident memory once loaded
(``benchmarks/bench_teacher_memory.py``: 476 against 618 MB for MiniLM).

Contract: ``load_lean(name_or_path, device, dtype)`` returns a ``LeanModel`` whose
``embed(features)`` gives the same bits as ``SentenceTransformer(...)(features)
["sentence_embedding"]`` on the same padded batch, or ``None`` when the model is anything else
(more modules, a Dense layer, a pooling mode other than cls/mean/max, lower-casing, custom
model or tokenizer arguments, a folder without ``modules.json``): the caller then loads it with
sentence-transformers. ``name_or_path`` is a model folder or a Hugging Face hub id.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

#: Keys of ``sentence_bert_config.json`` that the lean path understands (any other key, or
#: a non-empty ``*_args``, means the model wants sentence-transformers' own loading).
_TRANSFORMER_KEYS = {"max_seq_length", "do_lower_case", "model_args", "tokenizer_args"}
_TRANSFORMER_KEYS |= {"config_args", "processor_kwargs", "config_kwargs", "model_kwargs"}
#: Keys that sentence-transformers >= 6 saves, understood when they have these values (a text
#: model's plain forward pass; the max length is then the tokenizer's ``model_max_length``).
_TRANSFORMER_DEFAULTS = {
    "transformer_task": "feature-extraction",
    "modality_config": {"text": {"method": "forward", "method_output_name": "last_hidden_state"}},
    "module_output_name": "token_embeddings",
}
_POOLING_FLAGS = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_max_tokens": "max",
}


@dataclass(frozen=True)
class StackSpec:
    """What ``modules.json`` and the module configs say: where the transformer lives, its
    max sequence length (``None``: the tokenizer's), the pooling mode, and normalisation."""

    transformer_dir: str
    max_seq_length: int | None
    pooling: str
    normalize: bool


def _read_json(name: str, relpath: str) -> Any | None:
    """A JSON file of the model folder or hub repo ``name``; ``None`` when it has none."""
    folder = Path(name).expanduser()
    if folder.is_dir():
        path = folder / relpath
        return json.loads(path.read_text("utf-8")) if path.is_file() else None
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError

    try:
        return json.loads(Path(hf_hub_download(name, relpath)).read_text("utf-8"))
    except EntryNotFoundError:
        return None


def stack_spec(name: str) -> StackSpec | None:
    """The model's module stack when the lean path can run it exactly, else ``None``."""
    modules = _read_json(name, "modules.json")
    if not isinstance(modules, list) or not 2 <= len(modules) <= 3:
        return None
    if not all(isinstance(m, dict) for m in modules):
        return None
    kinds = [str(m.get("type", "")).rsplit(".", 1)[-1] for m in modules]
    if kinds[:2] != ["Transformer", "Pooling"] or kinds[2:] not in ([], ["Normalize"]):
        return None
    transformer_dir, pooling_dir = (str(m.get("path", "")) for m in modules[:2])
    config = _read_json(name, _join(transformer_dir, "sentence_bert_config.json")) or {}
    if any(config[k] != v for k, v in _TRANSFORMER_DEFAULTS.items() if k in config):
        return None
    if set(config) - _TRANSFORMER_KEYS - set(_TRANSFORMER_DEFAULTS) or config.get("do_lower_case"):
        return None
    if any(config.get(k) for k in _TRANSFORMER_KEYS - {"max_seq_length", "do_lower_case"}):
        return None
    pooling = _pooling_mode(_read_json(name, _join(pooling_dir, "config.json")) or {})
    if pooling is None:
        return None
    max_len = config.get("max_seq_length")
    return StackSpec(transformer_dir, int(max_len) if max_len else None, pooling, len(kinds) == 3)


def _join(folder: str, file: str) -> str:
    return f"{folder}/{file}" if folder else file


def _pooling_mode(config: dict) -> str | None:
    """The one pooling mode of a Pooling config (old boolean flags or the newer
    ``pooling_mode`` string) when it is cls, mean or max and includes every token."""
    mode = config.get("pooling_mode")
    if isinstance(mode, list) and len(mode) == 1:
        mode = mode[0]
    if mode is None:
        on = [m for flag, m in _POOLING_FLAGS.items() if config.get(flag)]
        others = [k for k, v in config.items() if k.startswith("pooling_mode_") and v]
        mode = on[0] if len(on) == 1 and len(others) == 1 else None
    if mode not in ("cls", "mean", "max") or config.get("include_prompt") is False:
        return None
    return mode


class LeanModel:
    """``AutoModel`` + pooling (+ L2 normalisation) of one sentence-transformers model."""

    def __init__(self, name: str, spec: StackSpec, device: str, dtype):
        from transformers import AutoModel, AutoTokenizer

        sub = {"subfolder": spec.transformer_dir} if spec.transformer_dir else {}
        self.tokenizer = AutoTokenizer.from_pretrained(name, **sub)
        self.model = AutoModel.from_pretrained(name, dtype=dtype, **sub).to(device).eval()
        self.spec = spec
        self.device = self.model.device
        limit = getattr(self.model.config, "max_position_embeddings", None)
        max_len = spec.max_seq_length or self.tokenizer.model_max_length
        self.max_seq_length = int(min(max_len, limit) if limit else max_len)
        self.dim = int(self.model.config.hidden_size)

    def embed(self, features: dict):
        """(batch, dim) sentence embeddings of one padded batch of model inputs."""
        import torch

        hidden = self.model(**features, return_dict=True).last_hidden_state
        mask = features["attention_mask"]
        if self.spec.pooling == "cls":
            first = mask.to(torch.int).argmax(dim=1)
            index = first.view(-1, 1, 1).expand(-1, 1, hidden.shape[-1])
            pooled = torch.gather(hidden, 1, index).squeeze(1)
        elif self.spec.pooling == "max":
            weights = mask.unsqueeze(-1).expand_as(hidden).to(hidden.dtype)
            pooled = hidden.masked_fill(weights == 0, float("-inf")).max(dim=1).values
        else:  # mean, summed in float32 for half-precision models
            acc = torch.float32 if hidden.dtype in (torch.float16, torch.bfloat16) else hidden.dtype
            weights = mask.unsqueeze(-1).to(hidden.dtype)
            total = (hidden * weights).sum(dim=1, dtype=acc)
            count = torch.clamp(weights.sum(dim=1, dtype=acc), min=1e-9)
            pooled = (total / count).to(hidden.dtype)
        if self.spec.normalize:
            pooled = torch.nn.functional.normalize(pooled, p=2, dim=-1)
        return pooled


def load_lean(name: str, device: str, dtype) -> LeanModel | None:
    """``LeanModel`` of ``name`` (module docstring), or ``None`` for sentence-transformers."""
    try:
        spec = stack_spec(name)
    except (OSError, ValueError) as e:  # unreadable configs: sentence-transformers says why
        log.debug("lean teacher: %s: %s", name, e)
        return None
    if spec is None:
        return None
    return LeanModel(name, spec, device, dtype)
