"""The model being trained: a Hugging Face encoder or decoder, its tokenizer, and a pooler.

Contract: ``load_encoder(name_or_path, ...)`` loads any ``AutoModel`` checkpoint (hub id, folder,
or SentenceTransformer folder) with its tokenizer. ``encoder(input_ids, attention_mask)``
returns pooled, *unnormalised* (batch, dim) vectors (the losses normalise, per Matryoshka
prefix). ``encode(texts)`` is the no-grad, L2-normalised inference path used by evaluation.

Options:
- ``bidirectional``: drops a decoder's causal mask (KaLM V2). transformers >= 5 builds the mask
  from ``config.is_causal`` (``masking_utils.create_causal_mask`` falls back to a bidirectional
  mask, and SDPA receives ``is_causal=False``); the flag is saved in ``config.json``, so the
  exported model keeps it. A probe checks that the model honours it.
- ``gradient_checkpointing``: transformers' non-reentrant checkpointing.
- ``lora_rank > 0``: LoRA adapters on every linear layer through ``peft`` (imported only then);
  ``merged()`` folds them back for export.
"""

from __future__ import annotations

import contextlib
import logging

import torch

from kalm_data.train.pooling import POOLERS, ensure_eos

log = logging.getLogger(__name__)


class Encoder(torch.nn.Module):
    """A transformers model, its tokenizer and a pooler."""

    def __init__(self, model, tokenizer, pooling: str):
        super().__init__()
        if pooling not in POOLERS:
            raise ValueError(f"unknown pooling {pooling!r}; known: {sorted(POOLERS)}")
        self.model = model
        self.tokenizer = tokenizer
        self.pooling = pooling

    @property
    def dim(self) -> int:
        return int(self.base_model().config.get_text_config().hidden_size)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def base_model(self):
        """The transformers model under any peft wrapper."""
        model = self.model
        return model.get_base_model() if hasattr(model, "get_base_model") else model

    def forward(self, input_ids, attention_mask):
        hidden = self.model(input_ids=input_ids, attention_mask=attention_mask)
        hidden = hidden.last_hidden_state  # (batch, seq, dim)
        return POOLERS[self.pooling](hidden, attention_mask)  # (batch, dim)

    def tokenize(self, texts: list[str], max_len: int) -> dict[str, torch.Tensor]:
        """Padded input_ids / attention_mask on the model's device."""
        enc = self.tokenizer(
            texts, padding=True, truncation=True, max_length=max_len, return_tensors="pt"
        )
        return {k: enc[k].to(self.device) for k in ("input_ids", "attention_mask")}

    @torch.no_grad()
    def encode(
        self, texts: list[str], max_len: int, batch_size: int = 64, bf16: bool = False
    ) -> torch.Tensor:
        """(len(texts), dim) float32 on CPU, L2-normalised; batches sorted by length."""
        was_training = self.training
        self.eval()
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        out = torch.zeros(len(texts), self.dim)
        for start in range(0, len(texts), batch_size):
            idx = order[start : start + batch_size]
            with autocast(self.device, bf16):
                vectors = self(**self.tokenize([texts[i] for i in idx], max_len))
            out[idx] = torch.nn.functional.normalize(vectors.float(), dim=-1).cpu()
        self.train(was_training)
        return out

    def merged(self):
        """The plain transformers model with any LoRA adapters folded in (for export)."""
        if hasattr(self.model, "merge_and_unload"):
            return self.model.merge_and_unload()
        return self.model


def autocast(device, bf16: bool):
    """bf16 autocast on ``device`` when asked, else a no-op context."""
    if not bf16:
        return contextlib.nullcontext()
    return torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16)


def load_encoder(
    name_or_path: str,
    pooling: str = "mean",
    bidirectional: bool = False,
    gradient_checkpointing: bool = False,
    lora_rank: int = 0,
    lora_alpha: int = 32,
    lora_dropout: float = 0.05,
    device: str = "cpu",
):
    """Load model and tokenizer by id or path and wrap them as an ``Encoder``."""
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    name_or_path = transformer_folder(name_or_path)
    config = AutoConfig.from_pretrained(name_or_path)
    if bidirectional:
        config.is_causal = False
    model = AutoModel.from_pretrained(name_or_path, config=config)
    tokenizer = AutoTokenizer.from_pretrained(name_or_path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token  # decoders often ship without one
    if pooling == "lasttoken":
        ensure_eos(tokenizer)
    if bidirectional:
        check_bidirectional(model)
    if gradient_checkpointing:
        enable_checkpointing(model)
    if lora_rank:
        model = add_lora(model, lora_rank, lora_alpha, lora_dropout)
    encoder = Encoder(model, tokenizer, pooling).to(device)
    log.info(
        "loaded %s (%s, %d-d, %s pooling%s%s)",
        name_or_path,
        type(encoder.base_model()).__name__,
        encoder.dim,
        pooling,
        ", bidirectional" if bidirectional else "",
        f", LoRA r={lora_rank}" if lora_rank else "",
    )
    return encoder


def transformer_folder(name_or_path: str) -> str:
    """The folder holding the transformers weights: a SentenceTransformer folder may keep them
    in a module subfolder (``0_Transformer/``) named by its ``modules.json``."""
    import json
    from pathlib import Path

    modules = Path(name_or_path) / "modules.json"
    if not modules.is_file():
        return name_or_path
    for module in json.loads(modules.read_text(encoding="utf-8")):
        if module.get("type", "").endswith("Transformer"):
            return str(Path(name_or_path) / module.get("path", ""))
    return name_or_path


def enable_checkpointing(model) -> None:
    """transformers' non-reentrant activation (gradient) checkpointing, old or new name."""
    kwargs = {"use_reentrant": False}
    if hasattr(model, "activation_checkpointing_enable"):  # transformers >= 5.23
        model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
    model.config.use_cache = False


def attends_causally(model) -> bool:
    """True when the first token's state ignores later tokens (a causal mask is in force)."""
    ids = torch.tensor([[1, 2, 3], [1, 4, 5]], device=next(model.parameters()).device)
    was_training = model.training
    model.eval()
    with torch.no_grad():
        first = model(input_ids=ids, attention_mask=torch.ones_like(ids)).last_hidden_state[:, 0]
    model.train(was_training)
    return torch.allclose(first[0], first[1])


def check_bidirectional(model) -> None:
    """Raise if ``model`` still attends causally after ``config.is_causal = False``."""
    if attends_causally(model):
        raise ValueError(
            f"{type(model).__name__} ignores config.is_causal=False: bidirectional attention "
            "is not supported for this architecture"
        )


def add_lora(model, rank: int, alpha: int, dropout: float):
    """Wrap ``model`` with LoRA adapters on all linear layers (needs ``peft``)."""
    try:
        import peft
    except ImportError:
        raise ImportError("lora_rank > 0 needs peft: pip install peft") from None
    config = peft.LoraConfig(
        r=rank, lora_alpha=alpha, lora_dropout=dropout, target_modules="all-linear"
    )
    model = peft.get_peft_model(model, config)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    log.info("LoRA r=%d: %d trainable parameters", rank, trainable)
    return model
