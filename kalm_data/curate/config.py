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
    batch_size: int = Field(default=32, gt=0)
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
    index: Literal["flat", "ivf"] = "flat"
    ivf_nlist: int = Field(default=0, ge=0, description="0 = 4 * sqrt(pool size)")
    ivf_nprobe: int = Field(default=32, gt=0)
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
    filter_k: int = Field(default=50, gt=0, description="KaLM: drop if best positive ranks >= k")
    filter_margin: float = Field(
        default=0.05, ge=0, description="mutual: positive may score this much below rank k"
    )
    filter_query_k: int = Field(
        default=10, gt=0, description="mutual: also keep if the query ranks < this among queries"
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
    rows_per_shard: int = Field(default=100_000, gt=0)
    torch_threads: int = Field(
        default=1,
        ge=0,
        description="threads per teacher process; 1 gives the same bits on every runner and "
        "worker layout (parallelism comes from workers); 0 = torch's default",
    )
    embed_shards: int = Field(
        default=4, gt=0, description="parallel groups per length bucket in the embedding stage"
    )

    @model_validator(mode="after")
    def _check_window(self) -> CurateConfig:
        if self.window_end <= self.window_start:
            raise ValueError(
                f"window_end ({self.window_end}) must be greater than "
                f"window_start ({self.window_start})"
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
