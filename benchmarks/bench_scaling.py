"""How curate grows with its input, beside sentence-transformers' mine_hard_negatives.

    python benchmarks/bench_scaling.py                            # 5k, 10k, 20k, 40k pairs
    python benchmarks/bench_scaling.py --sizes 500 1000 2000 --out /tmp/scaling.json
    python benchmarks/bench_scaling.py --skip-st --workdir /tmp/scaling -- --direct_num_workers=2
    python benchmarks/bench_scaling.py --sizes 20000 --warm   # then a warm rerun, new window
    python benchmarks/bench_scaling.py --qa-pairs-en --sizes 23372 --also-low-memory  # both layouts

For each size, on the real pairs of ``scaling_data.py`` (qa_pairs_en, then xquad, then stsb):

- ``kalm-data curate --input pairs.jsonl --task pairs --output OUT --cache-dir CACHE`` in its own
  process, in a fresh folder (fresh cache and output: encoding is really measured). Beam
  arguments after ``--`` are passed to it.
- With ``--also-low-memory``: curate again, cold, in a fresh folder, with ``--low-memory``.
- With ``--also "ARGS"``: curate again, cold, in a fresh folder, with ARGS added (an A/B of a
  setting in one run, e.g. ``--also "--token-budget 8192"``).
- ``mine_hard_negatives`` in its own process (``bench_curate.st``: same teacher, same window
  50-99, 7 negatives, FAISS), unless ``--skip-st``.
- With ``--warm``: curate again on the same output and cache with a new rank window
  (``WARM_SETTINGS``): the "pairs" checkpoint and every vector are reused, mining onwards runs
  again. Its wall time and peak total RSS, and their ratios to ``mine_hard_negatives``'.

Measured from outside, for each of the two process trees (``TreeSampler``, every 0.1 s):
peak RSS of every process by role (``launcher``, ``worker 1`` ... the Beam SDK workers; the
kernel's high-water mark ``VmHWM`` when it is higher than any sample); the peak of the SUM of
RSS over the tree at one instant, also with resident shared pages (the libraries every process
maps) counted once; CPU seconds of the tree. Time per stage: the run's progress files
(``kalm_data.harness.progress``) give each stage's first and last report; a phase lasts from
the previous stage's last report to its own (``phase_seconds``): startup, read ... write,
finish (commit, manifest, card); they sum to the wall time. The manifest's ``timings`` (first
to last report of each stage) are kept in the JSON too. CPU seconds per phase: the tree's CPU
clock at the phase edges, steadier than wall time on a shared machine.

Growth exponent: the least-squares slope of log(value) on log(pairs) (``growth_exponent``);
the marginal exponent, the same for the cost of the added pairs between two sizes, leaves out
fixed costs such as loading the teacher (``marginal_exponent``).

Projection to ``--project-pairs`` (10M) on ``--workers`` Dataflow workers of ``--worker-type``
(``project``; the assumptions are printed with the result): each phase's CPU seconds at 10M
are its CPU seconds at the largest size plus the growth of its marginal part (exponent clamped
to [1, 2]); mining takes at least the exact search's (pairs/tasks)^2 * tasks comparisons at the
FAISS flat speed measured here (``flat_search_rate``); one Dataflow vCPU does the work of one
core here; every phase but mining spreads evenly over all vCPUs of all workers (Beam
parallelises by element; encoding has no shared state); mining runs one task per worker
(``MineTaskFn``) on all its vCPUs, so it spreads over min(tasks, workers) workers, or with
``--mine-blocks B`` one of a task's B x B pieces per worker (``MineBlocks``: min(tasks x B^2,
workers) workers)
(``--tasks-at-scale``, default 1 as here); startup and finish become a fixed Dataflow job
overhead (``--dataflow-overhead-s``); every worker is billed for the whole job (no
autoscaling) at the Dataflow batch list price (us-central1: $0.056 per vCPU-hour, $0.003557
per GB-hour, $0.000054 per GB-hour of the 25 GB disk used with Dataflow Shuffle; Shuffle's
per-GB charge is left out). The mining worker's memory: the larger of the power law of the
largest worker's peaks and its smallest peak plus the task's float32 vectors, against the
worker type's memory.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psutil
from scaling_data import build_sets, write_jsonl

MB = 1 << 20
#: Dataflow batch list prices, us-central1 (USD); see the module docstring.
VCPU_HOUR_USD = 0.056
GB_HOUR_USD = 0.003557
DISK_GB_HOUR_USD = 0.000054
DISK_GB = 25
#: (vCPUs, memory GB) of the worker types the projection knows.
WORKER_TYPES = {
    "n1-standard-4": (4, 15.0),
    "n1-highmem-4": (4, 26.0),
    "n1-standard-8": (8, 30.0),
    "n1-highmem-8": (8, 52.0),
}
FIXED_PHASES = ("startup", "finish")
MINING_PHASES = ("filter", "mine")
EMBED_DIM = 384  # the offline MiniLM teacher's


# --- memory and CPU of a process tree -------------------------------------------------------


@dataclass
class ProcessPeak:
    """One process of the tree: its role, its peak RSS (bytes) and CPU seconds last seen."""

    pid: int
    role: str
    peak_rss: int = 0
    cpu: float = 0.0


def _vm_hwm(pid: int) -> int:
    """The kernel's peak RSS of ``pid`` (``VmHWM``, bytes); 0 when unreadable."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


