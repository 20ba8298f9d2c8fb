"""A run on real data shows progress and the funnel on the console; library and Beam worker
logs go to OUTPUT/logs/."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize("layout", [[], ["--no-low-memory"]], ids=["default", "processes"])
def test_console_shows_progress_and_funnel_and_logs_go_to_the_output(tmp_path, layout):
    """The README's first command, ``kalm-data curate --output out/``, on the shipped sample:
    in the default layout (one in-process worker) and with a worker process per core, whose
    own logs must reach the log file too."""
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "kalm_data.cli", "curate"]
        + ["--output", str(out), "--cache-dir", str(tmp_path / "cache"), *layout],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    console = (proc.stdout + proc.stderr).splitlines()
    assert len(console) < 30, console
    assert not [line for line in console if "apache_beam" in line or "Worker:" in line]
    assert any(line.startswith("[") and "read 1,000" in line for line in console)  # progress
    assert any(line.startswith("kept") for line in console)  # the funnel
    logs = list((out / "logs").glob("curate-*.log"))
    assert len(logs) == 1
    text = logs[0].read_text()
    if layout:
        assert "apache_beam" in text and "sdk_worker" in text  # the workers' own logs
        assert "Worker: severity" not in text  # not relayed a second time
    else:
        assert "one in-process worker: --low-memory" in text
        assert "teacher process" in text and "started" in text
