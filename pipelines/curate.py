"""The curate pipeline as a Beam entry file, for any runner.

Local, in-process:
    python pipelines/curate.py --input pairs.jsonl.gz --output out/

Local, two worker processes:
    python pipelines/curate.py --input pairs.jsonl.gz --output out/ \
        --direct_num_workers 2 --direct_running_mode multi_processing

Dask (a local cluster here, any cluster in production):
    python pipelines/curate.py --input pairs.jsonl.gz --output out/ \
        --runner apache_beam.runners.dask.dask_runner.DaskRunner

Dataflow:
    python pipelines/curate.py --input gs://bucket/pairs.jsonl.gz --output gs://bucket/out/ \
        --cache-dir gs://bucket/cache --runner DataflowRunner --project P --region R \
        --temp_location gs://bucket/tmp --setup_file ./setup.py

Every ``kalm-data curate`` flag works here too; it is the same code path.
"""

from __future__ import annotations

import sys

from kalm_data.cli import main


def run(argv: list[str] | None = None) -> int:
    """Run ``curate`` with ``argv`` (curate flags and Beam options)."""
    return main(["curate", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(run())
