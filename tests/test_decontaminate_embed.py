"""Decontamination's embedding test (``kalm_data.stages.decontaminate_embed``,
``kalm_data.beam.decontaminate_embed``): the pure core on hand-made vectors, and the Beam
transform on real MRPC paraphrases and qa_pairs_en answers with the real MiniLM teacher, checked
against cosines computed directly with ``Teacher``."""

from __future__ import annotations

import csv
import json

import apache_beam as beam
import numpy as np
import pytest
from apache_beam.testing.test_pipeline import TestPipeline

from kalm_data.beam import only_rejected
from kalm_data.beam.decontaminate import Decontaminate
from kalm_data.beam.decontaminate_embed import EmbedCheck
from kalm_data.curate.config import CurateConfig
from kalm_data.embed.teacher import Teacher, default_teacher, teacher_fingerprint
from kalm_data.records import InputPair, RejectedRecord
from kalm_data.stages import decontaminate as dc
from kalm_data.stages.decontaminate_embed import best_matches, eval_shard, shard_count
from kalm_data.text import normalize

from realdata import DATA, load_pairs, write_jsonl

THRESHOLD = 0.85


def unit(*xs: float) -> np.ndarray:
    v = np.array(xs, dtype=np.float32)
    return v / np.linalg.norm(v)


def ref(i: str) -> dc.EvalRef:
    return dc.EvalRef("eval", "text", i)


def test_best_matches_names_the_highest_cosine_then_the_smallest_ref_in_any_order():
    evals = np.stack([unit(1, 0, 0), unit(0, 1, 0), unit(1, 0, 0), unit(1, 1, 0)])
    refs = [ref("b"), ref("y"), ref("a"), ref("m")]
    train = np.stack([unit(1, 0, 0), unit(0, 0, 1), unit(1, 1, 0.1), unit(0, 1, 0.2)])
    got = best_matches(train, evals, refs, 0.95)
    # row 0 ties "b" and "a" at 1.0: "a"; row 1 matches nothing; row 2 is closest to "m";
    # row 3 is at cos 0.98 to "y"
    assert [(r, x.id, round(s, 4)) for r, x, s in got] == [
        (0, "a", 1.0),
        (2, "m", round(float(train[2] @ evals[3]), 4)),
        (3, "y", round(float(train[3] @ evals[1]), 4)),
    ]
    order = [3, 1, 0, 2]  # the evaluation rows in another order: the same answer
    again = best_matches(train, evals[order], [refs[i] for i in order], 0.95)
    assert again == got
    assert best_matches(train, evals[:0], [], 0.5) == []
    assert best_matches(train, evals, refs, 1.01) == []


def test_as_few_shards_as_hold_the_evaluation_set():
    assert shard_count(0, 16) == 1
    assert shard_count(100_000, 16) == 1
    assert shard_count(100_001, 16) == 2
    assert shard_count(24, 3, per_shard=10) == 3
    assert shard_count(10**9, 16) == 16


def test_eval_shards_are_key_ranges():
    assert eval_shard("00000000" + "0" * 24, 4) == 0
    assert eval_shard("3fffffff" + "0" * 24, 4) == 0
    assert eval_shard("40000000" + "0" * 24, 4) == 1
    assert eval_shard("ffffffff" + "f" * 24, 4) == 3


def pair(query: str, positive: str, negatives=(), pid: str = "p1") -> InputPair:
    return InputPair(
        id=pid,
        task="t",
        query=query,
        positives=[positive],
        negatives=list(negatives),
        source_file="pairs.jsonl",
        source_row=1,
    )


def test_an_embedding_match_rejects_with_its_cosine_and_an_ngram_match_is_named_first():
    p = pair("q", "d", ["n1", "n2"])
    close = dc.Match("positive", 0, dc.Kind.EMBEDDING, ref("e9"), 0.91234)
    out = dc.decide(p, [close])
    assert isinstance(out, RejectedRecord) and out.reason == "contaminated"
    assert out.detail.endswith(
        "positive 1 matches evaluation set 'eval' text 'e9' (teacher cosine 0.9123)"
    )
    closer = dc.Match("positive", 0, dc.Kind.EMBEDDING, ref("z1"), 0.97)
    assert "'z1' (teacher cosine 0.9700)" in dc.decide(p, [close, closer]).detail
    gram = dc.Match("positive", 0, dc.Kind.NGRAM, ref("e5"))
    assert "'e5' (shared word n-gram)" in dc.decide(p, [closer, gram]).detail
    kept = dc.decide(p, [dc.Match("negative", 1, dc.Kind.EMBEDDING, ref("e1"), 0.99)])
    assert isinstance(kept, InputPair) and kept.negatives == ["n1"]


def mrpc_paraphrases(n: int) -> list[tuple[str, str]]:
    path = DATA / "mrpc" / "msr-para-test.tsv"
    if not path.exists():
        pytest.skip(f"real data not found at {path}")
    with open(path, encoding="utf-8-sig") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))[1:]
    para = [(r[3], r[4]) for r in rows if len(r) == 5 and r[0] == "1"]
    # only those that exact and n-gram matching miss: what the embedding test is for
    return [(a, b) for a, b in para if not shares_ngram(a, b)][:n]


def shares_ngram(a: str, b: str) -> bool:
    return dc.normalise(a) == dc.normalise(b) or bool(
        set(dc.ngram_hashes(a, 13).tolist()) & set(dc.ngram_hashes(b, 13).tolist())
    )


@pytest.fixture(scope="module")
def teacher() -> Teacher:
    return Teacher(default_teacher(), threads=1)


