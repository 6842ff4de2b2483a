"""``gait evaluate`` as a library: a checkpoint's predictions against the labels in ingest data."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from gaitcli.data import schema
from gaitcli.data.timeseries import SIDES
from gaitcli.data.windows import dataset_files, load_trials
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
    return _score(frame, targets, by)


def _score(frame: pd.DataFrame, targets: list[str], by: tuple[str, ...] = ()) -> EvaluationReport:
    cycle_cols = ("trial", "cycle") if "cycle" in frame else ("trial",)
    return evaluate_table(frame, targets, group_cols=("subject",), by=by, cycle_cols=cycle_cols)


# -- views: --by channel | subject | a metadata column ------------------------------------------
#: Metrics shown in the tables (MSE is in the JSON and CSV output).
TABLE_METRICS = ("rmse", "mae", "r2", "pearson_r", "rrmse", "peak_error")
VIEWS = ("channel", "subject")
_NOT_STRATA = ("subject", "time", "percent")


def by_choices(frame: pd.DataFrame, targets: list[str]) -> list[str]:
    """What ``--by`` accepts for a prediction frame: the views, then its metadata columns."""
    values = set(targets) | {t + "_pred" for t in targets}
    return [*VIEWS, *(c for c in frame.columns if c not in values and c not in _NOT_STRATA)]


@dataclass
class Evaluation:
    """A model scored on labelled data, with the prediction table behind the scores.

    ``by`` is ``channel`` (mean ± SD across subjects per channel), ``subject`` (one row per
    subject and channel) or a metadata column of ``frame`` such as ``condition`` (mean ± SD
    across subjects within each of its values); ``report`` is stratified by that column.
    """

    report: EvaluationReport
    frame: pd.DataFrame
    targets: list[str]
    meta: dict
    data: list[str | Path]
    model_label: str
    split: str = "all"
    by: str = "channel"

    def table(self) -> pd.DataFrame:
        """The scores as ``by`` asks: long (``..., channel, metric, mean, sd, n_subjects``) for
        ``channel`` and a stratum column, wide (``subject, channel, rmse, ...``) for ``subject``."""
        if self.by == "subject":
            return subject_table(self.report)
        strata = list(self.report.by_cols)
        summary = self.report.summary
        return summary.sort_values(strata, kind="stable").reset_index(drop=True) if strata else summary

    def waveforms(self) -> pd.DataFrame:
        """Reference and prediction per gait cycle (see `cycle_waveforms`)."""
        return cycle_waveforms(self.frame, self.data, self.targets, model=self.model_label)

    def plot_waveforms(self, path: str | Path) -> Path:
        """A PNG of reference vs predicted mean ± SD over the gait cycles, per channel."""
        from gaitcli.eval import plots

        if not plots.matplotlib_available():  # before the work of cutting cycles
            raise plots.PlottingUnavailable()
        units = {c: u for c, u in (self.meta.get("units") or {}).items() if c in self.targets}
        title = f"{self.model_label}: reference vs predicted, {self.split} subjects"
        return plots.plot_waveforms(self.waveforms(), path, title=title, units=units)


def evaluate_model(model: str | Path | None, data: list[str | Path], split: str = "all",
                   by: str = "channel", stride: int | None = None) -> Evaluation:
    """`evaluate`, keeping the prediction table for other views and figures (``gait evaluate``).

    An unknown ``by`` is a UsageError that lists what the data offers.
    """
    from gaitcli.models.inference import resolve_model_path

    frame, targets, meta = prediction_frame(model, data, split, stride)
    choices = by_choices(frame, targets)
    if by not in choices:
        raise UsageError(f"--by {by}: no such column; choose one of {', '.join(choices)}")
    report = _score(frame, targets, () if by in VIEWS else (by,))
    return Evaluation(report=report, frame=frame, targets=targets, meta=meta, data=list(data),
                      model_label=model_label(meta, resolve_model_path(model)), split=split, by=by)


def model_label(meta: dict, path: str | Path) -> str:
    """The architecture's name from checkpoint metadata, else the checkpoint's file stem."""
    config = meta.get("model")
    name = config.get("name") if isinstance(config, dict) else None
    return str(name) if name else Path(path).stem


def subject_table(report: EvaluationReport, metrics: tuple[str, ...] = TABLE_METRICS) -> pd.DataFrame:
    """One row per (subject, channel) with a column per metric, sorted by subject."""
    per_group = report.per_group
    wide = per_group.pivot_table(index=["subject", "channel"], columns="metric", values="value",
                                 aggfunc="first", dropna=False).reset_index()
    wide.columns.name = None
    order = {c: i for i, c in enumerate(report.channels)}
    wide = wide.sort_values(["subject", "channel"], key=lambda s: s.map(order) if s.name == "channel" else s)
    present = [m for m in metrics if m in wide.columns]
    return wide[["subject", "channel", *present]].reset_index(drop=True)


# -- gait cycles from predictions ------------------------------------------------------------------
_CYCLE_TABLE_COLUMNS = ["subject", "trial", "side", "cycle", "percent", "cycle_start_s", "cycle_duration_s"]


def channel_side(channel: str) -> str:
    """``r`` or ``l`` for a sided channel (``knee_angle_r_moment``, ``ground_force_l_vy``), else ``""``."""
    tokens = channel.split("_")[1:]
    return next((t for t in reversed(tokens) if t in SIDES), "")


def cycle_waveforms(frame: pd.DataFrame, data: list[str | Path], targets: list[str],
                    model: str = "model") -> pd.DataFrame:
    """Reference and prediction per gait cycle, time-normalised: the table `plots.plot_waveforms` takes.

    Columns: ``model``, ``channel``, ``subject``, ``trial``, ``side``, ``cycle_id``, ``percent``
    (0-100), ``reference`` and ``predicted``. A sided channel (``_r``/``_l``) is cut at the
    cycles of its own side, a channel of neither side at the right side's cycles.

    A cycle model's frame (from `prediction_frame`, with ``cycle`` and ``percent``) already holds
    cycles. A windows model's frame holds continuous trials (``time``): each is cut at the
    cycles ingest found, read from the ``*.cycles.parquet`` beside its ``*.continuous.parquet``
    in ``data`` (the time of a point is ``cycle_start_s + percent / 100 * cycle_duration_s``),
    and the reference and prediction are interpolated linearly at those times. Trials tiled
    from mean cycles (WBDS) have no recorded cycles and are left out.
    """
    if "percent" in frame.columns and "cycle" in frame.columns:
        waves = _waveforms_of_cycle_frame(frame, targets, model)
    else:
        waves = _waveforms_of_continuous_frame(frame, data, targets, model)
    if waves.empty:
        names = ", ".join(str(d) for d in data)
        raise DataError(f"no gait cycles found for the evaluated trials in {names} "
                        "(ingest writes them to *.cycles.parquet beside *.continuous.parquet)")
    return waves


def _waveform_rows(model: str, channel: str, subject: object, trial: object, side: object,
                   cycle_id: object, percent: object, reference: object, predicted: object) -> pd.DataFrame:
    return pd.DataFrame({"model": model, "channel": channel, "subject": subject, "trial": trial, "side": side,
                         "cycle_id": cycle_id, "percent": percent, "reference": reference,
                         "predicted": predicted})


def _waveforms_of_cycle_frame(frame: pd.DataFrame, targets: list[str], model: str) -> pd.DataFrame:
    # a cycle model's trial column is "<trial>/<side>" (see load_cycle_windows)
    trial_side = frame["trial"].astype(str).str.rsplit("/", n=1, expand=True)
    trial, side = trial_side[0], trial_side[1] if trial_side.shape[1] > 1 else pd.Series("", index=frame.index)
    cycle_id = frame["subject"].astype(str) + "/" + frame["trial"].astype(str) + "/" + frame["cycle"].astype(str)
    pieces = []
    for channel in targets:
        on_side = (side == (channel_side(channel) or "r")).to_numpy()
        pieces.append(_waveform_rows(model, channel, frame["subject"].to_numpy()[on_side],
                                     trial.to_numpy()[on_side], side.to_numpy()[on_side],
                                     cycle_id.to_numpy()[on_side], frame["percent"].to_numpy()[on_side],
                                     frame[channel].to_numpy()[on_side],
                                     frame[channel + "_pred"].to_numpy()[on_side]))
    return pd.concat(pieces, ignore_index=True) if pieces else pd.DataFrame()


def _cycle_tables(data: list[str | Path]) -> Iterator[pd.DataFrame]:
    """The cycle table of every continuous trial in ``data`` that has one (and any cycle)."""
    for path in dataset_files(data):
        if not path.name.endswith(schema.CONTINUOUS_SUFFIX):
            continue
        beside = path.with_name(path.name[: -len(schema.CONTINUOUS_SUFFIX)] + schema.CYCLES_SUFFIX)
        if beside.is_file():
            table = pd.read_parquet(beside, columns=_CYCLE_TABLE_COLUMNS)
            if not table.empty:
                yield table


def _waveforms_of_continuous_frame(frame: pd.DataFrame, data: list[str | Path], targets: list[str],
                                   model: str) -> pd.DataFrame:
    recorded = frame[~frame["tiled"].astype(bool)] if "tiled" in frame.columns else frame
    trials = {(str(s), str(t)): rows for (s, t), rows in recorded.groupby(["subject", "trial"], sort=False)}
    pieces = []
    for cycles in _cycle_tables(data):
        rows = trials.get((str(cycles["subject"].iloc[0]), str(cycles["trial"].iloc[0])))
        if rows is not None:
            pieces += [_cut_trial(rows, cycles, channel, model) for channel in targets]
    pieces = [p for p in pieces if not p.empty]
    return pd.concat(pieces, ignore_index=True) if pieces else pd.DataFrame()


def _cut_trial(rows: pd.DataFrame, cycles: pd.DataFrame, channel: str, model: str) -> pd.DataFrame:
    """One continuous trial's ``channel`` at the time-normalised points of its cycles on the channel's side."""
    on_side = cycles[cycles["side"].astype(str) == (channel_side(channel) or "r")]
    percent = on_side["percent"].to_numpy(dtype=float)
    start = on_side["cycle_start_s"].to_numpy(dtype=float)
    when = start + percent / 100.0 * on_side["cycle_duration_s"].to_numpy(dtype=float)
    ordered = rows.sort_values("time")
    time = ordered["time"].to_numpy(dtype=float)
    subject, trial = str(rows["subject"].iloc[0]), str(rows["trial"].iloc[0])
    sides = on_side["side"].astype(str).to_numpy()
    cycle_id = [f"{subject}/{trial}/{side}/{cycle}" for side, cycle in zip(sides, on_side["cycle"])]
    reference = _interpolate(when, time, ordered[channel])
    predicted = _interpolate(when, time, ordered[channel + "_pred"])
    return _waveform_rows(model, channel, subject, trial, sides, cycle_id, percent, reference, predicted)


def _interpolate(when: np.ndarray, time: np.ndarray, values: pd.Series) -> np.ndarray:
    """Linear interpolation at ``when``; NaN beside a missing sample and outside the recording."""
    out = np.interp(when, time, values.to_numpy(dtype=float, na_value=np.nan))
    out[(when < time[0] - 1e-9) | (when > time[-1] + 1e-9)] = np.nan
    return out
