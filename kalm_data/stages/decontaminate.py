"""``decontaminate``: training pairs that overlap an evaluation set leave the funnel.

Contract (pure; no Beam, no I/O; the Beam shell is ``kalm_data.beam.decontaminate``):

- ``normalise``: NFKC, casefold, every run of punctuation or whitespace folded to one space,
  stripped. Two texts *match exactly* when their normalised forms are equal.
- ``ngram_hashes(text, n)``: the 64-bit hashes of the text's word ``n``-grams (words of the
  normalised text); a text of fewer than ``n`` words has none, and can only match exactly.
  13-word n-grams are the GPT-3 / Llama decontamination unit: long enough that a shared one is
  copied text, not a common phrase.
- A training text matches an evaluation text when the two match exactly or share one n-gram,
  or, when asked, when their teacher vectors are close (``kalm_data.stages.decontaminate_embed``).
- A pair whose query or a positive matches is rejected (``contaminated``), the detail naming
  the evaluation set, the kind of text (query or document) and its id; a matching *negative*
  is only removed from the pair's negatives (an evaluation text as a negative teaches nothing
  about its answer, but there is no reason to keep it either).
- Everything is keyed by hash: ``shard_of(h, shards)`` spreads the hashes over ``shards``
  groups so that no worker ever holds the whole evaluation set; ``KeyBatch`` holds the keys of
  many texts (split by shard), ``ShardIndex`` one shard's evaluation keys, and
  ``ShardIndex.matches`` looks a batch of training keys up in it.

Hashes are blake2b-based (never Python's salted ``hash``), so every worker and every run
computes the same keys.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import Enum
from functools import lru_cache

import numpy as np

from kalm_data import reasons
from kalm_data.records import InputPair, RejectedRecord

NAME = reasons.DECONTAMINATE
_NON_WORD = re.compile(r"[\W_]+")
#: Odd 64-bit multipliers of the polynomial n-gram hash and of the final mix (splitmix64).
_BASE = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
#: Tags keep exact-text keys apart from n-gram keys.
_EXACT_TAG = b"exact\x1f"


class Reason(str, Enum):
    CONTAMINATED = reasons.CONTAMINATED


class Kind(str, Enum):
    """How a training text matched an evaluation text (sorted: exact first)."""

    EXACT = "0-exact"
    NGRAM = "1-ngram"
    EMBEDDING = "2-embedding"


@dataclass(frozen=True, order=True)
class EvalRef:
    """One evaluation text: its set (by name), kind (``query`` / ``document``) and id."""

    set_name: str
    kind: str
    id: str


@dataclass(frozen=True, order=True)
class Match:
    """A training text of a pair (``role`` query / positive / negative, ``index`` in its list)
    that matches ``ref`` the way ``how`` says (``score``: the teacher cosine of an
    ``EMBEDDING`` match). ``rank`` orders matches deterministically, best first."""

    role: str
    index: int
    how: Kind
    ref: EvalRef
    score: float = 0.0

    def rank(self) -> tuple:
        """Sort key: by role and index, exact before n-gram before embedding, the higher
        cosine first, then the smaller ref."""
        return (self.role, self.index, self.how, -self.score, self.ref)


def normalise(text: str) -> str:
    """NFKC, casefold, punctuation and whitespace runs -> one space, stripped."""
    return _NON_WORD.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


def words(text: str) -> list[str]:
    """The words of the normalised text."""
    return normalise(text).split()


@lru_cache(maxsize=1 << 18)
def word_hash(word: str) -> int:
    """A stable 64-bit hash of one word (cached: words repeat, Zipf)."""
    return int.from_bytes(hashlib.blake2b(word.encode("utf-8"), digest_size=8).digest(), "little")


def _mix(h: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: spreads the polynomial hash over all 64 bits."""
    h = h ^ (h >> np.uint64(30))
    h = h * _MIX1
    h = h ^ (h >> np.uint64(27))
    h = h * _MIX2
    return h ^ (h >> np.uint64(31))


