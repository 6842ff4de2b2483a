"""From the recordings of one trial to canonical, unit-correct, cycle-segmented data.

A trial is one or more files of the same capture: a C3D alone, or an OpenSim IK ``.mot``
with its GRF ``.mot`` and ID ``.sto``, or a WBDS ``ang``/``knt`` pair. Steps, in order:
naming (source -> canonical channels and signs), GRF per foot in the walking frame, resampling
to a common rate, optional low-pass per channel family, events, label validity masks, body
mass normalisation, cycles.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gaitcli.data import events as ev
from gaitcli.data import naming, processing
from gaitcli.data.cycles import DEFAULT_POINTS, Cycle, normalise, rejection, segment
from gaitcli.data.timeseries import SIDES, Event, Recording, TimeSeries
from gaitcli.errors import DataError


@dataclass
class TrialOptions:
    rate: float = 100.0
    points: int = DEFAULT_POINTS
    lowpass: dict[str, float] = field(default_factory=dict)  # family ("angle", "moment", "grf", "*") -> Hz
    threshold_n: float = ev.DEFAULT_THRESHOLD_N
    min_cycle_s: float = 0.2
    max_cycle_s: float = 2.0
    mass_kg: float | None = None  # overrides every other source


@dataclass
class Trial:
    subject: str
    trial: str
    condition: str
    sources: list[Path]
    continuous: TimeSeries | None  # None for data that is already time-normalised
    cycles: list[Cycle]
    cycle_values: np.ndarray  # (n_cycles, points, channels), channels as in ``channels``
    channels: list[str]
    units: dict[str, str]
    rejected: list[tuple[Cycle, str]] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    event_sources: dict[str, str] = field(default_factory=dict)
    mass_kg: float | None = None
    height_m: float | None = None
    mass_source: str = "unknown"
    mass_normalised: bool = False
    notes: list[str] = field(default_factory=list)  # conversions applied, for the metadata
    warnings: list[str] = field(default_factory=list)


# -- naming per source -------------------------------------------------------------------------
# Foot and pelvis marker names across vendors (PiG RHEE/RTOE, Qualisys R_FCC/R_FM1, BTS
# "r heel"/"r met", Codamotion/IST RCAL/RPM1, Helen Hayes, c3d.org samples).
_SIDE = r"^(?P<side>[LR])(?:[._\s-]|(?=[A-Z]))?"
MARKER_ROLES = {
    "heel": re.compile(_SIDE + r"(HEE|HEEL|CAL|CALC|FCC|HL)\d*$", re.I),
    "toe": re.compile(_SIDE + r"(TOE|TOES|MT_?\d|MET\d*|MTH\d*|HLX|FM_?\d|PM\d|FOOT)$", re.I),
    # any marker on the foot or ankle: enough to tell which foot is on a plate
    "foot": re.compile(_SIDE + r"(ANK|MALL|LMAL|MMAL|LMA|FAL|TAM|FT\d|AJC)\d*$", re.I),
}
SACRUM = re.compile(r"^(V\.?)?(SACR|SACRUM|SAC|SACRAL|S1)\d*$", re.I)
PSIS = re.compile(_SIDE + r"(PSI|PSIS|IPS)$", re.I)


def _vertical(rec: Recording) -> tuple[int, float]:
    """(axis index, sign) of the lab's up direction: '+Z' (most labs) or '+Y' (BTS, some others)."""
    text = str(rec.info.get("forceplate_vertical_axis") or "+Z").strip().upper()
    sign = -1.0 if text.startswith("-") else 1.0
    return {"X": 0, "Y": 1, "Z": 2}.get(text[-1:], 2), sign


def _point_xyz(points: TimeSeries, label: str) -> np.ndarray:
    return np.column_stack([points.channel(f"{label}_{a}") for a in "xyz"])


