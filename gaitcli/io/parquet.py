"""Atomic Parquet writing and reading of gait tables with their JSON metadata."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from gaitcli.data.schema import METADATA_KEY


def atomic_write_bytes(path: Path, payload: bytes) -> None:
    """Write to a temporary file beside ``path``, then rename over it: never half-written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(payload)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it private; give it a normal file's mode
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_table(columns: "dict[str, Any] | pd.DataFrame", path: Path, metadata: dict[str, Any]) -> None:
    """Write named columns (numpy arrays, or a DataFrame) with gait's JSON metadata, atomically."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if isinstance(columns, pd.DataFrame):
        table = pa.Table.from_pandas(columns, preserve_index=False)
    else:
        table = pa.table(columns)  # straight from numpy: no pandas conversion
    existing = table.schema.metadata or {}
    table = table.replace_schema_metadata({**existing, METADATA_KEY: json.dumps(metadata).encode()})
    text = [f.name for f in table.schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)
            or pa.types.is_dictionary(f.type)]
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    try:
        # Dictionary-encode the repeated key strings only; float channels gain nothing from it.
        pq.write_table(table, tmp, compression="snappy", use_dictionary=text)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)  # atomic: readers see the old file or the new one
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_metadata(path: Path) -> dict[str, Any]:
    """The ``gait`` JSON metadata of a Parquet file written by gait."""
    import pyarrow.parquet as pq

    raw = pq.read_schema(path).metadata or {}
    return json.loads(raw[METADATA_KEY]) if METADATA_KEY in raw else {}
