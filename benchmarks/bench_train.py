"""Training throughput: kalm-data's loop vs SentenceTransformerTrainer, in one run.

    python benchmarks/bench_train.py                                # MiniLM, 30 steps of 32
    python benchmarks/bench_train.py --tiny-qwen --steps 4 --batch-size 8   # a quick look
    python benchmarks/bench_train.py --data curated/ --model Qwen/Qwen2-0.5B --bf16

Same model, same data (a curated folder, or by default three tasks of ../shared/data/qa_pairs_en
with other rows' positives as hard negatives), same batch size, max length, number of steps,
learning rate, temperature (scale 20 = tau 0.05), no-duplicate batches. Contenders:

- ours, plain          vs ST ``MultipleNegativesRankingLoss``
- ours, ``--cached``   vs ST ``CachedMultipleNegativesRankingLoss`` (same mini-batch size)

Throughput is examples/s between the end of step 1 and the end of the last step (model loading
and the first, warm-up step excluded). Prints each and the ratio ours / ST (> 1: ours faster).
Needs ``accelerate`` for the ST trainer (``pip install accelerate``).
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import tempfile
import time
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
PAIRS = SHARED / "qa_pairs_en" / "pairs.jsonl.gz"
TASKS = ("medquad/2_GARD_QA", "medquad/3_GHR_QA", "disfl-qa/train")


def default_shards(folder: Path, rows_per_task: int, negatives: int) -> str:
    """qa_pairs_en as task shards; negatives = positives of rows 1, 2, ... further on."""
    from kalm_data.arrow_schema import to_table
    from kalm_data.records import TrainingExample
    from kalm_data.writers.names import folder_name
    from kalm_data.writers.parquet import write_table

    by_task: dict[str, list[dict]] = {t: [] for t in TASKS}
    with gzip.open(PAIRS, "rt", encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            if row["source"] in by_task and len(by_task[row["source"]]) < rows_per_task:
                by_task[row["source"]].append(row)
    for task, pairs in by_task.items():
        examples = []
        for i, p in enumerate(pairs):
            others = [pairs[(i + k) % len(pairs)]["positive"] for k in range(1, negatives + 5)]
            negs = [t for t in dict.fromkeys(others) if t != p["positive"]][:negatives]
            examples.append(
                TrainingExample(
                    id=p["id"], task=task, task_type="retrieval", query=p["query"],
                    positives=[p["positive"]], negatives=negs, positive_scores=[1.0],
                    negative_scores=[0.0] * len(negs), negative_ranks=[-1] * len(negs),
                    positive_rank=0, teacher="none", source_file=str(PAIRS),
                    source_rows=[i], source_ids=[p["id"]],
                ).model_dump()
            )  # fmt: skip
        write_table(
            to_table(TrainingExample, examples), f"{folder}/data/{folder_name(task)}/part-0.parquet"
        )
    return str(folder)


def ours(cfg) -> float:
    """examples/s of kalm-data's loop (from its per-step log)."""
    from kalm_data.train.loop import train

    train(cfg)
    log = [json.loads(x) for x in Path(cfg.output, "train_log.jsonl").read_text().splitlines()]
    return (len(log) - 1) * cfg.batch_size / (log[-1]["seconds"] - log[0]["seconds"])


def st_dataset(cfg):
    """The same rows as columns anchor, positive, negative_1..n (rows short of n dropped)."""
    from datasets import Dataset

    from kalm_data.train.batch import format_query
    from kalm_data.train.data import load_rows

    rows = [r for r in load_rows(cfg.data) if len(r.negatives) >= cfg.num_negatives]
    columns = {
        "anchor": [format_query(r, cfg) for r in rows],
        "positive": [r.positives[0] for r in rows],
    }
    for j in range(cfg.num_negatives):
        columns[f"negative_{j + 1}"] = [r.negatives[j] for r in rows]
    return Dataset.from_dict(columns)


