"""Accuracy metrics between reference joint moments ``y`` and predictions ``p``.

Every metric takes two arrays of the same shape (time on axis 0; a metric that does not
care about time pools all elements) and is NaN-aware: a sample where either ``y`` or ``p``
is NaN (an invalid label, such as a masked Plug-in Gait moment, or a missing prediction) is
left out. A metric with no valid sample, or one that is undefined on the valid samples
(see each one), is NaN. No metric emits a RuntimeWarning. ``N`` below is the number of
valid samples; units assume moments in N·m/kg.

``mse``
    Mean squared error, ``1/N Σ (y_i - p_i)²`` (Li 2025 eq. 1; Gait2Hip-60 eq. 8),
    (N·m/kg)².
``rmse``
    Root mean squared error, ``sqrt(mse)`` (Gait2Hip-60 eq. 9; Tan 2024), N·m/kg.
``mae``
    Mean absolute error, ``1/N Σ |y_i - p_i|`` (Li 2025 eq. 2; Gait2Hip-60 eq. 10), N·m/kg.
``r2``
    Coefficient of determination, ``1 - Σ (y_i - p_i)² / Σ (y_i - ȳ)²`` with ``ȳ`` the mean
    of the valid reference samples (Gait2Hip-60 eq. 11); dimensionless, at most 1, negative
    when the prediction is worse than the reference's mean. NaN when the reference is
    constant on the valid samples (``Σ (y_i - ȳ)² = 0``).
``pearson_r``
    Pearson's correlation coefficient between ``y`` and ``p`` (Tan 2024's ρ),
    dimensionless in [-1, 1]. NaN with fewer than 2 valid samples or when either signal is
    constant on them.
``rrmse``
    Relative RMSE, ``100 · rmse / (max_i y_i - min_i y_i)`` over the valid samples, in % of
    the reference's range (Tan 2024, section II-F: "RMSE / (max vGRF_gold - min vGRF_gold)
    × 100 %"). NaN when the reference is constant on the valid samples.
``peak_error``
    Absolute error at the reference's peak, N·m/kg: in one signal (a gait cycle or a
    window), ``|p[k] - y[k]|`` where ``k = argmax_i |y_i|`` over the valid samples (the
    reference's extremum of largest magnitude; the first one on ties). This is the "mean
    absolute error at peak (flexion/extension) moments" of Li 2025 section 3: the prediction
    is read at the time of the reference's peak, so a timing error counts as an error. For an
    array of more than one dimension, axis 0 is time and each position along the other axes
    is a separate signal; the result is the mean over the signals that have a valid sample.

`METRICS` maps each name to its function and `compute` runs several at once.
`evaluate_table` scores a long table of reference and predicted channels per subject (or any
other unit) and reports, as the papers do, the metric per subject and its mean ± SD across
subjects (Gait2Hip-60: "subject-level mean"; Tan 2024: "across all the stance phases of each
participant"), next to the metric on all samples pooled. `stance_only` keeps the stance
phase of time-normalised cycles (Tan 2024 scores stance phases only).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd

from gaitcli.errors import DataError, UsageError

__all__ = [
    "CYCLE_KEYS",
    "CYCLE_METRICS",
    "METRICS",
    "EvaluationReport",
    "Metric",
    "compute",
    "evaluate_table",
    "mae",
    "mse",
    "peak_error",
    "pearson_r",
    "r2",
    "rmse",
    "rrmse",
    "stance_only",
]

Metric = Callable[[npt.ArrayLike, npt.ArrayLike], float]

#: Columns that, with the group columns, identify one gait cycle (or window) in a table; the
#: ones present are used to split a group into cycles for `peak_error` when ``cycle`` exists.
CYCLE_KEYS: tuple[str, ...] = ("condition", "trial", "side", "cycle")

_NAN = float("nan")


# --------------------------------------------------------------------------- sample metrics


def _pair(y: npt.ArrayLike, p: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """``y`` and ``p`` as float arrays of the same shape (not flattened)."""
    ya = np.asarray(y, dtype=float)
    pa = np.asarray(p, dtype=float)
    if ya.shape != pa.shape:
        raise ValueError(f"reference and prediction shapes differ: {ya.shape} vs {pa.shape}")
    return ya, pa


def _valid(y: npt.ArrayLike, p: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """The valid samples (neither is NaN), flattened."""
    ya, pa = _pair(y, p)
    ok = ~(np.isnan(ya) | np.isnan(pa))
    return ya[ok], pa[ok]


def mse(y: npt.ArrayLike, p: npt.ArrayLike) -> float:
    """Mean squared error on the valid samples, (N·m/kg)²; NaN with none."""
    ya, pa = _valid(y, p)
    if ya.size == 0:
        return _NAN
    return float(np.mean((ya - pa) ** 2))


def rmse(y: npt.ArrayLike, p: npt.ArrayLike) -> float:
    """Root mean squared error on the valid samples, N·m/kg; NaN with none."""
    return math.sqrt(mse(y, p))


def mae(y: npt.ArrayLike, p: npt.ArrayLike) -> float:
    """Mean absolute error on the valid samples, N·m/kg; NaN with none."""
    ya, pa = _valid(y, p)
    if ya.size == 0:
        return _NAN
    return float(np.mean(np.abs(ya - pa)))


def r2(y: npt.ArrayLike, p: npt.ArrayLike) -> float:
    """Coefficient of determination ``1 - SS_res / SS_tot``; NaN if the reference is constant."""
    ya, pa = _valid(y, p)
    if ya.size == 0:
        return _NAN
    if ya.max() == ya.min():  # constant: SS_tot is 0 (tested exactly, not after rounding)
        return _NAN
    ss_tot = float(np.sum((ya - ya.mean()) ** 2))
    return 1.0 - float(np.sum((ya - pa) ** 2)) / ss_tot


def pearson_r(y: npt.ArrayLike, p: npt.ArrayLike) -> float:
    """Pearson's correlation coefficient; NaN with < 2 samples or a constant signal."""
    ya, pa = _valid(y, p)
    if ya.size < 2 or ya.max() == ya.min() or pa.max() == pa.min():
        return _NAN
    dy = ya - ya.mean()
    dp = pa - pa.mean()
    denom = math.sqrt(float(np.sum(dy * dy)) * float(np.sum(dp * dp)))
    if denom == 0.0:
        return _NAN
    return max(-1.0, min(1.0, float(np.sum(dy * dp)) / denom))


