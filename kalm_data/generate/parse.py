"""An LLM answer -> a validated pydantic object, or the reason it is not one.

Contract: ``parse_answer(response, model, constrained)`` returns ``(object, None)`` or
``(None, Failure(reason, detail))`` with reasons:

- ``llm_error``: the backend gave up on the request (its error is the detail);
- ``truncated``: generation stopped at ``max_tokens`` (finish reason ``length``): never trusted,
  even when the text happens to parse;
- ``refusal``: no JSON and the text reads as a refusal ("I'm sorry, I can't ...");
- ``malformed_json``: no JSON object could be read. Repairs applied first, only the safe ones: a
  Markdown code fence around the JSON, text before the first ``{`` or after the matching
  ``}``, and raw control characters (a tab, a newline) inside strings, which some constrained
  decoders let through. Nothing inside the JSON is ever rewritten;
- ``empty_field``: a required string is empty or blank;
- ``invalid_fields``: the JSON does not match the model (a missing key, a wrong type, a text
  over its length bound); the detail names the field.
"""

from __future__ import annotations

import json
import re
from typing import NamedTuple

from pydantic import BaseModel, ValidationError

from kalm_data.generate.llm import LLMResponse

LLM_ERROR = "llm_error"
TRUNCATED = "truncated"
REFUSAL = "refusal"
MALFORMED_JSON = "malformed_json"
EMPTY_FIELD = "empty_field"
INVALID_FIELDS = "invalid_fields"

_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL | re.IGNORECASE)
_REFUSAL = re.compile(
    r"\b(i'?m sorry|i am sorry|i apologi[sz]e|i can(?:no|')t (?:help|assist|comply|provide|"
    r"create|do)|i cannot|i'?m (?:not able|unable) to|as an ai\b)|抱歉|对不起|我无法|我不能",
    re.IGNORECASE,
)


class Failure(NamedTuple):
    reason: str
    detail: str


def _json_object(text: str) -> dict | None:
    """The JSON object in ``text``, after the safe repairs (module docstring), or None."""
    candidates = [text.strip()]
    fenced = _FENCE.search(text)
    if fenced:
        candidates.append(fenced.group(1).strip())
    start = text.find("{")
    if start >= 0:
        try:
            value, _ = json.JSONDecoder(strict=False).raw_decode(text[start:])
            candidates.append(json.dumps(value))
        except ValueError:
            pass
    for candidate in candidates:
        try:  # strict=False: a raw tab or newline inside a string is read, not refused
            value = json.loads(candidate, strict=False)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return None


def _first_error(error: ValidationError) -> tuple[str, str]:
    """(reason, detail) of a pydantic error: the field and what is wrong with it."""
    first = error.errors()[0]
    field = ".".join(str(p) for p in first["loc"]) or "(answer)"
    if first["type"] in ("string_too_short",) and first.get("input", None) is not None:
        value = first["input"]
        if isinstance(value, str) and not value.strip():
            return EMPTY_FIELD, f"field '{field}' is empty"
    return INVALID_FIELDS, f"field '{field}': {first['msg']}"


def parse_answer(
    response: LLMResponse, model: type[BaseModel]
) -> tuple[BaseModel | None, Failure | None]:
    """See module docstring."""
    if response.finish_reason == "error":
        return None, Failure(LLM_ERROR, response.error or "the backend gave no answer")
    if response.finish_reason == "length":
        tokens = response.completion_tokens
        return None, Failure(TRUNCATED, f"stopped at max_tokens ({tokens} tokens generated)")
    value = _json_object(response.text)
    if value is None:
        snippet = " ".join(response.text.split())[:120]
        if _REFUSAL.search(response.text):
            return None, Failure(REFUSAL, f"the model refused: {snippet!r}")
        return None, Failure(MALFORMED_JSON, f"no JSON object in the answer: {snippet!r}")
    for key, text in value.items():
        if isinstance(text, str) and not text.strip() and key in model.model_fields:
            return None, Failure(EMPTY_FIELD, f"field '{key}' is empty")
    try:
        return model.model_validate(value), None
    except ValidationError as e:
        return None, Failure(*_first_error(e))
