"""``EmbeddingMatches``: the Beam shell of ``kalm_data.stages.decontaminate_embed``.

    evaluation texts -+                 +-> (shard, the eval keys in its key range) ---+
                      +-> embed (cache) |                                              +-> probe
    pairs -> texts ---+   (waited for)  +-> (shard, each embedding group's labels) ----+

Every text (evaluation and training) is embedded by the run's teacher into the embedding cache
(``EmbedTexts``: the same keys, so the training texts are not encoded again by the embedding
stage that follows). Evaluation texts are split into ``shards`` key ranges; training texts
travel as the embedding groups they were encoded in (one narrow key range of one length
bucket, so reading their vectors opens a file or two), each group sent to every shard; so there
are as few shards as hold the evaluation set (``shard_count``, at most ``shards``). A probe
holds one shard's evaluation vectors and scores every group against them, after the embedding
has ended (a side input waits for it). Output: ``((task, id), Match)`` for each training text
whose best cosine in a shard is ``>= threshold``; ``Decontaminate`` decides with these and the
n-gram matches together. Decisions depend only on the vectors, not on runner or layout.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import apache_beam as beam
import numpy as np

from kalm_data.curate.config import CurateConfig
from kalm_data.embed.buckets import group_key, length_bucket
from kalm_data.stages import decontaminate as core
from kalm_data.stages.decontaminate_embed import (
    TEXTS_PER_SHARD,
    best_matches,
    eval_shard,
    shard_count,
)
from kalm_data.text import normalize, text_key


@dataclass(frozen=True)
class EmbedCheck:
    """What the embedding test needs: its threshold, and the run's settings (cache, batch
    size, threads, groups), teacher and teacher fingerprint; ``texts_per_shard``: see
    ``shard_count``."""

    threshold: float
    cfg: CurateConfig
    teacher: str
    fingerprint: str
    texts_per_shard: int = TEXTS_PER_SHARD


def keyed_eval_texts(item: tuple[core.EvalRef, str]) -> Iterator[tuple[core.EvalRef, str, str]]:
    """(ref, key, text) of an evaluation text, normalised as training texts are (none when
    empty)."""
    ref, text = item
    text = normalize(text)
    if text:
        yield ref, text_key(text), text


def _pair_texts(pair) -> Iterator[tuple[tuple, str, str]]:
    """((pair key, role, index), key, text) of every text of a pair (already normalised)."""
    for role, index, text in core.pair_texts(pair):
        yield ((pair.task, pair.id), role, index), text_key(text), text


def _longest(ref, texts) -> tuple[core.EvalRef, str, str]:
    """One text per evaluation ref: the longest (a BEIR document is read as title + text, then
    as its text alone, which the first holds), ties by key."""
    return max(texts, key=lambda e: (len(e[2]), e[1]))


def _to_every_shard(item, shards: int):
    """An embedding group's training texts, once for each of ``shards`` shards."""
    group, texts = item
    texts = list(texts)
    for s in range(shards):
        yield s, (group, texts)


class _ProbeFn(beam.DoFn):
    """(shard, {"eval": [(ref, key, bucket)], "train": [(group, [(label, key, bucket)])]}) ->
    ((task, id), Match) per training text matching an evaluation text of the shard."""

    def __init__(self, check: EmbedCheck):
        self.threshold = check.threshold
        self.cache_dir, self.fingerprint = check.cfg.cache_dir, check.fingerprint

    def setup(self):
        from kalm_data.embed.cache import EmbeddingCache

        self.cache = EmbeddingCache(self.cache_dir, self.fingerprint)

    def _vectors(self, items: list[tuple]) -> np.ndarray:
        """The cached vectors of ``(_, key, bucket)`` items, in order (all must be cached)."""
        found = self.cache.vectors_in({key: bucket for _, key, bucket in items})
        missing = [key for _, key, _ in items if key not in found]
        if missing:
            raise RuntimeError(
                f"decontaminate: {len(missing)} texts have no vector in the embedding cache "
                f"after embedding (first key {missing[0]}): was the cache removed during the run?"
            )
        return np.stack([found[key] for _, key, _ in items]).astype(np.float32, copy=False)

    def process(self, item, embedded):
        del embedded  # only waited for: the vectors are in the cache
        _, joined = item
        evals = sorted(joined["eval"])
        if not evals:
            return
        eval_vectors = self._vectors(evals)
        refs = [ref for ref, _, _ in evals]
        for _, texts in joined["train"]:
            texts = list(texts)
            for row, ref, score in best_matches(
                self._vectors(texts), eval_vectors, refs, self.threshold
            ):
                (pair_key, role, index), _, _ = texts[row]
                yield pair_key, core.Match(role, index, core.Kind.EMBEDDING, ref, score)


class EmbeddingMatches(beam.PTransform):
    """(pairs, evaluation (ref, text) items) -> ``((task, id), Match)`` of every pair text whose
    teacher cosine to an evaluation text is ``>= check.threshold`` (module docstring)."""

    def __init__(self, check: EmbedCheck, shards: int, progress: str | None = None):
        super().__init__()
        self.check, self.shards, self.progress = check, shards, progress

    def expand(self, inputs):
        from kalm_data.beam.embed import EmbedTexts
        from kalm_data.curate.pipeline import in_process_worker, on_local_runner

        pairs, eval_items = inputs
        p, check, cfg = pairs.pipeline, self.check, self.check.cfg
        evals = (
            eval_items
            | "KeyEval" >> beam.FlatMap(keyed_eval_texts)
            | "EvalByRef" >> beam.Map(lambda e: (e[0], e))
            | "GroupRef" >> beam.GroupByKey()
            | "LongestOfRef" >> beam.MapTuple(_longest)
        )
        train = pairs | "PairTexts" >> beam.FlatMap(_pair_texts)
        child = cfg.teacher_process if cfg.teacher_process is not None else in_process_worker(p)
        embedded = (
            (
                evals | "EvalKT" >> beam.Map(lambda e: (e[1], e[2])),
                train | "TrainKT" >> beam.Map(lambda t: (t[1], t[2])),
            )
            | "AllTexts" >> beam.Flatten()
            | "Embed"
            >> EmbedTexts(
                cfg,
                check.teacher,
                check.fingerprint,
                self.progress,
                release=on_local_runner(p),
                teacher_process=child,
            )
        )
        shards = beam.pvalue.AsSingleton(
            evals
            | "CountEval" >> beam.combiners.Count.Globally()
            | "Shards" >> beam.Map(shard_count, self.shards, check.texts_per_shard)
        )
        eval_side = evals | "EvalShard" >> beam.Map(
            lambda e, n: (eval_shard(e[1], n), (e[0], e[1], length_bucket(e[2]))), shards
        )
        train_side = (
            train
            | "ByGroup"
            >> beam.Map(
                lambda t, n: (group_key(t[2], t[1], n), (t[0], t[1], length_bucket(t[2]))),
                cfg.embed_ranges,
            )
            | "GroupTexts" >> beam.GroupByKey()
            | "ToShards" >> beam.FlatMap(_to_every_shard, shards)
        )
        return (
            {"eval": eval_side, "train": train_side}
            | "JoinShards" >> beam.CoGroupByKey()
            | "Probe" >> beam.ParDo(_ProbeFn(check), beam.pvalue.AsList(embedded))
        )
