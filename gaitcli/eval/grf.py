"""Ground reaction force errors as GaitDynamics reports them, and the inpainting study.

Errors are in % body weight (N/kg ÷ 9.81 × 100), per foot contact: the unit is a stance phase
found on the measured vertical force (above 10 % BW for 0.1–1.5 s, the paper's thresholds) whose
measured force is known throughout. Overground walkways rarely give two plate strikes of the same
foot, so whole cycles (the paper's unit) are mostly unavailable; a stance holds the whole force
profile that matters, and its MAE is not diluted by the zero force of swing. Per stance: mean
absolute error of the vertical, anterior-posterior and medial-lateral force, and the error of
the peak vertical force. Summaries average stances per subject first, then subjects (as the
paper averages per study), mean ± SD across subjects.
"""

from __future__ import annotations

import numpy as np

from gaitcli.data import gaitstate as gs
from gaitcli.data.timeseries import SIDES

PERCENT_BW = 100.0 / gs.GRAVITY
STANCE_THRESHOLD = 0.10 * gs.GRAVITY  # 10 % BW in N/kg
STANCE_SECONDS = (0.1, 1.5)
METRICS = ("vertical_mae", "ap_mae", "ml_mae", "peak_vertical_error")


def stances(fy: np.ndarray, rate: float = gs.RATE_HZ) -> list[tuple[int, int]]:
    """Runs of measured vertical force above 10 % BW lasting 0.1–1.5 s, not touching unknown samples."""
    above = np.nan_to_num(fy, nan=-1.0) > STANCE_THRESHOLD
    edges = np.flatnonzero(np.diff(np.r_[0, above.astype(np.int8), 0]))
    out = []
    for start, stop in zip(edges[::2], edges[1::2]):
        seconds = (stop - start) / rate
        if not STANCE_SECONDS[0] <= seconds <= STANCE_SECONDS[1]:
            continue
        lo, hi = max(start - 1, 0), min(stop + 1, fy.size)
        if start == 0 or stop == fy.size or not np.isfinite(fy[lo:hi]).all():
            continue  # cut by the trial's edge or by unknown samples: not a whole stance
        out.append((int(start), int(stop)))
    return out


def stance_errors(truth: np.ndarray, predicted: np.ndarray) -> list[dict]:
    """Per stance of each foot: errors in % BW. ``truth`` and ``predicted`` are state values (T, C)."""
    rows = []
    col = {c: i for i, c in enumerate(gs.STATE_CHANNELS)}
    for side in SIDES:
        fy = truth[:, col[f"grf_{side}_vy"]]
        for start, stop in stances(fy):
            part = slice(start, stop)
            err = {a: np.abs(predicted[part, col[f"grf_{side}_v{a}"]] - truth[part, col[f"grf_{side}_v{a}"]])
                   for a in "xyz"}
            peak = np.nanmax(predicted[part, col[f"grf_{side}_vy"]]) - np.nanmax(fy[part])
            rows.append({"side": side, "start": start, "samples": stop - start,
                         "vertical_mae": float(np.nanmean(err["y"]) * PERCENT_BW),
                         "ap_mae": float(np.nanmean(err["x"]) * PERCENT_BW),
                         "ml_mae": float(np.nanmean(err["z"]) * PERCENT_BW),
                         "peak_vertical_error": float(abs(peak) * PERCENT_BW)})
    return rows


def summarise(rows: list[dict], by: str = "subject") -> dict[str, dict[str, float]]:
    """Mean ± SD across subjects of per-subject mean errors, with the counts."""
    import pandas as pd

    if not rows:
        return {m: {"mean": float("nan"), "sd": float("nan"), "subjects": 0, "stances": 0} for m in METRICS}
    frame = pd.DataFrame(rows)
    per_subject = frame.groupby(by)[list(METRICS)].mean()
    return {m: {"mean": float(per_subject[m].mean()), "sd": float(per_subject[m].std(ddof=1)) if len(per_subject) > 1
                else 0.0, "subjects": int(len(per_subject)), "stances": int(len(frame))} for m in METRICS}


def inpainting_study(model, states: list[gs.StateTrial], groups: list[str] | None = None,
                     methods: tuple[str, ...] = ("inpaint", "median"), steps: int = 50,
                     seed: int = 0) -> list[dict]:
    """Force errors with each joint group masked in turn, filled by each method, then refined.

    ``model`` is a ``GaitDynamics`` with both checkpoints. Rows: method, group ("none" = the trial
    as recorded), subject, trial and the stance errors. Entries a trial never had are filled by
    the same method in every row; a group the trial lacks altogether is skipped (not counted).
    """
    rows: list[dict] = []
    for state in states:
        truth = state.values
        for group in ["none"] + list(gs.GROUPS if groups is None else groups):
            channels = [] if group == "none" else gs.group_channels(group)
            idx = [gs.STATE_CHANNELS.index(c) for c in channels]
            if idx and not np.isfinite(truth[:, idx]).any():
                continue
            known = np.isfinite(truth)
            known[:, idx] = False
            known[:, len(gs.KINEMATIC_CHANNELS):] = False  # forces are what is estimated
            for method in methods:
                filled = model.fill(truth, method, steps=steps, seed=seed, known=known)
                predicted = model.with_forces(filled)
                for row in stance_errors(truth, predicted):
                    rows.append({"method": method, "group": group, "subject": state.subject,
                                 "trial": state.trial, **row})
    return rows


def evaluate_grf(refiner: str, diffusion: str | None, data: list[str], split: str = "all", study: bool = False,
                 steps: int = 50, seed: int = 0, method: str = "inpaint"):
    """Stance errors of the refinement model on ingest outputs (``gait evaluate --grf``).

    ``split``: all, or the checkpoint's test / train / val subjects. Kinematics a trial lacks are
    filled by ``method`` first. With ``study``, each joint group is also masked in turn and filled
    by inpainting and by median filling. Returns (rows, summary) DataFrames.
    """
    import pandas as pd

    from gaitcli.errors import DataError, UsageError
    from gaitcli.models.gaitdynamics import GaitDynamics, default_paths

    shipped_diffusion, shipped_refiner = default_paths()
    refiner_path = shipped_refiner if refiner == "default" else refiner
    model = GaitDynamics(diffusion or shipped_diffusion, refiner_path)
    states, _ = gs.load_states(data)
    if split != "all":
        parts = model.meta["grf-refiner"]["split"]
        if split not in parts:
            raise UsageError(f"--split must be all, train, val or test, not {split!r}")
        states = [s for s in states if s.subject in set(parts[split])]
    if not states:
        raise DataError("no trial with joint angles in " + ", ".join(map(str, data)) + f" (split {split})")
    if study:
        rows = inpainting_study(model, states, steps=steps, seed=seed)
    else:
        rows = inpainting_study(model, states, groups=[], methods=(method,), steps=steps, seed=seed)
    frame = pd.DataFrame(rows)
    if frame.empty:
        raise DataError("no whole stance with measured force in the data: nothing to score")
    summary = []
    for (m, group), part in frame.groupby(["method", "group"], sort=False):
        stats = summarise(part.to_dict("records"))
        summary.append({"method": m, "masked": group, "subjects": stats[METRICS[0]]["subjects"],
                        "stances": stats[METRICS[0]]["stances"],
                        **{f"{k}_mean": v["mean"] for k, v in stats.items()},
                        **{f"{k}_sd": v["sd"] for k, v in stats.items()}})
    return frame, pd.DataFrame(summary)
