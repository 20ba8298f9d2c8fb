"""Which language a task's texts are in: a cheap guess from the script, for the card's metadata.

Contract: ``detect_language(texts)`` looks only at the writing system of the letters in
``texts``: mostly kana -> ``ja``, Hangul -> ``ko``, Han (CJK ideographs) -> ``zh``, anything
else (Latin and the rest) -> ``en``. It is a default for the card's ``language`` field, not a
language identifier; ``--language`` overrides it (``resolve_languages``).
"""

from __future__ import annotations

from collections.abc import Iterable

from kalm_data.errors import UsageError

# Share of letters from a script above which the texts count as that script. Kana is checked
# first and with a lower bar: Japanese mixes kana with Han, Chinese has no kana at all.
_KANA_SHARE = 0.1
_SCRIPT_SHARE = 0.3

#: Characters looked at per task: enough for a stable share, cheap on any task.
SAMPLE_CHARS = 20_000


def _script(ch: str) -> str | None:
    code = ord(ch)
    if 0x3040 <= code <= 0x30FF or 0x31F0 <= code <= 0x31FF:
        return "kana"
    if 0xAC00 <= code <= 0xD7AF or 0x1100 <= code <= 0x11FF or 0x3130 <= code <= 0x318F:
        return "hangul"
    if (
        0x4E00 <= code <= 0x9FFF
        or 0x3400 <= code <= 0x4DBF
        or 0xF900 <= code <= 0xFAFF
        or 0x20000 <= code <= 0x2FA1F
    ):
        return "han"
    return None


def detect_language(texts: Iterable[str]) -> str:
    """An ISO 639-1 code for ``texts`` (see module docstring); ``en`` when there are no letters."""
    counts = {"kana": 0, "hangul": 0, "han": 0}
    letters = seen = 0
    for text in texts:
        for ch in text[: SAMPLE_CHARS - seen]:
            if ch.isalpha():
                letters += 1
                script = _script(ch)
                if script:
                    counts[script] += 1
        seen += min(len(text), SAMPLE_CHARS - seen)
        if seen >= SAMPLE_CHARS:
            break
    if not letters:
        return "en"
    if counts["kana"] / letters > _KANA_SHARE:
        return "ja"
    if counts["hangul"] / letters > _SCRIPT_SHARE:
        return "ko"
    if counts["han"] / letters > _SCRIPT_SHARE:
        return "zh"
    return "en"


def resolve_languages(detected: dict[str, str], overrides: list[str] | None) -> dict[str, str]:
    """Each task's language: ``detected``, then ``overrides`` in order.

    An override is ``CODE`` (every task) or ``TASK=CODE`` (one task); ``UsageError`` for an
    empty code or a task the output does not have.
    """
    out = dict(detected)
    for item in overrides or []:
        task, sep, code = item.rpartition("=")
        code = code.strip()
        if not code:
            raise UsageError(f"--language {item!r}: want CODE or TASK=CODE, e.g. en or faq=zh")
        if not sep:
            out = dict.fromkeys(out, code)
        elif task in out:
            out[task] = code
        else:
            raise UsageError(f"--language {item!r}: no task {task!r}; tasks: {sorted(out)}")
    return out
