"""From ingest's Parquet to model tensors: trials, channel selection, splits, z-scores, windows.

Two units of data: sliding windows over continuous trials (default), or whole time-normalised
gait cycles (``load_cycle_windows``: one cycle of ``--points`` samples per example).

Numpy only: torch is imported by the training code, not here. Windows slide over continuous
trials (``length``, ``stride``). Trials that exist only as time-normalised mean cycles (WBDS)
are made continuous by tiling their cycle at an assumed stride time (``CYCLE_SECONDS``), right
and left sides half a cycle apart; such trials are flagged ``tiled`` and documented in
docs/training.md. Label samples that are NaN (masked Plug-in Gait moments) stay NaN: the loss
ignores them.
"""

from __future__ import annotations

import fnmatch
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gaitcli.data import schema
from gaitcli.data.timeseries import SIDES
from gaitcli.errors import DataError, UsageError

CYCLE_SECONDS = 1.1  # stride time assumed for tiled mean cycles (comfortable adult walking)
TILED_CYCLES = 4

PRESETS: dict[str, list[str]] = {
    "sagittal-angles": [f"{j}_{s}" for j in ("hip_flexion", "knee_angle", "ankle_angle") for s in SIDES],
    "lower-limb-angles": ["pelvis_tilt", "pelvis_list", "pelvis_rotation"]
    + [f"{j}_{s}" for j in ("hip_flexion", "hip_adduction", "hip_rotation", "knee_angle", "ankle_angle") for s in SIDES],
    "sagittal-moments": [f"{j}_{s}_moment" for j in ("hip_flexion", "knee_angle", "ankle_angle") for s in SIDES],
    "lower-limb-moments": [f"{j}_{s}_moment" for j in ("hip_flexion", "hip_adduction", "knee_angle", "ankle_angle")
                           for s in SIDES],
    "grf": [f"ground_force_{s}_v{a}" for s in SIDES for a in "xyz"],
}
JOINTS = ("hip", "knee", "ankle")


@dataclass
class TrialData:
    """One trial's continuous canonical channels, as ingest wrote them."""

    subject: str
    trial: str
    condition: str
    time: np.ndarray
    values: dict[str, np.ndarray]
    units: dict[str, str]
    rate: float
    mass_kg: float | None = None
    tiled: bool = False  # built from a mean cycle, not recorded continuously
    source: str = ""
    height_m: float | None = None
    events: list[dict] = field(default_factory=list)  # ingest's gait events: time, name, side, source

    def has(self, channels: list[str]) -> bool:
        return all(c in self.values for c in channels)


# -- loading -----------------------------------------------------------------------------------
def dataset_files(paths: list[str | Path]) -> list[Path]:
    """Parquet files of ingest outputs: folders are searched, files are taken as they are."""
    files: list[Path] = []
    for item in paths:
        path = Path(item)
        if path.is_dir():
            files += sorted(path.rglob("*" + schema.CONTINUOUS_SUFFIX)) + sorted(path.rglob("*" + schema.CYCLES_SUFFIX))
        elif path.is_file() and path.suffix == ".parquet":
            files.append(path)
        else:
            raise UsageError(f"{path}: not an ingest output folder or .parquet file (run `gait ingest` first)")
    if not files:
        raise UsageError("no ingest Parquet files found in " + ", ".join(str(p) for p in paths))
    return files


def load_trials(paths: list[str | Path], cycle_seconds: float = CYCLE_SECONDS) -> list[TrialData]:
    """Every trial of the ingest outputs, continuous where ingest wrote it, else tiled cycles."""
    import pyarrow.parquet as pq

    files = dataset_files(paths)
    continuous = {f.name[: -len(schema.CONTINUOUS_SUFFIX)]: f for f in files if f.name.endswith(schema.CONTINUOUS_SUFFIX)}
    trials: list[TrialData] = []
    for f in files:
        meta = json.loads((pq.read_schema(f).metadata or {}).get(schema.METADATA_KEY, b"{}"))
        if f.name.endswith(schema.CONTINUOUS_SUFFIX):
            trials.append(_continuous(f, meta))
        elif f.name[: -len(schema.CYCLES_SUFFIX)] not in continuous:
            tiled = _tiled(f, meta, cycle_seconds)
            if tiled is not None:
                trials.append(tiled)
    return trials


