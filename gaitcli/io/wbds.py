"""Reader for the Fukuchi et al. 2018 walking dataset (WBDS) processed text files.

``WBDSxxwalkOCang.txt`` (angles, deg) and ``WBDSxxwalkOCknt.txt`` (moments N·m/kg, GRF N/kg)
hold one mean gait cycle per side, already time-normalised to 0..100 % (101 rows). Files
are tab separated with one header line whose first column is ``Time``.

Anything unreadable is a ``ReadError``: a repeated column name, a row with the wrong number of
fields, a non-numeric cell, or a ``Time`` column that is not finite, not increasing, or does not
run from 0 to 100 % (a table cut short would otherwise be stretched over the whole cycle).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from gaitcli.data.timeseries import Recording, SubjectInfo, TimeSeries
from gaitcli.errors import ReadError

NAME_PATTERN = re.compile(r"^(?P<subject>WBDS\d+)(?P<trial>walk[OT]\w*?)(?P<kind>ang|knt|mkr|grf)\.txt$", re.I)
CYCLE_TOLERANCE = 0.5  # percent: the first and last rows of a WBDS table are 0 and 100
HEADER_PATTERN = re.compile(r"^Time\t(R|L)(Pelvis|Hip)(Angle|Moment)[XYZ]\t")


def looks_like_wbds(path: Path) -> bool:
    if not NAME_PATTERN.match(path.name):
        return False
    try:
        with open(path, "r", encoding="ascii", errors="strict") as handle:
            return bool(HEADER_PATTERN.match(handle.readline()))
    except (OSError, UnicodeDecodeError):
        return False


def _unit(column: str) -> str:
    if "Angle" in column:
        return "deg"
    if "Moment" in column:
        return "N·m/kg"
    if "GRF" in column:
        return "N/kg"
    return ""


def read_wbds(path: str | Path) -> Recording:
    path = Path(path)
    match = NAME_PATTERN.match(path.name)
    if not match:
        raise ReadError(path, "not a WBDS file name (expected WBDS<nn>walk<cond><ang|knt>.txt)")
    try:
        lines = path.read_text(encoding="ascii").splitlines()
    except UnicodeDecodeError:
        raise ReadError(path, "not a text file") from None
    except OSError as exc:
        raise ReadError(path, f"cannot read ({exc.strerror})") from None
    if not lines:
        raise ReadError(path, "empty file")
    header = lines[0].split("\t")
    if header[0] != "Time":
        raise ReadError(path, "first column is not Time")
    repeated = [name for k, name in enumerate(header) if name in header[:k]]
    if repeated:
        raise ReadError(path, f"column {repeated[0]!r} appears twice in the header")
    numbered = [(k, line.split("\t")) for k, line in enumerate(lines[1:], start=2) if line.strip()]
    if not numbered:
        raise ReadError(path, "no data rows")
    for k, row in numbered:
        if len(row) != len(header):
            raise ReadError(path, f"line {k} has {len(row)} fields, header has {len(header)}")
    rows = [row for _, row in numbered]
    try:
        table = np.array(rows, dtype=np.float64)
    except ValueError:
        raise ReadError(path, "non-numeric value in the data") from None
    time = table[:, 0]
    if not np.isfinite(time).all():
        raise ReadError(path, "Time (percent of cycle) is not finite (NaN or infinite)")
    if np.any(np.diff(time) <= 0):
        raise ReadError(path, "Time (percent of cycle) is not increasing")
    # One whole cycle: a table cut short (or with rescaled times) would otherwise be stretched
    # over 0-100 % downstream without a word.
    if abs(time[0]) > CYCLE_TOLERANCE or abs(time[-1] - 100.0) > CYCLE_TOLERANCE:
        raise ReadError(path, f"Time (percent of cycle) runs from {time[0]:.6g} to "
                              f"{time[-1]:.6g}, expected 0 to 100")
    channels = header[1:]
    series = TimeSeries(time, table[:, 1:], channels, [_unit(c) for c in channels], rate=1.0)
    return Recording(
        path=path,
        format="wbds",
        series={"table": series},
        subject=SubjectInfo(name=match["subject"].upper()),
        info={"trial": match["subject"].upper() + match["trial"], "kind": match["kind"].lower(),
              "time_unit": "% gait cycle"},
        time_normalised=True,
    )
