"""``kalm-data export``: flags only; the export runs in ``kalm_data.export.run``.

kalm-data export curated/ --to sentence-transformers --output st/ [--num-negatives 3]
kalm-data export curated/ --to flagembedding --output fe/
kalm-data export curated/ --to kalm --output kalm/ --overwrite
"""

from __future__ import annotations

import argparse

#: The ``--to`` names (``kalm_data.export.run.TARGETS`` holds the targets themselves).
TARGET_NAMES = ("sentence-transformers", "flagembedding", "kalm")


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative")
    return value


def register(sub) -> None:
    """Add the ``export`` subcommand to ``sub`` (argparse subparsers)."""
    p = sub.add_parser(
        "export",
        help="write curated task shards in another trainer's format",
        description="Write DIR/data/<task>/part-*.parquet (a kalm-data curate output) as "
        "training data for sentence-transformers, FlagEmbedding or KaLM-Embedding, one file "
        "per task, with OUT/export.json recording what was written and dropped. DIR is only "
        "read.",
    )
    p.add_argument("dir", metavar="DIR", help="curated folder (with manifest.json)")
    p.add_argument("--to", required=True, choices=TARGET_NAMES, dest="target", help="format")
    p.add_argument("--output", required=True, metavar="OUT", help="output folder (empty or new)")
    p.add_argument(
        "--num-negatives",
        type=_count,
        metavar="N",
        help="hard negatives per example (first N kept). sentence-transformers: rows with fewer "
        "are dropped (default: the task's fewest); others: a cap (default: all)",
    )
    p.add_argument(
        "--format",
        choices=("parquet", "jsonl"),
        dest="file_format",
        help="task file format for sentence-transformers (default parquet); the others are JSONL",
    )
    p.add_argument(
        "--overwrite", action="store_true", help="replace an earlier export's files in OUT"
    )
    p.set_defaults(func=_run)


def summary_lines(record: dict) -> list[str]:
    """The export record as a few lines for the console."""
    c = record["counts"]
    lines = [
        f"exported {c['examples']} examples of {len(record['tasks'])} task(s) as "
        f"{record['format']} ({record['file_format']}): {c['rows']} rows "
        f"({c['rows_added']} added by multi-positive splits); dropped: {c['dropped'] or 'none'}"
    ]
    for task, t in record["tasks"].items():
        extra = f", {t['negatives']} negatives" if "negatives" in t else ""
        lines.append(f"  {task}: {t['rows']} rows in {t['path']}{extra}; dropped {t['dropped']}")
        by_negatives = t.get("examples_by_negatives") or {}
        if "negatives" in t and max(map(int, by_negatives), default=0) > t["negatives"]:
            lines.append(
                f"    examples by negatives {by_negatives}: --num-negatives N keeps N "
                "negatives per row and drops the examples with fewer"
            )
    for task, t in record.get("empty_tasks", {}).items():
        lines.append(f"  {task}: no row (dropped {t['dropped']})")
    lines.append(f"load: {record['load']}")
    return lines


def _run(args: argparse.Namespace, beam_args: list[str]) -> int:
    from kalm_data.export.run import run_export

    record = run_export(
        args.dir,
        args.output,
        args.target,
        num_negatives=args.num_negatives,
        file_format=args.file_format,
        overwrite=args.overwrite,
    )
    for line in summary_lines(record):
        print(line)
    tops = sorted({f.split("/")[0] + ("/" if "/" in f else "") for f in record["files"]})
    print(f"wrote {args.output} ({', '.join(['export.json', *tops])})")
    return 0
