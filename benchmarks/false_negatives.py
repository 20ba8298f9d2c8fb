"""How many of curate's mined hard negatives are false negatives, judged on human labels.

    taskset -c 0 python benchmarks/false_negatives.py --work /work/runs/fn \\
        -- --direct_num_workers=1 --direct_running_mode=in_memory

Data: ``../shared/data/rqe_medical/{train,test}.jsonl`` (RQE, Ben Abacha & Demner-Fushman 2016,
CC BY 4.0): consumer health question ``text1``, short question ``text2``, label 1 = ``text1``
entails ``text2`` (the same information need), label 0 = not entailed (train: a random short
question; test: an FAQ on the same topic).

What is measured, in one run:

1. ``kalm-data curate`` with its default settings (task ``rqe``, output and embedding cache
   under ``--work``) on the label-1 rows of train and test: query = ``text1``, positive = the
   query's FIRST label-1 ``text2``. Every other labelled text goes into ``--corpus``: the
   query's other label-1 texts (held out, so that mining one is a visible false negative; rows
   with the same query would otherwise be merged into positives and never mined) and label-0
   texts not already in the pool (test label-0 texts are same-topic FAQs). Without this, no
   labelled text but the query's own positive is ever a candidate.
2. The peer, sentence-transformers' ``mine_hard_negatives``, called exactly as
   ``benchmarks/bench_curate.py`` calls it (same teacher, ranks 50-99, 7 negatives, relative
   margin 0.05 = curate's margin 0.95 x positive) plus the same corpus, on the rows that pass
   curate's validation.
3. Every mined (query, negative) pair is judged against all labelled pairs (both labels):
   - ``exact``: (query, negative) labelled, texts compared after ``kalm_data.text.normalize``;
   - ``near``: texts compared by near-equality classes (word-set Jaccard >= 0.8, joined
     transitively); a negative in the query's own class is the same question (false);
   - ``closure``: ``near`` plus entailment chains: q entails p (label 1) and p entails n
     (label 1) means q entails n, so n is a false negative.
   A negative is a known FALSE negative when labelled 1 (entailed), a known TRUE negative when
   labelled 0, conflicting when both; the rest are unjudged.
4. The false-negative rate among judged negatives and among all mined negatives, per level, for
   both miners and their ratio; the rates by rank (0-based among the task pool without the
   query's own positives and text, curate's ``negative_ranks``; the peer's ranks are recomputed
   with the same teacher); and curate's rejections, which are all labelled-1 pairs.
"""

from __future__ import annotations

import argparse
import collections
import json
import random
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_curate import mine_st  # noqa: E402
from scaling_data import write_jsonl  # noqa: E402

from kalm_data.text import normalize  # noqa: E402

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "rqe_medical"
TASK = "rqe"
LEVELS = ("exact", "near", "closure")
RANK_BINS = ((0, 50), (50, 60), (60, 70), (70, 80), (80, 90), (90, 100), (100, 10**9))


@dataclass(frozen=True)
class Mined:
    """One mined negative of one query; ``rank`` is 0-based in the pool (None: unknown)."""

    query: str
    negative: str
    rank: int | None = None


# ---------------------------------------------------------------- data and the two miners


def load_rqe(folder: Path) -> list[dict]:
    """Train and test rows; test ids get a ``test-`` prefix (the files number pairs alike)."""
    rows = []
    for split in ("train", "test"):
        with open(folder / f"{split}.jsonl", encoding="utf-8") as f:
            for line in f:
                r = json.loads(line)
                r["pair_id"] = r["pair_id"] if split == "train" else f"test-{r['pair_id']}"
                rows.append(r)
    return rows


def split_inputs(rows: list[dict]) -> tuple[list[dict], list[str]]:
    """Curate's pairs (the first label-1 text of each query) and its corpus (every other
    labelled text: held-out label-1 texts, which are known false negatives when mined, and
    label-0 texts, known true negatives), so each judgement has a text in the pool to hit."""
    pairs, kept = [], set()
    for r in rows:
        q = normalize(r["text1"])
        if r["label"] == 1 and q not in kept:
            kept.add(q)
            pairs.append({"id": r["pair_id"], "query": r["text1"], "positive": r["text2"]})
    # curate rejects query == positive rows at validation: their texts must come from the corpus
    in_pool = {normalize(r["positive"]) for r in pairs} - {normalize(r["query"]) for r in pairs}
    corpus = sorted({normalize(r["text2"]) for r in rows} - in_pool)
    return pairs, corpus


