"""Explicit Arrow schemas from the pydantic records: every writer uses these, none infers one.

Converters: ``str`` -> ``string``, ``int`` -> ``int64``, ``float`` -> ``float32`` (scores), ``bool``
-> ``bool``, ``list[X]`` -> ``list_(X)``, ``X | None`` -> nullable; any other field is an error.
"""

from __future__ import annotations

import types
import typing
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