def _role(proc: psutil.Process, root: int, workers: int) -> str:
    if proc.pid == root:
        return "launcher"
    try:
        cmd = " ".join(proc.cmdline())
    except psutil.Error:
        cmd = ""
    if "sdk_worker_main" in cmd and "python" in proc.name():
        return f"worker {workers + 1}"
    return proc.name() or "process"


class TreeSampler:
    """Samples a process and all its descendants every ``interval`` s on a thread (a context
    manager); the tree is listed again every ``relist`` samples (listing costs ~10 ms).

    - ``processes``: each process's role and peak RSS (the larger of the samples and the
      kernel's ``VmHWM``), and CPU seconds (user + system; a process that ended keeps its last);
    - ``peak_total_rss``: the largest sum of RSS over the tree at one instant;
    - ``peak_total_shared_once``: the same with resident shared pages (mostly the libraries
      every Python process maps: torch, numpy ...) counted once, not once per process:
      sum(RSS - shared) + max(shared). PSS would be exact, but reading it (smaps_rollup) takes
      ~0.1 s per GB-sized process here: too slow to sample;
    - ``cpu_at(t)``: the tree's CPU seconds at epoch ``t``.
    """

    def __init__(self, pid: int, interval: float = 0.1, relist: int = 10):
        self.root = psutil.Process(pid)
        self.interval, self.relist = interval, relist
        self.processes: dict[int, ProcessPeak] = {}
        self.peak_total_rss = self.peak_total_shared_once = 0
        self.cpu_samples: list[tuple[float, float]] = []  # (epoch, tree CPU seconds)
        self._tree: list[psutil.Process] = []
        self._samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> TreeSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def _list(self) -> list[psutil.Process]:
        try:
            return [self.root, *self.root.children(recursive=True)]
        except psutil.Error:
            return [p for p in self._tree if p.is_running()]

    def _peak(self, proc: psutil.Process) -> ProcessPeak:
        if proc.pid not in self.processes:
            workers = sum(p.role.startswith("worker") for p in self.processes.values())
            role = _role(proc, self.root.pid, workers)
            self.processes[proc.pid] = ProcessPeak(proc.pid, role)
        return self.processes[proc.pid]

    def sample(self) -> None:
        """One sample of every live process of the tree."""
        if self._samples % self.relist == 0:
            self._tree = self._list()
        self._samples += 1
        total = unshared = shared = 0
        for proc in self._tree:
            try:
                mem, cpu = proc.memory_info(), proc.cpu_times()
            except psutil.Error:
                continue  # ended since the listing
            peak = self._peak(proc)
            peak.peak_rss = max(peak.peak_rss, mem.rss, _vm_hwm(proc.pid))
            peak.cpu = max(peak.cpu, cpu.user + cpu.system)
            total, unshared = total + mem.rss, unshared + mem.rss - mem.shared
            shared = max(shared, mem.shared)
        self.peak_total_rss = max(self.peak_total_rss, total)
        self.peak_total_shared_once = max(self.peak_total_shared_once, unshared + shared)
        self.cpu_samples.append((time.time(), sum(p.cpu for p in self.processes.values())))

    def cpu_at(self, t: float) -> float:
        """Tree CPU seconds at epoch ``t`` (the last sample at or before it)."""
        before = [cpu for when, cpu in self.cpu_samples if when <= t]
        return before[-1] if before else 0.0

    def summary(self) -> dict:
        """Peaks in MB: the totals at one instant and each process (largest first)."""
        procs = sorted(self.processes.values(), key=lambda p: -p.peak_rss)
        return {
            "peak_total_rss_mb": round(self.peak_total_rss / MB, 1),
            "peak_total_shared_once_mb": round(self.peak_total_shared_once / MB, 1),
            "cpu_seconds": round(sum(p.cpu for p in procs), 2),
            "processes": [{**asdict(p), "peak_rss": round(p.peak_rss / MB, 1)} for p in procs],
        }


# --- stage timeline ------------------------------------------------------------------------


def merge_stage_times(progress_files: list[dict]) -> dict[str, list[float]]:
    """{stage: [first, last] report (epoch s)} over every worker's progress file."""
    spans: dict[str, list[float]] = {}
    for data in progress_files:
        for stage, (first, last) in data.get("times", {}).items():
            span = spans.setdefault(stage, [first, last])
            span[0], span[1] = min(span[0], first), max(span[1], last)
    return spans