def _markers(rec: Recording) -> dict[str, np.ndarray]:
    """Prefix-free label -> (n, 3) positions in metres of the foot and pelvis markers gait uses."""
    points = rec.series.get("points")
    if points is None:
        return {}
    prefix = rec.info.get("label_prefix", "") or ""
    scale = 1e-3 if (rec.info.get("point_units") or "mm").lower() == "mm" else 1.0
    wanted = [pattern for pattern in MARKER_ROLES.values()] + [SACRUM, PSIS]
    found = {}
    for label, group in rec.point_groups.items():
        if group == "marker" and f"{prefix}{label}_x" in points and any(p.match(label) for p in wanted):
            found[label] = _point_xyz(points, prefix + label) * scale
    return found


def _find_marker(markers: dict[str, np.ndarray], pattern: re.Pattern[str]) -> dict[str, np.ndarray]:
    by_side: dict[str, np.ndarray] = {}
    for label, xyz in markers.items():
        m = pattern.match(label)
        if m and m["side"].lower() not in by_side and np.isfinite(xyz).any():
            by_side[m["side"].lower()] = xyz
    return by_side


def _sacrum(markers: dict[str, np.ndarray]) -> np.ndarray | None:
    for label, xyz in markers.items():
        if SACRUM.match(label) and np.isfinite(xyz).any():
            return xyz
    psis = _find_marker(markers, PSIS)
    if len(psis) == 2:
        return (psis["l"] + psis["r"]) / 2.0
    return None


def _plate_feet(rec: Recording, markers: dict[str, np.ndarray], rotation: np.ndarray,
                threshold: float) -> TimeSeries | None:
    """Per-foot GRF (N) and COP (m) in the walking frame, from force plates assigned by markers.

    Each contact on each plate goes to the foot whose heel/toe markers are nearest the contact's
    mean COP. Contacts that cannot be assigned (no foot markers) are dropped with a warning.
    """
    plates = rec.series.get("forceplates")
    if plates is None or not plates.channels:
        return None
    feet = {side: [xyz] for side, xyz in _find_marker(markers, MARKER_ROLES["heel"]).items()}
    for role in ("toe", "foot"):
        for side, xyz in _find_marker(markers, MARKER_ROLES[role]).items():
            feet.setdefault(side, []).append(xyz)
    points_time = rec.series["points"].time if "points" in rec.series else None
    axis, sign = _vertical(rec)
    n_plates = len({c.split("_")[0] for c in plates.channels if c.startswith("fp")})
    out = np.zeros((len(plates), 18))
    out[:, 3:6] = np.nan
    out[:, 12:15] = np.nan
    assigned = 0
    for i in range(1, n_plates + 1):
        if f"fp{i}_fz" not in plates:
            continue
        force = np.column_stack([plates.channel(f"fp{i}_f{a}") for a in "xyz"])
        cop = np.column_stack([plates.channel(f"fp{i}_cop{a}") for a in "xyz"])
        free = plates.channel(f"fp{i}_tz")
        for contact in ev.contacts(plates.time, sign * force[:, axis], threshold):
            window = (plates.time >= contact.start) & (plates.time <= contact.end)
            side = _nearest_foot(np.nanmean(cop[window], axis=0), contact, feet, points_time, axis)
            if side is None:
                rec.warnings.append(f"force plate {i}: contact at {contact.start:.2f} s not assigned to a foot")
                continue
            k = 0 if side == "r" else 9
            out[window, k:k + 3] += force[window] @ rotation.T
            out[window, k + 3:k + 6] = cop[window] @ rotation.T
            out[window, k + 6:k + 9] = np.outer(free[window], rotation[:, 2])
            assigned += 1
    if assigned == 0:
        return None
    names = [f"ground_force_r_v{a}" for a in "xyz"] + [f"ground_force_r_p{a}" for a in "xyz"] + \
            [f"ground_torque_r_{a}" for a in "xyz"] + [f"ground_force_l_v{a}" for a in "xyz"] + \
            [f"ground_force_l_p{a}" for a in "xyz"] + [f"ground_torque_l_{a}" for a in "xyz"]
    units = (["N"] * 3 + ["m"] * 3 + ["N·m"] * 3) * 2
    return TimeSeries(plates.time, out, names, units, plates.rate)


