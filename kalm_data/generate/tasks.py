"""The six synthetic task types, the JSON answer each must produce, and the pair it becomes.

Contract:
- ``GEN_TASK_TYPES``: the E5-mistral / KaLM V1 task types. The four text types are two-stage
  (brainstorm task definitions, then one example per definition); ``sts`` and ``bitext`` are
  ``single_stage``: no brainstorm, the instruction is ``fixed_task(task_type)``.
- ``answer_model(task_type)``: the pydantic model of the stage-2 answer, with exactly the keys
  the recipe names. Every string is stripped and must then hold 1..N characters; the upper
  bounds sit well above the longest requested length (500 words) so they only catch runaway
  generations. Unknown extra keys are ignored when parsing (a model that adds a comment still
  gives a usable example); the decoding schema forbids them.
- ``BrainstormAnswer``: the stage-1 answer, an object ``{"tasks": [...]}`` (constrained
  decoders want an object at the top level) with 1..40 definitions of 10..300 characters.
- ``json_schema(model)``: the model's JSON Schema made acceptable to vLLM (xgrammar), and
  OpenAI strict mode: every object has ``additionalProperties: false`` and all its properties
  required. ``lengths=False`` drops length keywords for decoders that reject them (OpenAI strict
  mode); the pydantic model still enforces them on the parsed answer.
- ``to_pair(task_type, answer)``: the (query, positive, negative) training pair of an answer.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

GEN_TASK_TYPES = ("short-long", "long-short", "short-short", "long-long", "sts", "bitext")
SINGLE_STAGE_TYPES = ("sts", "bitext")

# Character bounds. Documents are asked for in 50..500 words (about 3,500 characters of English;
# more for German or Russian), so 8,000 leaves room; short fields get proportionally less.
QUERY_CHARS = 1_000
SHORT_TEXT_CHARS = 2_000
DOCUMENT_CHARS = 8_000
LABEL_CHARS = 200
TASK_MIN_CHARS, TASK_MAX_CHARS = 10, 300
MAX_TASKS = 40


def _text(min_chars: int, max_chars: int) -> Any:
    """A string type: stripped, then ``min_chars..max_chars`` characters."""
    return Annotated[
        str,
        StringConstraints(strip_whitespace=True, min_length=min_chars, max_length=max_chars),
    ]


Query = _text(1, QUERY_CHARS)
ShortText = _text(1, SHORT_TEXT_CHARS)
Document = _text(1, DOCUMENT_CHARS)
Label = _text(1, LABEL_CHARS)
TaskDefinition = _text(TASK_MIN_CHARS, TASK_MAX_CHARS)


class _Answer(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class ShortLongAnswer(_Answer):
    """Retrieval: a short query, a long relevant document and a long near-miss."""

    user_query: Query
    positive_document: Document
    hard_negative_document: Document


class LongShortAnswer(_Answer):
    """Classification: a long text, its label and a plausible wrong label."""

    input_text: Document
    label: Label
    misleading_label: Label


class ShortShortAnswer(_Answer):
    """Short text matching: a short input and its short match."""

    input: ShortText
    positive_document: ShortText


class LongLongAnswer(_Answer):
    """Long text matching: a long input and its long match."""

    input: Document
    positive_document: Document


class StsAnswer(_Answer):
    """Monolingual similarity: S1~S2 very similar, S1~S3 less so."""

    S1: ShortText
    S2: ShortText
    S3: ShortText


class BitextAnswer(_Answer):
    """Translation: S2 a faithful translation of S1, S3 a flawed one."""

    S1: ShortText
    S2: ShortText
    S3: ShortText


class BrainstormAnswer(_Answer):
    """Stage 1: the brainstormed task definitions."""

    tasks: list[TaskDefinition] = Field(min_length=1, max_length=MAX_TASKS)


class GeneratedPair(BaseModel):
    """The training pair of one answer: the query side, its positive, its negative if any."""

    model_config = ConfigDict(frozen=True)

    query: str
    positive: str
    negative: str | None = None


_ANSWER_MODELS: dict[str, type[_Answer]] = {
    "short-long": ShortLongAnswer,
    "long-short": LongShortAnswer,
    "short-short": ShortShortAnswer,
    "long-long": LongLongAnswer,
    "sts": StsAnswer,
    "bitext": BitextAnswer,
}

#: task type -> (query key, positive key, negative key or None).
PAIR_KEYS: dict[str, tuple[str, str, str | None]] = {
    "short-long": ("user_query", "positive_document", "hard_negative_document"),
    "long-short": ("input_text", "label", "misleading_label"),
    "short-short": ("input", "positive_document", None),
    "long-long": ("input", "positive_document", None),
    "sts": ("S1", "S2", "S3"),
    "bitext": ("S1", "S2", "S3"),
}

# The instructions of the single-stage types (our wording; used at training time as the task).
_FIXED_TASKS = {
    "sts": "Retrieve semantically similar text.",
    "bitext": "Given a sentence, find its translation in another language.",
}


def check_task_type(task_type: str) -> str:
    """``task_type`` if it is one of ``GEN_TASK_TYPES``, else ``ValueError`` listing them."""
    if task_type not in GEN_TASK_TYPES:
        raise ValueError(f"unknown task type {task_type!r}; known: {', '.join(GEN_TASK_TYPES)}")
    return task_type


def answer_model(task_type: str) -> type[BaseModel]:
    """The pydantic model of a stage-2 answer of ``task_type``."""
    return _ANSWER_MODELS[check_task_type(task_type)]


def answer_keys(task_type: str) -> tuple[str, ...]:
    """The JSON keys an answer of ``task_type`` has, in prompt order."""
    return tuple(answer_model(task_type).model_fields)


def single_stage(task_type: str) -> bool:
    """True for the types generated without a brainstorm stage (``sts``, ``bitext``)."""
    return check_task_type(task_type) in SINGLE_STAGE_TYPES


def fixed_task(task_type: str) -> str:
    """The fixed task definition of a single-stage type."""
    if not single_stage(task_type):
        raise ValueError(f"{task_type!r} is two-stage: its task definitions are brainstormed")
    return _FIXED_TASKS[task_type]


_LENGTH_KEYWORDS = frozenset({"minLength", "maxLength", "minItems", "maxItems"})


def json_schema(model: type[BaseModel], lengths: bool = True) -> dict[str, Any]:
    """``model``'s JSON Schema, strict: closed objects, every property required."""
    return _strict(model.model_json_schema(), lengths)


def _strict(node: Any, lengths: bool) -> Any:
    if isinstance(node, list):
        return [_strict(item, lengths) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if not lengths and key in _LENGTH_KEYWORDS:
            continue
        if key in ("properties", "$defs") and isinstance(value, dict):
            # A name -> schema map, not a schema: a field called "type" must not confuse us.
            out[key] = {name: _strict(sub, lengths) for name, sub in value.items()}
        else:
            out[key] = _strict(value, lengths)
    if out.get("type") == "object":
        out["additionalProperties"] = False
        out["required"] = list(out.get("properties", {}))
    return out


def to_pair(task_type: str, answer: BaseModel | Mapping[str, Any]) -> GeneratedPair:
    """The training pair of ``answer`` (a validated answer, or a dict validated here)."""
    model = answer_model(task_type)
    if isinstance(answer, Mapping):
        answer = model.model_validate(answer)
    elif not isinstance(answer, model):
        raise TypeError(f"a {task_type} answer must be {model.__name__}, not {type(answer)}")
    query_key, positive_key, negative_key = PAIR_KEYS[task_type]
    negative = getattr(answer, negative_key) if negative_key else None
    return GeneratedPair(
        query=getattr(answer, query_key), positive=getattr(answer, positive_key), negative=negative
    )
