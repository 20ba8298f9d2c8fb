"""Parquet reader: rows streamed by record batches.

Contract: ``source_row`` is the 1-based row number in the file; ``payload`` has the file's own
column names, values as ``pyarrow`` turns them into Python (lists stay lists, float NaN -> None).
A file that is not readable Parquet raises ``ValueError("<path>: ...")``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from kalm_data.readers.common import clean_values, open_input
from kalm_data.records import RawRow

#: Rows per record batch: small enough that batches of long passages stay a few MB.
BATCH_ROWS = 1024


def read_parquet(path: str, task: str) -> Iterator[RawRow]:
    """Yield every row of the Parquet file at ``path``."""
    # Parquet compresses internally; a suffix like .gz is not expected here.
    with open_input(path, compression=None) as f:
        try:
            batches = pq.ParquetFile(f).iter_batches(batch_size=BATCH_ROWS)
            row = 1
            for batch in batches:
                for payload in batch.to_pylist():
                    yield RawRow(
                        source_file=path, source_row=row, task=task, payload=clean_values(payload)
                    )
                    row += 1
        except pa.ArrowException as e:
            raise ValueError(f"{path}: not a readable Parquet file: {e}") from e
