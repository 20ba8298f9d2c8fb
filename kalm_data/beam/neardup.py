"""``NearDuplicates``: the Beam shell of ``kalm_data.stages.neardup``.

    pairs -> signature & band keys -> group ids by (task, band, band hash) -> the buckets
          holding 2 or more ids, keyed by their set of ids -> join each such id with its
          signatures and shingles (by (task, id)) -> group by set -> verify each set once ->
          lowest near-duplicate per pair
          (CombinePerKey min) -> join back by (task, id) -> (kept pairs, ``RejectedRecord``s)

No worker holds a global set: a bucket holds only the pairs whose band matches, and the joins
are by key. Only ids travel per band; a pair's signatures and shingles travel once, and again
only for the buckets it shares with another pair (when every band carried them, the local
runner's launcher held 3.7 GB more at 20,000 pairs). Each pair's decision depends only on its
candidates, so the output is the same on every runner and worker layout. Input ids must be
unique per task (``DedupIds`` runs first). Rows are counted like ``ApplyStage`` does (a
``Tally`` of ``neardup.in/.out/.rejected.<reason>``, and the progress display).
"""

from __future__ import annotations

import hashlib

import apache_beam as beam

from kalm_data.beam import SplitRejected
from kalm_data.beam.counts import tally
from kalm_data.harness.progress import flush, report
from kalm_data.records import InputPair
from kalm_data.stages import neardup as core


class _SignFn(beam.DoFn):
    """pair -> (task, id, its band keys, its ``Member``). One element per pair, split by the
    next two steps (Beam's Dask runner does not keep a ParDo's tagged outputs apart)."""

    def __init__(self, shingle: int, num_perm: int, bands: int, rows: int):
        self.shingle, self.num_perm, self.bands, self.rows = shingle, num_perm, bands, rows

    def setup(self):
        self.hasher = core.MinHasher(self.num_perm)

    def process(self, pair: InputPair):
        query, positive = core.pair_shingles(pair, self.shingle)
        q_sig, p_sig, signature = core.signatures(self.hasher, query, positive)
        member = core.Member.of(pair.id, (q_sig, p_sig), query, positive)
        yield pair.task, pair.id, core.band_keys(signature, self.bands, self.rows), member


def _band_ids(signed):
    """(task, id, band keys, Member) -> ((task, band, band hash), id) for every band."""
    task, pair_id, keys, _ = signed
    for band, key in enumerate(keys):
        yield (task, band, key), pair_id


def _member(signed):
    """(task, id, band keys, Member) -> ((task, id), Member)."""
    task, pair_id, _, member = signed
    return (task, pair_id), member


def _shared(bucket):
    """(bucket, ids) -> ((task, id), (task, digest of the ids)) for each id of a bucket with 2
    or more ids. Buckets of different bands that hold the same ids get one key, so a pair is
    sent once to each distinct set of candidates (templated pairs share all their bands: on
    40,000 real pairs, 116,808 copies where there were 189,874); a set verified once gives the
    same lowest duplicates as the same set verified in every band."""
    (task, _band, _key), ids = bucket
    ids = sorted(set(ids))
    if len(ids) >= 2:
        digest = hashlib.blake2b("\0".join(ids).encode(), digest_size=16).digest()
        for pair_id in ids:
            yield (task, pair_id), (task, digest)


def _to_buckets(item):
    """((task, id), {"member": [Member], "bucket": [bucket, ...]}) -> (bucket, Member) for each
    shared bucket of the pair."""
    _, joined = item
    buckets = sorted(set(joined["bucket"]))
    for member in joined["member"]:
        for bucket in buckets:
            yield bucket, member


def _verify(bucket, threshold: float):
    (task, _), members = bucket
    members = list(members)
    if len(members) < 2:
        return
    for pair_id, dup in core.first_duplicate(members, threshold):
        yield (task, pair_id), dup


class _DecideFn(beam.DoFn):
    """((task, id), {"pair": [pair], "dup": [lowest duplicate]}) -> the pair or its rejection."""

    def __init__(self, progress: str | None):
        self.progress = progress

    def process(self, item):
        _, joined = item
        pairs, dups = list(joined["pair"]), list(joined["dup"])
        for pair in pairs:
            yield core.reject(pair, min(dups)) if dups else pair
        kept = 0 if dups else len(pairs)
        yield tally(
            {
                f"{core.NAME}.in": len(pairs),
                f"{core.NAME}.out": kept,
                f"{core.NAME}.rejected.{core.Reason.NEAR_DUPLICATE.value}": len(pairs) - kept,
            }
        )
        report(self.progress, core.NAME, kept=kept, rejected=len(pairs) - kept)

    def finish_bundle(self):
        flush(self.progress)


class NearDuplicates(beam.PTransform):
    """InputPairs -> (kept InputPairs, ``RejectedRecord``s of reason ``near_duplicate``)."""

    def __init__(
        self,
        threshold: float = 0.8,
        shingle: int = 3,
        num_perm: int = 128,
        bands: int = 0,
        progress: str | None = None,
    ):
        super().__init__(label=core.NAME)
        self.threshold, self.shingle, self.num_perm = threshold, shingle, num_perm
        if bands > num_perm:
            raise ValueError(f"bands ({bands}) must be at most num_perm ({num_perm})")
        if bands:
            self.bands, self.rows = bands, num_perm // bands
        else:
            self.bands, self.rows = core.lsh_params(threshold, num_perm)
        self.progress = progress

    def expand(self, pairs):
        sign = _SignFn(self.shingle, self.num_perm, self.bands, self.rows)
        signed = pairs | "Sign" >> beam.ParDo(sign)
        shared = (
            signed
            | "BandIds" >> beam.FlatMap(_band_ids)
            | "Buckets" >> beam.GroupByKey()
            | "Shared" >> beam.FlatMap(_shared)
        )
        lowest = (
            {"member": signed | "Members" >> beam.Map(_member), "bucket": shared}
            | "WithMembers" >> beam.CoGroupByKey()
            | "ToBuckets" >> beam.FlatMap(_to_buckets)
            | "Candidates" >> beam.GroupByKey()
            | "Verify" >> beam.FlatMap(_verify, self.threshold)
            | "Lowest" >> beam.CombinePerKey(min)
        )
        by_id = pairs | "ById" >> beam.Map(lambda p: ((p.task, p.id), p))
        return (
            {"pair": by_id, "dup": lowest}
            | "Join" >> beam.CoGroupByKey()
            | "Decide" >> beam.ParDo(_DecideFn(self.progress))
            | "Split" >> SplitRejected()
        )
