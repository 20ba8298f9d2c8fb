"""``kalm-data generate`` end to end through Beam, against a scripted OpenAI-compatible server on
loopback that answers with real texts (XQuAD questions and paragraphs, STS-B sentences), so the
stages see real language. Real personas (PersonaHub sample), real Parquet, the real harness."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest
from fake_openai import FakeOpenAI

from kalm_data.cli import main

from realdata import DATA

PERSONAS = DATA / "personas" / "personas.jsonl"
SMALL = ["--personas-per-type", "2", "--tasks-per-persona", "3", "--single-stage-examples", "2"]


def _generate(server: FakeOpenAI, out, *extra: str) -> int:
    argv = [
        "generate",
        "--llm",
        "openai",
        "--model",
        "fake-model",
        "--base-url",
        server.base_url,
        "--max-retries",
        "1",
        "--personas",
        str(PERSONAS),
        "--output",
        str(out),
        *SMALL,
        "--direct_num_workers=1",
        *extra,
    ]
    return main(argv)


def _rows(folder) -> list[dict]:
    return [
        r
        for path in sorted(folder.glob("*/part-*.parquet"))
        for r in pq.read_table(path).to_pylist()
    ]


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("gen") / "out"
    with FakeOpenAI() as server:
        code = _generate(server, out)
        calls = server.total_calls
    return out, code, calls


def test_generate_writes_task_shards_rejected_and_a_balanced_manifest(first_run):
    out, code, calls = first_run
    assert code == 0
    manifest = json.loads((out / "manifest.json").read_text())
    counts = manifest["counts"]
    # 4 two-stage types x 2 personas x 3 tasks + 2 single-stage types x 2 = 28 units
    assert counts["rows_read"] == 28 and counts["balanced"]
    assert counts["rows_kept"] + counts["rows_rejected"] == 28
    kept = _rows(out / "data")
    assert len(kept) == counts["rows_kept"] > 0
    for row in kept:
        assert row["task"] == f"{row['task_type']}-{row['language']}"
        assert row["query"] and row["positive"] and row["instruction"]
        assert row["generator"] == "fake-model" and row["source_rows"][0] >= 1
    types = {r["task_type"] for r in kept}
    assert {"short-long", "sts", "bitext"} <= types
    # the persona was the system prompt of brainstorms only, and every call is accounted for
    llm = manifest["llm"]
    assert llm["brainstorm"]["requests"] == 8 and llm["example"]["requests"] <= 28
    assert calls == llm["brainstorm"]["requests"] + llm["example"]["requests"]
    assert llm["example"]["completion_tokens"] > 0
    diversity = manifest["diversity"]
    assert diversity["examples"] == len(kept) and diversity["personas_used"] >= 1
    assert sum(diversity["per_task_type"].values()) == len(kept)
    assert manifest["personas"]["distinct"] == 2000 and manifest["generator"]["backend"] == "openai"


def test_generate_rerun_makes_no_new_llm_call(first_run, tmp_path):
    out, _, _ = first_run
    with FakeOpenAI() as server:
        assert _generate(server, out, "--overwrite") == 0
        assert server.total_calls == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["llm"]["example"]["cached"] == manifest["llm"]["example"]["requests"]


def test_no_key_and_no_path_in_the_manifest(first_run):
    out, _, _ = first_run
    text = (out / "manifest.json").read_text()
    assert str(PERSONAS.parent) not in text and str(out) not in text


def test_a_password_in_the_server_url_is_never_written(tmp_path):
    from kalm_data.generate.config import GenerateConfig
    from kalm_data.generate.pipeline import published_settings

    url = "https://user:s3cret-pw@llm.example.com:8443/v1"
    cfg = GenerateConfig(output=str(tmp_path), llm="openai", base_url=url)
    settings = published_settings(cfg)
    assert settings["base_url"] == "https://llm.example.com:8443/v1"
    assert "s3cret-pw" not in json.dumps(settings)


def _cache_entries(out) -> int:
    return len(list((out / ".kalm-data" / "llm-cache").glob("*/*.json")))


def test_a_killed_run_pays_again_only_for_unfinished_requests(tmp_path):
    """After the brainstorms and a few examples, every call hangs; the run is killed (SIGKILL);
    the rerun asks the server again only for requests that never got an answer."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from fake_openai import Fault, body_key

    out = tmp_path / "out"
    with FakeOpenAI() as server:
        server.script(Fault(delay=600, after=8 + 6, times=1000))
        argv = [
            sys.executable, "-m", "kalm_data.cli", "generate",
            "--llm", "openai", "--model", "fake-model", "--base-url", server.base_url,
            "--timeout", "900", "--concurrency", "64",
            "--personas", str(PERSONAS), "--output", str(out), *SMALL,
            "--direct_num_workers=1",
        ]  # fmt: skip
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
        proc = subprocess.Popen(
            argv, env=env, start_new_session=True,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:  # wait until calls hang and every answered one is cached
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:
                hung = len(server.faulted)
                if hung and _cache_entries(out) + hung >= server.total_calls:
                    break
                time.sleep(0.5)
        finally:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        assert not (out / "manifest.json").exists()
        answered = {body_key(b) for b in server.bodies} - {body_key(b) for b in server.faulted}
        assert _cache_entries(out) == len(answered) >= 8 + 6
        first = dict(server.calls)
        server.faults.clear()
        assert _generate(server, out) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"]["balanced"] and manifest["counts"]["rows_read"] == 28
    asked_again = {k for k, n in server.calls.items() if n > first.get(k, 0) and k in first}
    assert not asked_again & answered  # nothing answered before the kill was paid for twice
    llm = manifest["llm"]
    assert llm["brainstorm"]["cached"] == llm["brainstorm"]["requests"] == 8
    assert llm["example"]["cached"] == 6
    paid = sum(s["requests"] - s["cached"] for s in llm.values())
    assert server.total_calls - sum(first.values()) == paid


def test_each_failure_kind_lands_in_rejected_with_its_reason(tmp_path):
    """Scripted server faults, one kind per example request, through the whole pipeline."""
    from fake_openai import Fault

    example = "Write one training example"
    faults = [
        Fault(status=500, times=2, match=example),  # 2 attempts (--max-retries 1): llm_error
        Fault(malformed="html", match=example),  # not an API body: llm_error
        Fault(finish_reason="length", match=example),  # truncated
        Fault(content="I'm sorry, but I can't help with that request.", match=example),
        Fault(content="Sure! Here is the example you asked for.", match=example),
        Fault(
            content='{"user_query": "", "positive_document": "x", "hard_negative_document": '
            '"y", "S1": "", "S2": "b", "S3": "c"}',
            match=example,
        ),  # fmt: skip
    ]
    out = tmp_path / "out"
    with FakeOpenAI() as server:
        server.script(*faults)
        assert _generate(server, out, "--task-types", "short-long", "sts") == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"]["balanced"]
    reasons = manifest["counts"]["rejected"]["example"]
    assert reasons["llm_error"] == 2
    for reason in ("truncated", "refusal", "malformed_json", "empty_field"):
        assert reasons[reason] == 1, (reason, reasons)
    rejected = _rows(out / "rejected")
    refused = next(r for r in rejected if r["reason"] == "refusal")
    assert "I'm sorry" in json.loads(refused["record"])["answer"]
    assert manifest["llm"]["example"]["errors"] == 2


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--personas", "missing.jsonl"], "--personas missing.jsonl: no such input file"),
        (["--tasks-per-persone", "3"], "(did you mean --tasks-per-persona?)"),
        (["--task-types", "sts", "poems"], "unknown task type(s) ['poems']"),
    ],
)
def test_bad_requests_fail_before_anything_is_written_with_one_line(
    tmp_path, capsys, monkeypatch, extra, expected
):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "out"
    argv = ["generate", "--llm", "openai", "--model", "m", "--base-url", "http://127.0.0.1:9/v1",
            "--output", str(out), *extra]  # fmt: skip
    assert main(argv) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith("kalm-data generate: error: "), err
    assert expected in err[0]
    assert not out.exists()
