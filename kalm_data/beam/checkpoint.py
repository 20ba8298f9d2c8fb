"""Beam shells of stage checkpoints (the core: ``kalm_data.harness.checkpoint``).

- ``WriteCheckpoint(ckpt, shards)``: ``{name: PCollection}`` -> a one-element PCollection, the
  marker, written once every part is written. Each collection is encoded, spread over
  ``shards`` parts by a stable hash of each element, and each part written atomically.
- ``ReadCheckpoint(ckpt, names)``: the pipeline (the marker is read when the graph is built) or
  the marker PCollection of ``WriteCheckpoint`` -> ``{name: PCollection}`` of the elements.
- Reports are stored with their tallies summed into one (``kalm_data.beam.counts.SumTallies``,
  applied by the caller), so a checkpoint holds one line of counts rather than one per element.
- ``checkpointed(p, ckpt, names, compute, read)``: a done checkpoint is read instead of building
  ``compute()``'s graph at all; otherwise ``compute()``'s collections are written and read
  back from the marker. Either way downstream work sees the same decoded elements, and it
  starts only after the whole checkpoint is on disk (the marker is a barrier), so a run killed
  later keeps it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import apache_beam as beam

from kalm_data.harness.checkpoint import (
    Checkpoint,
    encode,
    read_part,
    shard_of,
    write_marker,
    write_part,
)

log = logging.getLogger(__name__)


def _key_by_shard(line: str, shards: int):
    return shard_of(line, shards), line


def _write_shard(item, ckpt: Checkpoint, name: str, shards: int) -> dict:
    shard, lines = item
    return write_part(ckpt, name, shard, shards, lines)


def _finish(entries: list[dict], ckpt: Checkpoint, names: list[str]) -> dict:
    marker = write_marker(ckpt, entries, names)
    log.info("checkpoint %s written: %s", ckpt.name, marker["elements"])
    return marker


class WriteCheckpoint(beam.PTransform):
    """``{name: PCollection}`` -> the marker (one dict), written after every part."""

    def __init__(self, ckpt: Checkpoint, shards: int = 8):
        super().__init__()
        self.ckpt = ckpt
        self.shards = shards

    def expand(self, named: dict):
        if not named:
            raise ValueError(f"checkpoint {self.ckpt.name}: nothing to write")
        written = []
        for name in sorted(named):
            written.append(
                named[name]
                | f"Encode_{name}" >> beam.Map(encode)
                | f"Shard_{name}" >> beam.Map(_key_by_shard, self.shards)
                | f"Group_{name}" >> beam.GroupByKey()
                | f"Write_{name}" >> beam.Map(_write_shard, self.ckpt, name, self.shards)
            )
        return (
            written
            | "AllParts" >> beam.Flatten()
            | "ListParts" >> beam.combiners.ToList()
            | "WriteMarker" >> beam.Map(_finish, self.ckpt, sorted(named))
        )


def _read(rel: str, ckpt: Checkpoint):
    return read_part(ckpt, rel)


def _parts(marker: dict, name: str) -> list[str]:
    return list(marker["parts"].get(name, []))


class ReadCheckpoint(beam.PTransform):
    """The pipeline or a marker PCollection -> ``{name: PCollection}`` of the stored elements."""

    def __init__(self, ckpt: Checkpoint, names: list[str] | tuple[str, ...]):
        super().__init__()
        self.ckpt = ckpt
        self.names = list(names)

    def expand(self, source):
        if isinstance(source, beam.pvalue.PCollection):
            marker = source
        else:
            found = self.ckpt.read_marker()
            if found is None:
                raise FileNotFoundError(f"checkpoint {self.ckpt.folder} has no marker")
            marker = source | "Marker" >> beam.Create([found])
        return {
            name: marker
            | f"Parts_{name}" >> beam.FlatMap(_parts, name)
            | f"Spread_{name}" >> beam.Reshuffle()
            | f"Read_{name}" >> beam.FlatMap(_read, self.ckpt)
            for name in self.names
        }


def checkpointed(
    p: beam.Pipeline,
    ckpt: Checkpoint,
    names: list[str] | tuple[str, ...],
    compute: Callable[[], dict],
    read: list[str] | tuple[str, ...] | None = None,
    shards: int = 8,
) -> tuple[dict, bool]:
    """The stage's ``{name: PCollection}`` from its checkpoint, and whether it was reused (see
    module docstring). ``compute()`` wires the stage and returns exactly ``names``; only the
    collections in ``read`` (default: all) are read back."""
    label = ckpt.stage.capitalize()
    read = list(names if read is None else read)
    if ckpt.done():
        log.info("checkpoint %s reused", ckpt.name)
        return p | f"Reuse{label}" >> ReadCheckpoint(ckpt, read), True
    ckpt.reset()
    named = compute()
    if sorted(named) != sorted(names):
        raise ValueError(f"checkpoint {ckpt.name}: computed {sorted(named)}, not {sorted(names)}")
    marker = named | f"Checkpoint{label}" >> WriteCheckpoint(ckpt, shards)
    return marker | f"Read{label}" >> ReadCheckpoint(ckpt, read), False
