"""Stage checkpoints: the pure core, the Beam shells on toy pipelines, and ``curate`` resumed
after a SIGKILL (real data, the real teacher, a real Beam runner)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to
from pydantic import BaseModel

from kalm_data.beam.checkpoint import checkpointed
from kalm_data.beam.counts import SumTallies, Tally
from kalm_data.cli import main
from kalm_data.harness.checkpoint import (
    MARKER,
    Checkpoint,
    decode,
    encode,
    list_checkpoints,
    remove_unused,
    stage_key,
)
from kalm_data.records import Example, InputPair, RejectedRecord

from realdata import load_pairs, write_jsonl

EXAMPLE = Example(
    id="e1",
    task="t",
    task_type="retrieval",
    query="what is a ctenophore",
    positives=["a comb jelly", "a marine animal"],
    negatives=[],
    source_file="pairs.jsonl",
    source_rows=[3, 9],
    source_ids=["a", "b"],
    row_positives=[[0], [1]],
)
PAIR = InputPair(id="p1", task="t", query="q", positives=["p"], source_file="f", source_row=1)
REJECTED = RejectedRecord(
    task="t",
    stage="filter",
    reason="low",
    detail="f:1: x",
    source_file="f",
    source_row=1,
    record="{}",
)
ROWS = ("t", [{"id": "e1", "positive_scores": [0.1 + 0.2, 1e-300, float("inf")], "rank": None}])


# The pure core ------------------------------------------------------------------------------


def test_key_depends_on_every_setting_given_and_not_on_their_order():
    assert stage_key({"a": 1, "b": [1, 2]}) == stage_key({"b": [1, 2], "a": 1})
    assert stage_key({"a": 1, "b": [1, 2]}) != stage_key({"a": 1, "b": [2, 1]})
    assert stage_key({"a": 1}) != stage_key({"a": 1.5})
    assert len(stage_key({})) == 16


@pytest.mark.parametrize(
    "element",
    [
        EXAMPLE,
        PAIR,
        REJECTED,
        ROWS,
        Tally((("validate.in", 3), ("validate.out", 2))),
        ("texts_encoded", 12),
        {"$model": "x", "n": (1, "a")},
    ],
)
def test_elements_round_trip_exactly_through_json(element):
    line = encode(element)
    assert "\n" not in line
    back = decode(line)
    assert back == element and type(back) is type(element)


def test_only_known_record_models_are_stored_or_built():
    class Other(BaseModel):
        x: int = 1

    with pytest.raises(TypeError, match="Other"):
        encode(Other())
    with pytest.raises(TypeError, match="set"):
        encode({1, 2})
    for tag in ("$model", "$dataclass"):
        with pytest.raises(ValueError, match="unknown record type"):
            decode(json.dumps({tag: "os.system", "$data": {}}))


def test_names_are_checked_and_paths_stay_inside_the_folder(tmp_path):
    with pytest.raises(ValueError):
        Checkpoint(str(tmp_path), "../pairs", stage_key({}))
    ckpt = Checkpoint(str(tmp_path), "pairs", stage_key({}))
    with pytest.raises(ValueError):
        ckpt.part("../x", 0, 1)
    assert ckpt.part("examples", 2, 8) == "examples/part-00002-of-00008.jsonl.gz"


# The Beam shells on a toy pipeline -----------------------------------------------------------

NUMBERS = [("n", i) for i in range(50)]


def _toy(p):
    """A toy stage: split numbers into even (records) and odd (rejections), with a count."""
    numbers = p | "Numbers" >> beam.Create(NUMBERS)
    even = numbers | "Even" >> beam.Filter(lambda x: x[1] % 2 == 0)
    odd = (
        numbers
        | "Odd" >> beam.Filter(lambda x: x[1] % 2 == 1)
        | beam.Map(
            lambda x: RejectedRecord(
                task="t",
                stage="toy",
                reason="odd",
                detail="",
                source_file="f",
                source_row=x[1],
                record="{}",
            )
        )
    )
    count = numbers | beam.combiners.Count.Globally() | beam.Map(lambda n: ("numbers", n))
    return {"kept": even, "rejected": odd, "counts": count}


def test_tallies_are_summed_into_one_and_rejections_kept():
    reports = [REJECTED, Tally((("a", 1), ("b", 2))), Tally((("a", 3),)), Tally(())]
    with TestPipeline() as p:
        got = p | beam.Create(reports) | SumTallies()
        assert_that(got, equal_to([REJECTED, Tally((("a", 4), ("b", 2)))]))


def _fail():
    raise AssertionError("a done checkpoint must not build its stage again")


EVEN = [x for x in NUMBERS if x[1] % 2 == 0]


def _run_toy(ckpt: Checkpoint, compute) -> bool:
    with TestPipeline() as p:
        got, reused = checkpointed(p, ckpt, ("kept", "rejected", "counts"), lambda: compute(p))
        assert_that(got["kept"], equal_to(EVEN), label="Kept")
        assert_that(
            got["rejected"] | beam.Map(lambda r: r.source_row),
            equal_to(list(range(1, 50, 2))),
            label="Rejected",
        )
        assert_that(got["counts"], equal_to([("numbers", 50)]), label="Counts")
    return reused


def test_a_checkpoint_is_written_then_reused_without_building_its_stage(tmp_path):
    ckpt = Checkpoint(str(tmp_path), "toy", stage_key({"n": 50}))
    assert not ckpt.done()
    assert _run_toy(ckpt, _toy) is False
    assert ckpt.done()
    marker = ckpt.read_marker()
    assert marker["elements"] == {"counts": 1, "kept": 25, "rejected": 25}
    mtime = (tmp_path / ckpt.name / MARKER).stat().st_mtime_ns
    assert _run_toy(ckpt, lambda p: _fail()) is True
    assert (tmp_path / ckpt.name / MARKER).stat().st_mtime_ns == mtime


def test_an_unfinished_checkpoint_is_cleared_and_written_again(tmp_path):
    ckpt = Checkpoint(str(tmp_path), "toy", stage_key({"n": 50}))
    stray = tmp_path / ckpt.name / "kept" / "part-00000-of-00003.jsonl.gz"
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"left by a killed run")
    assert not ckpt.done()
    assert _run_toy(ckpt, _toy) is False
    assert not stray.exists() and ckpt.done()
    # A part listed by the marker but gone: not done, so computed again.
    part = tmp_path / ckpt.name / ckpt.read_marker()["parts"]["kept"][0]
    part.unlink()
    assert not ckpt.done()
    assert _run_toy(ckpt, _toy) is False and ckpt.done()


def test_unused_checkpoints_are_removed_and_nothing_else(tmp_path):
    used = Checkpoint(str(tmp_path), "toy", stage_key({"n": 50}))
    old = Checkpoint(str(tmp_path), "toy", stage_key({"n": 49}))
    _run_toy(used, _toy)
    (tmp_path / old.name).mkdir()
    (tmp_path / "notes.txt").write_text("not ours")
    assert [(c.name, done) for c, done in list_checkpoints(str(tmp_path))] == sorted(
        [(used.name, True), (old.name, False)]
    )
    assert remove_unused(str(tmp_path), {used.name}) == [old.name]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([used.name, "notes.txt"])
    assert remove_unused(str(tmp_path / "missing"), set()) == []


def test_checkpoints_work_on_any_fsspec_filesystem():
    """The same calls on ``memory://`` as on a bucket (``gs://``): parts, marker, collection."""
    from kalm_data.harness.checkpoint import read_part, write_marker, write_part

    root = f"memory://kalm-test-{uuid.uuid4().hex}/checkpoints"
    ckpt = Checkpoint(root, "pairs", stage_key({"x": 1}))
    entry = write_part(ckpt, "examples", 0, 1, [encode(EXAMPLE), encode(ROWS)])
    assert not ckpt.done()
    write_marker(ckpt, [entry], ["examples", "reports"])
    assert ckpt.done() and ckpt.read_marker()["parts"] == {
        "examples": ["examples/part-00000-of-00001.jsonl.gz"],
        "reports": [],
    }
    assert list(read_part(ckpt, entry["path"])) == [EXAMPLE, ROWS]
    assert remove_unused(root, set()) == [ckpt.name] and not ckpt.done()


