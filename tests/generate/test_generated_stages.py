"""The generate stages on real texts: every failure kind becomes a reasoned rejection, and the
rows always balance (one unit in, one record out)."""

from __future__ import annotations

import json

import pytest

from kalm_data.beam.stage import StageRunner
from kalm_data.generate.llm import LLMResponse
from kalm_data.generate.personas import Persona
from kalm_data.generate.plan import BrainstormJob
from kalm_data.generate.records import ExampleJob, GeneratedPair, TaskDef
from kalm_data.records import RejectedRecord
from kalm_data.stages.generated import Brainstorm, DedupGenerated, DedupTasks, ParseExample

from realdata import DATA


@pytest.fixture(scope="module")
def xquad() -> dict[str, dict]:
    """id -> {language: row} of real XQuAD rows (query = question, positive = paragraph)."""
    rows: dict[str, dict] = {}
    with open(DATA / "xquad" / "xquad.jsonl", encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            rows.setdefault(row["id"], {})[row["lang"]] = row
    return {k: v for k, v in list(rows.items())[:20] if {"en", "zh", "de"} <= set(v)}


def _task(task_type="short-long", i=1) -> TaskDef:
    return TaskDef(
        id=f"b-{task_type}-00001-t{i:02d}",
        task_type=task_type,
        definition="Retrieve encyclopedia paragraphs that answer a factual question.",
        persona_id="seed-0001",
        source_file="personas.jsonl",
        source_row=7,
    )


def _job(language="en", task_type="short-long") -> ExampleJob:
    return ExampleJob(task=_task(task_type), language=language, settings={"difficulty": "PhD"})


def _answer(payload, finish="stop") -> LLMResponse:
    text = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
    return LLMResponse(id="x", text=text, finish_reason=finish, completion_tokens=12)


def _run(stage, item) -> list:
    """``stage`` on one element through the counting shell (``LostRecords`` if rows are lost)."""
    runner = StageRunner(stage)
    runner.setup()
    return runner(item)


def _one(stage, item):
    (out,) = _run(stage, item)  # exactly one record per unit
    return out


def _short_long(row_q, row_p, row_n) -> dict:
    return {
        "user_query": row_q["query"],
        "positive_document": row_p["positive"],
        "hard_negative_document": row_n["positive"],
    }


def test_a_good_answer_becomes_a_generated_pair(xquad):
    a, b = list(xquad.values())[:2]
    out = _one(
        ParseExample("tiny-qwen"), (_job("en"), _answer(_short_long(a["en"], a["en"], b["en"])))
    )
    assert isinstance(out, GeneratedPair)
    assert out.query == a["en"]["query"] and out.positive == a["en"]["positive"]
    assert out.negative == b["en"]["positive"] and out.task == "short-long-en"
    assert out.instruction == _task().definition and out.generator == "tiny-qwen"
    assert out.source_rows == [7] and out.persona_id == "seed-0001"


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (
            lambda a, b: LLMResponse(
                id="x", finish_reason="error", error="HTTP 500 after 5 retries"
            ),
            "llm_error",
        ),
        (
            lambda a, b: _answer(_short_long(a["en"], a["en"], b["en"]), finish="length"),
            "truncated",
        ),
        (lambda a, b: _answer("I'm sorry, but I can't help with that request."), "refusal"),
        (lambda a, b: _answer('{"user_query": "' + a["en"]["query"]), "malformed_json"),
        (
            lambda a, b: _answer({**_short_long(a["en"], a["en"], b["en"]), "user_query": "  "}),
            "empty_field",
        ),
        (lambda a, b: _answer({"user_query": a["en"]["query"]}), "invalid_fields"),
        (
            lambda a, b: _answer(
                {**_short_long(a["en"], a["en"], b["en"]), "positive_document": a["en"]["query"]}
            ),
            "copies_query",
        ),
        (lambda a, b: _answer(_short_long(a["de"], a["de"], b["de"])), "wrong_language"),
        (
            lambda a, b: _answer(
                {
                    **_short_long(a["en"], a["en"], b["en"]),
                    "user_query": "I'm sorry, I cannot write that query.",
                }
            ),
            "refusal",
        ),
    ],
)
def test_each_failure_kind_is_rejected_with_its_reason(xquad, make, reason):
    a, b = list(xquad.values())[:2]
    out = _one(ParseExample("tiny-qwen"), (_job("en"), make(a, b)))
    assert isinstance(out, RejectedRecord)
    assert out.stage == "example" and out.reason == reason and out.rows == 1
    assert out.source_file == "personas.jsonl" and out.source_row == 7
    assert out.detail.startswith("personas.jsonl:7: ")
    record = json.loads(out.record)
    assert record["id"] == _job().id and "answer" in record


def test_a_fenced_json_answer_is_repaired_not_rejected(xquad):
    a, b = list(xquad.values())[:2]
    text = "Here you go:\n```json\n" + json.dumps(_short_long(a["en"], a["en"], b["en"])) + "\n```"
    assert isinstance(_one(ParseExample("m"), (_job("en"), _answer(text))), GeneratedPair)


def test_bitext_checks_each_side_in_its_own_language(xquad):
    a, b = list(xquad.values())[:2]
    good = {"S1": a["en"]["query"], "S2": a["zh"]["query"], "S3": b["zh"]["query"]}
    job = _job("en-zh", "bitext")
    assert isinstance(_one(ParseExample("m"), (job, _answer(good))), GeneratedPair)
    swapped = {**good, "S2": a["de"]["query"]}
    out = _one(ParseExample("m"), (job, _answer(swapped)))
    assert out.reason == "wrong_language" and "'S2'" in out.detail


def test_brainstorm_fans_out_and_drops_repeats():
    persona = Persona(id="p-1", text="A nurse in Lagos.", source_file="p.jsonl", source_row=3)
    job = BrainstormJob(id="b-short-long-00001", task_type="short-long", persona=persona)
    tasks = [
        "Find clinical guidelines for malaria treatment in children.",
        "Find clinical guidelines for malaria treatment in children. ",
        "Retrieve patient leaflets that explain a prescribed drug.",
    ]
    out = list(Brainstorm(limit=20).process((job, _answer({"tasks": tasks}))))
    assert [t.id for t in out] == ["b-short-long-00001-t01", "b-short-long-00001-t03"]
    assert all(t.source_row == 3 and t.persona_id == "p-1" for t in out)
    (bad,) = Brainstorm(limit=20).process((job, _answer("not json at all")))
    assert bad.reason == "malformed_json" and bad.source_row == 3 and bad.rows == 1


def test_duplicate_tasks_and_queries_keep_the_lowest_id(xquad):
    first, second = _task(i=2), _task(i=1)
    out = _run(DedupTasks(), (("k",), [first, second]))
    assert [getattr(o, "id", None) for o in out][0] == second.id
    assert out[1].reason == "duplicate_task" and second.id in out[1].detail
    a, b = list(xquad.values())[:2]
    pair = _one(ParseExample("m"), (_job("en"), _answer(_short_long(a["en"], a["en"], b["en"]))))
    copy = pair.model_copy(update={"id": pair.id + "-x", "query": pair.query.upper()})
    kept, dropped = _run(DedupGenerated(), (("k",), [copy, pair]))
    assert kept.id == pair.id and dropped.reason == "duplicate"
