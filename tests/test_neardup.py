"""Near-duplicate removal (``kalm_data.stages.neardup`` + ``kalm_data.beam.neardup``) on real
paraphrase data: MRPC sentence pairs as queries, STS-B sentence pairs as positives."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import apache_beam as beam
import numpy as np
import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from kalm_data.beam import only_rejected
from kalm_data.beam.neardup import NearDuplicates
from kalm_data.harness.run import LOCAL_RUNNER
from kalm_data.records import InputPair, RejectedRecord
from kalm_data.stages import neardup as nd

from realdata import DATA

THRESHOLD = 0.8


def mrpc(label: int) -> list[tuple[str, str]]:
    rows = []
    for split in ("train", "test"):
        path = DATA / "mrpc" / f"msr-para-{split}.tsv"
        if not path.exists():
            pytest.skip(f"real data not found at {path}")
        with open(path, encoding="utf-8-sig") as f:
            rows += list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))[1:]
    return [(r[3], r[4]) for r in rows if len(r) == 5 and int(r[0]) == label]


def stsb(keep) -> list[tuple[str, str]]:
    path = DATA / "stsb_multi_mt" / "stsb-en-train.csv"
    if not path.exists():
        pytest.skip(f"real data not found at {path}")
    with open(path, encoding="utf-8") as f:
        return [(r[0], r[1]) for r in csv.reader(f) if keep(float(r[2]))]


def similarity(a: str, b: str) -> float:
    return nd.jaccard(nd.shingles(a, 3), nd.shingles(b, 3))


def near(rows: list[tuple[str, str]], n: int) -> list[tuple[str, str]]:
    """The first ``n`` rows whose two texts are near-identical rewrites (not the same string)."""
    out = [(a, b) for a, b in rows if a != b and similarity(a, b) >= 0.82]
    assert len(out) >= n, len(out)
    return out[:n]


def pair(pair_id: str, query: str, positive: str, row: int) -> InputPair:
    return InputPair(
        id=pair_id, task="t", query=query, positives=[positive], source_file="f", source_row=row
    )


def real_pairs() -> tuple[list[InputPair], set[str]]:
    """Pairs (A_i, B_i) whose queries are MRPC and positives STS-B sentence pairs. Expected
    rejected: B_i when both are near-identical rewrites; both kept when only the query is, or
    when neither is (MRPC non-paraphrases, STS-B pairs scored <= 1)."""
    para_q, para_p = near(mrpc(1), 8), near(stsb(lambda s: s >= 4.5), 8)
    other_q, other_p = mrpc(0)[:8], stsb(lambda s: s <= 1.0)[:8]
    pairs, expected, n = [], set(), 0
    groups = [(para_q, para_p, True), (para_q, other_p, False), (other_q, other_p, False)]
    for queries, positives, duplicate in groups:
        for (q1, q2), (p1, p2) in zip(queries, positives, strict=False):
            pairs += [pair(str(n), q1, p1, n + 1), pair(str(n + 1), q2, p2, n + 2)]
            if duplicate:
                expected.add(str(n + 1))
            n += 2
    return pairs, expected


def brute_force(pairs: list[InputPair], threshold: float) -> dict[str, str]:
    """id -> lowest near-duplicate id, by exact Jaccard over all pairs (the reference)."""
    sh = {p.id: nd.pair_shingles(p, 3) for p in pairs}
    out = {}
    for p in pairs:
        for o in sorted(pairs, key=lambda x: nd.id_order(x.id)):
            if nd.id_order(o.id) >= nd.id_order(p.id):
                break
            (q1, p1), (q2, p2) = sh[o.id], sh[p.id]
            if nd.jaccard(q1, q2) >= threshold and nd.jaccard(p1, p2) >= threshold:
                out[p.id] = o.id
                break
    return out


def run_neardup(pairs, out: Path, workers: int = 1, **kwargs) -> tuple[list, list]:
    """The transform on a local runner with ``workers`` processes -> (kept, rejected)."""
    args = [f"--runner={LOCAL_RUNNER}", f"--direct_num_workers={workers}"]
    if workers > 1:
        args.append("--direct_running_mode=multi_processing")
    options = PipelineOptions(args)
    with beam.Pipeline(options=options) as p:
        kept, rejected = p | beam.Create(pairs) | NearDuplicates(THRESHOLD, **kwargs)
        _ = (
            kept
            | "K" >> beam.Map(InputPair.model_dump_json)
            | "WK" >> beam.io.WriteToText(str(out / "kept"))
        )
        _ = (
            only_rejected(rejected)
            | "R" >> beam.Map(RejectedRecord.model_dump_json)
            | "WR" >> (beam.io.WriteToText(str(out / "rejected")))
        )

    def read(prefix: str, model):
        lines = [x for f in sorted(out.glob(f"{prefix}*")) for x in f.read_text().splitlines()]
        return sorted((model.model_validate_json(x) for x in lines), key=lambda r: r.id)

    return read("kept", InputPair), read("rejected", RejectedRecord)


def test_shingles_normalise_and_short_texts_are_one_shingle():
    a = nd.shingles("What is (are) Adult Leukemia ?", 3)
    assert np.array_equal(a, nd.shingles("what is are   ADULT leukemia", 3))
    assert len(a) == 3 and len(nd.shingles("Leukemia ?", 3)) == 1
    assert len(nd.shingles("?!", 3)) == 0


def test_id_order_is_numeric_for_integers_and_total():
    ids = ["b", "10", "007", "9", "a", "7", "100"]
    assert sorted(ids, key=nd.id_order) == ["007", "7", "9", "10", "100", "a", "b"]


def test_lsh_params_find_a_pair_at_the_threshold_almost_surely():
    for threshold in (0.5, 0.7, 0.8, 0.9):
        bands, rows = nd.lsh_params(threshold, 128)
        assert bands * rows <= 128
        assert nd.band_probability(threshold, bands, rows) >= 0.95
        assert nd.band_probability(threshold - 0.4, bands, rows) < 0.1


def test_minhash_estimates_jaccard_on_real_text():
    hasher = nd.MinHasher(256)
    for a, b in mrpc(1)[:20]:
        sa, sb = nd.shingles(a, 3), nd.shingles(b, 3)
        estimate = (hasher.signature(sa) == hasher.signature(sb)).mean()
        assert abs(estimate - nd.jaccard(sa, sb)) < 0.15


def test_real_paraphrase_pairs_are_removed_and_distinct_ones_kept(tmp_path):
    pairs, expected = real_pairs()
    assert brute_force(pairs, THRESHOLD).keys() == expected
    kept, rejected = run_neardup(pairs, tmp_path)
    assert {r.id for r in rejected} == expected
    assert len(kept) + len(rejected) == len(pairs)
    for r in rejected:
        assert r.stage == "neardup" and r.reason == "near_duplicate"
        original = json.loads(r.record)
        dup = original["near_duplicate_of"]
        assert int(dup) == int(r.id) - 1  # its A_i: the lower id
        assert f"near-duplicate of id '{dup}'" in r.detail
        assert original["query_similarity"] >= THRESHOLD
        assert original["positive_similarity"] >= THRESHOLD


def test_the_lowest_id_is_kept_and_named(tmp_path):
    (q1, q2), (p1, p2) = near(mrpc(1), 1)[0], near(stsb(lambda s: s >= 4.5), 1)[0]
    pairs = [pair("10", q2, p2, 1), pair("9", q1, p1, 2), pair("100", q1, p1, 3)]
    kept, rejected = run_neardup(pairs, tmp_path)
    assert [p.id for p in kept] == ["9"]  # numeric order: 9 < 10 < 100
    assert {r.id: json.loads(r.record)["near_duplicate_of"] for r in rejected} == {
        "10": "9",
        "100": "9",
    }


def test_one_and_two_workers_give_identical_output(tmp_path):
    pairs, _ = real_pairs()
    one = run_neardup(pairs, tmp_path / "one", workers=1)
    two = run_neardup(pairs, tmp_path / "two", workers=2)
    assert one == two


def test_buckets_of_other_bands_holding_the_same_pairs_are_verified_once():
    """LSH bands whose buckets hold the same ids get one key (so a pair's signatures and
    shingles travel once per distinct set of candidates); other sets and tasks keep their own."""
    from kalm_data.beam.neardup import _shared

    def keys(bucket):
        return dict(_shared(bucket))

    one = keys((("t", 0, 11), ["b", "a"]))
    again = keys((("t", 5, 99), ["a", "b", "a"]))
    assert one == again and set(one) == {("t", "a"), ("t", "b")}
    assert len(set(one.values())) == 1
    other = keys((("t", 0, 12), ["a", "c"]))
    assert other[("t", "a")] != one[("t", "a")]
    assert keys((("u", 0, 11), ["a", "b"]))[("u", "a")] != one[("t", "a")]
    assert keys((("t", 1, 7), ["a"])) == {}