def _read_columns(path: Path) -> dict[str, np.ndarray]:
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    return {name: table.column(name).to_numpy(zero_copy_only=False) for name in table.column_names}


def _continuous(path: Path, meta: dict) -> TrialData:
    columns = _read_columns(path)
    keys = set(schema.CONTINUOUS_KEYS)
    values = {k: np.asarray(v, dtype=np.float64) for k, v in columns.items() if k not in keys}
    return TrialData(subject=str(meta.get("subject", path.parent.name)), trial=str(meta.get("trial", path.stem)),
                     condition=str(meta.get("condition", "")), time=np.asarray(columns["time"], dtype=np.float64),
                     values=values, units=dict(meta.get("units", {})), rate=float(meta.get("rate_hz") or 100.0),
                     mass_kg=meta.get("mass_kg"), source=str(path), height_m=meta.get("height_m"),
                     events=list(meta.get("events") or []))


def _tiled(path: Path, meta: dict, cycle_seconds: float, rate: float = 100.0) -> TrialData | None:
    """A mean gait cycle per side made into continuous data: right from the right cycle, left
    from the left cycle half a cycle later, bilateral channels from the right cycle."""
    columns = _read_columns(path)
    keys = set(schema.CYCLE_KEYS)
    sides = np.asarray(columns["side"]).astype(str)
    if not {"r", "l"} <= set(sides):
        return None
    time = np.arange(int(TILED_CYCLES * cycle_seconds * rate)) / rate
    phase = (time / cycle_seconds) % 1.0
    values: dict[str, np.ndarray] = {}
    for name, column in columns.items():
        if name in keys:
            continue
        side = "l" if name.endswith("_l") or "_l_" in name else "r"
        rows = sides == side
        percent = np.asarray(columns["percent"])[rows][: int(np.sum(rows & (np.asarray(columns["cycle"]) == 0)))]
        cycle = np.asarray(column, dtype=np.float64)[rows][: percent.size]
        shifted = (phase - 0.5) % 1.0 if side == "l" else phase
        values[name] = np.interp(shifted * 100.0, percent, cycle, period=100.0)
    return TrialData(subject=str(meta.get("subject", path.parent.name)), trial=str(meta.get("trial", path.stem)),
                     condition=str(meta.get("condition", "")), time=time, values=values,
                     units=dict(meta.get("units", {})), rate=rate, mass_kg=meta.get("mass_kg"), tiled=True,
                     source=str(path))


# -- channels ----------------------------------------------------------------------------------
def select_channels(spec: str | list[str], available: list[str] | None = None) -> list[str]:
    """Channel names from a preset (``sagittal-angles``), a comma list, or glob patterns.

    With ``available``, patterns expand against it and every name must be present in it.
    """
    items = spec if isinstance(spec, list) else [s.strip() for s in spec.split(",") if s.strip()]
    names: list[str] = []
    for item in items:
        if item in PRESETS:
            names += PRESETS[item]
        elif any(c in item for c in "*?[") and available is not None:
            matched = [c for c in available if fnmatch.fnmatch(c, item)]
            if not matched:
                raise UsageError(f"channel pattern {item!r} matches nothing")
            names += matched
        else:
            names.append(item)
    names = list(dict.fromkeys(names))
    if available is not None:
        missing = [n for n in names if n not in available]
        if missing:
            raise UsageError("channels not in the data: " + ", ".join(missing))
    return names


def joint_channels(channels: list[str], joint: str, side: str = "both") -> list[str]:
    """Channels of one joint (hip, knee, ankle or all) and side (l, r or both)."""
    if joint not in JOINTS + ("all",):
        raise UsageError(f"--joint must be one of {', '.join(JOINTS)} or all, not {joint!r}")
    if side not in ("l", "r", "both"):
        raise UsageError(f"--side must be l, r or both, not {side!r}")
    keep = [c for c in channels if joint == "all" or c.startswith(joint)]
    return [c for c in keep if side == "both" or f"_{side}_" in c or c.endswith(f"_{side}")]


