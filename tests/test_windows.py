"""Data to tensors: loading ingest output, tiling mean cycles, channels, splits, windows, z-scores."""

from __future__ import annotations

import numpy as np
import pytest

from gaitcli.data import windows as W
from gaitcli.errors import UsageError


def test_load_trials_from_ingest(ingested):
    trials = W.load_trials([ingested])
    assert len(trials) >= 100
    tiled = [t for t in trials if t.tiled]
    assert {t.subject for t in tiled} >= {f"WBDS{k:02d}" for k in range(1, 43)}
    continuous = next(t for t in trials if t.trial == "HC002D06")
    assert continuous.rate == 100.0 and continuous.units["knee_angle_r_moment"] == "N·m/kg"
    assert np.allclose(np.diff(continuous.time), 0.01)


def test_tiled_cycle_is_periodic_and_left_is_half_a_cycle_later(ingested):
    trial = next(t for t in W.load_trials([ingested]) if t.trial == "WBDS01walkOC")
    n = int(W.CYCLE_SECONDS * 100)
    knee_r, knee_l = trial.values["knee_angle_r"], trial.values["knee_angle_l"]
    np.testing.assert_allclose(knee_r[:n], knee_r[n:2 * n], atol=1e-9)
    assert 50 < knee_r.max() < 75
    # the left knee's swing peak sits half a cycle from the right one's
    offset = (np.argmax(knee_l[:n]) - np.argmax(knee_r[:n])) % n
    assert abs(offset - n / 2) < 0.1 * n


def test_select_channels_presets_lists_and_globs():
    assert W.select_channels("sagittal-angles") == ["hip_flexion_r", "hip_flexion_l", "knee_angle_r",
                                                     "knee_angle_l", "ankle_angle_r", "ankle_angle_l"]
    assert W.select_channels("knee_*", ["knee_angle_r", "knee_angle_l", "hip_flexion_r"]) == ["knee_angle_r", "knee_angle_l"]
    with pytest.raises(UsageError, match="not in the data"):
        W.select_channels("knee_angle_r,nope", ["knee_angle_r"])
    assert W.joint_channels(W.PRESETS["sagittal-moments"], "knee", "r") == ["knee_angle_r_moment"]
    with pytest.raises(UsageError):
        W.joint_channels(W.PRESETS["sagittal-moments"], "elbow")


def test_split_has_no_subject_in_two_parts_and_is_deterministic():
    subjects = [f"S{k:02d}" for k in range(30)]
    a = W.split_subjects(subjects, 0.2, 0.1, seed=3)
    b = W.split_subjects(subjects, 0.2, 0.1, seed=3)
    assert a == b and len(a.test) == 6 and len(a.val) == 2
    assert not (set(a.train) & set(a.test)) and not (set(a.train) & set(a.val)) and not (set(a.val) & set(a.test))
    assert set(a.train) | set(a.val) | set(a.test) == set(subjects)
    fixed = W.split_subjects(subjects, seed=0, test_subjects=["S01", "S02"])
    assert fixed.test == ["S01", "S02"]
    with pytest.raises(UsageError):
        W.split_subjects(subjects, test_subjects=["X"])
    assert len(W.label_subset(a.train, 0.2)) == round(0.2 * len(a.train))


def test_windows_skip_input_gaps_and_keep_nan_labels():
    t = np.arange(200) / 100.0
    x = np.sin(t)
    y = np.cos(t)
    x_gap = x.copy()
    x_gap[50] = np.nan
    y_nan = y.copy()
    y_nan[120:130] = np.nan
    trial = W.TrialData("S1", "T1", "", t, {"a": x_gap, "b": y_nan}, {}, 100.0)
    win = W.make_windows([trial], ["a"], ["b"], 40, 10)
    assert len(win) > 0 and all(s > 50 or s + 40 <= 50 for s in win.starts)
    assert np.isnan(win.targets).any() and np.isfinite(win.inputs).all()
    assert win.starts[-1] == 160, "the last window is aligned to the end"


def test_normalizer_round_trip_and_constant_channel():
    values = np.random.default_rng(0).normal(3.0, 2.0, size=(50, 10, 2))
    values[..., 1] = 5.0
    norm = W.Normalizer.fit(["a", "b"], values)
    assert norm.std[1] == 1.0
    np.testing.assert_allclose(norm.invert(norm.apply(values)), values)
    assert W.Normalizer.from_dict(norm.to_dict()) == norm
