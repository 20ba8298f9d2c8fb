"""Decontamination (``kalm_data.stages.decontaminate``, ``kalm_data.beam.decontaminate``,
``kalm_data.readers.evalsets``) on real qa_pairs_en rows against evaluation sets built from
some of those rows; and ``kalm-data curate --decontaminate`` end to end."""

from __future__ import annotations

import json
import re
import unicodedata
from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from kalm_data.beam import only_rejected
from kalm_data.beam.decontaminate import Decontaminate
from kalm_data.errors import UsageError
from kalm_data.readers.evalsets import check_eval_set, eval_set_name, read_eval_texts
from kalm_data.records import InputPair
from kalm_data.stages import decontaminate as dc

from realdata import load_pairs, write_jsonl

N = 13


def sample() -> list[dict]:
    return load_pairs(120, source="medquad") + load_pairs(120, source="disfl")


def as_pair(row: dict, n: int, negatives: list[str] | None = None) -> InputPair:
    return InputPair(
        id=row["id"],
        task=row["source"].split("/")[0],
        query=row["query"],
        positives=[row["positive"]],
        negatives=negatives or [],
        source_file="pairs.jsonl",
        source_row=n,
    )


def reference_words(text: str) -> list[str]:
    """An independent normalisation: NFKC, casefold, words of letters and digits."""
    return re.findall(r"[^\W_]+", unicodedata.normalize("NFKC", text).casefold())


def reference_matches(text: str, evals: list[str]) -> bool:
    """Exact after normalisation, or a shared word 13-gram: by plain tuples, no hashing."""
    words = reference_words(text)
    grams = {tuple(words[i : i + N]) for i in range(len(words) - N + 1)}
    for other in evals:
        ow = reference_words(other)
        if ow == words or grams & {tuple(ow[i : i + N]) for i in range(len(ow) - N + 1)}:
            return True
    return False


def excerpt(text: str, words: int = 20) -> str:
    """A run of ``words`` words from the middle of ``text``, re-cased and re-punctuated."""
    tokens = text.split()
    mid = len(tokens) // 2
    return " ".join(tokens[mid : mid + words]).upper() + " !!"


def build_beir(folder: Path, rows: list[dict]) -> dict[str, str]:
    """A BEIR folder from ``rows``: the queries of the first third (case and spacing changed),
    the positives of the second third as documents (with a title), and 20-word excerpts of the
    third third's long positives. Returns row id -> the eval id it was planted as."""
    third = len(rows) // 3
    queries, corpus, planted = [], [], {}
    for i, row in enumerate(rows):
        if i < third:
            eid = f"q{i}"
            queries.append({"_id": eid, "text": "  " + row["query"].lower().replace(" ", "  ")})
        elif i < 2 * third:
            eid = f"d{i}"
            corpus.append({"_id": eid, "title": "Title", "text": row["positive"]})
        else:
            eid = f"x{i}"
            corpus.append({"_id": eid, "title": "", "text": excerpt(row["positive"])})
        planted[row["id"]] = eid
    write_jsonl(folder / "queries.jsonl", queries)
    write_jsonl(folder / "corpus.jsonl", corpus)
    return planted


def reference_grams(text: str) -> set[tuple[str, ...]]:
    words = reference_words(text)
    return {tuple(words[i : i + N]) for i in range(len(words) - N + 1)} | {tuple(words)}


def planted_rows(rows: list[dict]) -> list[dict]:
    """Rows to plant: 3 disfl-qa rows and 6 medquad rows with long positives, each sharing no
    text with any other row of the sample (MedQuAD answers share boilerplate: those would be
    rejected too, rightly, but then "exactly those" could not be checked)."""
    grams = [reference_grams(r["query"]) | reference_grams(r["positive"]) for r in rows]

    def unique(i: int) -> bool:
        return not any(grams[i] & g for j, g in enumerate(grams) if j != i)

    ok = [r for i, r in enumerate(rows) if unique(i)]
    longs = [r for r in ok if r["source"].startswith("medquad") and len(r["positive"].split()) > 80]
    disfl = [r for r in ok if r["source"].startswith("disfl")]
    return [*disfl[:3], *longs[:6]]


def test_normalise_and_ngrams():
    assert dc.normalise("  Ｗhat is  (are) ADULT—Leukemia?! ") == "what is are adult leukemia"
    assert dc.exact_key("What is (are) adult leukemia?") == dc.exact_key(
        "what is are Adult Leukemia"
    )
    assert len(dc.ngram_hashes("one two three", N)) == 0  # fewer than 13 words: exact only
    text = " ".join(f"w{i}" for i in range(20))
    assert len(dc.ngram_hashes(text, N)) == 20 - N + 1


