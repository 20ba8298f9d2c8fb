"""``kalm-data curate``: command-line flags for every ``CurateConfig`` setting.

Flags are generated from the config model, so the command line, the YAML file and the docs
never disagree. Flags that are not ours must be Beam pipeline options (``--runner``,
``--direct_num_workers`` ...); anything else is an error with a "did you mean" suggestion.

``--task`` and ``--map`` belong to the ``--input`` flags just before them:
``--input a --task x --input b --task y`` gives ``a`` task ``x`` and ``b`` task ``y``;
``--input a --input b --map query=q`` maps both. Given before any ``--input``, they belong to
the first group of inputs.
"""

from __future__ import annotations

import argparse
import contextlib
import logging

from kalm_data.curate.config import CurateConfig
from kalm_data.errors import UsageError
from kalm_data.inputs import InputSpec
from kalm_data.settings import add_model_flags, add_run_flags

_SKIP = {"inputs", "corpus", "output", "decontaminate"}


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


class _InOrder(argparse.Action):
    """Records ``--input``/``--task``/``--map`` in command-line order (``args.input_flags``)."""

    def __call__(self, parser, namespace, values, option_string=None):
        flags = list(getattr(namespace, "input_flags", None) or [])
        flags.append((self.dest, values))
        namespace.input_flags = flags


def input_groups(flags: list[tuple[str, object]]) -> list[InputSpec]:
    """The ``InputSpec`` of each ``--input``, with the ``--task``/``--map`` of its group."""
    groups: list[dict] = []
    for kind, value in flags:
        if kind == "input":
            if not groups or (groups[-1]["closed"] and groups[-1]["paths"]):
                groups.append({"paths": [], "task": None, "map": None, "closed": False})
            groups[-1]["paths"].append(value)
            continue
        if not groups:
            groups.append({"paths": [], "task": None, "map": None, "closed": False})
        group = groups[-1]
        if group[kind] is not None:
            where = ", ".join(group["paths"]) or "the first inputs"
            raise UsageError(f"two --{kind} flags for --input {where}")
        group[kind], group["closed"] = value, True
    return [
        InputSpec(path=path, task=g["task"], columns=g["map"] or {})
        for g in groups
        for path in g["paths"]
    ]


def register(sub) -> None:
    """Add the ``curate`` subcommand to ``sub`` (an argparse subparsers object)."""
    from kalm_data.beam_options import beam_help_epilog

    p = sub.add_parser(
        "curate",
        help="mine hard negatives, filter, and write task-sharded Parquet",
        description="Curate (query, positive) pairs into mined, filtered, task-sharded Parquet.",
        epilog=beam_help_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    p.add_argument(
        "--input",
        action=_InOrder,
        metavar="PATH",
        help="JSONL(.gz), Parquet, CSV/TSV, a saved dataset folder or a hub id; repeatable",
    )
    add_run_flags(p)
    p.add_argument(
        "--task",
        action=_InOrder,
        help="task name of the --input(s) just before it (default: each file's stem)",
    )
    p.add_argument(
        "--map",
        action=_InOrder,
        type=_parse_map,
        metavar="FIELD=COLUMN,...",
        help="column mapping of the --input(s) just before it, e.g. "
        "query=question,positive=answer,task=source",
    )
    p.add_argument(
        "--corpus",
        action="append",
        default=[],
        metavar="PATH",
        help="candidate pool for mining (column 'text'); repeatable",
    )
    p.add_argument(
        "--decontaminate",
        action="extend",
        nargs="+",
        metavar="PATH_OR_ID",
        help="evaluation set(s) to keep out of the training data: a BEIR folder (queries.jsonl, "
        "corpus.jsonl), a JSONL of `text`, a saved dataset folder or a datasets id; "
        "repeatable",
    )
    add_model_flags(p, CurateConfig, _SKIP)
    p.set_defaults(func=_run, accepts_beam_args=True, input_flags=[], parser=p)


def own_flags(parser: argparse.ArgumentParser) -> list[str]:
    """Every option string of ``parser`` (for "did you mean" suggestions)."""
    return [s for action in parser._actions for s in action.option_strings]


def config_from_args(args: argparse.Namespace, beam_args: list[str]) -> CurateConfig:
    """The validated config: defaults < --config file < flags."""
    from kalm_data.curate.config import load_config

    overrides = {n: getattr(args, n) for n in CurateConfig.model_fields if n not in _SKIP}
    inputs = input_groups(args.input_flags)
    if inputs:
        overrides["inputs"] = inputs
    if args.corpus:
        overrides["corpus"] = [InputSpec(path=x) for x in args.corpus]
    if args.decontaminate:
        overrides["decontaminate"] = args.decontaminate
    overrides["output"] = args.output
    return load_config(args.config, overrides)


@contextlib.contextmanager
def quiet_beam_imports():
    """Logging off while Beam loads: its imports announce optional GCP clients ("apitools not
    found", "bigquery_storage_v1") that a local run does not use."""
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(logging.NOTSET)


def prepare(args: argparse.Namespace, beam_args: list[str]) -> CurateConfig:
    """The run's config from parsed flags; ``UsageError`` for unknown flags or no output."""
    with quiet_beam_imports():
        import apache_beam  # noqa: F401

        from kalm_data.beam_options import check_beam_args

        try:
            check_beam_args(beam_args, own_flags(args.parser))
        except ValueError as e:
            raise UsageError(str(e)) from e
        import kalm_data.curate.pipeline  # noqa: F401  (the pipeline's modules: Beam's IO, loaded now)
    cfg = config_from_args(args, beam_args)
    if not cfg.inputs:
        from kalm_data.samples import sample_inputs

        logging.getLogger(__name__).info("no --input: curating the shipped CC BY 4.0 sample")
        cfg = cfg.model_copy(update={"inputs": [InputSpec(path=x) for x in sample_inputs()]})
    if not cfg.output:
        raise UsageError("--output DIR is required")
    return cfg


def parse(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    """``kalm-data curate`` flags -> (parsed flags, Beam pipeline options)."""
    from kalm_data.cli import _build_parser

    return _build_parser().parse_known_args(["curate", *argv])


def _run(args: argparse.Namespace, beam_args: list[str]) -> int:
    cfg = prepare(args, beam_args)
    from kalm_data.curate.pipeline import run
    from kalm_data.writers.manifest import format_funnel

    manifest = run(cfg, beam_args, overwrite=args.overwrite, verbose=args.verbose)
    print(format_funnel(manifest))
    if not manifest["counts"]["balanced"]:
        return 1
    print(f"wrote {cfg.output} (manifest.json, data/, rejected/)")
    write_card(cfg.output)
    return 0


def write_card(output: str) -> None:
    """The dataset card of a finished run (``kalm-data card``); a failure only warns: the data
    is committed either way, and ``kalm-data card OUTPUT`` can be rerun."""
    from kalm_data.card.write import write_card
    from kalm_data.errors import KalmDataError

    try:
        print(f"card: {write_card(output)}")
    except (KalmDataError, OSError, ValueError) as e:
        logging.getLogger(__name__).warning("no dataset card written: %s", e)
