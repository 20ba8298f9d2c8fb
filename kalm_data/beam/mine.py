"""Mining stage: bring each task's examples and vectors together, then mine and filter.

Joins: (text key -> tasks using it) with (text key -> vector) gives (task, (key, vector)); that
and (task, example) are co-grouped by task. The shared candidate corpus, if any, comes in as a
side input. ``MineTaskFn`` runs the pure ``mine_task`` steps on each task's group, the filter
through the stage shell. One ``Tally`` per task (``kalm_data.beam.counts``) carries the filter
stage's row counts and the manifest's mining counters: negatives skipped by the margin and
near-duplicate guards, examples short of negatives, given negatives scoring above the margin
(kept, counted), and ``filter_positives_dropped``: failing positives removed from examples that
stayed (a row whose positives all failed is a ``filter`` rejection instead).

Every vector the embedding stage emits is in the embedding cache first. A text whose vector did
not arrive with its task (seen on Beam's local multi-process runner under heavy load) is read
from that cache, with a warning; when the cache lacks it too, the task fails with an error
naming the task, the text and the cache, and a rerun resumes from the "pairs" checkpoint.
"""

from __future__ import annotations

import logging

import apache_beam as beam

from kalm_data.beam import SplitRejected
from kalm_data.beam.counts import tally
from kalm_data.curate.config import CurateConfig
from kalm_data.harness.progress import flush, report
from kalm_data.mining.params import MiningParams
from kalm_data.records import RejectedRecord
from kalm_data.text import text_key

log = logging.getLogger(__name__)


def example_texts(example):
    """(key, text) of every text an example needs embedded."""
    for text in (example.query, *example.positives, *example.negatives):
        yield text_key(text), text


def _fan_out(item):
    key, grouped = item
    vectors = list(grouped["vector"])
    if not vectors:
        return
    for task in sorted(set(grouped["task"])):
        yield task, (key, vectors[0])


class MineTaskFn(beam.DoFn):
    """(task, {"examples", "vectors"}) -> (task, kept rows), the ``RejectedRecord``s and a
    ``Tally``."""

    def __init__(
        self,
        params: dict,
        teacher: str,
        progress: str | None = None,
        cache: tuple[str, str] | None = None,
    ):
        self.params_dict = params  # ``MiningParams.to_dict()``
        self.teacher = teacher
        self.progress = progress
        self.cache = cache  # (cache dir, teacher fingerprint) of the embedding stage

    def setup(self):
        from kalm_data.beam.stage import StageRunner
        from kalm_data.stages.filter import RankingConsistency

        self.params = MiningParams.from_dict(self.params_dict)
        self.filter = StageRunner(RankingConsistency(self.params), self.progress)
        self.filter.setup()

    def _mine(self, examples, vectors, corpus):
        """``mine_task`` with its filter step run through the stage shell (counted)."""
        from kalm_data.mining.assemble import assemble
        from kalm_data.mining.mine_task import TaskResult
        from kalm_data.mining.negatives import DrawStats
        from kalm_data.mining.pool import build_pool
        from kalm_data.mining.rank import rank_task

        pool = build_pool(examples, vectors, corpus)
        result = TaskResult([], [], DrawStats())
        for ranked in rank_task(pool, self.params):
            for out in self.filter(ranked):
                if isinstance(out, RejectedRecord):
                    result.rejected.append(out)
                else:
                    result.positives_dropped += out.dropped
                    kept = assemble(out, pool, self.params, self.teacher, result.stats)
                    result.kept.append(kept)
        return result

    def process(self, item, corpus):
        task, grouped = item
        examples = list(grouped["examples"])
        if not examples:
            return
        report(self.progress, "mine")  # the stage's first report: its start, for its timing
        vectors = dict(grouped["vectors"])
        vectors.update((k, v) for k, _, v in corpus)
        missing = {k: t for e in examples for k, t in example_texts(e) if k not in vectors}
        if missing:
            vectors.update(self._from_cache(task, missing))
        result = self._mine(examples, vectors, [t for _, t, _ in corpus])
        report(self.progress, "mine", tasks=1, kept=len(result.kept))
        flush(self.progress)
        s = result.stats
        counts = {
            **self.filter.drain(),
            "negatives_skipped_margin": s.skipped_margin,
            "negatives_skipped_near_duplicate": s.skipped_near_duplicate,
            "examples_short_of_negatives": s.short,
            "given_negatives_above_margin": s.given_above_margin,
            "filter_positives_dropped": result.positives_dropped,
        }
        log.info(
            "mine %s: %d kept, %d rejected by the %s filter",
            task,
            len(result.kept),
            len(result.rejected),
            self.params.filter_rule,
        )
        yield task, result.kept
        yield from result.rejected
        yield tally(counts)

    def _from_cache(self, task: str, missing: dict[str, str]) -> dict:
        """The vectors of ``missing`` (key -> text) from the embedding cache; raises naming the
        first text when the cache lacks any."""
        from kalm_data.embed.buckets import length_bucket
        from kalm_data.embed.cache import EmbeddingCache

        found: dict = {}
        if self.cache is not None:
            cache, by_bucket = EmbeddingCache(*self.cache), {}
            for k, t in missing.items():
                by_bucket.setdefault(length_bucket(t), []).append(k)
            for bucket, keys in sorted(by_bucket.items()):
                found.update(cache.get(bucket, keys))
        lost = [k for k in missing if k not in found]
        if lost:
            raise RuntimeError(
                f"mine {task}: {len(lost)} texts have no vector, e.g. key {lost[0]} "
                f"({missing[lost[0]][:60]!r}): the embedding stage's output did not arrive and "
                f"the embedding cache ({self.cache[0] if self.cache else 'none'}) lacks it; "
                "rerun the same command (finished stages are kept)"
            )
        log.warning(
            "mine %s: %d vectors missing from the embedding stage's output were read from the "
            "embedding cache",
            task,
            len(found),
        )
        return found


class MineTasks(beam.PTransform):
    """Examples + (key, vector) + corpus [(key, text, vector)] -> (task, rows) and reports
    (rejections and tallies). ``fingerprint``: the teacher's, to read a vector that did not
    arrive from ``cfg.cache_dir``."""

    def __init__(
        self,
        cfg: CurateConfig,
        teacher: str,
        progress: str | None = None,
        fingerprint: str | None = None,
    ):
        super().__init__()
        cache = (cfg.cache_dir, fingerprint) if fingerprint else None
        self.fn = MineTaskFn(MiningParams.from_config(cfg).to_dict(), teacher, progress, cache)

    def expand(self, inputs):
        examples, vectors, corpus = inputs
        text_tasks = examples | "TextTasks" >> beam.FlatMap(
            lambda e: ((k, e.task) for k, _ in example_texts(e))
        )
        task_vectors = (
            {"vector": vectors, "task": text_tasks}
            | "JoinVectors" >> beam.CoGroupByKey()
            | "ByTask" >> beam.FlatMap(_fan_out)
        )
        by_task = {
            "examples": examples | "KeyByTask" >> beam.Map(lambda e: (e.task, e)),
            "vectors": task_vectors,
        } | "GroupTask" >> beam.CoGroupByKey()
        return (
            by_task
            | "Mine" >> beam.ParDo(self.fn, corpus=beam.pvalue.AsList(corpus))
            | "SplitMined" >> SplitRejected()
        )
