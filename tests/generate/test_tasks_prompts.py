"""Task types (answer models, strict JSON schemas, answer -> pair) and the prompts of both
stages (persona only in the brainstorm, language by name, seeded settings)."""

from __future__ import annotations

import csv
import json
import random
import string
from itertools import islice

import pytest
from pydantic import ValidationError

from kalm_data.generate.language import LANGUAGES
from kalm_data.generate.prompts import (
    DIVERSITY,
    TYPE_KNOBS,
    bitext_languages,
    brainstorm_messages,
    example_messages,
    expected_languages,
    sample_settings,
    template,
)
from kalm_data.generate.tasks import (
    GEN_TASK_TYPES,
    PAIR_KEYS,
    BrainstormAnswer,
    GeneratedPair,
    ShortLongAnswer,
    StsAnswer,
    answer_keys,
    answer_model,
    fixed_task,
    json_schema,
    single_stage,
    to_pair,
)

from realdata import DATA

TWO_STAGE = [t for t in GEN_TASK_TYPES if not single_stage(t)]
PERSONA = "A beekeeper in Slovenia who breeds Carniolan honeybee queens."
TASK = "Given a question about a honeybee disease, retrieve forum posts that diagnose it."


def _xquad(lang: str, n: int) -> list[dict]:
    path = DATA / "xquad" / "xquad.jsonl"
    if not path.exists():
        pytest.skip(f"real data not found at {path}")
    rows = []
    with path.open(encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            if row["lang"] == lang:
                rows.append(row)
                if len(rows) >= n:
                    break
    return rows


def _stsb(lang: str, n: int) -> list[list[str]]:
    path = DATA / "stsb_multi_mt" / f"stsb-{lang}-dev.csv"
    if not path.exists():
        pytest.skip(f"real data not found at {path}")
    with path.open(encoding="utf-8") as f:
        return list(islice(csv.reader(f), n))


def _answers() -> dict[str, dict]:
    """One real-looking answer per task type, built from xquad and stsb_multi_mt."""
    en, de = _xquad("en", 3), _xquad("de", 3)
    sts = _stsb("en", 3)
    return {
        "short-long": {
            "user_query": en[0]["query"],
            "positive_document": en[0]["positive"],
            "hard_negative_document": en[2]["positive"],
        },
        "long-short": {
            "input_text": en[0]["positive"],
            "label": en[0]["title"].replace("_", " "),
            "misleading_label": "Olympic Games",
        },
        "short-short": {"input": en[0]["query"], "positive_document": en[0]["answer"]},
        "long-long": {"input": en[0]["positive"], "positive_document": de[0]["positive"]},
        "sts": {"S1": sts[0][0], "S2": sts[0][1], "S3": sts[2][1]},
        "bitext": {"S1": en[0]["query"], "S2": de[0]["query"], "S3": de[1]["query"]},
    }


# --- task types ----------------------------------------------------------------------------


@pytest.mark.parametrize("task_type", GEN_TASK_TYPES)
def test_schema_is_strict_and_names_every_key(task_type):
    schema = json_schema(answer_model(task_type))
    assert schema["type"] == "object"
    assert schema["additionalProperties"] is False
    assert list(schema["properties"]) == list(answer_keys(task_type))
    assert schema["required"] == list(answer_keys(task_type))
    for prop in schema["properties"].values():
        assert prop["type"] == "string"
        assert prop["minLength"] == 1 and prop["maxLength"] >= 200
    portable = json_schema(answer_model(task_type), lengths=False)
    assert not any({"minLength", "maxLength"} & set(p) for p in portable["properties"].values())
    assert portable["required"] == schema["required"]


@pytest.mark.parametrize("task_type", GEN_TASK_TYPES)
def test_pair_keys_are_the_answer_keys(task_type):
    query, positive, negative = PAIR_KEYS[task_type]
    keys = answer_keys(task_type)
    assert {query, positive} <= set(keys)
    assert negative is None or negative in keys
    assert len(keys) == 2 + (negative is not None)


def test_brainstorm_schema_is_an_object_with_a_bounded_list():
    schema = json_schema(BrainstormAnswer)
    assert schema["type"] == "object" and schema["additionalProperties"] is False
    assert schema["required"] == ["tasks"]
    tasks = schema["properties"]["tasks"]
    assert (tasks["minItems"], tasks["maxItems"]) == (1, 40)
    assert (tasks["items"]["minLength"], tasks["items"]["maxLength"]) == (10, 300)


def test_brainstorm_answer_bounds():
    ok = BrainstormAnswer.model_validate({"tasks": ["  " + TASK + "  "]})
    assert ok.tasks == [TASK]
    for bad in ([], [TASK] * 41, ["too short"], ["x" * 301]):
        with pytest.raises(ValidationError):
            BrainstormAnswer.model_validate({"tasks": bad})


def test_to_pair_maps_each_type():
    answers = _answers()
    expected = {
        "short-long": ("user_query", "positive_document", "hard_negative_document"),
        "long-short": ("input_text", "label", "misleading_label"),
        "short-short": ("input", "positive_document", None),
        "long-long": ("input", "positive_document", None),
        "sts": ("S1", "S2", "S3"),
        "bitext": ("S1", "S2", "S3"),
    }
    for task_type, (q, p, n) in expected.items():
        answer = answers[task_type]
        pair = to_pair(task_type, answer)
        assert pair == GeneratedPair(
            query=answer[q].strip(),
            positive=answer[p].strip(),
            negative=answer[n].strip() if n else None,
        ), task_type
        # a validated model gives the same pair as its dict
        assert to_pair(task_type, answer_model(task_type).model_validate(answer)) == pair


def test_models_strip_and_reject_empty_or_overlong_strings():
    doc = _xquad("en", 1)[0]
    good = {"user_query": doc["query"], "positive_document": doc["positive"]}
    answer = ShortLongAnswer.model_validate(
        {**good, "hard_negative_document": "  x  ", "comment": "extra keys are ignored"}
    )
    assert answer.hard_negative_document == "x"
    for bad in ("", "   \n\t", "x" * 8001):
        with pytest.raises(ValidationError):
            ShortLongAnswer.model_validate({**good, "hard_negative_document": bad})
    with pytest.raises(ValidationError):
        ShortLongAnswer.model_validate(good)  # a key missing
    with pytest.raises(ValidationError):
        StsAnswer.model_validate({"S1": "a", "S2": "b", "S3": "y" * 2001})
    with pytest.raises(TypeError):
        to_pair("sts", answer)  # a ShortLongAnswer is not an sts answer


def test_unknown_task_type_is_rejected():
    with pytest.raises(ValueError, match="short-long"):
        answer_model("retrieval")


def test_single_stage_types_have_fixed_tasks():
    assert [t for t in GEN_TASK_TYPES if single_stage(t)] == ["sts", "bitext"]
    assert fixed_task("sts") == "Retrieve semantically similar text."
    assert fixed_task("bitext")
    with pytest.raises(ValueError):
        fixed_task("short-long")


# --- prompts -------------------------------------------------------------------------------


def _placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


def test_templates_exist_and_use_only_known_placeholders():
    for task_type in TWO_STAGE:
        assert _placeholders(template("brainstorm", task_type)) == {"n_tasks"}
    for task_type in GEN_TASK_TYPES:
        names = _placeholders(template("example", task_type))
        allowed = {"task", "language", *TYPE_KNOBS[task_type]}
        if task_type == "bitext":
            allowed.add("target_language")
        assert names == allowed, task_type


@pytest.mark.parametrize("task_type", TWO_STAGE)
def test_persona_is_the_brainstorm_system_prompt_only(task_type):
    system, user = brainstorm_messages(task_type, "  " + PERSONA + "\n", 20)
    assert system == PERSONA
    assert PERSONA not in user
    assert "20" in user and '"tasks"' in user

    settings = sample_settings(task_type, random.Random(0))
    system, user = example_messages(task_type, TASK, settings, "de")
    assert system is None
    assert PERSONA not in user and "beekeeper" not in user.lower()


def test_brainstorm_rejects_single_stage_types_and_bad_counts():
    with pytest.raises(ValueError):
        brainstorm_messages("sts", PERSONA, 20)
    for n in (0, 41):
        with pytest.raises(ValueError):
            brainstorm_messages("short-long", PERSONA, n)
    with pytest.raises(ValueError):
        brainstorm_messages("short-long", "   ", 20)


@pytest.mark.parametrize("task_type", GEN_TASK_TYPES)
@pytest.mark.parametrize("language", ["zh", "ar", "en", "pt"])
def test_example_prompt_names_keys_language_and_settings(task_type, language):
    rng = random.Random(3)
    settings = sample_settings(task_type, rng)
    task = fixed_task(task_type) if single_stage(task_type) else TASK
    _, user = example_messages(task_type, task, settings, language)
    assert f"in {LANGUAGES[language]}" in user
    assert task in user
    for key in answer_keys(task_type):
        assert f'"{key}"' in user
    for knob in TYPE_KNOBS[task_type]:
        assert settings[knob] in user
    assert "{" not in user and "}" not in user


def test_bitext_languages():
    settings = {"unit": "phrase", "difficulty": "college"}
    _, user = example_messages("bitext", fixed_task("bitext"), settings, "de-fr")
    assert '"S1": a phrase written in German' in user
    assert "into French" in user and "entirely in French" in user
    assert expected_languages("bitext", "de-fr") == {"S1": "de", "S2": "fr", "S3": "fr"}
    # one code pairs with English (English with Chinese); a region subtag is not a target
    assert bitext_languages("de") == ("de", "en")
    assert bitext_languages("en") == ("en", "zh")
    assert bitext_languages("zh-CN") == ("zh", "en")
    assert bitext_languages("fr-fr") == ("fr", "en")
    assert expected_languages("sts", "ja") == {"S1": "ja", "S2": "ja", "S3": "ja"}
    assert expected_languages("short-long", "pt-BR")["user_query"] == "pt"


def test_settings_are_seeded():
    for task_type in GEN_TASK_TYPES:
        a = [sample_settings(task_type, random.Random(11)) for _ in range(3)]
        assert a[0] == a[1] == a[2]
        assert set(a[0]) >= set(TYPE_KNOBS[task_type])
        for knob in TYPE_KNOBS[task_type]:
            assert a[0][knob] in DIVERSITY[knob]
    rng = random.Random(5)
    draws = [sample_settings("short-long", rng) for _ in range(200)]
    assert draws != [sample_settings("short-long", random.Random(6)) for _ in range(200)]
    for knob in TYPE_KNOBS["short-long"]:  # every value of every knob is reachable
        assert {d[knob] for d in draws} == set(DIVERSITY[knob])


def test_example_prompt_rejects_unknown_language_and_missing_settings():
    settings = sample_settings("short-long", random.Random(0))
    with pytest.raises(ValueError, match="language"):
        example_messages("short-long", TASK, settings, "xx")
    with pytest.raises(ValueError, match="query_type"):
        example_messages("short-long", TASK, {"clarity": "clear"}, "en")
