"""``pipelines/curate.py``: the Beam-style entry file runs curate on a ``TestPipeline``."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from apache_beam.testing.test_pipeline import TestPipeline

from realdata import load_pairs, write_jsonl

ENTRY = Path(__file__).resolve().parents[1] / "pipelines" / "curate.py"


def _entry():
    spec = importlib.util.spec_from_file_location("curate_entry", ENTRY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_entry_file_runs_curate_on_a_test_pipeline(tmp_path):
    src = write_jsonl(tmp_path / "pairs.jsonl", load_pairs(40, source="disfl"))
    argv = ["--input", str(src), "--output", str(tmp_path / "out")]
    argv += ["--cache-dir", str(tmp_path / "cache"), "--window-start", "2", "--window-end", "12"]
    manifest = _entry().run(argv + ["--filter-rule", "none"], test_pipeline=TestPipeline())
    assert manifest["counts"]["balanced"] and manifest["counts"]["rows_read"] == 40
    assert (tmp_path / "out" / "manifest.json").exists()


def test_entry_file_refuses_unknown_flags(tmp_path):
    from kalm_data.errors import UsageError

    with pytest.raises(UsageError, match="did you mean --num-negatives"):
        _entry().run(["--output", str(tmp_path / "o"), "--num-negativs", "3"])


def test_dataflow_with_a_local_cache_dir_is_refused_before_anything_is_written(tmp_path):
    from kalm_data.errors import UsageError

    src = write_jsonl(tmp_path / "pairs.jsonl", load_pairs(5, source="disfl"))
    argv = ["--input", str(src), "--output", str(tmp_path / "out")]
    argv += ["--cache-dir", str(tmp_path / "cache"), "--runner", "DataflowRunner"]
    with pytest.raises(UsageError, match="local to each Dataflow worker.*gs://"):
        _entry().run(argv)
    assert not (tmp_path / "out").exists()
