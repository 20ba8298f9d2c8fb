"""How well each ranking-consistency rule separates swapped (wrong) positives from clean ones,
counted per input ROW, with settings chosen on one set and reported on another.

    python benchmarks/filter_quality.py                      # ~10 min on 2 cores the first time
    python benchmarks/filter_quality.py --med-rows 800 --disfl-rows 400 --report-rows 1200

Sets (real, ../shared/data; sizes are printed):
- tune: qa_pairs_en, a subsample: MedQuAD rows of randomly drawn ``focus`` values (whole focus
  groups, so same-topic rows and repeated queries stay together) plus random Disfl-QA rows;
  one task, as ``curate`` would make of one file.
- report: rqe_medical train, its label-1 pairs as (query = consumer question, positive = FAQ
  question) rows, leaving out the ~1,450 whose two texts are identical (validation rejects a
  query equal to its positive). A different source, domain style and task (question to
  question): settings are never chosen on it.

Swap kinds (``--share`` of the rows, seeded; a swapped row gets another row's positive, and
none keeps its own):
- random: a random cycle over rows drawn from the whole set;
- source: a random cycle within each ``source`` (MedQuAD collection, Disfl-QA split, rqe);
- topic: pairs of same-topic rows exchange positives: same MedQuAD ``focus`` (another question
  about the same disease), else the lexically closest query (TF-IDF) of the same source.

Each swapped set goes through the real components: ``validate_row``, the dedup stages' cores
(``resolve_ids``, ``merge_by_query``: rows sharing a query merge into one example), the MiniLM
teacher (vectors cached in kalm-data's embedding cache), then the pool and ranks of
``kalm_data.mining`` and the filter stage (``RankingConsistency`` through ``StageRunner``) once
per rule and setting (negative assembly decides nothing here and is skipped). Outcome per input
row: kept when its id is in a kept example's ``source_ids``, rejected when in a ``filter``
rejection's; rows that left before the filter (validation, dedup) are not counted. Kept +
rejected is checked to equal the rows the filter was given.

Two choices, both on the tune set only, among the ``mutual`` settings: the one with the best
worst-case of (swapped rejected, clean kept) over the random and source swaps; and the one that
beats ``kalm`` k=50 on both axes in both swaps by the widest margin, if any. The topic swap is a
stress test (some same-focus "swaps" are near-right answers) and is reported, not optimised.
Prints one table per set and swap kind, whether the default and the chosen settings meet
>= 95% / >= 95% on the report set and beat ``kalm`` k=50 on both axes there, and saves a plot
(``--plot``).
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
KINDS = ("random", "source", "topic")


def _default_setting() -> tuple:
    from kalm_data.curate.config import CurateConfig

    cfg = CurateConfig()
    return (cfg.filter_rule, cfg.filter_k, cfg.filter_query_k, cfg.filter_margin)


DEFAULT_SETTING = _default_setting()  # (rule, k, query k, margin) of curate's defaults
KALM_SETTING = ("kalm", 50, 10, 0.05)
SETTINGS = (
    [("none", 50, 10, 0.05)]
    + [("kalm", k, 10, 0.05) for k in (10, 20, 50, 100)]
    + [
        ("mutual", k, qk, m)
        for k in (10, 20, 30, 50)
        for qk in (1, 3, 10, 20, 30)
        for m in (0.0, 0.02, 0.05, 0.1)
    ]
)


# ----------------------------------------------------------------------------- sets


def tune_rows(med: int, disfl: int, seed: int) -> list[dict]:
    """qa_pairs_en: whole MedQuAD focus groups drawn at random up to ``med`` rows, and
    ``disfl`` random Disfl-QA rows."""
    with gzip.open(DATA / "qa_pairs_en" / "pairs.jsonl.gz", "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    rng = random.Random(seed)
    by_focus: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        if r["source"].startswith("medquad"):
            by_focus[r["focus"]].append(r)
    focuses = sorted(by_focus)
    rng.shuffle(focuses)
    picked: list[dict] = []
    for focus in focuses:
        if len(picked) >= med:
            break
        picked += by_focus[focus]
    disfl_rows = [r for r in rows if r["source"].startswith("disfl")]
    return picked + rng.sample(disfl_rows, min(disfl, len(disfl_rows)))


def report_rows(limit: int | None, seed: int) -> list[dict]:
    """rqe_medical train: label-1 pairs whose texts differ, as (query, positive) rows."""
    rows = []
    with open(DATA / "rqe_medical" / "train.jsonl", encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            if r["label"] == 1 and r["text1"].strip() != r["text2"].strip():
                rows.append(
                    {
                        "id": f"rqe-{r['pair_id']}",
                        "source": "rqe/train",
                        "query": r["text1"],
                        "positive": r["text2"],
                    }
                )
    if limit and limit < len(rows):
        rows = random.Random(seed).sample(rows, limit)
    return rows


# ----------------------------------------------------------------------------- swaps


def _cycle(rows: list[dict], chosen: list[int], swapped: set[str]) -> None:
    """Rotate the positives of ``chosen`` (already shuffled): none keeps its own."""
    positives = [rows[i]["positive"] for i in chosen]
    for j, i in enumerate(chosen):
        rows[i] = {**rows[i], "positive": positives[(j + 1) % len(chosen)]}
        swapped.add(rows[i]["id"])


def _topic_partners(rows: list[dict]):
    """A function row index -> same-topic candidates, best first (see module docstring)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    by_focus: dict[str, list[int]] = defaultdict(list)
    by_source: dict[str, list[int]] = defaultdict(list)
    for i, r in enumerate(rows):
        if r.get("focus"):
            by_focus[r["focus"]].append(i)
        else:
            by_source[r["source"]].append(i)
    sims = {}
    for idx in by_source.values():
        m = TfidfVectorizer(stop_words="english").fit_transform([rows[i]["query"] for i in idx])
        sims.update(zip(idx, (m @ m.T).toarray(), strict=True))
    where = {i: (s, idx) for idx in by_source.values() for s, i in enumerate(idx)}

    def partners(i: int, rng: random.Random) -> list[int]:
        if rows[i].get("focus"):
            same = [j for j in by_focus[rows[i]["focus"]] if j != i]
            rng.shuffle(same)
            return same
        s, idx = where[i]
        order = sorted(range(len(idx)), key=lambda t: -sims[i][t])
        return [idx[t] for t in order if idx[t] != i and sims[i][t] > 0]

    return partners


