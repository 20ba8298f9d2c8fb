"""``kalm-data curate``: command-line flags for every ``CurateConfig`` setting.

Flags are generated from the config model, so the command line, the YAML file and the docs
never disagree. Unknown flags go to Beam (``--runner``, ``--direct_num_workers`` ...).
"""

from __future__ import annotations

import argparse
import logging

from kalm_data.config import CurateConfig, InputSpec
from kalm_data.settings import add_model_flags

_SKIP = {"inputs", "corpus", "output"}


def _parse_map(text: str) -> dict[str, str]:
    """``query=question,positive=answer`` -> {"query": "question", "positive": "answer"}."""
    out = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        field, sep, column = part.partition("=")
        if not sep or not field or not column:
            raise argparse.ArgumentTypeError(
                f"--map wants FIELD=COLUMN[,FIELD=COLUMN], got {part!r}"
            )
        out[field.strip()] = column.strip()
    return out


def register(sub) -> None:
    """Add the ``curate`` subcommand to ``sub`` (an argparse subparsers object)."""
    p = sub.add_parser(
        "curate",
        help="mine hard negatives, filter, and write task-sharded Parquet",
        description="Curate (query, positive) pairs into mined, filtered, task-sharded Parquet. "
        "Unrecognised flags are Beam pipeline options (--runner, --direct_num_workers, ...).",
    )
    p.add_argument(
        "--input",
        action="append",
        default=[],
        metavar="PATH",
        help="JSONL(.gz), Parquet, CSV/TSV, a saved dataset folder or a hub id; repeatable",
    )
    p.add_argument("--output", metavar="DIR", help="output folder (local or any fsspec URL)")
    p.add_argument("--config", metavar="FILE.yaml", help="settings file; flags override it")
    p.add_argument("--task", help="task name for the inputs given here (default: file stem)")
    p.add_argument(
        "--map",
        type=_parse_map,
        default={},
        metavar="FIELD=COLUMN,...",
        help="column mapping, e.g. query=question,positive=answer,task=source",
    )
    p.add_argument(
        "--corpus",
        action="append",
        default=[],
        metavar="PATH",
        help="candidate pool for mining (column 'text'); repeatable",
    )
    add_model_flags(p, CurateConfig, _SKIP)
    p.set_defaults(func=_run, accepts_beam_args=True)


def config_from_args(args: argparse.Namespace, beam_args: list[str]) -> CurateConfig:
    """The validated config: defaults < --config file < flags."""
    from kalm_data.config import load_config

    overrides = {n: getattr(args, n) for n in CurateConfig.model_fields if n not in _SKIP}
    if args.input:
        overrides["inputs"] = [
            InputSpec(path=x, task=args.task, columns=args.map) for x in args.input
        ]
    if args.corpus:
        overrides["corpus"] = [InputSpec(path=x) for x in args.corpus]
    overrides["output"] = args.output
    return load_config(args.config, overrides)


def _run(args: argparse.Namespace, beam_args: list[str]) -> int:
    from kalm_data.curate import run
    from kalm_data.writers.manifest import format_funnel

    cfg = config_from_args(args, beam_args)
    if not cfg.inputs:
        from kalm_data.samples import sample_inputs

        logging.getLogger(__name__).info("no --input: curating the shipped CC BY 4.0 sample")
        cfg = cfg.model_copy(update={"inputs": [InputSpec(path=x) for x in sample_inputs()]})
    if not cfg.output:
        raise SystemExit("kalm-data curate: --output DIR is required")
    manifest = run(cfg, beam_args)
    print(format_funnel(manifest))
    print(f"wrote {cfg.output} (manifest.json, data/, rejected/)")
    return 0 if manifest["counts"]["balanced"] else 1
