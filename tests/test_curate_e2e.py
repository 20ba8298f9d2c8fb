"""``kalm-data curate`` end to end on real data, real Beam runners and the real teacher."""

from __future__ import annotations

import gzip
import json
import re
import subprocess
import sys

import numpy as np
import pyarrow.parquet as pq
import pytest

from kalm_data import reasons
from kalm_data.cli import main


def read_data(out) -> list[dict]:
    rows = []
    for part in sorted((out / "data").glob("*/part-*.parquet")):
        rows.extend(pq.read_table(part).to_pylist())
    return rows


def curate(src, out, cache, *extra: str) -> int:
    """``kalm-data curate`` on ``src`` into ``out`` with a private cache."""
    return main(
        ["curate", "--input", str(src), "--output", str(out), "--cache-dir", str(cache), *extra]
    )


def manifest(out) -> dict:
    return json.loads((out / "manifest.json").read_text())


def test_help_is_instant_and_import_light():
    code = (
        "import sys; from kalm_data.cli import _build_parser; _build_parser(); "
        "heavy = {'torch', 'apache_beam', 'faiss', 'transformers', 'sentence_transformers'}; "
        "print(sorted(heavy & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    assert (
        "curate"
        in subprocess.run(
            [sys.executable, "-m", "kalm_data.cli", "--help"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory):
    """The README's first command: curate the shipped sample, twice (the second from cache,
    its stage checkpoints off so that it embeds and mines again)."""
    base = tmp_path_factory.mktemp("sample")
    out, cache = base / "out", base / "cache"
    assert main(["curate", "--output", str(out), "--cache-dir", str(cache)]) == 0
    first = (manifest(out), read_data(out), _newest_log(out))
    again = ["--overwrite", "--no-checkpoints"]
    assert main(["curate", "--output", str(out), "--cache-dir", str(cache), *again]) == 0
    return out, first, (manifest(out), read_data(out), _newest_log(out))


def _newest_log(out) -> str:
    return sorted((out / "logs").glob("curate-*.log"))[-1].read_text()


def test_sample_run_accounts_for_every_row(sample_run):
    out, (m, rows, _), _ = sample_run
    c = m["counts"]
    assert c["rows_read"] == 1000 and c["balanced"]
    assert c["rows_kept"] + c["rows_rejected"] == 1000
    assert set(m["tasks"]) == {"disflqa", "medquad"}
    assert c["rows_kept"] > 950
    assert len(rows) == c["examples_kept"]
    assert m["mining"]["texts_encoded"] > 1900 and m["mining"]["texts_truncated_for_teacher"] > 0
    assert {i["task"] for i in m["inputs"]} == {"disflqa", "medquad"}
    assert all(len(r["negatives"]) <= 7 for r in rows)
    assert sum(len(r["negatives"]) == 7 for r in rows) > 0.95 * len(rows)
    # no lock, staging or journal left behind: only the finished stages' checkpoints
    assert [p.name for p in (out / ".kalm-data").iterdir()] == ["checkpoints"]


def test_rerun_encodes_nothing_and_gives_the_same_rows(sample_run):
    _, (m1, rows1, log1), (m2, rows2, log2) = sample_run
    assert m2["mining"].get("texts_encoded", 0) == 0
    # Every text came from the cache: no worker loaded the teacher (the teacher's log line,
    # in the formats of a worker process and of a worker thread, or its child's start).
    loaded = re.compile(
        r"kalm_data\.embed\.teacher: ?teacher \S+ on cpu|teacher process \d+ started"
    )
    assert loaded.search(log1) and not loaded.search(log2)
    assert m2["mining"]["texts_from_cache"] == m1["mining"]["texts_encoded"]
    assert rows1 == rows2


def test_mining_in_blocks_across_workers_gives_the_same_rows_rejections_and_counts(
    sample_run, tmp_path
):
    """``--mine-blocks 3`` (each task as 3 blocks x 3 pool shards, on 2 worker processes)
    against the one-worker-per-task run of the same sample, from its embedding cache."""
    out, (m, rows, _), _ = sample_run
    blocks = tmp_path / "blocks"
    cache = ["--cache-dir", str(out.parent / "cache"), "--no-checkpoints"]
    workers = ["--direct_num_workers", "2", "--direct_running_mode", "multi_processing"]
    assert main(["curate", "--output", str(blocks), *cache, "--mine-blocks", "3", *workers]) == 0
    got = manifest(blocks)
    assert read_data(blocks) == rows
    assert got["counts"] == m["counts"]
    assert {k: v for k, v in got["mining"].items() if "text" not in k} == {
        k: v for k, v in m["mining"].items() if "text" not in k
    }
    assert _rejected(out, "filter")  # the filter bit
    assert _rejected(blocks, "filter") == _rejected(out, "filter")


def _rejected(out, stage: str) -> list[dict]:
    return [
        r
        for part in sorted((out / "rejected" / stage).glob("part-*.parquet"))
        for r in pq.read_table(part).to_pylist()
    ]


def test_shards_load_with_datasets(sample_run):
    from datasets import load_dataset

    out = sample_run[0]
    ds = load_dataset(
        "parquet", data_files=str(out / "data" / "*" / "part-*.parquet"), split="train"
    )
    assert ds.num_rows == sample_run[1][0]["counts"]["examples_kept"]
    assert ds.features["negative_scores"].feature.dtype == "float32"


BAD_LINES = [
    b'{"query": "what is a ctenophore", "positive": "a comb jelly"}',
    b'{"query": "broken json", "positive": ',
    b'{"query": "bad \xff\xfe utf8", "positive": "x"}',
    b'["a", "list"]',
    b'"a bare string"',
    b"null",
    b'{"positive": "no query"}',
    b'{"query": null, "positive": "null query"}',
    b'{"query": "   ", "positive": "blank query"}',
    b'{"query": "empty list", "positive": []}',
    b'{"query": 42, "positive": "number"}',
    b'{"query": "huge", "positive": "' + b"word " * 30_000 + b'"}',
    b'{"id": "dup", "query": "first use of id", "positive": "p1"}',
    b'{"id": "dup", "query": "second use of id", "positive": "p2"}',
    b'{"query": "what is a ctenophore", "positive": "a comb jelly"}',
    b'{"query": "same", "positive": "same"}',
    b"",
    b'{"query": "how do bees fly", "positive": "by flapping their wings fast"}',
]


def test_malformed_rows_are_all_accounted_for(tmp_path):
    path = tmp_path / "messy.jsonl.gz"
    with gzip.open(path, "wb") as f:
        f.write(b"\n".join(BAD_LINES) + b"\n")
    out = tmp_path / "out"
    code = main(
        [
            "curate",
            "--input",
            str(path),
            "--output",
            str(out),
            "--cache-dir",
            str(tmp_path / "cache"),
            "--max-chars",
            "100000",
            "--filter-rule",
            "none",
        ]
    )
    assert code == 0
    m = manifest(out)
    assert m["counts"]["rows_read"] == len([b for b in BAD_LINES if b.strip()])
    assert m["counts"]["balanced"]
    rejected = []
    for part in (out / "rejected").glob("*/part-*.parquet"):
        rejected.extend(pq.read_table(part).to_pylist())
    by_line = {r["source_row"]: r for r in rejected}
    expected = {
        2: reasons.MALFORMED_JSON,
        3: reasons.INVALID_UTF8,
        4: reasons.NOT_AN_OBJECT,
        5: reasons.NOT_AN_OBJECT,
        6: reasons.NOT_AN_OBJECT,
        7: reasons.MISSING_FIELD,
        8: reasons.NULL_FIELD,
        9: reasons.BLANK_FIELD,
        10: reasons.BLANK_FIELD,
        11: reasons.WRONG_TYPE,
        12: reasons.TEXT_TOO_LONG,
        14: reasons.DUPLICATE_ID,
        15: reasons.DUPLICATE,
        16: reasons.QUERY_IS_POSITIVE,
    }
    assert {n: by_line[n]["reason"] for n in expected} == expected
    for r in rejected:
        assert r["source_file"] == path.name  # recorded by name, not by local path
        assert r["detail"].startswith(f"{path.name}:{r['source_row']}:")
        assert r["record"]
    kept = read_data(out)
    assert sorted(r["query"] for r in kept) == [
        "first use of id",
        "how do bees fly",
        "what is a ctenophore",
    ]


@pytest.mark.slow
def test_same_rows_with_one_and_two_worker_processes(tmp_path):
    """DirectRunner in process, the teacher in that process too, vs two worker processes, each
    with its teacher in a child process, vs ``--low-memory``: identical rows, each from a cold
    cache."""
    args = ["curate", "--output"]
    assert (
        main(
            [
                *args,
                str(tmp_path / "one"),
                "--cache-dir",
                str(tmp_path / "c1"),
                "--no-teacher-process",
                "--direct_num_workers",
                "1",
            ]
        )
        == 0
    )
    assert (
        main(
            [
                *args,
                str(tmp_path / "two"),
                "--cache-dir",
                str(tmp_path / "c2"),
                "--teacher-process",
                "--direct_num_workers",
                "2",
                "--direct_running_mode",
                "multi_processing",
            ]
        )
        == 0
    )
    assert read_data(tmp_path / "one") == read_data(tmp_path / "two")
    assert manifest(tmp_path / "two")["counts"]["balanced"]
    # --low-memory: one in-process worker, its teacher in a child on every core; same rows
    low = ["--output", str(tmp_path / "low"), "--cache-dir", str(tmp_path / "c3")]
    assert main(["curate", *low, "--low-memory"]) == 0
    low_rows, one_rows = read_data(tmp_path / "low"), read_data(tmp_path / "one")
    # the same rows; scores to float rounding (2 torch threads sum in another order than 1)
    scores = ("positive_scores", "negative_scores")
    strip = [
        [{k: v for k, v in r.items() if k not in scores} for r in rs] for rs in (low_rows, one_rows)
    ]
    assert strip[0] == strip[1]
    for a, b in zip(low_rows, one_rows, strict=True):
        for k in scores:
            np.testing.assert_allclose(a[k], b[k], rtol=0, atol=1e-6)
    log = next((tmp_path / "low" / "logs").glob("curate-*.log")).read_text()
    assert "one in-process worker: --low-memory" in log
    assert "--direct_num_workers=1 --direct_running_mode=in_memory" in log
    assert "teacher process" in log and "started" in log


@pytest.mark.slow
def test_a_two_worker_dask_cluster_gives_the_rows_and_counts_of_one_direct_worker(tmp_path):
    """Beam's Dask runner on a real ``dask.distributed.LocalCluster`` of 2 worker processes
    against the DirectRunner with 1 worker: the same rows, and the same manifest counters,
    which travel in the data (the Dask runner reports no metrics)."""
    from dask.distributed import LocalCluster

    from kalm_data.samples import SAMPLE_DIR

    src = str(SAMPLE_DIR / "disflqa.jsonl.gz")
    dask = "apache_beam.runners.dask.dask_runner.DaskRunner"
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True) as cluster:
        assert len(cluster.workers) == 2
        address = ["--runner", dask, "--dask_client_address", cluster.scheduler_address]
        assert curate(src, tmp_path / "dask", tmp_path / "c1", *address) == 0
        # each task mined as 2 blocks x 2 pool shards across the cluster, from the cache
        blocks = ["--mine-blocks", "2", "--no-checkpoints"]
        assert curate(src, tmp_path / "blocks", tmp_path / "c1", *address, *blocks) == 0
    assert curate(src, tmp_path / "direct", tmp_path / "c2", "--direct_num_workers", "1") == 0
    rows = read_data(tmp_path / "dask")
    assert len(rows) > 550 and rows == read_data(tmp_path / "direct")
    assert read_data(tmp_path / "blocks") == rows
    assert manifest(tmp_path / "blocks")["counts"] == manifest(tmp_path / "direct")["counts"]
    on_dask, direct = manifest(tmp_path / "dask"), manifest(tmp_path / "direct")
    assert on_dask["counts"]["balanced"] and on_dask["counts"] == direct["counts"]
    assert on_dask["stages"] == direct["stages"]
    assert on_dask["mining"] == direct["mining"]
    read = on_dask["counts"]["rows_read"]
    assert on_dask["stages"]["validate"]["in"] == read
    assert on_dask["stages"]["filter"]["in"] == on_dask["stages"]["merge"]["out"] > 0
    # Every unique text embedded once, and no step run twice: the run reads no text from the
    # cache that it wrote itself (Beam's own Dask runner recomputes the upstream of every side
    # input inside each bundle that reads it: kalm_data.beam.dask_runner).
    unique = direct["mining"]["texts_encoded"]
    assert unique > 1000 and direct["mining"].get("texts_from_cache", 0) == 0
    assert on_dask["mining"]["texts_encoded"] == unique
    assert on_dask["mining"].get("texts_from_cache", 0) == 0


@pytest.mark.slow
def test_a_killed_run_loses_no_finished_work_and_keeps_the_previous_output(tmp_path):
    import os
    import signal
    import time

    from kalm_data.samples import SAMPLE_DIR

    out, cache = tmp_path / "out", tmp_path / "cache"
    common = [
        *("--output", str(out), "--cache-dir", str(cache), "--overwrite"),
        *("--direct_num_workers", "1"),
    ]
    assert main(["curate", "--input", str(SAMPLE_DIR / "disflqa.jsonl.gz"), *common]) == 0
    before = manifest(out)

    medquad = str(SAMPLE_DIR / "medquad.jsonl.gz")
    proc = subprocess.Popen(
        [sys.executable, "-m", "kalm_data.cli", "curate", "--input", medquad, *common],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 300
    fingerprint_dirs = list(cache.glob("*"))
    n_before = sum(1 for _ in cache.rglob("*.npz"))
    while sum(1 for _ in cache.rglob("*.npz")) < n_before + 3:
        assert proc.poll() is None, "the run finished before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert fingerprint_dirs, "the first run filled the cache"
    assert manifest(out) == before  # the killed run changed nothing in place
    import numpy as np

    for f in cache.rglob("*.npz"):  # only whole cache files carry the .npz name
        with np.load(f) as data:
            assert len(data["keys"]) == len(data["vectors"])

    assert main(["curate", "--input", medquad, *common]) == 0
    after = manifest(out)
    assert after["counts"]["balanced"] and after["counts"]["rows_read"] == 400
    assert after["mining"]["texts_from_cache"] > 0  # what the killed run finished was kept
    rows = read_data(out)
    assert len({r["id"] for r in rows}) == len(rows) == after["counts"]["examples_kept"]
    assert set(after["tasks"]) == {"medquad"}


def test_parquet_input_with_column_map_task_column_and_corpus(tmp_path):
    import pyarrow as pa

    from realdata import load_pairs

    rows = load_pairs(300, source="disfl")
    table = pa.table(
        {
            "question": [r["query"] for r in rows[:80]],
            "answer": [r["positive"] for r in rows[:80]],
            "src": ["a" if i % 2 else "b" for i in range(80)],
        }
    )
    pq.write_table(table, tmp_path / "qa.parquet")
    with open(tmp_path / "corpus.jsonl", "w", encoding="utf-8") as f:
        for r in rows[80:]:
            f.write(json.dumps({"text": r["positive"]}) + "\n")
        f.write('{"text": ""}\n')
    out = tmp_path / "out"
    code = main(
        [
            "curate",
            "--input",
            str(tmp_path / "qa.parquet"),
            "--map",
            "query=question,positive=answer,task=src",
            "--corpus",
            str(tmp_path / "corpus.jsonl"),
            "--output",
            str(out),
            "--cache-dir",
            str(tmp_path / "cache"),
            "--window-start",
            "20",
            "--window-end",
            "60",
            "--num-negatives",
            "4",
            "--filter-k",
            "20",
        ]
    )
    assert code == 0
    m = manifest(out)
    assert set(m["tasks"]) == {"a", "b"} and m["counts"]["balanced"]
    assert m["counts"]["corpus_rows_rejected"] == {reasons.BLANK_FIELD: 1}
    corpus = {r["positive"] for r in rows[80:]}
    kept = read_data(out)
    assert kept and all(len(r["negatives"]) == 4 for r in kept)
    # 40 examples per task cannot fill ranks 20-59 without the shared corpus.
    assert any(n in corpus for r in kept for n in r["negatives"])
    assert all(r["source_file"] == "qa.parquet" for r in kept)
