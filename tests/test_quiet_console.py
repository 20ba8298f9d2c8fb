"""A run on real data shows progress and the funnel on the console; library and Beam worker
logs go to OUTPUT/logs/."""

from __future__ import annotations

import subprocess
import sys

from realdata import load_pairs, write_jsonl


def test_console_shows_progress_and_funnel_and_logs_go_to_the_output(tmp_path):
    src = write_jsonl(tmp_path / "pairs.jsonl", load_pairs(200, source="disfl"))
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "kalm_data.cli", "curate", "--input", str(src)]
        + ["--output", str(out), "--cache-dir", str(tmp_path / "cache")]
        + ["--window-start", "5", "--window-end", "30", "--filter-k", "10"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    console = (proc.stdout + proc.stderr).splitlines()
    assert len(console) < 30, console
    assert not [line for line in console if "apache_beam" in line or "Worker:" in line]
    assert any(line.startswith("[") and "read 200" in line for line in console)  # progress
    assert any(line.startswith("kept") for line in console)  # the funnel
    logs = list((out / "logs").glob("curate-*.log"))
    assert len(logs) == 1
    text = logs[0].read_text()
    assert "apache_beam" in text and "sdk_worker" in text  # the workers' own logs
    assert "Worker: severity" not in text  # not relayed a second time
