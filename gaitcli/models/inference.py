"""``gait predict`` as a library: a lab file in, joint moments over time out.

The file is read and named by ingest's own readers (``build_trial``), resampled to the model's
rate, cut into overlapping windows (the model's window length, ``stride`` apart); overlapping
predictions are merged per sample by their median, and their spread (standard deviation across
the windows covering a sample) is kept. Everything about preprocessing comes from the
checkpoint metadata, never from guesses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from gaitcli.data.cycles import Cycle
from gaitcli.data.windows import Normalizer, joint_channels, window_starts
from gaitcli.errors import DataError, UsageError

DEFAULT_MODEL_NAME = "default"


def default_model_path() -> Path:
    """The model shipped inside the package (trained by scripts/train_default.py)."""
    return Path(str(resources.files("gaitcli.models").joinpath("default", "gait-default.safetensors")))


def resolve_model_path(model: str | Path | None) -> Path:
    if model is None or str(model) == DEFAULT_MODEL_NAME:
        path = default_model_path()
        if not path.is_file():
            raise UsageError(f"the default model is not installed ({path}); train it with scripts/train_default.py")
        return path
    return Path(model)


@dataclass
class Prediction:
    source: str
    subject: str
    time: np.ndarray
    channels: list[str]
    values: np.ndarray  # (n, c) in ``units``
    spread: np.ndarray  # (n, c): SD across the overlapping windows at each sample
    units: dict[str, str]
    mass_kg: float | None
    cycles: list[Cycle] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def columns(self) -> dict[str, np.ndarray]:
        """Named output columns: values, N·m (when mass is known) and spread."""
        out: dict[str, np.ndarray] = {}
        for j, name in enumerate(self.channels):
            out[name] = self.values[:, j]
        if self.mass_kg:
            for j, name in enumerate(self.channels):
                if self.units.get(name, "").endswith("/kg"):
                    out[name + "_Nm"] = self.values[:, j] * self.mass_kg
        for j, name in enumerate(self.channels):
            out[name + "_spread"] = self.spread[:, j]
        return out

    def column_units(self) -> dict[str, str]:
        units = {c: self.units.get(c, "") for c in self.channels}
        if self.mass_kg:
            units.update({c + "_Nm": self.units.get(c, "").replace("/kg", "") for c in self.channels
                          if self.units.get(c, "").endswith("/kg")})
        units.update({c + "_spread": self.units.get(c, "") for c in self.channels})
        return units


class Predictor:
    """A loaded model with its preprocessing; ``predict`` runs it on a file."""

    def __init__(self, model_path: str | Path | None = None, device: str = "cpu") -> None:
        from gaitcli.models.checkpoint import load_checkpoint

        self.path = resolve_model_path(model_path)
        self.model, self.meta = load_checkpoint(self.path)
        self.model.to(device).eval()
        self.inputs: list[str] = list(self.meta["inputs"])
        self.outputs: list[str] = list(self.meta["outputs"])
        self.window = int(self.meta["window"])
        self.unit = str(self.meta.get("unit", "windows"))  # "windows" or "cycles"
        self.rate = float(self.meta.get("rate_hz", 100.0))
        self.in_norm = Normalizer.from_dict(self.meta["input_norm"])
        self.out_norm = Normalizer.from_dict(self.meta["output_norm"])
        if self.meta.get("task") != "finetune":
            raise UsageError(f"{self.path}: a pretrained ({self.meta.get('task')}) model predicts no moments; "
                             "fine-tune it first (gait finetune)")

    def predict(self, path: str | Path, joint: str = "all", side: str = "both", stride: int | None = None,
                mass_kg: float | None = None) -> Prediction:
        path = Path(path)
        wanted = joint_channels(self.outputs, joint, side)
        if not wanted:
            raise UsageError(f"the model predicts no {joint} channels for side {side} (it has {', '.join(self.outputs)})")
        if self.unit == "cycles":
            time, median, spread, subject, mass, cycles = self._run_cycles(path, mass_kg)
        else:
            time, inputs, subject, mass, cycles = self._inputs(path, mass_kg)
            median, spread = self._run(inputs, stride or max(1, self.window // 4))
        if np.isnan(median).all():
            raise DataError(f"{path}: no stretch of {self.window} samples ({self.window / self.rate:.2f} s) "
                            "with every input channel present")
        keep = [self.outputs.index(c) for c in wanted]
        units = {c: self.meta.get("units", {}).get(c, "") for c in wanted}
        return Prediction(str(path), subject, time, wanted, median[:, keep], spread[:, keep], units, mass, cycles)

    # -- steps --------------------------------------------------------------------------------
    def _inputs(self, path: Path, mass_kg: float | None):
        if path.suffix.lower() == ".parquet":
            return self._parquet_inputs(path, mass_kg)
        from gaitcli.data.ingest import IngestOptions, build_trial

        trial = build_trial([path], IngestOptions(rate=self.rate, mass_kg=mass_kg))
        ts = trial.continuous
        if ts is None:
            raise DataError(f"{path}: time-normalised data has no time axis to predict over")
        self._check_inputs(path, ts.channels)
        inputs = np.column_stack([ts.channel(c) for c in self.inputs])
        return ts.time, inputs, trial.subject, trial.mass_kg, trial.cycles

    def _parquet_inputs(self, path: Path, mass_kg: float | None):
        from gaitcli.data.windows import load_trials

        trials = [t for t in load_trials([path]) if not t.tiled]
        if not trials:
            raise DataError(f"{path}: not an ingest continuous file (*.continuous.parquet)")
        trial = trials[0]
        if abs(trial.rate - self.rate) > 1e-6:
            raise DataError(f"{path}: ingested at {trial.rate:g} Hz but the model needs {self.rate:g} Hz; "
                            f"re-ingest with --rate {self.rate:g}")
        self._check_inputs(path, list(trial.values))
        inputs = np.column_stack([trial.values[c] for c in self.inputs])
        return trial.time, inputs, trial.subject, mass_kg or trial.mass_kg, []

    def _run_cycles(self, path: Path, mass_kg: float | None):
        """A cycle model: each detected gait cycle predicted whole, then mapped back onto time;
        where cycles overlap (left and right), the median and the spread across them."""
        from gaitcli.data.ingest import IngestOptions, build_trial
        from gaitcli.train.workflows import predict_windows

        if path.suffix.lower() == ".parquet":
            raise UsageError(f"{path}: a cycle model predicts from the trial's own files (.mot, .sto, .c3d)")
        trial = build_trial([path], IngestOptions(rate=self.rate, mass_kg=mass_kg, points=self.window))
        ts = trial.continuous
        self._check_inputs(path, trial.channels)
        if not trial.cycles:
            raise DataError(f"{path}: no valid gait cycle found; a cycle model needs at least one")
        columns = [trial.channels.index(c) for c in self.inputs]
        inputs = trial.cycle_values[:, :, columns].astype(np.float32)
        keep = np.isfinite(inputs).all(axis=(1, 2))
        predicted = predict_windows(self.model, inputs[keep], self.in_norm, self.out_norm)
        stack = np.full((len(ts), int(keep.sum()), len(self.outputs)), np.nan)
        for k, (cycle, values) in enumerate(zip([c for c, ok in zip(trial.cycles, keep) if ok], predicted)):
            inside = (ts.time >= cycle.start) & (ts.time <= cycle.end)
            grid = np.linspace(cycle.start, cycle.end, values.shape[0])
            for j in range(len(self.outputs)):
                stack[inside, k, j] = np.interp(ts.time[inside], grid, values[:, j])
        median, spread = _median_spread(stack)
        return ts.time, median, spread, trial.subject, trial.mass_kg, trial.cycles

    def _check_inputs(self, path: Path, available: list[str]) -> None:
        missing = [c for c in self.inputs if c not in available]
        if missing:
            raise DataError(f"{path}: missing input channels {', '.join(missing)} "
                            f"(the model needs {', '.join(self.inputs)})")

    def _run(self, inputs: np.ndarray, stride: int) -> tuple[np.ndarray, np.ndarray]:
        """Median and SD over overlapping windows, per sample; NaN where no window covers it."""
        from gaitcli.train.workflows import predict_windows

        n, length = inputs.shape[0], self.window
        finite = np.isfinite(inputs).all(axis=1)
        starts = [s for s in window_starts(n, length, stride) if finite[s:s + length].all()]
        starts += _segment_tails(finite, length, set(starts))
        depth = length // stride + 2
        stack = np.full((n, depth, len(self.outputs)), np.nan)
        filled = np.zeros(n, dtype=int)
        if starts:
            windows = np.stack([inputs[s:s + length] for s in starts]).astype(np.float32)
            predicted = predict_windows(self.model, windows, self.in_norm, self.out_norm)
            for s, values in zip(starts, predicted):
                rows = np.arange(s, s + length)
                slots = filled[rows]
                ok = slots < depth
                stack[rows[ok], slots[ok]] = values[ok]
                filled[rows] += 1
        return _median_spread(stack)


def _median_spread(stack: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Median and SD over axis 1 (the windows or cycles covering each sample); NaN where none does."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN samples stay NaN
        return np.nanmedian(stack, axis=1), np.nanstd(stack, axis=1)


def _segment_tails(finite: np.ndarray, length: int, taken: set[int]) -> list[int]:
    """Windows ending exactly at the end of each finite segment, so no covered sample is lost."""
    starts = []
    padded = np.concatenate([[False], finite, [False]])
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    for begin, end in zip(edges[::2], edges[1::2]):
        if end - begin >= length and end - length not in taken:
            starts.append(int(end - length))
    return starts


# -- output --------------------------------------------------------------------------------------
def write_prediction(prediction: Prediction, out: Path) -> None:
    """By suffix: .sto/.mot (OpenSim Storage), .csv, .parquet."""
    suffix = out.suffix.lower()
    columns = prediction.columns()
    units = prediction.column_units()
    if suffix in (".sto", ".mot"):
        from gaitcli.io.opensim_write import write_storage

        comments = [f"gait prediction from {Path(prediction.source).name}",
                    "units: " + ", ".join(f"{c} [{u}]" for c, u in units.items()),
                    "_spread columns: SD across overlapping windows; _Nm columns: N·m from body mass "
                    + (f"{prediction.mass_kg:g} kg" if prediction.mass_kg else "(unknown)")]
        write_storage(out, out.stem, prediction.time, columns, comments)
    elif suffix == ".csv":
        from gaitcli.io.parquet import atomic_write_bytes

        atomic_write_bytes(out, prediction_csv(prediction).encode())
    elif suffix == ".parquet":
        from gaitcli.io.parquet import write_table

        write_table({"time": prediction.time, **columns}, out,
                    {"kind": "prediction", "source": prediction.source, "units": units, "mass_kg": prediction.mass_kg})
    else:
        raise UsageError(f"{out}: output must end in .sto, .mot, .csv or .parquet")


def prediction_csv(prediction: Prediction, with_source: bool = False, header: bool = True) -> str:
    import io

    columns = prediction.columns()
    names = (["file"] if with_source else []) + ["time"] + list(columns)
    buffer = io.StringIO()
    if header:
        buffer.write(",".join(names) + "\n")
    table = np.column_stack([prediction.time] + list(columns.values()))
    source = Path(prediction.source).name
    for row in table:
        cells = [f"{v:.6g}" if np.isfinite(v) else "" for v in row]
        buffer.write(",".join(([source] if with_source else []) + cells) + "\n")
    return buffer.getvalue()


def peak_summary(prediction: Prediction) -> list[dict[str, Any]]:
    """Largest-magnitude value of each predicted channel per gait cycle of its own side."""
    rows = []
    for cycle in prediction.cycles:
        inside = (prediction.time >= cycle.start) & (prediction.time <= cycle.end)
        for j, name in enumerate(prediction.channels):
            if f"_{cycle.side}_" not in name:
                continue
            values = prediction.values[inside, j]
            if not np.isfinite(values).any():
                continue
            k = int(np.nanargmax(np.abs(values)))
            rows.append({"side": cycle.side, "cycle": cycle.index, "channel": name, "peak": float(values[k]),
                         "at_percent": round(100.0 * k / max(1, inside.sum() - 1), 1),
                         "unit": prediction.units.get(name, "")})
    return rows

