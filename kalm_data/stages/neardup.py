"""``neardup``: pairs whose query AND positive nearly repeat another pair's leave the funnel.

Contract (pure; no Beam; the Beam shell is ``kalm_data.beam.neardup``):

- Shingles of a text: hashes of its word ``k``-grams (words of the normalised text,
  ``kalm_data.stages.decontaminate.normalise``: NFKC, casefold, punctuation dropped); a text
  of fewer than ``k`` words is one shingle (all its words). Default ``k = 3``: word 3-grams
  tell reordered or reworded sentences apart, while one changed word still leaves most shingles
  of a long text shared. The positives of a pair are shingled together.
- Two pairs of one task are *near-duplicates* when the exact Jaccard similarity of their query
  shingle sets and of their positive shingle sets are both ``>= threshold``.
- A pair is rejected (``near_duplicate``) when a near-duplicate with a lower id (``id_order``)
  exists, whether that one is kept or not: each pair is judged on its own, so the result does
  not depend on the order or the layout of the workers. The detail names the lowest such id
  and both similarities.
- Candidates come from MinHash LSH (Broder 1997; banding as in Leskovec et al., *Mining of
  Massive Datasets*, ch. 3) over the union of the query and positive shingles: when both
  similarities are ``>= t``, so is the union's (a mediant), so the union's LSH at ``t`` misses
  only what banding misses. Every candidate is verified exactly (``first_duplicate``).
- MinHash is a vectorised multiply-shift family on 64-bit shingle hashes (``MinHasher``):
  the same signatures on every worker and run (no salted ``hash``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import Enum

import numpy as np

from kalm_data import reasons
from kalm_data.records import InputPair, RejectedRecord
from kalm_data.stages.decontaminate import word_hash, word_ngrams, words

NAME = reasons.NEARDUP
#: Marks positive shingles so that a query never shares one with a positive in the union.
_POSITIVE_TAG = np.uint64(0x5BD1E9955BD1E995)


class Reason(str, Enum):
    NEAR_DUPLICATE = reasons.NEAR_DUPLICATE


def shingles(text: str, k: int) -> np.ndarray:
    """Sorted unique 64-bit hashes of the word ``k``-grams of ``text`` (module docstring)."""
    tokens = words(text)
    if 0 < len(tokens) < k:
        return np.array([word_hash(" ".join(tokens))], dtype=np.uint64)
    return word_ngrams(tokens, k)


def pair_shingles(pair: InputPair, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(query shingles, shingles of all positives together) of ``pair``."""
    positives = [shingles(p, k) for p in pair.positives]
    return shingles(pair.query, k), np.unique(np.concatenate(positives))


class MinHasher:
    """``num_perm`` multiply-shift hash functions ``h(x) = (a x + b) >> 32`` (a odd): one
    MinHash signature of uint32 per shingle set, computed for all functions at once."""

    def __init__(self, num_perm: int = 128, seed: int = 1):
        rng = np.random.default_rng(seed)
        self.num_perm = num_perm
        self.a = rng.integers(1, 2**63, num_perm, dtype=np.uint64)[:, None] * 2 + 1  # odd
        self.b = rng.integers(0, 2**63, num_perm, dtype=np.uint64)[:, None]

    def signature(self, hashes: np.ndarray) -> np.ndarray:
        """(num_perm,) uint32 minima; all 2**32 - 1 for an empty set."""
        if not len(hashes):
            return np.full(self.num_perm, 0xFFFFFFFF, dtype=np.uint32)
        with np.errstate(over="ignore"):
            values = (self.a * hashes[None, :] + self.b) >> np.uint64(32)  # (num_perm, n)
        return values.min(axis=1).astype(np.uint32)


