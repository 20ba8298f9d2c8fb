"""The ``curate`` pipeline: input pairs -> mined, filtered, task-sharded Parquet.

    read -> validate -> dedup -> decontamination (if set), near-duplicates -> merge by query
         -> embed unique texts (cached)
         -> per task: FAISS search, ranking-consistency filter, negatives -> write

``build`` only wires transforms; ``run`` stages the outputs, runs the pipeline on any Beam runner,
commits the outputs and writes the manifest. Both are used by ``kalm-data curate`` and by
``pipelines/curate.py``.

Checkpoints (``kalm_data.harness.checkpoint``): the output of "pairs" (everything before
embedding) and of "mined" (the corpus, embedding, mining and filter: everything before writing)
is kept in ``OUTPUT/.kalm-data/checkpoints/<stage>-<key>/``, keyed by the inputs and the
settings the stage reads (``PAIRS_SETTINGS``, ``MINED_SETTINGS``). A rerun reads a finished
stage instead of running it, so a run killed at any point resumes where it was, with the same
output; a new rank window re-runs mining onwards only. After a commit, the checkpoints the run
did not use are removed; ``--no-checkpoints`` neither reads nor writes any.
"""

from __future__ import annotations

import logging
import os

import apache_beam as beam

from kalm_data.beam.checkpoint import checkpointed
from kalm_data.beam.counts import SumTallies
from kalm_data.beam.embed import EmbedTexts
from kalm_data.beam.mine import MineTasks, example_texts
from kalm_data.beam.mine_blocks import MineBlocks
from kalm_data.beam.read import ReadInputs
from kalm_data.beam.stage import ApplyStage
from kalm_data.beam.write import WriteRejected, WriteTaskShards
from kalm_data.curate.checkpoints import (
    MINED_COLLECTIONS,
    PAIRS_COLLECTIONS,
    all_cached,
    checkpoint_plan,
    note_all_cached,
    remove_unused_checkpoints,
)
from kalm_data.curate.config import CurateConfig
from kalm_data.curate.stages import pair_stages, recorded_names
from kalm_data.harness.checkpoint import Checkpoint, checkpoint_root
from kalm_data.harness.run import count_read, finish_graph, write_read_count
from kalm_data.published import teacher_name
from kalm_data.stage import Stage
from kalm_data.stages.corpus import CorpusTexts

log = logging.getLogger(__name__)


def apply_stages(records, stages: list[Stage | beam.PTransform], progress: str | None):
    """``records`` through each stage in turn -> (kept, [rejected of each stage]). A stage is a
    ``Stage`` (run by ``ApplyStage``) or a transform returning (kept, rejected) itself."""
    rejected = []
    for stage in stages:
        if isinstance(stage, beam.PTransform):
            records, dropped = records | stage
        else:
            records, dropped = records | stage.name >> ApplyStage(stage, progress)
        rejected.append(dropped)
    return records, rejected


def build(
    p: beam.Pipeline,
    cfg: CurateConfig,
    teacher: str,
    fingerprint: str,
    staging: str,
    stages: list[Stage] | None = None,
    checkpoints: dict[str, Checkpoint] | None = None,
) -> dict:
    """Wire the curate pipeline into ``p``; outputs go under ``staging``. ``stages`` replaces
    ``pair_stages(cfg, teacher)`` (to add a stage of your own; no checkpoints then).
    ``checkpoints`` (``checkpoint_plan``): the "pairs" and "mined" stages are read from their
    checkpoints when done, else run and checkpointed. Returns, per checkpoint used, its folder
    and whether it was reused (the manifest's ``checkpoints``)."""
    if checkpoints is None or stages is not None:
        stages = pair_stages(cfg, teacher, staging) if stages is None else stages
        rows = p | "ReadInputs" >> ReadInputs(cfg.inputs, staging, recorded_names(cfg))
        count_file = count_read(rows, staging)
        files = curate_records(p, rows, cfg, teacher, fingerprint, staging, stages)
        finish_graph(count_file, *files)
        return {}
    mined, mined_reused = checkpoints["mined"], checkpoints["mined"].done()
    pairs, pairs_reused = checkpointed(
        p,
        checkpoints["pairs"],
        PAIRS_COLLECTIONS,
        lambda: _pair_stages(p, cfg, teacher, staging),
        read=("reports", "read") if mined_reused else PAIRS_COLLECTIONS,
    )
    count_file = pairs["read"] | "WriteCount" >> beam.Map(
        lambda item, staging: write_read_count(item[1], staging), staging
    )
    files = curate_records(
        p,
        pairs.get("examples"),
        cfg,
        teacher,
        fingerprint,
        staging,
        [],
        rejected_before=(pairs["reports"],),
        checkpoint=mined,
    )
    finish_graph(count_file, *files)
    reused = {"pairs": pairs_reused, "mined": mined_reused}
    return {k: {"folder": c.name, "reused": reused[k]} for k, c in checkpoints.items()}