def swap(rows: list[dict], kind: str, share: float, seed: int) -> tuple[list[dict], set[str]]:
    """A copy of ``rows`` with ``share`` of them swapped in the way ``kind`` says."""
    rows, swapped = list(rows), set()
    rng = random.Random(f"{seed}-{kind}")
    if kind == "random":
        _cycle(rows, rng.sample(range(len(rows)), int(len(rows) * share)), swapped)
    elif kind == "source":
        by_source: dict[str, list[int]] = defaultdict(list)
        for i, r in enumerate(rows):
            by_source[r["source"]].append(i)
        for idx in by_source.values():
            _cycle(rows, rng.sample(idx, int(len(idx) * share)), swapped)
    else:
        partners, target, used = _topic_partners(rows), int(len(rows) * share), set()
        for i in rng.sample(range(len(rows)), len(rows)):
            if len(swapped) >= target:
                break
            if i in used:
                continue
            q, p = rows[i]["query"], rows[i]["positive"]
            ok = (
                j
                for j in partners(i, rng)
                if j not in used and rows[j]["query"] != q and rows[j]["positive"] != p
            )
            j = next(ok, None)
            if j is not None:
                used.update((i, j))
                _cycle(rows, [i, j], swapped)
    return rows, swapped


# ----------------------------------------------------------------------------- pipeline


def examples_of(rows: list[dict], task: str) -> list:
    """Validated, deduplicated, merged ``Example``s (the real cores of those stages)."""
    from kalm_data.dedup import merge_by_query, resolve_ids
    from kalm_data.records import InputPair, RawRow
    from kalm_data.validate import validate_row

    pairs = []
    for n, r in enumerate(rows, start=1):
        raw = RawRow(source_file=f"{task}.jsonl", source_row=n, task=task, payload=r)
        out = validate_row(raw, {}, 1_000_000)
        if isinstance(out, InputPair):
            pairs.append(out)
    by_id: dict[str, list] = defaultdict(list)
    for p in pairs:
        by_id[p.id].append(p)
    by_query: dict[str, list] = defaultdict(list)
    for group in by_id.values():
        for p in resolve_ids(group)[0]:
            by_query[p.query].append(p)
    return [merge_by_query(group)[0] for group in by_query.values()]


def embed(texts: set[str], teacher_path: str) -> dict:
    """text key -> vector, from kalm-data's embedding cache or the teacher (then cached)."""
    from kalm_data.embed.buckets import encode_order
    from kalm_data.embed.cache import EmbeddingCache, default_cache_dir
    from kalm_data.embed.teacher import Teacher, teacher_fingerprint
    from kalm_data.text import text_key

    cache = EmbeddingCache(default_cache_dir(), teacher_fingerprint(teacher_path))
    items = encode_order([(text_key(t), t) for t in texts])
    vectors = cache.get("filter_quality", [k for k, _ in items])
    todo = [(k, t) for k, t in items if k not in vectors]
    if todo:
        print(f"  encoding {len(todo)} texts ({len(vectors)} cached)", flush=True)
        teacher = Teacher(teacher_path, threads=2)
        for s in range(0, len(todo), 512):
            chunk = todo[s : s + 512]
            new = teacher.encode([t for _, t in chunk])
            cache.put("filter_quality", [k for k, _ in chunk], new)
            vectors.update(zip([k for k, _ in chunk], new, strict=True))
    return vectors


