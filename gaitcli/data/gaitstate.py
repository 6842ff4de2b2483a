"""Gait state for the generative model (GaitDynamics): kinematics and both feet's forces in one window.

One row per sample at 100 Hz, channels in ``STATE_CHANNELS`` order:

- ``pelvis_v{x,y,z}``: pelvis linear velocity in the heading frame, divided by body height (1/s);
- ``{pelvis,hip_r,hip_l,lumbar}_6d_{0..5}``: 3-DoF rotations as the first two rows of their
  rotation matrix (Zhou et al. 2019), built from the OpenSim Euler sequence Z (flexion / tilt /
  extension), X (adduction / list / bending), Y (rotation); the left hip's adduction and rotation
  axes are mirrored, as in the OpenSim models, so both hips share one distribution;
- ``knee_angle_{r,l}``, ``ankle_angle_{r,l}``: hinge angles (rad);
- ``<coordinate>_vel``: every coordinate's angular velocity by finite differences (rad/s);
- ``grf_{s}_v{x,y,z}``: ground reaction force per foot (N/kg) in the heading frame;
- ``cop_{s}_{x,z}``: centre of pressure relative to the calcaneus origin, divided by height and
  multiplied by the vertical force (m/m · N/kg), so it fades to 0 when the foot is unloaded.

Heading: every trial is rotated about the vertical so that the median pelvis yaw is 0.
The calcaneus positions come from a generic gait2392 leg chain scaled to body height
(``calcaneus_positions``), the same in training and prediction so the relative COP round-trips.
A missing source coordinate makes the channels built from it NaN: the diffusion loss ignores
them and inpainting fills them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from gaitcli.data.timeseries import SIDES, Event
from gaitcli.errors import DataError

RATE_HZ = 100.0
WINDOW = 150  # 1.5 s
ASSUMED_HEIGHT_M = 1.75
GRAVITY = 9.81
LOADED_N_PER_KG = 0.5  # vertical force above which a foot counts as loaded (about 5 % BW)

# 3-DoF joints: coordinates in rotation order Z, X, Y and the sign of each axis.
EULER_JOINTS: dict[str, tuple[tuple[str, str, str], tuple[int, int, int]]] = {
    "pelvis": (("pelvis_tilt", "pelvis_list", "pelvis_rotation"), (1, 1, 1)),
    "hip_r": (("hip_flexion_r", "hip_adduction_r", "hip_rotation_r"), (1, 1, 1)),
    "hip_l": (("hip_flexion_l", "hip_adduction_l", "hip_rotation_l"), (1, -1, -1)),
    "lumbar": (("lumbar_extension", "lumbar_bending", "lumbar_rotation"), (1, 1, 1)),
}
HINGES = ("knee_angle_r", "knee_angle_l", "ankle_angle_r", "ankle_angle_l")
TRANSLATIONS = ("pelvis_tx", "pelvis_ty", "pelvis_tz")
COORDINATES = tuple(c for joint in EULER_JOINTS.values() for c in joint[0]) + HINGES

VELOCITY = ["pelvis_vx", "pelvis_vy", "pelvis_vz"]
SIX_D = [f"{joint}_6d_{k}" for joint in EULER_JOINTS for k in range(6)]
ANGULAR_VELOCITY = [f"{c}_vel" for c in COORDINATES]
FORCE_CHANNELS = [f"grf_{s}_v{a}" for s in SIDES for a in "xyz"] + [f"cop_{s}_{a}" for s in SIDES for a in "xz"]
KINEMATIC_CHANNELS = VELOCITY + SIX_D + list(HINGES) + ANGULAR_VELOCITY
STATE_CHANNELS = KINEMATIC_CHANNELS + FORCE_CHANNELS

# The joint groups of the paper's inpainting study, by source coordinate.
GROUPS: dict[str, tuple[str, ...]] = {
    "trunk": EULER_JOINTS["lumbar"][0],
    "pelvis": EULER_JOINTS["pelvis"][0] + TRANSLATIONS,
    "hips": EULER_JOINTS["hip_r"][0] + EULER_JOINTS["hip_l"][0],
    "knees": ("knee_angle_r", "knee_angle_l"),
    "ankles": ("ankle_angle_r", "ankle_angle_l"),
}

# gait2392 joint offsets (m) for a 1.80 m subject: pelvis -> hip, femur -> knee, tibia -> ankle,
# talus -> calcaneus (right side; z mirrored on the left).
_GENERIC_HEIGHT_M = 1.80
_HIP = np.array([-0.0707, -0.0661, 0.0835])
_KNEE = np.array([-0.0045, -0.396, 0.0])
_ANKLE = np.array([0.0, -0.43, 0.0])
_CALCN = np.array([-0.04877, -0.04195, 0.00792])


def state_sources(channel: str) -> tuple[str, ...]:
    """The canonical coordinates a state channel is built from."""
    if channel in VELOCITY:
        return TRANSLATIONS + EULER_JOINTS["pelvis"][0]  # the heading comes from the pelvis
    if channel.endswith("_vel"):
        return (channel[:-4],)
    if "_6d_" in channel:
        return EULER_JOINTS[channel.split("_6d_")[0]][0]
    if channel in HINGES:
        return (channel,)
    return ()


def group_channels(group: str) -> list[str]:
    """State channels generated from a joint group's coordinates (``GROUPS``)."""
    if group not in GROUPS:
        raise DataError(f"unknown joint group {group!r}; choose from {', '.join(GROUPS)}")
    coords = set(GROUPS[group])
    own = [c for c in KINEMATIC_CHANNELS if coords & set(state_sources(c))]
    if group != "pelvis":  # the pelvis orientation feeds the velocities' heading, nothing else does
        own = [c for c in own if c not in VELOCITY]
    return own


