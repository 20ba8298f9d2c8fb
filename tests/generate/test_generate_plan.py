"""What generate asks, decided up front: seeded, persona in the brainstorm only, and the Beam
graph it builds (GPU resource hints on the LLM steps only)."""

from __future__ import annotations

import apache_beam as beam

from kalm_data.generate import plan
from kalm_data.generate.config import GenerateConfig
from kalm_data.generate.personas import dedup_personas, read_personas
from kalm_data.generate.records import TaskDef

from realdata import DATA


def _personas():
    found, _ = read_personas(str(DATA / "personas" / "personas.jsonl"))
    return dedup_personas(found)[0]


def _prompts(cfg: GenerateConfig) -> list:
    brainstorms = [(r.system, r.user, r.sampling.seed) for _, r in plan.brainstorm_requests(
        _personas(), cfg)]  # fmt: skip
    tasks = [
        TaskDef(id=f"b-short-long-0000{i}-t01", task_type="short-long",
                definition="Retrieve passages that answer a question about a city.",
                source_file="p.jsonl", source_row=i)
        for i in range(1, 6)
    ] + plan.single_stage_tasks(cfg)  # fmt: skip
    examples = [plan.example_request(plan.example_job(t, cfg), cfg) for t in tasks]
    return brainstorms + [(r.user, r.sampling.seed) for r in examples]


def test_the_same_seed_gives_the_same_prompts_and_another_seed_others():
    cfg = GenerateConfig(output="o", personas_per_type=3, tasks_per_persona=4)
    again = GenerateConfig(output="o", personas_per_type=3, tasks_per_persona=4)
    other = GenerateConfig(output="o", personas_per_type=3, tasks_per_persona=4, seed=1)
    assert _prompts(cfg) == _prompts(again)
    assert _prompts(cfg) != _prompts(other)


def test_the_persona_is_the_brainstorm_system_prompt_only():
    cfg = GenerateConfig(output="o", personas_per_type=2, tasks_per_persona=4)
    pairs = plan.brainstorm_requests(_personas(), cfg)
    assert len(pairs) == 2 * 4  # four two-stage types
    for job, request in pairs:
        assert request.system == job.persona.text and job.persona.text not in request.user
    task = TaskDef(id="t", task_type="short-long", definition="Find recipes.", source_file="p",
                   source_row=1)  # fmt: skip
    request = plan.example_request(plan.example_job(task, cfg), cfg)
    assert request.system is None
    assert all(job.persona.text not in request.user for job, _ in pairs)


def test_llm_steps_carry_the_gpu_hint_and_nothing_else_does(tmp_path):
    from kalm_data.generate.backends import BackendSpec
    from kalm_data.generate.pipeline import build

    hint = "type:nvidia-l4;count:1;install-nvidia-driver"
    cfg = GenerateConfig(output=str(tmp_path), llm="openai", base_url="http://127.0.0.1:9/v1",
                         accelerator=hint, personas_per_type=1, tasks_per_persona=2)  # fmt: skip
    p = beam.Pipeline()
    build(p, cfg, BackendSpec.of(cfg), _personas()[:10], str(tmp_path / "s"), "m")
    proto = p.to_runner_api()
    hinted = {
        t.unique_name
        for t in proto.components.transforms.values()
        if t.environment_id
        and any(hint.encode() == v for v in proto.components.environments[t.environment_id]
                .resource_hints.values())
    }  # fmt: skip
    assert hinted and all("/Ask" in name for name in hinted)
    assert any("AskBrainstorm" in n for n in hinted) and any("AskExample" in n for n in hinted)
