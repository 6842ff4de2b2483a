"""One canonical naming for angles, moments and ground reaction forces.

The vocabulary (``channels.csv``) uses OpenSim coordinate names and OpenSim signs, with knee
flexion positive as in Rajagopal 2016. Each source's names and sign conventions are mapped by
``channel_map.csv``; both tables ship with the package and are documented in
``docs/naming.md``. Nothing here reads files: it turns source channels into canonical ones.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np

from gaitcli.data.timeseries import SIDES, TimeSeries

# Unit conversions from the unit a source really uses to the canonical unit.
UNIT_FACTORS: dict[tuple[str, str], float] = {
    ("deg", "deg"): 1.0,
    ("rad", "deg"): 180.0 / np.pi,
    ("m", "m"): 1.0,
    ("mm", "m"): 1e-3,
    ("N", "N"): 1.0,
    ("N·m", "N·m"): 1.0,
    ("N·mm", "N·m"): 1e-3,
    ("N·m/kg", "N·m/kg"): 1.0,
    ("N·mm/kg", "N·m/kg"): 1e-3,
    ("N/kg", "N/kg"): 1.0,
}


@dataclass(frozen=True)
class ChannelSpec:
    canonical: str
    family: str  # angle, translation, moment, force, grf, cop, grf_torque
    unit: str  # unit before body-mass normalisation
    description: str


@dataclass(frozen=True)
class MapRow:
    source: str
    source_channel: str
    canonical: str
    sign: float
    source_unit: str
    note: str


def _expand_side(template: str, side: str) -> str:
    return template.replace("{s}", side).replace("{S}", side.upper())


def _read_table(name: str) -> list[dict[str, str]]:
    text = resources.files("gaitcli.data").joinpath(name).read_text(encoding="utf-8")
    return list(csv.DictReader(text.splitlines()))


@lru_cache(maxsize=None)
def vocabulary() -> dict[str, ChannelSpec]:
    """Every canonical channel name, sides expanded, with its family and unit."""
    specs: dict[str, ChannelSpec] = {}
    for row in _read_table("channels.csv"):
        sides = SIDES if "{s}" in row["canonical"] else ("",)
        for side in sides:
            name = _expand_side(row["canonical"], side)
            specs[name] = ChannelSpec(name, row["family"], row["unit"], row["description"])
    return specs


@lru_cache(maxsize=None)
def mapping(source: str) -> tuple[MapRow, ...]:
    """The rows of channel_map.csv for one source, sides expanded."""
    rows = []
    for row in _read_table("channel_map.csv"):
        if row["source"] != source:
            continue
        sides = SIDES if "{s}" in row["canonical"] else ("",)
        for side in sides:
            rows.append(MapRow(
                source=source,
                source_channel=_expand_side(row["source_channel"], side),
                canonical=_expand_side(row["canonical"], side),
                sign=float(row["sign"]),
                source_unit=row["source_unit"],
                note=row["note"],
            ))
    return tuple(rows)


def sources() -> list[str]:
    return sorted({row["source"] for row in _read_table("channel_map.csv")})


def family(name: str) -> str:
    spec = vocabulary().get(name)
    return spec.family if spec else "other"


def canonical_unit(name: str, per_kg: bool) -> str:
    """The unit a canonical channel is stored in; forces and moments may be per kg."""
    spec = vocabulary()[name]
    if per_kg and spec.family in ("moment", "force", "grf", "grf_torque"):
        return spec.unit + "/kg"
    return spec.unit


def convert_unit(values: np.ndarray, from_unit: str, to_unit: str) -> np.ndarray:
    try:
        return values * UNIT_FACTORS[(from_unit, to_unit)]
    except KeyError:
        raise ValueError(f"no conversion from {from_unit!r} to {to_unit!r}") from None


def apply_map(ts: TimeSeries, source: str, strip_prefix: str = "") -> tuple[TimeSeries, list[str]]:
    """Canonical channels found in ``ts`` through the source's map rows.

    Returns the canonical series and a list of notes (one per conversion applied), so callers
    can record what was done. Channels the map does not name are left out.
    """
    names, columns, units, notes = [], [], [], []
    for row in mapping(source):
        label = strip_prefix + row.source_channel
        if label not in ts.channels:
            continue
        per_kg = row.source_unit.endswith("/kg")
        target_unit = canonical_unit(row.canonical, per_kg)
        values = convert_unit(ts.channel(label), row.source_unit, target_unit) * row.sign
        names.append(row.canonical)
        columns.append(values)
        units.append(target_unit)
        if row.sign < 0 or row.source_unit != target_unit:
            notes.append(f"{label} -> {row.canonical} (x{row.sign:+g}, {row.source_unit} -> {target_unit})")
    data = np.column_stack(columns) if columns else np.empty((len(ts), 0))
    return TimeSeries(ts.time.copy(), data, names, units, ts.rate), notes


# -- OpenSim tables ---------------------------------------------------------------------------
# Ground-reaction column styles seen in real OpenSim exports. Each regex yields the side (or a
# slot to be resolved to a side), the quantity (v = force, p = point, torque) and the axis.
_GRF_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("ground_force_r_vx", re.compile(r"^ground_(?P<kind>force|torque)_(?P<side>[rl])_(?P<q>[vp]?)(?P<axis>[xyz])$")),
    ("R_ground_force_vx", re.compile(r"^(?P<side>[RL])_ground_(?P<kind>force|torque)_(?P<q>[vp]?)(?P<axis>[xyz])$")),
    ("l_ground_force_vx", re.compile(r"^(?P<slot>l_|r_)?ground_(?P<kind>force|torque)_(?P<q>[vp]?)(?P<axis>[xyz])$")),
    ("1_ground_force_vx", re.compile(r"^(?P<slot>\d+_)?ground_(?P<kind>force|torque)_(?P<q>[vp]?)(?P<axis>[xyz])$")),
)


def grf_canonical_name(column: str, slot_sides: dict[str, str] | None = None) -> str | None:
    """The canonical GRF name of an OpenSim GRF column, or None when it is not one.

    Unprefixed columns (``ground_force_vx``) belong to slot ``""``, numbered or lettered
    prefixes (``1_``, ``l_``) to their own slot. ``slot_sides`` maps slots to sides; by default,
    as in OpenSim's example ExternalLoads files, ``""`` is the right foot and ``1_``/``l_`` the left.
    """
    slot_sides = {"": "r", "1_": "l", "l_": "l", "r_": "r"} | (slot_sides or {})
    for _, pattern in _GRF_PATTERNS:
        m = pattern.match(column)
        if not m:
            continue
        groups = m.groupdict()
        side = (groups.get("side") or "").lower() or slot_sides.get(groups.get("slot") or "")
        if side not in SIDES:
            return None
        if groups["kind"] == "torque":
            return f"ground_torque_{side}_{groups['axis']}"
        if not groups["q"]:
            return None
        return f"ground_force_{side}_{groups['q']}{groups['axis']}"
    return None


def grf_style(columns: list[str]) -> str | None:
    """Which of the known GRF naming styles a table's columns use."""
    for style, pattern in _GRF_PATTERNS:
        if any(pattern.match(c) and ("force" in c) for c in columns):
            if style == "l_ground_force_vx" and not any(c.startswith(("l_", "r_")) for c in columns):
                continue
            if style == "1_ground_force_vx" and not any(re.match(r"^\d+_", c) for c in columns):
                return "ground_force_vx"
            return style
    return None


