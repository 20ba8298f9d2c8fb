"""Personas: reading (PersonaHub JSONL, Parquet, a saved dataset, the shipped seed set), bad rows
as problems, dedup and seeded sampling."""

from __future__ import annotations

import json
from collections import Counter

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from kalm_data.generate.personas import (
    SEED,
    Persona,
    dedup_personas,
    persona_key,
    read_personas,
    sample_personas,
    seed_path,
)

from realdata import DATA, write_jsonl

PERSONAHUB = DATA / "personas" / "personas.jsonl"


@pytest.fixture(scope="module")
def personahub() -> list[Persona]:
    if not PERSONAHUB.exists():
        pytest.skip(f"real data not found at {PERSONAHUB}")
    personas, problems = read_personas(str(PERSONAHUB))
    assert problems == []
    return personas


def test_reads_personahub_file(personahub):
    assert len(personahub) == 2000
    first = personahub[0]
    assert first.id == "personahub-tool-0"
    assert first.text.startswith('A die-hard fan of "Chasing Life"')
    assert first.source_file == str(PERSONAHUB)
    assert [p.source_row for p in personahub] == list(range(1, 2001))


def test_dedup_keeps_first_of_casefold_and_whitespace_variants(personahub):
    kept, duplicates = dedup_personas(personahub)
    assert kept == personahub and duplicates == []  # the sample is unique (see its SOURCE.md)

    variants = [
        p.model_copy(update={"id": f"copy-{i}", "text": "  " + p.text.upper().replace(" ", "\t ")})
        for i, p in enumerate(personahub[:50])
    ]
    kept, duplicates = dedup_personas(personahub + variants)
    assert kept == personahub
    assert duplicates == variants


def test_sampling_is_seeded_and_without_replacement(personahub):
    a = sample_personas(personahub, 100, seed=7)
    assert a == sample_personas(personahub, 100, seed=7)
    assert a != sample_personas(personahub, 100, seed=8)
    assert len({p.id for p in a}) == 100
    assert sample_personas(personahub, 0, seed=7) == []


def test_sampling_more_than_available_cycles_through_passes(personahub):
    pool = personahub[:30]
    out = sample_personas(pool, 75, seed=1)
    counts = Counter(p.id for p in out)
    assert set(counts) == {p.id for p in pool}
    assert set(counts.values()) == {2, 3}  # 75 = 2 full passes + 15
    assert len({p.id for p in out[:30]}) == 30  # no repeat within a pass
    with pytest.raises(ValueError):
        sample_personas([], 1, seed=0)
    with pytest.raises(ValueError):
        sample_personas(pool, -1, seed=0)


def test_bad_jsonl_rows_become_problems_naming_file_and_row(tmp_path, personahub):
    good = [{"id": p.id, "persona": p.text} for p in personahub[:3]]
    path = tmp_path / "mixed.jsonl"
    write_jsonl(path, good[:2])
    with path.open("a", encoding="utf-8") as f:
        f.write('{"id": "broken", "persona": "A nurse\n')  # line 3: malformed JSON
        f.write("\n")  # line 4: blank, skipped
        f.write(json.dumps({"id": "empty", "persona": "   "}) + "\n")  # line 5
        f.write(json.dumps({"id": "none", "name": "no persona field"}) + "\n")  # line 6
        f.write(json.dumps({"persona": None}) + "\n")  # line 7
        f.write(json.dumps({"persona": 42}) + "\n")  # line 8
        f.write(json.dumps({"text": "A  retired\tnurse in Porto."}) + "\n")  # line 9: ok
        f.write(json.dumps(good[2]) + "\n")  # line 10

    personas, problems = read_personas(str(path))

    assert [(p.id, p.source_row) for p in personas] == [
        (good[0]["id"], 1),
        (good[1]["id"], 2),
        ("mixed-9", 9),
        (good[2]["id"], 10),
    ]
    assert personas[2].text == "A retired nurse in Porto."
    assert [(f, row) for f, row, _ in problems] == [(str(path), r) for r in (3, 5, 6, 7, 8)]
    reasons = [message.split(":")[0] for _, _, message in problems]
    assert reasons == ["malformed_json", "blank_field", "missing_field", "null_field", "wrong_type"]


def test_gzip_jsonl_source(tmp_path, personahub):
    import gzip

    path = tmp_path / "hub.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as f:
        for p in personahub[:20]:
            f.write(json.dumps({"persona": p.text}) + "\n")
    personas, problems = read_personas(str(path))
    assert problems == []
    assert [p.text for p in personas] == [p.text for p in personahub[:20]]
    assert personas[0].id == "hub-1"


def test_parquet_source(tmp_path, personahub):
    texts = [p.text for p in personahub[:40]] + [""]
    path = tmp_path / "personas.parquet"
    pq.write_table(pa.table({"persona": texts}), path)

    personas, problems = read_personas(str(path))

    assert [p.text for p in personas] == texts[:40]
    assert [p.source_row for p in personas] == list(range(1, 41))
    assert personas[0].id == "personas-1"
    assert problems == [(str(path), 41, "blank_field: 'persona' is empty")]


def test_saved_dataset_source_with_text_field(tmp_path, personahub):
    import datasets

    folder = tmp_path / "saved"
    texts = [p.text for p in personahub[100:130]]
    datasets.Dataset.from_dict({"text": texts}).save_to_disk(str(folder))

    personas, problems = read_personas(str(folder))

    assert problems == []
    assert [p.text for p in personas] == texts
    assert personas[-1].source_row == 30


def test_missing_file_raises_naming_it(tmp_path):
    missing = tmp_path / "nope.jsonl"
    with pytest.raises(FileNotFoundError, match="nope.jsonl"):
        read_personas(str(missing))


def test_shipped_seed_set(personahub):
    personas, problems = read_personas(SEED)
    assert problems == []
    assert personas[0].source_file == str(seed_path())
    assert len(personas) >= 300
    kept, duplicates = dedup_personas(personas)
    assert duplicates == [] and len(kept) == len(personas)
    assert len({p.id for p in personas}) == len(personas)
    assert personas[0].id == "seed-0001"
    for p in personas:  # one sentence describing a person
        assert p.text[0].isupper() and p.text.endswith(".")
        assert 6 <= len(p.text.split()) <= 40
    # Written for this project: none is taken from the (non-commercial) PersonaHub sample.
    assert not {persona_key(p.text) for p in personas} & {persona_key(p.text) for p in personahub}
