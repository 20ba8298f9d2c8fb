"""The ``curate`` pipeline: input pairs -> mined, filtered, task-sharded Parquet.

    read -> validate -> dedup & merge by query -> embed unique texts (cached)
         -> per task: FAISS search, ranking-consistency filter, negatives -> write

``build`` only wires transforms; ``run`` stages the outputs, runs the pipeline on any Beam runner,
commits the outputs and writes the manifest. Both are used by ``kalm-data curate`` and by
``pipelines/curate.py``.
"""

from __future__ import annotations

import json
import logging
import os
import time

import apache_beam as beam

from kalm_data.beam.embed import EmbedTexts
from kalm_data.beam.mine import MineTasks, example_texts
from kalm_data.beam.read import ReadInputs
from kalm_data.beam.stage import ApplyStage
from kalm_data.beam.write import WriteRejected, WriteTaskShardsFn
from kalm_data.config import CurateConfig
from kalm_data.stage import Stage
from kalm_data.stages.corpus import CorpusTexts
from kalm_data.stages.dedup import DedupIds, MergeByQuery
from kalm_data.stages.read import ReadErrors
from kalm_data.stages.validate import Validate

log = logging.getLogger(__name__)


def _with_vector(item):
    key, grouped = item
    texts, vectors = list(grouped["text"]), list(grouped["vector"])
    if texts and vectors:
        yield key, texts[0], vectors[0]


def _write_count(count: int, path: str) -> str:
    from kalm_data.writers.manifest import write_json

    write_json({"rows_read": count}, path)
    return path


def pair_stages(cfg: CurateConfig, teacher: str) -> list[Stage]:
    """The stages every input row goes through, in order, before embedding and mining."""
    columns = {s.path: s.columns for s in cfg.inputs}
    return [
        ReadErrors(),
        Validate(columns, cfg.max_chars, cfg.overlong, teacher),
        DedupIds(),
        MergeByQuery(),
    ]


def apply_stages(records, stages: list[Stage], progress: str | None):
    """``records`` through each stage in turn -> (kept, [rejected of each stage])."""
    rejected = []
    for stage in stages:
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
):
    """Wire the curate pipeline into ``p``; outputs go under ``staging``. ``stages`` replaces
    ``pair_stages(cfg, teacher)`` (to add a stage of your own)."""
    stages = pair_stages(cfg, teacher) if stages is None else stages
    corpus = CorpusTexts({s.path: s.columns.get("text", "text") for s in cfg.corpus})

    rows = p | "ReadInputs" >> ReadInputs(cfg.inputs, progress=staging)
    count_file = (
        rows
        | "CountRows" >> beam.combiners.Count.Globally()
        | "WriteCount" >> beam.Map(_write_count, f"{staging}/_counts/read.json")
    )
    examples, dropped = apply_stages(rows, stages, staging)
    corpus_rows = p | "ReadCorpus" >> ReadInputs(cfg.corpus)
    corpus_texts, corpus_dropped = corpus_rows | corpus.name >> ApplyStage(corpus, staging)
    keyed_texts = (
        examples | "ExampleTexts" >> beam.FlatMap(example_texts),
        corpus_texts,
    ) | "AllTexts" >> beam.Flatten()
    vectors = keyed_texts | "Embed" >> EmbedTexts(cfg, teacher, fingerprint, staging)
    corpus_vectors = (
        {"text": corpus_texts, "vector": vectors}
        | "JoinCorpus" >> beam.CoGroupByKey()
        | "CorpusVectors" >> beam.FlatMap(_with_vector)
    )
    kept, filtered = (examples, vectors, corpus_vectors) | "Mine" >> MineTasks(cfg, teacher)
    shard_files = kept | "WriteShards" >> beam.ParDo(
        WriteTaskShardsFn(staging, cfg.rows_per_shard, staging)
    )
    rejected = (*dropped, filtered, corpus_dropped) | "AllRejected" >> beam.Flatten()
    rejected_files = rejected | "WriteRejected" >> WriteRejected(staging, cfg.rows_per_shard)
    # One sink that depends on every output, applied last: Beam's Dask runner computes only the
    # graph of the last transform of the pipeline.
    _ = (
        (count_file, shard_files, rejected_files)
        | "AllFiles" >> beam.Flatten()
        | "Done" >> beam.combiners.Count.Globally()
    )


def _metrics(result) -> dict:
    """Counter values of namespace kalm_data, where the runner reports them."""
    from apache_beam.metrics.metric import MetricsFilter

    try:
        counters = result.metrics().query(MetricsFilter().with_namespace("kalm_data"))["counters"]
    except (AttributeError, NotImplementedError, KeyError):
        return {}
    out: dict[str, int] = {}
    for c in counters:
        out[c.key.metric.name] = out.get(c.key.metric.name, 0) + int(
            c.committed or c.attempted or 0
        )
    return dict(sorted(out.items()))


def default_beam_args(beam_args: list[str]) -> list[str]:
    """With no runner flags: the DirectRunner with one worker process per core (each teacher
    on one thread: the fastest layout on CPU, and the same bits as any other)."""
    if any(a.startswith(("--runner", "--direct_")) for a in beam_args):
        return beam_args
    workers = os.cpu_count() or 1
    if workers == 1:
        return beam_args
    return [*beam_args, f"--direct_num_workers={workers}", "--direct_running_mode=multi_processing"]