def knee_convention(knee_angles_deg: np.ndarray) -> str:
    """'gait2392' when knee flexion is negative in the data, else 'rajagopal'.

    gait2392-family models (gait2354, gait10dof18musc, Hamner) give the knee a range of about
    -120..10 deg with flexion negative; Rajagopal/LaiUhlrich use 0..120 with flexion positive.
    A walking or running trial always flexes the knee by tens of degrees, so the median sign
    of the knee angle tells them apart.
    """
    finite = knee_angles_deg[np.isfinite(knee_angles_deg)]
    # Zero-filled or frozen columns (GRF files carry such) say nothing about the convention.
    if finite.size == 0 or np.ptp(finite) < 10.0:
        return "unknown"
    return "gait2392" if np.median(finite) < -2.0 else "rajagopal"


def opensim_canonical(ts: TimeSeries, knee: str, slot_sides: dict[str, str] | None = None,
                      ) -> tuple[TimeSeries, list[str]]:
    """Canonical channels of an OpenSim table (coordinates, ID results, GRF).

    Coordinate and ``<coord>_moment`` names are already canonical; ``knee`` is the knee sign
    convention of the model the file came from ('gait2392' flips knee channels). All-zero
    columns are dropped: GRF files often carry zero-filled coordinate columns.
    """
    vocab = vocabulary()
    flips = {row.canonical: row.sign for row in mapping("opensim-gait2392")} if knee == "gait2392" else {}
    names, columns, units, notes = [], [], [], []
    for j, column in enumerate(ts.channels):
        values = ts.data[:, j]
        if np.all(np.nan_to_num(values) == 0.0):
            continue
        name = column if column in vocab else grf_canonical_name(column, slot_sides)
        if name is None or name in names:
            continue
        sign = flips.get(name, 1.0)
        if sign < 0:
            notes.append(f"{column} -> {name} (x-1, gait2392 knee convention)")
        names.append(name)
        columns.append(values * sign)
        units.append(ts.units[j])
    data = np.column_stack(columns) if columns else np.empty((len(ts), 0))
    return TimeSeries(ts.time.copy(), data, names, units, ts.rate), notes
