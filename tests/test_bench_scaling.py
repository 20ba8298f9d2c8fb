"""The scaling benchmark's helpers: the real pair sets, the growth fits, the stage timeline and
the process-tree memory sampler (real child processes that allocate a known amount)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from realdata import DATA

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from bench_scaling import (  # noqa: E402
    Assumptions,
    TreeSampler,
    exponents,
    growth_exponent,
    marginal_exponent,
    markdown,
    phase_seconds,
    project,
    project_value,
)
from scaling_data import build_sets  # noqa: E402

MB = 1 << 20


@pytest.fixture(scope="module")
def sets():
    if not (DATA / "xquad" / "xquad.jsonl").exists():
        pytest.skip(f"real data not found at {DATA}")
    return build_sets([300, 1000, 3000], seed=0, data=DATA)


def test_sets_have_the_sizes_asked_for_and_distinct_rows(sets):
    for n, rows in sets.items():
        assert len(rows) == n
        assert len({r["id"] for r in rows}) == n
        assert all(r["query"].strip() and r["positive"].strip() for r in rows)
        assert {"id", "query", "positive", "task", "source"} <= set(rows[0])


def test_sets_are_nested_samples_of_one_pool_of_every_source(sets):
    small, mid, large = (sets[n] for n in (300, 1000, 3000))
    assert small == mid[:300] and mid == large[:1000]
    # The 40k pool: qa_pairs_en 23,372 + xquad 14,280 + 2,348 stsb rows, shuffled.
    share = {t: sum(r["task"] == t for r in large) / len(large) for t in ("qa_pairs_en", "xquad")}
    assert share["qa_pairs_en"] == pytest.approx(23372 / 40000, abs=0.03)
    assert share["xquad"] == pytest.approx(14280 / 40000, abs=0.03)
    assert any(r["task"] == "stsb_multi_mt" for r in large)


def test_disjoint_sets_share_no_row(sets):
    disjoint = build_sets([300, 1000, 3000], seed=0, data=DATA, disjoint=True)
    ids = [{r["id"] for r in disjoint[n]} for n in (300, 1000, 3000)]
    assert [len(x) for x in ids] == [300, 1000, 3000]
    assert not (ids[0] & ids[1]) and not (ids[0] & ids[2]) and not (ids[1] & ids[2])
    assert disjoint == build_sets([3000, 300, 1000], seed=0, data=DATA, disjoint=True)
    with pytest.raises(ValueError, match="real pairs"):
        build_sets([5000, 10000, 20000, 40000], data=DATA, disjoint=True)


def test_sets_are_deterministic_and_the_seed_changes_them(sets):
    again = build_sets([300], seed=0, data=DATA)[300]
    assert again == sets[300]
    other = build_sets([300], seed=1, data=DATA)[300]
    assert {r["id"] for r in other} != {r["id"] for r in sets[300]}


def test_stsb_rows_are_the_pairs_scored_at_least_4():
    if not (DATA / "stsb_multi_mt").exists():
        pytest.skip(f"real data not found at {DATA}")
    rows = build_sets([53118], data=DATA)[53118]  # the whole pool: every source in full
    stsb = [r for r in rows if r["task"] == "stsb_multi_mt"]
    assert len(stsb) == 15466  # 1,406 per language x 11
    assert len({r["id"] for r in rows}) == len(rows)
    with pytest.raises(ValueError, match="real pairs"):
        build_sets([53119], data=DATA)


def test_growth_exponent_of_a_power_law():
    xs = [5000, 10000, 20000, 40000]
    assert growth_exponent(xs, [3 * x**1.5 for x in xs]) == pytest.approx(1.5)
    assert growth_exponent(xs, [7.0] * 4) == pytest.approx(0.0)
    assert growth_exponent([1000], [1.0]) is None  # one point: no slope


def test_marginal_exponent_ignores_a_fixed_cost():
    xs = [5000, 10000, 20000, 40000]
    ys = [60 + 0.002 * x**1.2 for x in xs]  # a model load of 60 s, then n^1.2
    assert growth_exponent(xs, ys) < 1.0  # the plain slope is flattened by the fixed part
    assert marginal_exponent(xs, ys) == pytest.approx(1.2, abs=0.01)
    big = 10_000_000
    assert project_value(xs, ys, big) == pytest.approx(60 + 0.002 * big**1.2, rel=0.01)


def test_project_value_clamps_the_exponent_and_needs_growth():
    xs = [1000, 2000, 4000]
    flat = [5.0, 5.0, 5.0]
    assert project_value(xs, flat, 1e6) == 5.0  # nothing grows: stays as measured
    cubic = [x**3 for x in xs]
    assert project_value(xs, cubic, 8000) < 8000**3  # clamped to n^2
    assert math.isfinite(project_value(xs, cubic, 1e7))


def test_phases_add_up_to_the_wall_time():
    spans = {"read": [101.0, 103.0], "embed": [103.5, 110.0], "mine": [112.0, 112.0]}
    phases = phase_seconds(100.0, 115.0, spans)
    assert list(phases) == ["startup", "read", "embed", "mine", "finish"]
    assert phases == {"startup": 1.0, "read": 2.0, "embed": 7.0, "mine": 2.0, "finish": 3.0}
    assert sum(phases.values()) == pytest.approx(15.0)


def _run(size: int) -> dict:
    """A run's record as ``bench_scaling`` writes it, with made-up numbers: embedding linear
    after a 20 s model load, mining quadratic."""
    phases = {"startup": 8.0, "embed": 20 + size / 50, "filter": (size / 2000) ** 2, "finish": 9.0}
    memory = {
        "peak_total_rss_mb": 2000 + size / 100,
        "peak_total_shared_once_mb": 1500 + size / 100,
        "cpu_seconds": sum(phases.values()),
        "processes": [
            {"pid": 1, "role": "launcher", "peak_rss": 500.0, "cpu": 10.0},
            {"pid": 2, "role": "worker 1", "peak_rss": 900 + size / 50, "cpu": 50.0},
        ],
    }
    curate = {"seconds": sum(phases.values()), "phases": phases, "phase_cpu": phases}
    curate |= {"memory": memory, "texts_encoded": 2 * size}
    st = {"seconds": 2.0 * curate["seconds"], "memory": {**memory, "peak_total_rss_mb": 900.0}}
    return {"size": size, "curate": curate, "st": st}


def test_projection_and_report_of_runs():
    runs = [_run(n) for n in (5000, 10000, 20000, 40000)]
    a = Assumptions(10_000_000, "n1-standard-4", [10, 100], 1, 300.0, 2)
    p = project(runs, a, flat_rate=1e8)
    assert p["cpu_seconds"]["embed"] == pytest.approx(820 + (10_000_000 - 40000) / 50, rel=1e-6)
    assert p["cpu_seconds"]["filter"] == pytest.approx(5000**2, rel=1e-6)
    assert p["mining_flat_search_cpu_seconds"] == 10_000_000**2 / 1e8
    assert p["dataflow"][0]["wall_hours"] > p["dataflow"][1]["wall_hours"]
    assert not p["fits_worker_memory"]  # 10M vectors of one task: ~30 GB
    runs[-1]["curate_also"] = {**runs[-1]["curate"], "args": ["--token-budget", "8192"]}
    report = {"sizes": [5000, 10000, 20000, 40000], "cores": 2, "runs": runs}
    report |= {"exponents": exponents(runs), "projection": p}
    assert report["exponents"]["phase filter cpu"] == pytest.approx(2.0)
    assert report["exponents"]["phase embed cpu marginal"] == pytest.approx(1.0)
    text = markdown(report)
    assert "| 40,000 |" in text and "n1-standard-4" in text
    assert "| 40,000 (--token-budget 8192) |" in text  # the --also arm has its own row
    json.dumps(report)


ALLOCATE = """
import subprocess, sys, time
child = None
if {child_mb}:
    code = "import sys, time; b = b'x' * ({child_mb} << 20); print('ok', flush=True); time.sleep(1)"
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    child.stdout.readline()  # the grandchild holds its memory from here on
block = b"x" * ({own_mb} << 20)
time.sleep(1)
if child:
    child.wait()
