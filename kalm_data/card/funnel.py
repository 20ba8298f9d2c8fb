"""The funnel of a curate run as steps: rows read, rows rejected per stage and reason, rows kept.

Contract: ``funnel_steps(counts)`` turns the manifest's ``counts`` section into the steps shown
in the card's table and chart, stages in funnel order (``kalm_data.reasons.STAGES``, then any
other stage by name), reasons by name. The steps' numbers are the manifest's, unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from kalm_data.reasons import STAGES


@dataclass(frozen=True)
class Step:
    """One line of the funnel."""

    label: str
    rows: int
    kind: Literal["read", "rejected", "kept"]
    stage: str = ""
    reason: str = ""


def _stage_order(stage: str) -> tuple[int, str]:
    return (STAGES.index(stage) if stage in STAGES else len(STAGES), stage)


def funnel_steps(counts: dict) -> list[Step]:
    """read, then one step per (stage, reason) with rejected rows, then kept."""
    steps = [Step("read", int(counts.get("rows_read", 0)), "read")]
    rejected = counts.get("rejected") or {}
    for stage in sorted(rejected, key=_stage_order):
        for reason, rows in sorted(rejected[stage].items()):
            steps.append(Step(f"{stage}: {reason}", int(rows), "rejected", stage, reason))
    steps.append(Step("kept", int(counts.get("rows_kept", 0)), "kept"))
    return steps
