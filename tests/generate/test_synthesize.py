"""``kalm-data synthesize``: generate and curate as one Beam job, on real texts from a scripted
OpenAI-compatible server; its output trains with ``kalm-data train`` unchanged."""

from __future__ import annotations

import json
import subprocess
import sys

import pyarrow.parquet as pq
import pytest
from fake_openai import FakeOpenAI

from kalm_data.cli import main
from kalm_data.records import TrainingExample

from realdata import DATA, load_pairs

PERSONAS = DATA / "personas" / "personas.jsonl"


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth") / "out"
    argv = [
        "synthesize",
        "--llm", "openai", "--model", "fake-model",
        "--personas", str(PERSONAS), "--output", str(out),
        "--task-types", "short-long", "sts",
        "--languages", "en",
        "--personas-per-type", "4", "--tasks-per-persona", "8", "--single-stage-examples", "12",
        "--num-negatives", "2", "--window-start", "2", "--window-end", "20", "--filter-k", "10",
        "--direct_num_workers=1",
    ]  # fmt: skip
    with FakeOpenAI() as server:
        code = main([*argv, "--base-url", server.base_url])
    return out, code


def test_synthesize_writes_curated_shards_in_one_job(synthesized):
    out, code = synthesized
    assert code == 0
    manifest = json.loads((out / "manifest.json").read_text())
    counts = manifest["counts"]
    assert counts["rows_read"] == 4 * 8 + 12 and counts["balanced"]
    rows = [
        r
        for path in sorted((out / "data").glob("*/part-*.parquet"))
        for r in pq.read_table(path).to_pylist()
    ]
    assert sum(len(r["source_rows"]) for r in rows) == counts["rows_kept"] > 0
    assert set(rows[0]) == set(TrainingExample.model_fields)
    assert {r["task"] for r in rows} <= {"short-long-en", "sts-en"}
    mined = [r for r in rows if any(rank >= 0 for rank in r["negative_ranks"])]
    assert mined, "mining found negatives among the generated pairs"
    assert all(r["instruction"] for r in rows)
    # both halves report: generate's LLM usage and diversity, curate's stages and teacher
    assert manifest["llm"]["brainstorm"]["requests"] == 4
    assert manifest["teacher"]["teacher"] and manifest["generator"]["model"] == "fake-model"
    assert set(manifest["settings"]) == {"generate", "curate"}
    # generated rows keep their provenance through curation, and the run has its dataset card
    assert all(r["generator"] == "fake-model" for r in rows)
    assert any(r["persona_id"] for r in rows if r["task"] == "short-long-en")
    assert "short-long-en" in (out / "README.md").read_text()


def test_synthesize_output_trains_unchanged(synthesized, tmp_path):
    from kalm_data.train.tiny import build_tiny_qwen

    out, _ = synthesized
    texts = [t for r in load_pairs(200) for t in (r["query"], r["positive"])]
    model = build_tiny_qwen(tmp_path / "tiny", texts)
    argv = [
        "train", "--data", str(out), "--model", model, "--output", str(tmp_path / "model"),
        "--batch-size", "4", "--num-negatives", "1", "--max-steps", "2", "--threads", "1",
    ]  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "kalm_data.cli", *argv], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "model" / "config.json").exists() or any((tmp_path / "model").iterdir())
