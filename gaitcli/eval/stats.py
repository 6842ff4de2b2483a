"""Statistics of model comparisons (Gait2Hip-60): paired Wilcoxon signed-rank tests between
models on per-subject errors, Holm's step-down correction, and mean ± SD tables.
"""

from __future__ import annotations

from itertools import combinations
from typing import Sequence

import numpy as np
import pandas as pd

from gaitcli.errors import DataError


def holm(pvalues: Sequence[float]) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values, in the input order (NaN stays NaN, not counted).

    Sorted ascending p(1) <= ... <= p(m): adjusted p(i) = max over j <= i of min(1, (m - j + 1) p(j)).
    """
    p = np.asarray(pvalues, dtype=float)
    adjusted = np.full(p.shape, np.nan)
    finite = np.flatnonzero(~np.isnan(p))
    m = finite.size
    if m == 0:
        return adjusted
    order = finite[np.argsort(p[finite], kind="stable")]
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[index]))
        adjusted[index] = running
    return adjusted


def pairwise_wilcoxon(frame: pd.DataFrame, value: str, group: str = "model", pair_on: str = "subject",
                      alpha: float = 0.05) -> pd.DataFrame:
    """Two-sided Wilcoxon signed-rank test for every pair of ``group`` values, paired on
    ``pair_on`` (only the units both have), Holm-corrected over all pairs of the table.

    Returns one row per pair: a, b, n (pairs), median difference (a - b), statistic, p, p_holm,
    and ``significant`` (p_holm < alpha). Fewer than 2 pairs, or all-zero differences, give p NaN.
    """
    from scipy.stats import wilcoxon

    missing = [c for c in (value, group, pair_on) if c not in frame.columns]
    if missing:
        raise DataError(f"comparison table lacks column(s): {', '.join(missing)}")
    wide = frame.pivot_table(index=pair_on, columns=group, values=value, aggfunc="mean")
    rows = []
    for a, b in combinations(list(wide.columns), 2):
        both = wide[[a, b]].dropna()
        diff = (both[a] - both[b]).to_numpy()
        statistic, p = np.nan, np.nan
        if len(diff) >= 2 and np.any(diff != 0):
            result = wilcoxon(both[a].to_numpy(), both[b].to_numpy(), alternative="two-sided")
            statistic, p = float(result.statistic), float(result.pvalue)
        rows.append({"a": a, "b": b, "n": len(diff), "median_diff": float(np.median(diff)) if len(diff) else np.nan,
                     "statistic": statistic, "p": p})
    table = pd.DataFrame(rows, columns=["a", "b", "n", "median_diff", "statistic", "p"])
    table["p_holm"] = holm(table["p"].to_numpy()) if len(table) else []
    table["significant"] = table["p_holm"] < alpha
    return table


def mean_sd(frame: pd.DataFrame, value: str, keys: Sequence[str]) -> pd.DataFrame:
    """Mean, sample SD (ddof 1) and count of ``value`` per combination of ``keys``."""
    grouped = frame.groupby(list(keys), sort=True, dropna=False)[value]
    table = grouped.agg(mean="mean", sd=lambda v: v.std(ddof=1) if v.notna().sum() > 1 else np.nan,
                        n="count").reset_index()
    return table


def stars(p: float) -> str:
    """The papers' significance marks: ** p < 0.01, * p < 0.05."""
    if p is None or np.isnan(p):
        return ""
    return "**" if p < 0.01 else "*" if p < 0.05 else "ns"
