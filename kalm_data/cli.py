"""The ``kalm-data`` command. Parsing is import-light so ``kalm-data --help`` answers instantly.

kalm-data curate --input pairs.jsonl.gz --output out/
kalm-data train --data out/ --model Qwen/Qwen2-0.5B --output model/
kalm-data eval --model model/ --beir scifact/
"""

from __future__ import annotations

import argparse
import logging
import sys


def _build_parser() -> argparse.ArgumentParser:
    from kalm_data import __version__
    from kalm_data.curate_cli import register as register_curate
    from kalm_data.train.cli import register as register_train

    parser = argparse.ArgumentParser(
        prog="kalm-data",
        description="Build training data for text-embedding models the KaLM way, and train on it.",
    )
    parser.add_argument("--version", action="version", version=f"kalm-data {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    register_curate(sub)
    register_train(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    parser = _build_parser()
    args, beam_args = parser.parse_known_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if beam_args and not getattr(args, "accepts_beam_args", False):
        parser.error(f"unrecognized arguments: {' '.join(beam_args)}")
    return int(args.func(args, beam_args) or 0)


if __name__ == "__main__":
    sys.exit(main())
