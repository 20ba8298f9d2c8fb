"""Mining stage: each task's examples, with their vectors read from the embedding cache, mined
and filtered.

Examples are grouped by task. Vectors do not travel through the pipeline: the embedding stage
writes them to the embedding cache, and ``MineTaskFn`` reads the ones its task needs by key
(``EmbeddingCache.vectors_of``), so no stage shuffles vectors and a worker holds only its own
task's. The embedding stage's tallies are a side input of mining: Beam runs mining only after
the embedding stage has ended, so every vector is in the cache. The shared candidate corpus, if
any, comes in as a side input of (key, text). ``MineTaskFn`` runs the pure ``mine_task`` steps
on each task's group, the filter through the stage shell, and yields each kept row as its own
element the moment it is assembled: no element, and no list in the worker, holds a task's rows
(one did, and it was most of a warm rerun's peak memory). One ``Tally`` per task
(``kalm_data.beam.counts``) carries the filter stage's row counts and the manifest's mining
counters: negatives skipped by the margin and near-duplicate guards, examples short of
negatives, given negatives scoring above the margin (kept, counted), and
``filter_positives_dropped``: failing positives removed from examples that stayed (a row whose
positives all failed is a ``filter`` rejection instead).

A text whose vector is not in the cache fails its task with an error naming the task, the text
and the cache; a rerun resumes from the "pairs" checkpoint.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

import apache_beam as beam

from kalm_data.beam import SplitRejected
from kalm_data.beam.counts import tally
from kalm_data.curate.config import CurateConfig
from kalm_data.embed.buckets import length_bucket
from kalm_data.harness.progress import flush, report
from kalm_data.mining.negatives import DrawStats
from kalm_data.mining.params import MiningParams
from kalm_data.records import RejectedRecord
from kalm_data.text import text_key

log = logging.getLogger(__name__)


def example_texts(example):
    """(key, text) of every text an example needs embedded."""
    for text in (example.query, *example.positives, *example.negatives):
        yield text_key(text), text


@dataclass
class TaskCounts:
    """What mining one task counted: kept rows, rejected rows (records), failing positives
    removed from kept examples, and the negative draw's counters."""

    kept: int = 0
    rejected: int = 0
    positives_dropped: int = 0
    stats: DrawStats = field(default_factory=DrawStats)


def mining_tally(filter_counts: dict, counts: TaskCounts):
    """The ``Tally`` of mined work: the filter stage's row counts (``StageRunner.drain``) and
    the manifest's mining counters from ``counts``."""
    s = counts.stats
    return tally(
        {
            **filter_counts,
            "negatives_skipped_margin": s.skipped_margin,
            "negatives_skipped_near_duplicate": s.skipped_near_duplicate,
            "examples_short_of_negatives": s.short,
            "given_negatives_above_margin": s.given_above_margin,
            "filter_positives_dropped": counts.positives_dropped,
        }
    )


def read_vectors(
    store, cache_dir: str, task: str, buckets: Mapping[str, str], texts: Mapping[str, str]
) -> dict:
    """The vectors of the keys of ``buckets`` (key -> length bucket) from the embedding cache
    ``store`` (in ``cache_dir``); raises naming the task and the first key the cache lacks,
    with its text when ``texts`` has it."""
    found = store.vectors_in(buckets)
    lost = [k for k in buckets if k not in found]
    if lost:
        what = repr(texts[lost[0]][:60]) if lost[0] in texts else f"bucket {buckets[lost[0]]}"
        raise RuntimeError(
            f"mine {task}: {len(lost)} texts have no vector in the embedding cache "
            f"({cache_dir}), e.g. key {lost[0]} ({what}): the "
            "embedding stage did not write it; on a cluster, --cache-dir must be a folder "
            "every worker shares (gs://...). Rerun the same command (finished stages are kept)"
        )
    return found


