"""``kalm-data card``: write a Hugging Face dataset card for a curate output.

    kalm-data card out/ [--license cc-by-4.0] [--language en] [--name "My pairs"]

Writes ``out/README.md`` (YAML front matter with one config per task, so
``datasets.load_dataset("out/", TASK, split="train")`` works) and its charts in ``out/card/``.
Parsing is import-light; numpy, pyarrow and matplotlib load when the command runs.
"""

from __future__ import annotations

import argparse


def register(sub) -> None:
    """Add the ``card`` subcommand to ``sub`` (an argparse subparsers object)."""
    p = sub.add_parser(
        "card",
        help="write a Hugging Face dataset card (README.md and charts) for a curate output",
        description="Write DIR/README.md and DIR/card/*.png from DIR/manifest.json and the "
        "shards in DIR/data/. Nothing else in DIR is changed.",
    )
    p.add_argument("dir", metavar="DIR", help="a `kalm-data curate` output folder")
    p.add_argument(
        "--license",
        default=None,
        help="Hub license id, e.g. cc-by-4.0 (default: the manifest's, else 'other')",
    )
    p.add_argument(
        "--language",
        action="append",
        default=None,
        metavar="CODE|TASK=CODE",
        help="language of every task, or of one task; repeatable (default: guessed from the "
        "script: CJK -> zh, else en)",
    )
    p.add_argument("--name", default=None, help="the card's title (default: DIR's name)")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace, beam_args: list[str]) -> int:
    from kalm_data.card.write import write_card

    path = write_card(args.dir, args.license, args.language, args.name)
    print(f"wrote {path} and its charts in card/")
    return 0