def _nearest_foot(cop: np.ndarray, contact: ev.Contact, feet: dict[str, list[np.ndarray]],
                  points_time: np.ndarray | None, vertical_axis: int) -> str | None:
    if not feet or points_time is None or not np.all(np.isfinite(cop)):
        return None
    window = (points_time >= contact.start) & (points_time <= contact.end)
    if not window.any():
        return None
    best, best_distance = None, np.inf
    for side, markers in feet.items():
        for xyz in markers:
            horizontal = np.delete(xyz[window] - cop, vertical_axis, axis=1)
            distance = np.nanmedian(np.linalg.norm(horizontal, axis=1)) if np.isfinite(horizontal).any() else np.inf
            if distance < best_distance:
                best, best_distance = side, distance
    return best if best_distance < 0.5 else None


def _pig_grf(rec: Recording, rotation: np.ndarray) -> TimeSeries | None:
    """PiG ``{S}GroundReactionForce`` (N/kg, lab frame) per foot, rotated to the walking frame."""
    points = rec.series["points"]
    prefix = rec.info.get("label_prefix", "") or ""
    names, columns = [], []
    for side in SIDES:
        label = f"{prefix}{side.upper()}GroundReactionForce"
        if f"{label}_x" not in points:
            continue
        xyz = np.nan_to_num(_point_xyz(points, label)) @ rotation.T
        names += [f"ground_force_{side}_v{a}" for a in "xyz"]
        columns += [xyz[:, 0], xyz[:, 1], xyz[:, 2]]
    if not names:
        return None
    return TimeSeries(points.time, np.column_stack(columns), names, ["N/kg"] * len(names), points.rate)


def _walking_rotation(rec: Recording, markers: dict[str, np.ndarray]) -> np.ndarray:
    vertical, up_sign = _vertical(rec)
    sacrum = _sacrum(markers)
    if sacrum is None and markers:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # frames where every marker is missing
            sacrum = np.nanmean(np.stack(list(markers.values())), axis=0)
    if sacrum is None:
        return np.eye(3)
    return processing.walking_frame(sacrum, vertical, up_sign)