@dataclass
class Point:
    setting: tuple
    swapped_rejected: float
    clean_kept: float
    rows: int


def measure(examples, vectors, swapped: set[str]) -> list[Point]:
    """Every setting: shares of swapped rows rejected and of clean rows kept, per input row.

    The real ``build_pool`` / ``rank_task`` (once per ``filter_k``, ``filter_query_k``) and the
    real filter stage through its Beam shell's runner (which checks that rows balance);
    negative assembly, which decides nothing here, is left out to keep the grid fast."""
    from kalm_data.beam.stage import StageRunner
    from kalm_data.curate.config import CurateConfig
    from kalm_data.mining.params import MiningParams
    from kalm_data.mining.pool import build_pool
    from kalm_data.mining.rank import rank_task
    from kalm_data.records import RejectedRecord
    from kalm_data.stages.filter import RankingConsistency

    pool, ranked, points = build_pool(examples, vectors, []), {}, []
    given = sum(len(e.source_ids) for e in examples)
    for setting in SETTINGS:
        rule, k, query_k, margin = setting
        cfg = CurateConfig(
            filter_rule=rule, filter_k=k, filter_query_k=query_k, filter_margin=margin
        )
        params = MiningParams.from_config(cfg)
        if (k, query_k) not in ranked:
            ranked[k, query_k] = rank_task(pool, params)
        runner = StageRunner(RankingConsistency(params))
        runner.setup()
        kept, dropped = set(), set()
        for out in (o for r in ranked[k, query_k] for o in runner(r)):
            if isinstance(out, RejectedRecord):
                dropped.update(json.loads(out.record)["source_ids"])
            else:
                kept.update(out.example.source_ids)
        if kept & dropped or len(kept) + len(dropped) != given:
            raise AssertionError(f"rows do not balance: {len(kept)} + {len(dropped)} != {given}")
        sw, clean = swapped & (kept | dropped), (kept | dropped) - swapped
        points.append(
            Point(
                setting,
                len(sw & dropped) / max(len(sw), 1),
                len(clean & kept) / max(len(clean), 1),
                given,
            )
        )
    return points


# ----------------------------------------------------------------------------- report


def name(setting: tuple) -> str:
    rule, k, qk, m = setting
    if rule == "none":
        return "none"
    if rule == "kalm":
        return f"kalm k={k}"
    return f"mutual k={k} qk={qk} m={m:g}"


def table(title: str, points: list[Point], marks: dict[tuple, str]) -> None:
    print(f"\n{title}")
    print(f"  {'rule, setting':<30}{'swapped rejected':>18}{'clean kept':>12}")
    for p in points:
        mark = marks.get(p.setting, "")
        print(f"  {name(p.setting):<30}{p.swapped_rejected:>18.1%}{p.clean_kept:>12.1%}  {mark}")


def choose(tune: dict[str, list[Point]]) -> tuple:
    """The mutual setting with the best worst-case over the random and source swaps."""
    worst: dict[tuple, float] = defaultdict(lambda: 1.0)
    for kind in ("random", "source"):
        for p in tune[kind]:
            if p.setting[0] == "mutual":
                worst[p.setting] = min(worst[p.setting], p.swapped_rejected, p.clean_kept)
    return max(worst, key=lambda s: (worst[s], s == DEFAULT_SETTING))


def choose_over_kalm(tune: dict[str, list[Point]]) -> tuple | None:
    """The mutual setting that beats ``kalm`` k=50 on both axes for the random and the source
    swaps of the tune set by the widest margin (the smallest of its four gains), or None."""
    gain: dict[tuple, float] = defaultdict(lambda: 1.0)
    for kind in ("random", "source"):
        kalm = next(p for p in tune[kind] if p.setting == KALM_SETTING)
        for p in tune[kind]:
            if p.setting[0] == "mutual":
                gain[p.setting] = min(
                    gain[p.setting],
                    p.swapped_rejected - kalm.swapped_rejected,
                    p.clean_kept - kalm.clean_kept,
                )
    best = max(gain, key=lambda s: (gain[s], s == DEFAULT_SETTING))
    return best if gain[best] > 0 else None


