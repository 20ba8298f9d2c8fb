"""Regression tests for the safety defects: nothing lost, mixed or deleted, strict flags, one
clear error line. Real inputs (rows of ../shared/data/qa_pairs_en), the real teacher and Beam."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from kalm_data.cli import main
from kalm_data.samples import SAMPLE_DIR

from realdata import PAIRS, load_pairs, write_jsonl

#: Small pools: mine from ranks 2-11, no filter, one in-process worker (fast and sufficient).
SMALL = [
    *("--window-start", "2", "--window-end", "12", "--num-negatives", "3"),
    *("--filter-rule", "none", "--direct_num_workers", "1"),
]


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (relative path -> bytes)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def outputs(out: Path) -> dict[str, bytes]:
    """The run's outputs: every file but the lock/staging folder and the logs."""
    return {k: v for k, v in snapshot(out).items() if not k.startswith((".kalm-data/", "logs/"))}


def manifest(out: Path) -> dict:
    return json.loads((out / "manifest.json").read_text())


@pytest.fixture(scope="module")
def pairs() -> list[dict]:
    return load_pairs(64, source="disfl")


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


def test_output_dot_never_deletes_the_users_files(tmp_path, monkeypatch, capsys, pairs, cache):
    """`curate --input data/my_pairs.jsonl --output .` once removed data/, input included."""
    write_jsonl(tmp_path / "data" / "my_pairs.jsonl", pairs)
    (tmp_path / "data" / "notes.txt").write_text("my notes")
    before = snapshot(tmp_path)
    monkeypatch.chdir(tmp_path)
    args = ["curate", "--input", "data/my_pairs.jsonl", "--output", ".", "--cache-dir", str(cache)]
    assert main(args) == 2
    assert main([*args, "--overwrite"]) == 2
    err = capsys.readouterr().err
    assert "not written by kalm-data" in err and "Traceback" not in err
    assert snapshot(tmp_path) == before  # nothing deleted, nothing left behind
    assert sorted(os.listdir(tmp_path)) == ["data"]


def test_overwrite_replaces_only_files_of_an_earlier_kalm_data_output(
    tmp_path, capsys, pairs, cache
):
    a = write_jsonl(tmp_path / "in" / "a.jsonl", pairs[:32])
    b = write_jsonl(tmp_path / "in" / "b.jsonl", pairs[32:])
    out = tmp_path / "out"
    base = ["curate", "--output", str(out), "--cache-dir", str(cache), *SMALL]
    # --task belongs to the --input before it (it once gave every input the last task).
    run = [*base, "--input", str(a), "--task", "x", "--input", str(b), "--task", "y"]
    assert main(run) == 0
    first = manifest(out)
    assert {i["path"]: i["task"] for i in first["inputs"]} == {"a.jsonl": "x", "b.jsonl": "y"}
    assert set(first["tasks"]) == {"x", "y"}
    assert all((out / f).is_file() for f in first["files"])

    assert main(run) == 2  # an earlier output is replaced only on request
    assert "pass --overwrite" in capsys.readouterr().err
    assert manifest(out) == first

    (out / "data" / "x" / "my_notes.txt").write_text("mine")
    assert main([*run, "--overwrite"]) == 2
    assert "my_notes.txt not written by kalm-data" in capsys.readouterr().err
    assert (out / "data" / "x" / "my_notes.txt").read_text() == "mine"
    assert manifest(out) == first
    (out / "data" / "x" / "my_notes.txt").unlink()

    # A manifest is data too: paths outside data/ and rejected/ part files are never deleted.
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    crafted = {**first, "files": [*first["files"], "../victim.txt", "data/x/../../victim.txt"]}
    (out / "manifest.json").write_text(json.dumps(crafted))
    (out / "README.md").write_text("my card")
    assert main([*base, "--input", str(a), "--task", "z", "--overwrite"]) == 0
    assert victim.read_text() == "keep me" and (out / "README.md").read_text() == "my card"
    second = manifest(out)
    assert set(second["tasks"]) == {"z"} and not (out / "data" / "x").exists()
    on_disk = sorted(str(p.relative_to(out)) for p in out.glob("*/*/part-*.parquet"))
    assert on_disk == sorted(second["files"])


TASK_NAMES = ["a/b", "a_b", "../x", "x", ".", "..", "日本語", "_"]