# ``curate`` killed and resumed -------------------------------------------------------------

#: Small pools: mine from ranks 2-11, no filter, one in-process worker (fast and sufficient).
SMALL = [
    *("--window-start", "2", "--window-end", "12", "--num-negatives", "3"),
    *("--filter-rule", "none", "--direct_num_workers", "1"),
]
#: Counters of the embedding work a run did (this run's cache hits), not of the data.
EMBED_COUNTERS = ("texts_encoded", "texts_from_cache", "texts_truncated_for_teacher")


@pytest.fixture(scope="module")
def pairs_file(tmp_path_factory) -> Path:
    return write_jsonl(tmp_path_factory.mktemp("src") / "pairs.jsonl", load_pairs(300))


@pytest.fixture(scope="module")
def warm_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


def _argv(src: Path, out: Path, cache: Path, *extra: str) -> list[str]:
    return ["curate", "--input", str(src), "--output", str(out), "--cache-dir", str(cache)] + [
        *SMALL,
        *extra,
    ]


def _manifest(out: Path) -> dict:
    return json.loads((out / "manifest.json").read_text())


def _markers(out: Path) -> dict[str, Path]:
    """Stage -> its marker, for every finished checkpoint of ``out``."""
    found = sorted((out / ".kalm-data" / "checkpoints").glob(f"*/{MARKER}"))
    return {p.parent.name.split("-")[0]: p for p in found}


