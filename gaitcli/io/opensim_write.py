"""Writing OpenSim Storage files (.sto/.mot) that OpenSim's own readers open."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from gaitcli.io.parquet import atomic_write_bytes


def storage_text(name: str, time: np.ndarray, columns: dict[str, np.ndarray], comments: list[str] = (),
                 in_degrees: bool = False) -> str:
    """An OpenSim version-1 Storage file: header, ``endheader``, tab-separated ``time`` + columns.

    NaN is written as ``NaN``, which OpenSim reads back as NaN.
    """
    names = list(columns)
    buffer = io.StringIO()
    buffer.write(f"{name}\nversion=1\nnRows={len(time)}\nnColumns={len(names) + 1}\n")
    buffer.write(f"inDegrees={'yes' if in_degrees else 'no'}\n")
    for line in comments:
        buffer.write(line.replace("\n", " ") + "\n")
    buffer.write("endheader\n")
    buffer.write("\t".join(["time"] + names) + "\n")
    table = np.column_stack([time] + [np.asarray(columns[c], dtype=np.float64) for c in names])
    np.savetxt(buffer, table, delimiter="\t", fmt="%.8g")
    return buffer.getvalue().replace("nan", "NaN")


def write_storage(path: Path, name: str, time: np.ndarray, columns: dict[str, np.ndarray],
                  comments: list[str] = (), in_degrees: bool = False) -> None:
    atomic_write_bytes(path, storage_text(name, time, columns, comments, in_degrees).encode())
