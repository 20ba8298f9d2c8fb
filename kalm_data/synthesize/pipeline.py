"""The ``synthesize`` job: ``generate`` and ``curate`` wired into one Beam pipeline.

    generate (personas -> tasks -> examples -> validated pairs)
      -> input pairs -> dedup, near-duplicates / decontamination (if set), merge by query
      -> embed -> mine hard negatives, ranking-consistency filter -> task shards

The generated pairs never touch the disk in between: one job, one funnel (its units are
generate's: every task definition ends as a training row or a rejected record), one manifest with
both halves' sections. The output is curate's (``TrainingExample`` shards): ``kalm-data train``
reads it as it is.
"""

from __future__ import annotations

import apache_beam as beam

from kalm_data.curate.config import CurateConfig
from kalm_data.generate.backends import BackendSpec
from kalm_data.generate.config import GenerateConfig
from kalm_data.generate.personas import Persona
from kalm_data.generate.records import GeneratedPair
from kalm_data.records import InputPair


def to_input_pair(pair: GeneratedPair) -> InputPair:
    """A generated pair as curate's input pair (the task definition is the instruction)."""
    return InputPair(
        id=pair.id,
        task=pair.task,
        query=pair.query,
        positives=[pair.positive],
        negatives=[pair.negative] if pair.negative else [],
        instruction=pair.instruction,
        task_type=pair.task_type,
        source_file=pair.source_file,
        source_row=pair.source_rows[0],
        persona_id=pair.persona_id,
        generator=pair.generator,
    )


def synthesis_stages(cfg: CurateConfig, staging: str, teacher: str | None = None) -> list:
    """Curate's steps for pairs that are already validated: dedup, the quality transforms the
    settings ask for (``teacher`` embeds for decontamination's embedding test), merge by
    query."""
    from kalm_data.curate.stages import quality_steps
    from kalm_data.stages.dedup import DedupIds, MergeByQuery

    return [DedupIds(), *quality_steps(cfg, staging, teacher), MergeByQuery()]


def build(
    p,
    gen: GenerateConfig,
    cur: CurateConfig,
    spec: BackendSpec,
    personas: list[Persona],
    generator: str,
    teacher: str,
    fingerprint: str,
    staging: str,
):
    """Wire ``synthesize`` into ``p``; outputs go under ``staging``."""
    from kalm_data.curate.pipeline import curate_records
    from kalm_data.generate.pipeline import GeneratedPairs
    from kalm_data.harness.run import count_read, finish_graph

    pairs, rejected, units, usage = p | "Generate" >> GeneratedPairs(
        gen, spec, personas, staging, generator
    )
    count_file = count_read(units, staging)
    input_pairs = pairs | "ToInputPairs" >> beam.Map(to_input_pair)
    files = curate_records(
        p,
        input_pairs,
        cur,
        teacher,
        fingerprint,
        staging,
        synthesis_stages(cur, staging, teacher),
        rejected_before=(rejected,),
    )
    finish_graph(count_file, *files, *usage)


def run(
    gen: GenerateConfig,
    cur: CurateConfig,
    beam_args: list[str] | None = None,
    test_pipeline=None,
    overwrite: bool = False,
    verbose: bool = False,
) -> dict:
    """Run ``synthesize`` end to end on the run harness; returns the manifest."""
    from kalm_data.curate.pipeline import published_settings as curate_settings
    from kalm_data.embed.cache import default_cache_dir
    from kalm_data.embed.teacher import check_teacher, default_teacher, teacher_fingerprint
    from kalm_data.generate import pipeline as generate
    from kalm_data.generate.report import generation_report
    from kalm_data.harness.run import Job, execute
    from kalm_data.published import teacher_name

    gen, spec, personas, section = generate.prepare(gen)
    teacher = cur.teacher or default_teacher()
    check_teacher(teacher)
    settings = {
        "generate": generate.published_settings(gen),
        "curate": curate_settings(cur, teacher),
    }
    gen = gen.model_copy(update={"llm_cache_dir": generate.cache_dir_of(gen)})
    cur = cur.model_copy(update={"cache_dir": cur.cache_dir or default_cache_dir()})
    fingerprint = teacher_fingerprint(teacher, cur.precision)
    generator = generate.generator_name(spec, gen.show_paths)
    job = Job(
        command="synthesize",
        output=gen.output,
        settings=settings,
        inputs=[{"path": s, "kind": "personas"} for s in settings["generate"]["personas"]],
        build=lambda p, staging: build(
            p, gen, cur, spec, personas, generator, teacher, fingerprint, staging
        ),
        sections={
            "personas": section,
            "generator": {"backend": gen.llm, "model": generator},
            "teacher": {
                "teacher": teacher_name(teacher, cur.show_paths),
                "fingerprint": fingerprint,
            },
        },
        report=generation_report,
        kept_on_interrupt="; finished LLM answers and embeddings are cached and reused",
    )
    return execute(
        job, generate.in_process_beam_args(gen, beam_args), test_pipeline, overwrite, verbose
    )
