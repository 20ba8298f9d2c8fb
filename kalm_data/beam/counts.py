"""Counts carried in the data, so every runner reports them.

Beam's runner metrics are not enough for the manifest: Beam's Dask runner reports none, and on
any runner they are a side channel that a retried bundle may count twice or a runner may drop.
So a DoFn that counts something also emits a ``Tally`` among its outputs, next to its kept
elements and ``RejectedRecord``s. ``SplitRejected`` sends tallies along with the rejections,
and ``WriteRejected`` sums them into ``<staging>/_counts/tallies.json``, which the harness reads
for the manifest's ``stages`` and ``mining`` counters. Like any element, a tally of a failed
bundle is discarded with it: each count is exact once the run succeeds.

``SummedCounts`` sums a PCollection's tallies into one sorted list of ``(name, total)``;
``SumTallies`` replaces them with one ``Tally`` (what a stage checkpoint stores).

``tally(counts)`` also increments the runner's counter of each name (namespace ``kalm_data``),
so the counts still show live in the runner's UI (Dataflow's job page).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import apache_beam as beam

TALLIES = "_counts/tallies.json"


@dataclass(frozen=True)
class Tally:
    """Counts by name (``"<stage>.in"``, ``"<stage>.rejected.<reason>"``, ``"texts_encoded"``...)
    of one element's worth of work; tallies are summed per name."""

    counts: tuple[tuple[str, int], ...]


def tally(counts: dict[str, int]) -> Tally:
    """A ``Tally`` of ``counts`` (zeros dropped); the runner's counters are incremented too."""
    from apache_beam.metrics import Metrics

    from kalm_data.beam import NAMESPACE

    kept = tuple((name, int(value)) for name, value in counts.items() if value)
    for name, value in kept:
        Metrics.counter(NAMESPACE, name).inc(value)
    return Tally(kept)


def write_tallies(sums: list[tuple[str, int]], path: str) -> str:
    """Write the summed ``(name, value)`` pairs as one JSON object (sorted by name) to ``path``."""
    from kalm_data.writers.manifest import write_json

    write_json(dict(sorted(sums)), path)
    return path


def read_tallies(staging: str) -> dict[str, int] | None:
    """The counts a run wrote under ``staging``; None when it wrote none (an older graph)."""
    import fsspec

    path = f"{staging.rstrip('/')}/{TALLIES}"
    fs, local = fsspec.core.url_to_fs(path)
    if not fs.exists(local):
        return None
    with fs.open(local, "r") as f:
        return {str(k): int(v) for k, v in json.load(f).items()}


def _counts_of(report) -> tuple:
    return report.counts if isinstance(report, Tally) else ()


def _not_tally(report) -> bool:
    return not isinstance(report, Tally)


class SummedCounts(beam.PTransform):
    """Reports (``RejectedRecord``s and ``Tally``s) -> one element: the tallies' ``(name,
    total)`` pairs, sorted by name (an empty list when there are none)."""

    def expand(self, reports):
        return (
            reports
            | "Counts" >> beam.FlatMap(_counts_of)
            | "Sum" >> beam.CombinePerKey(sum)
            | "ToList" >> beam.combiners.ToList()
            | "Sort" >> beam.Map(sorted)
        )


class SumTallies(beam.PTransform):
    """Reports -> the ``RejectedRecord``s as they are and one ``Tally``, the sum of the others."""

    def expand(self, reports):
        rejected = reports | "NotTallies" >> beam.Filter(_not_tally)
        summed = reports | SummedCounts() | "OneTally" >> beam.Map(lambda s: Tally(tuple(s)))
        return (rejected, summed) | "Reports" >> beam.Flatten()
