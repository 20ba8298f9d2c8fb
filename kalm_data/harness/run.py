"""The run harness every pipeline uses: check, lock, stage, run, count, commit, manifest.

``execute(job, beam_args)``:

1. the output must be a writable folder that holds nothing kalm-data did not write
   (``kalm_data.writers.commit``); it is locked for the run (``kalm_data.writers.lock``);
2. the job's ``build`` wires the pipeline, writing only under the staging folder it is given,
   with ``count_read`` on its input rows;
3. the pipeline runs with a quiet console and the live progress display
   (``kalm_data.harness.console``, ``kalm_data.harness.progress``); Ctrl-C stops it at once;
4. the staged files are counted; only when rows read = rows kept + rows rejected is the output
   committed and ``manifest.json`` (counts per stage and reason, settings, versions, input
   fingerprints, counters, seconds per stage, the job's own sections) written last. The
   counters are the tallies the pipeline wrote (``kalm_data.beam.counts``), the same on every
   runner; the runner's metrics only for a graph that wrote none.

It returns the manifest; ``counts.balanced`` false means nothing was committed.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

READ_COUNT = "_counts/read.json"


@dataclass(frozen=True)
class Job:
    """What a pipeline hands to the harness."""

    command: str  # names the log file: OUTPUT/logs/<command>-<time>.log
    output: str
    settings: dict  # the validated config, as the manifest records it
    inputs: list[dict]  # one entry per input: path, task, fingerprint
    build: Callable  # build(pipeline, staging): wires the pipeline
    sections: dict = field(default_factory=dict)  # more manifest sections, e.g. the teacher
    #: More sections computed from the staged output after the run (``report(staging)``).
    report: Callable[[str], dict] | None = None
    kept_on_interrupt: str = ""  # what an interrupted run keeps, for its message
    #: Why the run takes one in-process worker, e.g. "every text's vector is cached" (light
    #: work) or "--low-memory" ("": the default layout): on a local runner with no
    #: ``--direct_*`` option it runs in one.
    light: str = ""


def write_read_count(count: int, staging: str) -> str:
    """Write ``count`` as the run's rows read (the funnel's top) under ``staging``; returns
    the file's path."""
    from kalm_data.writers.manifest import write_json

    path = f"{staging}/{READ_COUNT}"
    write_json({"rows_read": count}, path)
    return path


def count_read(rows, staging: str):
    """Write how many input rows ``rows`` has (the funnel's top); returns the PCollection of
    the file written, to feed the pipeline's final sink."""
    import apache_beam as beam

    return (
        rows
        | "CountRows" >> beam.combiners.Count.Globally()
        | "WriteCount" >> beam.Map(write_read_count, staging)
    )


def finish_graph(*outputs):
    """Join every output of the pipeline (the files each sink wrote) in one last transform:
    Beam's Dask runner computes only the graph of the pipeline's last transform, so every
    pipeline ends here."""
    import apache_beam as beam

    return outputs | "AllFiles" >> beam.Flatten() | "Done" >> beam.combiners.Count.Globally()


def _rows_read(staging: str) -> int:
    import fsspec

    with fsspec.open(f"{staging}/{READ_COUNT}", "r") as f:
        return int(json.load(f)["rows_read"])


#: Beam's local runner, named so that the DirectRunner's first choice, Prism, is never tried:
#: it downloads a binary from GitHub at run time, then runs without the worker processes
#: ``--direct_num_workers`` asks for.
LOCAL_RUNNER = "apache_beam.runners.portability.fn_api_runner.FnApiRunner"


_LAYOUT_FLAGS = ("--runner", "--direct_num_workers", "--direct_running_mode")


def beam_option(args: list[str], flag: str) -> str | None:
    """The value of ``flag`` in ``args`` (``--flag=value`` or ``--flag value``), or None."""
    for i, arg in enumerate(args):
        if arg.startswith(f"{flag}="):
            return arg.split("=", 1)[1]
        if arg == flag and i + 1 < len(args):
            return args[i + 1]
    return None


#: Beam's Dask runner, and ours (``kalm_data.beam.dask_runner``) that replaces it.
BEAM_DASK_RUNNER = "apache_beam.runners.dask.dask_runner.DaskRunner"
DASK_RUNNER = "kalm_data.beam.dask_runner.DaskRunner"


def resolve_runner(runner: str | None) -> str | None:
    """``runner`` (a ``--runner`` value), with Beam's Dask runner replaced by ours; any other
    value unchanged."""
    if runner in (BEAM_DASK_RUNNER, "DaskRunner"):
        return DASK_RUNNER
    return runner


def _with_runner(args: list[str], resolve: Callable[[str | None], str | None]) -> list[str]:
    """``args`` with the value of ``--runner`` (either spelling) replaced by ``resolve`` of it."""
    out = list(args)
    for i, arg in enumerate(out):
        if arg.startswith("--runner="):
            out[i] = f"--runner={resolve(arg.split('=', 1)[1])}"
        elif arg == "--runner" and i + 1 < len(out):
            out[i + 1] = resolve(out[i + 1])
    return out


def is_local_runner(runner: str | None) -> bool:
    """Whether ``runner`` (a ``--runner`` value; None: not given) is Beam's local runner."""
    return runner is None or runner.lower() in ("directrunner", LOCAL_RUNNER.lower())


