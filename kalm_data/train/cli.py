"""``kalm-data train`` and ``kalm-data eval``: flags only; torch is imported when a command runs.

    kalm-data train --data curated/ --model Qwen/Qwen2-0.5B --output model/ [--config train.yaml]
    kalm-data eval --model model/ --beir ../shared/data/scifact --split test

``train`` has one flag per ``TrainConfig`` field (generated from the model, so the flags, the
YAML file and docs/training.md cannot disagree); precedence: defaults < --config < flags.
"""

from __future__ import annotations

import argparse

from kalm_data.settings import add_model_flags
from kalm_data.train.config import TrainConfig

#: Fields with hand-written flags (the fixed interface of the command).
_OWN_FLAGS = {"data", "model", "output"}


def register(sub) -> None:
    """Add the ``train`` and ``eval`` subcommands to ``sub`` (argparse subparsers)."""
    p = sub.add_parser(
        "train",
        help="contrastive training on curated task shards (exports a SentenceTransformer)",
        description="Train an embedding model on DIR/data/<task>/part-*.parquet. "
        "Launch with torchrun for several processes (DDP).",
    )
    p.add_argument(
        "--data",
        action="append",
        default=None,
        metavar="DIR",
        help="curated folder (local or fsspec URL); repeatable",
    )
    p.add_argument("--model", default=None, metavar="PATH_OR_ID", help="HF model id or folder")
    p.add_argument("--output", default=None, metavar="DIR", help="output folder")
    p.add_argument("--config", metavar="FILE.yaml", help="settings file; flags override it")
    add_model_flags(p, TrainConfig, _OWN_FLAGS)
    p.set_defaults(func=_run_train)

    e = sub.add_parser(
        "eval",
        help="nDCG@10 and Recall@100 of a SentenceTransformer model on a BEIR folder",
        description="Evaluate a model folder (as written by `train`) or id on a BEIR-format "
        "folder: corpus.jsonl, queries.jsonl, qrels/<split>.tsv.",
    )
    e.add_argument("--model", required=True, metavar="DIR", help="SentenceTransformer folder/id")
    e.add_argument("--beir", required=True, metavar="PATH", help="BEIR-format folder")
    e.add_argument("--split", default="test", help="qrels split (default: test)")
    e.add_argument("--batch-size", type=int, default=64, help="encoding batch size (default: 64)")
    e.set_defaults(func=_run_eval)


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The validated config: defaults < --config file < flags."""
    from kalm_data.train.config import load_train_config

    overrides = {n: getattr(args, n, None) for n in TrainConfig.model_fields}
    if overrides.get("instruction_template"):
        # a shell passes "\n" as two characters; the template means a line break
        overrides["instruction_template"] = overrides["instruction_template"].replace("\\n", "\n")
    return load_train_config(args.config, overrides)


def _run_train(args: argparse.Namespace, beam_args: list[str]) -> int:
    from kalm_data.train.loop import train

    cfg = config_from_args(args)
    if not cfg.data or not cfg.output:
        raise SystemExit("kalm-data train: --data DIR and --output DIR are required")
    summary = train(cfg)
    if "output" in summary:
        print(f"trained {summary['steps']} steps; final loss {summary['loss']:.4f}")
        for name, value in summary.get("metrics", {}).items():
            print(f"{name}: {value:.4f}")
        print(f"wrote {summary['output']} (load with SentenceTransformer)")
    return 0


def _run_eval(args: argparse.Namespace, beam_args: list[str]) -> int:
    from kalm_data.train.evaluate import evaluate_sentence_transformer, load_beir

    beir = load_beir(args.beir, args.split)
    metrics = evaluate_sentence_transformer(args.model, beir, args.batch_size)
    for name, value in metrics.items():
        print(f"{name}: {value:.4f}")
    return 0