# -- splits and sampling -------------------------------------------------------------------------
@dataclass
class Split:
    train: list[str]
    val: list[str]
    test: list[str]

    def to_dict(self) -> dict[str, list[str]]:
        return {"train": self.train, "val": self.val, "test": self.test}


def split_subjects(subjects: list[str], test_fraction: float = 0.2, val_fraction: float = 0.1,
                   seed: int = 0, test_subjects: list[str] | None = None) -> Split:
    """Subject-level split: no subject is in two parts. Deterministic for a seed."""
    unique = sorted({str(s) for s in subjects})
    rng = np.random.default_rng(seed)
    if test_subjects:
        unknown = sorted(set(test_subjects) - set(unique))
        if unknown:
            raise UsageError("test subjects not in the data: " + ", ".join(unknown))
        test = sorted(test_subjects)
        rest = [s for s in unique if s not in test]
    else:
        order = list(rng.permutation(unique))
        n_test = int(round(test_fraction * len(unique))) if test_fraction > 0 else 0
        n_test = min(max(n_test, 1 if test_fraction > 0 and len(unique) > 2 else 0), len(unique) - 1)
        test, rest = sorted(str(s) for s in order[:n_test]), [str(s) for s in order[n_test:]]
    rest = sorted(rest)
    order = list(rng.permutation(rest))
    n_val = int(round(val_fraction * len(rest))) if val_fraction > 0 else 0
    n_val = min(max(n_val, 1 if val_fraction > 0 and len(rest) > 2 else 0), len(rest) - 1)
    return Split(train=sorted(str(s) for s in order[n_val:]), val=sorted(str(s) for s in order[:n_val]), test=test)


def label_subset(subjects: list[str], fraction: float, seed: int = 0) -> list[str]:
    """A fraction of the training subjects (at least one), for data-efficiency runs."""
    if not 0 < fraction <= 1:
        raise UsageError(f"--label-fraction must be in (0, 1], got {fraction}")
    order = list(np.random.default_rng(seed + 7919).permutation(sorted(subjects)))
    return sorted(str(s) for s in order[: max(1, int(round(fraction * len(order))))])


# -- normalisation -------------------------------------------------------------------------------
@dataclass
class Normalizer:
    """Per-channel z-score statistics, computed on training data only and saved with a model."""

    channels: list[str]
    mean: list[float]
    std: list[float]

    @classmethod
    def fit(cls, channels: list[str], values: np.ndarray) -> "Normalizer":
        """``values`` (..., C); NaN ignored; a constant channel gets std 1."""
        flat = values.reshape(-1, len(channels))
        mean = np.nanmean(flat, axis=0) if flat.size else np.zeros(len(channels))
        std = np.nanstd(flat, axis=0) if flat.size else np.ones(len(channels))
        std = np.where(np.isfinite(std) & (std > 1e-8), std, 1.0)
        return cls(list(channels), [float(m) for m in np.nan_to_num(mean)], [float(s) for s in std])

    def apply(self, values: np.ndarray) -> np.ndarray:
        return (values - np.asarray(self.mean)) / np.asarray(self.std)

    def invert(self, values: np.ndarray) -> np.ndarray:
        return values * np.asarray(self.std) + np.asarray(self.mean)

    def to_dict(self) -> dict:
        return {"channels": self.channels, "mean": self.mean, "std": self.std}

    @classmethod
    def from_dict(cls, data: dict) -> "Normalizer":
        return cls(list(data["channels"]), list(data["mean"]), list(data["std"]))


# -- windows -----------------------------------------------------------------------------------
@dataclass
class Windows:
    """Stacked windows: inputs (N, T, C_in), targets (N, T, C_out) or None, and who they are from."""

    inputs: np.ndarray
    targets: np.ndarray | None
    subjects: list[str]
    trials: list[str]
    starts: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.inputs.shape[0])

    def subset(self, keep: np.ndarray) -> "Windows":
        idx = np.flatnonzero(keep)
        return Windows(self.inputs[idx], None if self.targets is None else self.targets[idx],
                       [self.subjects[i] for i in idx], [self.trials[i] for i in idx], [self.starts[i] for i in idx])


