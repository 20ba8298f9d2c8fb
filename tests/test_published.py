"""Nothing published leaks the machine: no local paths, no secrets (rows, rejected rows and the
manifest of a real run; the naming and redaction rules on their own)."""

from __future__ import annotations

import json

import pyarrow.parquet as pq

from kalm_data.cli import main
from kalm_data.published import DEFAULT_TEACHER_ID, input_names, redact, teacher_name

from realdata import load_pairs, write_jsonl


def test_inputs_are_named_relative_to_the_root_else_by_unique_file_name(tmp_path):
    inside = tmp_path / "root" / "data" / "a.jsonl"
    elsewhere = [tmp_path / "x" / "pairs.jsonl", tmp_path / "y" / "pairs.jsonl"]
    for p in (inside, *elsewhere):
        write_jsonl(p, [])
    paths = [str(inside), *map(str, elsewhere), "gs://bucket/c.jsonl", "org/dataset"]
    names = input_names(paths, root=str(tmp_path / "root"))
    assert names == {
        str(inside): "data/a.jsonl",
        str(elsewhere[0]): "x/pairs.jsonl",
        str(elsewhere[1]): "y/pairs.jsonl",
        "gs://bucket/c.jsonl": "gs://bucket/c.jsonl",
        "org/dataset": "org/dataset",
    }
    assert input_names(paths, show_paths=True) == {p: p for p in paths}


def test_the_shipped_teacher_is_named_by_its_hub_id(tmp_path):
    from kalm_data.embed.teacher import default_teacher

    assert teacher_name(default_teacher()) == DEFAULT_TEACHER_ID
    assert teacher_name(str(tmp_path)) == tmp_path.name
    assert teacher_name("BAAI/bge-m3") == "BAAI/bge-m3"


def test_redact_removes_secret_values_and_secret_keys_only(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-abcdef123456")
    got = redact(
        {
            "settings": {"api_key": "x", "llm": "url?key=sk-abcdef123456"},
            "counts": {"over_teacher_token_limit": 3},
        }
    )
    assert got == {
        "settings": {"api_key": "***", "llm": "url?key=***"},
        "counts": {"over_teacher_token_limit": 3},
    }


def test_a_run_records_no_local_path_and_no_secret(tmp_path, monkeypatch):
    """Rows, rejected rows, the manifest and the dataset card of a run with a token set."""
    secret = "hf_SECRETtoken0123456789"
    monkeypatch.setenv("HF_TOKEN", secret)
    src = write_jsonl(tmp_path / "inputs" / "pairs.jsonl", load_pairs(40, source="disfl"))
    out = tmp_path / "out"
    assert (
        main(
            [
                "curate",
                "--input",
                str(src),
                "--output",
                str(out),
                "--cache-dir",
                str(tmp_path / "c"),
            ]
            + ["--window-start", "2", "--window-end", "12", "--filter-k", "5"]
            + ["--config", str(write_jsonl(tmp_path / "cfg.yaml", []))]
            + ["--direct_num_workers", "1"]
        )
        == 0
    )
    published = [(out / "manifest.json").read_text(), (out / "README.md").read_text()]
    for part in [*out.glob("data/*/*.parquet"), *out.glob("rejected/*/*.parquet")]:
        published.append(json.dumps(pq.read_table(part).to_pylist(), default=str))
    text = "\n".join(published)
    assert str(tmp_path) not in text and "site-packages" not in text and secret not in text
    manifest = json.loads(published[0])
    assert manifest["inputs"][0]["path"] == "pairs.jsonl"
    assert manifest["teacher"]["teacher"] == DEFAULT_TEACHER_ID
