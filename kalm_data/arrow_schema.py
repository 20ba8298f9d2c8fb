"""Explicit Arrow schemas from the pydantic records: every writer uses these, none infers one, and
readers read through them (``select_fields`` + ``read_problems`` + ``conform``).

Converters: ``str`` -> ``string``, ``int`` -> ``int64``, ``float`` -> ``float32`` (scores), ``bool``
-> ``bool``, ``list[X]`` -> ``list_(X)``, ``X | None`` -> nullable; any other field is an error.

Read side: a file's column is readable as an expected field when its type is Arrow's ``null``
(a column another tool wrote with nulls only) or of the same family: any string type for
``string``, any integer width for ``int64``, any float width for ``float32``, a list, large list
or fixed-size list of a readable item for ``list_(X)``. ``conform`` then casts it to the
expected type. Nullability is not enforced on read: a reader gets the nulls.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Sequence
from typing import Any

import pyarrow as pa
from pydantic import BaseModel

_SCALARS: dict[Any, pa.DataType] = {
    str: pa.string(),
    int: pa.int64(),
    float: pa.float32(),
    bool: pa.bool_(),
}


def _arrow_type(annotation: Any) -> tuple[pa.DataType, bool]:
    """(Arrow type, nullable) for one field annotation."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) != 1:
            raise TypeError(f"unsupported union {annotation!r}")
        return _arrow_type(args[0])[0], True
    if origin is list:
        (item,) = typing.get_args(annotation)
        return pa.list_(_arrow_type(item)[0]), False
    if annotation in _SCALARS:
        return _SCALARS[annotation], False
    raise TypeError(f"no Arrow type for {annotation!r}")


def to_arrow_schema(model: type[BaseModel]) -> pa.Schema:
    """The Arrow schema of ``model``: one field per model field, in declaration order."""
    fields = []
    for name, info in model.model_fields.items():
        dtype, nullable = _arrow_type(info.annotation)
        fields.append(pa.field(name, dtype, nullable=nullable))
    return pa.schema(fields, metadata={"kalm_data.record": model.__name__})


def to_table(model: type[BaseModel], rows: list[dict[str, Any]]) -> pa.Table:
    """A table of ``rows`` (dicts shaped like ``model``) with ``model``'s explicit schema."""
    return pa.Table.from_pylist(rows, schema=to_arrow_schema(model))


def select_fields(schema: pa.Schema, names: Sequence[str]) -> pa.Schema:
    """The fields ``names`` of ``schema``, in that order, with its metadata.

    Raises ``KeyError`` naming every name ``schema`` lacks: a reader asking for a field no writer
    writes is a bug, found when the reader's schema is built.
    """
    missing = [n for n in names if n not in schema.names]
    if missing:
        raise KeyError(f"fields {missing} are not in the schema (fields: {schema.names})")
    return pa.schema([schema.field(n) for n in names], metadata=schema.metadata)


def _family(dtype: pa.DataType) -> str:
    """The family of ``dtype`` that decides readability: 'string', 'int', 'float', 'list', ..."""
    t = pa.types
    if t.is_string(dtype) or t.is_large_string(dtype) or t.is_string_view(dtype):
        return "string"
    if t.is_integer(dtype):
        return "int"
    if t.is_floating(dtype):
        return "float"
    if t.is_list(dtype) or t.is_large_list(dtype) or t.is_fixed_size_list(dtype):
        return "list"
    return str(dtype)


def _readable(got: pa.DataType, want: pa.DataType) -> bool:
    """Whether a column of type ``got`` reads as ``want`` (see the module's read side)."""
    if pa.types.is_null(got):
        return True
    if _family(got) != _family(want):
        return False
    return _family(want) != "list" or _readable(got.value_type, want.value_type)


def read_problems(found: pa.Schema, expected: pa.Schema) -> list[str]:
    """Why a file of schema ``found`` cannot be read as ``expected``; empty when it can.

    One problem per column, in ``expected`` order, each naming the column: ``no column 'x'``,
    ``column 'x' appears 2 times`` or ``column 'x' is <found type>, expected <expected type>``.
    """
    problems = []
    for want in expected:
        count = found.names.count(want.name)
        if count == 0:
            problems.append(f"no column {want.name!r}")
        elif count > 1:
            problems.append(f"column {want.name!r} appears {count} times")
        elif not _readable(got := found.field(want.name).type, want.type):
            problems.append(f"column {want.name!r} is {got}, expected {want.type}")
    return problems


def conform(table: pa.Table, expected: pa.Schema) -> pa.Table:
    """The columns ``expected.names`` of ``table``, cast to the expected types (fields nullable).

    Call it when ``read_problems(table.schema, expected)`` is empty. Raises ``ValueError`` naming
    the column when a value does not fit the expected type (for example an integer overflow).
    """
    columns = {}
    for want in expected:
        column = table.column(want.name)
        try:
            columns[want.name] = column.cast(want.type)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as err:
            detail = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise ValueError(
                f"column {want.name!r} ({column.type}) does not fit {want.type}: {detail}"
            ) from err
    return pa.table(columns, metadata=expected.metadata)
