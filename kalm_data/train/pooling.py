"""Pool token states into one vector per text: mean, last token, or CLS (first token).

Contract: every pooler takes ``hidden`` (batch, seq, dim) and ``mask`` (batch, seq; 1 = token,
0 = padding), works with left or right padding, and returns (batch, dim) in ``hidden``'s dtype
(means are summed in float32). They match sentence-transformers' ``Pooling`` modes ``mean``,
``lasttoken`` and ``cls``, which is what the exported model uses.

Last-token pooling reads the EOS token that ``ensure_eos`` makes the tokenizer append (after
truncation, so it is never cut off). KaLM's public code crashed in this branch
(AttributeError); E5-mistral and gte-Qwen pool this way.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def mean_pool(hidden, mask):
    """Average of the non-padding token states."""
    m = mask.unsqueeze(-1).to(hidden.dtype)  # (batch, seq, 1)
    total = (hidden * m).sum(dim=1, dtype=_acc(hidden))  # (batch, dim)
    count = m.sum(dim=1, dtype=_acc(hidden)).clamp(min=1e-9)  # (batch, 1)
    return (total / count).to(hidden.dtype)


def last_token_pool(hidden, mask):
    """State of each text's last non-padding token (with EOS appended: the EOS state)."""
    import torch

    seq = mask.shape[1]
    positions = torch.arange(seq, device=mask.device).expand_as(mask)  # (batch, seq)
    last = torch.where(mask.bool(), positions, -1).max(dim=1).values.clamp(min=0)  # (batch,)
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]  # (batch, dim)


def cls_pool(hidden, mask):
    """State of each text's first non-padding token (BERT's [CLS])."""
    import torch

    first = mask.to(torch.int32).argmax(dim=1)  # (batch,)
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), first]  # (batch, dim)


POOLERS = {"mean": mean_pool, "lasttoken": last_token_pool, "cls": cls_pool}


def _acc(hidden):
    import torch

    return torch.float32 if hidden.dtype in (torch.float16, torch.bfloat16) else hidden.dtype


def ensure_eos(tokenizer) -> bool:
    """Make ``tokenizer`` end every text with its EOS token; True if it had to be changed.

    Tokenizers that already end texts with a special token (BERT's [SEP]) are left alone. The
    change lives in the tokenizer's post-processor, so it is saved with ``save_pretrained`` and
    the exported model tokenizes exactly as training did.
    """
    before = tokenizer("a")["input_ids"]
    special = set(tokenizer.all_special_ids)
    if before and before[-1] in special:
        return False
    if tokenizer.eos_token is None:
        raise ValueError("last-token pooling needs a tokenizer with an EOS token")
    eos_id = tokenizer.eos_token_id
    if hasattr(tokenizer, "add_eos_token"):
        tokenizer.add_eos_token = True  # transformers' own switch, saved with the tokenizer
        if tokenizer("a")["input_ids"] == [*before, eos_id]:
            log.info("tokenizer now appends %s (last-token pooling)", tokenizer.eos_token)
            return True
    _template_with_eos(tokenizer, before, special)
    after = tokenizer("a")["input_ids"]
    if after != [*before, eos_id]:
        raise ValueError(f"could not make the tokenizer append EOS: {before} -> {after}")
    log.info("tokenizer now appends %s (last-token pooling)", tokenizer.eos_token)
    return True


def _template_with_eos(tokenizer, before: list[int], special: set[int]) -> None:
    """Install a post-processor that keeps the leading special tokens and appends EOS."""
    from tokenizers import processors

    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise ValueError("last-token pooling needs a fast (tokenizers) tokenizer")
    prefix = []
    for token_id in before:
        if token_id not in special:
            break
        prefix.append((tokenizer.convert_ids_to_tokens(token_id), token_id))
    eos = (tokenizer.eos_token, tokenizer.eos_token_id)
    head = " ".join(t for t, _ in prefix)
    single = f"{head} $A:0 {eos[0]}:0".strip()
    pair = f"{single} $B:1 {eos[0]}:1"
    backend.post_processor = processors.TemplateProcessing(
        single=single, pair=pair, special_tokens=list(dict.fromkeys([*prefix, eos]))
    )
