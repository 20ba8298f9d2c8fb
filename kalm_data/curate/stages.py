"""The stages every input row of ``curate`` goes through, in order, before embedding and
mining (each stage: ``kalm_data.stages``; the contract: ``kalm_data.stage``). The corpus and
the ranking-consistency filter are stages too; they run where their inputs are (the corpus
reader's rows, each task's ranked examples)."""

from __future__ import annotations

from kalm_data.curate.config import CurateConfig
from kalm_data.stage import Stage
from kalm_data.stages.dedup import DedupIds, MergeByQuery
from kalm_data.stages.read import ReadErrors
from kalm_data.stages.validate import Validate


def pair_stages(cfg: CurateConfig, teacher: str) -> list[Stage]:
    """The stages every input row goes through, in order, before embedding and mining."""
    columns = {s.path: s.columns for s in cfg.inputs}
    return [
        ReadErrors(),
        Validate(columns, cfg.max_chars, cfg.overlong, teacher),
        DedupIds(),
        MergeByQuery(),
    ]