def run_curate(src: Path, corpus: Path, work: Path, beam_args: list[str]) -> Path:
    """``kalm-data curate`` with default settings; returns the output folder."""
    out = work / "curate"
    cmd = [str(Path(sys.executable).parent / "kalm-data"), "curate", "--input", str(src)]
    cmd += ["--task", TASK, "--corpus", str(corpus), "--output", str(out)]
    cmd += ["--cache-dir", str(work / "cache")]
    if (out / "manifest.json").exists():
        cmd.append("--overwrite")
    subprocess.run([*cmd, *beam_args], check=True, cwd=work)
    return out


def read_curated(out: Path) -> tuple[list[Mined], int]:
    """Curate's mined negatives (given ones have rank -1; none here) and its example count."""
    import pyarrow.parquet as pq

    cols = ["query", "negatives", "negative_ranks"]
    table = pq.read_table(out / "data" / TASK, columns=cols).to_pylist()
    mined = [
        Mined(normalize(r["query"]), normalize(n), k)
        for r in table
        for n, k in zip(r["negatives"], r["negative_ranks"], strict=True)
        if k >= 0
    ]
    return mined, len(table)


def read_rejected(out: Path) -> list[dict]:
    import pyarrow.parquet as pq

    folder = out / "rejected"
    if not folder.exists():
        return []
    cols = ["id", "stage", "reason"]
    return [
        row
        for p in sorted(folder.glob("*/*.parquet"))
        for row in pq.read_table(p, columns=cols).to_pylist()
    ]


def run_peer(rows: list[dict], corpus: list[str], seed: int = 0) -> tuple[list[Mined], int]:
    """The peer's unique (query, negative) pairs, and how many queries got negatives."""
    random.seed(seed)  # its "random" sampling draws from Python's global RNG
    table = mine_st(rows, corpus).to_list()
    pairs = {
        (normalize(r["query"]), normalize(v))
        for r in table
        for k, v in r.items()
        if k.startswith("negative")
    }
    return [Mined(q, n) for q, n in sorted(pairs)], len({q for q, _ in pairs})


def recompute_ranks(mined: list[Mined], rows: list[dict], corpus: list[str]) -> list[int]:
    """Ranks of mined negatives, defined as curate's: 0-based among the pool (the positives of
    ``rows`` and the corpus), leaving out the query's own positives and its own text."""
    import numpy as np
    from sentence_transformers import SentenceTransformer

    from kalm_data.embed.teacher import default_teacher

    own: dict[str, set[str]] = collections.defaultdict(set)
    for r in rows:
        own[normalize(r["query"])].add(normalize(r["positive"]))
    pool = sorted({p for ps in own.values() for p in ps} | set(corpus))
    queries = sorted({m.query for m in mined})
    model = SentenceTransformer(default_teacher(), device="cpu")
    enc = {"normalize_embeddings": True, "batch_size": 32, "show_progress_bar": False}
    scores = model.encode(queries, **enc) @ model.encode(pool, **enc).T  # (n_queries, n_pool)
    q_row, p_col = {q: i for i, q in enumerate(queries)}, {p: j for j, p in enumerate(pool)}
    ranks = []
    for m in mined:
        s = scores[q_row[m.query]]  # (n_pool,)
        keep = np.ones(len(pool), dtype=bool)
        keep[[p_col[p] for p in own[m.query] | {m.query} if p in p_col]] = False
        ranks.append(int((s[keep] > s[p_col[m.negative]]).sum()))
    return ranks


# ---------------------------------------------------------------- the judgement