def phase_edges(start: float, end: float, spans: dict[str, list[float]]) -> list[tuple[str, float]]:
    """[(phase, end epoch)] in order: ``startup`` up to the first report of any stage, then each
    stage up to its last report (stages in order of last report), ``finish`` up to ``end``."""
    edges = [("startup", min((s[0] for s in spans.values()), default=start))]
    for stage, (_, last) in sorted(spans.items(), key=lambda kv: kv[1][1]):
        edges.append((stage, last))
    edges.append(("finish", end))
    out, previous = [], start
    for name, when in edges:
        previous = min(max(previous, when), end)
        out.append((name, previous))
    return out


def phase_seconds(start: float, end: float, spans: dict[str, list[float]]) -> dict[str, float]:
    """Seconds of each phase of ``phase_edges``; they add up to ``end - start``."""
    out, previous = {}, start
    for name, when in phase_edges(start, end, spans):
        out[name] = round(when - previous, 3)
        previous = when
    return out


# --- growth exponents ----------------------------------------------------------------------


def power_fit(xs: list[float], ys: list[float]) -> tuple[float, float] | None:
    """(c, b) of the least-squares fit log y = log c + b log x over the points with x, y > 0;
    None with fewer than two such points or a single x."""
    pts = [(math.log(x), math.log(y)) for x, y in zip(xs, ys, strict=True) if x > 0 and y > 0]
    if len(pts) < 2:
        return None
    mx = sum(p[0] for p in pts) / len(pts)
    my = sum(p[1] for p in pts) / len(pts)
    sxx = sum((p[0] - mx) ** 2 for p in pts)
    if sxx == 0:
        return None
    b = sum((p[0] - mx) * (p[1] - my) for p in pts) / sxx
    return math.exp(my - b * mx), b


def growth_exponent(xs: list[float], ys: list[float]) -> float | None:
    """The slope b of log y on log x: y grows like x^b (None: see ``power_fit``)."""
    fit = power_fit(xs, ys)
    return None if fit is None else fit[1]


def extrapolate(xs: list[float], ys: list[float], x: float) -> float | None:
    """The fitted c * x^b at ``x``."""
    fit = power_fit(xs, ys)
    return None if fit is None else fit[0] * x ** fit[1]


def _increments(xs: list[float], ys: list[float]) -> list[tuple[float, float, float, float]]:
    """(x0, x1, y0, y1) of consecutive sizes (sorted by x)."""
    pts = sorted(zip(xs, ys, strict=True))
    return [(x0, x1, y0, y1) for (x0, y0), (x1, y1) in zip(pts, pts[1:], strict=False) if x1 > x0]


def marginal_exponent(xs: list[float], ys: list[float]) -> float | None:
    """b of the size-dependent part of y = a + c * x^b, free of the fixed part a: the cost per
    added unit, (y1 - y0) / (x1 - x0), grows like x^(b-1) (x at the pair's geometric mean).
    None with fewer than two rising increments."""
    pts = [
        (math.sqrt(x0 * x1), (y1 - y0) / (x1 - x0))
        for x0, x1, y0, y1 in _increments(xs, ys)
        if y1 > y0
    ]
    b = growth_exponent([p[0] for p in pts], [p[1] for p in pts])
    return None if b is None else b + 1


def project_value(
    xs: list[float], ys: list[float], x: float, lo: float = 1.0, hi: float = 2.0
) -> float:
    """y at ``x``: the measured y at the largest size plus c * (x^b - x_max^b), b the
    ``marginal_exponent`` clamped to [lo, hi] (1 when it cannot be fitted), c fitted to the
    rising increments with that b (geometric mean). No rising increment: y stays flat."""
    b = marginal_exponent(xs, ys)
    b = min(max(lo if b is None else b, lo), hi)
    steps = [(x0, x1, y1 - y0) for x0, x1, y0, y1 in _increments(xs, ys) if y1 > y0]
    x_max, y_max = max(zip(xs, ys, strict=True))
    if not steps:
        return y_max
    c = math.exp(sum(math.log(d / (x1**b - x0**b)) for x0, x1, d in steps) / len(steps))
    return y_max + c * (x**b - x_max**b)


# --- runs ----------------------------------------------------------------------------------


def _env() -> dict[str, str]:
    return {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }


def _read_progress(folder: Path, seen: dict[str, dict]) -> None:
    """Keep the latest readable copy of each progress file (they vanish at commit)."""
    for path in folder.glob("*.json"):
        try:
            seen[path.name] = json.loads(path.read_text("utf-8"))
        except (OSError, ValueError):
            continue


