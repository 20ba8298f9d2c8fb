"""The stages of ``generate``: LLM answers -> validated pairs, every failure a reasoned rejection.

- ``Brainstorm`` (``brainstorm``): a brainstorm answer -> its task definitions (``TaskDef``), or
  one rejection. It fans out (one answer, many tasks), so it runs before the funnel is counted:
  its outputs are the units of the funnel (``kalm_data.generate.records``).
- ``DedupTasks`` (``tasks``): the same brainstormed task definition (normalised) twice in one
  task type: the lowest id is kept, the others are rejected as ``duplicate_task``. (The fixed
  tasks of sts and bitext share their definition by design and skip this stage.)
- ``ParseExample`` (``example``): an example answer -> a ``GeneratedPair``, or a rejection:
  ``llm_error``, ``truncated``, ``refusal``, ``malformed_json``, ``empty_field``,
  ``invalid_fields`` (``kalm_data.generate.parse``), ``copies_query`` (the positive repeats the
  query), ``wrong_language`` (a text is not in the language asked for, by an offline detector;
  texts too short to tell, and class labels, are kept).
- ``DedupGenerated`` (``duplicates``): the same query (normalised) twice in one output task:
  the lowest id is kept, the others are rejected as ``duplicate``.

Rejected records keep the request id, the task, the settings and the raw answer, so
``rejected/`` shows what the model wrote.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Hashable, Iterator
from enum import Enum

from kalm_data.generate import parse
from kalm_data.generate.llm import LLMResponse
from kalm_data.generate.records import ExampleJob, GeneratedPair, TaskDef
from kalm_data.records import RawRow
from kalm_data.stage import Stage

_REFUSAL_START = re.compile(
    r"^\s*(i'?m sorry|i am sorry|i apologi[sz]e|i can(?:no|')t|i cannot|as an ai\b|抱歉|对不起|"
    r"我无法|我不能)",
    re.IGNORECASE,
)


#: Class labels: often names or terms that read the same in any language; not checked.
LABEL_KEYS = frozenset({"label", "misleading_label"})


def normalise(text: str) -> str:
    """Case-folded, NFKC, whitespace collapsed: what "the same text" means here."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def _record(source_file: str, source_row: int, task: str, payload: dict) -> RawRow:
    return RawRow(source_file=source_file, source_row=source_row, task=task, payload=payload)


class BrainstormReason(str, Enum):
    LLM_ERROR = parse.LLM_ERROR
    TRUNCATED = parse.TRUNCATED
    REFUSAL = parse.REFUSAL
    MALFORMED_JSON = parse.MALFORMED_JSON
    EMPTY_FIELD = parse.EMPTY_FIELD
    INVALID_FIELDS = parse.INVALID_FIELDS


class Brainstorm(Stage):
    """(BrainstormJob, LLMResponse) -> ``TaskDef``s (at most ``limit``), or one rejection."""

    name = "brainstorm"
    Reason = BrainstormReason

    def __init__(self, limit: int):
        self.limit = limit

    def process(self, item) -> Iterator:
        from kalm_data.generate.tasks import BrainstormAnswer

        job, response = item
        persona = job.persona
        answer, failure = parse.parse_answer(response, BrainstormAnswer)
        if failure is not None:
            record = _record(
                persona.source_file,
                persona.source_row,
                job.task_type,
                {"id": job.id, "persona_id": persona.id, "answer": response.text},
            )
            yield self.reject(record, BrainstormReason(failure.reason), failure.detail, id=job.id)
            return
        seen: set[str] = set()
        for k, definition in enumerate(answer.tasks[: self.limit], start=1):
            key = normalise(definition)
            if key in seen:
                continue
            seen.add(key)
            yield TaskDef(
                id=f"{job.id}-t{k:02d}",
                task_type=job.task_type,
                definition=definition.strip(),
                persona_id=persona.id,
                source_file=persona.source_file,
                source_row=persona.source_row,
            )


class DedupReason(str, Enum):
    DUPLICATE_TASK = "duplicate_task"
    DUPLICATE = "duplicate"


class _KeepLowestId(Stage):
    """A grouped stage: in each group the record with the lowest id is kept, every other one
    is rejected with ``reason``, naming the id it repeats."""

    Reason = DedupReason
    grouped = True
    reason: DedupReason
    what: str  # what repeats, for the detail

    def process(self, group) -> Iterator:
        first, *others = sorted(group[1], key=lambda r: r.id)
        yield first
        for item in others:
            rows = getattr(item, "source_rows", None)
            row = rows[0] if rows else item.source_row
            task = getattr(item, "task", None) or item.task_type
            record = _record(item.source_file, row, task, item.model_dump())
            yield self.reject(record, self.reason, f"{self.what} repeats {first.id}", id=item.id)