def _preflight(cfg: CurateConfig, teacher: str) -> list[dict]:
    """Check what can be checked before anything is written (``UsageError`` otherwise): every
    input and corpus file exists, is whole and has the columns it needs, and the teacher is a
    model. Returns the inputs' manifest entries (path, task, fingerprint)."""
    from kalm_data.embed.teacher import check_teacher
    from kalm_data.readers.preflight import check_corpus, check_input

    check_teacher(teacher)
    infos = [check_input(spec) for spec in cfg.inputs] + [check_corpus(s) for s in cfg.corpus]
    entries = [{"path": i.path, "task": i.task, "fingerprint": i.fingerprint} for i in infos]
    return entries


def _rows_read(staging: str) -> int:
    import fsspec

    with fsspec.open(f"{staging}/_counts/read.json", "r") as f:
        return int(json.load(f)["rows_read"])


def _run_pipeline(pipeline, cfg: CurateConfig, tick=None):
    """Run ``pipeline`` to the end; a failure becomes ``RunFailed`` naming its root cause, an
    interrupt ``Interrupted`` saying what was kept."""
    from kalm_data.beam.runner import run_interruptibly
    from kalm_data.errors import Interrupted, RunFailed, root_cause

    try:
        return run_interruptibly(pipeline, tick)
    except KeyboardInterrupt as e:
        raise Interrupted(
            f"interrupted: {cfg.output} is unchanged; finished embeddings are kept in "
            f"{cfg.cache_dir} and the next run reuses them"
        ) from e
    except Exception as e:
        log.debug("pipeline failed", exc_info=True)
        raise RunFailed(
            f"the pipeline failed: {root_cause(e)}; {cfg.output} is unchanged "
            "(run with -v for the traceback)"
        ) from e


def _log_path(output: str) -> str:
    """``OUTPUT/logs/curate-<UTC time>.log`` (a local temporary file for a remote output)."""
    import tempfile

    import fsspec

    name = f"curate-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.log"
    fs, root = fsspec.core.url_to_fs(output)
    if "file" not in (fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)):
        return os.path.join(tempfile.mkdtemp(prefix="kalm-data-logs-"), name)
    return os.path.join(root, "logs", name)


def _keep_log(log_path: str, output: str) -> str:
    """Where the log ends up: a temporary one (remote output) is copied to ``OUTPUT/logs/``."""
    if "kalm-data-logs-" not in log_path:
        return log_path
    import fsspec

    fs, root = fsspec.core.url_to_fs(output)
    fs.put_file(log_path, f"{root.rstrip('/')}/logs/{os.path.basename(log_path)}")
    return f"{output.rstrip('/')}/logs/{os.path.basename(log_path)}"


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
    from apache_beam.options.pipeline_options import PipelineOptions

    from kalm_data.embed.cache import default_cache_dir
    from kalm_data.embed.teacher import default_teacher, teacher_fingerprint
    from kalm_data.errors import UsageError
    from kalm_data.harness.console import quiet_console
    from kalm_data.harness.progress import ProgressDisplay, read_timings
    from kalm_data.writers.commit import (
        check_writable,
        clear_staging,
        commit,
        finish,
        replaceable_files,
        staging_dir,
    )
    from kalm_data.writers.lock import OutputLock
    from kalm_data.writers.manifest import build_manifest, write_json

    if not cfg.inputs:
        raise UsageError("curate needs at least one input (--input PATH)")
    if not cfg.output:
        raise UsageError("curate needs an output folder (--output DIR)")
    teacher = cfg.teacher or default_teacher()
    inputs = _preflight(cfg, teacher)
    cfg = cfg.model_copy(update={"cache_dir": cfg.cache_dir or default_cache_dir()})
    fingerprint = teacher_fingerprint(teacher, cfg.precision)
    check_writable(cfg.output)
    started = time.monotonic()
    with OutputLock(cfg.output):
        replaced = replaceable_files(cfg.output, overwrite)
        staging = staging_dir(cfg.output)
        clear_staging(cfg.output)

        options = PipelineOptions(default_beam_args(beam_args or []))
        log_path = _log_path(cfg.output)
        with quiet_console(log_path, verbose) as console:
            pipeline = test_pipeline or beam.Pipeline(options=options)
            build(pipeline, cfg, teacher, fingerprint, staging, stages)
            display = ProgressDisplay(staging, console)
            try:
                result = _run_pipeline(pipeline, cfg, display.tick)
            finally:
                display.close()
        if not verbose:
            log.info("logs: %s", _keep_log(log_path, cfg.output))

        manifest = build_manifest(
            staging,
            _rows_read(staging),
            cfg.model_dump(),
            inputs,
            {"teacher": teacher, "fingerprint": fingerprint},
            _metrics(result),
            {**read_timings(staging), "total": round(time.monotonic() - started, 3)},
        )
        if not manifest["counts"]["balanced"]:
            log.error(
                "rows read != kept + rejected: nothing committed; %s is unchanged and the "
                "staged output is in %s",
                cfg.output,
                staging,
            )
            return manifest
        manifest["files"] = commit(cfg.output, replaced)
        write_json(manifest, f"{cfg.output.rstrip('/')}/manifest.json")
        finish(cfg.output)
    return manifest
