"""Save the trained encoder as a sentence-transformers model folder.

Contract: ``export(encoder, cfg, output, task_prompts)`` writes a folder that
``SentenceTransformer(output)`` loads with no extra arguments and that encodes exactly as the
training encoder did: sentence-transformers' own ``Transformer`` (per-side max lengths as
``query_length`` / ``document_length``), ``Pooling`` (the trained mode) and ``Normalize``
modules. Prompts: ``query`` = ``Instruct: {query_instruction}\\nQuery: `` (used by
``encode_query``), ``document`` = "", plus one prompt per training task (``prompt_name=task``).
LoRA adapters are merged; ``config.json`` keeps ``is_causal: false`` for a bidirectional model;
the tokenizer keeps the EOS it appends for last-token pooling.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)


def prompts_for(cfg, task_instructions: dict[str, str]) -> dict[str, str]:
    """``query``/``document`` prompts and one per task (task -> its prefix)."""
    prompts = {"query": cfg.query_prompt(cfg.query_instruction), "document": ""}
    for task, prompt in sorted(task_instructions.items()):
        prompts.setdefault(task, prompt)
    return prompts


def export(encoder, cfg, output: str, task_prompts: dict[str, str] | None = None) -> str:
    """Write ``encoder`` to ``output`` in sentence-transformers format; returns ``output``."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer

    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".export-", dir=out))
    try:
        encoder.merged().save_pretrained(staging)
        encoder.tokenizer.save_pretrained(staging)
        transformer = Transformer(
            str(staging),
            max_seq_length=max(cfg.query_max_len, cfg.passage_max_len),
            query_length=cfg.query_max_len,
            document_length=cfg.passage_max_len,
        )
        pooling = Pooling(transformer.get_embedding_dimension(), pooling_mode=cfg.pooling)
        model = SentenceTransformer(
            modules=[transformer, pooling, Normalize()],
            prompts=prompts_for(cfg, task_prompts or {}),
            similarity_fn_name="cosine",
            device="cpu",
        )
        model.save(str(out))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log.info("exported the SentenceTransformer model to %s", out)
    return str(out)
