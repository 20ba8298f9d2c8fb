"""What to ask the LLM, decided up front and seeded: same seed, same prompts.

Contract (pure functions, no I/O):
- ``brainstorm_requests(personas, cfg)``: for each two-stage task type, ``personas_per_type``
  personas drawn (seeded, without replacement while they last) -> one brainstorm request each,
  the persona as its system prompt; returns ``(BrainstormJob, LLMRequest)`` pairs.
- ``single_stage_tasks(cfg)``: the ``TaskDef``s of the single-stage types (sts, bitext).
- ``example_job(task, cfg)``: diversity settings and language(s) for one task, drawn from a
  generator seeded by (seed, task id): the same task gets the same settings on any worker.
- ``example_request(job, cfg)``: the stage-2 request (no persona), with the answer's JSON Schema.
Every request's sampling seed is derived from (seed, request id).
"""

from __future__ import annotations

import hashlib
import random

from pydantic import BaseModel, ConfigDict

from kalm_data.generate import prompts, tasks
from kalm_data.generate.config import GenerateConfig
from kalm_data.generate.llm import LLMRequest, Sampling
from kalm_data.generate.personas import Persona
from kalm_data.generate.records import ExampleJob, TaskDef


class BrainstormJob(BaseModel):
    """One brainstorm: a persona and a task type."""

    model_config = ConfigDict(frozen=True)

    id: str
    task_type: str
    persona: Persona


def derived_seed(seed: int, name: str) -> int:
    """A 31-bit seed from the run's seed and a request id (stable across processes)."""
    digest = hashlib.sha256(f"{seed}:{name}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def two_stage_types(cfg: GenerateConfig) -> list[str]:
    return [t for t in cfg.task_types if not tasks.single_stage(t)]


def brainstorm_requests(
    personas: list[Persona], cfg: GenerateConfig
) -> list[tuple[BrainstormJob, LLMRequest]]:
    """See module docstring. ``personas`` must not be empty when a two-stage type is asked."""
    from kalm_data.generate.personas import sample_personas

    types = two_stage_types(cfg)
    if not types:
        return []
    drawn = sample_personas(personas, cfg.personas_per_type * len(types), cfg.seed)
    schema = tasks.json_schema(tasks.BrainstormAnswer)
    out = []
    for i, persona in enumerate(drawn):
        task_type = types[i % len(types)]
        job = BrainstormJob(
            id=f"b-{task_type}-{i // len(types) + 1:05d}", task_type=task_type, persona=persona
        )
        system, user = prompts.brainstorm_messages(task_type, persona.text, cfg.tasks_per_persona)
        sampling = Sampling(
            temperature=cfg.brainstorm_temperature,
            top_p=cfg.brainstorm_top_p,
            max_tokens=cfg.max_tokens,
            seed=derived_seed(cfg.seed, job.id),
        )
        out.append(
            (
                job,
                LLMRequest(
                    id=job.id, system=system, user=user, json_schema=schema, sampling=sampling
                ),
            )
        )
    return out


def single_stage_tasks(cfg: GenerateConfig) -> list[TaskDef]:
    """The fixed-task requests of sts and bitext (no brainstorm)."""
    count = cfg.single_stage_examples or cfg.personas_per_type * cfg.tasks_per_persona
    return [
        TaskDef(
            id=f"s-{task_type}-{i:05d}",
            task_type=task_type,
            definition=tasks.fixed_task(task_type),
            source_file=f"synthetic:{task_type}",
            source_row=i,
        )
        for task_type in cfg.task_types
        if tasks.single_stage(task_type)
        for i in range(1, count + 1)
    ]


def example_job(task: TaskDef, cfg: GenerateConfig) -> ExampleJob:
    """``task`` with its seeded diversity settings and language(s)."""
    rng = random.Random(derived_seed(cfg.seed, "settings:" + task.id))
    settings = prompts.sample_settings(task.task_type, rng)
    if task.task_type == "bitext":
        source, target = _language_pair(cfg.languages, rng)
        language = f"{source}-{target}"
    else:
        language = rng.choice(cfg.languages)
    return ExampleJob(task=task, language=language, settings=settings)


def _language_pair(languages: list[str], rng: random.Random) -> tuple[str, str]:
    """Two different languages; a single configured language pairs with English (English
    with Chinese)."""
    only = languages[0]
    choices = languages if len(languages) > 1 else [only, "en" if only != "en" else "zh"]
    source, target = rng.sample(choices, 2)
    return source, target


def example_request(job: ExampleJob, cfg: GenerateConfig) -> LLMRequest:
    """The stage-2 request of ``job``: no persona (KaLM keeps it out of this stage)."""
    system, user = prompts.example_messages(
        job.task.task_type, job.task.definition, job.settings, job.language
    )
    return LLMRequest(
        id=job.id,
        system=system,
        user=user,
        json_schema=tasks.json_schema(tasks.answer_model(job.task.task_type)),
        sampling=Sampling(
            temperature=cfg.temperature,
            top_p=cfg.top_p,
            max_tokens=cfg.max_tokens,
            seed=derived_seed(cfg.seed, job.id),
        ),
    )
