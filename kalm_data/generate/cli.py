"""``kalm-data generate``: flags for every ``GenerateConfig`` setting (generated from the model,
as for ``curate``); flags that are not ours must be Beam pipeline options."""

from __future__ import annotations

import argparse

from kalm_data.generate.config import GenerateConfig
from kalm_data.settings import add_model_flags, add_run_flags

_SKIP = {"personas", "output"}


def add_common(p: argparse.ArgumentParser) -> None:
    """``--personas``, ``--output``, ``--overwrite``, ``--config``."""
    p.add_argument(
        "--personas",
        action="append",
        metavar="PATH_OR_ID",
        help="persona source (JSONL/Parquet with a `persona` field, a datasets id, or `seed`); "
        "repeatable (default: seed)",
    )
    add_run_flags(p)


def register(sub) -> None:
    """Add the ``generate`` subcommand."""
    from kalm_data.beam_options import beam_help_epilog

    p = sub.add_parser(
        "generate",
        help="persona-guided synthetic pairs from an LLM (vLLM, OpenAI-compatible, transformers)",
        description="Generate training pairs: personas -> brainstormed tasks -> one JSON example "
        "per task, validated, task-sharded Parquet.",
        epilog=beam_help_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    add_common(p)
    add_model_flags(p, GenerateConfig, _SKIP)
    p.set_defaults(func=_run, accepts_beam_args=True, parser=p)


def config_from_args(args: argparse.Namespace, data: dict | None = None) -> GenerateConfig:
    """Defaults < --config file (or ``data`` read from it) < flags."""
    from kalm_data.settings import read_yaml

    data = read_yaml(args.config) if data is None else data
    overrides = {n: getattr(args, n) for n in GenerateConfig.model_fields if n not in _SKIP}
    data.update({k: v for k, v in overrides.items() if v is not None})
    if args.personas:
        data["personas"] = args.personas
    if args.output:
        data["output"] = args.output
    return GenerateConfig.model_validate(data)


def check_flags(args: argparse.Namespace, beam_args: list[str]) -> None:
    """Unknown flags are errors (with a suggestion); Beam options pass. Beam's import-time
    chatter about optional GCP clients is silenced."""
    from kalm_data.curate.cli import own_flags, quiet_beam_imports
    from kalm_data.errors import UsageError

    with quiet_beam_imports():
        import apache_beam  # noqa: F401

        from kalm_data.beam_options import check_beam_args

        try:
            check_beam_args(beam_args, own_flags(args.parser))
        except ValueError as e:
            raise UsageError(str(e)) from e
        import kalm_data.generate.pipeline  # noqa: F401  (Beam's ML modules, loaded now)


def _run(args: argparse.Namespace, beam_args: list[str]) -> int:
    check_flags(args, beam_args)
    cfg = config_from_args(args)
    from kalm_data.generate.pipeline import run
    from kalm_data.writers.manifest import format_funnel

    manifest = run(cfg, beam_args, overwrite=args.overwrite, verbose=args.verbose)
    print(format_funnel(manifest))
    if not manifest["counts"]["balanced"]:
        return 1
    llm = manifest.get("llm", {})
    paid = sum(s.get("requests", 0) - s.get("cached", 0) for s in llm.values())
    print(f"wrote {cfg.output} (manifest.json, data/, rejected/); {paid} LLM request(s) made")
    return 0
