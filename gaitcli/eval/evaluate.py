"""``gait evaluate`` as a library: a checkpoint's predictions against the labels in ingest data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from gaitcli.data.windows import load_trials
from gaitcli.errors import DataError, UsageError
from gaitcli.eval.metrics import EvaluationReport, evaluate_table

SPLITS = ("all", "test", "train", "val")


def prediction_frame(model: str | Path | None, data: list[str | Path], split: str = "all",
                     stride: int | None = None) -> tuple[pd.DataFrame, list[str], dict]:
    """One row per labelled sample: keys, each target and ``<target>_pred``."""
    from gaitcli.models.inference import Predictor

    if split not in SPLITS:
        raise UsageError(f"--split must be one of {', '.join(SPLITS)}, not {split!r}")
    predictor = Predictor(model)
    wanted = None
    if split != "all":
        stored = predictor.meta.get("split") or {}
        if split not in stored:
            raise UsageError(f"{predictor.path}: the checkpoint stores no {split} subjects")
        wanted = set(stored[split])
    if predictor.unit == "cycles":
        return _cycle_frame(predictor, data, wanted, split)
    frames = []
    for trial in load_trials(data):
        if wanted is not None and trial.subject not in wanted:
            continue
        if not trial.has(predictor.inputs + predictor.outputs):
            continue
        inputs = np.column_stack([trial.values[c] for c in predictor.inputs])
        median, _ = predictor._run(inputs, stride or max(1, predictor.window // 4))
        frame = pd.DataFrame({"subject": trial.subject, "trial": trial.trial, "condition": trial.condition,
                              "tiled": trial.tiled, "time": trial.time})
        for j, name in enumerate(predictor.outputs):
            frame[name] = trial.values[name]
            frame[name + "_pred"] = median[:, j]
        frames.append(frame)
    if not frames:
        raise DataError("no trial in the data has the model's inputs and targets"
                        + (f" among the {split} subjects" if wanted is not None else ""))
    return pd.concat(frames, ignore_index=True), predictor.outputs, predictor.meta


def _cycle_frame(predictor, data, wanted: set[str] | None, split: str) -> tuple[pd.DataFrame, list[str], dict]:
    """A cycle model scored on the ingest cycles themselves (one row per cycle point)."""
    from gaitcli.data.windows import load_cycle_windows
    from gaitcli.train.workflows import predict_windows

    found = load_cycle_windows(data, predictor.inputs, predictor.outputs, sorted(wanted) if wanted else None)
    if len(found) == 0:
        raise DataError("no cycle in the data has the model's inputs and targets"
                        + (f" among the {split} subjects" if wanted is not None else ""))
    predicted = predict_windows(predictor.model, found.inputs, predictor.in_norm, predictor.out_norm)
    n, t, _ = found.inputs.shape
    frame = pd.DataFrame({"subject": np.repeat(found.subjects, t), "trial": np.repeat(found.trials, t),
                          "cycle": np.repeat(found.starts, t), "percent": np.tile(np.linspace(0, 100, t), n)})
    for j, name in enumerate(predictor.outputs):
        frame[name] = found.targets[:, :, j].reshape(-1)
        frame[name + "_pred"] = predicted[:, :, j].reshape(-1)
    return frame, predictor.outputs, predictor.meta


def evaluate(model: str | Path | None, data: list[str | Path], split: str = "all",
             by: tuple[str, ...] = (), stride: int | None = None) -> EvaluationReport:
    frame, targets, _ = prediction_frame(model, data, split, stride)
    cycle_cols = ("trial", "cycle") if "cycle" in frame else ("trial",)
    return evaluate_table(frame, targets, group_cols=("subject",), by=by, cycle_cols=cycle_cols)