"""


def _sample(own_mb: int, child_mb: int = 0) -> TreeSampler:
    code = textwrap.dedent(ALLOCATE.format(own_mb=own_mb, child_mb=child_mb))
    proc = subprocess.Popen([sys.executable, "-c", code])
    with TreeSampler(proc.pid, interval=0.05) as sampler:
        assert proc.wait(timeout=60) == 0
    return sampler


def _baseline() -> int:
    """Peak RSS of an interpreter that allocates nothing."""
    return max(p.peak_rss for p in _sample(0).processes.values())


def test_sampler_measures_a_child_that_allocates_a_known_amount():
    base = _baseline()
    sampler = _sample(own_mb=200)
    (launcher,) = sampler.processes.values()
    assert launcher.role == "launcher"
    assert (launcher.peak_rss - base) / MB == pytest.approx(200, rel=0.1)
    assert (sampler.peak_total_rss - base) / MB == pytest.approx(200, rel=0.1)


def test_sampler_sums_the_tree_at_one_instant():
    base = _baseline()
    sampler = _sample(own_mb=150, child_mb=100)
    peaks = sorted(p.peak_rss for p in sampler.processes.values())
    assert len(peaks) == 2
    assert (peaks[0] - base) / MB == pytest.approx(100, rel=0.15)
    assert (peaks[1] - base) / MB == pytest.approx(150, rel=0.15)
    # Both held their blocks at once: the total is the sum, not the larger of the two.
    assert (sampler.peak_total_rss - 2 * base) / MB == pytest.approx(250, rel=0.1)
    # Shared library pages counted once: less than the plain sum, more than the blocks.
    assert 250 * MB < sampler.peak_total_shared_once < sampler.peak_total_rss


def test_projection_with_mine_blocks_spreads_mining_and_bounds_its_memory():
    runs = [_run(n) for n in (5000, 10000, 20000, 40000)]
    one = Assumptions(10_000_000, "n1-standard-4", [10, 100], 1, 300.0, 2)
    blocks = Assumptions(10_000_000, "n1-standard-4", [10, 100], 1, 300.0, 2, mine_blocks=10)
    p1, p10 = project(runs, one, flat_rate=1e8), project(runs, blocks, flat_rate=1e8)
    assert p10["mining_cpu_seconds"] == p1["mining_cpu_seconds"]  # the same work, spread
    assert p10["dataflow"][1]["wall_hours"] < p1["dataflow"][1]["wall_hours"] / 10
    assert not p1["fits_worker_memory"] and p10["fits_worker_memory"]
    assert p10["mining_piece_peak_gb"] < p1["mining_worker_peak_gb"] / 2
