"""The stages every input row of ``curate`` goes through, in order, before embedding and
mining (each stage: ``kalm_data.stages``; the contract: ``kalm_data.stage``). The corpus and
the ranking-consistency filter are stages too; they run where their inputs are (the corpus
reader's rows, each task's ranked examples).

Decontamination and near-duplicate removal compare pairs with each other or with evaluation
sets, so they are not one-record ``Stage``s but Beam transforms with the same contract
(``kalm_data.beam.neardup``, ``kalm_data.beam.decontaminate``: pairs in, (kept, rejected)
out, rows balanced); they run on the input pairs after ``DedupIds``, before ``MergeByQuery``."""

from __future__ import annotations

from kalm_data.curate.config import CurateConfig
from kalm_data.stages.dedup import DedupIds, MergeByQuery
from kalm_data.stages.read import ReadErrors
from kalm_data.stages.validate import Validate


def recorded_names(cfg: CurateConfig) -> dict[str, str]:
    """Input and corpus path -> the name rows and the manifest record (``kalm_data.published``)."""
    from kalm_data.published import input_names

    paths = [s.path for s in (*cfg.inputs, *cfg.corpus)]
    return input_names(paths, cfg.paths_root, cfg.show_paths)


def quality_steps(
    cfg: CurateConfig, progress: str | None = None, teacher: str | None = None
) -> list:
    """The decontamination and near-duplicate transforms ``cfg`` asks for, in order.
    ``teacher`` (default: ``cfg.teacher``, else the default teacher) embeds for
    ``decontam_embed_threshold``."""
    from kalm_data.beam.decontaminate import Decontaminate
    from kalm_data.beam.neardup import NearDuplicates

    steps = []
    if cfg.decontaminate:  # first: a contaminated pair is reported as such, not as a duplicate
        steps.append(
            Decontaminate(
                cfg.decontaminate,
                cfg.decontam_ngram,
                cfg.decontam_shards,
                progress,
                embed=embed_check(cfg, teacher),
            )
        )
    if cfg.near_dup:
        steps.append(
            NearDuplicates(
                cfg.near_dup_threshold,
                cfg.near_dup_shingle,
                cfg.near_dup_num_perm,
                cfg.near_dup_bands,
                progress,
            )
        )
    return steps


def embed_check(cfg: CurateConfig, teacher: str | None = None):
    """The embedding test of decontamination (``EmbedCheck``), or None when not asked for."""
    if cfg.decontam_embed_threshold is None:
        return None
    from kalm_data.beam.decontaminate_embed import EmbedCheck
    from kalm_data.embed.cache import default_cache_dir
    from kalm_data.embed.teacher import default_teacher, teacher_fingerprint

    teacher = teacher or cfg.teacher or default_teacher()
    cfg = cfg.model_copy(update={"cache_dir": cfg.cache_dir or default_cache_dir()})
    fingerprint = teacher_fingerprint(teacher, cfg.precision)
    return EmbedCheck(cfg.decontam_embed_threshold, cfg, teacher, fingerprint)


def pair_stages(cfg: CurateConfig, teacher: str, progress: str | None = None) -> list:
    """The stages (and quality transforms) every input row goes through, in order, before
    embedding and mining; ``progress`` is the progress folder the transforms report to."""
    names = recorded_names(cfg)
    columns = {names.get(s.path, s.path): s.columns for s in cfg.inputs}
    return [
        ReadErrors(),
        Validate(columns, cfg.max_chars, cfg.overlong, teacher),
        DedupIds(),
        *quality_steps(cfg, progress, teacher),
        MergeByQuery(),
    ]