def watch(cmd: list[str], cwd: Path, log: Path, progress: Path | None = None) -> dict:
    """Run ``cmd`` (stdout and stderr to ``log``) under a ``TreeSampler``; return its wall
    seconds, start and end (epoch), memory summary, CPU sampler and the progress files seen."""
    files: dict[str, dict] = {}
    with open(log, "w", encoding="utf-8") as out:
        start = time.time()
        proc = subprocess.Popen(cmd, cwd=cwd, env=_env(), stdout=out, stderr=subprocess.STDOUT)
        with TreeSampler(proc.pid) as sampler:
            while proc.poll() is None:
                if progress is not None:
                    _read_progress(progress, files)
                time.sleep(0.25)
            end = time.time()
    if proc.returncode != 0:
        tail = log.read_text("utf-8", errors="replace")[-3000:]
        raise RuntimeError(f"{' '.join(cmd[:4])} ... failed ({proc.returncode}):\n{tail}")
    return {
        "seconds": round(end - start, 2),
        "start": start,
        "end": end,
        "memory": sampler.summary(),
        "sampler": sampler,
        "progress": list(files.values()),
    }


def phase_cpu(sampler: TreeSampler, start: float, edges: list[tuple[str, float]]) -> dict:
    """CPU seconds of the tree in each phase of ``phase_edges``; the last phase also takes
    what the processes used after the last sample."""
    out, previous = {}, start
    for name, when in edges:
        out[name] = round(sampler.cpu_at(when) - sampler.cpu_at(previous), 2)
        previous = when
    total = sum(p.cpu for p in sampler.processes.values())
    out[edges[-1][0]] = round(total - sum(v for k, v in out.items() if k != edges[-1][0]), 2)
    return out


def run_curate(pairs: Path, work: Path, per_source_task: bool, beam_args: list[str]) -> dict:
    """``kalm-data curate`` on ``pairs`` in ``work`` (fresh output and cache)."""
    from kalm_data.writers.commit import staging_dir

    out, cache = work / "curate-out", work / "cache"
    task = ["--map", "task=task"] if per_source_task else ["--task", "pairs"]
    cmd = [sys.executable, "-m", "kalm_data.cli", "curate", "--input", str(pairs), *task]
    cmd += ["--output", str(out), "--cache-dir", str(cache), *beam_args]
    run = watch(cmd, work, work / "curate.log", Path(staging_dir(str(out))) / "_progress")
    manifest = json.loads((out / "manifest.json").read_text("utf-8"))
    spans = merge_stage_times(run.pop("progress"))
    edges = phase_edges(run["start"], run["end"], spans)
    cpu = phase_cpu(run.pop("sampler"), run["start"], edges)
    return {
        **run,
        "phases": phase_seconds(run["start"], run["end"], spans),
        "phase_cpu": cpu,
        "manifest_timings": manifest.get("timings", {}),
        "rows_kept": manifest["counts"]["rows_kept"],
        "texts_encoded": manifest.get("mining", {}).get("texts_encoded"),
        "tasks": len(manifest.get("tasks", {}) or {}),
    }


#: The other mining settings of the warm rerun (``--warm``): a new rank window.
WARM_SETTINGS = ["--window-start", "30", "--window-end", "60", "--overwrite"]


def run_warm(pairs: Path, work: Path, per_source_task: bool, beam_args: list[str]) -> dict:
    """``kalm-data curate`` again on ``run_curate``'s output and cache, with ``WARM_SETTINGS``:
    the pairs checkpoint and every vector are reused, mining and what follows run again."""
    out, cache = work / "curate-out", work / "cache"
    task = ["--map", "task=task"] if per_source_task else ["--task", "pairs"]
    cmd = [sys.executable, "-m", "kalm_data.cli", "curate", "--input", str(pairs), *task]
    cmd += ["--output", str(out), "--cache-dir", str(cache), *WARM_SETTINGS, *beam_args]
    run = watch(cmd, work, work / "curate-warm.log")
    manifest = json.loads((out / "manifest.json").read_text("utf-8"))
    return {
        "seconds": run["seconds"],
        "memory": {k: v for k, v in run["memory"].items() if k != "processes"},
        "checkpoints": manifest.get("checkpoints"),
        "texts_encoded": manifest.get("mining", {}).get("texts_encoded", 0),
    }