def test_eval_set_readers_and_preflight(tmp_path):
    rows = sample()
    beir = tmp_path / "mini-beir"
    build_beir(beir, rows[:6])
    texts = list(read_eval_texts(str(beir)))
    assert {r.set_name for r, _ in texts} == {"mini-beir"}
    assert {r.kind for r, _ in texts} == {"query", "document"}
    jsonl = write_jsonl(tmp_path / "held-out.jsonl", [{"text": r["query"]} for r in rows[:3]])
    assert [(r.kind, r.id) for r, _ in read_eval_texts(str(jsonl))] == [
        ("text", "1"),
        ("text", "2"),
        ("text", "3"),
    ]
    assert eval_set_name(str(jsonl)) == "held-out" and check_eval_set(str(beir)) == "beir"
    datasets = pytest.importorskip("datasets")
    saved = tmp_path / "saved"
    datasets.Dataset.from_list([{"_id": "a", "text": rows[0]["query"]}]).save_to_disk(saved)
    assert [(r.id, t) for r, t in read_eval_texts(str(saved))] == [("a", rows[0]["query"])]
    missing = tmp_path / "nope" / "corpus.jsonl"
    with pytest.raises(UsageError, match=re.escape(str(missing))):
        check_eval_set(str(missing))


def test_a_sample_decontaminated_against_its_own_pairs_rejects_exactly_those(tmp_path):
    rows = sample()
    chosen = planted_rows(rows)
    planted = build_beir(tmp_path / "own-beir", chosen)
    evals = [t for _, t in read_eval_texts(str(tmp_path / "own-beir"))]
    expected = {
        r["id"]
        for r in rows
        if any(reference_matches(t, evals) for t in (r["query"], r["positive"]))
    }
    assert expected == set(planted)  # the sample has no other overlap with them
    pairs = [as_pair(r, i + 1) for i, r in enumerate(rows)]

    with TestPipeline() as p:
        kept, rejected = p | beam.Create(pairs) | Decontaminate([str(tmp_path / "own-beir")])
        got = only_rejected(rejected) | beam.Map(
            lambda r: (r.id, r.stage, r.reason, r.detail.split(": ", 1)[1])
        )
        assert_that(
            kept | beam.Map(lambda x: x.id),
            equal_to([p.id for p in pairs if p.id not in planted]),
            label="kept",
        )
        assert_that(
            got,
            equal_to([expected_rejection(p, planted) for p in pairs if p.id in planted]),
            label="rejected",
        )


def expected_rejection(pair: InputPair, planted: dict[str, str]) -> tuple:
    eid = planted[pair.id]
    role = "query" if eid.startswith("q") else "positive 1"
    kind, how = ("query", "exact text") if eid.startswith("q") else ("document", "")
    how = how or ("exact text" if eid.startswith("d") else "shared word n-gram")
    detail = f"{role} matches evaluation set 'own-beir' {kind} '{eid}' ({how})"
    return pair.id, "decontaminate", "contaminated", detail


def test_a_negative_matching_an_eval_text_is_removed_from_the_negatives_only(tmp_path):
    rows = [r for r in sample() if r["source"].startswith("medquad")]
    eval_doc, other = rows[60]["positive"], rows[2]["positive"]
    assert not any(
        reference_matches(t, [eval_doc]) for t in (rows[0]["query"], rows[0]["positive"])
    )
    write_jsonl(tmp_path / "docs.jsonl", [{"id": "doc-7", "text": eval_doc}])
    pair = as_pair(rows[0], 1, negatives=[eval_doc, other])
    with TestPipeline() as p:
        kept, rejected = p | beam.Create([pair]) | Decontaminate([str(tmp_path / "docs.jsonl")])
        assert_that(
            kept | beam.Map(lambda x: (x.id, x.negatives)),
            equal_to([(pair.id, [other])]),
            label="kept",
        )
        ids = only_rejected(rejected) | beam.Map(lambda r: r.id)
        assert_that(ids, equal_to([]), label="rejected")


def curate_argv(src: Path, out: Path, cache: Path, eval_set: Path) -> list[str]:
    return [
        "curate",
        *("--input", str(src), "--output", str(out), "--cache-dir", str(cache)),
        *("--decontaminate", str(eval_set)),
        *("--window-start", "2", "--window-end", "12", "--num-negatives", "3"),
        *("--filter-rule", "none", "--direct_num_workers", "1"),
    ]


def test_cli_decontaminate_end_to_end_counts_in_the_manifest(tmp_path, capsys):
    from kalm_data.cli import main

    rows = sample()
    planted = build_beir(tmp_path / "own-beir", planted_rows(rows))
    src = write_jsonl(tmp_path / "pairs.jsonl", rows)
    out, cache = tmp_path / "out", tmp_path / "cache"
    assert main(curate_argv(src, out, cache, tmp_path / "own-beir")) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    counts = manifest["counts"]
    assert counts["balanced"] and counts["rows_read"] == len(rows)
    assert counts["rejected"]["decontaminate"] == {"contaminated": len(planted)}
    stages = manifest["stages"]
    assert stages["decontaminate"]["rejected"] == {"contaminated": len(planted)}
    near = sum(counts["rejected"].get("neardup", {}).values())
    assert stages["decontaminate"]["in"] == len(rows)  # after dedup, which rejected none
    assert stages["neardup"]["in"] == stages["decontaminate"]["out"] == len(rows) - len(planted)
    assert stages["neardup"]["out"] == stages["neardup"]["in"] - near
    assert manifest["settings"]["decontaminate"] == ["own-beir"]  # by name, no local path
    assert "decontaminate" in capsys.readouterr().out  # the funnel table

    missing = tmp_path / "missing-beir"
    assert main(curate_argv(src, tmp_path / "out2", cache, missing)) == 2
    assert str(missing) in capsys.readouterr().err