def planted(tmp_path, teacher: Teacher, n: int = 24) -> tuple[list[InputPair], dict]:
    """Pairs whose queries are MRPC sentences and positives medical answers, an evaluation
    JSONL (``tmp_path/eval.jsonl``) of the MRPC sentences' paraphrases, and the rejections the
    cosines computed here with ``Teacher`` call for: {pair id: (role named, eval id)}."""
    para = mrpc_paraphrases(n)
    answers = [r["positive"] for r in load_pairs(n, source="medquad")]
    pairs = [
        pair(normalize(q), normalize(a), pid=f"p{i:02d}")
        for i, ((q, _), a) in enumerate(zip(para, answers, strict=True))
    ]
    evals = [normalize(e) for _, e in para]
    write_jsonl(
        tmp_path / "eval.jsonl", [{"id": f"e{i:02d}", "text": e} for i, e in enumerate(evals)]
    )
    ev = teacher.encode(evals)
    expected = {}
    for p in pairs:
        best = None  # a positive is named before the query (``Match.rank``)
        for role, text in (("positive 1", p.positives[0]), ("query", p.query)):
            scores = ev @ teacher.encode([text])[0]
            j = int(scores.argmax())
            assert abs(scores[j] - THRESHOLD) > 1e-4  # no case on the edge of float noise
            if scores[j] >= THRESHOLD and best is None:
                best = (role, f"e{j:02d}")
        if best:
            expected[p.id] = best
    assert 3 <= len(expected) <= len(pairs) - 3  # both outcomes are exercised
    return pairs, expected


def assert_rejections(details: dict[str, str], expected: dict) -> None:
    assert set(details) == set(expected)
    for pid, (role, eid) in expected.items():
        assert f"{role} matches evaluation set 'eval' text '{eid}' (teacher cosine" in details[pid]


def test_pairs_close_to_an_evaluation_text_are_rejected_exactly_as_direct_cosines_say(
    tmp_path, teacher
):
    """The transform (real teacher, cache, shards) rejects exactly the pairs whose cosines,
    computed directly on the same texts, reach the threshold, names the best evaluation text,
    and gives the same output with 1 and 3 shards."""
    pairs, expected = planted(tmp_path, teacher)
    cfg = CurateConfig(
        cache_dir=str(tmp_path / "cache"),
        decontaminate=[str(tmp_path / "eval.jsonl")],
        decontam_embed_threshold=THRESHOLD,
    )
    fingerprint = teacher_fingerprint(default_teacher())

    for shards in (1, 3):
        # 10 evaluation texts a shard: 3 shards of the 24 when 3 are allowed
        check = EmbedCheck(THRESHOLD, cfg, default_teacher(), fingerprint, texts_per_shard=10)
        with TestPipeline() as p:
            kept, rejected = (
                p
                | beam.Create(pairs)
                | Decontaminate([str(tmp_path / "eval.jsonl")], shards=shards, embed=check)
            )
            got = only_rejected(rejected) | beam.Map(lambda r: json.dumps([r.id, r.detail]))
            _ = (
                kept
                | beam.Map(lambda x: x.id)
                | "WriteKept" >> beam.io.WriteToText(f"{tmp_path}/{shards}-kept")
            )
            _ = got | "WriteRejected" >> beam.io.WriteToText(f"{tmp_path}/{shards}-rejected")
        kept = {line.strip() for f in tmp_path.glob(f"{shards}-kept*") for line in f.open()}
        rejected = dict(
            json.loads(line) for f in tmp_path.glob(f"{shards}-rejected*") for line in f.open()
        )
        assert kept == {p.id for p in pairs} - set(expected)
        assert_rejections(rejected, expected)


def test_cli_embedding_decontamination_encodes_each_text_once_and_keys_the_checkpoint(
    tmp_path, teacher
):
    """``kalm-data curate --decontaminate EVAL --decontam-embed-threshold T``: the planted
    rejections with their cosines, rows balanced; the embedding stage after it finds every
    training text in the cache (none encoded twice); a new threshold re-runs the pairs stage."""
    import pyarrow.parquet as pq

    from kalm_data.cli import main

    pairs, expected = planted(tmp_path, teacher)
    rows = [
        {"id": p.id, "query": p.query, "positive": p.positives[0], "source": "mix"} for p in pairs
    ]
    src = write_jsonl(tmp_path / "pairs.jsonl", rows)
    out, cache = tmp_path / "out", tmp_path / "cache"

    def curate(threshold: float) -> dict:
        argv = ["curate", "--input", str(src), "--output", str(out), "--cache-dir", str(cache)]
        argv += ["--decontaminate", str(tmp_path / "eval.jsonl")]
        argv += ["--decontam-embed-threshold", str(threshold), "--overwrite"]
        argv += ["--window-start", "1", "--window-end", "6", "--num-negatives", "2"]
        argv += ["--filter-rule", "none", "--no-near-dup", "--direct_num_workers", "1"]
        assert main(argv) == 0
        return json.loads((out / "manifest.json").read_text())

    manifest = curate(THRESHOLD)
    counts = manifest["counts"]
    assert counts["balanced"] and counts["rows_read"] == len(rows)
    assert counts["rejected"]["decontaminate"] == {"contaminated": len(expected)}
    table = pq.read_table(next(out.glob("rejected/decontaminate/*.parquet")))
    ids, details = table["id"].to_pylist(), table["detail"].to_pylist()
    assert_rejections(dict(zip(ids, details, strict=True)), expected)
    assert manifest["mining"].get("texts_encoded", 0) == 0  # all embedded by decontamination
    assert manifest["mining"]["texts_from_cache"] > 0
    assert manifest["settings"]["decontam_embed_threshold"] == THRESHOLD

    again = curate(0.99)
    assert again["checkpoints"]["pairs"]["reused"] is False
    assert sum(again["counts"]["rejected"].get("decontaminate", {}).values()) < len(expected)
