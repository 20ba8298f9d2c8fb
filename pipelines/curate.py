"""The curate pipeline as a Beam entry file, for any runner.

Local, in process (one worker):
    python pipelines/curate.py --input pairs.jsonl.gz --output out/ --direct_num_workers 1

Local, one worker process per core (the default):
    python pipelines/curate.py --input pairs.jsonl.gz --output out/ \\
        --direct_num_workers 2 --direct_running_mode multi_processing

Dask (a local cluster here, any cluster in production):
    python pipelines/curate.py --input pairs.jsonl.gz --output out/ \\
        --runner apache_beam.runners.dask.dask_runner.DaskRunner

Dataflow (install kalm-data[dataflow]; workers need the package, see docker/):
    python pipelines/curate.py --input gs://bucket/pairs.jsonl.gz --output gs://bucket/out/ \\
        --cache-dir gs://bucket/cache --runner DataflowRunner --project P --region R \\
        --temp_location gs://bucket/tmp

Every ``kalm-data curate`` flag works here; unknown flags are errors, Beam options pass through.
"""

from __future__ import annotations

import sys


def run(argv: list[str] | None = None, test_pipeline=None) -> dict:
    """Run curate with ``argv`` (curate flags and Beam options) and return the manifest.
    ``test_pipeline`` (a ``TestPipeline``) replaces the pipeline the options would make."""
    from kalm_data.curate.cli import parse, prepare
    from kalm_data.curate.pipeline import run as run_curate

    args, beam_args = parse(sys.argv[1:] if argv is None else argv)
    cfg = prepare(args, beam_args)
    return run_curate(cfg, beam_args, test_pipeline, overwrite=args.overwrite, verbose=args.verbose)


if __name__ == "__main__":
    from kalm_data.cli import main

    sys.exit(main(["curate", *sys.argv[1:]]))
