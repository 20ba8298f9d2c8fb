"""Fixtures for the reader tests: real rows of qa_pairs_en, and a helper to read an input."""

from __future__ import annotations

import pytest

from kalm_data.inputs import InputSpec
from kalm_data.readers import read_rows
from kalm_data.records import RawRow

from realdata import load_pairs


@pytest.fixture(scope="session")
def pairs() -> list[dict]:
    """The first 50 real rows (id, source, query, positive, qtype, focus: all strings)."""
    return load_pairs(50)


@pytest.fixture()
def read_all():
    """``read_all(path, **spec)``: every ``RawRow`` of the input at ``path`` (``spec``: other
    ``InputSpec`` fields)."""

    def read(path, **spec) -> list[RawRow]:
        return list(read_rows(InputSpec(path=str(path), **spec)))

    return read
