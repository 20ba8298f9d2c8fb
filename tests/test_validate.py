import pytest

from kalm_data import reasons
from kalm_data.records import InputPair, RawRow, RejectedRecord
from kalm_data.validate import validate_row


def row(payload=None, error=None, raw=None, n=3):
    return RawRow(
        source_file="in.jsonl", source_row=n, task="t", payload=payload, error=error, raw=raw
    )


def test_valid_row_is_normalised_and_gets_a_stable_id():
    out = validate_row(row({"query": "  what  is\tit? ", "positive": "an answer\n"}), {}, 1000)
    assert isinstance(out, InputPair)
    assert out.query == "what is it?" and out.positives == ["an answer"]
    again = validate_row(row({"query": "what is it?", "positive": "an answer"}, n=9), {}, 1000)
    assert again.id == out.id and out.id.startswith("t-")


def test_column_mapping_and_lists():
    out = validate_row(
        row({"q": "a", "a": ["x", "y", "x"], "neg": ["z", "x"], "src": "s1"}),
        {"query": "q", "positive": "a", "negative": "neg", "task": "src"},
        1000,
    )
    assert out.positives == ["x", "y"] and out.negatives == ["z"] and out.task == "s1"


@pytest.mark.parametrize(
    "payload, reason, field",
    [
        ({"positive": "p"}, reasons.MISSING_FIELD, "query"),
        ({"query": None, "positive": "p"}, reasons.NULL_FIELD, "query"),
        ({"query": "  ", "positive": "p"}, reasons.BLANK_FIELD, "query"),
        ({"query": "q", "positive": []}, reasons.BLANK_FIELD, "positive"),
        ({"query": 3, "positive": "p"}, reasons.WRONG_TYPE, "query"),
        ({"query": "q", "positive": ["p", 5]}, reasons.WRONG_TYPE, "positive[1]"),
        ({"query": "q", "positive": "x" * 51}, reasons.TEXT_TOO_LONG, "positive"),
        ({"query": "q", "positive": "q"}, reasons.QUERY_IS_POSITIVE, ""),
        ({"query": "q", "positive": "p", "id": {"a": 1}}, reasons.WRONG_TYPE, "id"),
    ],
)
def test_bad_rows_name_file_row_and_field(payload, reason, field):
    out = validate_row(row(payload), {}, 50)
    assert isinstance(out, RejectedRecord)
    assert out.reason == reason and out.stage == reasons.VALIDATE
    assert out.detail.startswith("in.jsonl:3: ") and field in out.detail
    assert out.source_row == 3 and out.record


def test_reader_errors_pass_through_as_read_rejections():
    out = validate_row(row(error="malformed_json: Expecting value", raw="{oops"), {}, 50)
    assert (out.stage, out.reason, out.record) == (reasons.READ, "malformed_json", "{oops")


def test_overlong_reject_mode(teacher):
    long_text = "word " * 400
    out = validate_row(row({"query": "q", "positive": long_text}), {}, 10_000, teacher.too_long)
    assert out.reason == reasons.OVER_TEACHER_LIMIT and "positive" in out.detail
    ok = validate_row(row({"query": "q", "positive": "short"}), {}, 10_000, teacher.too_long)
    assert isinstance(ok, InputPair)


def test_a_mapped_task_column_that_is_absent_is_missing_not_null():
    out = validate_row(row({"query": "q", "positive": "p"}), {"task": "nosuchcol"}, 50)
    assert out.reason == reasons.MISSING_FIELD
    assert "'task' (column 'nosuchcol') is missing" in out.detail


def test_validate_rejections_keep_the_rows_own_id():
    out = validate_row(row({"id": "row-7", "query": "  ", "positive": "p"}), {}, 50)
    assert out.reason == reasons.BLANK_FIELD and out.id == "row-7"
    mapped = validate_row(row({"key": 12, "query": None, "positive": "p"}), {"id": "key"}, 50)
    assert mapped.id == "12"
    assert validate_row(row({"query": None, "positive": "p"}), {}, 50).id is None