def run_st(pairs: Path, work: Path) -> dict:
    """``mine_hard_negatives`` on ``pairs`` in its own process (``bench_curate.st``)."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child-st", str(pairs)]
    run = watch(cmd, work, work / "st.log")
    del run["sampler"], run["progress"]
    lines = (work / "st.log").read_text("utf-8").strip().splitlines()
    inner = json.loads(lines[-1])
    return {**run, "inner_seconds": round(inner["seconds"], 2), "rows_out": inner["rows_out"]}


def _st_child(pairs: str) -> None:
    from bench_curate import st

    with open(pairs, encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    print(json.dumps(st(rows)), flush=True)


# --- projection ----------------------------------------------------------------------------


DEPTH = 108  # candidates per query at the default window 50-99: 100 + positives + 1
CANDIDATE_BYTES = 44  # a candidate in a block merge: 32-byte key, score, one cosine, index


@dataclass
class Assumptions:
    """What the projection takes as given (printed with it)."""

    pairs: int
    worker_type: str
    workers: list[int]
    tasks_at_scale: int
    overhead_s: float
    cores_here: int
    mine_blocks: int = 1  # curate --mine-blocks: each task as blocks x blocks pieces
    vcpus: int = 0
    memory_gb: float = 0.0
    usd_per_worker_hour: float = 0.0
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.vcpus, self.memory_gb = WORKER_TYPES[self.worker_type]
        self.usd_per_worker_hour = round(
            self.vcpus * VCPU_HOUR_USD + self.memory_gb * GB_HOUR_USD + DISK_GB * DISK_GB_HOUR_USD,
            4,
        )


def flat_search_rate(n: int = 20_000, k: int = 100) -> float:
    """Query-text comparisons per CPU second of a FAISS flat inner-product search here (``n``
    random unit vectors searched against themselves, top ``k``)."""
    import faiss
    import numpy as np

    x = np.random.default_rng(0).standard_normal((n, EMBED_DIM), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    index = faiss.IndexFlatIP(EMBED_DIM)
    index.add(x)
    start = time.process_time()
    index.search(x, k)
    return n * n / (time.process_time() - start)


def _phase_cpu_at(sizes: list[int], ys: list[float], total: float, pairs: int) -> float:
    """``project_value`` with the fitted exponent for a phase of at least 5% of the CPU at the
    largest size; a smaller one (noise, at these sizes) grows linearly."""
    hi = 2.0 if ys[-1] >= 0.05 * total else 1.0
    return project_value(sizes, ys, pairs, 1.0, hi)


def project(runs: list[dict], a: Assumptions, flat_rate: float) -> dict:
    """Projected CPU seconds per phase at ``a.pairs`` (``project_value``: the measured cost at
    the largest size plus the size-dependent part's growth, its exponent clamped to [1, 2]:
    every phase handles each pair at least once and none compares more than all pairs with
    all pairs), wall time and cost on each worker count, and the mining worker's memory.
    Mining takes at least the exact (flat) search: (pairs / tasks)^2 * tasks comparisons at
    ``flat_rate`` per CPU second, which the sizes measured here are too small to show."""
    sizes = [r["size"] for r in runs]
    last = runs[-1]["curate"]["phase_cpu"]
    cpu = {}
    for phase in (p for p in last if p not in FIXED_PHASES):
        ys = [r["curate"]["phase_cpu"].get(phase, 0.0) for r in runs]
        cpu[phase] = _phase_cpu_at(sizes, ys, sum(last.values()), a.pairs)
    flat = (a.pairs / a.tasks_at_scale) ** 2 * a.tasks_at_scale / flat_rate
    mining = max(sum(v for k, v in cpu.items() if k in MINING_PHASES), flat)
    parallel = sum(v for k, v in cpu.items() if k not in MINING_PHASES)
    rows = []
    for w in a.workers:
        mining_vcpus = min(a.tasks_at_scale * a.mine_blocks**2, w) * a.vcpus
        hours = (a.overhead_s + parallel / (w * a.vcpus) + mining / mining_vcpus) / 3600
        cost = w * hours * a.usd_per_worker_hour
        rows.append({"workers": w, "wall_hours": round(hours, 2), "cost_usd": round(cost, 2)})
    return {
        "assumptions": asdict(a),
        "cpu_seconds": {k: round(v) for k, v in cpu.items()},
        "flat_search_rate": round(flat_rate),
        "mining_flat_search_cpu_seconds": round(flat),
        "mining_cpu_seconds": round(mining),
        "cpu_hours": round((parallel + mining) / 3600, 1),
        "dataflow": rows,
        **_memory_projection(runs, a),
    }


def _memory_projection(runs: list[dict], a: Assumptions) -> dict:
    """The mining worker's peak at ``a.pairs``: the larger of the power law fitted to the
    largest worker's peaks and its peak at the smallest size plus the task's vectors (float32;
    the mining worker holds all of them)."""
    sizes = [r["size"] for r in runs]
    peaks_mb = [_largest_worker(r["curate"]["memory"]) for r in runs]
    fitted_gb = (extrapolate(sizes, peaks_mb, a.pairs) or 0.0) / 1024
    last = runs[-1]["curate"]
    texts_per_pair = (last["texts_encoded"] or 0) / runs[-1]["size"]
    vectors_gb = texts_per_pair * a.pairs / a.tasks_at_scale * EMBED_DIM * 4 / 1e9
    need_gb = max(fitted_gb, peaks_mb[0] / 1024 + vectors_gb)
    out = {
        "mining_worker_peak_gb": round(need_gb, 1),
        "mining_task_vectors_gb": round(vectors_gb, 1),
        "fits_worker_memory": need_gb <= a.memory_gb,
    }
    if a.mine_blocks > 1:
        # a findings piece: one pool shard plus two query blocks, ~2/blocks of the task's
        # vectors; a block's merge: its examples' DEPTH candidates (key, score, cosine)
        block = a.pairs / a.tasks_at_scale / a.mine_blocks
        piece_gb = 2 * vectors_gb / a.mine_blocks + block * DEPTH * CANDIDATE_BYTES / 1e9
        out["mining_piece_peak_gb"] = round(peaks_mb[0] / 1024 + piece_gb, 1)
        out["fits_worker_memory"] = peaks_mb[0] / 1024 + piece_gb <= a.memory_gb
    return out


def _largest_worker(memory: dict) -> float:
    workers = [p["peak_rss"] for p in memory["processes"] if p["role"].startswith("worker")]
    return max(workers, default=0.0)


def exponents(runs: list[dict]) -> dict:
    """Growth exponents of every time and memory measured."""
    sizes = [r["size"] for r in runs]
    out: dict[str, float | None] = {}

    def fit(name: str, ys: list[float]) -> None:
        b = growth_exponent(sizes, ys)
        out[name] = None if b is None else round(b, 2)

    c = [r["curate"] for r in runs]
    fit("curate wall", [x["seconds"] for x in c])
    fit("curate cpu", [x["memory"]["cpu_seconds"] for x in c])
    for phase in c[-1]["phases"]:
        fit(f"phase {phase} wall", [x["phases"].get(phase, 0.0) for x in c])
        cpu = [x["phase_cpu"].get(phase, 0.0) for x in c]
        fit(f"phase {phase} cpu", cpu)
        b = marginal_exponent(sizes, cpu)
        out[f"phase {phase} cpu marginal"] = None if b is None else round(b, 2)
    fit("curate total rss", [x["memory"]["peak_total_rss_mb"] for x in c])
    fit("curate total rss shared once", [x["memory"]["peak_total_shared_once_mb"] for x in c])
    fit("curate largest worker rss", [_largest_worker(x["memory"]) for x in c])
    fit("curate launcher rss", [_role_peak(x["memory"], "launcher") for x in c])
    if all("st" in r for r in runs):
        fit("st wall", [r["st"]["seconds"] for r in runs])
        fit("st cpu", [r["st"]["memory"]["cpu_seconds"] for r in runs])
        fit("st peak rss", [r["st"]["memory"]["peak_total_rss_mb"] for r in runs])
    return out


def _role_peak(memory: dict, role: str) -> float:
    return max((p["peak_rss"] for p in memory["processes"] if p["role"] == role), default=0.0)


# --- report --------------------------------------------------------------------------------


def _table(header: list[str], rows: list[list]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(x) for x in row) + " |" for row in rows]
    return out


def _fmt(x: float | None, digits: int = 2) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def markdown(report: dict) -> str:
    """The report as markdown tables."""
    runs = report["runs"]
    sizes = ", ".join(f"{r['size']:,}" for r in runs)
    lines = [f"## Scaling: {sizes} pairs, {report['cores']} cores", ""]
    lines += _summary_lines(runs) + [""]
    if all("warm" in r for r in runs):
        lines += _warm_lines(runs) + [""]
    lines += _phase_lines(runs, report["exponents"]) + [""]
    lines += _process_lines(runs) + [""]
    lines += ["### Growth exponents (log-log slope over the sizes)", ""]
    exp = report["exponents"]
    lines += _table(
        ["measure", "exponent"], [[k, _fmt(v)] for k, v in exp.items() if not k.startswith("phase")]
    )
    return "\n".join([*lines, "", *_projection_lines(report["projection"])])


def _summary_lines(runs: list[dict]) -> list[str]:
    with_st = all("st" in r for r in runs)
    header = ["pairs", "curate s", "CPU s", "total RSS MB", "shared once MB", "largest MB"]
    if with_st:
        header += ["st s", "st peak MB", "st/curate time", "curate/st RSS", "(shared once)"]
    rows = []
    arms = ("curate", "curate_low", "curate_also")
    for r, arm in [(r, a) for r in runs for a in arms if a in r]:
        c, m = r[arm], r[arm]["memory"]
        label = f"{r['size']:,}" + {"curate_low": " (--low-memory)", "curate": ""}.get(
            arm, f" ({' '.join(r[arm].get('args', []))})"
        )
        row = [label, f"{c['seconds']:.1f}", f"{m['cpu_seconds']:.0f}"]
        row += [f"{m['peak_total_rss_mb']:.0f}", f"{m['peak_total_shared_once_mb']:.0f}"]
        row.append(f"{max(p['peak_rss'] for p in m['processes']):.0f}")
        if with_st:
            st, peak = r["st"]["seconds"], r["st"]["memory"]["peak_total_rss_mb"]
            row += [f"{st:.1f}", f"{peak:.0f}", f"{st / c['seconds']:.2f}"]
            row += [
                f"{m['peak_total_rss_mb'] / peak:.2f}",
                f"{m['peak_total_shared_once_mb'] / peak:.2f}",
            ]
        rows.append(row)
    return _table(header, rows)


def _warm_lines(runs: list[dict]) -> list[str]:
    with_st = all("st" in r for r in runs)
    lines = ["### Warm rerun with a new rank window (" + " ".join(WARM_SETTINGS) + ")", ""]
    header = ["pairs", "warm s", "warm total RSS MB", "texts encoded"]
    header += ["warm/st time", "warm/st RSS"] if with_st else []
    rows = []
    for r in runs:
        w = r["warm"]
        row = [f"{r['size']:,}", f"{w['seconds']:.1f}", f"{w['memory']['peak_total_rss_mb']:.0f}"]
        row.append(w["texts_encoded"])
        if with_st:
            st, peak = r["st"]["seconds"], r["st"]["memory"]["peak_total_rss_mb"]
            row += [f"{w['seconds'] / st:.3f}", f"{w['memory']['peak_total_rss_mb'] / peak:.2f}"]
        rows.append(row)
    return lines + _table(header, rows)


def _phase_lines(runs: list[dict], exp: dict) -> list[str]:
    lines = ["### curate phases: wall s (CPU s); exponents: wall, CPU, CPU marginal", ""]
    rows = []
    for p in runs[-1]["curate"]["phases"]:
        row = [p]
        for r in runs:
            c = r["curate"]
            row.append(f"{c['phases'].get(p, 0):.1f} ({c['phase_cpu'].get(p, 0):.1f})")
        keys = (f"phase {p} wall", f"phase {p} cpu", f"phase {p} cpu marginal")
        rows.append([*row, ", ".join(_fmt(exp.get(k)) for k in keys)])
    lines += _table(["phase", *[f"{r['size']:,}" for r in runs], "exponents"], rows)
    last = runs[-1]["curate"]
    embed_cpu = last["phase_cpu"].get("embed", 0.0)
    if embed_cpu and last["texts_encoded"]:
        rate = last["texts_encoded"] / embed_cpu
        lines += [
            "",
            f"embedding: {rate:.1f} texts per CPU second (largest size, incl. model load)",
        ]
    return lines


def _process_lines(runs: list[dict]) -> list[str]:
    lines = ["### Peak RSS MB per process", ""]
    roles = sorted({p["role"] for r in runs for p in r["curate"]["memory"]["processes"]})
    rows = [
        [f"curate {role}"] + [f"{_role_peak(r['curate']['memory'], role):.0f}" for r in runs]
        for role in roles
    ]
    if all("st" in r for r in runs):
        rows.append(["st"] + [f"{r['st']['memory']['peak_total_rss_mb']:.0f}" for r in runs])
    return lines + _table(["process", *[f"{r['size']:,}" for r in runs]], rows)


def _mining_memory_line(p: dict, fits: str) -> str:
    """What the projected mining worker holds, against the worker type's memory."""
    a = p["assumptions"]
    whole = (
        f"a task mined on one worker: peak RSS ~{p['mining_worker_peak_gb']} GB; "
        f"the task's vectors alone: {p['mining_task_vectors_gb']} GB"
    )
    if "mining_piece_peak_gb" in p:
        return (
            f"- a mining piece (--mine-blocks {a['mine_blocks']}): peak RSS "
            f"~{p['mining_piece_peak_gb']} GB ({fits} in {a['memory_gb']:g} GB); {whole}"
        )
    return f"- {whole} ({fits} in {a['memory_gb']:g} GB)"


