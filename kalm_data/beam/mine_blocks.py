"""Mining stage across workers (``--mine-blocks N``): no worker holds a task's pool or all its
examples.

Each task's pool (its examples' positives and given negatives, and the shared corpus) is cut
into ``N`` key-range shards and its examples into ``N`` blocks (``kalm_data.mining.blocks``).
Each (task, block, shard) meets on one worker with the block's examples, the shard's texts and
the queries of the block numbered like the shard, reads their vectors from the embedding cache
and yields the shard's ``Findings`` for the block. Each (task, block) then meets its examples
and its ``N`` findings on one worker, which merges them, runs the filter through the stage
shell, draws negatives and assembles rows; the drawn negatives' texts (the merge holds only
their keys) are joined back in by key. The output is that of ``MineTasks`` (``flat`` index:
identical rows, rejections and counters; tests/test_mine_blocks.py), a ``Tally`` per block.

Memory per worker: one shard's texts and vectors, two blocks' queries and positives, one
block's findings (``depth`` candidates per example per shard). The price is shuffling each
block's examples ``N`` times and each shard's texts ``N`` times.
"""

from __future__ import annotations

import apache_beam as beam
import numpy as np

from kalm_data.beam import SplitRejected
from kalm_data.beam.mine import TaskCounts, mining_tally, read_vectors
from kalm_data.curate.config import CurateConfig
from kalm_data.embed.buckets import length_bucket
from kalm_data.harness.progress import flush, report
from kalm_data.mining.blocks import Probe, block_of, merge_block, shard_findings, shard_of
from kalm_data.mining.params import MiningParams
from kalm_data.mining.rank import neighbours
from kalm_data.records import RejectedRecord
from kalm_data.text import text_key


class _CacheReader(beam.DoFn):
    """A DoFn that reads vectors from the embedding cache (``cache``: (dir, fingerprint))."""

    def __init__(self, params: dict, cache: tuple[str, str]):
        self.params_dict = params
        self.cache = cache

    def setup(self):
        from kalm_data.embed.cache import EmbeddingCache

        self.params = MiningParams.from_dict(self.params_dict)
        self.store = EmbeddingCache(*self.cache)

    def vectors(self, task: str, buckets: dict[str, str], texts: dict[str, str]) -> dict:
        """The vectors of the keys of ``buckets`` (key -> length bucket)."""
        return read_vectors(self.store, self.cache[0], task, buckets, texts)


class FindingsFn(_CacheReader):
    """((task, block, shard), parts) -> ((task, block), (shard, ``Findings``)); parts are
    ("mine", [(``Probe``, {key: bucket})]), ("pool", [(key, bucket)] sorted) and ("theirs",
    [(id, query key, bucket)] in id order): keys and buckets only, the texts stay behind."""

    def process(self, item, embedded):
        (task, block, shard), parts = item
        parts = dict(parts)
        if "mine" not in parts:
            return  # a block with no examples
        probes = [probe for probe, _ in parts["mine"]]
        entries, theirs = parts.get("pool", []), parts.get("theirs", [])
        buckets = {k: b for _, kb in parts["mine"] for k, b in kb.items()}
        buckets.update(entries)
        buckets.update((k, b) for _, k, b in theirs)
        vectors = self.vectors(task, buckets, {})
        keys = [k for k, _ in entries]
        dim = len(next(iter(vectors.values())))
        shard_vectors = np.stack([vectors[k] for k in keys]) if keys else np.zeros((0, dim))
        their_queries = np.stack([vectors[k] for _, k, _ in theirs]) if theirs else None
        their = ([i for i, _, _ in theirs], their_queries)
        spec = self.params.index_spec()
        depth = neighbours(probes, self.params)
        args = (probes, keys, shard_vectors, their, vectors, self.params, depth, spec)
        yield (task, block), (shard, shard_findings(*args))


class MergeBlockFn(_CacheReader):
    """((task, block), {"examples": [examples], "findings": [(shard, Findings)]}) -> per kept
    row ((task, id), (row, positions of its negatives still holding a key)), the
    ``RejectedRecord``s and one ``Tally``."""

    def __init__(self, params: dict, teacher: str, cache: tuple[str, str], progress=None):
        super().__init__(params, cache)
        self.teacher = teacher
        self.progress = progress

    def setup(self):
        from kalm_data.beam.stage import StageRunner
        from kalm_data.stages.filter import RankingConsistency

        super().setup()
        self.filter = StageRunner(RankingConsistency(self.params), self.progress)
        self.filter.setup()

    def process(self, item, embedded):
        from kalm_data.mining.assemble import assemble

        (task, _), grouped = item
        examples = next(iter(grouped["examples"]), None)  # one sorted list, if any
        if examples is None:
            return
        findings = (f for _, f in grouped["findings"])  # folded as they come: any order
        report(self.progress, "mine")
        texts = {text_key(t): t for e in examples for t in (e.query, *e.positives, *e.negatives)}
        vectors = self.vectors(task, {k: length_bucket(t) for k, t in texts.items()}, texts)
        merged = merge_block(
            examples, findings, vectors, self.params, neighbours(examples, self.params)
        )
        counts = TaskCounts()
        for ranked in merged.ranked:
            for out in self.filter(ranked):
                if isinstance(out, RejectedRecord):
                    counts.rejected += 1
                    yield out
                    continue
                counts.kept += 1
                counts.positives_dropped += out.dropped
                similarity = merged.similarity[out.example.id]
                row = assemble(
                    out, merged.pool, self.params, self.teacher, counts.stats, similarity
                )
                yield (task, row["id"]), (row, merged.pending(row))
        report(self.progress, "mine", blocks=1, kept=counts.kept)
        flush(self.progress)
        yield mining_tally(self.filter.drain(), counts)