def _files(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.glob("*/*/part-*"))}


def _data_counts(m: dict) -> dict:
    """What the manifest says of the data (not of the run: times, cache hits, checkpoints)."""
    mining = {k: v for k, v in m["mining"].items() if k not in EMBED_COUNTERS}
    return {"counts": m["counts"], "tasks": m["tasks"], "stages": m["stages"], "mining": mining}


def _kill_when_pairs_done(argv: list[str], out: Path, log: Path) -> None:
    """Run ``kalm-data curate`` in its own process group; SIGKILL it all once "pairs" is done."""
    with log.open("w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "kalm_data.cli", *argv],
            stdout=subprocess.DEVNULL,
            stderr=err,
            start_new_session=True,
        )
    try:
        while "pairs" not in _markers(out):
            assert proc.poll() is None, f"ended before its checkpoint: {log.read_text()[-2000:]}"
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@pytest.mark.slow
def test_a_killed_run_resumed_gives_the_output_of_an_uninterrupted_one(
    tmp_path, pairs_file, warm_cache
):
    clean, out = tmp_path / "clean", tmp_path / "resumed"
    assert main(_argv(pairs_file, clean, warm_cache)) == 0

    # Its own empty cache: once "pairs" is written, the run is embedding when it is killed.
    cache = tmp_path / "cache"
    _kill_when_pairs_done(_argv(pairs_file, out, cache), out, tmp_path / "killed.log")
    assert not (out / "manifest.json").exists() and not (out / "data").exists()
    assert set(_markers(out)) == {"pairs"}  # mining had not finished
    pairs_marker = _markers(out)["pairs"]
    written = pairs_marker.stat().st_mtime_ns

    assert main(_argv(pairs_file, out, cache)) == 0
    m = _manifest(out)
    assert m["checkpoints"]["pairs"] == {"folder": pairs_marker.parent.name, "reused": True}
    assert m["checkpoints"]["mined"]["reused"] is False
    assert pairs_marker.stat().st_mtime_ns == written  # read, never written again
    assert set(_markers(out)) == {"pairs", "mined"}

    assert _files(out) == _files(clean) and len(_files(out)) >= 2  # byte for byte
    assert _data_counts(m) == _data_counts(_manifest(clean))
    assert m["counts"]["balanced"] and m["counts"]["rows_read"] == 300


