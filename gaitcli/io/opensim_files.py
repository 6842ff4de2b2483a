"""Readers for OpenSim text files: motion/storage tables (.mot, .sto), marker files (.trc), and
a summary of .osim models.

What is handled
---------------
.mot / .sto (``read_opensim``)
  * Both header styles: the old SIMM/Delp-lab one (``name …`` / ``datacolumns N`` /
    ``datarows N`` / ``range a b`` / ``endheader``) and the new one (``version=1`` / ``nRows=`` /
    ``nColumns=`` / ``inDegrees=`` / ``DataRate=`` … / ``endheader``), with free-text lines in
    between; header lines padded with tabs; CRLF or LF line ends; labels padded with spaces;
    data separated by tabs or spaces.
  * Header counts or range that disagree with the data: the data wins and a warning names the
    file (the Hamner GRF file says 901 rows, holds 601; coordinates.sto says 40 columns, has 32).
  * Moco state paths are shortened: ``/jointset/<joint>/<coord>/value`` -> ``<coord>``,
    ``…/<coord>/speed`` -> ``<coord>_speed``, other paths keep their components after the
    ``…set`` folder joined by ``_``. ``info["renamed"]`` maps raw -> new, ``info["raw_columns"]``
    keeps the labels exactly as in the file.
  * Angle units: see ``read_opensim``. Radians are converted to degrees; the conversion is
    recorded in ``info["conversions"]`` (text) and ``info["scale_factors"]`` (channel -> factor).
  * Time columns rounded to a few decimals (a ~600 Hz GRF written with 4 decimals) are kept as
    written; ``rate`` is 1/median(dt) to 6 significant digits (588.235 Hz stays 588.235).
  * GRF column names are kept as written; ``info["grf_style"]`` says which naming style the file
    uses (``GRF_STYLES``).

.trc (``read_trc``)
  * PathFileType / key row / value row / ``Frame# Time M1 …`` / ``X1 Y1 Z1 …`` header, keys and
    values separated by any mix of tabs and spaces; marker names followed by 1–3 tabs; empty
    cells (missing samples) -> NaN; trailing tabs ignored; short rows padded with NaN.

Errors
  Anything unreadable raises ``ReadError(path, reason)`` (never another exception type): empty
  or binary files, no ``endheader``, no column labels, no data rows, a row with the wrong number
  of fields (except an incomplete *last* line, which is dropped with a warning: that is what a
  file cut off while being written looks like), non-numeric cells, no ``time`` column, a time
  column that is all NaN, repeated or decreasing times. NaN values are kept; a row whose time is
  NaN cannot be placed and is dropped with a warning.

Importing this module does not import opensim; ``model_info`` does, on first use.
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from typing import Sequence

import numpy as np

from gaitcli.data.timeseries import Recording, TimeSeries, as_path, nominal_rate
from gaitcli.errors import ReadError

# ------------------------------------------------------------------------------------------------
# Name rules
# ------------------------------------------------------------------------------------------------

#: Column kind -> unit of the returned channel (rotational values are always returned in degrees).
UNIT_BY_KIND: dict[str, str] = {
    "time": "s",
    "rotational": "deg",
    "rotational_speed": "deg/s",
    "translational": "m",
    "translational_speed": "m/s",
    "coupled": "",  # OpenSim "Coupled" coordinate: left as written, unit depends on the model
    "force": "N",
    "moment": "N·m",
    "position": "m",
    "other": "",  # not recognised: left as written, unit unknown
}

#: Ordered (regex, kind) rules applied to a column name (after Moco renaming, ``_speed`` removed),
#: case-insensitively; the first match wins. Used when no model is given, and for every column
#: that is not a coordinate of the given model.
NAME_RULES: tuple[tuple[str, str], ...] = (
    (r"^time$", "time"),
    (r"ground_force.*_v[xyz]$", "force"),  # ground_force_vx, 1_/l_/R_ground_force_vx, …_r_vx
    (r"ground_force.*_p[xyz]$", "position"),  # centre of pressure
    (r"ground_torque.*_[xyz]$", "moment"),  # free torque
    # Moco muscle states/controls: their names can end in _force, so they must come first.
    (r"(activation|excitation|normalized_tendon_force|normalized_fiber_length|fiber_length"
     r"|fiber_velocity|multiplier|lambda|gamma)$", "other"),
    (r"_moment$", "moment"),  # ID output of a rotational coordinate
    (r"_force$", "force"),  # ID output of a translational (or coupled) coordinate
    (r"_beta$", "coupled"),  # Rajagopal/LaiUhlrich knee coupler coordinate
    (r"_t[xyz]$", "translational"),  # pelvis_tx ...
    (r"_p[xyz]$", "position"),
    # Words OpenSim gait models use for joint-angle coordinates (gait2392/2354, gait10dof,
    # Rajagopal, Hamner, LaiUhlrich): pelvis_tilt, hip_flexion_r, knee_angle_r, arm_add_r,
    # elbow_flex_r, pro_sup_r, wrist_dev_r, lumbar_bending ...
    (r"(^|_)(angle|tilt|list|rotation|rot|flexion|flex|extension|ext|adduction|add|abduction|abd"
     r"|bending|pro_sup|pro|sup|dev|deviation|elevation|elv|inversion|eversion|obliquity)(_|$)",
     "rotational"),
)
_COMPILED_NAME_RULES = tuple((re.compile(p, re.IGNORECASE), kind) for p, kind in NAME_RULES)

#: GRF naming styles, most specific first: (style name, regex on a raw column label). A file that
#: has both ``ground_force_vx`` and ``1_ground_force_vx`` is style ``1_ground_force_vx``.
GRF_STYLES: tuple[tuple[str, str], ...] = (
    ("1_ground_force_vx", r"^\d+_ground_force_v[xyz]$"),  # Gait2354, Hamner (second plate 1_)
    ("l_ground_force_vx", r"^[lr]_ground_force_v[xyz]$"),  # opensim-core ID test
    ("ground_force_r_vx", r"^ground_force_[rl]_v[xyz]$"),  # Rajagopal / Moco
    ("R_ground_force_vx", r"^[RL]_ground_force_v[xyz]$"),  # OpenCap
    ("ground_force_vx", r"^ground_force_v[xyz]$"),  # unprefixed (first plate / single plate)
)
_COMPILED_GRF_STYLES = tuple((name, re.compile(p)) for name, p in GRF_STYLES)

_MOTION_TYPES = {1: "rotational", 2: "translational", 3: "coupled"}
_OLD_HEADER_KEYS = ("name", "datacolumns", "datarows", "range")
_DEG_PER_RAD = 180.0 / math.pi
_RATE_TOLERANCE = 0.05  # declared and time-derived rates may differ this much (rounded times)


# ------------------------------------------------------------------------------------------------
# .osim models
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OsimModelInfo:
    """What the readers need from an .osim model."""

    name: str
    mass_kg: float  # sum of body masses
    # coordinate name -> "rotational" | "translational" | "coupled"
    coordinates: dict[str, str] = field(default_factory=dict)


def model_info(osim_path: str | Path) -> OsimModelInfo:
    """Name, total mass and coordinate motion types of an OpenSim model (cached per file).

    The first call sets OpenSim's log level to Error and removes its opensim.log file sink for
    the rest of the process (see ``_quiet_opensim_logging``)."""
    path = as_path(osim_path)
    if not path.is_file():
        raise ReadError(path, "no such model file")
    name, mass, coordinates = _load_model_summary(str(path.resolve()))
    return OsimModelInfo(name=name, mass_kg=mass, coordinates=dict(coordinates))


@functools.lru_cache(maxsize=32)
def _load_model_summary(resolved_path: str) -> tuple[str, float, tuple[tuple[str, str], ...]]:
    import opensim  # slow import: only when a model is actually needed

    _quiet_opensim_logging(opensim)
    try:
        model = opensim.Model(resolved_path)
        model.initSystem()
        bodies = model.getBodySet()
        mass = float(sum(bodies.get(i).getMass() for i in range(bodies.getSize())))
        coordinate_set = model.getCoordinateSet()
        coordinates = tuple(
            (coordinate_set.get(i).getName(),
             _MOTION_TYPES.get(int(coordinate_set.get(i).getMotionType()), "coupled"))
            for i in range(coordinate_set.getSize())
        )
        return str(model.getName()), mass, coordinates
    except Exception as exc:  # SWIG raises RuntimeError, but any failure is a bad model file
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ReadError(resolved_path, f"OpenSim could not load the model: {first_line}") from None


@functools.cache
def _quiet_opensim_logging(opensim: object) -> None:
    """Once per process: OpenSim logs errors only, and writes no opensim.log into the working
    directory. Loading a model otherwise prints a warning per missing .vtp geometry file on
    stdout. The level is not restored afterwards because restoring it prints a line itself."""
    logger = opensim.Logger  # type: ignore[attr-defined]
    logger.removeFileSink()
    if logger.getLevelString() in ("Trace", "Debug", "Info", "Warn"):
        logger.setLevelString("Error")


# ------------------------------------------------------------------------------------------------
# .mot / .sto
# ------------------------------------------------------------------------------------------------


def read_opensim(path: str | Path, model: str | Path | None = None) -> Recording:
    """Read an OpenSim .mot/.sto table (or a .trc, via ``read_trc``) into ``series["table"]``.

    Angle units. Which columns are rotational comes from ``model`` (coordinate motion types)
    when given, else from ``NAME_RULES``. Rotational coordinates (and their ``_speed``) are
    returned in degrees:
      * ``inDegrees=yes``: taken as degrees.
      * ``inDegrees=no``: converted from radians (``info["scale_factors"]`` says by how much).
      * no ``inDegrees`` line: as OpenSim's Storage class decides it. A free-text line
        "Angles are in degrees" (OpenSim IK output, e.g. opensim-core subject01_walk1_ik.mot)
        means degrees; otherwise a .mot is degrees (SIMM motion convention: the old-format GRF
        and IK .mot files) and a .sto is radians (converted). A free-text "Angles are in
        radians" means radians (OpenSim ignores that line). When the unit was assumed from the
        extension, a warning flags values that contradict it (all within ±pi for degrees,
        beyond ±2pi for radians).
    Coupled coordinates (``*_beta``) are never converted: OpenSim writes them unconverted even in
    ``inDegrees=yes`` files.
    """
    path = as_path(path)
    suffix = path.suffix.lower()
    if suffix == ".trc":
        return read_trc(path)
    if suffix not in (".mot", ".sto"):
        raise ReadError(path, f"not an OpenSim table: expected .mot, .sto or .trc, got '{suffix}'")

    warnings: list[str] = []
    lines = _read_lines(path, warnings)
    end = _find_endheader(path, lines)
    fields, free_text = _parse_header(lines[:end])
    label_index = _first_non_blank(lines, end + 1)
    if label_index is None:
        raise ReadError(path, "no column labels after 'endheader'")
    labels = _split_labels(lines[label_index])
    if not labels or labels[0].lower() != "time":
        first = labels[0] if labels else ""
        raise ReadError(path, f"no 'time' column: the first column label is {first!r}")

    values, line_numbers = _parse_numeric_rows(path, lines, label_index + 1, labels, warnings)
    time, values, line_numbers = _validated_time(path, values[:, 0], values[:, 1:], line_numbers,
                                                 warnings)
    raw_columns = labels[1:]
    info = _header_info(path, fields, free_text, n_rows=len(time), n_columns=len(labels),
                        time=time, warnings=warnings)
    info["raw_columns"] = list(raw_columns)
    info["time_label"] = labels[0]

    channels, renamed = _short_names(path, raw_columns, warnings)
    info["renamed"] = renamed
    coordinates = model_info(model).coordinates if model is not None else None
    if model is not None:
        info["model"] = str(model)
    kinds = [_column_kind(name, coordinates) for name in channels]
    info["column_kinds"] = dict(zip(channels, kinds))

    values = _angles_in_degrees(path, values, channels, kinds, free_text, info, warnings)
    units = [UNIT_BY_KIND[kind] for kind in kinds]
    info["grf_style"], info["grf_styles_seen"] = _grf_style(raw_columns)

    rate = _choose_rate(path, info.get("declared_rate"), time, warnings)
    table = TimeSeries(time=time, data=values, channels=channels, units=units, rate=rate)
    return Recording(path=path, format=suffix[1:], series={"table": table}, info=info,
                     warnings=warnings)


def _find_endheader(path: Path, lines: Sequence[str]) -> int:
    for index, line in enumerate(lines):
        if line.strip().lower() == "endheader":
            return index
    raise ReadError(path, "no 'endheader' line: not an OpenSim .mot/.sto table")


def _parse_header(lines: Sequence[str]) -> tuple[dict[str, str], list[str]]:
    """``key=value`` and old-style ``key value`` lines -> fields; everything else -> free text."""
    fields: dict[str, str] = {}
    free_text: list[str] = []
    for raw in lines:
        line = raw.strip()
        if not line:
            continue
        key, sep, value = line.partition("=")
        if sep and key.strip() and not any(ch.isspace() for ch in key.strip()):
            fields[key.strip()] = value.strip()
            continue
        tokens = line.split(None, 1)
        if tokens[0].lower() in _OLD_HEADER_KEYS and len(tokens) == 2:
            fields[tokens[0].lower()] = tokens[1].strip()
            continue
        free_text.append(line)
    return fields, free_text


def _header_info(path: Path, fields: dict[str, str], free_text: list[str], *, n_rows: int,
                 n_columns: int, time: np.ndarray, warnings: list[str]) -> dict:
    """Header fields into ``info``, with a warning for each count the data contradicts."""
    lowered = {key.lower(): value for key, value in fields.items()}
    info: dict = {
        "header": dict(fields),
        "header_text": list(free_text),
        "name": lowered.get("name") or (free_text[0] if free_text else None),
        "in_degrees": _yes_no(path, lowered.get("indegrees"), warnings),
    }
    declared_rows = _header_int(path, lowered, ("nrows", "datarows"), warnings)
    declared_columns = _header_int(path, lowered, ("ncolumns", "datacolumns"), warnings)
    info["declared_rows"] = declared_rows
    info["declared_columns"] = declared_columns
    if declared_rows is not None and declared_rows != n_rows:
        warnings.append(f"{path.name}: header says {declared_rows} rows, file has {n_rows}")
    if declared_columns is not None and declared_columns != n_columns:
        warnings.append(f"{path.name}: header says {declared_columns} columns (with time), "
                        f"file has {n_columns}")
    declared_range = _header_range(lowered.get("range"))
    if declared_range is not None:
        info["declared_range"] = declared_range
        tolerance = 1e-3 + 1e-6 * abs(declared_range[1])
        if (abs(declared_range[0] - time[0]) > tolerance
                or abs(declared_range[1] - time[-1]) > tolerance):
            warnings.append(f"{path.name}: header range is {declared_range[0]:g}–"
                            f"{declared_range[1]:g} s, file has {time[0]:g}–{time[-1]:g} s")
    declared_rate = _header_float(lowered.get("datarate"))
    if declared_rate is not None:
        info["declared_rate"] = declared_rate
    return info


def _yes_no(path: Path, value: str | None, warnings: list[str]) -> bool | None:
    if value is None:
        return None
    lowered = value.strip().lower()
    if lowered in ("yes", "true", "1"):
        return True
    if lowered in ("no", "false", "0"):
        return False
    warnings.append(f"{path.name}: header inDegrees={value!r} is neither yes nor no; ignored")
    return None


def _header_int(path: Path, lowered: dict[str, str], keys: Sequence[str],
                warnings: list[str]) -> int | None:
    for key in keys:
        if key in lowered:
            try:
                return int(lowered[key].split()[0])
            except (ValueError, IndexError):
                warnings.append(f"{path.name}: header {key}={lowered[key]!r} is not a whole "
                                "number; ignored")
                return None
    return None


def _header_float(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _header_range(value: str | None) -> tuple[float, float] | None:
    if value is None:
        return None
    try:
        start, stop = (float(token) for token in value.split()[:2])
    except ValueError:
        return None
    return start, stop


def _split_labels(line: str) -> list[str]:
    """Column labels: tab-separated when the line has tabs (labels may hold spaces), else
    whitespace-separated. Padding and empty fields (repeated tabs) are dropped, as OpenSim does."""
    parts = line.split("\t") if "\t" in line else line.split()
    return [part.strip() for part in parts if part.strip()]


def _parse_numeric_rows(path: Path, lines: Sequence[str], start: int, labels: Sequence[str],
                        warnings: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Whitespace-separated numbers, one row per non-blank line, one field per label."""
    rows: list[list[str]] = []
    line_numbers: list[int] = []
    for index in range(start, len(lines)):
        tokens = lines[index].split()
        if tokens:
            rows.append(tokens)
            line_numbers.append(index + 1)
    if not rows:
        raise ReadError(path, "no data rows after the column labels")
    _check_field_counts(path, rows, line_numbers, len(labels), warnings)
    if not rows:
        raise ReadError(path, "no complete data rows (the only row is incomplete)")
    flat = list(chain.from_iterable(rows))
    try:
        values = np.fromiter(map(float, flat), dtype=np.float64, count=len(flat))
    except ValueError:
        raise _non_numeric_error(path, rows, line_numbers, labels) from None
    return values.reshape(len(rows), len(labels)), np.asarray(line_numbers)