def sentence_transformers(cfg, cached: bool, output: str) -> float:
    """examples/s of SentenceTransformerTrainer with (Cached)MultipleNegativesRankingLoss."""
    from sentence_transformers import (
        SentenceTransformer,
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )
    from sentence_transformers.base.sampler import BatchSamplers
    from sentence_transformers.sentence_transformer import losses
    from transformers import TrainerCallback

    class Clock(TrainerCallback):
        def __init__(self):
            self.ends = []

        def on_step_end(self, args, state, control, **kwargs):
            self.ends.append(time.perf_counter())

    model = SentenceTransformer(cfg.model, device="cpu")
    model.max_seq_length = cfg.passage_max_len
    scale = 1.0 / cfg.temperature
    if cached:
        loss = losses.CachedMultipleNegativesRankingLoss(
            model, scale, mini_batch_size=cfg.mini_batch_size
        )
    else:
        loss = losses.MultipleNegativesRankingLoss(model, scale)
    args = SentenceTransformerTrainingArguments(
        output_dir=output,
        max_steps=cfg.max_steps,
        per_device_train_batch_size=cfg.batch_size,
        learning_rate=cfg.lr,
        warmup_steps=cfg.warmup_ratio,  # a float < 1 is a ratio in transformers 5
        max_grad_norm=cfg.grad_clip,
        weight_decay=cfg.weight_decay,
        batch_sampler=BatchSamplers.NO_DUPLICATES,
        save_strategy="no",
        report_to="none",
        logging_steps=max(1, cfg.max_steps),
        dataloader_drop_last=True,
        use_cpu=True,
        bf16=cfg.bf16,
        seed=cfg.seed,
    )
    clock = Clock()
    trainer = SentenceTransformerTrainer(
        model=model, args=args, train_dataset=st_dataset(cfg), loss=loss, callbacks=[clock]
    )
    trainer.train()
    return (len(clock.ends) - 1) * cfg.batch_size / (clock.ends[-1] - clock.ends[0])


def main(argv=None) -> None:
    import torch

    from kalm_data.train.config import TrainConfig
    from kalm_data.train.tiny import build_tiny_qwen

    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--data", help="curated folder (default: qa_pairs_en as shards)")
    p.add_argument("--model", help="model id/folder (default: the offline MiniLM)")
    p.add_argument("--tiny-qwen", action="store_true", help="a tiny random Qwen2 built here")
    p.add_argument("--rows-per-task", type=int, default=2000)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--num-negatives", type=int, default=1)
    p.add_argument("--max-len", type=int, default=128)
    p.add_argument("--mini-batch-size", type=int, default=16)
    p.add_argument("--bf16", action="store_true")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if args.threads:
        torch.set_num_threads(args.threads)

    tmp = Path(tempfile.mkdtemp(prefix="bench-train-"))
    data = args.data or default_shards(tmp / "shards", args.rows_per_task, args.num_negatives)
    if args.tiny_qwen:
        from kalm_data.train.data import load_rows

        texts = [t for r in load_rows([data])[:2000] for t in (r.query, r.positives[0])]
        model = build_tiny_qwen(tmp / "tiny-qwen", texts)
    else:
        from kalm_data.embed.teacher import default_teacher

        model = args.model or default_teacher()
    base = dict(
        data=[data], model=model, batch_size=args.batch_size, num_negatives=args.num_negatives,
        query_max_len=args.max_len, passage_max_len=args.max_len, max_steps=args.steps,
        lr=2e-5, temperature=0.05, matryoshka_dims=[], homogeneous_ratio=0.0, resume=False,
        mini_batch_size=args.mini_batch_size, bf16=args.bf16, log_every=10**9,
    )  # fmt: skip
    results = {}
    for name, cached in (("plain", False), ("cached", True)):
        cfg = TrainConfig(**base, cached=cached, output=str(tmp / f"ours-{name}"))
        results[f"ours {name}"] = ours(cfg)
        results[f"st {name}"] = sentence_transformers(cfg, cached, str(tmp / f"st-{name}"))
    print(f"\nmodel {model}\nbatch {args.batch_size} x (1 + {args.num_negatives}), {args.steps} "
          f"steps, max length {args.max_len}, {torch.get_num_threads()} threads")  # fmt: skip
    for name, value in results.items():
        print(f"{name:12s} {value:8.1f} examples/s")
    for name in ("plain", "cached"):
        print(f"ratio {name:6s} ours / st = {results[f'ours {name}'] / results[f'st {name}']:.2f}")


if __name__ == "__main__":
    main()