def test_task_names_never_share_a_folder(tmp_path, cache):
    """8 tasks once became 4 folders: 64 of 128 valid rows overwritten."""
    rows = load_pairs(128, source="disfl")
    for i, row in enumerate(rows):
        row["src"] = TASK_NAMES[i % len(TASK_NAMES)]
    src = write_jsonl(tmp_path / "tasks.jsonl", rows)
    out = tmp_path / "out"
    assert (
        main(
            ["curate", "--input", str(src), "--map", "task=src", "--output", str(out)]
            + ["--cache-dir", str(cache), *SMALL]
        )
        == 0
    )
    m = manifest(out)
    assert m["counts"]["balanced"] and m["counts"]["rows_read"] == 128
    assert set(m["tasks"]) == set(TASK_NAMES)
    folders = {t["folder"] for t in m["tasks"].values()}
    assert len(folders) == 8 and "日本語" in folders
    assert {p.name for p in (out / "data").iterdir()} == folders
    for folder in (out / "data").iterdir():
        tasks = {r["task"] for p in folder.glob("*.parquet") for r in pq.read_table(p).to_pylist()}
        assert len(tasks) == 1 and m["tasks"][tasks.pop()]["folder"] == folder.name
    assert not (tmp_path / "x").exists()  # "../x" stayed inside the output


def test_an_unbalanced_run_never_commits(tmp_path, monkeypatch, capsys, pairs, cache):
    import kalm_data.harness.run

    src = write_jsonl(tmp_path / "pairs.jsonl", pairs)
    out = tmp_path / "out"
    args = ["curate", "--input", str(src), "--output", str(out), "--cache-dir", str(cache), *SMALL]
    assert main(args) == 0
    before = outputs(out)
    # Fault injection: one row "read" that no stage accounts for.
    real = kalm_data.harness.run._rows_read
    monkeypatch.setattr(kalm_data.harness.run, "_rows_read", lambda staging: real(staging) + 1)
    assert main([*args, "--overwrite"]) == 1
    assert "UNBALANCED" in capsys.readouterr().out
    assert outputs(out) == before
    assert not (out / ".kalm-data" / "lock").exists()
    assert list((out / ".kalm-data" / "staging" / "data").glob("*/part-*.parquet"))


def test_task_and_map_flags_belong_to_the_inputs_before_them():
    from kalm_data.cli import _build_parser
    from kalm_data.curate.cli import config_from_args
    from kalm_data.errors import UsageError

    def specs(*argv):
        args, rest = _build_parser().parse_known_args(["curate", *argv, "--output", "o"])
        return [(s.path, s.task, s.columns) for s in config_from_args(args, rest).inputs]

    q = {"query": "q"}
    assert specs("--input", "a", "--task", "x", "--input", "b", "--task", "y") == [
        ("a", "x", {}),
        ("b", "y", {}),
    ]
    assert specs("--input", "a", "--input", "b", "--map", "query=q") == [
        ("a", None, q),
        ("b", None, q),
    ]
    assert specs("--task", "t", "--input", "a", "--map", "query=q", "--input", "b") == [
        ("a", "t", q),
        ("b", None, {}),
    ]
    with pytest.raises(UsageError, match="two --task flags for --input a"):
        specs("--input", "a", "--task", "x", "--task", "y")


