"""Each Beam stage on a real TestPipeline (DirectRunner), with the real teacher where needed."""

import apache_beam as beam
import numpy as np
import pyarrow.parquet as pq
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from kalm_data import reasons
from kalm_data.beam import only_rejected
from kalm_data.beam.embed import EmbedTexts
from kalm_data.beam.mine import MineTasks, example_texts
from kalm_data.beam.write import WriteRejected, WriteTaskShards
from kalm_data.curate.config import CurateConfig
from kalm_data.embed.cache import EmbeddingCache
from kalm_data.embed.teacher import default_teacher, teacher_fingerprint
from kalm_data.records import InputPair, RawRow, RejectedRecord
from kalm_data.stages.dedup import DedupIds, MergeByQuery
from kalm_data.stages.read import ReadErrors
from kalm_data.stages.validate import Validate
from kalm_data.text import text_key


def raw(n, payload=None, error=None):
    return RawRow(
        source_file="f.jsonl",
        source_row=n,
        task="t",
        payload=payload,
        error=error,
        raw="x" if payload is None else None,
    )


def pair(id, q, p, n):
    return InputPair(id=id, task="t", query=q, positives=[p], source_file="f", source_row=n)


class ApplyStages(beam.PTransform):
    """records -> (kept, rejected) through ``stages``, as ``curate.build`` chains them."""

    def __init__(self, stages):
        super().__init__()
        self.stages = stages

    def expand(self, records):
        from kalm_data.curate.pipeline import apply_stages

        kept, rejected = apply_stages(records, self.stages, None)
        return kept, only_rejected(tuple(rejected) | beam.Flatten())


def reason_of(r):
    return (r.source_row, r.reason)


def test_validate_stage_splits_rows():
    rows = [
        raw(1, {"query": "a", "positive": "b"}),
        raw(2, {"query": ""}),
        raw(3, error="malformed_json: bad"),
    ]
    with TestPipeline() as p:
        pairs, rejected = p | beam.Create(rows) | ApplyStages([ReadErrors(), Validate({}, 1000)])
        assert_that(pairs | beam.Map(lambda x: x.query), equal_to(["a"]), label="pairs")
        assert_that(
            rejected | beam.Map(reason_of),
            equal_to([(2, reasons.MISSING_FIELD), (3, "malformed_json")]),
            label="rej",
        )


def test_dedup_stage_merges_and_rejects():
    pairs = [
        pair("a", "q", "x", 1),
        pair("b", "q", "y", 2),
        pair("a", "q", "x", 3),
        pair("c", "q", "x", 4),
        pair("d", "r", "z", 5),
    ]
    with TestPipeline() as p:
        examples, rejected = p | beam.Create(pairs) | ApplyStages([DedupIds(), MergeByQuery()])
        assert_that(
            examples | beam.Map(lambda e: (e.query, tuple(e.positives))),
            equal_to([("q", ("x", "y")), ("r", ("z",))]),
            label="examples",
        )
        assert_that(
            rejected | beam.Map(reason_of),
            equal_to([(3, reasons.DUPLICATE), (4, reasons.DUPLICATE)]),
            label="rej",
        )


def _close(expected):
    def check(actual):
        got = dict(actual)
        assert set(got) == set(expected)
        for k, v in expected.items():
            np.testing.assert_allclose(got[k], v, atol=1e-5)

    return check


def test_embed_stage_encodes_each_text_once_into_the_cache(teacher, tmp_path):
    texts = ["a short one", "another text here", "a short one", "x " * 300]
    expected = {text_key(t): v for t, v in zip(texts, teacher.encode(texts), strict=True)}
    teacher_name = default_teacher()
    fp = teacher_fingerprint(teacher_name)
    with TestPipeline() as p:
        out = (
            p
            | beam.Create([(text_key(t), t) for t in texts])
            | EmbedTexts(CurateConfig(cache_dir=str(tmp_path), embed_ranges=2), teacher_name, fp)
        )
        summed = out | beam.FlatMap(lambda t: t.counts) | beam.CombinePerKey(sum)
        encoded = [("texts_encoded", 3), ("texts_truncated_for_teacher", 1)]
        assert_that(summed, equal_to(encoded), label="tallies")
    found = EmbeddingCache(str(tmp_path), fp).vectors_of({text_key(t): t for t in texts})
    _close(expected)(found.items())


