"""The settings mining reads, and nothing else: a small frozen record that pickles and travels
as a plain dict (``to_dict`` / ``from_dict``).

Contract: ``MiningParams.from_config(cfg)`` copies the mining fields of a validated
``CurateConfig``; the defaults and their sources (KaLM, NV-Retriever) live there, not here.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kalm_data.curate.config import CurateConfig
    from kalm_data.mining.search import IndexSpec


@dataclass(frozen=True)
class MiningParams:
    """Index, negative window and guards, consistency filter, seed (see ``CurateConfig``)."""

    index: str  # "flat" (exact), "ivf" or "ivfpq" (approximate)
    ivf_nlist: int  # 0 = 4 * sqrt(pool size)
    ivf_nprobe: int
    ivf_pq_m: int  # ivfpq bytes per vector; 0 = dim / 4
    pool_shard_size: int  # larger pools are searched shard by shard (``mining.sharded``)
    faiss_device: str  # "auto", "cpu" or "gpu" (``mining.search.resolve_device``)
    num_negatives: int  # given negatives count towards it
    window_start: int  # negatives are drawn from candidate ranks [window_start, window_end)
    window_end: int
    margin: float  # skip candidates scoring above margin x the best positive
    near_duplicate: float  # skip candidates this close (cosine) to a positive
    filter_rule: str  # "kalm", "mutual" or "none" (``kalm_data.mining.consistency``)
    filter_k: int
    filter_margin: float
    filter_query_k: int
    seed: int

    def __post_init__(self) -> None:
        if self.window_end <= self.window_start:
            raise ValueError(
                f"window_end ({self.window_end}) must be greater than "
                f"window_start ({self.window_start})"
            )

    def index_spec(self) -> IndexSpec:
        """The FAISS index these settings ask for (``faiss_device`` resolved here)."""
        from kalm_data.mining.search import IndexSpec, resolve_device

        device = resolve_device(self.faiss_device)
        return IndexSpec(self.index, self.ivf_nlist, self.ivf_nprobe, self.ivf_pq_m, device)

    @classmethod
    def from_config(cls, cfg: CurateConfig) -> MiningParams:
        """The mining fields of ``cfg``."""
        return cls(**{f.name: getattr(cfg, f.name) for f in fields(cls)})

    @classmethod
    def from_dict(cls, data: dict) -> MiningParams:
        """Inverse of ``to_dict``."""
        return cls(**data)

    def to_dict(self) -> dict:
        """Plain JSON-able values, e.g. to hand to a Beam ``DoFn``."""
        return asdict(self)

    @property
    def search_depth(self) -> int:
        """How many neighbours each query needs: the negative window and the filter's rank k."""
        return max(self.window_end, self.filter_k)
