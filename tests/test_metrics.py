"""gaitcli.eval.metrics: hand-calculated values, NaN handling, per-subject and pooled tables."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from gaitcli.errors import DataError, UsageError
from gaitcli.eval.metrics import (
    METRICS,
    compute,
    evaluate_table,
    mae,
    mse,
    peak_error,
    pearson_r,
    r2,
    rmse,
    rrmse,
    stance_only,
)

Y = [1.0, 2.0, 3.0, 4.0]
P = [1.0, 2.0, 3.0, 5.0]
# by hand: errors 0,0,0,1 -> MSE 1/4, RMSE 1/2, MAE 1/4; SS_tot = 2.25+.25+.25+2.25 = 5;
# deviations y: -1.5 -.5 .5 1.5, p: -1.75 -.75 .25 2.25 -> Σ = 6.5, Σp² = 8.75
R_HAND = 6.5 / math.sqrt(5.0 * 8.75)


def test_hand_calculated_values() -> None:
    assert mse(Y, P) == pytest.approx(0.25)
    assert rmse(Y, P) == pytest.approx(0.5)
    assert mae(Y, P) == pytest.approx(0.25)
    assert r2(Y, P) == pytest.approx(1 - 1 / 5)
    assert pearson_r(Y, P) == pytest.approx(R_HAND)
    assert pearson_r(Y, P) == pytest.approx(np.corrcoef(Y, P)[0, 1])
    assert rrmse(Y, P) == pytest.approx(100 * 0.5 / (4 - 1))  # RMSE / (max - min) in %
    assert peak_error(Y, P) == pytest.approx(1.0)  # |p - y| at argmax |y| (index 3)
    assert compute(Y, P) == {name: pytest.approx(fn(Y, P)) for name, fn in METRICS.items()}
    assert list(compute(Y, P, ["mae", "rmse"])) == ["mae", "rmse"]


def test_nan_samples_are_ignored() -> None:
    y = [1.0, np.nan, 2.0, 3.0, 4.0, 7.0]
    p = [1.0, 9.0, 2.0, 3.0, 5.0, np.nan]
    for name, fn in METRICS.items():
        assert fn(y, p) == pytest.approx(fn(Y, P)), name
    empty = compute([np.nan, 1.0], [2.0, np.nan])
    assert all(math.isnan(v) for v in empty.values())
    assert all(math.isnan(v) for v in compute([], []).values())


def test_identical_and_constant() -> None:
    y = np.sin(np.linspace(0, 6, 50))
    same = compute(y, y)
    assert same["rmse"] == 0 and same["mae"] == 0 and same["peak_error"] == 0
    assert same["r2"] == pytest.approx(1.0) and same["pearson_r"] == pytest.approx(1.0)
    const = compute([0.1] * 5, [0.1, 0.2, 0.3, 0.4, 0.5])  # no warning, see -W error
    assert math.isnan(const["r2"]) and math.isnan(const["pearson_r"])
    assert math.isnan(const["rrmse"]) and const["mae"] == pytest.approx(0.2)
    assert math.isnan(pearson_r([1.0, 2.0], [3.0, 3.0]))  # constant prediction
    assert math.isnan(pearson_r([1.0], [2.0]))
    assert r2([1.0, 2.0, 3.0], [3.0, 2.0, 1.0]) == pytest.approx(1 - 8 / 2)  # may be negative


def test_shapes_and_unknown_metric() -> None:
    with pytest.raises(ValueError):
        rmse([1.0, 2.0], [1.0])
    with pytest.raises(UsageError):
        compute(Y, P, ["nope"])


def test_peak_error_synthetic_cycle() -> None:
    t = np.linspace(0, 1, 101)
    y = np.sin(2 * np.pi * t)
    y[25], y[75] = 1.2, -1.5  # peak +1.2 at 25 %, extremum of largest magnitude -1.5 at 75 %
    p = y.copy()
    p[25] += 0.5  # error at the smaller peak: ignored
    p[75] += 0.2
    assert peak_error(y, p) == pytest.approx(0.2)
    p_late = y.copy()
    p_late[75], p_late[76] = y[74], -1.5  # right peak value one sample late: a timing error
    assert peak_error(y, p_late) == pytest.approx(abs(y[74] - y[75]))
    # 2-D: axis 0 is time, each column a cycle; mean over cycles
    assert peak_error(np.column_stack([y, y]), np.column_stack([p, p_late])) == pytest.approx(
        (0.2 + abs(y[74] - y[75])) / 2)
    y_masked = y.copy()
    y_masked[75] = np.nan  # invalid label at the peak: the largest valid |y| is at 25 %
    assert peak_error(y_masked, p) == pytest.approx(0.5)
    assert peak_error([2.0, -2.0], [0.0, 0.0]) == pytest.approx(2.0)  # ties: the first


def _table(seed: int = 0) -> pd.DataFrame:
    """3 subjects x 2 conditions x 2 sides x 2 cycles x 11 points, one channel, some NaN."""
    rng = np.random.default_rng(seed)
    rows = []
    for s in ("S1", "S2", "S3"):
        for cond in ("slow", "fast"):
            for side in ("l", "r"):
                for cyc in range(2):
                    y = np.sin(np.linspace(0, 2 * np.pi, 11)) * rng.uniform(0.5, 2)
                    p = y + rng.normal(0, 0.1 + 0.1 * int(s[1]), 11)
                    for k in range(11):
                        rows.append({"subject": s, "condition": cond, "trial": f"{s}{cond}",
                                     "side": side, "cycle": cyc, "percent": 10.0 * k,
                                     "stance_percent": 60.0, "knee": y[k], "knee_pred": p[k]})
    df = pd.DataFrame(rows)
    df.loc[[3, 40, 77], "knee"] = np.nan
    return df


def test_evaluate_table_per_subject_summary_and_pooled() -> None:
    df = _table()
    rep = evaluate_table(df, ["knee"])
    assert list(rep.summary.columns) == ["channel", "metric", "mean", "sd", "n_subjects"]
    assert set(rep.per_group["metric"]) == set(METRICS)
    for name, fn in METRICS.items():
        if name == "peak_error":
            continue
        manual = df.groupby("subject").apply(lambda g: fn(g["knee"], g["knee_pred"]))
        got = rep.per_group[rep.per_group.metric == name].set_index("subject")["value"]
        assert got.to_dict() == pytest.approx(manual.to_dict())
        row = rep.summary[rep.summary.metric == name].iloc[0]
        assert row["mean"] == pytest.approx(manual.mean())
        assert row["sd"] == pytest.approx(manual.std(ddof=1))
        assert row["n_subjects"] == 3
        pooled = rep.pooled[rep.pooled.metric == name]["value"].item()
        assert pooled == pytest.approx(fn(df["knee"], df["knee_pred"]))


def test_evaluate_table_peak_error_per_cycle() -> None:
    df = _table()
    rep = evaluate_table(df, ["knee"], metrics=["peak_error"])
    keys = ["subject", "condition", "trial", "side", "cycle"]
    per_cycle = df.groupby(keys).apply(lambda g: peak_error(g["knee"], g["knee_pred"]))
    per_subject = per_cycle.groupby(level="subject").mean()
    got = rep.per_group.set_index("subject")["value"]
    assert got.to_dict() == pytest.approx(per_subject.to_dict())
    assert rep.pooled["value"].item() == pytest.approx(per_cycle.mean())
    # without a cycle column each subject's rows are one signal
    whole = evaluate_table(df.drop(columns="cycle"), ["knee"], metrics=["peak_error"])
    manual = df.groupby("subject").apply(lambda g: peak_error(g["knee"], g["knee_pred"]))
    assert whole.per_group.set_index("subject")["value"].to_dict() == pytest.approx(
        manual.to_dict())


def test_by_condition_and_outputs(tmp_path) -> None:
    df = _table()
    rep = evaluate_table(df, ["knee"]).by("condition")
    assert list(rep.per_group.columns[:2]) == ["condition", "subject"]
    assert list(rep.summary.columns[:1]) == ["condition"]
    fast = df[df.condition == "fast"]
    manual = fast.groupby("subject").apply(lambda g: rmse(g["knee"], g["knee_pred"]))
    row = rep.summary[(rep.summary.condition == "fast") & (rep.summary.metric == "rmse")]
    assert row["mean"].item() == pytest.approx(manual.mean())
    pooled = rep.pooled[(rep.pooled.condition == "fast") & (rep.pooled.metric == "rmse")]
    assert pooled["value"].item() == pytest.approx(rmse(fast["knee"], fast["knee_pred"]))
    d = json.loads(json.dumps(rep.to_dict(), allow_nan=False))
    assert d["by"] == ["condition"] and len(d["summary"]) == len(rep.summary)
    paths = rep.to_csv(tmp_path / "eval")
    assert [p.name for p in paths] == ["per_group.csv", "summary.csv", "pooled.csv"]
    assert len(pd.read_csv(paths[1])) == len(rep.summary)


def test_nan_subject_and_missing_columns() -> None:
    df = _table()
    df.loc[df.subject == "S3", "knee"] = np.nan  # a subject with no valid label
    rep = evaluate_table(df, ["knee"], metrics=["rmse", "peak_error"])
    assert rep.per_group.set_index(["subject", "metric"])["value"].isna().sum() == 2
    assert (rep.summary["n_subjects"] == 2).all()
    json.dumps(rep.to_dict(), allow_nan=False)
    with pytest.raises(DataError):
        evaluate_table(df, ["hip"])


def test_stance_only() -> None:
    df = _table()
    df.loc[df.cycle == 1, "stance_percent"] = np.nan
    st = stance_only(df)
    assert (st["percent"] <= 60).all() and (st["cycle"] == 0).all()
    assert len(st) == 3 * 2 * 2 * 7
