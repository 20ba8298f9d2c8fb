"""``kalm-data train`` at its edges: data without rows, a clean process exit, ``--help``."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from kalm_data.arrow_schema import to_table
from kalm_data.cli import main
from kalm_data.records import TrainingExample
from kalm_data.train import loop
from kalm_data.train.config import TrainConfig
from kalm_data.train.data import NoTrainingRowsError, load_rows, read_shard

REPO = Path(__file__).resolve().parents[2]


def empty_curated(root: Path) -> Path:
    """``root/data/t/part-00000-of-00001.parquet`` with the TrainingExample schema, zero rows."""
    folder = root / "data" / "t"
    folder.mkdir(parents=True)
    pq.write_table(to_table(TrainingExample, []), folder / "part-00000-of-00001.parquet")
    return root


def run_main(argv: list[str], capsys) -> tuple[int, str]:
    """(exit code, error text) of ``main(argv)``, whether it raises or prints the error."""
    try:
        code = main(argv)
    except NoTrainingRowsError as err:
        return 1, str(err)
    return code, capsys.readouterr().err.strip()


def test_train_on_shards_without_rows_is_one_clear_error_before_any_model(
    tiny_qwen, tmp_path, monkeypatch, capsys
):
    first, second = empty_curated(tmp_path / "a"), empty_curated(tmp_path / "b")
    started = []
    monkeypatch.setattr(loop, "setup", lambda *a: started.append("runtime"))
    monkeypatch.setattr(loop, "build_model", lambda *a: started.append("model"))
    output = tmp_path / "out"
    argv = ["train", "--data", str(first), "--data", str(second), "--model", tiny_qwen]
    code, text = run_main([*argv, "--output", str(output), "--threads", "1"], capsys)
    lines = [x for x in text.splitlines() if "no training rows were found in " in x]
    assert code != 0 and len(lines) == 1, text
    assert str(first) in lines[0] and str(second) in lines[0]  # one line naming every folder
    assert started == [] and not output.exists()  # raised before runtime, model and output


def test_load_rows_without_rows_raises_a_value_error(tmp_path):
    data = empty_curated(tmp_path / "empty")
    expected = f"no training rows were found in {data}: the 1 shard"
    with pytest.raises(ValueError, match="^" + re.escape(expected)):
        load_rows([str(data)])


def test_train_process_on_shards_without_rows_exits_cleanly(tiny_qwen, tmp_path):
    """It used to abort with rc 134 ("terminate called without an active exception")."""
    data = empty_curated(tmp_path / "empty")
    argv = ["train", "--data", str(data), "--model", tiny_qwen, "--output", str(tmp_path / "o")]
    done = subprocess.run(
        [sys.executable, "-m", "kalm_data.cli", *argv, "--threads", "1"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode not in (0, 134, -6), done.stderr
    assert "terminate called" not in done.stderr
    assert "no training rows were found in" in done.stderr


def test_shards_are_read_without_arrows_thread_pool(shards, monkeypatch):
    """A threaded ``pq.read_table`` on a Python file object can leave pool work that aborts the
    interpreter's exit (rc 134, apache/arrow#33975); the shard reader must not use the pool."""
    calls = []
    real = pq.read_table

    def recording(*args, **kwargs):
        calls.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(pq, "read_table", recording)
    shard = next(Path(shards).glob("data/*/part-*.parquet"))
    assert read_shard(str(shard))
    assert calls and all(kw.get("use_threads") is False for kw in calls)


def test_processes_reading_a_shard_exit_cleanly(shards):
    """The crash is in interpreter teardown and timing-dependent: several fresh processes, run
    side by side (contention widened the race on the old reader)."""
    shard = next(Path(shards).glob("data/*/part-*.parquet"))
    code = f"from kalm_data.train.data import read_shard; read_shard({str(shard)!r})"
    runs = [
        subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stderr=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    for run in runs:
        _, stderr = run.communicate(timeout=120)
        assert run.returncode == 0 and "terminate called" not in stderr, stderr


def test_train_help_lists_every_setting_and_renders(capsys):
    with pytest.raises(SystemExit) as done:
        main(["train", "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    for name in TrainConfig.model_fields:
        assert "--" + name.replace("_", "-") in out, name
    # a bare % in a description made argparse print its internal dict in the help
    assert "{'" not in out and "'option_strings'" not in out
