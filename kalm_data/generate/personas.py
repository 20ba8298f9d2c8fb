"""Personas: one-sentence descriptions of people that steer the brainstorm stage.

A random persona is the system prompt of the brainstorm stage only (KaLM-Embedding V1,
arXiv 2501.01028, after PersonaHub, arXiv 2406.20094): it pulls the brainstormed tasks towards
what that person would look for, which spreads the task definitions over far more topics than
a bare prompt does.

Contract:
- ``read_personas(source)`` reads a JSONL file (``.jsonl``/``.jsonl.gz``, any fsspec URL, e.g.
  ``hf://datasets/proj-persona/PersonaHub/persona.jsonl``), a Parquet file, or anything
  ``datasets.load_dataset`` takes (split ``train``); ``SEED`` (``"seed"``) means the set shipped
  with kalm-data (``personas/seed.jsonl``). The text is the ``persona`` field (PersonaHub's
  name), else ``text``; it is NFC-normalised with whitespace runs folded. ``id`` is the row's
  ``id`` when it has one, else ``<file stem>-<row>``. It returns ``(personas, problems)``:
  a bad row (unparseable, field missing, null, not a string, blank, too long) never raises;
  it becomes a ``PersonaProblem(source_file, row, "<reason>: <detail>")`` (reasons from
  ``kalm_data.reasons``) so the pipeline can reject it. Whole-file problems (missing or
  unreadable file) raise, naming the file, as every reader does.
- ``dedup_personas`` keeps the first of personas whose text is equal after casefolding and
  whitespace folding; ``sample_personas`` is deterministic given its seed.
"""

from __future__ import annotations

import random
import sysconfig
from pathlib import Path
from typing import Any, NamedTuple

from pydantic import BaseModel, ConfigDict, Field

from kalm_data.inputs import InputSpec
from kalm_data.readers import read_rows, task_name
from kalm_data.reasons import BLANK_FIELD, MISSING_FIELD, NULL_FIELD, TEXT_TOO_LONG, WRONG_TYPE
from kalm_data.text import normalize

#: Alias of the persona set shipped with kalm-data.
SEED = "seed"
#: Fields holding the persona text, in order of preference.
TEXT_FIELDS = ("persona", "text")
#: A persona is one sentence; PersonaHub's longest are ~60 words. Far longer is not a persona.
MAX_PERSONA_CHARS = 1000

_SEED_NAME = "seed.jsonl"
#: Where a wheel installs the seed set (pyproject ``[tool.setuptools.data-files]``).
_INSTALLED_DIR = ("share", "kalm-data", "personas")


class Persona(BaseModel):
    """One persona and where it was read from (``source_row`` is 1-based)."""

    model_config = ConfigDict(frozen=True)

    id: str
    text: str = Field(min_length=1)
    source_file: str
    source_row: int = Field(ge=1)


class PersonaProblem(NamedTuple):
    """A row that did not give a persona: ``message`` is ``"<reason>: <detail>"``."""

    source_file: str
    row: int
    message: str


def seed_path() -> Path:
    """The shipped seed set: in a repository checkout, else where a wheel installed it."""
    candidates = [
        Path(__file__).resolve().parents[2] / "personas" / _SEED_NAME,
        Path(sysconfig.get_path("data")).joinpath(*_INSTALLED_DIR, _SEED_NAME),
    ]
    for path in candidates:
        if path.is_file():
            return path
    raise FileNotFoundError(f"seed personas not found; looked at {[str(p) for p in candidates]}")


def read_personas(source: str) -> tuple[list[Persona], list[PersonaProblem]]:
    """Every persona of ``source`` in order, and the rows that gave none (see module doc)."""
    path = str(seed_path()) if source == SEED else source
    stem = task_name(InputSpec(path=path))
    personas: list[Persona] = []
    problems: list[PersonaProblem] = []
    for row in read_rows(InputSpec(path=path)):
        if row.payload is None:
            problems.append(PersonaProblem(path, row.source_row, row.error or "unreadable row"))
            continue
        text, error = _persona_text(row.payload)
        if error is not None:
            problems.append(PersonaProblem(path, row.source_row, error))
            continue
        pid = _row_id(row.payload) or f"{stem}-{row.source_row}"
        personas.append(Persona(id=pid, text=text, source_file=path, source_row=row.source_row))
    return personas, problems


def _persona_text(payload: dict[str, Any]) -> tuple[str, str | None]:
    """(normalised text, None), or ("", "<reason>: <detail>") when the row has no usable text."""
    field = next((f for f in TEXT_FIELDS if f in payload), None)
    if field is None:
        return "", f"{MISSING_FIELD}: no {' or '.join(map(repr, TEXT_FIELDS))} field"
    value = payload[field]
    if value is None:
        return "", f"{NULL_FIELD}: {field!r} is null"
    if not isinstance(value, str):
        return "", f"{WRONG_TYPE}: {field!r} is {type(value).__name__}, not a string"
    text = normalize(value)
    if not text:
        return "", f"{BLANK_FIELD}: {field!r} is empty"
    if len(text) > MAX_PERSONA_CHARS:
        return "", f"{TEXT_TOO_LONG}: {field!r} has {len(text)} > {MAX_PERSONA_CHARS} chars"
    return text, None


def _row_id(payload: dict[str, Any]) -> str | None:
    """The row's own id as a string (ints accepted), or None when it has no usable one."""
    value = payload.get("id")
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    return str(value).strip() or None


def persona_key(text: str) -> str:
    """The dedup key: whitespace folded, casefolded (``"A  Nurse"`` == ``"a nurse"``)."""
    return normalize(text).casefold()


def dedup_personas(personas: list[Persona]) -> tuple[list[Persona], list[Persona]]:
    """(kept, duplicates): the first persona of each ``persona_key`` is kept, in input order."""
    seen: set[str] = set()
    kept: list[Persona] = []
    duplicates: list[Persona] = []
    for persona in personas:
        key = persona_key(persona.text)
        (duplicates if key in seen else kept).append(persona)
        seen.add(key)
    return kept, duplicates


def sample_personas(personas: list[Persona], n: int, seed: int) -> list[Persona]:
    """``n`` personas drawn with ``random.Random(seed)``: same inputs and seed, same list.

    ``n <= len(personas)``: a sample without replacement. ``n > len(personas)``: whole shuffled
    passes over the set, then a sample for the remainder, so every persona is used
    ``n // len`` or ``n // len + 1`` times and never twice within one pass.
    Raises ``ValueError`` for ``n < 0``, or ``n > 0`` with no personas.
    """
    if n < 0:
        raise ValueError(f"cannot sample {n} personas")
    if n == 0:
        return []
    if not personas:
        raise ValueError("no personas to sample from")
    rng = random.Random(seed)
    passes, rest = divmod(n, len(personas))
    out: list[Persona] = []
    for _ in range(passes):
        out.extend(rng.sample(personas, len(personas)))
    out.extend(rng.sample(personas, rest))
    return out