def _check_field_counts(path: Path, rows: list[list[str]], line_numbers: list[int],
                        n_fields: int, warnings: list[str]) -> None:
    """Every row must have one field per label. A short *last* row is dropped with a warning;
    any other mismatch is an error. Mutates ``rows``/``line_numbers``."""
    wrong = [k for k, row in enumerate(rows) if len(row) != n_fields]
    if not wrong:
        return
    k = wrong[0]
    is_short_last_row = wrong == [len(rows) - 1] and len(rows[k]) < n_fields
    if not is_short_last_row:
        raise ReadError(path, f"line {line_numbers[k]} has {len(rows[k])} fields, expected "
                              f"{n_fields} (one per column label)")
    warnings.append(f"{path.name}: last line {line_numbers[k]} is incomplete ({len(rows[k])} of "
                    f"{n_fields} fields); dropped")
    rows.pop()
    line_numbers.pop()


def _non_numeric_error(path: Path, rows: Sequence[Sequence[str]], line_numbers: Sequence[int],
                       labels: Sequence[str]) -> ReadError:
    for row, line_number in zip(rows, line_numbers):
        for column, token in enumerate(row):
            try:
                float(token)
            except ValueError:
                # labels quoted with repr: a control character from the file must not
                # break the one-line message
                return ReadError(path, f"non-numeric value {token!r} in column "
                                       f"{labels[column]!r} at line {line_number}")
    return ReadError(path, "non-numeric value in the data")  # not reached


