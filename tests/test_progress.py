"""The live progress display: worker counts through files, summed and drawn in the main process."""

from __future__ import annotations

import io
import json

from kalm_data.harness import progress


def test_counts_of_every_worker_process_are_summed(tmp_path):
    root = str(tmp_path)
    progress.report(root, "read", rows=1000)
    progress.report(root, "validate", kept=990, rejected=10)
    progress.flush(root)
    # another worker process's file, as a worker on another host would write it
    other = {"counts": {"read.rows": 500}, "times": {"read": [0.0, 1.0]}}
    (tmp_path / "_progress" / "other-host-42.json").write_text(json.dumps(other))
    (tmp_path / "_progress" / "torn.json").write_text('{"read.rows": ')  # mid-replace: skipped
    assert progress.read_totals(root) == {
        "read.rows": 1500,
        "validate.kept": 990,
        "validate.rejected": 10,
    }


def test_status_line_shows_stages_rate_and_time_left():
    totals = {
        "read.rows": 23372,
        "validate.kept": 23360,
        "validate.rejected": 12,
        "merge.kept": 22994,
        "embed.planned": 45856,
        "embed.encoded": 10000,
        "embed.cached": 856,
    }
    line = progress.status_line(totals, 125.0, rate=100.0)
    assert line.startswith("[2m05s]  read 23,372  valid 23,360 (12 rejected)  unique 22,994")
    # (45,856 - 10,856) texts left at 100/s = 350 s
    assert "embed 10,856/45,856 (100/s, ~5m50s left)" in line


def test_non_interactive_display_prints_a_line_only_when_something_changed(tmp_path):
    root = str(tmp_path)
    out = io.StringIO()
    display = progress.ProgressDisplay(root, out, interactive=False, every=0.0)
    display.tick()  # nothing reported yet: nothing drawn
    progress.report(root, "read", rows=7)
    progress.flush(root)
    display.tick(force=True)
    display.tick(force=True)  # same counts: no second line
    display.close()
    lines = out.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].endswith("read 7")
    assert "\r" not in out.getvalue()


def test_interactive_display_redraws_one_line(tmp_path):
    root = str(tmp_path)
    out = io.StringIO()
    display = progress.ProgressDisplay(root, out, interactive=True)
    progress.report(root, "read", rows=3)
    progress.flush(root)
    display.tick(force=True)
    progress.report(root, "read", rows=3)
    progress.flush(root)
    display.close()
    text = out.getvalue()
    assert text.count("\r") == 2 and text.endswith("read 6\x1b[K\n")


def test_status_line_counts_mined_tasks_or_blocks():
    tasks = progress.status_line({"mine.tasks": 2, "mine.kept": 1500}, 1.0, rate=None)
    assert "mined 2 task(s): 1,500 kept" in tasks
    blocks = progress.status_line({"mine.blocks": 9, "mine.kept": 1500}, 1.0, rate=None)
    assert "mined 9 block(s): 1,500 kept" in blocks