def curate_records(
    p: beam.Pipeline,
    records,
    cfg: CurateConfig,
    teacher: str,
    fingerprint: str,
    staging: str,
    stages: list[Stage],
    rejected_before=(),
    checkpoint: Checkpoint | None = None,
) -> tuple:
    """Everything after reading: ``records`` (raw rows, or input pairs when ``stages`` starts
    after validation) through ``stages``, embedding, mining, filtering and writing. Rejections
    of earlier steps (``rejected_before``) are written with the rest. With ``checkpoint`` (the
    "mined" stage), everything before writing is read from it when it is done (``records`` is
    not used then), else run and checkpointed. Returns the PCollections of the files written
    (for ``finish_graph``)."""
    # The embedding's tallies count this run's work (texts encoded, cache hits), not the data:
    # they are never checkpointed, and a run that reuses "mined" embeds nothing.
    embedding: list = []

    def mine() -> dict:
        mined = _mine(p, records, cfg, teacher, fingerprint, staging, stages)
        embedding.append(mined.pop("embedding"))
        return mined

    if checkpoint is None:
        mined = mine()
    else:
        mined, _ = checkpointed(p, checkpoint, MINED_COLLECTIONS, lambda: _summed(mine()))
    shard_files = mined["kept"] | "WriteShards" >> WriteTaskShards(
        staging, cfg.rows_per_shard, staging
    )
    rejected = (*rejected_before, mined["reports"], *embedding) | "AllRejected" >> beam.Flatten()
    rejected_files = rejected | "WriteRejected" >> WriteRejected(staging, cfg.rows_per_shard)
    return shard_files, rejected_files


def _mine(p, records, cfg: CurateConfig, teacher: str, fingerprint: str, staging: str, stages):
    """``records`` through ``stages``, the corpus, embedding and mining -> {"kept": (task, row)
    per kept row, "reports": every step's rejections and tallies, "embedding": the
    embedding's}."""
    names = recorded_names(cfg)
    corpus = CorpusTexts({names[s.path]: s.columns.get("text", "text") for s in cfg.corpus})
    examples, dropped = apply_stages(records, stages, staging)
    corpus_rows = p | "ReadCorpus" >> ReadInputs(cfg.corpus, None, names)
    corpus_texts, corpus_dropped = corpus_rows | corpus.name >> ApplyStage(corpus, staging)
    keyed_texts = (
        examples | "ExampleTexts" >> beam.FlatMap(example_texts),
        corpus_texts,
    ) | "AllTexts" >> beam.Flatten()
    child = cfg.teacher_process if cfg.teacher_process is not None else in_process_worker(p)
    embedded = keyed_texts | "Embed" >> EmbedTexts(
        cfg, teacher, fingerprint, staging, release=on_local_runner(p), teacher_process=child
    )
    mine = MineBlocks if cfg.mine_blocks > 1 else MineTasks
    kept, filtered = (examples, corpus_texts, embedded) | "Mine" >> mine(
        cfg, teacher_name(teacher, cfg.show_paths), fingerprint, staging
    )
    reports = (*dropped, filtered, corpus_dropped) | "MinedReports" >> beam.Flatten()
    return {"kept": kept, "reports": reports, "embedding": embedded}


def on_local_runner(p: beam.Pipeline) -> bool:
    """Whether ``p`` runs on Beam's local runner (FnApiRunner, or the DirectRunner that hands
    its work to it), which gives each worker one bundle per stage: there a worker can drop its
    teacher once its embedding bundle ends (``EmbedGroupFn``), where a runner of many small
    bundles (Dataflow, Dask) would reload it for each."""
    return type(p.runner).__name__ in ("FnApiRunner", "SwitchingDirectRunner")


