"""Statistics of model comparisons: Holm's correction and paired Wilcoxon tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import wilcoxon

from gaitcli.errors import DataError
from gaitcli.eval.stats import holm, mean_sd, pairwise_wilcoxon, stars


def test_holm_equals_a_hand_calculation():
    # sorted: 0.005 (x4 = 0.02), 0.01 (x3 = 0.03), 0.03 (x2 = 0.06), 0.04 (x1 = 0.04 -> max 0.06)
    adjusted = holm([0.01, 0.04, 0.03, 0.005])
    assert adjusted == pytest.approx([0.03, 0.06, 0.06, 0.02])


def test_holm_caps_at_one_keeps_nan_and_order():
    adjusted = holm([0.5, np.nan, 0.2, 0.9])
    # m = 3: 0.2 x3 = 0.6, 0.5 x2 = 1.0, 0.9 x1 -> max(1.0, 0.9) = 1.0
    assert adjusted[[0, 2, 3]] == pytest.approx([1.0, 0.6, 1.0])
    assert np.isnan(adjusted[1])
    assert holm([]).size == 0


def test_holm_never_below_the_raw_p_and_monotone_in_rank():
    rng = np.random.default_rng(3)
    p = rng.random(12) ** 3
    adjusted = holm(p)
    assert (adjusted >= p - 1e-15).all()
    order = np.argsort(p)
    assert (np.diff(adjusted[order]) >= -1e-15).all()


def _errors(rng: np.random.Generator) -> pd.DataFrame:
    subjects = [f"S{i:02d}" for i in range(15)]
    base = rng.normal(0.3, 0.05, len(subjects))
    rows = []
    for model, shift in (("lstm", 0.04), ("transformer", 0.0), ("mamba", 0.005)):
        for s, b in zip(subjects, base):
            rows.append({"model": model, "subject": s, "rmse": b + shift + rng.normal(0, 0.01)})
    return pd.DataFrame(rows)


def test_pairwise_wilcoxon_matches_scipy_and_holm():
    frame = _errors(np.random.default_rng(0))
    table = pairwise_wilcoxon(frame, "rmse", "model", "subject")
    assert len(table) == 3
    wide = frame.pivot(index="subject", columns="model", values="rmse")
    for row in table.itertuples():
        expected = wilcoxon(wide[row.a], wide[row.b]).pvalue
        assert row.p == pytest.approx(expected)
        assert row.n == 15
        assert row.median_diff == pytest.approx(float(np.median(wide[row.a] - wide[row.b])))
    assert table["p_holm"].to_numpy() == pytest.approx(holm(table["p"].to_numpy()))
    lstm_vs_transformer = table[(table.a == "lstm") & (table.b == "transformer")].iloc[0]
    assert lstm_vs_transformer.significant and lstm_vs_transformer.median_diff > 0


def test_pairwise_wilcoxon_pairs_only_shared_subjects():
    frame = _errors(np.random.default_rng(1))
    frame = frame[~((frame.model == "mamba") & frame.subject.isin(["S00", "S01", "S02"]))]
    table = pairwise_wilcoxon(frame, "rmse", "model", "subject")
    counts = {(r.a, r.b): r.n for r in table.itertuples()}
    assert counts[("lstm", "transformer")] == 15
    assert counts[("lstm", "mamba")] == 12


def test_identical_models_give_no_p_value():
    frame = _errors(np.random.default_rng(2))
    twin = frame[frame.model == "lstm"].assign(model="lstm_copy")
    table = pairwise_wilcoxon(pd.concat([frame[frame.model == "lstm"], twin]), "rmse", "model", "subject")
    assert np.isnan(table["p"].iloc[0]) and not table["significant"].iloc[0]


def test_missing_column_is_a_data_error():
    with pytest.raises(DataError, match="rmse"):
        pairwise_wilcoxon(pd.DataFrame({"model": ["a"], "subject": ["s"]}), "rmse")


def test_mean_sd_and_stars():
    frame = pd.DataFrame({"k": ["a", "a", "a", "b"], "v": [1.0, 2.0, 3.0, 5.0]})
    table = mean_sd(frame, "v", ["k"]).set_index("k")
    assert table.loc["a", "mean"] == 2.0 and table.loc["a", "sd"] == pytest.approx(1.0)
    assert np.isnan(table.loc["b", "sd"]) and table.loc["b", "n"] == 1
    assert [stars(p) for p in (0.001, 0.02, 0.2, float("nan"))] == ["**", "*", "ns", ""]