def test_a_releasing_embed_worker_drops_its_teacher_after_each_bundle(teacher, tmp_path):
    """With ``release`` (Beam's local runner), the teacher is gone once a bundle ends, and a
    later bundle loads it again and writes the same vectors; without it, the teacher stays."""
    from kalm_data.beam.embed import EmbedGroupFn
    from kalm_data.curate.pipeline import on_local_runner
    from kalm_data.embed.buckets import group_key

    teacher_name = default_teacher()
    fp = teacher_fingerprint(teacher_name)
    cfg = CurateConfig(cache_dir=str(tmp_path), embed_ranges=2)
    groups = [["first text", "second text"], ["third text"]]
    for release in (True, False):
        fn = EmbedGroupFn(
            cfg.model_copy(update={"cache_dir": str(tmp_path / str(release))}),
            teacher_name,
            fp,
            release=release,
        )
        fn.setup()
        for texts in groups:
            for t in texts:  # each text in its own group, named as ``EmbedTexts`` names it
                list(fn.process((group_key(t, text_key(t), 2), [(text_key(t), t)])))
            assert fn._teacher is not None
            fn.finish_bundle()
            assert (fn._teacher is None) == release
    expected = {text_key(t): v for g in groups for t, v in zip(g, teacher.encode(g), strict=True)}
    for release in (True, False):
        found = EmbeddingCache(str(tmp_path / str(release)), fp).vectors_of(
            {text_key(t): t for g in groups for t in g}
        )
        _close(expected)(found.items())
    with TestPipeline() as p:
        assert on_local_runner(p)
    assert not on_local_runner(
        beam.Pipeline(runner="apache_beam.runners.dask.dask_runner.DaskRunner")
    )


def test_without_release_each_worker_thread_loads_the_teacher_once_for_all_its_bundles(tmp_path):
    """Beam's Dask runner unpickles the ``DoFn`` and runs setup, the bundle and teardown for
    every partition: the thread's teacher carries over to the next bundle's copy of the
    ``DoFn`` (not loaded again), another thread loads its own, and every bundle writes the
    teacher's vectors."""
    import pickle
    import threading

    from kalm_data.beam.embed import EmbedGroupFn
    from kalm_data.embed.buckets import group_key
    from kalm_data.embed.thread_teacher import release_thread_teacher

    teacher_name = default_teacher()
    fp = teacher_fingerprint(teacher_name)
    cfg = CurateConfig(cache_dir=str(tmp_path), embed_ranges=2)
    shipped = pickle.dumps(EmbedGroupFn(cfg, teacher_name, fp, release=False))

    def bundle(texts: list[str]):
        fn = pickle.loads(shipped)  # a fresh copy per partition, as Dask runs it
        fn.setup()
        for t in texts:
            list(fn.process((group_key(t, text_key(t), 2), [(text_key(t), t)])))
        used = fn._teacher
        fn.finish_bundle()
        fn.teardown()
        return used

    try:
        first, second = bundle(["first text"]), bundle(["second text", "third text"])
        assert first is not None and second is first
        elsewhere = []
        worker = threading.Thread(target=lambda: elsewhere.append(bundle(["fourth text"])))
        worker.start()
        worker.join()
        assert elsewhere[0] is not None and elsewhere[0] is not first
    finally:
        release_thread_teacher()
    texts = ["first text", "second text", "third text", "fourth text"]
    expected = {text_key(t): v for t, v in zip(texts, first.encode(texts), strict=True)}
    found = EmbeddingCache(str(tmp_path), fp).vectors_of({text_key(t): t for t in texts})
    _close(expected)(found.items())


