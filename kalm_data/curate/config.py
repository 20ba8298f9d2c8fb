"""The ``curate`` settings: one validated pydantic model, from YAML and command-line overrides.

Every default is the published KaLM / NV-Retriever setting (../shared/KALM.md) unless noted.
Precedence: defaults < ``--config FILE.yaml`` < command-line flags.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from kalm_data.inputs import InputSpec

FilterRule = Literal["kalm", "mutual", "none"]


class CurateConfig(BaseModel):
    """Settings of the ``curate`` pipeline."""

    model_config = ConfigDict(extra="forbid")

    inputs: list[InputSpec] = Field(default_factory=list)
    corpus: list[InputSpec] = Field(
        default_factory=list,
        description="optional candidate pool (field `text`), shared by all tasks",
    )
    output: str = ""
    teacher: str | None = Field(
        default=None,
        description="sentence-transformers id or folder; None = the MiniLM shipped offline",
    )
    cache_dir: str | None = Field(
        default=None, description="embedding cache; None = ~/.cache/kalm_data/embeddings"
    )
    batch_size: int = Field(
        default=32, gt=0, description="teacher batch: this many texts of its max length"
    )
    token_budget: int | None = Field(
        default=None,
        gt=0,
        description="padded tokens per teacher batch; None = batch_size x max length, at most "
        "2048 on CPU (larger batches outgrow the CPU caches: benchmarks/bench_encode.py)",
    )
    cpu_kernels: Literal["onednn", "torch"] = Field(
        default="onednn",
        description="the fp32 teacher's Linear layers on CPU: oneDNN with weights packed once "
        "(faster than torch's MKL path on AMD CPUs: benchmarks/bench_encode.py --kernels), or "
        "torch's own; the same vectors to float rounding",
    )
    precision: Literal["fp32", "bf16"] = Field(
        default="fp32",
        description="teacher precision; bf16 is ~2x faster on CPUs with AVX512-BF16 and drifts "
        "a little: benchmarks/bench_curate.py reports the filter decisions it changes",
    )
    max_chars: int = Field(default=100_000, gt=0, description="longer texts are rejected outright")
    overlong: Literal["truncate", "reject"] = Field(
        default="truncate",
        description="texts over the teacher's max tokens: embed truncated, or reject",
    )
    # Mining (KaLM: exact inner product, top 100, 7 negatives from ranks 50-99).
    index: Literal["flat", "ivf", "ivfpq"] = Field(
        default="flat",
        description="flat = exact; ivf, ivfpq (compressed) = approximate, recall in "
        "benchmarks/bench_index_recall.py",
    )
    ivf_nlist: int = Field(default=0, ge=0, description="0 = 4 * sqrt(pool size)")
    ivf_nprobe: int = Field(default=32, gt=0)
    ivf_pq_m: int = Field(
        default=0,
        ge=0,
        description="ivfpq: bytes per vector (must divide the embedding dimension); 0 = dim / 4",
    )
    pool_shard_size: int = Field(
        default=1_000_000,
        gt=0,
        description="pools larger than this are searched in shards of this many texts, top-k "
        "merged exactly (index memory per shard, not per pool)",
    )
    mine_blocks: int = Field(
        default=1,
        ge=1,
        description="mine each task as N blocks of examples against N key-range shards of its "
        "pool, on as many workers, so that no worker holds a whole task; 1 = one worker per "
        "task (the same rows either way with the flat index)",
    )
    faiss_device: Literal["auto", "cpu", "gpu"] = Field(
        default="auto", description="where FAISS searches; auto = the GPU(s) when FAISS sees one"
    )
    num_negatives: int = Field(default=7, ge=0)
    window_start: int = Field(default=50, ge=0)
    window_end: int = Field(default=100, gt=0)
    margin: float = Field(
        default=0.95,
        gt=0,
        description="NV-Retriever TopK-PercPos: skip candidates above margin x positive",
    )
    near_duplicate: float = Field(
        default=0.98, description="skip candidates this close (cosine) to a positive"
    )
    # Ranking-consistency filter.
    filter_rule: FilterRule = "mutual"
    filter_k: int = Field(default=50, gt=0, description="KaLM: a positive fails when it ranks >= k")
    filter_margin: float = Field(
        default=0.05, ge=0, description="mutual: positive may score this much below rank k"
    )
    filter_query_k: int = Field(
        default=10, gt=0, description="mutual: also keep if the query ranks < this among queries"
    )
    # Near-duplicate removal (kalm_data.stages.neardup): on MRPC / STS-B at 0.8 it removes
    # <1% of paraphrases and ~0% of distinct pairs (near-identical rewrites only); README.
    near_dup: bool = Field(
        default=True,
        description="reject pairs whose query and positive both nearly repeat a lower id's",
    )
    near_dup_threshold: float = Field(
        default=0.8, gt=0, le=1, description="Jaccard of word shingles, query and positive"
    )
    near_dup_shingle: int = Field(default=3, gt=0, description="words per shingle")
    near_dup_num_perm: int = Field(default=128, gt=0, description="MinHash permutations")
    near_dup_bands: int = Field(
        default=0, ge=0, description="LSH bands; 0 = chosen for the threshold (95% recall)"
    )
    # Decontamination (kalm_data.stages.decontaminate).
    decontaminate: list[str] = Field(
        default_factory=list,
        description="evaluation sets (BEIR folder, JSONL of `text`, datasets folder or id): "
        "pairs whose query or positive matches one of their texts are rejected",
    )
    decontam_ngram: int = Field(
        default=13, gt=0, description="words per n-gram shared with an evaluation text"
    )
    decontam_embed_threshold: float | None = Field(
        default=None,
        gt=0,
        le=1,
        description="also reject pairs whose query or positive has a teacher cosine >= this to "
        "an evaluation text (close rewrites that share no n-gram; translations too with a "
        "multilingual teacher); the training and evaluation texts are embedded into the "
        "cache first. None: off; 0.93 chosen on MRPC (README)",
    )
    decontam_shards: int = Field(
        default=16,
        gt=0,
        description="hash shards of the evaluation keys (one per worker at a time)",
    )
    seed: int = 0
    show_paths: bool = Field(
        default=False,
        description="record inputs, output, cache and teacher by their full local paths "
        "(default: paths relative to --paths-root, else file names; the teacher by id or "
        "folder name) in rows, rejected rows and the manifest",
    )
    paths_root: str | None = Field(
        default=None, description="inputs under this folder are recorded relative to it; None = cwd"
    )
    rows_per_shard: int = Field(
        default=100_000,
        gt=0,
        description="a task's rows are written as ceil(rows / this) Parquet parts, dealt by a "
        "hash of the id (about this many rows each; one part, sorted by id, when fewer)",
    )
    torch_threads: int = Field(
        default=1,
        ge=0,
        description="threads per teacher process; 1 gives the same bits on every runner and "
        "worker layout (parallelism comes from workers); 0 = torch's default",
    )
    low_memory: bool | None = Field(
        default=None,
        description="on Beam's local runner: one in-process worker whose teacher encodes on "
        "every core (torch's thread count unless --torch-threads is given) in a child process; "
        "on all of qa_pairs_en 0.36x the memory of a worker process per core (0.79x "
        "mine_hard_negatives' peak) for 3% more time; the same rows (scores equal to float "
        "rounding). None: on for the local runner when no --direct_* option is given; "
        "--no-low-memory: a worker process per core",
    )
    teacher_process: bool | None = Field(
        default=None,
        description="encode in a child process of each worker, started for the embedding "
        "stage and stopped when it ends, so what encoding held (torch, the model, the heap it "
        "grew) is not under mining and writing; the same bits either way. None: only when the "
        "run has one in-process worker (--direct_running_mode=in_memory), where it lowers the "
        "peak; worker processes free it when they end anyway",
    )
    embed_ranges: int = Field(
        default=16,
        gt=0,
        description="the embedding stage's groups: each length bucket of the longest texts is "
        "cut into this many key ranges, shorter ones into proportionally fewer; more groups "
        "keep workers busy to the end of the stage",
    )
    checkpoints: bool = Field(
        default=True,
        description="keep each finished stage in OUTPUT/.kalm-data/checkpoints: a rerun (after "
        "a kill, or with other mining settings) skips the stages already done",
    )

    @model_validator(mode="after")
    def _check_window(self) -> CurateConfig:
        if self.window_end <= self.window_start:
            raise ValueError(
                f"window_end ({self.window_end}) must be greater than "
                f"window_start ({self.window_start})"
            )
        return self

    @model_validator(mode="after")
    def _check_bands(self) -> CurateConfig:
        if self.near_dup_bands > self.near_dup_num_perm:
            raise ValueError(
                f"near_dup_bands ({self.near_dup_bands}) must be at most "
                f"near_dup_num_perm ({self.near_dup_num_perm})"
            )
        return self

    @model_validator(mode="after")
    def _check_embed_threshold(self) -> CurateConfig:
        if self.decontam_embed_threshold is not None and not self.decontaminate:
            raise ValueError(
                "decontam_embed_threshold compares pairs with evaluation sets: give them with "
                "decontaminate (--decontaminate PATH_OR_ID ...)"
            )
        return self

    @property
    def search_depth(self) -> int:
        """How many neighbours each query needs: the negative window and the filter's rank k."""
        return max(self.window_end, self.filter_k)


def load_config(path: str | Path | None, overrides: dict) -> CurateConfig:
    """Defaults, then the YAML file at ``path`` (if any), then ``overrides`` (None: not given)."""
    from kalm_data.settings import read_yaml

    data = read_yaml(path)
    data.update({k: v for k, v in overrides.items() if v is not None})
    return CurateConfig.model_validate(data)
