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


@dataclass(frozen=True)
class MiningParams:
    """Index, negative window and guards, consistency filter, seed (see ``CurateConfig``)."""

    index: str  # "flat" (exact) or "ivf" (approximate)
    ivf_nlist: int  # 0 = 4 * sqrt(pool size)
    ivf_nprobe: int
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