def _projection_lines(p: dict) -> list[str]:
    a = p["assumptions"]
    lines = [
        f"### Projection: {a['pairs']:,} pairs on Dataflow {a['worker_type']} "
        f"({a['vcpus']} vCPU, {a['memory_gb']:g} GB, ${a['usd_per_worker_hour']}/worker-hour)",
        "",
    ]
    lines += _table(
        ["workers", "wall hours", "cost USD"],
        [[r["workers"], r["wall_hours"], r["cost_usd"]] for r in p["dataflow"]],
    )
    cpu = ", ".join(f"{k} {v:,}" for k, v in p["cpu_seconds"].items())
    fits = "fits" if p["fits_worker_memory"] else "does NOT fit"
    lines += [
        "",
        f"- projected CPU seconds per phase: {cpu}",
        f"- mining: {p['mining_cpu_seconds']:,} CPU s, at least the exact search's "
        f"{p['mining_flat_search_cpu_seconds']:,} (FAISS flat here: "
        f"{p['flat_search_rate']:.3g} comparisons per CPU s); in all {p['cpu_hours']:,} CPU-hours",
        _mining_memory_line(p, fits),
        *[f"- {note}" for note in a["notes"]],
    ]
    return lines


# --- main ----------------------------------------------------------------------------------


def _args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[5000, 10000, 20000, 40000])
    p.add_argument("--skip-st", action="store_true", help="do not run mine_hard_negatives")
    p.add_argument(
        "--warm", action="store_true", help="then rerun curate with a new rank window, warm"
    )
    p.add_argument("--workdir", type=Path, help="kept after the run (default: a temporary folder)")
    p.add_argument("--out", type=Path, help="write the JSON report here")
    p.add_argument("--seed", type=int, default=0, help="shuffle of the pair pool")
    p.add_argument("--disjoint", action="store_true", help="sets share no row (default: nested)")
    p.add_argument("--per-source-task", action="store_true", help="one task per dataset")
    p.add_argument(
        "--qa-pairs-en", action="store_true", help="sets from qa_pairs_en alone (23372: all of it)"
    )
    p.add_argument(
        "--also-low-memory",
        action="store_true",
        help="at each size, curate a second time, cold, with --low-memory added",
    )
    p.add_argument("--also", help="curate again, cold, with these arguments added (one string)")
    p.add_argument("--project-pairs", type=int, default=10_000_000)
    p.add_argument("--workers", type=int, nargs="+", default=[10, 50, 100])
    p.add_argument("--worker-type", choices=sorted(WORKER_TYPES), default="n1-standard-4")
    p.add_argument("--tasks-at-scale", type=int, default=1, help="tasks the 10M pairs form")
    p.add_argument(
        "--mine-blocks", type=int, default=1, help="curate --mine-blocks assumed at scale"
    )
    p.add_argument("--dataflow-overhead-s", type=float, default=300.0, help="job start + stop")
    p.add_argument("--child-st", help=argparse.SUPPRESS)
    p.add_argument("beam", nargs="*", help="Beam options for curate, after --")
    return p.parse_args(argv)


