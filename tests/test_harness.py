"""Harness defaults: the local runner is named (Prism is never tried), one worker per core."""

from __future__ import annotations

import os

from kalm_data.harness.run import BEAM_DASK_RUNNER, DASK_RUNNER, LOCAL_RUNNER, default_beam_args


def test_no_runner_means_the_local_fn_api_runner_with_one_worker_per_core():
    args = default_beam_args([])
    assert f"--runner={LOCAL_RUNNER}" in args
    if (os.cpu_count() or 1) > 1:
        assert "--direct_running_mode=multi_processing" in args
        assert f"--direct_num_workers={os.cpu_count()}" in args


def test_worker_flags_and_other_runners_are_left_as_given():
    assert default_beam_args(["--direct_num_workers", "1"]) == [
        "--direct_num_workers",
        "1",
        f"--runner={LOCAL_RUNNER}",
    ]
    dataflow = ["--runner", "DataflowRunner", "--project", "p"]
    assert default_beam_args(dataflow) == dataflow


def test_beams_dask_runner_is_replaced_by_ours_in_either_spelling():
    """``kalm_data.beam.dask_runner.DaskRunner`` computes each side input once."""
    assert default_beam_args([f"--runner={BEAM_DASK_RUNNER}"]) == [f"--runner={DASK_RUNNER}"]
    given = ["--runner", "DaskRunner", "--dask_client_address", "tcp://h:1"]
    assert default_beam_args(given) == ["--runner", DASK_RUNNER, *given[2:]]


def test_light_work_runs_in_one_in_process_worker_unless_told_otherwise():
    args = default_beam_args([], light=True)
    assert args == [
        f"--runner={LOCAL_RUNNER}",
        "--direct_num_workers=1",
        "--direct_running_mode=in_memory",
    ]
    given = ["--direct_num_workers=2", "--direct_running_mode=multi_processing"]
    assert default_beam_args(given, light=True) == [*given, f"--runner={LOCAL_RUNNER}"]
    dask = ["--runner", DASK_RUNNER]
    assert default_beam_args(dask, light=True) == dask


def test_low_memory_takes_every_core_unless_threads_are_given_and_refuses_contradictions():
    import pytest

    from kalm_data.curate.config import load_config
    from kalm_data.curate.pipeline import low_memory_config
    from kalm_data.errors import UsageError

    cfg = load_config(None, {"output": "out", "low_memory": True})
    assert cfg.torch_threads == 1 and low_memory_config(cfg, []).torch_threads == 0
    given = load_config(None, {"output": "out", "low_memory": True, "torch_threads": 1})
    assert low_memory_config(given, ["--runner=DirectRunner"]).torch_threads == 1
    with pytest.raises(UsageError, match="drop --direct_num_workers"):
        low_memory_config(cfg, ["--direct_num_workers=2"])
    with pytest.raises(UsageError, match="not of --runner DataflowRunner"):
        low_memory_config(cfg, ["--runner", "DataflowRunner"])


def test_low_memory_is_the_local_default_unless_the_layout_or_runner_is_given():
    import pytest

    from kalm_data.curate.config import load_config
    from kalm_data.curate.pipeline import resolve_low_memory
    from kalm_data.errors import UsageError

    unset = load_config(None, {"output": "out"})
    assert unset.low_memory is None
    lean = resolve_low_memory(unset, [])
    assert lean.low_memory is True and lean.torch_threads == 0  # every core, in a child
    assert resolve_low_memory(unset, ["--runner=DirectRunner"]).low_memory is True
    two = ["--direct_num_workers=2", "--direct_running_mode=multi_processing"]
    assert resolve_low_memory(unset, two).low_memory is False
    assert resolve_low_memory(unset, two).torch_threads == 1
    dataflow = resolve_low_memory(unset, ["--runner", "DataflowRunner"])
    assert dataflow.low_memory is False and dataflow.torch_threads == 1
    off = load_config(None, {"output": "out", "low_memory": False})
    assert resolve_low_memory(off, []).low_memory is False  # --no-low-memory: process per core
    on = load_config(None, {"output": "out", "low_memory": True})
    with pytest.raises(UsageError, match="drop --direct_num_workers"):
        resolve_low_memory(on, two)  # asked for explicitly: a contradiction is an error
