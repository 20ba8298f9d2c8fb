"""``kalm-data card``: the dataset card of a real curate output, read back by ``datasets``.

The module fixture curates 150 MedQuAD and 150 Disfl-QA rows (two tasks) once, with the real
teacher on the DirectRunner, and writes the card; the other tests read that output. Small
synthetic outputs cover task names that are awkward as folders, globs and config names.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from kalm_data.card.cli import register
from kalm_data.card.command import curate_command, public_name
from kalm_data.card.front_matter import config_name, size_category
from kalm_data.card.language import detect_language, resolve_languages
from kalm_data.card.markdown import escape, truncate
from kalm_data.card.stats import _list_max, describe
from kalm_data.card.write import write_card
from kalm_data.errors import UsageError

from realdata import load_pairs, write_jsonl

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


# --- a real output -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def curated(tmp_path_factory):
    """(output folder, input paths): two tasks curated from real rows, card written."""
    from kalm_data.cli import main

    base = tmp_path_factory.mktemp("card")
    inputs = [
        write_jsonl(base / "inputs" / "medquad.jsonl", load_pairs(150, "medquad")),
        write_jsonl(base / "inputs" / "disfl.jsonl", load_pairs(150, "disfl")),
    ]
    out = base / "out"
    argv = ["curate", "--input", str(inputs[0]), "--input", str(inputs[1])]
    argv += ["--output", str(out), "--cache-dir", str(base / "cache")]
    argv += ["--window-start", "5", "--window-end", "30", "--filter-k", "10"]
    assert main([*argv, "--direct_num_workers", "1"]) == 0
    write_card(str(out))
    return out, inputs


def manifest(out) -> dict:
    return json.loads((out / "manifest.json").read_text())


def readme(out) -> str:
    return (out / "README.md").read_text(encoding="utf-8")


def front_matter(text: str) -> dict:
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n", 2)[1])


def parquet_rows(out, folder: str) -> int:
    return sum(pq.ParquetFile(p).metadata.num_rows for p in (out / "data" / folder).glob("*"))


def test_front_matter_has_one_config_per_task(curated):
    out, _ = curated
    meta, tasks = front_matter(readme(out)), manifest(out)["tasks"]
    assert [c["config_name"] for c in meta["configs"]] == list(tasks)
    for c in meta["configs"]:
        folder = tasks[c["config_name"]]["folder"]
        assert c["data_files"] == [{"split": "train", "path": f"data/{folder}/part-*.parquet"}]
    assert meta["license"] == "other"
    assert meta["language"] == ["en"]
    assert meta["task_categories"] == ["sentence-similarity", "feature-extraction"]
    assert meta["size_categories"] == ["n<1K"]
    assert "sentence-transformers" in meta["tags"]


def test_load_dataset_reads_every_task(curated, tmp_path):
    """The acceptance test: the Hub's loader reads each config with the shards' row count."""
    import datasets

    out, _ = curated
    tasks = manifest(out)["tasks"]
    for c in front_matter(readme(out))["configs"]:
        ds = datasets.load_dataset(
            str(out), c["config_name"], split="train", cache_dir=str(tmp_path / "hf")
        )
        folder = tasks[c["config_name"]]["folder"]
        assert ds.num_rows == parquet_rows(out, folder) == tasks[c["config_name"]]["examples"]
        assert set(ds.unique("task")) == {c["config_name"]}
        assert {"query", "positives", "negatives", "negative_scores"} <= set(ds.column_names)


def test_body_has_every_section_in_order(curated):
    text = readme(out := curated[0])
    headings = re.findall(r"^#{1,3} (.+)$", text, flags=re.M)
    expected = ["Loading", "Tasks", "How it was made", "Sources", "Funnel", "Timings"]
    expected += ["Mining counters", "Per-task statistics", *manifest(out)["tasks"], "Reproduce"]
    assert headings[1:] == expected
    assert text.count("#### Examples") == 2
    assert "--window-start 5" in text and "--filter-k 10" in text
    assert "--batch-size" not in text  # defaults are left out of the command
    assert "--teacher" not in text  # the default teacher, recorded by its hub id


def test_charts_are_real_pngs(curated):
    from matplotlib.image import imread

    out, _ = curated
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", readme(out))
    assert len(links) == 1 + 3 * len(manifest(out)["tasks"])
    assert sorted(p.name for p in (out / "card").iterdir()) == sorted(
        os.path.basename(link) for link in links
    )
    for link in links:
        path = out / link
        assert path.read_bytes()[:8] == PNG_MAGIC
        pixels = imread(path)
        assert pixels.shape[1] == 600 and pixels.shape[0] >= 350 and pixels.shape[2] in (3, 4)
        assert pixels[..., :3].std() > 0.01, f"{link} is blank"


def test_no_absolute_path_on_the_card(curated):
    out, inputs = curated
    text, m = readme(out), manifest(out)
    for path in [*map(str, inputs), str(out), str(out.parent / "cache")]:
        assert path not in text
    assert not re.search(r"(?<![\w.])/(tmp|home|root|work|usr)/", text)
    assert "`medquad.jsonl`" in text and m["inputs"][0]["fingerprint"][:12] in text


def test_funnel_numbers_match_the_manifest(curated):
    out, _ = curated
    counts = manifest(out)["counts"]
    funnel = readme(out).split("### Funnel", 1)[1].split("\n\n")[1]
    rows = {}
    for line in funnel.splitlines()[2:]:
        label, n, _share = (c.strip() for c in line.strip("|").split("|"))
        rows[label] = int(n.replace(",", ""))
    assert rows.pop("read") == counts["rows_read"]
    kept = [label for label in rows if label.startswith("kept")]
    assert rows.pop(kept[0]) == counts["rows_kept"]
    expected = {
        f"rejected at {stage}: `{reason}`": n
        for stage, by_reason in counts["rejected"].items()
        for reason, n in by_reason.items()
    }
    assert rows == expected and sum(expected.values()) == counts["rows_rejected"]


def test_hardness_table_matches_the_shards(curated):
    """The gap and the counts on the card are those of the rows in the shards."""
    out, _ = curated
    text = readme(out)
    for task, entry in manifest(out)["tasks"].items():
        rows = pq.read_table(out / "data" / entry["folder"]).to_pylist()
        gaps = [
            max(r["positive_scores"]) - max(r["negative_scores"]) for r in rows if r["negatives"]
        ]
        section = text.split(f"### {task}\n", 1)[1]
        count = section.split("| count |", 1)[1].split("\n", 1)[0]
        cells = [int(c.strip().replace(",", "")) for c in count.strip(" |").split("|")]
        negatives = sum(len(r["negative_scores"]) for r in rows)
        assert cells == [sum(len(r["positives"]) for r in rows), negatives, len(gaps), len(rows)]
        mean = section.split("| mean |", 1)[1].split("|")[2].strip()
        assert float(mean) == pytest.approx(np.mean(gaps), abs=5e-5)


def _tree(out) -> dict[str, str]:
    files = {}
    for path in sorted(out.rglob("*")):
        if path.is_file() and path.relative_to(out).parts[0] not in ("card", "README.md"):
            files[str(path.relative_to(out))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return files


def test_cli_writes_only_the_card(curated, tmp_path):
    """``card DIR --license --language``: the flags reach the card; nothing else changes; no
    temporary file is left; a chart of a task gone is removed."""
    out = tmp_path / "copy"
    shutil.copytree(curated[0], out)
    (out / "card" / "scores-gone.png").write_bytes(PNG_MAGIC)
    (out / "card" / "notes.txt").write_text("mine")
    before = _tree(out)
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["card", str(out), "--license", "cc-by-4.0", "--language", "zh"])
    assert args.func(args, []) == 0
    assert _tree(out) == before
    meta = front_matter(readme(out))
    assert meta["license"] == "cc-by-4.0" and meta["language"] == ["zh"]
    assert not (out / "card" / "scores-gone.png").exists()
    assert (out / "card" / "notes.txt").read_text() == "mine"
    assert not [p for p in out.rglob("*") if ".tmp-" in p.name]


def test_the_command_module_is_import_light():
    code = (
        "import sys, kalm_data.card.cli; "
        "print(sorted({'matplotlib', 'pyarrow', 'numpy', 'datasets'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_missing_manifest_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="no manifest.json: not a kalm-data output"):
        write_card(str(tmp_path))
    assert list(tmp_path.iterdir()) == []


# --- awkward task names (a synthetic output) -------------------------------------------------


def _synthetic_output(root, tasks: list[str], rows: int = 4) -> None:
    from kalm_data.arrow_schema import to_arrow_schema
    from kalm_data.records import TrainingExample
    from kalm_data.writers.names import folder_name

    entries = {}
    for task in tasks:
        folder = root / "data" / folder_name(task)
        folder.mkdir(parents=True)
        examples = [
            TrainingExample(
                id=f"{task}-{i}",
                task=task,
                task_type="retrieval",
                query=f"什么是第{i}个问题？",
                positives=[f"这是第{i}个答案。"],
                negatives=["无关的文本。"] * (i % 3),
                positive_scores=[0.8],
                negative_scores=[0.4 + 0.1 * j for j in range(i % 3)],
                negative_ranks=list(range(i % 3)),
                positive_rank=i % 2,
                teacher="/abs/teacher",
                source_file="/abs/input.jsonl",
                source_rows=[i],
                source_ids=[str(i)],
            ).model_dump()
            for i in range(rows)
        ]
        table = pa.Table.from_pylist(examples, schema=to_arrow_schema(TrainingExample))
        pq.write_table(table, folder / "part-00000-of-00001.parquet")
        entries[task] = {"folder": folder_name(task), "examples": rows, "rows": rows}
    total = rows * len(tasks)
    counts = {"rows_read": total, "rows_kept": total, "rows_rejected": 0, "balanced": True}
    # The manifest of a version that recorded local paths (before kalm_data.published).
    inputs = [
        {"path": f"/abs/in/{i}.jsonl", "task": t, "fingerprint": "ab" * 32}
        for i, t in enumerate(tasks)
    ]
    m = {
        "kalm_data_version": "0",
        "counts": {**counts, "rejected": {}},
        "tasks": entries,
        "inputs": inputs,
        "settings": {
            "inputs": [{"path": e["path"], "task": e["task"], "columns": {}} for e in inputs],
            "output": "/abs/out",
            "cache_dir": "/abs/cache",
            "teacher": None,
        },
        "teacher": {"teacher": "/abs/venv/model", "fingerprint": "0123"},
    }
    (root / "manifest.json").write_text(json.dumps(m))


def test_awkward_task_names_load_as_configs(tmp_path):
    import datasets

    tasks = ["a:b [x]", "100%", "with space", "问答"]
    _synthetic_output(tmp_path / "out", tasks)
    write_card(str(tmp_path / "out"))
    meta = front_matter(readme(tmp_path / "out"))
    names = [c["config_name"] for c in meta["configs"]]
    assert names == ["a%3Ab [x]", "100%", "with space", "问答"]
    assert meta["language"] == ["zh"]
    for name in names:
        ds = datasets.load_dataset(
            str(tmp_path / "out"), name, split="train", cache_dir=str(tmp_path / "hf")
        )
        assert ds.num_rows == 4
    assert "/abs/" not in readme(tmp_path / "out")


# --- pure helpers ----------------------------------------------------------------------------


def test_language_guess_by_script():
    assert detect_language(["What is the dose of aspirin?"]) == "en"
    assert detect_language(["阿司匹林的剂量是多少？"]) == "zh"
    assert detect_language(["アスピリンの用量はどれくらいですか"]) == "ja"
    assert detect_language(["아스피린 복용량은 얼마입니까?"]) == "ko"
    assert detect_language(["12345 ???"]) == "en"
    detected = {"a": "en", "b": "zh"}
    assert resolve_languages(detected, ["fr"]) == {"a": "fr", "b": "fr"}
    assert resolve_languages(detected, ["b=ja"]) == {"a": "en", "b": "ja"}
    with pytest.raises(UsageError, match="no task 'c'"):
        resolve_languages(detected, ["c=en"])


def test_size_categories_and_config_names():
    assert [size_category(n) for n in (0, 999, 1000, 99_999, 100_000, 10**13)] == [
        "n<1K",
        "n<1K",
        "1K<n<10K",
        "10K<n<100K",
        "100K<n<1M",
        "n>1T",
    ]
    assert config_name("faq", "faq") == "faq"
    assert config_name("a/b", "a%2Fb") == "a%2Fb"


def test_escape_keeps_data_from_becoming_markup():
    text = "a | b <script>x</script> [link](http://x) **bold** `code`\n\nnew"
    out = escape(text)
    assert "\n" not in out and "<script>" not in out and "\\|" in out
    assert "\\[link\\](http://x)" in out and "\\*\\*bold\\*\\*" in out
    long = "word " * 100
    assert len(truncate(long, 200)) <= 200 and truncate(long, 200).endswith("…")
    assert truncate("short", 200) == "short"


def test_reproduce_command_names_files_and_changed_settings():
    assert public_name("/home/me/data/pairs.jsonl.gz") == "pairs.jsonl.gz"
    assert public_name("gs://bucket/dir/x.parquet") == "x.parquet"
    assert public_name("../up/x.jsonl") == "x.jsonl"
    assert public_name("data/x.jsonl") == "data/x.jsonl"  # relative: as the manifest records it
    assert public_name("sentence-transformers/natural-questions") == (
        "sentence-transformers/natural-questions"
    )
    settings = {
        "inputs": [
            {"path": "/abs/a.jsonl", "task": None, "columns": {}},
            {"path": "/abs/b.jsonl", "task": "bee", "columns": {"query": "q"}},
        ],
        "output": "/abs/out",
        "cache_dir": "/abs/cache",
        "teacher": "/abs/models/my-teacher",
        "filter_k": 50,  # the default
        "filter_rule": "kalm",
    }
    command = curate_command(settings, tasks=["a", "bee"])
    assert "/abs" not in command
    assert command.splitlines() == [
        "kalm-data curate \\",
        "  --input a.jsonl --task a \\",
        "  --input b.jsonl --task bee \\",
        "  --map query=q \\",
        "  --output OUT \\",
        "  --teacher my-teacher \\",
        "  --filter-rule kalm",
    ]
    plain = {"inputs": [{"path": "/x/a.jsonl"}, {"path": "/x/b.jsonl"}]}
    assert curate_command(plain).splitlines()[1:3] == [
        "  --input a.jsonl \\",
        "  --input b.jsonl \\",
    ]


def test_describe_and_list_max():
    d = describe(np.array([1.0, 2.0, 3.0, 4.0]))
    assert d["count"] == 4 and d["mean"] == 2.5 and d["50%"] == 2.5
    assert d["std"] == pytest.approx(np.std([1, 2, 3, 4], ddof=1))
    assert describe(np.array([]))["mean"] is None
    lists = pa.array([[0.1, 0.5], [], [0.3], [0.2, 0.9, 0.4]], type=pa.list_(pa.float32()))
    best = _list_max(lists.slice(0))
    assert np.isnan(best[1])
    np.testing.assert_allclose(best[[0, 2, 3]], [0.5, 0.3, 0.9], rtol=1e-6)
    np.testing.assert_allclose(_list_max(lists.slice(2)), [0.3, 0.9], rtol=1e-6)
