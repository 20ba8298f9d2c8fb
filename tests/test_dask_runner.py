"""``kalm_data.beam.dask_runner.DaskRunner`` on a real 2-worker ``dask.distributed``
LocalCluster: side inputs of every view kind give what the DirectRunner gives, and the
transforms upstream of a side input run once per element (Beam's own Dask runner runs them
again inside every bundle that reads the side input)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from kalm_data.harness.run import DASK_RUNNER

pytest.importorskip("dask.distributed")


def _touch(x: int, folder: str) -> int:
    """Record one execution of the upstream step for ``x`` (workers are other processes)."""
    with open(os.path.join(folder, f"{x}-{os.getpid()}-{os.urandom(4).hex()}"), "w"):
        pass
    return x


def _joined(x, total, evens, by_key, everything):
    return json.dumps([x, total, sorted(evens), by_key[x % 3], sum(everything)])


def _write(line: str, folder: str) -> None:
    with open(os.path.join(folder, f"{os.urandom(8).hex()}.out"), "w") as f:
        f.write(line)


def _run(args: list[str], touched: Path, out: Path) -> None:
    with beam.Pipeline(options=PipelineOptions(args)) as p:
        src = p | beam.Create(range(300)) | "Touch" >> beam.Map(_touch, str(touched))
        total = src | "Total" >> beam.combiners.Count.Globally()
        evens = src | "Evens" >> beam.Filter(lambda x: x % 2 == 0)
        by_key = src | "ByKey" >> beam.Map(lambda x: (x % 3, x)) | beam.CombinePerKey(sum)
        joined = src | "Join" >> beam.Map(
            _joined,
            beam.pvalue.AsSingleton(total),
            beam.pvalue.AsList(evens),
            beam.pvalue.AsDict(by_key),
            beam.pvalue.AsIter(src),
        )
        joined | "Write" >> beam.Map(_write, str(out))


def _outputs(folder: Path) -> list[list]:
    return sorted(json.loads(f.read_text()) for f in folder.glob("*.out"))


@pytest.mark.slow
def test_side_inputs_are_computed_once_and_read_as_on_the_direct_runner(tmp_path):
    from dask.distributed import LocalCluster

    folders = {k: (tmp_path / f"{k}-touched", tmp_path / f"{k}-out") for k in ("direct", "dask")}
    for touched, out in folders.values():
        touched.mkdir()
        out.mkdir()
    _run(["--runner", "DirectRunner"], *folders["direct"])
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True) as cluster:
        address = ["--dask_client_address", cluster.scheduler_address]
        _run(["--runner", DASK_RUNNER, *address], *folders["dask"])
    expected = _outputs(folders["direct"][1])
    assert len(expected) == 300 and expected[0] == [0, 300, list(range(0, 300, 2)), 14850, 44850]
    assert _outputs(folders["dask"][1]) == expected
    # each of the 300 elements (3 bag partitions) through the upstream step once, though four
    # side inputs read it
    assert len(list(folders["dask"][0].iterdir())) == 300