def signatures(
    hasher: MinHasher, query: np.ndarray, positive: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(query, positive, union) signatures; LSH bands the union (the query's shingles and the
    positives', tagged apart), whose signature is the elementwise min of the other two."""
    q, p = hasher.signature(query), hasher.signature(positive ^ _POSITIVE_TAG)
    return q, p, np.minimum(q, p)


def band_probability(s: float | np.ndarray, bands: int, rows: int):
    """Probability that two sets of Jaccard ``s`` share at least one band."""
    return 1.0 - (1.0 - np.asarray(s) ** rows) ** bands


def lsh_params(threshold: float, num_perm: int, recall: float = 0.95) -> tuple[int, int]:
    """(bands, rows), ``bands * rows <= num_perm``: the most selective banding (most rows per
    band: fewest candidates to verify) that still makes a pair of similarity ``threshold`` a
    candidate with probability ``>= recall``; more similar pairs are found more surely."""
    for rows in range(num_perm, 0, -1):
        bands = num_perm // rows
        if band_probability(threshold, bands, rows) >= recall:
            return bands, rows
    return num_perm, 1


def band_keys(signature: np.ndarray, bands: int, rows: int) -> list[int]:
    """One stable 64-bit key per band of ``signature`` (equal bands -> equal keys)."""
    out = []
    for b in range(bands):
        chunk = signature[b * rows : (b + 1) * rows].tobytes()
        out.append(int.from_bytes(hashlib.blake2b(chunk, digest_size=8).digest(), "little"))
    return out


def id_order(pair_id: str) -> tuple:
    """The order of ids: integers numerically first (``"9" < "10"``; ``"007" < "7"``), then
    other ids as text. A total order: distinct ids never tie."""
    numeric = pair_id.isascii() and pair_id.isdigit()
    return (0, int(pair_id), pair_id) if numeric else (1, 0, pair_id)


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """Exact Jaccard similarity of two sorted unique hash arrays (1.0 when both are empty)."""
    if not len(a) and not len(b):
        return 1.0
    shared = len(np.intersect1d(a, b, assume_unique=True))
    return shared / (len(a) + len(b) - shared)


@dataclass(frozen=True)
class Member:
    """A pair as an LSH bucket holds it: id, the query's and the positives' signatures and
    shingles (as bytes: compact to shuffle)."""

    order: tuple
    id: str
    query_signature: bytes
    positive_signature: bytes
    query: bytes
    positive: bytes

    @classmethod
    def of(cls, pair_id: str, sigs: tuple[np.ndarray, np.ndarray], query, positive) -> Member:
        q_sig, p_sig = (x.tobytes() for x in sigs)
        return cls(id_order(pair_id), pair_id, q_sig, p_sig, query.tobytes(), positive.tobytes())

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        q = np.frombuffer(self.query, dtype=np.uint64)
        return q, np.frombuffer(self.positive, dtype=np.uint64)


#: (order of the duplicated id, that id, query similarity, positive similarity); ``min`` of
#: these over every bucket is the lowest near-duplicate of a pair.
Duplicate = tuple[tuple, str, float, float]


def estimate_slack(num_perm: int) -> float:
    """How far below the threshold a MinHash estimate may fall for a pair still worth verifying:
    4.5 standard deviations at worst (s = 0.5), a miss chance under 1e-5 (0.2 at 128)."""
    return 4.5 * 0.5 / num_perm**0.5


def first_duplicate(members: Iterable[Member], threshold: float) -> Iterator[tuple[str, Duplicate]]:
    """(id, its lowest near-duplicate in this bucket) for each member that has one.

    Lower members whose MinHash estimate is far below ``threshold`` (``estimate_slack``) are
    skipped unverified; the others are verified exactly, lowest id first."""
    ordered = sorted(members, key=lambda m: m.order)
    q_sigs = np.stack([np.frombuffer(m.query_signature, np.uint32) for m in ordered])  # (n, perm)
    p_sigs = np.stack([np.frombuffer(m.positive_signature, np.uint32) for m in ordered])
    floor = threshold - estimate_slack(q_sigs.shape[1])
    arrays: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def shingles_of(i: int) -> tuple[np.ndarray, np.ndarray]:
        if i not in arrays:
            arrays[i] = ordered[i].arrays()
        return arrays[i]

    for k in range(1, len(ordered)):
        near = ((q_sigs[:k] == q_sigs[k]).mean(axis=1) >= floor) & (
            (p_sigs[:k] == p_sigs[k]).mean(axis=1) >= floor
        )  # (k,)
        for j in np.flatnonzero(near).tolist():
            if ordered[j].id == ordered[k].id:
                continue  # one id twice (ids should be unique per task: DedupIds runs first)
            (qj, pj), (q, p) = shingles_of(j), shingles_of(k)
            jq = jaccard(qj, q)
            jp = jaccard(pj, p) if jq >= threshold else 0.0
            if jq >= threshold and jp >= threshold:
                yield ordered[k].id, (ordered[j].order, ordered[j].id, jq, jp)
                break


def reject(pair: InputPair, dup: Duplicate) -> RejectedRecord:
    """The rejection of ``pair`` as a near-duplicate of ``dup``."""
    from kalm_data.stage import rejected_record

    _, dup_id, jq, jp = dup
    detail = f"near-duplicate of id '{dup_id}' (query Jaccard {jq:.3f}, positive Jaccard {jp:.3f})"
    return rejected_record(
        NAME,
        pair,
        Reason.NEAR_DUPLICATE.value,
        detail,
        near_duplicate_of=dup_id,
        query_similarity=round(jq, 4),
        positive_similarity=round(jp, 4),
    )