def test_a_thread_holds_one_teacher_and_closes_it_for_another():
    from kalm_data.embed.thread_teacher import release_thread_teacher, teacher_for_thread

    class Closing:
        closed = False

        def close(self):
            self.closed = True

    made = []

    def make():
        made.append(Closing())
        return made[-1]

    a = teacher_for_thread("a", make)
    assert teacher_for_thread("a", make) is a and len(made) == 1
    b = teacher_for_thread("b", make)
    assert a.closed and not b.closed and len(made) == 2
    release_thread_teacher()
    assert b.closed
    assert teacher_for_thread("b", make) is not b and len(made) == 3
    release_thread_teacher()


def test_the_teacher_runs_in_a_child_process_by_default_only_in_one_in_process_worker():
    from apache_beam.options.pipeline_options import PipelineOptions

    from kalm_data.curate.pipeline import in_process_worker
    from kalm_data.harness.run import LOCAL_RUNNER

    def pipeline(*args: str, runner: str = LOCAL_RUNNER) -> beam.Pipeline:
        return beam.Pipeline(runner=runner, options=PipelineOptions(list(args)))

    assert in_process_worker(pipeline("--direct_num_workers=1", "--direct_running_mode=in_memory"))
    two = ("--direct_num_workers=2", "--direct_running_mode=multi_processing")
    assert not in_process_worker(pipeline(*two))
    assert not in_process_worker(pipeline("--direct_running_mode=multi_threading"))
    assert not in_process_worker(pipeline(runner="apache_beam.runners.dask.dask_runner.DaskRunner"))


def test_mine_stage_reads_vectors_from_the_cache_and_writes(fill_cache, tmp_path):
    from kalm_data.dedup import merge_by_query

    from realdata import load_pairs

    rows = load_pairs(120, source="disfl")
    examples = [
        merge_by_query([pair(r["id"], r["query"], r["positive"], i)])[0] for i, r in enumerate(rows)
    ]
    texts = sorted({t for e in examples for _, t in example_texts(e)})
    cache, fp = fill_cache(texts)
    cfg = CurateConfig(window_start=5, window_end=20, num_negatives=3, filter_k=10, cache_dir=cache)
    out = tmp_path / "out"
    with TestPipeline() as p:
        kept, rejected = (
            p | "E" >> beam.Create(examples),
            p | "C" >> beam.Create([]),
            p | "Done" >> beam.Create([]),
        ) | MineTasks(cfg, "minilm", fp)
        _ = kept | WriteTaskShards(str(out), 50)
        _ = rejected | WriteRejected(str(out), 50)
    table = pq.read_table(out / "data" / "t")
    rejected = (
        pq.read_table(out / "rejected" / "filter").num_rows if (out / "rejected").exists() else 0
    )
    assert table.num_rows + rejected == len(examples)
    assert table.num_rows >= 100
    parts = sorted((out / "data" / "t").glob("part-*.parquet"))
    assert len(parts) == -(-table.num_rows // 50)  # dealt by a hash of the id: none empty here
    for part in parts:  # each part is its own group, its rows sorted by id
        ids = pq.read_table(part).column("id").to_pylist()
        assert 0 < len(ids) < table.num_rows and ids == sorted(ids)
    assert all(len(n) == 3 for n in table.column("negatives").to_pylist())


def test_rejected_writer_schema(tmp_path):
    recs = [
        RejectedRecord(
            task="t", stage=s, reason="r", detail="d", source_file="f", source_row=i, record="{}"
        )
        for i, s in enumerate(["read", "dedup"])
    ]
    with TestPipeline() as p:
        _ = p | beam.Create(recs) | WriteRejected(str(tmp_path), 10)
    for stage in ("read", "dedup"):
        t = pq.read_table(tmp_path / "rejected" / stage)
        assert t.column("stage").to_pylist() == [stage]
        assert t.schema.field("source_row").type == "int64"
