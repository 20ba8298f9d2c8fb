"""The chat messages of both synthesis stages, and the diversity settings sampled per request.

Contract:
- Templates are the text files ``kalm_data/generate/prompts/<stage>_<task type>.txt`` with
  ``{placeholders}`` (``str.format``; no other braces): ``brainstorm_*`` for the four two-stage
  types, ``example_*`` for all six.
- ``brainstorm_messages(task_type, persona_text, n_tasks)`` -> (system, user): the system
  prompt is the persona text and nothing else; the persona appears in this stage only.
- ``example_messages(task_type, task_definition, settings, language)`` -> (None, user): no
  system prompt and no persona (KaLM keeps the persona out of stage 2 so the two stages cannot
  pull the example in different directions). The user prompt names the JSON keys and the output
  language by its English name.
- ``sample_settings(task_type, rng)``: one value per knob the type uses, drawn with ``rng``, so
  the same seed gives the same settings. Values are the strings the templates take.
- Languages are ISO 639-1 codes of ``LANGUAGES`` (a region such as ``zh-CN`` is ignored). For
  bitext, ``language`` is ``"<source>-<target>"`` (``"de-fr"``: S1 in German, S2 and S3 in
  French); a single code pairs with English (with Chinese when it is English).
  ``expected_languages`` says which answer key must be in which language.
"""

from __future__ import annotations

import functools
import random
from importlib import resources

from kalm_data.generate.language import LANGUAGES, normalize_code
from kalm_data.generate.tasks import MAX_TASKS, answer_keys, check_task_type, single_stage

__all__ = [
    "DIVERSITY",
    "LANGUAGES",
    "TYPE_KNOBS",
    "bitext_languages",
    "brainstorm_messages",
    "example_messages",
    "expected_languages",
    "sample_settings",
]

#: Diversity knobs (E5-mistral / KaLM V1) -> the values a request draws from, uniformly.
DIVERSITY: dict[str, tuple[str, ...]] = {
    "query_type": ("extremely long-tail", "long-tail", "common"),
    "query_length": ("fewer than 5 words", "5 to 15 words", "at least 10 words"),
    "clarity": ("clear", "understandable with some effort", "ambiguous"),
    "difficulty": ("high school", "college", "PhD"),
    "num_words": ("50", "100", "200", "300", "400", "500"),
    "unit": ("sentence", "phrase", "passage"),
}

#: The knobs each task type's example template uses, in drawing order.
TYPE_KNOBS: dict[str, tuple[str, ...]] = {
    "short-long": ("query_type", "query_length", "clarity", "num_words", "difficulty"),
    "long-short": ("clarity", "num_words", "difficulty"),
    "short-short": ("clarity", "difficulty"),
    "long-long": ("num_words", "difficulty"),
    "sts": ("unit", "difficulty"),
    "bitext": ("unit", "difficulty"),
}

_TEMPLATE_PACKAGE = "kalm_data.generate"
_TEMPLATE_DIR = "prompts"


@functools.cache
def template(stage: str, task_type: str) -> str:
    """The text of ``prompts/<stage>_<task_type>.txt``."""
    name = f"{stage}_{check_task_type(task_type)}.txt"
    return resources.files(_TEMPLATE_PACKAGE).joinpath(_TEMPLATE_DIR, name).read_text("utf-8")


def sample_settings(task_type: str, rng: random.Random) -> dict[str, str]:
    """The diversity settings of one request: one value per knob of ``TYPE_KNOBS[task_type]``."""
    return {knob: rng.choice(DIVERSITY[knob]) for knob in TYPE_KNOBS[check_task_type(task_type)]}


def brainstorm_messages(task_type: str, persona_text: str, n_tasks: int) -> tuple[str, str]:
    """(system, user) of stage 1: the persona as system prompt, the type's brainstorm prompt."""
    if single_stage(task_type):
        raise ValueError(f"{task_type!r} is single-stage: it has no brainstorm prompt")
    if not 1 <= n_tasks <= MAX_TASKS:
        raise ValueError(f"n_tasks must be in 1..{MAX_TASKS}, got {n_tasks}")
    persona = persona_text.strip()
    if not persona:
        raise ValueError("the persona text is empty")
    return persona, template("brainstorm", task_type).format(n_tasks=n_tasks)


def example_messages(
    task_type: str, task_definition: str, settings: dict[str, str], language: str
) -> tuple[str | None, str]:
    """(None, user) of stage 2: one JSON example for ``task_definition`` in ``language``."""
    missing = [k for k in TYPE_KNOBS[check_task_type(task_type)] if k not in settings]
    if missing:
        raise ValueError(f"settings for {task_type} lack {missing}")
    values = {**settings, "task": task_definition.strip()}
    if task_type == "bitext":
        source, target = bitext_languages(language)
        values.update(language=_name(source), target_language=_name(target))
    else:
        values["language"] = _name(language)
    return None, template("example", task_type).format(**values)


def expected_languages(task_type: str, language: str) -> dict[str, str]:
    """Answer key -> the ISO code its text must be in."""
    keys = answer_keys(task_type)
    if task_type != "bitext":
        return dict.fromkeys(keys, normalize_code(language))
    source, target = bitext_languages(language)
    return {key: source if key == "S1" else target for key in keys}


def bitext_languages(language: str) -> tuple[str, str]:
    """(source, target) codes of a bitext ``language``: ``"de-fr"``, or one code (see above)."""
    source, _, target = language.strip().lower().replace("_", "-").partition("-")
    if source not in LANGUAGES or target not in LANGUAGES or source == target:
        source = normalize_code(language)
        target = "zh" if source == "en" else "en"
    return source, target


def _name(code: str) -> str:
    """English name of a language code of ``LANGUAGES``."""
    try:
        return LANGUAGES[normalize_code(code)]
    except KeyError:
        raise ValueError(f"unknown language {code!r}; known: {', '.join(LANGUAGES)}") from None