def near_classes(texts: list[str], threshold: float) -> dict[str, int]:
    """Class id per text: texts joined (transitively) when their lower-cased word sets have
    Jaccard >= ``threshold``. One sparse product gives every pair's overlap."""
    import numpy as np
    from scipy import sparse

    words = [set(re.findall(r"\w+", t.lower())) for t in texts]
    vocab: dict[str, int] = {}
    rows, cols = [], []
    for i, ws in enumerate(words):
        for w in ws:
            rows.append(i)
            cols.append(vocab.setdefault(w, len(vocab)))
    x = sparse.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), (len(texts), len(vocab)))
    overlap = (x @ x.T).tocoo()  # (n_texts, n_texts) shared words
    sizes = np.array([len(ws) for ws in words])
    union = sizes[overlap.row] + sizes[overlap.col] - overlap.data
    close = (overlap.data >= threshold * union) & (overlap.row < overlap.col)
    parent = list(range(len(texts)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, b in zip(overlap.row[close], overlap.col[close], strict=True):
        parent[root(int(a))] = root(int(b))
    return {t: root(i) for i, t in enumerate(texts)}


class Judge:
    """Verdicts on (query, negative) pairs from the labelled RQE rows. See module docstring."""

    def __init__(self, rows: list[dict], threshold: float = 0.8):
        texts = sorted({normalize(r[k]) for r in rows for k in ("text1", "text2")})
        self.exact = {t: i for i, t in enumerate(texts)}
        self.near = near_classes(texts, threshold)
        self.labels = {level: self._labels(rows, level) for level in ("exact", "near")}
        self.entails: dict[int, set[int]] = collections.defaultdict(set)
        for (a, b), seen in self.labels["near"].items():
            if 1 in seen:
                self.entails[a].add(b)
        self._reach: dict[int, set[int]] = {}

    def _cls(self, text: str, level: str) -> int | None:
        return (self.exact if level == "exact" else self.near).get(text)

    def _labels(self, rows: list[dict], level: str) -> dict[tuple[int, int], set[int]]:
        out: dict[tuple[int, int], set[int]] = collections.defaultdict(set)
        for r in rows:
            a, b = (self._cls(normalize(r[k]), level) for k in ("text1", "text2"))
            out[(a, b)].add(int(r["label"]))
        return out

    def reach(self, start: int) -> set[int]:
        """Classes entailed by ``start`` through chains of label-1 pairs (itself included)."""
        if start not in self._reach:
            seen, todo = {start}, [start]
            while todo:
                for nxt in self.entails.get(todo.pop(), ()):
                    if nxt not in seen:
                        seen.add(nxt)
                        todo.append(nxt)
            self._reach[start] = seen
        return self._reach[start]

    def verdict(self, query: str, negative: str, level: str) -> str | None:
        """'false', 'true', 'conflict' or None (unjudged) for a mined negative."""
        base = "exact" if level == "exact" else "near"
        q, n = self._cls(query, base), self._cls(negative, base)
        if q is None or n is None:
            return None
        seen = set(self.labels[base].get((q, n), ()))
        if level != "exact" and q == n:
            seen.add(1)  # the same question as the query
        if level == "closure" and n in self.reach(q):
            seen.add(1)
        return {frozenset({1}): "false", frozenset({0}): "true"}.get(
            frozenset(seen), "conflict" if seen else None
        )


# ---------------------------------------------------------------- tallies and tables


def tally(judge: Judge, mined: list[Mined], level: str) -> collections.Counter:
    return collections.Counter(judge.verdict(m.query, m.negative, level) for m in mined)


def rate(part: int, whole: int) -> str:
    return f"{part / whole:.2%}" if whole else "n/a"


def level_rows(judge: Judge, mined: list[Mined]) -> dict[str, list[str]]:
    """Table cells per level: judged false / true / conflict, rate in judged, rate in all."""
    cells = {}
    for level in LEVELS:
        c = tally(judge, mined, level)
        judged = c["false"] + c["true"]
        cells[level] = [
            f"{c['false']} / {c['true']} / {c['conflict']}",
            rate(c["false"], judged),
            rate(c["false"], len(mined)),
        ]
    return cells


def md_row(label: str, cells: list[str]) -> str:
    return f"| {label} | {' | '.join(cells)} |"


def print_summary(judge: Judge, arms: dict[str, tuple[list[Mined], int]]) -> None:
    names = list(arms)
    print("\n" + md_row("", names) + "\n|---|" + "---|" * len(names))
    print(md_row("queries with negatives", [str(arms[a][1]) for a in names]))
    print(md_row("mined negatives (unique query, negative)", [str(len(arms[a][0])) for a in names]))
    cells = {a: level_rows(judge, arms[a][0]) for a in names}
    heads = ("judged false / true / conflict", "FN rate in judged", "FN rate in all mined")
    for level in LEVELS:
        for i, head in enumerate(heads):
            print(md_row(f"{level}: {head}", [cells[a][level][i] for a in names]))
    print()
    for level in LEVELS:
        ours, peer = (tally(judge, arms[a][0], level)["false"] / len(arms[a][0]) for a in names)
        ratio = f"{ours / peer:.2f}" if peer else "n/a"
        print(f"{level}: FN rate in all mined, ours {ours:.3%}, peer {peer:.3%}, ours/peer {ratio}")


def print_by_rank(judge: Judge, arms: dict[str, tuple[list[Mined], int]], level: str) -> None:
    names = list(arms)
    print(f"\nBy rank ({level} judgement): mined / known false (rate)\n")
    print(md_row("rank", names) + "\n|---|" + "---|" * len(names))
    for lo, hi in RANK_BINS:
        cells = []
        for a in names:
            sel = [m for m in arms[a][0] if m.rank is not None and lo <= m.rank < hi]
            false = tally(judge, sel, level)["false"]
            cells.append(f"{len(sel)} / {false} ({rate(false, len(sel))})")
        label = f"{lo}-{hi - 1}" if hi < 10**9 else f">= {lo}"
        print(md_row(label, cells))


def labelled_candidates(
    rows: list[dict], valid: list[dict], corpus: list[str]
) -> list[tuple[Mined, int]]:
    """Labelled (query, text) pairs a miner could draw, with their label: the query was mined
    for, the text is in the pool and is not the query's positive."""
    queries = {normalize(r["query"]): normalize(r["positive"]) for r in valid}
    pool = set(queries.values()) | set(corpus)
    out = set()
    for r in rows:
        q, t = normalize(r["text1"]), normalize(r["text2"])
        if q in queries and t in pool and t not in (q, queries[q]):
            out.add((Mined(q, t), int(r["label"])))
    return sorted(out, key=lambda ml: (ml[0].query, ml[0].negative, ml[1]))


def print_labelled_ranks(labels: list[int], ranks: list[int]) -> None:
    """Where the labelled texts sit in each query's ranking: the window sees only 50-99."""
    print("\nLabelled candidates by rank (same ranking as above)\n")
    print(md_row("rank", ["label 1 (entailed: false negative if mined)", "label 0"]))
    print("|---|---|---|")
    for lo, hi in RANK_BINS:
        cells = [
            str(sum(lo <= k < hi for y, k in zip(labels, ranks, strict=True) if y == label))
            for label in (1, 0)
        ]
        print(md_row(f"{lo}-{hi - 1}" if hi < 10**9 else f">= {lo}", cells))


def print_rejections(rejected: list[dict], labelled_rows: int) -> None:
    """Curate's rejections: every input row is a labelled entailment, so each one is a correct
    pair removed; the filter's are its false rejections on this set."""
    by_reason = collections.Counter((r["stage"], r["reason"]) for r in rejected)
    filt = sum(n for (stage, _), n in by_reason.items() if stage == "filter")
    print(f"\nRejected label-1 rows: {len(rejected)} of {labelled_rows}; by the filter: {filt}")
    print(f"({rate(filt, labelled_rows)} of the input)\n\n| stage | reason | rows |\n|---|---|---|")
    for (stage, reason), n in by_reason.most_common():
        print(f"| {stage} | {reason} | {n} |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="rqe_medical folder")
    p.add_argument("--work", type=Path, required=True, help="curate input, output and cache")
    p.add_argument("--near", type=float, default=0.8, help="word Jaccard for near-equal texts")
    p.add_argument("beam", nargs="*", help="Beam options for curate, after --")
    args = p.parse_args()
    rows = load_rqe(args.data)
    pairs, corpus = split_inputs(rows)
    src = write_jsonl(args.work / f"{TASK}.jsonl", pairs)
    pool = write_jsonl(args.work / "corpus.jsonl", [{"text": t} for t in corpus])
    out = run_curate(src, pool, args.work, args.beam)
    ours, examples = read_curated(out)
    rejected = read_rejected(out)
    dropped = {r["id"] for r in rejected if r["stage"] == "validate"}
    valid = [r for r in pairs if r["id"] not in dropped]
    peer, peer_queries = run_peer(valid, corpus)
    labelled = labelled_candidates(rows, valid, corpus)
    ranks = recompute_ranks(peer + ours + [m for m, _ in labelled], valid, corpus)
    peer = [Mined(m.query, m.negative, k) for m, k in zip(peer, ranks, strict=False)]
    ours_ranks = ranks[len(peer) : len(peer) + len(ours)]
    same = sum(abs(m.rank - k) <= 1 for m, k in zip(ours, ours_ranks, strict=True))
    judge = Judge(rows, args.near)
    arms = {"kalm-data curate": (ours, examples), "st mine_hard_negatives": (peer, peer_queries)}
    print(
        f"\n{len(rows)} labelled pairs ({sum(r['label'] == 1 for r in rows)} label 1); curate "
        f"input {len(pairs)} pairs, corpus {len(corpus)} texts; "
        f"{len(set(judge.near.values()))} near-equality classes of {len(judge.exact)} texts"
    )
    print(f"rank check: recomputed rank within 1 of curate's for {same} of {len(ours)} negatives")
    print_summary(judge, arms)
    print_by_rank(judge, arms, "closure")
    print_labelled_ranks([y for _, y in labelled], ranks[len(peer) + len(ours) :])
    print_rejections(rejected, len(pairs))


if __name__ == "__main__":
    main()