@lru_cache(maxsize=64)
def _powers(n: int) -> np.ndarray:
    """(n,) BASE**(n-1) ... BASE**0 modulo 2**64: the weights of the polynomial hash."""
    return np.array([pow(int(_BASE), n - 1 - i, 1 << 64) for i in range(n)], dtype=np.uint64)


def word_ngrams(tokens: list[str], n: int) -> np.ndarray:
    """Sorted unique 64-bit hashes of the ``n``-grams of ``tokens``; (len - n + 1,) at most."""
    if len(tokens) < n:
        return np.empty(0, dtype=np.uint64)
    hashes = np.array(list(map(word_hash, tokens)), dtype=np.uint64)  # (len,)
    count = len(tokens) - n + 1
    grams = np.zeros(count, dtype=np.uint64)  # (len - n + 1,): sum_i word[j + i] * BASE**(n-1-i)
    with np.errstate(over="ignore"):
        for i, power in enumerate(_powers(n)):
            grams += hashes[i : i + count] * power
        return np.unique(_mix(grams))


def ngram_hashes(text: str, n: int) -> np.ndarray:
    """The word ``n``-gram hashes of ``text`` (see module docstring)."""
    return word_ngrams(words(text), n)


def exact_key(text: str) -> int | None:
    """The 64-bit key of the normalised text (None for a text with no word)."""
    norm = normalise(text)
    if not norm:
        return None
    return int.from_bytes(
        hashlib.blake2b(_EXACT_TAG + norm.encode(), digest_size=8).digest(), "little"
    )


def shard_of(hashes: np.ndarray, shards: int) -> np.ndarray:
    """The shard of each hash: the hash modulo ``shards`` (hashes are mixed: even spread)."""
    return (hashes % np.uint64(shards)).astype(np.int64)


