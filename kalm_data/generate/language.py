"""Which language a generated text is in, to reject answers written in the wrong one.

Contract:
- ``LANGUAGES``: the languages generation may ask for, ISO 639-1 code -> English name.
- ``detect_language(text)``: the ISO 639-1 code of ``text``, or None when it cannot be told
  reliably: fewer than ``MIN_LETTERS`` letters (a CJK character counts as two), or the best
  language less than ``MIN_RATIO`` times as likely as the runner-up.
  Only the languages of ``LANGUAGES`` are considered (faster, and no confusion with languages we
  never ask for); only the first ``MAX_DETECT_CHARS`` characters are read.
- ``language_matches(text, expected)``: False only when the text is confidently in another
  language. Undecidable texts match, and so does any text when ``expected`` is not in
  ``LANGUAGES``: a filter must not reject what it cannot judge (short labels, names, numbers).

Detection uses lingua (offline, models inside the wheel). The detector is built once per
process on first use; its first call loads the language models (several seconds). High
accuracy mode is kept: low accuracy mode was about 7x worse on short sentences of xquad and
stsb_multi_mt (28 vs 4 errors in 1,400) while detection is already ~1-2 ms per text; the
models of ``LANGUAGES`` take about 300 MB of memory.

Why a ratio and not an absolute confidence: on a short sentence lingua spreads probability over
the related languages (French 0.41, Italian 0.13, ...), so a 0.5 floor left 1 in 5 short English
or French sentences undecided. On 1,820 real questions and sentences (xquad, stsb_multi_mt),
best >= 2 x runner-up decided 98% with one error (a Greek question quoting English names).
"""

from __future__ import annotations

import functools
import unicodedata
from typing import Any

LANGUAGES: dict[str, str] = {
    "en": "English",
    "zh": "Chinese",
    "de": "German",
    "fr": "French",
    "es": "Spanish",
    "ja": "Japanese",
    "ru": "Russian",
    "ar": "Arabic",
    "pt": "Portuguese",
    "it": "Italian",
    "ko": "Korean",
    "hi": "Hindi",
    "nl": "Dutch",
    "pl": "Polish",
    "tr": "Turkish",
    "vi": "Vietnamese",
    "th": "Thai",
    "id": "Indonesian",
    "sv": "Swedish",
    "el": "Greek",
    "ro": "Romanian",
}

#: Fewer letters than this: too little evidence, undecidable (a CJK character counts as two).
MIN_LETTERS = 8
#: The best language's confidence must be at least this many times the runner-up's.
MIN_RATIO = 2.0
#: Detection reads this many characters: a language shows in the opening of a document.
MAX_DETECT_CHARS = 2_000


@functools.lru_cache(maxsize=1)
def _detector() -> Any:
    from lingua import IsoCode639_1, LanguageDetectorBuilder

    codes = [getattr(IsoCode639_1, code.upper()) for code in LANGUAGES]
    return LanguageDetectorBuilder.from_iso_codes_639_1(*codes).build()


def normalize_code(code: str) -> str:
    """``"zh-CN"`` / ``"PT_br"`` -> ``"zh"`` / ``"pt"``."""
    return code.strip().lower().replace("_", "-").split("-")[0]


def detect_language(text: str) -> str | None:
    """ISO 639-1 code of ``text``'s language, or None when undecidable (see module doc)."""
    text = text[:MAX_DETECT_CHARS]
    if _letters(text) < MIN_LETTERS:
        return None
    values = _detector().compute_language_confidence_values(text)
    if not values or values[0].value <= 0:
        return None
    runner_up = values[1].value if len(values) > 1 else 0.0
    if values[0].value < MIN_RATIO * runner_up:
        return None
    return values[0].language.iso_code_639_1.name.lower()


def _letters(text: str) -> int:
    """Letters in ``text``; a wide (CJK, kana, Hangul) character says as much as two."""
    return sum(
        2 if unicodedata.east_asian_width(c) in ("W", "F") else 1 for c in text if c.isalpha()
    )


def language_matches(text: str, expected: str) -> bool:
    """False only when ``text`` is confidently in a language other than ``expected``."""
    expected = normalize_code(expected)
    if expected not in LANGUAGES:
        return True
    detected = detect_language(text)
    return detected is None or detected == expected