class DedupTasks(_KeepLowestId):
    """Per (task type, normalised definition): the lowest id is kept."""

    name = "tasks"
    reason = DedupReason.DUPLICATE_TASK
    what = "task definition"

    def key(self, task: TaskDef) -> Hashable:
        return (task.task_type, normalise(task.definition))


class ExampleReason(str, Enum):
    LLM_ERROR = parse.LLM_ERROR
    TRUNCATED = parse.TRUNCATED
    REFUSAL = parse.REFUSAL
    MALFORMED_JSON = parse.MALFORMED_JSON
    EMPTY_FIELD = parse.EMPTY_FIELD
    INVALID_FIELDS = parse.INVALID_FIELDS
    COPIES_QUERY = "copies_query"
    WRONG_LANGUAGE = "wrong_language"


def copies(query: str, positive: str) -> bool:
    """The positive is the query, or the query with a few characters around it."""
    q, p = normalise(query), normalise(positive)
    return q == p or (q in p and len(q) >= 0.8 * len(p))


class ParseExample(Stage):
    """(ExampleJob, LLMResponse) -> ``GeneratedPair`` or a rejection (module docstring).
    ``generator`` is the model as the output records it."""

    name = "example"
    Reason = ExampleReason

    def __init__(self, generator: str, check_language: bool = True):
        self.generator = generator
        self.check_language = check_language

    def _reject(self, job: ExampleJob, response: LLMResponse, reason: ExampleReason, detail: str):
        record = _record(
            job.task.source_file,
            job.task.source_row,
            job.name,
            {
                "id": job.id,
                "task": job.task.definition,
                "language": job.language,
                "settings": job.settings,
                "finish_reason": response.finish_reason,
                "answer": response.text,
            },
        )
        return self.reject(record, reason, detail, id=job.id)

    def process(self, item) -> Iterator:
        from kalm_data.generate.tasks import answer_model, to_pair

        job, response = item
        answer, failure = parse.parse_answer(response, answer_model(job.task.task_type))
        if failure is not None:
            yield self._reject(job, response, ExampleReason(failure.reason), failure.detail)
            return
        pair = to_pair(job.task.task_type, answer)
        problem = self._problem(job, answer, pair)
        if problem is not None:
            yield self._reject(job, response, *problem)
            return
        yield GeneratedPair(
            id=job.id,
            task=job.name,
            task_type=job.task.task_type,
            language=job.language,
            instruction=job.task.definition,
            query=pair.query.strip(),
            positive=pair.positive.strip(),
            negative=pair.negative.strip() if pair.negative and pair.negative.strip() else None,
            settings=json.dumps(job.settings, sort_keys=True, ensure_ascii=False),
            persona_id=job.task.persona_id,
            generator=self.generator,
            source_file=job.task.source_file,
            source_rows=[job.task.source_row],
        )

    def _problem(self, job: ExampleJob, answer, pair) -> tuple[ExampleReason, str] | None:
        texts = {key: getattr(answer, key) for key in type(answer).model_fields}
        for key, text in texts.items():
            if _REFUSAL_START.search(text):
                return ExampleReason.REFUSAL, f"field '{key}' is a refusal: {text[:80]!r}"
        if copies(pair.query, pair.positive):
            return ExampleReason.COPIES_QUERY, "the positive repeats the query"
        if self.check_language:
            from kalm_data.generate.language import detect_language, language_matches
            from kalm_data.generate.prompts import expected_languages

            for key, language in expected_languages(job.task.task_type, job.language).items():
                if key in LABEL_KEYS:
                    continue
                if not language_matches(texts[key], language):
                    found = detect_language(texts[key])
                    return (
                        ExampleReason.WRONG_LANGUAGE,
                        f"field '{key}' is in {found!r}, {language!r} was asked for",
                    )
        return None


class DedupGenerated(_KeepLowestId):
    """Per (output task, normalised query): the lowest id is kept."""

    name = "duplicates"
    reason = DedupReason.DUPLICATE
    what = "query"

    def key(self, pair: GeneratedPair) -> Hashable:
        return (pair.task, normalise(pair.query))