def _validated_time(path: Path, time: np.ndarray, data: np.ndarray, line_numbers: np.ndarray,
                    warnings: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Drop rows without a time (warning); times must then be finite and strictly increasing."""
    missing = np.isnan(time)
    if missing.all():
        raise ReadError(path, "the time column is all NaN")
    if missing.any():
        warnings.append(f"{path.name}: {int(missing.sum())} rows have no time (NaN) and were "
                        f"dropped, the first at line {line_numbers[np.flatnonzero(missing)[0]]}")
        keep = ~missing
        time, data, line_numbers = time[keep], data[keep], line_numbers[keep]
    if not np.isfinite(time).all():
        k = int(np.flatnonzero(~np.isfinite(time))[0])
        raise ReadError(path, f"time is infinite at line {line_numbers[k]}")
    not_increasing = np.flatnonzero(np.diff(time) <= 0)
    if not_increasing.size:
        k = int(not_increasing[0]) + 1
        raise ReadError(path, f"time is not increasing at row {k + 1} (line {line_numbers[k]}: "
                              f"{time[k]:.10g} after {time[k - 1]:.10g})")
    return time.copy(), np.ascontiguousarray(data), line_numbers


def moco_short_name(label: str) -> str:
    """``/jointset/<joint>/<coord>/value`` -> ``<coord>``, ``…/speed`` -> ``<coord>_speed``;
    other paths keep the components after their ``…set`` folder joined by ``_``
    (``/forceset/soleus_r/activation`` -> ``soleus_r_activation``). Plain labels are unchanged."""
    if not label.startswith("/"):
        return label
    parts = [part for part in label.split("/") if part]
    if len(parts) >= 3 and parts[0] == "jointset":
        coordinate = parts[2]
        leaf = "_".join(parts[3:]) or "value"
        return coordinate if leaf == "value" else f"{coordinate}_{leaf}"
    if len(parts) > 1 and parts[0].endswith("set"):
        parts = parts[1:]
    return "_".join(parts) or label


def _short_names(path: Path, raw_columns: Sequence[str],
                 warnings: list[str]) -> tuple[list[str], dict[str, str]]:
    """Channel names: Moco paths shortened, duplicates made unique (with a warning)."""
    channels: list[str] = []
    renamed: dict[str, str] = {}
    seen: set[str] = set()
    for raw in raw_columns:
        name = moco_short_name(raw)
        if name in seen:
            unique = _unique_name(name, seen)
            warnings.append(f"{path.name}: column '{raw}' repeats the name '{name}'; "
                            f"kept as '{unique}'")
            name = unique
        seen.add(name)
        channels.append(name)
        if name != raw:
            renamed[raw] = name
    return channels, renamed


def _unique_name(name: str, seen: set[str]) -> str:
    k = 2
    while f"{name}_{k}" in seen:
        k += 1
    return f"{name}_{k}"


def _column_kind(name: str, model_coordinates: dict[str, str] | None) -> str:
    """One of ``UNIT_BY_KIND``'s keys: model coordinate type first, else ``NAME_RULES``."""
    base, is_speed = (name[: -len("_speed")], True) if name.endswith("_speed") else (name, False)
    kind = (model_coordinates or {}).get(base) or _kind_from_name(base)
    if is_speed:
        return {"rotational": "rotational_speed",
                "translational": "translational_speed"}.get(kind, "other")
    return kind


def _kind_from_name(name: str) -> str:
    for pattern, kind in _COMPILED_NAME_RULES:
        if pattern.search(name):
            return kind
    return "other"


def _angles_in_degrees(path: Path, values: np.ndarray, channels: Sequence[str],
                       kinds: Sequence[str], free_text: Sequence[str], info: dict,
                       warnings: list[str]) -> np.ndarray:
    """Apply the degree rule of ``read_opensim``; record what was done in ``info``."""
    rotational = [j for j, kind in enumerate(kinds) if kind in ("rotational", "rotational_speed")]
    in_degrees, source = _angle_unit(info["in_degrees"], free_text, path.suffix.lower())
    info["angle_unit_source"] = source
    info["conversions"] = []
    info["scale_factors"] = {}
    if not rotational:
        return values
    if source.startswith("assumed"):
        _warn_if_unit_looks_wrong(path, values, rotational, kinds, in_degrees, warnings)
    if in_degrees:
        return values
    values = values.copy()
    values[:, rotational] *= _DEG_PER_RAD
    for j in rotational:
        unit = "rad/s -> deg/s" if kinds[j] == "rotational_speed" else "rad -> deg"
        info["conversions"].append(f"{channels[j]}: {unit} (x {_DEG_PER_RAD:.6f}, {source})")
        info["scale_factors"][channels[j]] = _DEG_PER_RAD
    return values


def _angle_unit(declared: bool | None, free_text: Sequence[str], suffix: str) -> tuple[bool, str]:
    """(values are degrees?, where that came from). Without an inDegrees line this follows
    OpenSim's Storage: "Angles are in degrees" in the header text means degrees, else .mot files
    are degrees and .sto files radians. Unlike OpenSim, "Angles are in radians" is honoured."""
    if declared is not None:
        return declared, "inDegrees=" + ("yes" if declared else "no")
    text = " ".join(free_text).lower()
    if "angles are in degrees" in text:
        return True, "header text"
    if "angles are in radians" in text:
        return False, "header text"
    return (True, "assumed from .mot") if suffix == ".mot" else (False, "assumed from .sto")


def _warn_if_unit_looks_wrong(path: Path, values: np.ndarray, rotational: Sequence[int],
                              kinds: Sequence[str], in_degrees: bool, warnings: list[str]) -> None:
    angles = [j for j in rotational if kinds[j] == "rotational"]
    largest = float(np.nanmax(np.abs(values[:, angles]), initial=0.0)) if angles else 0.0
    if in_degrees and 0.0 < largest <= math.pi:  # all-zero columns say nothing
        warnings.append(f"{path.name}: no inDegrees line; the {len(angles)} rotational columns "
                        "were taken as degrees but all stay within ±pi: they may be radians")
    elif not in_degrees and largest > 2 * math.pi:
        warnings.append(f"{path.name}: no inDegrees line; the {len(angles)} rotational columns "
                        f"were taken as radians (.sto) but reach {largest:.4g}: they may be "
                        "degrees")


def _grf_style(raw_columns: Sequence[str]) -> tuple[str | None, list[str]]:
    seen = [name for name, pattern in _COMPILED_GRF_STYLES
            if any(pattern.match(label) for label in raw_columns)]
    return (seen[0] if seen else None), seen


def _choose_rate(path: Path, declared: float | None, time: np.ndarray,
                 warnings: list[str]) -> float:
    """The declared rate when the time column agrees with it (within 5 %: times are often
    rounded), else 1/median(dt) to 6 significant digits."""
    from_time = float(f"{nominal_rate(time):.6g}")
    if not math.isfinite(from_time):  # steps so small (1e-320 s) that 1/dt overflows
        raise ReadError(path, f"time steps of {float(np.median(np.diff(time))):.3g} s are too "
                              "small to give a sampling rate")
    if declared is None or not math.isfinite(declared) or declared <= 0:  # DataRate=nan/inf/0
        return from_time
    if from_time > 0 and abs(declared / from_time - 1.0) > _RATE_TOLERANCE:
        warnings.append(f"{path.name}: header rate is {declared:g} Hz but the time column "
                        f"steps at {from_time:g} Hz; using {from_time:g} Hz")
        return from_time
    return float(declared)


# ------------------------------------------------------------------------------------------------
# .trc
# ------------------------------------------------------------------------------------------------

_TRC_UNITS = {"mm": "mm", "m": "m", "cm": "cm"}


def read_trc(path: str | Path) -> Recording:
    """Read a .trc marker file: channels ``<marker>_x/_y/_z`` in the file's Units."""
    path = as_path(path)
    warnings: list[str] = []
    lines = _read_lines(path, warnings)
    if not lines[0].startswith("PathFileType") or len(lines) < 5:
        raise ReadError(path, "not a TRC file: it must start with a 'PathFileType' line and "
                              "four more header lines")
    fields = _trc_fields(path, lines[1], lines[2], warnings)
    markers = _trc_marker_names(path, lines[3], warnings)
    values, line_numbers = _parse_trc_rows(path, lines, 5, markers, warnings)
    time, values, line_numbers = _validated_time(path, values[:, 1], values, line_numbers, warnings)

    unit = _TRC_UNITS.get(fields.get("Units", "").strip().lower(), "")
    if not unit:
        warnings.append(f"{path.name}: unknown Units {fields.get('Units')!r}; unit left empty")
    info = _trc_info(path, fields, markers, n_frames=len(time), warnings=warnings)
    info["first_frame"] = float(values[0, 0])
    channels = [f"{marker}_{axis}" for marker in markers for axis in "xyz"]
    table = TimeSeries(time=time, data=values[:, 2:], channels=channels,
                       units=[unit] * len(channels),
                       rate=_choose_rate(path, info.get("declared_rate"), time, warnings))
    return Recording(path=path, format="trc", series={"table": table}, info=info,
                     warnings=warnings)


def _trc_fields(path: Path, key_line: str, value_line: str, warnings: list[str]) -> dict[str, str]:
    keys, values = key_line.split(), value_line.split()
    if len(keys) != len(values):
        warnings.append(f"{path.name}: {len(keys)} header keys but {len(values)} values")
    return dict(zip(keys, values))


def _trc_marker_names(path: Path, line: str, warnings: list[str]) -> list[str]:
    labels = _split_labels(line)
    if len(labels) < 2 or labels[0].lower() != "frame#" or labels[1].lower() != "time":
        raise ReadError(path, "TRC line 4 must start with 'Frame#' and 'Time'")
    markers: list[str] = []
    for name in labels[2:]:
        if name in markers:
            unique = _unique_name(name, set(markers))
            warnings.append(f"{path.name}: marker '{name}' appears twice; kept as '{unique}'")
            name = unique
        markers.append(name)
    if not markers:
        raise ReadError(path, "no marker names on TRC line 4")
    return markers


def _parse_trc_rows(path: Path, lines: Sequence[str], start: int, markers: Sequence[str],
                    warnings: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Frame#, Time and 3 values per marker per row; empty cells are missing samples (NaN)."""
    n_fields = 2 + 3 * len(markers)
    rows: list[list[float]] = []
    line_numbers: list[int] = []
    padded = 0
    data_indices = [i for i in range(start, len(lines)) if lines[i].strip()]
    if not data_indices:
        raise ReadError(path, "no data rows after the TRC header")
    for index in data_indices:
        separator = "\t" if "\t" in lines[index] else None
        cells = [cell.strip() for cell in lines[index].split(separator)]
        while len(cells) > n_fields and not cells[-1]:
            cells.pop()
        if len(cells) > n_fields:
            raise ReadError(path, f"line {index + 1} has {len(cells)} fields, expected {n_fields} "
                                  f"(Frame#, Time and 3 per marker)")
        if len(cells) < n_fields:
            if index == data_indices[-1]:
                warnings.append(f"{path.name}: last line {index + 1} is incomplete "
                                f"({len(cells)} of {n_fields} fields); dropped")
                break
            padded += 1
            cells += [""] * (n_fields - len(cells))
        rows.append(_trc_cells_to_floats(path, cells, index + 1, markers))
        line_numbers.append(index + 1)
    if not rows:
        raise ReadError(path, "no complete data rows")
    if padded:
        warnings.append(f"{path.name}: {padded} rows are shorter than the header; their missing "
                        "trailing markers were read as NaN")
    return np.asarray(rows, dtype=np.float64), np.asarray(line_numbers)


def _trc_cells_to_floats(path: Path, cells: Sequence[str], line_number: int,
                         markers: Sequence[str]) -> list[float]:
    try:
        return [float(cell) if cell else math.nan for cell in cells]
    except ValueError:
        for column, cell in enumerate(cells):
            try:
                float(cell or "nan")
            except ValueError:
                name = ("Frame#", "Time")[column] if column < 2 else \
                    f"{markers[(column - 2) // 3]}_{'xyz'[(column - 2) % 3]}"
                raise ReadError(path, f"non-numeric value {cell!r} in column {name!r} at line "
                                      f"{line_number}") from None
        raise ReadError(path, f"non-numeric value at line {line_number}") from None


def _trc_info(path: Path, fields: dict[str, str], markers: Sequence[str], *, n_frames: int,
              warnings: list[str]) -> dict:
    info: dict = {"header": dict(fields), "markers": list(markers)}
    declared_frames = _header_int(path, {k.lower(): v for k, v in fields.items()},
                                  ("numframes",), warnings)
    declared_markers = _header_int(path, {k.lower(): v for k, v in fields.items()},
                                   ("nummarkers",), warnings)
    info["declared_rows"] = declared_frames
    info["declared_markers"] = declared_markers
    if declared_frames is not None and declared_frames != n_frames:
        warnings.append(f"{path.name}: header says {declared_frames} frames, file has {n_frames}")
    if declared_markers is not None and declared_markers != len(markers):
        warnings.append(f"{path.name}: header says {declared_markers} markers, file names "
                        f"{len(markers)}")
    declared_rate = _header_float(fields.get("DataRate"))
    if declared_rate is not None:
        info["declared_rate"] = declared_rate
    return info


# ------------------------------------------------------------------------------------------------
# Text input shared by both readers
# ------------------------------------------------------------------------------------------------


def _read_lines(path: Path, warnings: list[str]) -> list[str]:
    """The file's lines without line ends. Unreadable, empty or binary files are ReadErrors."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ReadError(path, "no such file") from None
    except IsADirectoryError:
        raise ReadError(path, "is a directory, not a file") from None
    except OSError as exc:
        raise ReadError(path, f"cannot be read: {exc.strerror or exc}") from None
    if not raw.strip():
        raise ReadError(path, "file is empty")
    if b"\x00" in raw:
        raise ReadError(path, "binary data (NUL bytes), not a text table")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        text = raw.decode("latin-1")
        if _mostly_control_characters(text):
            raise ReadError(path, f"binary data, not a text table (byte {exc.start} is not "
                                  "UTF-8)") from None
        warnings.append(f"{path.name}: not UTF-8; read as Latin-1")
    return [line.rstrip("\r") for line in text.split("\n")]


def _mostly_control_characters(text: str) -> bool:
    controls = sum(1 for ch in text if (ord(ch) < 32 and ch not in "\t\n\r\f\v")
                   or 0x7F <= ord(ch) <= 0x9F)
    return controls > 0.01 * len(text)


def _first_non_blank(lines: Sequence[str], start: int) -> int | None:
    for index in range(start, len(lines)):
        if lines[index].strip():
            return index
    return None
