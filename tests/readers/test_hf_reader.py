"""``datasets`` reader: a ``save_to_disk`` copy of real rows round-trips; splits; fingerprints."""

from __future__ import annotations

import datasets
import pytest

from kalm_data.inputs import InputSpec
from kalm_data.readers import fingerprint, read_rows


@pytest.fixture()
def saved(tmp_path, pairs):
    """The real rows (plus a list column) saved with ``save_to_disk`` under tmp_path/qa_saved."""
    rows = [{**p, "negatives": [p["focus"], p["qtype"]]} for p in pairs]
    datasets.Dataset.from_list(rows).save_to_disk(str(tmp_path / "qa_saved"))
    return tmp_path / "qa_saved", rows


def test_saved_dataset_round_trips(saved, read_all):
    path, rows_in = saved
    rows = read_all(path)
    assert [r.payload for r in rows] == rows_in
    assert [r.source_row for r in rows] == list(range(1, len(rows_in) + 1))  # 1-based rows
    assert {(r.task, r.source_file, r.error) for r in rows} == {("qa_saved", str(path), None)}


def test_saved_numpy_format_is_read_as_python(tmp_path, read_all):
    ds = datasets.Dataset.from_list([{"q": "a", "v": [1.0, 2.0], "s": float("nan")}])
    ds.with_format("numpy").save_to_disk(str(tmp_path / "np"))
    # Plain Python values (not numpy arrays); a top-level NaN becomes None.
    assert read_all(tmp_path / "np")[0].payload == {"q": "a", "v": [1.0, 2.0], "s": None}
    assert type(read_all(tmp_path / "np")[0].payload["v"]) is list


def test_dataset_dict_reads_the_requested_split(tmp_path, pairs, read_all):
    dd = datasets.DatasetDict(
        train=datasets.Dataset.from_list(pairs[:30]), test=datasets.Dataset.from_list(pairs[30:])
    )
    dd.save_to_disk(str(tmp_path / "dd"))
    assert [r.payload for r in read_all(tmp_path / "dd")] == pairs[:30]
    assert [r.payload for r in read_all(tmp_path / "dd", split="test")] == pairs[30:]
    with pytest.raises(ValueError, match=r"dd: no split 'dev'; the saved splits are"):
        read_all(tmp_path / "dd", split="dev")


def test_anything_else_goes_to_load_dataset(monkeypatch):
    calls = []

    def fake_load_dataset(path, split):
        calls.append((path, split))
        return datasets.Dataset.from_list([{"query": "q", "positive": "p"}])

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    rows = list(read_rows(InputSpec(path="some-org/some-qa", split="validation")))
    assert calls == [("some-org/some-qa", "validation")]
    assert [(r.task, r.source_row, r.payload) for r in rows] == [
        ("some-qa", 1, {"query": "q", "positive": "p"})
    ]


def test_fingerprint_follows_the_data(saved, tmp_path, pairs):
    path, rows_in = saved
    first = fingerprint(InputSpec(path=str(path)))
    assert first == fingerprint(InputSpec(path=str(path)))
    # Content, not the save: the same rows saved again elsewhere give the same fingerprint.
    datasets.Dataset.from_list(rows_in).save_to_disk(str(tmp_path / "again"))
    assert fingerprint(InputSpec(path=str(tmp_path / "again"))) == first
    datasets.Dataset.from_list(rows_in[:-1]).save_to_disk(str(tmp_path / "fewer"))
    assert fingerprint(InputSpec(path=str(tmp_path / "fewer"))) != first
    assert len(first) == 64 and int(first, 16) >= 0
