"""Force plate outputs from C3D FORCE_PLATFORM parameters and analog channels.

For every plate this computes, in the lab frame and at the analog rate:
``fp<i>_fx/fy/fz`` [N], the ground reaction force on the subject (its vertical component is
positive under a standing subject), ``fp<i>_copx/copy/copz`` [m], the centre of pressure on
the plate surface (NaN while the vertical force is below :data:`COP_MIN_VERTICAL_N`), and
``fp<i>_tz`` [N·m], the free moment about the vertical axis at the COP (NaN with the COP).

Conventions (C3D manual, checked on every real file of the corpus):

- Plate axes come from CORNERS (4 corners, lab coordinates, POINT:UNITS): x = c1 - c2,
  y = c1 - c4, z = x × y. z points into the floor in every file seen (-Z in Z-up labs,
  -Y in the Y-up BTS labs), so "up" is -z.
- Plate channels hold the force and moment on the subject in plate axes: the lab force is
  R @ F with R's columns the plate axes. (Verified: vertical force positive under load on
  every plate of the corpus; plate force / mass matches PiG GroundReactionForce.)
  Should a plate still show a negative vertical force under load, its signs are flipped
  and a warning says so.
- ORIGIN is c, the position of the plate's geometric surface centre relative to the
  sensor origin, in plate axes; c_z = -(surface height above the origin) is negative.
  Vicon, BTS and Qualisys store c_z positive; it is read as -|c_z| with a warning.
- TYPE 1: Fx Fy Fz Px Py Tz (COP already in plate axes, relative to the plate centre).
  TYPE 2: Fx Fy Fz Mx My Mz about the sensor origin. TYPE 4: six channels times the
  6x6 CAL_MATRIX, then as TYPE 2. TYPE 3 (Kistler): fx12 fx34 fy14 fy23 fz1..fz4 with the
  sensor offsets a, b = ORIGIN x, y. Other types are skipped with a warning.
- Units: forces N (``nt`` = N); moments from their declared unit (Nmm -> /1000, Nm);
  lengths (CORNERS, ORIGIN, type-1 COP) in POINT:UNITS. Channels declared in volts (V, mV)
  or without a unit: plates of TYPE 4 use CAL_MATRIX; otherwise the values are used as N
  and N·<POINT:UNITS> when the vertical force reaches :data:`VOLT_CHANNELS_AS_NEWTON` (no
  ADC gives volts that large: the file's SCALE already calibrated them, as in sample03 and
  Qualisys sample26); below that they are raw volts and the plate is skipped with a warning.
- Moments 1000x their declared unit (sample23, sample03: "Nm" on N·mm values) put the COP
  tens of metres off the plate; they are rescaled with a warning, see _check_moment_scale.
- Zero offset: the median of a baseline window is subtracted from the plate's force and
  moment, only when the window is quiet (unloaded) and the offset is clear; see
  :func:`zero_offset`. A constant offset on a plate nobody steps on cannot be told from a
  light object and is kept (sample25 plate 1: 46 N throughout).
- The TYPE-4 CAL_MATRIX is stored column by column (its transpose multiplies the channels):
  this reading makes sample10 TYPE-4a match TYPE-2a within 0.3 %; the other is 25 % off.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gaitcli.data.timeseries import TimeSeries

COP_MIN_VERTICAL_N = 10.0
VOLT_CHANNELS_AS_NEWTON = 50.0  # |vertical| peak above which "volt" channels are taken as N
BASELINE_FRAMES = 10  # point frames in the default baseline window
LOADED_N = 50.0  # vertical force that counts as "someone on the plate" for the sign check
CHANNELS_PER_TYPE = {1: 6, 2: 6, 3: 8, 4: 6}

_LENGTH_TO_M = {"mm": 1e-3, "cm": 1e-2, "m": 1.0, "in": 0.0254}
_FORCE_TO_N = {"n": 1.0, "nt": 1.0, "newton": 1.0, "newtons": 1.0, "kn": 1000.0,
               "lbf": 4.4482216152605, "lb": 4.4482216152605}
_VOLT = {"v": 1.0, "mv": 1e-3, "volt": 1.0, "volts": 1.0}


@dataclass
class PlateParameters:
    """The FORCE_PLATFORM group as read (arrays in py-c3d's row-major, reversed shapes)."""

    used: int
    types: np.ndarray | None  # (plates,)
    channels: np.ndarray | None  # (plates, channels per plate), 1-based analog indices
    corners: np.ndarray | None  # (plates, 4, 3) lab coordinates, POINT:UNITS
    origins: np.ndarray | None  # (plates, 3) plate coordinates, POINT:UNITS
    cal_matrix: np.ndarray | None  # (plates, 6, 6) as stored (column-major per plate)
    zero: tuple[int, ...] | None  # baseline frame range, 1-based
    length_unit: str  # POINT:UNITS
    point_rate: float


@dataclass
class PlateResult:
    series: TimeSeries | None
    warnings: list[str] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Plate:
    number: int
    type: int
    channels: np.ndarray  # 0-based analog columns
    rotation: np.ndarray  # (3, 3): columns are the plate axes in the lab
    centre: np.ndarray  # (3,) metres, lab
    origin: np.ndarray  # (3,) metres, plate axes: surface centre relative to sensor origin
    cal: np.ndarray | None  # (6, 6), outputs = cal @ inputs
    size: tuple[float, float]  # metres along plate x and y
    sensor_offsets: tuple[float, float] = (0.0, 0.0)  # Kistler a, b (type 3), metres
    notes: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------------------
# units


def _unit_key(unit: str) -> str:
    return unit.strip().lower().replace(" ", "").replace(".", "").replace("*", "").replace(
        "·", "").replace("-", "")


def length_scale(unit: str) -> float | None:
    return _LENGTH_TO_M.get(_unit_key(unit))


def force_scale(unit: str) -> float | None:
    return _FORCE_TO_N.get(_unit_key(unit))


def moment_scale(unit: str) -> float | None:
    """N·m per declared unit: Nmm -> 0.001, Nm -> 1, ntmm (AMASS) -> 0.001."""
    key = _unit_key(unit)
    for force, f_scale in _FORCE_TO_N.items():
        if key.startswith(force):
            length = _LENGTH_TO_M.get(key[len(force):])
            if length is not None:
                return f_scale * length
    return None


def is_volt(unit: str) -> bool:
    return _unit_key(unit) in _VOLT or not unit.strip()


# --------------------------------------------------------------------------------------
# geometry


def plate_rotation(corners: np.ndarray) -> np.ndarray:
    """Plate axes (columns) in the lab from the four corners: x = c1-c2, y = c1-c4, z = x × y."""
    x = corners[0] - corners[1]
    y = corners[0] - corners[3]
    z = np.cross(x, y)
    y = np.cross(z, x)
    axes = [v / np.linalg.norm(v) for v in (x, y, z)]
    return np.column_stack(axes)


def _vertical_axis_name(up: np.ndarray) -> str:
    k = int(np.argmax(np.abs(up)))
    return ("+" if up[k] > 0 else "-") + "XYZ"[k]


# --------------------------------------------------------------------------------------
# entry point


def compute_forceplates(analog: TimeSeries, params: PlateParameters) -> PlateResult:
    """Lab-frame force, COP and free moment of every plate that can be computed."""
    result = PlateResult(series=None)
    length = length_scale(params.length_unit)
    if length is None:
        result.warnings.append(f"force plates skipped: POINT:UNITS {params.length_unit!r} "
                               "is not a length unit")
        return result
    names: list[str] = []
    columns: list[np.ndarray] = []
    units: list[str] = []
    axes: set[str] = set()
    for index in range(params.used):
        plate, problem = _plate(index, params, analog.data.shape[1], length)
        if plate is None:
            result.warnings.append(f"force plate {index + 1}: {problem}; skipped")
            continue
        outputs, notes = _plate_outputs(plate, analog, params, length)
        result.warnings.extend(f"force plate {plate.number}: {n}" for n in notes)
        if outputs is None:
            continue
        axes.add(_vertical_axis_name(-plate.rotation[:, 2]))
        prefix = f"fp{plate.number}_"
        for suffix, values, unit in outputs:
            names.append(prefix + suffix)
            columns.append(values)
            units.append(unit)
    if columns:
        result.series = TimeSeries(analog.time.copy(), np.column_stack(columns), names, units,
                                   analog.rate)
        result.info["forceplate_vertical_axis"] = "/".join(sorted(axes))
    return result


def _plate(index: int, params: PlateParameters, n_analog: int, length: float
           ) -> tuple[_Plate | None, str]:
    if params.types is None or params.types.size <= index:
        return None, "FORCE_PLATFORM:TYPE missing"
    plate_type = int(params.types.ravel()[index])
    if plate_type not in CHANNELS_PER_TYPE:
        return None, f"type {plate_type} is not supported (1, 2, 3, 4 are)"
    needed = CHANNELS_PER_TYPE[plate_type]
    if params.channels is None or params.channels.ndim != 2 or params.channels.shape[0] <= index \
            or params.channels.shape[1] < needed:
        return None, "FORCE_PLATFORM:CHANNEL missing or too short"
    channels = params.channels[index, :needed].astype(int) - 1
    if (channels < 0).any() or (channels >= n_analog).any():
        return None, f"channels {list(channels + 1)} outside the {n_analog} analog channels"
    if params.corners is None or params.corners.size < 12 * (index + 1):
        return None, "FORCE_PLATFORM:CORNERS missing"
    corners = params.corners.reshape(-1, 4, 3)[index] * length
    if not np.isfinite(corners).all() or np.linalg.norm(np.cross(
            corners[0] - corners[1], corners[0] - corners[3])) < 1e-6:
        return None, "degenerate CORNERS"
    origin = np.zeros(3)
    if params.origins is not None and params.origins.size >= 3 * (index + 1):
        origin = params.origins.reshape(-1, 3)[index] * length
    notes = []
    if origin[2] > 0 and plate_type in (2, 3, 4):
        notes.append(f"ORIGIN z stored positive ({origin[2] * 1000:g} mm); "
                     "using the surface height as negative z")
        origin = origin * np.array([1.0, 1.0, -1.0])
    sensor_offsets = (0.0, 0.0)
    if plate_type == 3:  # x, y are the sensor offsets; moments are about the plate axis
        sensor_offsets, origin = (float(origin[0]), float(origin[1])), np.array(
            [0.0, 0.0, origin[2]])
    cal = None
    if plate_type == 4:
        if params.cal_matrix is None or params.cal_matrix.size < 36 * (index + 1):
            return None, "type 4 without CAL_MATRIX"
        cal = params.cal_matrix.reshape(-1, 6, 6)[index].T  # stored column by column
        if not np.any(cal):
            return None, "type 4 with an all-zero CAL_MATRIX"
    return _Plate(number=index + 1, type=plate_type, channels=channels,
                  rotation=plate_rotation(corners), centre=corners.mean(axis=0),
                  origin=origin, cal=cal,
                  size=(float(np.linalg.norm(corners[0] - corners[1])),
                        float(np.linalg.norm(corners[0] - corners[3]))),
                  sensor_offsets=sensor_offsets, notes=notes), ""


# --------------------------------------------------------------------------------------
# per plate


def _plate_outputs(plate: _Plate, analog: TimeSeries, params: PlateParameters, length: float
                   ) -> tuple[list[tuple[str, np.ndarray, str]] | None, list[str]]:
    notes = list(plate.notes)
    raw = analog.data[:, plate.channels]
    declared = [analog.units[c] for c in plate.channels]
    if plate.type == 1:
        return _type1_outputs(plate, raw, declared, params, length, notes)
    wrench = _plate_wrench(plate, raw, declared, params, notes)
    if wrench is None:
        return None, notes
    force, moment = wrench
    moment = _check_moment_scale(plate, force, moment, notes)
    force, moment = zero_offset(force, moment, params, analog.rate, notes)
    force, moment = _orient(plate, force, moment, notes)
    cop, free = _cop_and_free_moment(plate, force, moment)
    return _lab_outputs(plate, force, cop, free), notes


def _plate_wrench(plate: _Plate, raw: np.ndarray, declared: list[str],
                  params: PlateParameters, notes: list[str]
                  ) -> tuple[np.ndarray, np.ndarray] | None:
    """(force N, moment N·m about the sensor origin), both (n, 3) in plate axes."""
    if plate.type == 3:
        scales = _channel_scales(raw, declared, [True] * 8, params, notes)
        if scales is None:
            return None
        ch = raw * scales[0]
        a, b = plate.sensor_offsets
        force = np.column_stack([ch[:, 0] + ch[:, 1], ch[:, 2] + ch[:, 3], ch[:, 4:8].sum(axis=1)])
        moment = np.column_stack([
            b * (ch[:, 4] + ch[:, 5] - ch[:, 6] - ch[:, 7]),
            a * (-ch[:, 4] + ch[:, 5] + ch[:, 6] - ch[:, 7]),
            b * (-ch[:, 0] + ch[:, 1]) + a * (ch[:, 2] - ch[:, 3]),
        ])
        return force, moment
    if plate.type == 4:
        values = raw @ plate.cal.T
        force_unit = declared[0] if force_scale(declared[0]) else "N"
        moment_unit = declared[3] if moment_scale(declared[3]) else "N" + params.length_unit
        return values[:, :3] * force_scale(force_unit), values[:, 3:] * moment_scale(moment_unit)
    scales = _channel_scales(raw, declared, [True] * 3 + [False] * 3, params, notes)
    if scales is None:
        return None
    return raw[:, :3] * scales[0], raw[:, 3:6] * scales[1]


def _channel_scales(raw: np.ndarray, declared: list[str], is_force: list[bool],
                    params: PlateParameters, notes: list[str]) -> tuple[float, float] | None:
    """(N per force unit, N·m per moment unit) of a plate's channels, or None for raw volts."""
    force_units = {u for u, f in zip(declared, is_force) if f}
    moment_units = {u for u, f in zip(declared, is_force) if not f}
    f_scales = {force_scale(u) for u in force_units}
    m_scales = {moment_scale(u) for u in moment_units}
    if None not in f_scales and None not in m_scales and len(f_scales) == 1 \
            and len(m_scales) <= 1:
        return f_scales.pop(), (m_scales.pop() if m_scales else 1.0)
    if not all(is_volt(u) or force_scale(u) or moment_scale(u) for u in declared):
        notes.append(f"channel units {sorted(set(declared))} not understood; skipped")
        return None
    vertical = _vertical_peak(raw, is_force)
    if vertical < VOLT_CHANNELS_AS_NEWTON:
        notes.append(f"channels in {'/'.join(sorted(set(declared))) or 'no unit'} without "
                     "calibration; forces skipped")
        return None
    length = length_scale(params.length_unit) or 1e-3
    notes.append(f"channels declared {'/'.join(sorted(set(declared))) or 'without unit'} hold "
                 f"calibrated values (vertical peak {vertical:.0f}); read as N and "
                 f"N{params.length_unit}")
    f_scale = next(iter(f_scales)) if len(f_scales) == 1 and None not in f_scales else 1.0
    m_scale = next(iter(m_scales)) if len(m_scales) == 1 and None not in m_scales else length
    return f_scale, m_scale


def _vertical_peak(raw: np.ndarray, is_force: list[bool]) -> float:
    if len(is_force) == 8:
        vertical = raw[:, 4:8].sum(axis=1)
    else:
        vertical = raw[:, 2]
    vertical = vertical - np.median(vertical)
    return float(np.max(np.abs(vertical))) if vertical.size else 0.0


def _check_moment_scale(plate: _Plate, force: np.ndarray, moment: np.ndarray,
                        notes: list[str]) -> np.ndarray:
    """Moments 1000x off their declared unit (sample23 and sample03 declare "Nm" on N·mm).

    Under load the COP lies on the plate and travels along the foot. When the declared unit
    puts the median loaded COP over 3 plate half-diagonals from the centre, or keeps every
    loaded COP within 5 mm of the centre, and the other scale gives a COP on the plate that
    moves, the other scale wins (with a warning).
    """
    fz = np.abs(force[:, 2])
    if fz.size == 0 or fz.max() < LOADED_N:
        return moment
    loaded = fz >= max(LOADED_N, 0.5 * fz.max())
    half_diagonal = 0.5 * float(np.hypot(*plate.size))

    def cop_spread(m: np.ndarray) -> tuple[float, float]:
        centre_moment = m[loaded] + np.cross(force[loaded], plate.origin)
        distance = np.hypot(centre_moment[:, 0], centre_moment[:, 1]) / fz[loaded]
        return float(np.median(distance)), float(np.max(distance))

    def plausible(m: np.ndarray) -> bool:
        median, largest = cop_spread(m)
        return median <= 1.5 * half_diagonal and largest >= 0.005

    median, largest = cop_spread(moment)
    if median > 3.0 * half_diagonal:
        factor, reason = 1e-3, f"COP would lie {median:.0f} m off the plate"
    elif largest < 0.005:
        factor, reason = 1e3, "COP would never leave the plate centre"
    else:
        return moment
    if plausible(moment * factor):
        unit = "N·mm" if factor < 1 else "N·m"
        notes.append(f"moments are {'1000x' if factor < 1 else '1/1000 of'} their declared "
                     f"unit ({reason}); read as {unit}")
        return moment * factor
    notes.append(f"moment units doubtful ({reason})")
    return moment


def zero_offset(force: np.ndarray, moment: np.ndarray, params: PlateParameters, rate: float,
                notes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Subtract the plate's unloaded baseline, when there clearly is one.

    Window: FORCE_PLATFORM:ZERO (1-based stored frames) when it is a valid range, else the
    first :data:`BASELINE_FRAMES` frames, else the last ones. The window's median force and
    moment are subtracted only if, on the vertical force, the window is quiet (spread under
    2 N or 2 % of the trial's load), the offset is clear (over 2 N and 3x the spread) and
    the trial holds a load at least twice the offset (so a subject standing on the plate
    during the window is never "zeroed" away). Otherwise the data are left alone.
    """
    n = force.shape[0]
    per_frame = max(1, int(round(rate / params.point_rate))) if params.point_rate else 1
    for start, stop in _baseline_windows(params.zero, n, per_frame):
        window = force[start:stop, 2]
        if window.size < 3:
            continue
        offset = float(np.median(window))
        spread = float(np.percentile(window, 95) - np.percentile(window, 5))
        load = float(np.max(np.abs(force[:, 2] - offset)))
        quiet = spread <= max(2.0, 0.02 * load)
        if not quiet:
            continue
        if abs(offset) > max(2.0, 3.0 * spread) and load >= 2.0 * abs(offset):
            notes.append(f"zero offset removed (vertical {offset:+.1f} N, frames "
                         f"{start // per_frame + 1}-{stop // per_frame})")
            return (force - np.median(force[start:stop], axis=0),
                    moment - np.median(moment[start:stop], axis=0))
        return force, moment
    return force, moment


def _baseline_windows(zero: tuple[int, ...] | None, n: int, per_frame: int
                      ) -> list[tuple[int, int]]:
    windows = []
    if zero is not None and len(zero) >= 2 and 1 <= zero[0] <= zero[1]:
        start, stop = (zero[0] - 1) * per_frame, zero[1] * per_frame
        if stop <= n:
            windows.append((start, stop))
    span = BASELINE_FRAMES * per_frame
    if n >= 4 * span:
        windows += [(0, span), (n - span, n)]
    return windows


def _orient(plate: _Plate, force: np.ndarray, moment: np.ndarray, notes: list[str]
            ) -> tuple[np.ndarray, np.ndarray]:
    """Flip a plate whose vertical reaction is negative under load (wrong sign convention)."""
    vertical = -force[:, 2]  # plate z points down
    loaded = np.abs(vertical) > LOADED_N
    if loaded.any() and np.median(vertical[loaded]) < 0:
        notes.append("vertical force negative under load; signs flipped")
        return -force, -moment
    return force, moment


def _cop_and_free_moment(plate: _Plate, force: np.ndarray, moment: np.ndarray
                         ) -> tuple[np.ndarray, np.ndarray]:
    """COP (n, 3) relative to the surface centre and free moment (n,), both in plate axes."""
    centre_moment = moment + np.cross(force, plate.origin)  # moment about the surface centre
    fz = force[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        px = -centre_moment[:, 1] / fz
        py = centre_moment[:, 0] / fz
    unloaded = ~(np.abs(fz) >= COP_MIN_VERTICAL_N)
    px[unloaded] = np.nan
    py[unloaded] = np.nan
    free = centre_moment[:, 2] - (px * force[:, 1] - py * force[:, 0])
    cop = np.column_stack([px, py, np.zeros_like(px)])
    cop[unloaded, 2] = np.nan
    return cop, free


def _lab_outputs(plate: _Plate, force: np.ndarray, cop: np.ndarray, free: np.ndarray
                 ) -> list[tuple[str, np.ndarray, str]]:
    rotation = plate.rotation
    force_lab = force @ rotation.T
    cop_lab = cop @ rotation.T + plate.centre
    free_lab = -free  # about "up" = -plate z
    return [
        ("fx", force_lab[:, 0], "N"), ("fy", force_lab[:, 1], "N"), ("fz", force_lab[:, 2], "N"),
        ("copx", cop_lab[:, 0], "m"), ("copy", cop_lab[:, 1], "m"), ("copz", cop_lab[:, 2], "m"),
        ("tz", free_lab, "N·m"),
    ]


def _type1_outputs(plate: _Plate, raw: np.ndarray, declared: list[str],
                   params: PlateParameters, length: float, notes: list[str]
                   ) -> tuple[list[tuple[str, np.ndarray, str]] | None, list[str]]:
    f_scale = force_scale(declared[0])
    if f_scale is None:
        if is_volt(declared[0]) and _vertical_peak(raw, [True] * 6) < VOLT_CHANNELS_AS_NEWTON:
            notes.append("channels in V without calibration; forces skipped")
            return None, notes
        f_scale = 1.0
    cop_scale = length_scale(declared[3]) or length
    free_scale = moment_scale(declared[5]) or (1.0 * length)
    if length_scale(declared[3]) is None or moment_scale(declared[5]) is None:
        notes.append(f"type 1 COP/free moment declared {declared[3]!r}/{declared[5]!r}; "
                     f"read as {params.length_unit} and N{params.length_unit}")
    force = raw[:, :3] * f_scale
    force, _ = _orient(plate, force, np.zeros_like(force), notes)
    cop = np.column_stack([raw[:, 3] * cop_scale, raw[:, 4] * cop_scale, np.zeros(len(raw))])
    unloaded = ~(np.abs(force[:, 2]) >= COP_MIN_VERTICAL_N)
    cop[unloaded] = np.nan
    free = raw[:, 5] * free_scale
    free = np.where(unloaded, np.nan, free)
    return _lab_outputs(plate, force, cop, free), notes
