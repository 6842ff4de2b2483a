"""Processing: low-pass, resampling, merging, mass, walking frame."""

from __future__ import annotations

import numpy as np
import pytest

from gaitcli.data import processing
from gaitcli.data.timeseries import TimeSeries


def _sines(rate=1000.0):
    t = np.arange(0, 2, 1 / rate)
    slow, fast = np.sin(2 * np.pi * 2 * t), 0.5 * np.sin(2 * np.pi * 150 * t)
    return TimeSeries(t, np.column_stack([slow + fast, slow]), ["mix", "slow"], ["N", "N"], rate), slow


def test_lowpass_removes_high_frequency_without_lag():
    ts, slow = _sines()
    out = processing.lowpass(ts, 20.0)
    inner = slice(200, -200)
    assert np.max(np.abs(out.channel("mix")[inner] - slow[inner])) < 0.01
    assert ts.channel("mix")[300] != out.channel("mix")[300], "input must not change"


def test_lowpass_keeps_nan_gaps_and_checks_cutoff():
    ts, _ = _sines()
    ts.data[500:520, 0] = np.nan
    out = processing.lowpass(ts, 20.0, ["mix"])
    assert np.isnan(out.data[500:520, 0]).all() and np.isfinite(out.data[:500, 0]).all()
    with pytest.raises(ValueError, match="Nyquist"):
        processing.lowpass(ts, 600.0)


def test_resample_linear_signal_is_exact_and_outside_is_nan():
    t = np.array([0.0, 0.0017, 0.0033, 0.005, 0.0067, 0.0083, 0.01])  # rounded ~600 Hz times
    ts = TimeSeries(t, 3 * t + 1, ["x"], ["m"], 600.0)
    out = processing.resample(ts, 1000.0, 0.0, 0.012)
    np.testing.assert_allclose(out.channel("x")[:11], 3 * out.time[:11] + 1, atol=1e-12)
    assert np.isnan(out.channel("x")[-1])


def test_downsampling_antialiases():
    ts, slow = _sines()
    out = processing.resample(ts, 100.0)
    np.testing.assert_allclose(out.channel("mix")[20:-20], out.channel("slow")[20:-20], atol=0.02)


def test_merge_and_mass():
    t = np.arange(5.0)
    a = TimeSeries(t, np.ones(5), ["hip_flexion_r_moment"], ["N·m"], 1.0)
    b = TimeSeries(t, np.full(5, 2.0), ["knee_angle_r"], ["deg"], 1.0)
    merged = processing.merge([a, b])
    out = processing.divide_by_mass(merged, 50.0, {"hip_flexion_r_moment": "moment", "knee_angle_r": "angle"})
    assert out.units == ["N·m/kg", "deg"]
    np.testing.assert_allclose(out.data[:, 0], 0.02)
    np.testing.assert_allclose(out.data[:, 1], 2.0)
    with pytest.raises(ValueError):
        processing.merge([a, TimeSeries(np.arange(4.0), np.ones(4), ["x"], ["m"], 1.0)])


def test_walking_frame_is_a_rotation_with_x_along_travel():
    travel = np.column_stack([np.zeros(50), np.linspace(0, -3, 50), np.full(50, 0.9)])  # walking along -y
    rot = processing.walking_frame(travel, vertical_axis=2)
    np.testing.assert_allclose(rot @ rot.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(rot) == pytest.approx(1.0)
    np.testing.assert_allclose(rot @ np.array([0, -1.0, 0]), [1, 0, 0], atol=1e-12)
    np.testing.assert_allclose(rot @ np.array([0, 0, 1.0]), [0, 1, 0], atol=1e-12)