def in_process_worker(p: beam.Pipeline) -> bool:
    """Whether ``p`` runs on Beam's local runner in one in-process worker (one
    ``--direct_num_workers``, ``--direct_running_mode=in_memory``): where encoding in a child
    process keeps the teacher's memory out from under mining and writing (``teacher_process``)."""
    from apache_beam.options.pipeline_options import DirectOptions

    options = p.options.view_as(DirectOptions)
    one = options.direct_num_workers == 1 and options.direct_running_mode == "in_memory"
    return on_local_runner(p) and one


def resolve_low_memory(cfg: CurateConfig, beam_args: list[str]) -> CurateConfig:
    """``cfg`` with ``low_memory`` decided: when not given (None), on for Beam's local runner
    with no ``--direct_*`` option (the layout that holds the least, README "Speed"), off
    otherwise; then ``low_memory_config`` when on."""
    from kalm_data.harness.run import beam_option, is_local_runner

    if cfg.low_memory is None:
        lean = is_local_runner(beam_option(beam_args, "--runner")) and not any(
            a.startswith("--direct_") for a in beam_args
        )
        cfg = cfg.model_copy(update={"low_memory": lean})
    return low_memory_config(cfg, beam_args) if cfg.low_memory else cfg


def low_memory_config(cfg: CurateConfig, beam_args: list[str]) -> CurateConfig:
    """``cfg`` for ``--low-memory``: its teacher on torch's thread count (every core) unless
    ``torch_threads`` was given; the one in-process worker comes from the harness (``light``).
    ``UsageError`` on another runner or with ``--direct_*`` options, which it would contradict."""
    from kalm_data.errors import UsageError
    from kalm_data.harness.run import beam_option, is_local_runner

    runner = beam_option(beam_args, "--runner")
    if not is_local_runner(runner):
        raise UsageError(
            f"--low-memory chooses the layout of Beam's local runner, not of --runner {runner} "
            "(size that runner's workers instead)"
        )
    given = [a.split("=", 1)[0] for a in beam_args if a.startswith("--direct_")]
    if given:
        raise UsageError(f"--low-memory chooses the worker layout itself: drop {', '.join(given)}")
    if "torch_threads" in cfg.model_fields_set:
        return cfg
    return cfg.model_copy(update={"torch_threads": 0})


def _summed(mined: dict) -> dict:
    """``mined`` with its tallies summed into one (what the checkpoint stores)."""
    return {"kept": mined["kept"], "reports": mined["reports"] | "SumMined" >> SumTallies()}


def _pair_stages(p: beam.Pipeline, cfg: CurateConfig, teacher: str, staging: str) -> dict:
    """Read the inputs and run ``pair_stages``: the "pairs" checkpoint's collections."""
    rows = p | "ReadInputs" >> ReadInputs(cfg.inputs, staging, recorded_names(cfg))
    examples, dropped = apply_stages(rows, pair_stages(cfg, teacher, staging), staging)
    return {
        "examples": examples,
        "reports": dropped | "PairReports" >> beam.Flatten() | "SumPairs" >> SumTallies(),
        "read": rows
        | "CountRows" >> beam.combiners.Count.Globally()
        | "ReadCount" >> beam.Map(lambda n: ("rows_read", n)),
    }


def _preflight(cfg: CurateConfig, teacher: str) -> list[dict]:
    """Check what can be checked before anything is written (``UsageError`` otherwise): every
    input and corpus file exists, is whole and has the columns it needs, and the teacher is a
    model. Returns the inputs' manifest entries (path, task, fingerprint)."""
    from kalm_data.embed.teacher import check_teacher
    from kalm_data.readers.evalsets import check_eval_set
    from kalm_data.readers.preflight import check_corpus, check_input

    check_teacher(teacher)
    infos = [check_input(spec) for spec in cfg.inputs] + [check_corpus(s) for s in cfg.corpus]
    for eval_set in cfg.decontaminate:
        check_eval_set(eval_set)
    names = recorded_names(cfg)
    return [{"path": names[i.path], "task": i.task, "fingerprint": i.fingerprint} for i in infos]


