"""The ``generate`` pipeline: personas -> brainstormed tasks -> one example each -> task shards.

    personas (read, dedup, seeded sample; on the driver)
      -> brainstorm requests (persona = system prompt) -> LLM -> Brainstorm: task definitions
      -> DedupTasks (+ the fixed tasks of sts and bitext)         <- the funnel's units
      -> example requests (seeded settings, language) -> LLM
      -> ParseExample -> DedupGenerated -> data/<type>-<lang>/part-*.parquet (GeneratedPair)

Every LLM call goes through ``RunInference`` with ``kalm_data.generate.handler.LLMHandler`` and
the response cache, so a rerun after a kill asks nothing already answered. ``generated_pairs``
wires everything up to the validated pairs; ``synthesize`` feeds them to curate's mining in the
same job. ``run`` executes it on the run harness (staging, lock, balance check, commit, manifest).
"""

from __future__ import annotations

import logging
import os

import apache_beam as beam
from apache_beam.ml.inference.base import KeyedModelHandler, RunInference

from kalm_data.beam import SplitRejected
from kalm_data.beam.stage import ApplyStage
from kalm_data.generate import plan
from kalm_data.generate.backends import BackendSpec
from kalm_data.generate.config import GenerateConfig
from kalm_data.generate.handler import LLMHandler
from kalm_data.generate.personas import Persona
from kalm_data.stages.generated import Brainstorm, DedupGenerated, DedupTasks, ParseExample

log = logging.getLogger(__name__)

LLM_COUNTS = "_counts/llm-{stage}.json"


def _unwrap(item):
    """(context, PredictionResult) -> (context, LLMResponse)."""
    context, result = item
    return context, result.inference


def _usage(item) -> tuple[int, int, int, int, int]:
    """(requests, cached, errors, prompt tokens, completion tokens) of one answer."""
    response = item[1]
    return (
        1,
        int(response.cached),
        int(response.finish_reason == "error"),
        response.prompt_tokens,
        response.completion_tokens,
    )


def _write_usage(totals, path: str) -> str:
    from kalm_data.writers.manifest import write_json

    keys = ("requests", "cached", "errors", "prompt_tokens", "completion_tokens")
    write_json(dict(zip(keys, totals or (0,) * len(keys), strict=True)), path)
    return path


def _sum_tuples(values) -> tuple:
    totals = [0, 0, 0, 0, 0]
    for value in values:
        totals = [a + b for a, b in zip(totals, value, strict=True)]
    return tuple(totals)


class AskLLM(beam.PTransform):
    """(context, LLMRequest) -> (context, LLMResponse) through the cached backend; token
    usage written to ``<staging>/_counts/llm-<stage>.json`` (``.usage`` is that file). With an
    ``accelerator`` (a Dataflow resource hint), only this step asks for GPU workers."""

    def __init__(
        self,
        spec: BackendSpec,
        cache_dir: str | None,
        staging: str,
        stage: str,
        accelerator: str | None = None,
    ):
        super().__init__()
        self.spec, self.cache_dir, self.staging, self.stage = spec, cache_dir, staging, stage
        self.accelerator = accelerator
        self.usage = None

    def expand(self, requests):
        ask = RunInference(KeyedModelHandler(LLMHandler(self.spec, self.cache_dir)))
        if self.accelerator:  # Dataflow runs this step on GPU workers (right fitting)
            ask = ask.with_resource_hints(accelerator=self.accelerator)
        answers = requests | "Ask" >> ask | "Unwrap" >> beam.Map(_unwrap)
        self.usage = (
            answers
            | "Usage" >> beam.Map(_usage)
            | "SumUsage" >> beam.CombineGlobally(_sum_tuples)
            | "WriteUsage"
            >> beam.Map(_write_usage, f"{self.staging}/{LLM_COUNTS.format(stage=self.stage)}")
        )
        return answers


