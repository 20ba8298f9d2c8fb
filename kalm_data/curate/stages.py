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


def recorded_names(cfg: CurateConfig) -> dict[str, str]:
    """Input and corpus path -> the name rows and the manifest record (``kalm_data.published``)."""
    from kalm_data.published import input_names

    paths = [s.path for s in (*cfg.inputs, *cfg.corpus)]
    return input_names(paths, cfg.paths_root, cfg.show_paths)


def pair_stages(cfg: CurateConfig, teacher: str) -> list[Stage]:
    """The stages every input row goes through, in order, before embedding and mining."""
    names = recorded_names(cfg)
    columns = {names.get(s.path, s.path): s.columns for s in cfg.inputs}
    return [
        ReadErrors(),
        Validate(columns, cfg.max_chars, cfg.overlong, teacher),
        DedupIds(),
        MergeByQuery(),
    ]
