"""``kalm-data synthesize``: every ``generate`` flag and every ``curate`` setting flag in one
command. The settings both have (``--output``, ``--seed``, ``--rows-per-shard``,
``--show-paths``) are given once and apply to both halves."""

from __future__ import annotations

import argparse

from kalm_data.curate.config import CurateConfig
from kalm_data.generate.cli import add_common, check_flags
from kalm_data.generate.cli import config_from_args as generate_config
from kalm_data.generate.config import GenerateConfig
from kalm_data.settings import add_model_flags

SHARED = ("seed", "rows_per_shard", "show_paths")
_GENERATE_SKIP = {"personas", "output"}
_CURATE_SKIP = {"inputs", "corpus", "output", *SHARED}


def register(sub) -> None:
    """Add the ``synthesize`` subcommand."""
    from kalm_data.beam_options import beam_help_epilog

    p = sub.add_parser(
        "synthesize",
        help="generate pairs with an LLM and curate them (mining, filter) in one job",
        description="Generate persona-guided pairs and curate them (hard negatives, "
        "ranking-consistency filter) in one Beam job; writes training shards.",
        epilog=beam_help_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    add_common(p)
    add_model_flags(p, GenerateConfig, _GENERATE_SKIP)
    add_model_flags(p, CurateConfig, _CURATE_SKIP)
    p.set_defaults(func=_run, accepts_beam_args=True, parser=p)


def configs_from_args(args: argparse.Namespace) -> tuple[GenerateConfig, CurateConfig]:
    """(generate settings, curate settings): defaults < --config file < flags. In the YAML
    file, curate's settings go under a ``curate:`` mapping, generate's at the top level."""
    from kalm_data.settings import read_yaml

    data = read_yaml(args.config)
    curate_data = data.pop("curate", {}) or {}
    generate = generate_config(args, data)
    overrides = {n: getattr(args, n) for n in CurateConfig.model_fields if n not in _CURATE_SKIP}
    curate_data.update({k: v for k, v in overrides.items() if v is not None})
    curate_data.update({k: getattr(generate, k) for k in SHARED})
    curate_data["output"] = generate.output
    return generate, CurateConfig.model_validate(curate_data)


def _run(args: argparse.Namespace, beam_args: list[str]) -> int:
    check_flags(args, beam_args)
    generate, curate = configs_from_args(args)
    from kalm_data.synthesize.pipeline import run
    from kalm_data.writers.manifest import format_funnel

    manifest = run(generate, curate, beam_args, overwrite=args.overwrite, verbose=args.verbose)
    print(format_funnel(manifest))
    if not manifest["counts"]["balanced"]:
        return 1
    print(f"wrote {generate.output} (manifest.json, data/, rejected/)")
    from kalm_data.curate.cli import write_card

    write_card(generate.output)
    return 0
