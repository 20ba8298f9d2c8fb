"""``kalm-data train`` output loads with SentenceTransformer; ``kalm-data eval`` agrees with ST."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from train_helpers import assert_close

from kalm_data.cli import main
from kalm_data.train.encoder import load_encoder
from kalm_data.train.evaluate import load_beir, read_qrels

from realdata import DATA

SCIFACT = DATA / "scifact"
QUERIES = ["What are the symptoms of glaucoma?", "who invented the telephone"]
DOCS = ["Glaucoma often has no symptoms until vision is lost.", "Bell patented the telephone."]


def test_cli_help_stays_import_light():
    code = (
        "import sys; from kalm_data.cli import _build_parser; p = _build_parser(); "
        "p.parse_args(['train', '--data', 'x', '--output', 'y']); "
        "p.parse_args(['eval', '--model', 'm', '--beir', 'b']); "
        "print(sorted({'torch', 'transformers', 'sentence_transformers'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_every_config_field_is_a_flag_and_flags_override_the_file(tmp_path):
    from kalm_data.cli import _build_parser
    from kalm_data.train.cli import config_from_args
    from kalm_data.train.config import TrainConfig

    (tmp_path / "t.yaml").write_text(
        "batch_size: 16\nlr: 0.001\nmatryoshka_dims: [64]\nmatryoshka_weights: [1.0]\n"
    )
    argv = [
        "train",
        "--config",
        str(tmp_path / "t.yaml"),
        "--data",
        "a",
        "--data",
        "b",
        "--output",
        "o",
        "--lr",
        "0.002",
        "--no-resume",
        "--soup-steps",
        "2",
        "4",
        "--save-every",
        "2",
        "--pooling",
        "lasttoken",
    ]
    args, _ = _build_parser().parse_known_args(argv)
    cfg = config_from_args(args)
    assert (cfg.batch_size, cfg.lr, cfg.resume, cfg.soup_steps) == (16, 0.002, False, [2, 4])
    assert cfg.data == ["a", "b"] and cfg.pooling == "lasttoken" and cfg.matryoshka_dims == [64]
    helptext = _build_parser()._subparsers._group_actions[0].choices["train"].format_help()
    docs = (Path(__file__).resolve().parents[2] / "docs" / "training.md").read_text()
    for name in TrainConfig.model_fields:
        assert "--" + name.replace("_", "-") in helptext
        assert f"| `{name}` |" in docs, f"docs/training.md misses the setting {name}"
    with pytest.raises(ValueError, match="matryoshka"):
        TrainConfig(matryoshka_dims=[64, 32], matryoshka_weights=[1.0])
    with pytest.raises(ValueError):
        TrainConfig(homogeneous_ratio=1.5)


@pytest.fixture(scope="module")
def trained(tiny_qwen, shards, tmp_path_factory) -> Path:
    """A 3-step run through the command line: last-token pooling, bidirectional attention."""
    out = tmp_path_factory.mktemp("trained")
    code = main(
        [
            "train",
            "--data",
            str(shards),
            "--model",
            tiny_qwen,
            "--output",
            str(out),
            "--max-steps",
            "3",
            "--batch-size",
            "4",
            "--num-negatives",
            "1",
            "--query-max-len",
            "24",
            "--passage-max-len",
            "40",
            "--pooling",
            "lasttoken",
            "--bidirectional",
            "--temperature",
            "0.05",
            "--lr",
            "1e-3",
            "--query-instruction",
            "Given a question, retrieve passages that answer it",
        ]
    )
    assert code == 0
    return out


def test_export_loads_with_sentence_transformer_and_encodes_like_training(trained):
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(trained), device="cpu")
    prompt = "Instruct: Given a question, retrieve passages that answer it\nQuery: "
    assert st.prompts["query"] == prompt
    assert st.prompts["disfl-qa/dev"] == "Instruct: disfl-qa/dev\nQuery: "
    assert json.loads((trained / "config.json").read_text())["is_causal"] is False
    ours = load_encoder(str(trained), pooling="lasttoken")  # the trained weights, our code
    assert ours.tokenizer("a")["input_ids"][-1] == ours.tokenizer.eos_token_id
    q = st.encode_query(QUERIES, convert_to_tensor=True)
    d = st.encode_document(DOCS, convert_to_tensor=True)
    assert q.shape == (2, 64) and torch.allclose(q.norm(dim=-1), torch.ones(2), atol=1e-5)
    assert_close(q, ours.encode([prompt + x for x in QUERIES], 24), name="queries")
    assert_close(d, ours.encode(DOCS, 40), name="documents")


def write_small_beir(folder: Path, n_queries: int = 60, extra_docs: int = 120) -> Path:
    """scifact test split cut to ``n_queries`` judged queries, their documents and others."""
    qrels = read_qrels(str(SCIFACT / "qrels" / "test.tsv"))
    qids = sorted(qrels)[:n_queries]
    judged = set().union(*(qrels[q] for q in qids))
    docs = [json.loads(x) for x in (SCIFACT / "corpus.jsonl").read_text().splitlines()]
    others = [d["_id"] for d in docs if d["_id"] not in judged]
    keep = judged | set(random.Random(0).sample(others, extra_docs))
    (folder / "qrels").mkdir(parents=True)
    with (folder / "corpus.jsonl").open("w") as f:
        f.writelines(json.dumps(d) + "\n" for d in docs if d["_id"] in keep)
    queries = (SCIFACT / "queries.jsonl").read_text().splitlines()
    (folder / "queries.jsonl").write_text("".join(x + "\n" for x in queries))
    rows = [f"{q}\t{d}\t1\n" for q in qids for d in sorted(qrels[q])]
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + "".join(rows))
    return folder


def test_eval_agrees_with_information_retrieval_evaluator(minilm, tmp_path, capsys):
    if not SCIFACT.exists():
        pytest.skip("scifact not found")
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.evaluation import (
        InformationRetrievalEvaluator,
    )

    beir_dir = write_small_beir(tmp_path / "beir")
    assert main(["eval", "--model", minilm, "--beir", str(beir_dir), "--batch-size", "32"]) == 0
    printed = dict(line.split(": ") for line in capsys.readouterr().out.strip().splitlines())
    beir = load_beir(str(beir_dir), "test")
    evaluator = InformationRetrievalEvaluator(
        beir.queries,
        beir.corpus,
        beir.qrels,
        name="scifact",
        batch_size=32,
        ndcg_at_k=[10],
        precision_recall_at_k=[100],
        mrr_at_k=[10],
        accuracy_at_k=[1],
        map_at_k=[100],
    )
    theirs = evaluator(SentenceTransformer(minilm, device="cpu"))
    assert float(printed["ndcg@10"]) == pytest.approx(theirs["scifact_cosine_ndcg@10"], abs=1e-4)
    assert float(printed["recall@100"]) == pytest.approx(
        theirs["scifact_cosine_recall@100"], abs=1e-4
    )
    assert theirs["scifact_cosine_ndcg@10"] > 0.3  # MiniLM retrieves scifact far above chance