def verdict(points: list[Point], setting: tuple) -> str:
    by = {p.setting: p for p in points}
    p, kalm = by[setting], by[KALM_SETTING]
    goal = p.swapped_rejected >= 0.95 and p.clean_kept >= 0.95
    beats = p.swapped_rejected > kalm.swapped_rejected and p.clean_kept > kalm.clean_kept
    return (
        f"{name(setting)}: {p.swapped_rejected:.1%} rejected / {p.clean_kept:.1%} kept; "
        f">= 95%/95%: {'yes' if goal else 'no'}; beats kalm k=50 "
        f"({kalm.swapped_rejected:.1%} / {kalm.clean_kept:.1%}) on both: "
        f"{'yes' if beats else 'no'}"
    )


def plot(results: dict, marks: dict[tuple, str], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sets = list(results)
    fig, axes = plt.subplots(len(sets), len(KINDS), figsize=(5 * len(KINDS), 4.5 * len(sets)))
    colours = {"kalm": "tab:red", "mutual": "tab:blue", "none": "tab:grey"}
    for r, set_name in enumerate(sets):
        for c, kind in enumerate(KINDS):
            ax = axes[r][c]
            for p in results[set_name][kind]:
                big = p.setting in marks or p.setting[0] != "mutual"
                ax.scatter(
                    100 * p.clean_kept,
                    100 * p.swapped_rejected,
                    c=colours[p.setting[0]],
                    s=40 if big else 10,
                    alpha=1.0 if big else 0.4,
                )
                if big:
                    label = marks.get(p.setting) or name(p.setting)
                    ax.annotate(label, (100 * p.clean_kept, 100 * p.swapped_rejected), fontsize=7)
            ax.axhline(95, ls=":", c="k", lw=0.8)
            ax.axvline(95, ls=":", c="k", lw=0.8)
            ax.set_title(f"{set_name} / {kind} swap", fontsize=10)
            ax.set_xlabel("clean rows kept (%)")
            ax.set_ylabel("swapped rows rejected (%)")
    fig.suptitle("ranking-consistency filter, per input row (red kalm, blue mutual, grey none)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


# ----------------------------------------------------------------------------- main


def run_set(rows: list[dict], task: str, args) -> dict[str, list[Point]]:
    """Every swap kind of one set through every setting."""
    from kalm_data.embed.teacher import default_teacher

    out = {}
    for kind in KINDS:
        swapped_rows, swapped = swap(rows, kind, args.share, args.seed)
        examples = examples_of(swapped_rows, task)
        texts = {t for e in examples for t in (e.query, *e.positives, *e.negatives)}
        vectors = embed(texts, args.teacher or default_teacher())
        multi = sum(1 for e in examples if len(e.source_ids) > 1)
        start = time.time()
        out[kind] = measure(examples, vectors, swapped)
        print(
            f"  {task} / {kind}: {len(rows)} rows, {len(swapped)} swapped, "
            f"{out[kind][0].rows} reach the filter in {len(examples)} examples "
            f"({multi} merged from several rows); {len(SETTINGS)} settings "
            f"in {time.time() - start:.0f}s",
            flush=True,
        )
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--med-rows", type=int, default=2000, help="tune set: MedQuAD rows (about)")
    p.add_argument("--disfl-rows", type=int, default=1000, help="tune set: Disfl-QA rows")
    p.add_argument("--report-rows", type=int, default=None, help="report set: subsample")
    p.add_argument("--share", type=float, default=0.10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--teacher", default=None, help="default: the offline MiniLM")
    p.add_argument("--plot", default="filter_quality.png")
    args = p.parse_args()

    import torch

    torch.set_num_threads(2)
    start = time.time()
    results = {
        "tune: qa_pairs_en": run_set(
            tune_rows(args.med_rows, args.disfl_rows, args.seed), "qa", args
        ),
        "report: rqe_medical": run_set(report_rows(args.report_rows, args.seed), "rqe", args),
    }
    tune, report = results.values()
    chosen, over_kalm = choose(tune), choose_over_kalm(tune)
    marks = {DEFAULT_SETTING: "default", chosen: "chosen on tune"}
    if over_kalm is not None:
        marks[over_kalm] = "beats kalm on tune"
    if chosen == DEFAULT_SETTING:
        marks[chosen] = "default = chosen on tune"
    for set_name, by_kind in results.items():
        for kind in KINDS:
            table(f"{set_name}, {kind} swap ({args.share:.0%} of rows)", by_kind[kind], marks)
    print("\nReport set (settings chosen on the tune set only):")
    for kind in KINDS:
        for setting in dict.fromkeys(s for s in (DEFAULT_SETTING, chosen, over_kalm) if s):
            print(f"  {kind:<7}{verdict(report[kind], setting)}")
    plot(results, marks, args.plot)
    print(f"\nplot: {Path(args.plot).resolve()}; total {time.time() - start:.0f}s")


if __name__ == "__main__":
    main()