def default_beam_args(beam_args: list[str], light: bool = False) -> list[str]:
    """Beam options with our defaults added: with no ``--runner``, Beam's local FnApiRunner
    (``LOCAL_RUNNER``); on a local runner with no ``--direct_*`` option, one worker process
    per core (each teacher on one thread: the fastest layout on CPU, and the same bits as any
    other), or, for ``light`` work, one in-process worker: starting worker processes would
    cost more than they save, and one process holds about half the memory. Worker threads
    (``multi_threading``) hold less memory but are not the default: Beam's threaded runner once
    grew its buffers without bound on a warm 20,000-pair run (README "Speed"). Beam's Dask
    runner is replaced by ``kalm_data.beam.dask_runner.DaskRunner``, which computes each side
    input once."""
    args = _with_runner(list(beam_args), resolve_runner)
    runner = beam_option(args, "--runner")
    if runner is None:
        args.append(f"--runner={LOCAL_RUNNER}")
    local = is_local_runner(runner)
    workers = os.cpu_count() or 1
    if local and not any(a.startswith("--direct_") for a in args):
        if light:
            args += ["--direct_num_workers=1", "--direct_running_mode=in_memory"]
        elif workers > 1:
            args += [f"--direct_num_workers={workers}", "--direct_running_mode=multi_processing"]
    return args


def metrics_of(result) -> dict:
    """Counter values of namespace kalm_data, where the runner reports them."""
    from apache_beam.metrics.metric import MetricsFilter

    from kalm_data.beam import NAMESPACE

    try:
        counters = result.metrics().query(MetricsFilter().with_namespace(NAMESPACE))["counters"]
    except (AttributeError, NotImplementedError, KeyError):
        return {}
    out: dict[str, int] = {}
    for c in counters:
        name = c.key.metric.name
        out[name] = out.get(name, 0) + int(c.committed or c.attempted or 0)
    return dict(sorted(out.items()))


def _run_pipeline(pipeline, job: Job, tick=None):
    """Run ``pipeline`` to the end; a failure becomes ``RunFailed`` naming its root cause, an
    interrupt ``Interrupted`` saying what was kept."""
    from kalm_data.beam.runner import run_interruptibly
    from kalm_data.errors import Interrupted, RunFailed, root_cause

    try:
        return run_interruptibly(pipeline, tick)
    except KeyboardInterrupt as e:
        raise Interrupted(f"interrupted: {job.output} is unchanged{job.kept_on_interrupt}") from e
    except Exception as e:
        log.debug("pipeline failed", exc_info=True)
        raise RunFailed(
            f"the pipeline failed: {root_cause(e)}; {job.output} is unchanged "
            "(run with -v for the traceback)"
        ) from e


def _log_path(job: Job) -> str:
    """``OUTPUT/logs/<command>-<UTC time>.log`` (a local temporary file for a remote output)."""
    import tempfile

    import fsspec

    name = f"{job.command}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.log"
    fs, root = fsspec.core.url_to_fs(job.output)
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


def execute(
    job: Job,
    beam_args: list[str] | None = None,
    test_pipeline=None,
    overwrite: bool = False,
    verbose: bool = False,
) -> dict:
    """Run ``job`` (see module docstring) and return its manifest."""
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    from kalm_data.beam.counts import read_tallies
    from kalm_data.harness.console import quiet_console
    from kalm_data.harness.memory import limit_malloc_arenas
    from kalm_data.harness.progress import ProgressDisplay, read_timings
    from kalm_data.published import redact
    from kalm_data.writers import commit as out
    from kalm_data.writers.lock import OutputLock
    from kalm_data.writers.manifest import build_manifest, write_json

    out.check_writable(job.output)
    started = time.monotonic()
    with OutputLock(job.output):
        replaced = out.replaceable_files(job.output, overwrite)
        staging = out.staging_dir(job.output)
        out.clear_staging(job.output)
        log_path = _log_path(job)
        with quiet_console(log_path, verbose) as console:
            args = default_beam_args(beam_args or [], bool(job.light))
            if job.light:
                log.info("one in-process worker: %s", job.light)
            log.info("runner: %s", " ".join(a for a in args if a.startswith(_LAYOUT_FLAGS)))
            if beam_option(args, "--direct_running_mode") == "multi_threading":
                limit_malloc_arenas()  # worker threads share this process's heap
            options = PipelineOptions(args)
            pipeline = test_pipeline or beam.Pipeline(options=options)
            job.build(pipeline, staging)
            display = ProgressDisplay(staging, console)
            try:
                result = _run_pipeline(pipeline, job, display.tick)
            finally:
                display.close()
        if not verbose:
            log.info("logs: %s", _keep_log(log_path, job.output))
        timings = {**read_timings(staging), "total": round(time.monotonic() - started, 3)}
        tallies = read_tallies(staging)
        manifest = build_manifest(
            staging,
            _rows_read(staging),
            job.settings,
            job.inputs,
            metrics_of(result) if tallies is None else tallies,
            timings,
        )
        manifest.update(job.sections)
        if job.report is not None:
            manifest.update(job.report(staging))
        manifest = redact(manifest)
        if not manifest["counts"]["balanced"]:
            log.error(
                "rows read != kept + rejected: nothing committed; %s is unchanged and the "
                "staged output is in %s",
                job.output,
                staging,
            )
            return manifest
        manifest["files"] = out.commit(job.output, replaced)
        write_json(manifest, f"{job.output.rstrip('/')}/manifest.json")
        out.finish(job.output)
    return manifest