def rrmse(y: npt.ArrayLike, p: npt.ArrayLike) -> float:
    """RMSE in % of the reference's range (max - min) on the valid samples (Tan 2024)."""
    ya, pa = _valid(y, p)
    if ya.size == 0:
        return _NAN
    span = float(ya.max() - ya.min())
    if span == 0.0:
        return _NAN
    return 100.0 * math.sqrt(float(np.mean((ya - pa) ** 2))) / span


def _peak_errors(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Per signal (axis 0 is time, the rest flattened into signals): ``|p[k] - y[k]|``."""
    y2 = y.reshape(y.shape[0], -1) if y.ndim > 1 else y.reshape(-1, 1)
    p2 = p.reshape(y2.shape)
    ok = ~(np.isnan(y2) | np.isnan(p2))
    if y2.shape[0] == 0:
        return np.full(y2.shape[1], _NAN)
    mag = np.where(ok, np.abs(y2), -np.inf)
    k = np.argmax(mag, axis=0)  # first index on ties
    cols = np.arange(y2.shape[1])
    err = np.abs(p2[k, cols] - y2[k, cols])
    return np.where(ok.any(axis=0), err, _NAN)


def peak_error(y: npt.ArrayLike, p: npt.ArrayLike) -> float:
    """``|p[k] - y[k]|`` at ``k = argmax |y|`` (valid samples), N·m/kg.

    Axis 0 is time; for more dimensions each other position is a signal (cycle, window or
    channel) and the mean over signals with a valid sample is returned. NaN with none.
    """
    ya, pa = _pair(y, p)
    if ya.ndim == 0:
        ya, pa = ya.reshape(1), pa.reshape(1)
    errs = _peak_errors(ya, pa)
    errs = errs[~np.isnan(errs)]
    return float(errs.mean()) if errs.size else _NAN


#: Every metric by name, in report order.
METRICS: dict[str, Metric] = {
    "rmse": rmse,
    "mae": mae,
    "mse": mse,
    "r2": r2,
    "pearson_r": pearson_r,
    "rrmse": rrmse,
    "peak_error": peak_error,
}

#: Metrics that `evaluate_table` computes per cycle (or window) and then averages.
CYCLE_METRICS: frozenset[str] = frozenset({"peak_error"})


def _metric_names(metrics: Iterable[str] | None) -> list[str]:
    names = list(METRICS) if metrics is None else list(metrics)
    unknown = [m for m in names if m not in METRICS]
    if unknown:
        raise UsageError(f"unknown metric(s) {', '.join(unknown)}; known: {', '.join(METRICS)}")
    return names


def compute(
    y: npt.ArrayLike, p: npt.ArrayLike, metrics: Iterable[str] | None = None
) -> dict[str, float]:
    """Several metrics at once: ``{name: value}``, all of `METRICS` by default."""
    return {name: METRICS[name](y, p) for name in _metric_names(metrics)}


# --------------------------------------------------------------------------- tables


def _json_value(v: object) -> object:
    if isinstance(v, (float, np.floating)):
        f = float(v)
        return None if math.isnan(f) or math.isinf(f) else f
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.bool_):
        return bool(v)
    if v is pd.NA or v is pd.NaT:
        return None
    return v


def _records(df: pd.DataFrame) -> list[dict[str, object]]:
    return [{str(k): _json_value(v) for k, v in row.items()} for row in df.to_dict("records")]


@dataclass
class EvaluationReport:
    """Metrics of one table: per group (subject), summarised across groups, and pooled.

    ``per_group``: one row per (*by, *group_cols, channel, metric) with ``value``.
    ``summary``: one row per (*by, channel, metric): ``mean`` and ``sd`` (sample SD, ddof 1)
    of the per-group values that are not NaN, and ``n_subjects``, how many there were (groups
    are subjects by default). ``pooled``: one row per (*by, channel, metric): ``value`` on all
    samples of the stratum together (``peak_error``: mean over all its cycles).
    """

    per_group: pd.DataFrame
    summary: pd.DataFrame
    pooled: pd.DataFrame
    channels: list[str]
    metrics: list[str]
    group_cols: tuple[str, ...] = ("subject",)
    by_cols: tuple[str, ...] = ()
    pred_suffix: str = "_pred"
    cycle_cols: tuple[str, ...] | None = None
    _frame: pd.DataFrame | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, object]:
        """JSON-able: lists of records, NaN as None."""
        return {
            "channels": list(self.channels),
            "metrics": list(self.metrics),
            "group_cols": list(self.group_cols),
            "by": list(self.by_cols),
            "summary": _records(self.summary),
            "pooled": _records(self.pooled),
            "per_group": _records(self.per_group),
        }

    def to_json(self, path: str | Path) -> Path:
        """Write `to_dict` as JSON to ``path``."""
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n")
        return out

    def to_csv(self, folder: str | Path) -> list[Path]:
        """Write ``per_group.csv``, ``summary.csv`` and ``pooled.csv`` into ``folder``."""
        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        paths = []
        for name, df in (("per_group", self.per_group), ("summary", self.summary),
                         ("pooled", self.pooled)):
            path = out / f"{name}.csv"
            df.to_csv(path, index=False)
            paths.append(path)
        return paths

    def by(self, *columns: str) -> EvaluationReport:
        """The same evaluation stratified by metadata column(s), e.g. ``report.by("condition")``:
        per-group metrics per (column, group), mean ± SD across groups within each stratum."""
        if self._frame is None:
            raise DataError("this report does not keep its table; call evaluate_table(by=...)")
        return evaluate_table(self._frame, self.channels, self.group_cols, self.pred_suffix,
                              metrics=self.metrics, by=columns, cycle_cols=self.cycle_cols)


def _unique(cols: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(cols))


def _codes(frame: pd.DataFrame, cols: Sequence[str]) -> tuple[np.ndarray, pd.DataFrame]:
    """Integer group code per row and the key values of each code (sorted, NaN keys kept)."""
    if not cols:
        return np.zeros(len(frame), dtype=np.int64), pd.DataFrame(index=[0])
    grouped = frame.groupby(list(cols), sort=True, dropna=False, observed=True)
    codes = grouped.ngroup().to_numpy(dtype=np.int64)
    keys = grouped.size().reset_index()[list(cols)]
    return codes, keys


def _rows_by_code(codes: np.ndarray, n: int) -> list[np.ndarray]:
    """Row indices of each code 0..n-1, in frame order."""
    if n == 0:
        return []
    order = np.argsort(codes, kind="stable")
    return np.split(order, np.cumsum(np.bincount(codes, minlength=n))[:-1])


def _cycle_peak_errors(y: np.ndarray, p: np.ndarray, cycle: np.ndarray, n: int) -> np.ndarray:
    """``peak_error`` of each cycle code 0..n-1 (NaN for a cycle with no valid sample)."""
    ok = ~(np.isnan(y) | np.isnan(p))
    mag = np.where(ok, np.abs(y), -np.inf)
    order = np.lexsort((-mag, cycle))  # by cycle, largest |y| first, stable on ties
    first_codes, first = np.unique(cycle[order], return_index=True)
    k = order[first]
    out = np.full(n, _NAN)
    out[first_codes] = np.where(ok[k], np.abs(p[k] - y[k]), _NAN)
    return out


def _mean_or_nan(values: np.ndarray) -> float:
    values = values[~np.isnan(values)]
    return float(values.mean()) if values.size else _NAN


def evaluate_table(
    frame: pd.DataFrame,
    channels: Sequence[str],
    group_cols: Sequence[str] = ("subject",),
    pred_suffix: str = "_pred",
    *,
    metrics: Iterable[str] | None = None,
    by: Sequence[str] = (),
    cycle_cols: Sequence[str] | None = None,
) -> EvaluationReport:
    """Score a table of references ``c`` and predictions ``c + pred_suffix`` per channel.

    Each metric is computed per group (``group_cols``: one value per subject by default, on
    all of that subject's valid samples), then summarised across groups (mean, SD,
    ``n_subjects``), and also computed on all samples pooled. ``by`` stratifies everything by
    other metadata columns (e.g. ``("condition",)``: per-condition tables, mean ± SD across
    subjects within each condition).

    ``peak_error`` is computed per cycle and averaged: per group over its cycles, pooled over
    all cycles. Cycles are the distinct values of ``cycle_cols`` within a group; by default
    the columns of `CYCLE_KEYS` present in ``frame`` when it has a ``cycle`` column, else
    none, so that each group's rows form one signal. Pass e.g. ``("trial", "window")`` for
    windowed predictions.
    """
    channels = list(channels)
    names = _metric_names(metrics)
    group_cols = tuple(group_cols)
    by_cols = tuple(by)
    if not channels:
        raise UsageError("no channels to evaluate")
    if cycle_cols is None:
        cycle_cols = tuple(c for c in CYCLE_KEYS if c in frame.columns) \
            if "cycle" in frame.columns else ()
    cycle_cols = tuple(cycle_cols)
    needed = _unique([*by_cols, *group_cols, *cycle_cols,
                      *(c for ch in channels for c in (ch, ch + pred_suffix))])
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise DataError(f"evaluation table lacks column(s): {', '.join(missing)}")

    unit_cols = _unique([*by_cols, *group_cols])
    stratum_codes, strata = _codes(frame, by_cols)
    unit_codes, units = _codes(frame, unit_cols)
    cycle_codes, cycles = _codes(frame, _unique([*unit_cols, *cycle_cols]))
    # unit of each cycle, stratum of each unit (every cycle lies in one unit, etc.)
    cycle_unit = np.zeros(len(cycles), dtype=np.int64)
    cycle_unit[cycle_codes] = unit_codes
    unit_stratum = np.zeros(len(units), dtype=np.int64)
    unit_stratum[unit_codes] = stratum_codes

    rows_by_unit = _rows_by_code(unit_codes, len(units))
    rows_by_stratum = _rows_by_code(stratum_codes, len(strata))
    sample_metrics = [m for m in names if m not in CYCLE_METRICS]

    per_unit: list[dict[str, object]] = []
    pooled: list[dict[str, object]] = []
    unit_keys = units.to_dict("records")
    stratum_keys = strata[list(by_cols)].to_dict("records") if by_cols else [{}]
    for ch in channels:
        y = frame[ch].to_numpy(dtype=float, na_value=np.nan)
        p = frame[ch + pred_suffix].to_numpy(dtype=float, na_value=np.nan)
        peaks = _cycle_peak_errors(y, p, cycle_codes, len(cycles)) \
            if "peak_error" in names else None
        for u, rows in enumerate(rows_by_unit):
            yu, pu = y[rows], p[rows]
            values = {m: METRICS[m](yu, pu) for m in sample_metrics}
            if peaks is not None:
                values["peak_error"] = _mean_or_nan(peaks[cycle_unit == u])
            for m in names:
                per_unit.append({**unit_keys[u], "channel": ch, "metric": m, "value": values[m]})
        for s, rows in enumerate(rows_by_stratum):
            ys, ps = y[rows], p[rows]
            values = {m: METRICS[m](ys, ps) for m in sample_metrics}
            if peaks is not None:
                values["peak_error"] = _mean_or_nan(peaks[unit_stratum[cycle_unit] == s])
            for m in names:
                pooled.append({**stratum_keys[s], "channel": ch, "metric": m, "value": values[m]})

    per_group = pd.DataFrame(per_unit, columns=[*unit_cols, "channel", "metric", "value"])
    pooled_df = pd.DataFrame(pooled, columns=[*by_cols, "channel", "metric", "value"])
    summary = _summarise(per_group, by_cols, names, channels)
    return EvaluationReport(per_group=per_group, summary=summary, pooled=pooled_df,
                            channels=channels, metrics=names, group_cols=group_cols,
                            by_cols=by_cols, pred_suffix=pred_suffix,
                            cycle_cols=cycle_cols, _frame=frame)


def _summarise(per_group: pd.DataFrame, by_cols: tuple[str, ...], names: list[str],
               channels: list[str]) -> pd.DataFrame:
    """Mean, sample SD (ddof 1; NaN below 2 groups) and count of the non-NaN group values."""
    keys = [*by_cols, "channel", "metric"]
    rows: list[dict[str, object]] = []
    for key, sub in per_group.groupby(keys, sort=False, dropna=False):
        v = sub["value"].to_numpy(dtype=float)
        v = v[~np.isnan(v)]
        mean = float(v.mean()) if v.size else _NAN
        sd = float(v.std(ddof=1)) if v.size > 1 else _NAN
        rows.append({**dict(zip(keys, key)), "mean": mean, "sd": sd, "n_subjects": int(v.size)})
    return pd.DataFrame(rows, columns=[*keys, "mean", "sd", "n_subjects"])


def stance_only(
    frame: pd.DataFrame,
    percent_col: str = "percent",
    stance_col: str = "stance_percent",
) -> pd.DataFrame:
    """The stance rows of time-normalised cycles: ``percent <= stance_percent``.

    Cycles without a foot off (``stance_percent`` NaN) are dropped. Tan 2024 scores GRF in
    stance only (vertical GRF above 2 % of body weight); with cycle tables the foot off found
    at ingest marks the end of stance.
    """
    missing = [c for c in (percent_col, stance_col) if c not in frame.columns]
    if missing:
        raise DataError(f"stance_only needs column(s): {', '.join(missing)}")
    keep = frame[percent_col].to_numpy(dtype=float) <= frame[stance_col].to_numpy(dtype=float)
    return frame.loc[keep]