def _reused(out: Path) -> dict[str, bool]:
    return {k: v["reused"] for k, v in _manifest(out).get("checkpoints", {}).items()}


@pytest.mark.slow
def test_a_setting_re_runs_exactly_the_stages_that_read_it(tmp_path, pairs_file, warm_cache):
    out = tmp_path / "out"

    def curate(*extra: str) -> dict[str, bool]:
        assert main([*_argv(pairs_file, out, warm_cache, *extra), "--overwrite"]) == 0
        return _reused(out)

    assert curate() == {"pairs": False, "mined": False}
    first = (_files(out), _data_counts(_manifest(out)))
    assert curate() == {"pairs": True, "mined": True}
    assert (_files(out), _data_counts(_manifest(out))) == first
    # How the output is cut into files is no stage's setting.
    assert curate("--rows-per-shard", "100") == {"pairs": True, "mined": True}
    assert _data_counts(_manifest(out)) == first[1]

    # A new rank window: mining onwards runs again; the unused checkpoint is removed.
    before = _markers(out)
    assert curate("--window-start", "3") == {"pairs": True, "mined": False}
    after = _markers(out)
    assert after["pairs"] == before["pairs"] and after["mined"] != before["mined"]
    assert len(list((out / ".kalm-data" / "checkpoints").iterdir())) == 2
    # A near-duplicate setting: every stage runs again.
    assert curate("--window-start", "3", "--near-dup-threshold", "0.9") == {
        "pairs": False,
        "mined": False,
    }
    # Without checkpoints: nothing read, written or removed.
    kept = _markers(out)
    assert curate("--window-start", "4", "--no-checkpoints") == {}
    assert _markers(out) == kept


@pytest.mark.slow
def test_a_rerun_with_every_vector_cached_runs_in_one_in_process_worker(
    tmp_path, pairs_file, warm_cache
):
    out, fresh = tmp_path / "out", tmp_path / "fresh"
    assert main(_argv(pairs_file, out, warm_cache)) == 0
    pairs_folder = _markers(out)["pairs"].parent
    assert len(list(pairs_folder.glob("all-cached-*.json"))) == 1  # this run embedded it all

    # No worker option given: a rerun with a new window has only light work left.
    argv = _argv(pairs_file, out, warm_cache, "--window-start", "3", "--overwrite")
    at = argv.index("--direct_num_workers")
    argv = argv[:at] + argv[at + 2 :]
    assert main(argv) == 0
    log = sorted((out / "logs").glob("curate-*.log"))[-1].read_text()
    assert "every text's vector is cached" in log and "--direct_running_mode=in_memory" in log
    assert _reused(out) == {"pairs": True, "mined": False}
    # The same rows as a first run with that window; another cache is not "all cached".
    assert main(_argv(pairs_file, fresh, tmp_path / "cache", "--window-start", "3")) == 0
    assert _files(out) == _files(fresh)
    log = sorted((fresh / "logs").glob("curate-*.log"))[-1].read_text()
    assert "every text's vector is cached" not in log


def test_every_setting_is_listed_for_exactly_one_checkpoint_or_none():
    from kalm_data.curate.checkpoints import MINED_SETTINGS, NOT_CHECKPOINTED, PAIRS_SETTINGS
    from kalm_data.curate.config import CurateConfig

    listed = [*PAIRS_SETTINGS, *MINED_SETTINGS, *NOT_CHECKPOINTED]
    assert sorted(listed) == sorted(CurateConfig.model_fields)