def _check_cache_shared(cache_dir: str, beam_args: list[str]) -> None:
    """On Dataflow, mining reads vectors that other workers wrote to the embedding cache: a
    local ``cache_dir`` (each VM its own) is a ``UsageError``."""
    from kalm_data.errors import UsageError
    from kalm_data.harness.run import beam_option

    runner = (beam_option(beam_args, "--runner") or "").lower()
    if "dataflow" in runner and "://" not in cache_dir:
        raise UsageError(
            f"--cache-dir {cache_dir} is local to each Dataflow worker, but mining reads the "
            "vectors every worker wrote: give a bucket path, e.g. --cache-dir gs://BUCKET/kalm-cache"
        )


def published_settings(cfg: CurateConfig, teacher: str) -> dict:
    """The settings as the manifest records them: no local path unless ``show_paths``."""
    from kalm_data.readers.evalsets import eval_set_name

    settings = cfg.model_dump()
    if cfg.show_paths:
        return settings
    names = recorded_names(cfg)
    for key in ("inputs", "corpus"):
        for spec in settings[key]:
            spec["path"] = names[spec["path"]]
    settings["decontaminate"] = [eval_set_name(x) for x in cfg.decontaminate]
    settings["output"] = os.path.basename(cfg.output.rstrip("/")) or cfg.output
    settings["cache_dir"] = "(local)" if cfg.cache_dir else None
    settings["teacher"] = teacher_name(teacher)
    if settings["paths_root"]:
        settings["paths_root"] = "(local)"
    return settings


def run(
    cfg: CurateConfig,
    beam_args: list[str] | None = None,
    test_pipeline=None,
    overwrite: bool = False,
    verbose: bool = False,
    stages: list[Stage] | None = None,
) -> dict:
    """Run ``curate`` end to end and return the manifest (also written to OUTPUT/manifest.json).

    Order: check inputs, teacher and output (nothing written before), lock the output, run the
    pipeline into the staging folder, count; only a balanced run (rows read = kept + rejected)
    is committed. An unbalanced run leaves the previous output as it was, its staged files in
    ``OUTPUT/.kalm-data/staging`` for inspection, and returns a manifest with
    ``counts.balanced`` false.
    """
    from kalm_data.embed.cache import default_cache_dir
    from kalm_data.embed.teacher import default_teacher, teacher_fingerprint
    from kalm_data.errors import UsageError
    from kalm_data.harness.run import Job, execute

    if not cfg.inputs:
        raise UsageError("curate needs at least one input (--input PATH)")
    if not cfg.output:
        raise UsageError("curate needs an output folder (--output DIR)")
    teacher = cfg.teacher or default_teacher()
    cfg = resolve_low_memory(cfg, beam_args or [])
    inputs = _preflight(cfg, teacher)
    cfg = cfg.model_copy(update={"cache_dir": cfg.cache_dir or default_cache_dir()})
    _check_cache_shared(cfg.cache_dir, beam_args or [])
    fingerprint = teacher_fingerprint(teacher, cfg.precision)
    settings = published_settings(cfg, teacher)
    plan = checkpoint_plan(cfg, settings, teacher, fingerprint, inputs) if cfg.checkpoints else None
    corpus = inputs[len(cfg.inputs) :]
    cached = plan is not None and all_cached(plan, cfg.cache_dir, fingerprint, corpus)
    used: dict = {}  # per checkpoint: folder, reused (filled when the graph is built)
    job = Job(
        command="curate",
        output=cfg.output,
        settings=settings,
        inputs=inputs,
        build=lambda p, staging: used.update(
            build(p, cfg, teacher, fingerprint, staging, stages, plan)
        ),
        report=lambda staging: {"checkpoints": used} if used else {},
        sections={
            "teacher": {
                "teacher": teacher_name(teacher, cfg.show_paths),
                "fingerprint": fingerprint,
            }
        },
        kept_on_interrupt=f"; finished embeddings are kept in {cfg.cache_dir}"
        + (f" and finished stages in {checkpoint_root(cfg.output)}" if plan else "")
        + ", and reused",
        light="every text's vector is cached"
        if cached
        else ("--low-memory" if cfg.low_memory else ""),
    )
    manifest = execute(job, beam_args, test_pipeline, overwrite, verbose)
    if used and manifest["counts"]["balanced"]:
        remove_unused_checkpoints(cfg.output, [v["folder"] for v in used.values()])
        if not used["mined"]["reused"]:  # this run embedded every text
            note_all_cached(plan, cfg.cache_dir, fingerprint, corpus)
    return manifest