class MineTaskFn(beam.DoFn):
    """(task, examples) -> (task, row) per kept row, the ``RejectedRecord``s and a ``Tally``. Side
    inputs: ``corpus``, the shared corpus's (key, text); ``embedded``, the embedding stage's
    output, only waited on. ``cache``: (cache dir, teacher fingerprint) to read vectors from."""

    def __init__(self, params: dict, teacher: str, cache: tuple[str, str], progress=None):
        self.params_dict = params  # ``MiningParams.to_dict()``
        self.teacher = teacher
        self.cache = cache
        self.progress = progress

    def setup(self):
        from kalm_data.beam.stage import StageRunner
        from kalm_data.embed.cache import EmbeddingCache
        from kalm_data.stages.filter import RankingConsistency

        self.params = MiningParams.from_dict(self.params_dict)
        self.filter = StageRunner(RankingConsistency(self.params), self.progress)
        self.filter.setup()
        self.store = EmbeddingCache(*self.cache)
        self._corpus: tuple[dict, dict] = ({}, {})  # (key -> text, key -> vector), per worker

    def _mine(self, task: str, examples, vectors, corpus, counts: TaskCounts):
        """``mine_task``, its filter step run through the stage shell (counted): yields each
        kept row as (task, row) as soon as it is assembled, and each ``RejectedRecord``, so no
        list of the task's rows is ever held. ``counts`` is updated in place."""
        from kalm_data.mining.assemble import assemble
        from kalm_data.mining.pool import build_pool
        from kalm_data.mining.rank import rank_task

        pool = build_pool(examples, vectors, corpus)
        for ranked in rank_task(pool, self.params):
            for out in self.filter(ranked):
                if isinstance(out, RejectedRecord):
                    counts.rejected += 1
                    yield out
                else:
                    counts.kept += 1
                    counts.positives_dropped += out.dropped
                    yield task, assemble(out, pool, self.params, self.teacher, counts.stats)

    def process(self, item, corpus, embedded):
        task, examples = item
        examples = list(examples)
        if not examples:
            return
        report(self.progress, "mine")  # the stage's first report: its start, for its timing
        corpus_texts, corpus_vectors = self._corpus_vectors(task, corpus)
        vectors = self._vectors(task, dict(x for e in examples for x in example_texts(e)))
        vectors.update(corpus_vectors)
        counts = TaskCounts()
        yield from self._mine(task, examples, vectors, list(corpus_texts.values()), counts)
        report(self.progress, "mine", tasks=1, kept=counts.kept)
        flush(self.progress)
        log.info(
            "mine %s: %d kept, %d rejected by the %s filter",
            task,
            counts.kept,
            counts.rejected,
            self.params.filter_rule,
        )
        yield mining_tally(self.filter.drain(), counts)

    def _corpus_vectors(self, task: str, corpus) -> tuple[dict, dict]:
        """The corpus's (key -> text, key -> vector), read from the cache once per worker."""
        texts = dict(corpus)
        if texts != self._corpus[0]:
            self._corpus = (texts, self._vectors(task, texts))
        return self._corpus

    def _vectors(self, task: str, texts: dict[str, str]) -> dict:
        buckets = {k: length_bucket(t) for k, t in texts.items()}
        return read_vectors(self.store, self.cache[0], task, buckets, texts)


class MineTasks(beam.PTransform):
    """(examples, corpus (key, text), the embedding stage's output) -> (task, row) per kept row,
    and reports (rejections and tallies). Vectors are read from ``cfg.cache_dir`` under
    ``fingerprint``, the teacher's."""

    def __init__(
        self, cfg: CurateConfig, teacher: str, fingerprint: str, progress: str | None = None
    ):
        super().__init__()
        cache = (cfg.cache_dir, fingerprint)
        self.fn = MineTaskFn(MiningParams.from_config(cfg).to_dict(), teacher, cache, progress)

    def expand(self, inputs):
        examples, corpus, embedded = inputs
        return (
            examples
            | "KeyByTask" >> beam.Map(lambda e: (e.task, e))
            | "GroupTask" >> beam.GroupByKey()
            | "Mine"
            >> beam.ParDo(
                self.fn,
                corpus=beam.pvalue.AsList(corpus),
                embedded=beam.pvalue.AsList(embedded),
            )
            | "SplitMined" >> SplitRejected()
        )