def _pool_texts(example):
    """((task, key), text) of each text of an example's pool: its positives and negatives."""
    for text in (*example.positives, *example.negatives):
        yield (example.task, text_key(text)), text


def _work(item, n: int, kind: str):
    """Fan a shard's (key, bucket) entries or a block's examples (as ``Probe``s and buckets)
    out to the (task, block, shard) pieces."""
    (task, index), values = item
    if kind == "pool":
        entries = sorted(dict(values).items())
        for block in range(n):
            yield (task, block, index), ("pool", entries)
        return
    examples = sorted(values, key=lambda e: e.id)
    mine = [
        (Probe.of(e), {text_key(t): length_bucket(t) for t in (e.query, *e.positives)})
        for e in examples
    ]
    for shard in range(n):
        yield (task, index, shard), ("mine", mine)
    theirs = [(e.id, text_key(e.query), length_bucket(e.query)) for e in examples]
    for block in range(n):
        yield (task, block, index), ("theirs", theirs)


def _requests(item):
    """(key, ((task, id), position)) for each negative of a row still holding a key."""
    row_key, (row, pending) = item
    for i in pending:
        yield row["negatives"][i], (row_key, i)


def _fills(item):
    """((task, id), (position, text)) for each request of a key."""
    _, grouped = item
    if grouped["need"]:
        text = next(iter(grouped["text"]))  # a runner may hand a lazy iterable
        for row_key, i in grouped["need"]:
            yield row_key, (i, text)


def _resolved(item):
    """(task, row) with its pending negatives replaced by their texts."""
    (task, _), grouped = item
    ((row, _),) = grouped["row"]
    negatives = list(row["negatives"])
    for i, text in grouped["fill"]:
        negatives[i] = text
    return task, {**row, "negatives": negatives}


class MineBlocks(beam.PTransform):
    """``MineTasks`` (same inputs, same outputs) with each task cut into ``cfg.mine_blocks``
    blocks and pool shards (see module docstring)."""

    def __init__(
        self, cfg: CurateConfig, teacher: str, fingerprint: str, progress: str | None = None
    ):
        super().__init__()
        params = MiningParams.from_config(cfg).to_dict()
        cache = (cfg.cache_dir, fingerprint)
        self.n = cfg.mine_blocks
        self.findings = FindingsFn(params, cache)
        self.merge = MergeBlockFn(params, teacher, cache, progress)

    def expand(self, inputs):
        examples, corpus, embedded = inputs
        n, waits = self.n, beam.pvalue.AsList(embedded)
        tasks = examples | "Tasks" >> beam.Map(lambda e: e.task) | "OneEach" >> beam.Distinct()
        pool_texts = (
            examples | "PoolTexts" >> beam.FlatMap(_pool_texts),
            corpus
            | "CorpusPerTask"
            >> beam.FlatMap(
                lambda kt, tasks: (((t, kt[0]), kt[1]) for t in tasks),
                tasks=beam.pvalue.AsList(tasks),
            ),
        ) | "AllPoolTexts" >> beam.Flatten()
        shards = (
            pool_texts
            | "KeyByShard"
            >> beam.Map(lambda x: ((x[0][0], shard_of(x[0][1], n)), (x[0][1], length_bucket(x[1]))))
            | "GroupShard" >> beam.GroupByKey()
        )
        blocks = (
            examples
            | "KeyByBlock" >> beam.Map(lambda e: ((e.task, block_of(e.id, n)), e))
            | "GroupBlock" >> beam.GroupByKey()
        )
        findings = (
            (
                shards | "ShardWork" >> beam.FlatMap(_work, n, "pool"),
                blocks | "BlockWork" >> beam.FlatMap(_work, n, "examples"),
            )
            | "AllWork" >> beam.Flatten()
            | "GroupWork" >> beam.GroupByKey()
            | "Findings" >> beam.ParDo(self.findings, embedded=waits)
        )
        sorted_blocks = blocks | "SortBlock" >> beam.Map(
            lambda kv: (kv[0], sorted(kv[1], key=lambda e: e.id))
        )
        rows, reports = (
            {"examples": sorted_blocks, "findings": findings}
            | "JoinBlock" >> beam.CoGroupByKey()
            | "Merge" >> beam.ParDo(self.merge, embedded=waits)
            | "SplitMerged" >> SplitRejected()
        )
        texts = pool_texts | "ByKey" >> beam.Map(lambda x: (x[0][1], x[1]))
        fills = (
            {"text": texts, "need": rows | "Requests" >> beam.FlatMap(_requests)}
            | "JoinTexts" >> beam.CoGroupByKey()
            | "Fills" >> beam.FlatMap(_fills)
        )
        kept = (
            {"row": rows, "fill": fills}
            | "JoinFills" >> beam.CoGroupByKey()
            | "Resolved" >> beam.Map(_resolved)
        )
        return kept, reports
