"""Embedding stage: every unique text encoded once by the teacher, into the cache.

The stage's product is the embedding cache (``kalm_data.embed.cache``): vectors are written there
and never passed down the pipeline; mining reads its task's vectors from the cache by key, after
this stage has ended (its tallies are a side input of mining). So no vector is shuffled, and a
rerun whose texts are all cached reads only the cache files' keys here.

Each length bucket is cut into key ranges, more for costlier texts
(``kalm_data.embed.buckets.ranges_for``), so no group is a large share of the work and every
worker stays busy until the stage ends. Texts are keyed by their group and grouped, so each group
is encoded in a fixed (length, key) order: the same bits on any runner or worker count. Each group
is encoded in chunks; every finished chunk goes to the cache at once, so a killed run loses at
most one chunk of work per worker. The teacher is loaded by the first group with a text missing
from the cache: a rerun whose texts are all cached loads no model. It can run in a child process
of the worker (``teacher_process``, ``kalm_data.embed.teacher_process``; curate's default in one
in-process worker), so the worker never imports torch. With ``release`` (curate sets it on
Beam's local runner, which hands each worker one bundle per stage), a worker drops its teacher
when its bundle ends (a child exits, and everything encoding held goes back to the OS), so the
stages after embedding (mining, writing) run without it. A later bundle loads it again.
Without it (Dask, Dataflow: many small bundles, and on Dask a ``setup``/``teardown`` around
each), the worker thread holds the teacher (``kalm_data.embed.thread_teacher``): loaded once
per thread, not once per bundle.
"""

from __future__ import annotations

import logging
import time

import apache_beam as beam

from kalm_data.beam.counts import tally
from kalm_data.curate.config import CurateConfig
from kalm_data.embed.buckets import encode_order, group_key
from kalm_data.harness.progress import flush, report

log = logging.getLogger(__name__)

CHUNK = 1024  # texts per cache file


class EmbedGroupFn(beam.DoFn):
    """(group, [(key, text), ...]) -> every text's vector in the cache, and one ``Tally`` of
    texts found in the cache, encoded and truncated. The teacher is loaded when first needed
    (in a child process with ``teacher_process``: ``kalm_data.embed.teacher_process``)
    and, with ``release``, dropped at the end of each bundle; without it, kept by the worker
    thread for its later bundles (``kalm_data.embed.thread_teacher``)."""

    def __init__(
        self,
        cfg: CurateConfig,
        teacher: str,
        fingerprint: str,
        progress: str | None = None,
        release: bool = False,
        teacher_process: bool = False,
    ):
        self.progress = progress
        self.release = release
        self.teacher_process = teacher_process
        self.cfg_json = cfg.model_dump_json()
        self.teacher_name = teacher
        self.fingerprint = fingerprint

    def setup(self):
        from kalm_data.embed.cache import EmbeddingCache

        self.cfg = CurateConfig.model_validate_json(self.cfg_json)
        self.cache = EmbeddingCache(self.cfg.cache_dir, self.fingerprint)
        self._teacher = None

    @property
    def teacher(self):
        if self._teacher is None:
            from kalm_data.embed.teacher import Teacher
            from kalm_data.embed.teacher_process import TeacherProcess
            from kalm_data.embed.thread_teacher import teacher_for_thread

            cfg = self.cfg
            kind = TeacherProcess if self.teacher_process else Teacher
            args = (
                self.teacher_name,
                cfg.batch_size,
                cfg.torch_threads,
                cfg.precision,
                cfg.token_budget,
                cfg.cpu_kernels,
            )
            if self.release:
                self._teacher = kind(*args)
            else:
                self._teacher = teacher_for_thread((kind, *args), lambda: kind(*args))
        return self._teacher

    def _drop_teacher(self) -> None:
        teacher, self._teacher = self._teacher, None
        if self.release:
            teacher.close()  # a TeacherProcess's child exits
        # else the thread keeps it for its next bundle (kalm_data.embed.thread_teacher)

    def process(self, item):
        group, pairs = item
        bucket = group.split("/")[0]
        ordered = encode_order(list(pairs))
        cached = self.cache.cached_keys(bucket, [k for k, _ in ordered])
        report(self.progress, "embed", cached=len(cached))
        todo = [(k, t) for k, t in ordered if k not in cached]
        start, truncated_total = time.monotonic(), 0
        for i in range(0, len(todo), CHUNK):
            chunk = todo[i : i + CHUNK]
            keys, texts = [k for k, _ in chunk], [t for _, t in chunk]
            # One tokenisation gives both the vectors and the count of texts cut to max tokens.
            vectors, truncated = self.teacher.encode_counting(texts)
            self.cache.put(bucket, keys, vectors)
            truncated_total += truncated
            report(self.progress, "embed", encoded=len(keys))
            done = i + len(chunk)
            log.info(
                "embed %s: %d/%d texts encoded (%.0f texts/s), %d from cache",
                group,
                done,
                len(todo),
                done / max(time.monotonic() - start, 1e-9),
                len(cached),
            )
        yield tally(
            {
                "texts_from_cache": len(cached),
                "texts_encoded": len(todo),
                "texts_truncated_for_teacher": truncated_total,
            }
        )

    def finish_bundle(self):
        flush(self.progress)
        if self.release and self._teacher is not None:
            import gc

            from kalm_data.harness.memory import release_free_memory

            self._drop_teacher()
            gc.collect()
            release_free_memory()
            log.info("embed: bundle done, teacher released")

    def teardown(self):
        if self._teacher is not None:
            self._drop_teacher()


class _CountPlanned(beam.DoFn):
    """Pass-through that reports how many unique texts the embedding stage will see."""

    def __init__(self, progress: str | None):
        self.progress = progress

    def process(self, element):
        report(self.progress, "embed", planned=1)
        yield element

    def finish_bundle(self):
        flush(self.progress)


class EmbedTexts(beam.PTransform):
    """(key, text) pairs (duplicates allowed) -> every unique text's vector in the embedding
    cache, and a ``Tally`` per group: the collection to wait on before reading the cache.

    The unique texts are counted before any is encoded (a ``Distinct`` ends that step), so the
    progress display can estimate the time left. ``release`` and ``teacher_process``: see
    ``EmbedGroupFn``."""

    def __init__(
        self,
        cfg: CurateConfig,
        teacher: str,
        fingerprint: str,
        progress: str | None = None,
        release: bool = False,
        teacher_process: bool = False,
    ):
        super().__init__()
        self.fn = EmbedGroupFn(cfg, teacher, fingerprint, progress, release, teacher_process)
        self.ranges = cfg.embed_ranges
        self.progress = progress

    def expand(self, keyed_texts):
        return (
            keyed_texts
            | "UniqueTexts" >> beam.Distinct()
            | "CountPlanned" >> beam.ParDo(_CountPlanned(self.progress))
            | "KeyByGroup" >> beam.Map(lambda kt, n: (group_key(kt[1], kt[0], n), kt), self.ranges)
            | "GroupTexts" >> beam.GroupByKey()
            | "Encode" >> beam.ParDo(self.fn)
        )