def window_starts(n: int, length: int, stride: int) -> list[int]:
    """Starts covering ``n`` samples; the last window is aligned to the end so no sample is lost."""
    if n < length:
        return []
    starts = list(range(0, n - length + 1, stride))
    if starts[-1] != n - length:
        starts.append(n - length)
    return starts


def make_windows(trials: list[TrialData], inputs: list[str], targets: list[str] | None,
                 length: int, stride: int, subjects: list[str] | None = None) -> Windows:
    """Windows over trials that have every input channel (and, if given, every target).

    A window whose inputs are not all finite is skipped (input gaps are not filled here); NaN
    targets are kept and ignored by the loss.
    """
    if length < 2 or stride < 1:
        raise UsageError(f"window length must be >= 2 and stride >= 1, got {length} and {stride}")
    xs, ys, who, names, starts = [], [], [], [], []
    wanted = set(subjects) if subjects is not None else None
    for trial in trials:
        if wanted is not None and trial.subject not in wanted:
            continue
        if not trial.has(inputs) or (targets and not trial.has(targets)):
            continue
        x = np.column_stack([trial.values[c] for c in inputs])
        y = np.column_stack([trial.values[c] for c in targets]) if targets else None
        for start in window_starts(len(trial.time), length, stride):
            window = x[start:start + length]
            if not np.isfinite(window).all():
                continue
            if y is not None and not np.isfinite(y[start:start + length]).any():
                continue
            xs.append(window)
            if y is not None:
                ys.append(y[start:start + length])
            who.append(trial.subject)
            names.append(trial.trial)
            starts.append(start)
    shape_x = (0, length, len(inputs))
    x_arr = np.stack(xs).astype(np.float32) if xs else np.zeros(shape_x, np.float32)
    y_arr = None
    if targets:
        y_arr = np.stack(ys).astype(np.float32) if ys else np.zeros((0, length, len(targets)), np.float32)
    return Windows(x_arr, y_arr, who, names, starts)


def load_cycle_windows(paths: list[str | Path], inputs: list[str], targets: list[str] | None,
                       subjects: list[str] | None = None) -> Windows:
    """Every time-normalised gait cycle of the ingest outputs as one 'window' (points x channels).

    Cycles missing an input channel, or with a non-finite input sample, are skipped; NaN targets
    are kept (ignored by the loss). ``starts`` holds each cycle's index, ``trials`` its
    ``trial/side``.
    """
    wanted = set(subjects) if subjects is not None else None
    xs, ys, who, names, index = [], [], [], [], []
    for path in dataset_files(paths):
        if not path.name.endswith(schema.CYCLES_SUFFIX):
            continue
        columns = _read_columns(path)
        if not columns.get("side", np.array([])).size:
            continue
        if any(c not in columns for c in inputs) or (targets and any(c not in columns for c in targets)):
            continue
        subject = str(columns["subject"][0])
        if wanted is not None and subject not in wanted:
            continue
        sides, cycles = np.asarray(columns["side"]).astype(str), np.asarray(columns["cycle"])
        for side, cycle in sorted({(a, int(b)) for a, b in zip(sides, cycles)}):
            rows = (sides == side) & (cycles == cycle)
            x = np.column_stack([np.asarray(columns[c], dtype=np.float64)[rows] for c in inputs])
            if not np.isfinite(x).all():
                continue
            y = np.column_stack([np.asarray(columns[c], dtype=np.float64)[rows] for c in targets]) if targets else None
            if y is not None and not np.isfinite(y).any():
                continue
            xs.append(x)
            ys.append(y)
            who.append(subject)
            names.append(f"{columns['trial'][0]}/{side}")
            index.append(cycle)
    points = xs[0].shape[0] if xs else 0
    if any(x.shape[0] != points for x in xs):
        raise DataError("cycles of different lengths: ingest every source with the same --points")
    x_arr = np.stack(xs).astype(np.float32) if xs else np.zeros((0, points, len(inputs)), np.float32)
    y_arr = None
    if targets:
        y_arr = np.stack(ys).astype(np.float32) if ys else np.zeros((0, points, len(targets)), np.float32)
    return Windows(x_arr, y_arr, who, names, index)


def require_windows(windows: Windows, what: str) -> Windows:
    if len(windows) == 0:
        raise DataError(f"no {what} windows: no trial has every requested channel over a whole window")
    return windows