class GeneratedPairs(beam.PTransform):
    """The pipeline up to validated pairs (module docstring). Returns
    ``(pairs, rejected, units, usage_files)``: ``units`` is what the funnel counts."""

    def __init__(
        self,
        cfg: GenerateConfig,
        spec: BackendSpec,
        personas: list[Persona],
        staging: str,
        generator: str,
    ):
        super().__init__()
        self.cfg, self.spec, self.personas = cfg, spec, personas
        self.staging, self.generator = staging, generator

    def expand(self, p):
        cfg, staging = self.cfg, self.staging
        cache_dir = cfg.llm_cache_dir
        ask_brainstorm = AskLLM(self.spec, cache_dir, staging, "brainstorm", cfg.accelerator)
        brainstorms = (
            p
            | "Brainstorms" >> beam.Create(plan.brainstorm_requests(self.personas, cfg))
            | "AskBrainstorm" >> ask_brainstorm
            | "Brainstorm" >> beam.FlatMap(Brainstorm(cfg.tasks_per_persona).process)
            | "SplitBrainstorm" >> SplitRejected()
        )
        brainstormed, brainstorm_rejected = brainstorms
        fixed = p | "FixedTasks" >> beam.Create(plan.single_stage_tasks(cfg))
        units = (brainstormed, fixed, brainstorm_rejected) | "Units" >> beam.Flatten()
        brainstormed, duplicate_tasks = brainstormed | "DedupTasks" >> ApplyStage(
            DedupTasks(), staging
        )
        tasks = (brainstormed, fixed) | "AllTasks" >> beam.Flatten()
        ask_example = AskLLM(self.spec, cache_dir, staging, "example", cfg.accelerator)
        answers = tasks | "Jobs" >> beam.Map(_job_and_request, cfg) | "AskExample" >> ask_example
        pairs, bad = answers | "ParseExample" >> ApplyStage(ParseExample(self.generator), staging)
        pairs, duplicates = pairs | "DedupGenerated" >> ApplyStage(DedupGenerated(), staging)
        rejected = (brainstorm_rejected, duplicate_tasks, bad, duplicates) | (
            "GenRejected" >> beam.Flatten()
        )
        return pairs, rejected, units, (ask_brainstorm.usage, ask_example.usage)


def _job_and_request(task, cfg: GenerateConfig):
    job = plan.example_job(task, cfg)
    return job, plan.example_request(job, cfg)


def _write_task(item, root: str, rows_per_part: int):
    from kalm_data.generate.records import GeneratedPair
    from kalm_data.writers.names import folder_name
    from kalm_data.writers.parquet import write_parts

    task, pairs = item
    rows = sorted((pair.model_dump() for pair in pairs), key=lambda r: r["id"])
    yield from write_parts(GeneratedPair, rows, f"{root}/data/{folder_name(task)}", rows_per_part)


def build(
    p, cfg: GenerateConfig, spec: BackendSpec, personas: list[Persona], staging: str, generator: str
):
    """Wire ``generate`` into ``p``; outputs go under ``staging``."""
    from kalm_data.beam.write import WriteRejected
    from kalm_data.harness.run import count_read, finish_graph

    pairs, rejected, units, usage = p | "Generate" >> GeneratedPairs(
        cfg, spec, personas, staging, generator
    )
    count_file = count_read(units, staging)
    shard_files = (
        pairs
        | "KeyByTask" >> beam.Map(lambda pair: (pair.task, pair))
        | "GroupByTask" >> beam.GroupByKey()
        | "WriteShards" >> beam.FlatMap(_write_task, staging, cfg.rows_per_shard)
    )
    rejected_files = rejected | "WriteRejected" >> WriteRejected(staging, cfg.rows_per_shard)
    finish_graph(count_file, shard_files, rejected_files, *usage)


def generator_name(spec: BackendSpec, show_paths: bool = False) -> str:
    """The model as outputs record it: a hub id as is, a local folder by its name."""
    from kalm_data.generate.llm import model_name

    return spec.model if show_paths else model_name(spec.model)