# -- rotations ---------------------------------------------------------------------------------
def _rz(a: np.ndarray) -> np.ndarray:
    c, s, o, i = np.cos(a), np.sin(a), np.zeros_like(a), np.ones_like(a)
    return np.stack([np.stack([c, -s, o], -1), np.stack([s, c, o], -1), np.stack([o, o, i], -1)], -2)


def _rx(a: np.ndarray) -> np.ndarray:
    c, s, o, i = np.cos(a), np.sin(a), np.zeros_like(a), np.ones_like(a)
    return np.stack([np.stack([i, o, o], -1), np.stack([o, c, -s], -1), np.stack([o, s, c], -1)], -2)


def _ry(a: np.ndarray) -> np.ndarray:
    c, s, o, i = np.cos(a), np.sin(a), np.zeros_like(a), np.ones_like(a)
    return np.stack([np.stack([c, o, s], -1), np.stack([o, i, o], -1), np.stack([-s, o, c], -1)], -2)


def rotation_zxy(z: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(T, 3, 3) body-fixed Z-X-Y rotations (radians), OpenSim's CustomJoint order."""
    return _rz(z) @ _rx(x) @ _ry(y)


def euler_zxy(rot: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The inverse of :func:`rotation_zxy` (X within ±90°)."""
    x = np.arcsin(np.clip(rot[..., 2, 1], -1.0, 1.0))
    z = np.arctan2(-rot[..., 0, 1], rot[..., 1, 1])
    y = np.arctan2(-rot[..., 2, 0], rot[..., 2, 2])
    return z, x, y


def to_6d(rot: np.ndarray) -> np.ndarray:
    """The first two rows of each rotation matrix, (T, 6)."""
    return rot[..., :2, :].reshape(*rot.shape[:-2], 6)


def from_6d(six: np.ndarray) -> np.ndarray:
    """Nearest rotation matrices to 6D vectors (Gram-Schmidt), (T, 3, 3)."""
    r1, r2 = six[..., :3], six[..., 3:]
    r1 = r1 / np.linalg.norm(r1, axis=-1, keepdims=True)
    r2 = r2 - np.sum(r1 * r2, axis=-1, keepdims=True) * r1
    r2 = r2 / np.linalg.norm(r2, axis=-1, keepdims=True)
    return np.stack([r1, r2, np.cross(r1, r2)], axis=-2)


def yaw_of(rot: np.ndarray) -> np.ndarray:
    """Heading of a segment: the angle about vertical of its forward (x) axis."""
    return np.arctan2(-rot[..., 2, 0], rot[..., 0, 0])


# -- one trial ---------------------------------------------------------------------------------
@dataclass
class StateTrial:
    """One trial as gait state at 100 Hz, with what is needed to map it back to lab units."""

    subject: str
    trial: str
    time: np.ndarray
    values: np.ndarray  # (T, len(STATE_CHANNELS)), NaN where unknown
    heading: float  # rad: the rotation removed from the lab frame
    height_m: float
    mass_kg: float | None
    start_position: np.ndarray  # pelvis position at the first sample (m), NaN when unknown
    notes: list[str] = field(default_factory=list)

    def channel(self, name: str) -> np.ndarray:
        return self.values[:, STATE_CHANNELS.index(name)]


def _resampled(trial, names: list[str]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The trial's channels on a 100 Hz time base (linear interpolation; NaN stays NaN)."""
    time = np.asarray(trial.time, dtype=np.float64)
    if time.size < 2:
        raise DataError(f"{trial.source or trial.trial}: fewer than 2 samples")
    if abs(trial.rate - RATE_HZ) < 1e-6:
        return time, {n: np.asarray(trial.values[n], dtype=np.float64) for n in names}
    grid = np.arange(time[0], time[-1] + 1e-9, 1.0 / RATE_HZ)
    out = {}
    for n in names:
        v = np.asarray(trial.values[n], dtype=np.float64)
        ok = np.isfinite(v)
        out[n] = np.interp(grid, time[ok], v[ok]) if ok.sum() >= 2 else np.full(grid.size, np.nan)
        gaps = np.interp(grid, time, (~ok).astype(float)) > 0  # keep gaps as gaps
        out[n][gaps] = np.nan
    return grid, out


def _heading_matrix(heading: float) -> np.ndarray:
    return _ry(np.array(-heading))


def _force_validity(time: np.ndarray, fy: np.ndarray, events: list[dict], side: str) -> np.ndarray:
    """False where the foot is on the ground but no plate measured it (stance off the plates).

    A stance (foot strike to foot off, from the trial's events, the state before the first
    event implied by it) in which the vertical force never exceeds ``LOADED_N_PER_KG`` was off
    the plates. Without events every sample is taken as measured.
    """
    from gaitcli.data.events import stance_mask

    own = [Event(float(e["time"]), str(e["name"]), str(e.get("side", ""))) for e in events]
    stance = stance_mask(time, own, side)
    loaded = np.nan_to_num(fy) > LOADED_N_PER_KG
    valid = np.ones(time.size, dtype=bool)
    edges = np.flatnonzero(np.diff(np.r_[0, stance.astype(np.int8), 0]))
    for first, stop in zip(edges[::2], edges[1::2]):
        if not loaded[first:stop].any():
            valid[first:stop] = False
    return valid


def calcaneus_positions(coords: dict[str, np.ndarray], height_m: float) -> dict[str, np.ndarray]:
    """Calcaneus origins in the lab frame (T, 3) by a generic gait2392 leg chain scaled to height.

    ``coords`` are canonical coordinates (degrees; pelvis translations in m; knee flexion
    positive). NaN wherever a needed coordinate is missing.
    """
    scale = height_m / _GENERIC_HEIGHT_M
    n = len(next(iter(coords.values())))
    get = lambda name: np.radians(coords[name]) if name in coords else np.full(n, np.nan)  # noqa: E731
    pelvis = rotation_zxy(*(get(c) for c in EULER_JOINTS["pelvis"][0]))
    origin = np.column_stack([coords.get(c, np.full(n, np.nan)) for c in TRANSLATIONS])
    out = {}
    for side in SIDES:
        mirror = np.array([1.0, 1.0, 1.0 if side == "r" else -1.0])
        names, signs = EULER_JOINTS[f"hip_{side}"]
        femur = pelvis @ rotation_zxy(*(s * get(c) for c, s in zip(names, signs)))
        tibia = femur @ _rz(-get(f"knee_angle_{side}"))
        foot = tibia @ _rz(get(f"ankle_angle_{side}"))
        hip = origin + pelvis @ (_HIP * mirror * scale)
        knee = hip + femur @ (_KNEE * scale)
        ankle = knee + tibia @ (_ANKLE * scale)
        out[side] = ankle + foot @ (_CALCN * mirror * scale)
    return out


def trial_state(trial, height_m: float | None = None, mass_kg: float | None = None) -> StateTrial:
    """A ``TrialData`` (canonical channels, degrees, GRF in N/kg or N) as gait state at 100 Hz."""
    notes: list[str] = []
    height = height_m or trial.height_m
    if not height:
        height = ASSUMED_HEIGHT_M
        notes.append(f"body height unknown: {ASSUMED_HEIGHT_M} m assumed")
    mass = mass_kg or trial.mass_kg
    time, v = _resampled(trial, list(trial.values))
    n = time.size
    missing = np.full(n, np.nan)
    rad = {c: np.radians(v[c]) if c in v else missing for c in COORDINATES}

    pelvis_rot = rotation_zxy(*(rad[c] for c in EULER_JOINTS["pelvis"][0]))
    yaw = yaw_of(pelvis_rot)
    heading = float(np.nanmedian(np.unwrap(yaw[np.isfinite(yaw)]))) if np.isfinite(yaw).any() else 0.0
    align = _heading_matrix(heading)

    columns: dict[str, np.ndarray] = {}
    position = np.column_stack([v.get(c, missing) for c in TRANSLATIONS])
    velocity = np.gradient(position, axis=0) * RATE_HZ if n > 1 else position * np.nan
    velocity = velocity @ align.T / height
    for k, name in enumerate(VELOCITY):
        columns[name] = velocity[:, k]
    for joint, (coords, signs) in EULER_JOINTS.items():
        rot = rotation_zxy(*(s * rad[c] for c, s in zip(coords, signs)))
        if joint == "pelvis":
            rot = align @ rot
        six = to_6d(rot)
        for k in range(6):
            columns[f"{joint}_6d_{k}"] = six[:, k]
    for c in HINGES:
        columns[c] = rad[c]
    # the pelvis coordinates' rates in the heading frame, so that they too ignore the heading
    aligned = dict(zip(EULER_JOINTS["pelvis"][0], euler_zxy(align @ pelvis_rot)))
    for c in COORDINATES:
        angle = aligned.get(c, rad[c])
        columns[f"{c}_vel"] = np.gradient(np.unwrap(np.nan_to_num(angle)), axis=0) * RATE_HZ
        columns[f"{c}_vel"][~np.isfinite(angle)] = np.nan

    feet = calcaneus_positions({c: v[c] for c in (*COORDINATES, *TRANSLATIONS) if c in v}, height)
    for side in SIDES:
        force = np.column_stack([_per_kg(trial, v, f"ground_force_{side}_v{a}", mass, notes) for a in "xyz"])
        force = force @ align.T
        fy = force[:, 1]
        valid = _force_validity(time, fy, trial.events, side)
        force[~valid] = np.nan
        cop = np.column_stack([v.get(f"ground_force_{side}_p{a}", missing) for a in "xyz"])
        relative = (cop - feet[side]) @ align.T / height * np.nan_to_num(fy)[:, None]
        unloaded = np.isfinite(fy) & (fy < LOADED_N_PER_KG)
        relative[unloaded] = 0.0  # scaled by a vertical force of ~0: the COP does not matter
        for k, a in enumerate("xyz"):
            columns[f"grf_{side}_v{a}"] = force[:, k]
        columns[f"cop_{side}_x"], columns[f"cop_{side}_z"] = relative[:, 0], relative[:, 2]
        if (~valid).any() and np.isfinite(fy).any():
            notes.append(f"{side} GRF unknown on {int((~valid).sum())} of {n} samples (stance off the force plates)")
    values = np.column_stack([columns[c] for c in STATE_CHANNELS])
    return StateTrial(subject=trial.subject, trial=trial.trial, time=time, values=values, heading=heading,
                      height_m=float(height), mass_kg=mass, start_position=position[0].copy(), notes=notes)


def _per_kg(trial, v: dict[str, np.ndarray], name: str, mass: float | None, notes: list[str]) -> np.ndarray:
    if name not in v:
        return np.full(len(next(iter(v.values()))), np.nan)
    unit = trial.units.get(name, "N/kg")
    if unit == "N/kg":
        return v[name]
    if unit == "N" and mass:
        return v[name] / mass
    if unit == "N":
        note = f"{name} in N and body mass unknown: forces left out"
        if note not in notes:
            notes.append(note)
        return np.full_like(v[name], np.nan)
    raise DataError(f"{trial.source or trial.trial}: {name} in {unit!r}, expected N or N/kg")


# -- back to lab units -------------------------------------------------------------------------
def state_coordinates(state: StateTrial, values: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Canonical coordinates (degrees; pelvis translations in m, integrated from the velocities
    from the first sample's position, or from 0) of state values in the lab frame."""
    values = state.values if values is None else values
    col = {c: values[:, i] for i, c in enumerate(STATE_CHANNELS)}
    unalign = _heading_matrix(state.heading).T
    out: dict[str, np.ndarray] = {}
    for joint, (coords, signs) in EULER_JOINTS.items():
        rot = from_6d(np.column_stack([col[f"{joint}_6d_{k}"] for k in range(6)]))
        if joint == "pelvis":
            rot = unalign @ rot
        for c, s, angle in zip(coords, signs, euler_zxy(rot)):
            out[c] = np.degrees(s * angle)
    if "pelvis_rotation" in out:
        out["pelvis_rotation"] = np.degrees(np.unwrap(np.radians(out["pelvis_rotation"])))
    for c in HINGES:
        out[c] = np.degrees(col[c])
    velocity = np.column_stack([col[c] for c in VELOCITY]) * state.height_m @ unalign.T
    start = np.nan_to_num(state.start_position)
    position = start + np.vstack([np.zeros(3), np.cumsum((velocity[1:] + velocity[:-1]) / 2, axis=0) / RATE_HZ])
    for k, c in enumerate(TRANSLATIONS):
        out[c] = position[:, k]
    return out


def state_feet(state: StateTrial, values: np.ndarray | None = None) -> dict[str, dict[str, np.ndarray]]:
    """Per-foot force (N/kg) and centre of pressure (m, NaN when unloaded) in the lab frame."""
    values = state.values if values is None else values
    col = {c: values[:, i] for i, c in enumerate(STATE_CHANNELS)}
    unalign = _heading_matrix(state.heading).T
    feet_at = calcaneus_positions(state_coordinates(state, values), state.height_m)
    out = {}
    for side in SIDES:
        force = np.column_stack([col[f"grf_{side}_v{a}"] for a in "xyz"])
        fy = force[:, 1]
        relative = np.column_stack([col[f"cop_{side}_x"], np.zeros_like(fy), col[f"cop_{side}_z"]])
        with np.errstate(divide="ignore", invalid="ignore"):
            relative = relative * state.height_m / fy[:, None]
        cop = feet_at[side] + relative @ unalign.T
        cop[:, 1] = 0.0  # the floor
        cop[~(fy > LOADED_N_PER_KG)] = np.nan
        out[side] = {"force": force @ unalign.T, "cop": cop}
    return out


# -- normalisation and windows -----------------------------------------------------------------
@dataclass
class MinMax:
    """Per-channel min-max scaling to [-1, 1] from training data (GaitDynamics), kept in checkpoints."""

    channels: list[str]
    low: list[float]
    high: list[float]

    @classmethod
    def fit(cls, channels: list[str], values: np.ndarray) -> "MinMax":
        import warnings

        flat = values.reshape(-1, len(channels))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN channel
            low, high = np.nanmin(flat, axis=0), np.nanmax(flat, axis=0)
        low = np.where(np.isfinite(low), low, -1.0)
        high = np.where(np.isfinite(high), high, 1.0)
        flat_range = high - low < 1e-8
        low, high = np.where(flat_range, low - 1.0, low), np.where(flat_range, high + 1.0, high)
        return cls(list(channels), [float(x) for x in low], [float(x) for x in high])

    def apply(self, values: np.ndarray) -> np.ndarray:
        low, high = np.asarray(self.low), np.asarray(self.high)
        return 2.0 * (values - low) / (high - low) - 1.0

    def invert(self, values: np.ndarray) -> np.ndarray:
        low, high = np.asarray(self.low), np.asarray(self.high)
        return (values + 1.0) / 2.0 * (high - low) + low

    def to_dict(self) -> dict:
        return {"channels": self.channels, "low": self.low, "high": self.high}

    @classmethod
    def from_dict(cls, data: dict) -> "MinMax":
        return cls(list(data["channels"]), list(data["low"]), list(data["high"]))


@dataclass
class StateWindows:
    values: np.ndarray  # (N, WINDOW, C), NaN where unknown
    subjects: list[str]
    trials: list[str]
    starts: list[int]
    too_short: list[str]  # "trial: n samples"

    def __len__(self) -> int:
        return int(self.values.shape[0])

    def subset(self, keep: np.ndarray) -> "StateWindows":
        idx = np.flatnonzero(keep)
        return StateWindows(self.values[idx], [self.subjects[i] for i in idx], [self.trials[i] for i in idx],
                            [self.starts[i] for i in idx], self.too_short)


def state_windows(states: list[StateTrial], stride: int, length: int = WINDOW,
                  min_known: float = 0.5) -> StateWindows:
    """Windows of ``length`` samples every ``stride`` (the last one aligned to the trial's end).

    A window is kept when at least ``min_known`` of its kinematic entries are known; trials
    shorter than one window are listed in ``too_short``, not silently dropped.
    """
    from gaitcli.data.windows import window_starts

    kin = len(KINEMATIC_CHANNELS)
    xs, subjects, trials, starts, short = [], [], [], [], []
    for s in states:
        if s.values.shape[0] < length:
            short.append(f"{s.trial}: {s.values.shape[0]} samples, a window needs {length}")
            continue
        for start in window_starts(s.values.shape[0], length, stride):
            window = s.values[start:start + length]
            if np.isfinite(window[:, :kin]).mean() < min_known:
                continue
            xs.append(window)
            subjects.append(s.subject)
            trials.append(s.trial)
            starts.append(start)
    values = np.stack(xs).astype(np.float32) if xs else np.zeros((0, length, len(STATE_CHANNELS)), np.float32)
    return StateWindows(values, subjects, trials, starts, short)


def load_states(paths, height_m: float | None = None) -> tuple[list[StateTrial], list[str]]:
    """Gait state of every continuous trial in ingest outputs; tiled mean cycles are skipped
    (their timing is assumed, not measured), and reported with trials lacking every coordinate."""
    from gaitcli.data.windows import load_trials

    states, skipped = [], []
    for trial in load_trials(paths):
        if trial.tiled:
            skipped.append(f"{trial.trial}: mean cycles only (no measured timing)")
            continue
        if not any(c in trial.values for c in COORDINATES):
            skipped.append(f"{trial.trial}: no joint angles")
            continue
        states.append(trial_state(trial, height_m))
    return states, skipped