# -- assembly ----------------------------------------------------------------------------------
@dataclass
class _Parts:
    series: list[TimeSeries] = field(default_factory=list)
    candidates: dict[str, list[Event]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    pig_grf: TimeSeries | None = None  # for PiG label-validity masks
    plates_assigned: bool = False  # GRF channels come from force plates assigned to feet by gait


def _c3d_parts(rec: Recording, options: TrialOptions, parts: _Parts) -> None:
    markers = _markers(rec)
    rotation = _walking_rotation(rec, markers)
    kinematics, notes = naming.apply_map(rec.series["points"], "pig", strip_prefix=rec.info.get("label_prefix") or "")
    parts.notes += notes
    if kinematics.channels:
        parts.series.append(kinematics)
    pig = _pig_grf(rec, rotation)
    plates = _plate_feet(rec, markers, rotation, options.threshold_n)
    if plates is not None:
        parts.series.append(plates)
        parts.plates_assigned = True
    if pig is not None:
        parts.pig_grf = pig
        if plates is None:
            parts.series.append(pig)
    parts.candidates.setdefault("file", []).extend(
        e for e in rec.events if e.name in (ev.STRIKE, ev.OFF) and e.side in SIDES)
    heel = _find_marker(markers, MARKER_ROLES["heel"])
    toe = _find_marker(markers, MARKER_ROLES["toe"])
    sacrum = _sacrum(markers)
    if heel and toe and sacrum is not None:
        points = rec.series["points"]
        parts.candidates["kinematics"] = ev.kinematic_events_from_markers(
            points.time, points.rate, heel, toe, sacrum, rotation[0])


def _opensim_parts(recs: list[Recording], parts: _Parts, slot_sides: dict[Path, dict[str, str]]) -> None:
    knee = "unknown"
    for rec in recs:
        table = rec.series["table"]
        for side in SIDES:
            if f"knee_angle_{side}" in table and table.unit(f"knee_angle_{side}") == "deg":
                knee = naming.knee_convention(table.channel(f"knee_angle_{side}"))
                if knee != "unknown":
                    break
        if knee != "unknown":
            break
    if knee == "unknown" and any("knee_angle_r_moment" in r.series["table"] for r in recs):
        parts.warnings.append("knee sign convention unknown (no knee angles in the trial); knee moments kept as in the file")
    for rec in recs:
        canonical, notes = naming.opensim_canonical(rec.series["table"], knee, slot_sides.get(rec.path))
        parts.notes += notes
        if canonical.channels:
            parts.series.append(canonical)


def assemble(recs: list[Recording], subject: str, trial: str, condition: str,
             mass_kg: float | None, mass_source: str, height_m: float | None,
             options: TrialOptions, slot_sides: dict[Path, dict[str, str]] | None = None) -> Trial:
    """Build one canonical trial from its recordings (all of one capture)."""
    if all(r.time_normalised for r in recs):
        return _assemble_normalised(recs, subject, trial, condition, mass_kg, mass_source, height_m, options)
    parts = _Parts()
    for rec in recs:
        parts.warnings += rec.warnings
    c3ds = [r for r in recs if r.format == "c3d"]
    tables = [r for r in recs if r.format in ("mot", "sto")]
    for rec in c3ds:
        _c3d_parts(rec, options, parts)
    if tables:
        _opensim_parts(tables, parts, slot_sides or {})
    if not parts.series:
        raise DataError(_nothing_canonical(recs))
    continuous = _common_grid(parts.series, options)
    continuous = _filtered(continuous, options)

    families = {name: naming.family(name) for name in continuous.channels}
    grf_by_side = {s: continuous.channel(f"ground_force_{s}_vy") for s in SIDES if f"ground_force_{s}_vy" in continuous}
    if grf_by_side:
        per_kg = continuous.unit(f"ground_force_{next(iter(grf_by_side))}_vy").endswith("/kg")
        threshold = options.threshold_n / ev.TYPICAL_MASS_KG if per_kg else options.threshold_n
        parts.candidates["forceplate"] = ev.forceplate_events(continuous.time, grf_by_side, threshold)
    if "kinematics" not in parts.candidates:
        parts.candidates["kinematics"] = ev.kinematic_events_from_angles(continuous)
    events, used = ev.choose_events(parts.candidates)

    masked = _mask_pig_moments(continuous, parts, events, options.threshold_n)
    if mass_kg:
        continuous = processing.divide_by_mass(continuous, mass_kg, families)
    mass_normalised = all(u not in ("N", "N·m") for u in continuous.units)
    required = [c for c in continuous.channels if families[c] == "angle"]
    cycles, values, rejected = _cycles(continuous, events, used, required, options)
    return Trial(
        subject=subject, trial=trial, condition=condition, sources=[r.path for r in recs],
        continuous=continuous, cycles=cycles, cycle_values=values, channels=list(continuous.channels),
        units=dict(zip(continuous.channels, continuous.units)), rejected=rejected, events=events,
        event_sources=used, mass_kg=mass_kg, height_m=height_m, mass_source=mass_source,
        mass_normalised=mass_normalised, notes=parts.notes + masked, warnings=parts.warnings,
    )


def _nothing_canonical(recs: list[Recording]) -> str:
    """Why a trial gave no canonical channel, in one line."""
    rec = recs[0]
    if rec.format == "c3d":
        groups = set(rec.point_groups.values())
        has_plates = "forceplates" in rec.series and bool(rec.series["forceplates"].channels)
        what = "markers only, no joint angles (run Plug-in Gait or OpenSim IK first)" if "angle" not in groups \
            else "model outputs with no Plug-in Gait names"
        plates = "; force plates could not be assigned to feet (no heel, toe or ankle markers near the plates)" \
            if has_plates else "; no usable force plates"
        return what + plates
    columns = [c for r in recs for c in r.series["table"].channels]
    plate_like = [c for c in columns if re.match(r"^([fpm]\d+_\d|[FM][xyz]\d+)$", c)]
    if plate_like and len(plate_like) >= len(columns) / 2:
        return ("force-plate channels (" + ", ".join(plate_like[:3]) + ", ...) with nothing saying which foot "
                "stood on which plate; export per-foot GRF (ground_force_r_v*) or ingest the C3D")
    return "no joint angle, moment or per-foot GRF columns (columns like " + ", ".join(columns[:4]) + ")"


# A day of data at 100 Hz; longer trials come from a damaged time column or rate.
MAX_GRID_SAMPLES = 10_000_000


def _common_grid(series: list[TimeSeries], options: TrialOptions) -> TimeSeries:
    """All canonical series resampled to ``options.rate`` over the kinematics' time range."""
    for s in series:
        if not (np.isfinite(s.rate) and 0.5 <= s.rate <= 1e6):
            raise DataError(f"implausible sampling rate {s.rate:g} Hz (check the time column)")
    with_angles = [s for s in series if any(naming.family(c) == "angle" for c in s.channels)]
    reference = with_angles or series
    start = max(min(s.time[0] for s in reference), min(s.time[0] for s in series))
    stop = min(max(s.time[-1] for s in reference), max(s.time[-1] for s in series))
    if stop <= start:
        raise DataError("the files of this trial do not overlap in time")
    if (stop - start) * options.rate > MAX_GRID_SAMPLES:
        raise DataError(f"trial spans {stop - start:.6g} s ({start:g} to {stop:g} s): too long to resample; "
                        "check the time column or rate")
    return processing.merge([processing.resample(s, options.rate, start, stop) for s in series])


def _filtered(ts: TimeSeries, options: TrialOptions) -> TimeSeries:
    for fam, cutoff in options.lowpass.items():
        names = [c for c in ts.channels if fam == "*" or naming.family(c) == fam
                 or (fam == "grf" and naming.family(c) in ("grf", "cop", "grf_torque"))]
        if names:
            ts = processing.lowpass(ts, cutoff, names)
    return ts


EDGE_SECONDS = 0.1
# In swing a joint only moves the segments below it: the ankle the foot (about 1.5 % of body
# mass), so its moment stays well under 0.1 N·m/kg; knee and hip swing moments stay under about
# 1 N·m/kg even in running. Larger swing values are PiG artefacts (force given to the wrong
# foot, marker gaps), N·m/kg:
SWING_LIMITS = {"ankle_angle": 0.3, "knee_angle": 1.5, "hip_flexion": 2.5}


def _mask_pig_moments(ts: TimeSeries, parts: _Parts, events: list[Event], threshold_n: float) -> list[str]:
    """NaN where Plug-in Gait moments are not valid labels (changes ``ts`` in place).

    PiG computes moments on every frame, but they are right only in swing and in stance on a
    force plate. A foot counts as on a plate when PiG's own GRF for it is non-zero and, when
    gait could assign the plates to feet itself, gait agrees (PiG sometimes gives one foot's
    force to the other). Masked per side: stance off the plates; samples where PiG and gait
    disagree about the foot's load; swing samples where a sagittal moment exceeds its
    ``SWING_LIMITS``; the first and last 0.1 s of the trial (filter edge spikes).
    """
    if parts.pig_grf is None:
        return []
    notes = []
    pig = processing.resample(parts.pig_grf, ts.rate, ts.time[0], ts.time[-1])
    edges = (ts.time < ts.time[0] + EDGE_SECONDS) | (ts.time > ts.time[-1] - EDGE_SECONDS)
    for side in SIDES:
        moments = [c for c in ts.channels if c.endswith(f"_{side}_moment")]
        if not moments:
            continue
        name = f"ground_force_{side}_vy"
        pig_on = np.nan_to_num(pig.channel(name)) > 0.05 if name in pig else np.zeros(len(ts), dtype=bool)
        plate_on = pig_on
        if parts.plates_assigned and name in ts:
            plate_on = np.nan_to_num(ts.channel(name)) > threshold_n
        disagree = pig_on != plate_on
        stance = ev.stance_mask(ts.time, events, side) | plate_on
        swing = ~stance & ~pig_on
        too_large = np.zeros(len(ts), dtype=bool)
        for joint, limit in SWING_LIMITS.items():
            if f"{joint}_{side}_moment" in ts:
                too_large |= np.abs(np.nan_to_num(ts.channel(f"{joint}_{side}_moment"))) > limit
        artefact = swing & too_large
        valid = (swing & ~artefact) | (pig_on & plate_on)
        invalid = ~valid | edges
        for channel in moments:
            ts.data[invalid, ts.index(channel)] = np.nan
        notes.append(f"PiG {side} moments masked on {int(invalid.sum())} of {len(ts)} samples "
                     f"(stance off the force plates, {int(disagree.sum())} where PiG and the plates disagree "
                     f"about the foot's load, {int(artefact.sum())} swing artefacts, trial edges)")
    return notes


def _cycles(ts: TimeSeries, events: list[Event], used: dict[str, str], required: list[str],
            options: TrialOptions) -> tuple[list[Cycle], np.ndarray, list[tuple[Cycle, str]]]:
    kept, values, rejected = [], [], []
    for cycle in segment(events, used):
        reason = rejection(cycle, ts, required, options.min_cycle_s, options.max_cycle_s)
        if reason:
            rejected.append((cycle, reason))
            continue
        kept.append(cycle)
        values.append(normalise(ts, cycle.start, cycle.end, options.points))
    array = np.stack(values) if values else np.empty((0, options.points, len(ts.channels)))
    return kept, array, rejected


def _assemble_normalised(recs: list[Recording], subject: str, trial: str, condition: str,
                         mass_kg: float | None, mass_source: str, height_m: float | None,
                         options: TrialOptions) -> Trial:
    """Data already time-normalised per side (WBDS): one cycle per side, resampled to N points."""
    notes, series = [], []
    for rec in recs:
        canonical, rec_notes = naming.apply_map(rec.series["table"], "wbds")
        notes += rec_notes
        series.append(canonical)
    merged = processing.merge(series) if len(series) > 1 else series[0]
    if not merged.channels:
        raise DataError("no channel of the WBDS files maps to a canonical name")
    cycles, values = [], []
    for side in SIDES:
        # Each side's columns follow that side's own cycle; the other side's are not aligned.
        percent = merged.time
        cycle = Cycle(side, 0, float(percent[0]), float(percent[-1]), None, "pre-normalised")
        cycles.append(cycle)
        values.append(normalise(merged, cycle.start, cycle.end, options.points))
    return Trial(
        subject=subject, trial=trial, condition=condition, sources=[r.path for r in recs],
        continuous=None, cycles=cycles, cycle_values=np.stack(values), channels=list(merged.channels),
        units=dict(zip(merged.channels, merged.units)), event_sources={s: "pre-normalised" for s in SIDES},
        mass_kg=mass_kg, height_m=height_m, mass_source=mass_source,
        mass_normalised=all(u not in ("N", "N·m") for u in merged.units), notes=notes,
    )