def load_personas(cfg: GenerateConfig) -> tuple[list[Persona], dict]:
    """Every persona source read and deduplicated (on the driver: sampling needs them all),
    and the manifest's ``personas`` section. Malformed persona rows are logged, naming file
    and row, and counted; they are not training rows, so they do not enter the funnel."""
    from kalm_data.generate.personas import dedup_personas, read_personas

    personas: list[Persona] = []
    problems = []
    from kalm_data.errors import UsageError

    for source in cfg.personas:
        try:
            found, bad = read_personas(source)
        except (OSError, ValueError) as e:
            where = "" if str(e).startswith(source) else f"{source}: "
            raise UsageError(f"--personas {where}{e}") from e
        personas += found
        problems += bad
    for source_file, row, message in problems[:20]:
        log.warning("persona %s:%s skipped: %s", source_file, row, message)
    kept, duplicates = dedup_personas(personas)
    section = {
        "sources": [os.path.basename(s.rstrip("/")) or s for s in cfg.personas],
        "read": len(personas) + len(problems),
        "malformed": len(problems),
        "duplicates": len(duplicates),
        "distinct": len(kept),
    }
    return kept, section


def published_settings(cfg: GenerateConfig) -> dict:
    """The settings as the manifest records them: no local path unless ``show_paths``, and no
    secret: only the name of the variable holding the key, the server URL without a
    ``user:password@`` part."""
    settings = cfg.model_dump()
    if cfg.show_paths:
        return settings
    settings["personas"] = [os.path.basename(s.rstrip("/")) or s for s in cfg.personas]
    settings["output"] = os.path.basename(cfg.output.rstrip("/")) or cfg.output
    settings["llm_cache_dir"] = "(output)" if cfg.llm_cache_dir is None else "(local)"
    settings["model"] = generator_name(BackendSpec.of(cfg))
    if cfg.base_url:
        from kalm_data.generate.backends.openai_server import public_url

        settings["base_url"] = public_url(cfg.base_url)
    return settings


def in_process_beam_args(cfg: GenerateConfig, beam_args: list[str] | None) -> list[str]:
    """One local worker for in-process models (vLLM, transformers) unless told otherwise: the
    model itself uses every core, and each worker would load its own copy."""
    args = list(beam_args or [])
    if cfg.llm != "openai" and not any(a.startswith("--direct_") for a in args):
        args.append("--direct_num_workers=1")
    return args


def cache_dir_of(cfg: GenerateConfig) -> str:
    """The response cache: ``--cache-dir``, else ``OUTPUT/.kalm-data/llm-cache`` (kept across
    runs and never replaced by ``--overwrite``)."""
    return cfg.llm_cache_dir or f"{cfg.output.rstrip('/')}/.kalm-data/llm-cache"


def prepare(cfg: GenerateConfig) -> tuple[GenerateConfig, BackendSpec, list[Persona], dict]:
    """Checks before anything is written (``UsageError``): an output, the backend's settings,
    readable personas when a two-stage type is asked. Returns what ``run`` needs."""
    from kalm_data.errors import UsageError
    from kalm_data.generate.backends import make_backend

    if not cfg.output:
        raise UsageError("--output DIR is required")
    spec = BackendSpec.of(cfg)
    make_backend(spec)  # settings errors now, not on a worker
    personas, section = ([], {})
    if plan.two_stage_types(cfg):
        personas, section = load_personas(cfg)
        if not personas:
            raise UsageError(f"no usable persona in {', '.join(cfg.personas)}")
    return cfg, spec, personas, section


def run(
    cfg: GenerateConfig,
    beam_args: list[str] | None = None,
    test_pipeline=None,
    overwrite: bool = False,
    verbose: bool = False,
) -> dict:
    """Run ``generate`` end to end on the run harness; returns the manifest."""
    from kalm_data.generate.report import generation_report
    from kalm_data.harness.run import Job, execute

    cfg, spec, personas, section = prepare(cfg)
    published = published_settings(cfg)
    cfg = cfg.model_copy(update={"llm_cache_dir": cache_dir_of(cfg)})
    generator = generator_name(spec, cfg.show_paths)
    job = Job(
        command="generate",
        output=cfg.output,
        settings=published,
        inputs=[{"path": s, "kind": "personas"} for s in published["personas"]],
        build=lambda p, staging: build(p, cfg, spec, personas, staging, generator),
        sections={"personas": section, "generator": {"backend": cfg.llm, "model": generator}},
        report=generation_report,
        kept_on_interrupt="; finished LLM answers are kept in the response cache and reused",
    )
    return execute(job, in_process_beam_args(cfg, beam_args), test_pipeline, overwrite, verbose)