def _truncated_gz(tmp_path: Path) -> Path:
    data = PAIRS.read_bytes()
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(data[: len(data) // 2])
    return path


def _tsv_without_positive(tmp_path: Path, pairs) -> Path:
    path = tmp_path / "qa.tsv"
    path.write_text("id\tquery\tanswer\n" + "".join(f"{r['id']}\t{r['query']}\tx\n" for r in pairs))
    return path


def _not_a_model(tmp_path: Path, pairs) -> Path:
    folder = tmp_path / "not_a_model"
    write_jsonl(folder / "pairs.jsonl", pairs)
    return folder


BAD = {
    "missing input": (lambda t, p: ["--input", str(t / "nope.jsonl")], "nope.jsonl: no such input"),
    "truncated gz": (lambda t, p: ["--input", str(_truncated_gz(t))], "truncated or corrupt gzip"),
    "empty file": (
        lambda t, p: ["--input", str(write_jsonl(t / "empty.jsonl", []))],
        "empty.jsonl: empty input",
    ),
    "map to a missing column": (
        lambda t, p: ["--input", str(write_jsonl(t / "a.jsonl", p)), "--map", "query=nosuchcol"],
        "column 'nosuchcol' (mapped by --map query=nosuchcol) not found",
    ),
    "map task to a missing column": (
        lambda t, p: ["--input", str(write_jsonl(t / "a.jsonl", p)), "--map", "task=nosuchcol"],
        "column 'nosuchcol' (mapped by --map task=nosuchcol) not found",
    ),
    "tsv without positive": (
        lambda t, p: ["--input", str(_tsv_without_positive(t, p))],
        "qa.tsv: no 'positive' column",
    ),
    "corpus without text": (
        lambda t, p: [
            *("--input", str(write_jsonl(t / "a.jsonl", p))),
            *("--corpus", str(write_jsonl(t / "corpus.jsonl", [{"body": "x"}]))),
        ],
        "corpus.jsonl: no 'text' column",
    ),
    "output is a file": (
        lambda t, p: [
            *("--input", str(write_jsonl(t / "a.jsonl", p))),
            *("--output", str(write_jsonl(t / "file.txt", []))),
        ],
        "is a file, not a folder",
    ),
    "output not writable": (
        lambda t, p: ["--input", str(write_jsonl(t / "a.jsonl", p)), "--output", "/proc/kalm"],
        "--output /proc/kalm is not writable",
    ),
    "missing teacher": (
        lambda t, p: ["--input", str(write_jsonl(t / "a.jsonl", p)), "--teacher", "./no/model"],
        "--teacher ./no/model: no such model folder",
    ),
    "non-embedding teacher": (
        lambda t, p: [
            *("--input", str(write_jsonl(t / "a.jsonl", p))),
            *("--teacher", str(_not_a_model(t, p))),
        ],
        "is not a sentence-transformers or Hugging Face model folder",
    ),
    "teacher config without a model type": (
        lambda t, p: [
            *("--input", str(write_jsonl(t / "a.jsonl", p))),
            *("--teacher", str(_write(t / "m" / "config.json", '{"hidden_size": 8}').parent)),
        ],
        "not a loadable model config: ",
    ),
    "invalid setting": (
        lambda t, p: ["--input", str(write_jsonl(t / "a.jsonl", p)), "--window-end", "10"],
        "invalid settings: window_end (10) must be greater than window_start (50)",
    ),
    "invalid yaml value": (
        lambda t, p: [
            *("--input", str(write_jsonl(t / "a.jsonl", p))),
            *("--config", str(_write(t / "c.yaml", "num_negatives: -1\n"))),
        ],
        "invalid settings: num_negatives: Input should be greater than or equal to 0 (got -1)",
    ),
    "unknown flag": (
        lambda t, p: ["--input", str(write_jsonl(t / "a.jsonl", p)), "--num-negativs", "3"],
        "unrecognized argument --num-negativs (did you mean --num-negatives?)",
    ),
    "unknown flag with a value": (
        lambda t, p: ["--input", str(write_jsonl(t / "a.jsonl", p)), "--fuzzy-dedup", "x"],
        "unrecognized argument --fuzzy-dedup",
    ),
}


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.mark.parametrize("case", list(BAD), ids=list(BAD))
def test_bad_requests_fail_before_writing_with_one_clear_line(case, tmp_path, capsys, pairs):
    make, expected = BAD[case]
    extra = make(tmp_path, pairs)
    out = tmp_path / "out"
    argv = ["curate", "--output", str(out), "--cache-dir", str(tmp_path / "cache"), *extra]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("kalm-data curate: error: "), err
    assert expected in err[0]
    assert not out.exists() and not (tmp_path / "cache").exists()


def test_a_bad_input_prints_no_traceback_from_the_command_line(tmp_path):
    cut = _truncated_gz(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "kalm_data.cli", "curate", "--input", str(cut)]
        + ["--output", str(tmp_path / "out")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"kalm-data curate: error: {cut}: truncated or corrupt gzip file: "
        + proc.stderr.split("truncated or corrupt gzip file: ", 1)[1].strip()
    ]


def test_curate_help_says_how_to_pass_beam_options(capsys):
    with pytest.raises(SystemExit):
        main(["curate", "--help"])
    out = capsys.readouterr().out
    assert "Beam pipeline options are passed to Apache Beam as-is" in out
    assert "--direct_num_workers" in out and "--overwrite" in out


def test_the_funnel_prints_rejected_rows_as_positive_counts():
    from kalm_data.writers.manifest import format_funnel

    m = {
        "counts": {
            "rows_read": 10,
            "rows_kept": 7,
            "rows_rejected": 3,
            "examples_kept": 6,
            "balanced": True,
            "rejected": {"validate": {"blank_field": 2}, "filter": {"inconsistent_ranking": 1}},
        },
        "tasks": {"t": {"examples": 6, "rows": 7}},
    }
    text = format_funnel(m)
    assert "-2" not in text and "-1" not in text
    assert any(line.split()[-1] == "2" and "blank_field" in line for line in text.splitlines())


def _worker_pids(token: str) -> list[int]:
    """Processes whose environment carries ``token`` (the run's SDK workers inherit it)."""
    pids = []
    for name in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{name}/environ", "rb") as f:
                if token.encode() in f.read():
                    pids.append(int(name))
        except OSError:
            continue
    return pids


def _start(argv: list[str], env: dict, ignore_sigint: bool = False) -> subprocess.Popen:
    def preexec():
        if ignore_sigint:  # as a background job of a script inherits it
            signal.signal(signal.SIGINT, signal.SIG_IGN)

    return subprocess.Popen(
        [sys.executable, "-m", "kalm_data.cli", "curate", *argv],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=preexec,
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    "layout",
    [["--direct_num_workers=1", "--direct_running_mode=in_memory"], []],
    ids=["in-process", "worker-processes"],
)
def test_ctrl_c_stops_a_run_keeps_the_previous_output_and_finished_embeddings(tmp_path, layout):
    out, cache = tmp_path / "out", tmp_path / "cache"
    common = ["--output", str(out), "--cache-dir", str(cache), "--overwrite"]
    assert main(["curate", "--input", str(SAMPLE_DIR / "disflqa.jsonl.gz"), *common]) == 0
    before = outputs(out)

    token = f"kalm-test-{uuid.uuid4().hex}"
    env = {**os.environ, "KALM_TEST_TOKEN": token}
    medquad = str(SAMPLE_DIR / "medquad.jsonl.gz")
    # In process, or worker processes (the default); SIGINT ignored at start, as it once was.
    proc = _start(["--input", medquad, *common, *layout], env, ignore_sigint=True)
    n_before = sum(1 for _ in cache.rglob("*.npz"))
    deadline = time.monotonic() + 300
    while sum(1 for _ in cache.rglob("*.npz")) <= n_before:
        assert proc.poll() is None, "the run finished before it could be interrupted"
        assert time.monotonic() < deadline
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)  # a hang guard, not a timing claim
    assert proc.returncode == 130, err[-2000:]
    assert "kalm-data curate: error: interrupted" in err and "Traceback" not in err
    time.sleep(1)
    assert _worker_pids(token) == []  # no worker process left running
    assert outputs(out) == before  # its partial staging is cleared by the next run

    assert main(["curate", "--input", medquad, *common]) == 0
    assert manifest(out)["mining"]["texts_from_cache"] > 0  # the interrupted work was kept


@pytest.mark.slow
def test_two_concurrent_runs_leave_one_complete_output_and_a_clear_error(tmp_path):
    out = tmp_path / "out"
    env = dict(os.environ)
    first = _start(
        ["--input", str(SAMPLE_DIR / "disflqa.jsonl.gz"), "--output", str(out)]
        + ["--cache-dir", str(tmp_path / "c1")],
        env,
    )
    deadline = time.monotonic() + 120
    while not (out / ".kalm-data" / "lock").exists():
        assert first.poll() is None and time.monotonic() < deadline
        time.sleep(0.1)
    second = _start(
        ["--input", str(SAMPLE_DIR / "medquad.jsonl.gz"), "--output", str(out)]
        + ["--cache-dir", str(tmp_path / "c2"), "--overwrite"],
        env,
    )
    _, err2 = second.communicate(timeout=300)
    assert second.returncode == 2
    assert f"is in use by another kalm-data run (pid {first.pid}" in err2
    _, err1 = first.communicate(timeout=600)
    assert first.returncode == 0, err1[-2000:]
    m = manifest(out)
    assert m["counts"]["balanced"] and set(m["tasks"]) == {"disflqa"}
    assert m["counts"]["rows_read"] == 600
    assert [p.name for p in (out / ".kalm-data").iterdir()] == ["checkpoints"]
