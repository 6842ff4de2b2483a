"""Cycles: segmentation, validity reasons, time normalisation."""

from __future__ import annotations

import numpy as np

from gaitcli.data.cycles import Cycle, count_reasons, normalise, rejection, segment
from gaitcli.data.timeseries import Event, TimeSeries


def _ts(duration=5.0, rate=100.0):
    t = np.arange(0, duration, 1 / rate)
    return TimeSeries(t, np.column_stack([np.sin(t), t]), ["knee_angle_r", "hip_flexion_r"], ["deg", "deg"], rate)


def test_segment_pairs_consecutive_strikes_per_side():
    events = [Event(0.5, "foot_strike", "r"), Event(1.1, "foot_off", "r"), Event(1.5, "foot_strike", "r"),
              Event(2.6, "foot_strike", "r"), Event(1.0, "foot_strike", "l")]
    cycles = segment(events, {"r": "file", "l": "file"})
    assert [(c.side, c.start, c.end) for c in cycles] == [("r", 0.5, 1.5), ("r", 1.5, 2.6)]
    assert cycles[0].foot_off == 1.1 and cycles[1].foot_off is None
    assert abs(cycles[0].stance_percent - 60.0) < 1e-9


def test_rejection_reasons():
    ts = _ts()
    assert rejection(Cycle("r", 0, 1.0, 2.0, None, "file"), ts, ["knee_angle_r"]) is None
    assert "duration" in rejection(Cycle("r", 0, 1.0, 3.5, None, "file"), ts, [])
    assert "duration" in rejection(Cycle("r", 0, 1.0, 1.1, None, "file"), ts, [])
    assert rejection(Cycle("r", 0, 4.5, 5.5, None, "file"), ts, []).startswith("beyond the recording")
    gappy = ts.copy()
    gappy.data[150, 0] = np.nan
    reason = rejection(Cycle("r", 0, 1.0, 2.0, None, "file"), gappy, ["knee_angle_r", "hip_flexion_r"])
    assert reason.startswith("gap") and "knee_angle_r" in reason and "hip_flexion_r" not in reason
    beyond = rejection(Cycle("r", 0, 4.5, 5.5, None, "file"), ts, [])
    assert count_reasons([reason, reason, beyond]) == {"gap in joint angles": 2, "beyond the recording": 1}


def test_normalise_is_exact_on_linear_data_and_has_n_points():
    ts = _ts()
    values = normalise(ts, 1.0, 2.0, 101)
    assert values.shape == (101, 2)
    np.testing.assert_allclose(values[:, 1], np.linspace(1.0, 2.0, 101), atol=1e-12)
    assert normalise(ts, 1.0, 2.0, 180).shape == (180, 2)
