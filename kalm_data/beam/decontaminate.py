"""``Decontaminate``: the Beam shell of ``kalm_data.stages.decontaminate``.

    evaluation sets -> texts -> batches -> (shard, their keys in it) ---+
    pairs -> batches -> (shard, their texts' keys in it) ---------------+-> join by shard
          -> probe -> matches per (task, id) -> join back with the pairs -> (kept, rejected)

A text's keys are its normalised-text key and its word n-gram hashes; each key belongs to one of
``shards`` shards by its hash, so a worker holds one shard of the evaluation keys at a time
(about 1/``shards`` of them), never the whole set: raise ``shards`` for a large evaluation set.
Texts are keyed in batches (``core.KeyBatch``): one shuffled element per batch and shard.
Decisions depend only on keys, so the output is the same on every runner and worker layout.
With ``embed``, the teacher-cosine matches of ``kalm_data.beam.decontaminate_embed`` join the
key matches before the decision (one decision per pair, whatever matched).
Rows are counted like ``ApplyStage`` does, in a ``Tally``
(``decontaminate.in/.out/.rejected.<reason>``, plus ``decontaminate.negatives_removed``) and
shown in the progress display.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import apache_beam as beam

from kalm_data.beam import SplitRejected
from kalm_data.beam.counts import tally
from kalm_data.harness.progress import flush, report
from kalm_data.records import InputPair
from kalm_data.stages import decontaminate as core

if TYPE_CHECKING:
    from kalm_data.beam.decontaminate_embed import EmbedCheck


def _eval_batches(items: list, ngram: int, shards: int):
    """A batch of (ref, text) -> (shard, its keys in that shard)."""
    yield from core.KeyBatch.of(items, ngram).by_shard(shards)


def _pair_batches(pairs: list[InputPair], ngram: int, shards: int):
    """A batch of pairs -> (shard, the keys of their texts in that shard), each text labelled
    ``((task, id), role, index)``."""
    texts = (
        (((p.task, p.id), role, index), text)
        for p in pairs
        for role, index, text in core.pair_texts(p)
    )
    yield from core.KeyBatch.of(texts, ngram).by_shard(shards)


def _probe(item):
    """One shard: its evaluation keys indexed, the training keys looked up -> matches."""
    _, joined = item
    index = core.ShardIndex(joined["eval"])
    for batch in joined["train"]:
        for (key, role, i), how, ref in index.matches(batch):
            yield key, core.Match(role, i, how, ref)


class _DecideFn(beam.DoFn):
    """((task, id), {"pair": [pair], "match": [Match]}) -> the pair (cleaned) or its rejection."""

    def __init__(self, progress: str | None):
        self.progress = progress

    def process(self, item):
        _, joined = item
        matches = list(joined["match"])
        kept = rejected = removed = 0
        for pair in joined["pair"]:
            out = core.decide(pair, matches)
            if isinstance(out, InputPair):
                kept += 1
                removed += len(pair.negatives) - len(out.negatives)
            else:
                rejected += 1
            yield out
        name = core.NAME
        yield tally(
            {
                f"{name}.in": kept + rejected,
                f"{name}.out": kept,
                f"{name}.rejected.{core.Reason.CONTAMINATED.value}": rejected,
                f"{name}.negatives_removed": removed,
            }
        )
        report(self.progress, core.NAME, kept=kept, rejected=rejected)

    def finish_bundle(self):
        flush(self.progress)


class Decontaminate(beam.PTransform):
    """InputPairs -> (kept InputPairs, ``RejectedRecord``s of reason ``contaminated``) against
    the evaluation sets ``eval_sets`` (``kalm_data.readers.evalsets``). With ``embed``
    (``kalm_data.beam.decontaminate_embed.EmbedCheck``), texts whose teacher vectors are close
    to an evaluation text's match too."""

    def __init__(
        self,
        eval_sets: list[str],
        ngram: int = 13,
        shards: int = 16,
        progress: str | None = None,
        embed: EmbedCheck | None = None,
    ):
        super().__init__(label=core.NAME)
        self.eval_sets, self.ngram, self.shards = list(eval_sets), ngram, shards
        self.progress, self.embed = progress, embed

    def expand(self, pairs):
        from kalm_data.readers.evalsets import read_eval_texts

        eval_texts = (
            pairs.pipeline
            | "EvalSets" >> beam.Create(self.eval_sets)
            | "ReadEvalSets" >> beam.FlatMap(read_eval_texts)
            | "SpreadEval" >> beam.Reshuffle()
        )
        eval_keys = (
            eval_texts
            | "BatchEval" >> beam.BatchElements(min_batch_size=64, max_batch_size=2048)
            | "EvalKeys" >> beam.FlatMap(_eval_batches, self.ngram, self.shards)
        )
        pair_keys = (
            pairs
            | "BatchPairs" >> beam.BatchElements(min_batch_size=16, max_batch_size=512)
            | "PairKeys" >> beam.FlatMap(_pair_batches, self.ngram, self.shards)
        )
        matches = (
            {"eval": eval_keys, "train": pair_keys}
            | "JoinShards" >> beam.CoGroupByKey()
            | "Probe" >> beam.FlatMap(_probe)
        )
        if self.embed is not None:
            from kalm_data.beam.decontaminate_embed import EmbeddingMatches

            close = (pairs, eval_texts) | "Embedding" >> EmbeddingMatches(
                self.embed, self.shards, self.progress
            )
            matches = (matches, close) | "AllMatches" >> beam.Flatten()
        by_id = pairs | "ById" >> beam.Map(lambda p: ((p.task, p.id), p))
        return (
            {"pair": by_id, "match": matches}
            | "JoinPairs" >> beam.CoGroupByKey()
            | "Decide" >> beam.ParDo(_DecideFn(self.progress))
            | "Split" >> SplitRejected()
        )