def _run_size(n: int, rows: list[dict], root: Path, args: argparse.Namespace) -> dict:
    work = root / f"n{n}"
    shutil.rmtree(work, ignore_errors=True)
    pairs = write_jsonl(work / "pairs.jsonl", rows)
    result = {"size": n, "tasks": dict(Counter(r["task"] for r in rows))}
    result["curate"] = run_curate(pairs, work, args.per_source_task, args.beam)
    if args.also_low_memory:
        low = work / "low-memory"
        low.mkdir()
        result["curate_low"] = run_curate(
            pairs, low, args.per_source_task, [*args.beam, "--low-memory"]
        )
    if args.also:
        also = work / "also"
        also.mkdir()
        extra = shlex.split(args.also)
        result["curate_also"] = run_curate(pairs, also, args.per_source_task, [*args.beam, *extra])
        result["curate_also"]["args"] = extra
    if args.warm:
        result["warm"] = run_warm(pairs, work, args.per_source_task, args.beam)
    if not args.skip_st:
        result["st"] = run_st(pairs, work)
    return result


def main(argv: list[str] | None = None) -> None:
    args = _args(argv)
    if args.child_st:
        _st_child(args.child_st)
        return
    root = args.workdir or Path(tempfile.mkdtemp(prefix="kalm-scaling-"))
    root.mkdir(parents=True, exist_ok=True)
    runs = []
    sets = build_sets(args.sizes, args.seed, disjoint=args.disjoint, qa_only=args.qa_pairs_en)
    for n, rows in sets.items():
        runs.append(_run_size(n, rows, root, args))
        print(
            f"{n:,} pairs: curate {runs[-1]['curate']['seconds']:.1f} s",
            file=sys.stderr,
            flush=True,
        )
    cores = os.cpu_count() or 1
    notes = [
        "each phase's CPU seconds: measured at the largest size + c * (n^b - n_max^b), b the "
        "marginal exponent clamped to [1, 2] (phases under 5% of the CPU: 1); one Dataflow vCPU "
        "does the work of one core here",
        "all phases but mining spread evenly over every vCPU of every worker",
        f"mining: one piece per worker on its {WORKER_TYPES[args.worker_type][0]} vCPUs, "
        f"{args.tasks_at_scale} task(s) at scale, each as --mine-blocks {args.mine_blocks} "
        f"({args.mine_blocks**2} pieces: blocks x pool shards) spreading evenly; the pieces' "
        "shuffle (each block's keys and each shard's keys sent blocks times) not timed",
        f"startup/finish replaced by {args.dataflow_overhead_s:.0f} s of Dataflow job overhead; "
        "every worker billed for the whole job; Shuffle per-GB charge not included",
    ]
    a = Assumptions(
        args.project_pairs,
        args.worker_type,
        args.workers,
        args.tasks_at_scale,
        args.dataflow_overhead_s,
        cores,
        args.mine_blocks,
        notes=notes,
    )
    report = {
        "sizes": [r["size"] for r in runs],
        "cores": cores,
        "beam_args": args.beam,
        "runs": runs,
    }
    report["exponents"] = exponents(runs)
    report["projection"] = project(runs, a, flat_search_rate())
    print(markdown(report))
    if args.out:
        args.out.write_text(json.dumps(report, indent=1), "utf-8")
    if not args.workdir:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