def text_keys(text: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(exact key as a 0- or 1-element array, n-gram hashes) of ``text``."""
    key = exact_key(text)
    exact = np.array([] if key is None else [key], dtype=np.uint64)
    return exact, ngram_hashes(text, n)


def pair_texts(pair: InputPair) -> Iterable[tuple[str, int, str]]:
    """(role, index, text) of every text of ``pair``."""
    yield "query", 0, pair.query
    for i, text in enumerate(pair.positives):
        yield "positive", i, text
    for i, text in enumerate(pair.negatives):
        yield "negative", i, text


#: ``KeyBatch.kinds`` values: index into this tuple.
KINDS = (Kind.EXACT, Kind.NGRAM)


@dataclass(frozen=True)
class KeyBatch:
    """The keys of many texts at once: ``hashes[i]`` (uint64) is a key of kind
    ``KINDS[kinds[i]]`` of text ``texts[i]`` (an index into ``labels``: an ``EvalRef``, or a
    training text's ``(pair key, role, index)``). Batches keep the number of shuffled elements
    small: one per batch and shard, not one per key."""

    hashes: np.ndarray
    kinds: np.ndarray
    texts: np.ndarray
    labels: list

    @classmethod
    def of(cls, texts: Iterable[tuple[object, str]], n: int) -> KeyBatch:
        """The keys of ``(label, text)`` items."""
        hashes, kinds, owners, labels = [], [], [], []
        for label, text in texts:
            for kind, keys in enumerate(text_keys(text, n)):
                hashes.append(keys)
                kinds.append(np.full(len(keys), kind, dtype=np.uint8))
                owners.append(np.full(len(keys), len(labels), dtype=np.int64))
            labels.append(label)
        if not hashes:
            return cls(np.empty(0, np.uint64), np.empty(0, np.uint8), np.empty(0, np.int64), [])
        return cls(np.concatenate(hashes), np.concatenate(kinds), np.concatenate(owners), labels)

    def by_shard(self, shards: int) -> Iterable[tuple[int, KeyBatch]]:
        """(shard, the part of this batch whose keys fall in it), for each shard it touches."""
        where = shard_of(self.hashes, shards)
        for s in np.unique(where).tolist():
            mask = where == s
            used, texts = np.unique(self.texts[mask], return_inverse=True)
            labels = [self.labels[i] for i in used.tolist()]
            yield s, KeyBatch(self.hashes[mask], self.kinds[mask], texts.astype(np.int64), labels)


def _first_per(groups: np.ndarray, ranks: np.ndarray) -> np.ndarray:
    """Positions of the smallest rank of each group (groups and ranks of equal length)."""
    order = np.lexsort((ranks, groups))
    first = np.ones(len(order), dtype=bool)
    first[1:] = groups[order][1:] != groups[order][:-1]
    return order[first]


class ShardIndex:
    """The evaluation keys of one shard, from ``KeyBatch``es of evaluation texts: per kind, the
    sorted unique hashes, each with the smallest ``EvalRef`` that has it; ``matches`` looks a
    batch of training keys up in one vectorised ``searchsorted`` per kind."""

    def __init__(self, batches: Iterable[KeyBatch]):
        batches = list(batches)
        refs = [ref for b in batches for ref in b.labels]
        offsets = np.cumsum([0] + [len(b.labels) for b in batches])
        texts = np.concatenate(
            [b.texts + off for b, off in zip(batches, offsets, strict=False)]
            or [np.empty(0, np.int64)]
        )
        order = sorted(range(len(refs)), key=refs.__getitem__)
        rank = np.empty(len(refs), dtype=np.int64)
        rank[order] = np.arange(len(refs))
        self.refs: list[EvalRef] = [refs[i] for i in order]  # by rank
        hashes = np.concatenate([b.hashes for b in batches] or [np.empty(0, np.uint64)])
        kinds = np.concatenate([b.kinds for b in batches] or [np.empty(0, np.uint8)])
        ranks = rank[texts]
        self._tables = {}
        for kind in range(len(KINDS)):
            mask = kinds == kind
            h, r = hashes[mask], ranks[mask]
            keep = _first_per(h, r)  # sorted by hash: lexsort's primary key
            self._tables[kind] = (h[keep], r[keep])

    def matches(self, batch: KeyBatch) -> Iterator[tuple[object, Kind, EvalRef]]:
        """(label, kind, smallest ref) per text of ``batch`` and kind that has a match."""
        for kind, (table, ranks) in self._tables.items():
            mask = batch.kinds == kind
            keys, owners = batch.hashes[mask], batch.texts[mask]
            if not len(table) or not len(keys):
                continue
            at = np.minimum(np.searchsorted(table, keys), len(table) - 1)
            hit = table[at] == keys
            owners, hit_ranks = owners[hit], ranks[at[hit]]
            for i in _first_per(owners, hit_ranks).tolist():
                yield batch.labels[owners[i]], KINDS[kind], self.refs[hit_ranks[i]]


def describe(match: Match) -> str:
    """``positive 1 matches evaluation set 'scifact' document '4983' (13-word n-gram)``."""
    where = match.role if match.role == "query" else f"{match.role} {match.index + 1}"
    how = {
        Kind.EXACT: "exact text",
        Kind.NGRAM: "shared word n-gram",
        Kind.EMBEDDING: f"teacher cosine {match.score:.4f}",
    }[match.how]
    ref = match.ref
    return f"{where} matches evaluation set '{ref.set_name}' {ref.kind} '{ref.id}' ({how})"


def decide(pair: InputPair, matches: list[Match]) -> InputPair | RejectedRecord:
    """The pair without its contaminated negatives, or its rejection if its query or a
    positive matches (the smallest match is named)."""
    from kalm_data.stage import rejected_record

    bad = sorted((m for m in matches if m.role != "negative"), key=Match.rank)
    if bad:
        first = bad[0]
        return rejected_record(
            NAME,
            pair,
            Reason.CONTAMINATED.value,
            describe(first),
            eval_set=first.ref.set_name,
            eval_id=first.ref.id,
        )
    dropped = {m.index for m in matches if m.role == "negative"}
    if not dropped:
        return pair
    negatives = [t for i, t in enumerate(pair.negatives) if i not in dropped]
    return pair.model_copy(update={"negatives": negatives})
