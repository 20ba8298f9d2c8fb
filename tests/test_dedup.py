from kalm_data import reasons
from kalm_data.dedup import merge_by_query, resolve_ids
from kalm_data.records import InputPair


def pair(id, q, pos, row, neg=()):
    return InputPair(
        id=id,
        task="t",
        query=q,
        positives=list(pos),
        negatives=list(neg),
        source_file="f",
        source_row=row,
    )


def test_resolve_ids_keeps_first_row_in_file_order():
    kept, rejected = resolve_ids(
        [pair("a", "q", ["x"], 5), pair("a", "q", ["x"], 2), pair("a", "q2", ["y"], 9)]
    )
    assert [p.source_row for p in kept] == [2]
    assert sorted((r.source_row, r.reason) for r in rejected) == [
        (5, reasons.DUPLICATE),
        (9, reasons.DUPLICATE_ID),
    ]


def test_merge_by_query_unions_positives_and_accounts_for_every_row():
    rows = [pair("b", "q", ["y"], 4, neg=["x"]), pair("a", "q", ["x"], 1), pair("c", "q", ["x"], 7)]
    example, rejected = merge_by_query(rows)
    assert example.id == "a" and example.positives == ["x", "y"]
    assert example.negatives == []  # a given negative that is another row's positive is dropped
    assert example.source_rows == [1, 4] and example.source_ids == ["a", "b"]
    assert example.row_positives == [[0], [1]]  # row 1 brought "x", row 4 "y"
    assert [(r.source_row, r.reason) for r in rejected] == [(7, reasons.DUPLICATE)]
    assert len(example.source_rows) + len(rejected) == len(rows)


def test_row_positives_say_which_rows_carry_each_positive():
    rows = [pair("a", "q", ["x", "y"], 1), pair("b", "q", ["y", "z"], 2), pair("c", "q", ["x"], 3)]
    rows.append(pair("d", "q", ["z"], 4, neg=["n"]))  # adds only a negative: kept, carries z
    example, rejected = merge_by_query(rows)
    assert example.positives == ["x", "y", "z"] and example.source_ids == ["a", "b", "d"]
    assert example.row_positives == [[0, 1], [1, 2], [2]]
    assert example.positive_rows(1) == [0, 1] and example.positive_rows(2) == [1, 2]
    assert [r.source_row for r in rejected] == [3]
