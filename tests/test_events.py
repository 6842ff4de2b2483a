"""Events: hysteresis contacts, force-plate events, kinematic events against force plates."""

from __future__ import annotations

import numpy as np
import pytest

from gaitcli.data import events as ev
from gaitcli.data.ingest import _read, group_trials
from gaitcli.data.timeseries import Event, TimeSeries
from gaitcli.data.trials import TrialOptions, _c3d_parts, _common_grid, _opensim_parts, _Parts


def test_contacts_use_hysteresis_and_ignore_edges():
    t = np.arange(0, 2, 0.01)
    f = np.zeros_like(t)
    f[20:80] = 500.0
    f[50] = 15.0  # dips below the on level but not below the off level: same contact
    f[120:200] = 600.0  # runs to the end of the recording
    found = ev.contacts(t, f, 20.0)
    assert [(round(c.start, 2), round(c.end, 2)) for c in found] == [(0.2, 0.8), (1.2, 1.99)]
    events = ev.forceplate_events(t, {"r": f}, 20.0)
    assert [(e.name, round(e.time, 2)) for e in events] == [("foot_strike", 0.2), ("foot_off", 0.8), ("foot_strike", 1.2)]


def test_short_blips_are_not_contacts():
    t = np.arange(0, 1, 0.001)
    f = np.zeros_like(t)
    f[100:120] = 100.0  # 20 ms
    assert ev.contacts(t, f, 20.0) == []


def test_choose_events_prefers_file_then_plates_then_kinematics():
    file_events = [Event(0.1, "foot_strike", "r"), Event(1.1, "foot_strike", "r"), Event(0.6, "foot_strike", "l")]
    plate = [Event(0.5, "foot_strike", "l", "forceplate"), Event(1.5, "foot_strike", "l", "forceplate")]
    kin = [Event(t, "foot_strike", s, "kinematics") for s in "rl" for t in (0.0, 1.0, 2.0)]
    chosen, used = ev.choose_events({"file": file_events, "forceplate": plate, "kinematics": kin})
    assert used == {"r": "file", "l": "forceplate"}
    assert [e.time for e in chosen if e.side == "l"] == [0.5, 1.5]


def test_stance_mask_between_strike_and_off():
    t = np.arange(0, 2, 0.1)
    events = [Event(0.35, "foot_off", "r"), Event(0.95, "foot_strike", "r"), Event(1.55, "foot_off", "r")]
    mask = ev.stance_mask(t, events, "r")
    assert mask[:4].all() and not mask[4:10].any() and mask[10:16].all() and not mask[16:].any()


def _parts(files):
    group = group_trials(files)[0]
    recs = [_read(f, group) for f in group.files]
    parts, options = _Parts(), TrialOptions()
    for rec in recs:
        if rec.format == "c3d":
            _c3d_parts(rec, options, parts)
    tables = [r for r in recs if r.format in ("mot", "sto")]
    if tables:
        from gaitcli.data.ingest import _slot_sides

        _opensim_parts(tables, parts, _slot_sides(recs))
    continuous = _common_grid(parts.series, options)
    return parts, continuous


def _nearest_offsets(found: list[float], truth: list[float]) -> list[float]:
    return [min(found, key=lambda t: abs(t - x)) - x for x in truth]


WALKS = ["biomechZoo-sample-study/Straight/HC002D06.c3d", "biomechZoo-sample-study/Straight/HC032A03.c3d",
         "biomechZoo-sample-study/Straight/HC050A11.c3d"]


@pytest.mark.parametrize("relative", WALKS)
def test_kinematic_events_agree_with_force_plates(real, relative):
    """Zeni strikes lead plate contact by 30-60 ms in these files; foot offs are within 30 ms."""
    parts, ts = _parts([real / relative])
    grf = {s: ts.channel(f"ground_force_{s}_vy") for s in "rl"}
    per_kg = ts.unit("ground_force_r_vy").endswith("/kg")
    plate = ev.forceplate_events(ts.time, grf, 20.0 / 75.0 if per_kg else 20.0)
    for source in (parts.candidates["kinematics"], ev.kinematic_events_from_angles(ts)):
        for name, low, high in (("foot_strike", -0.08, 0.0), ("foot_off", -0.06, 0.04)):
            for side in "rl":
                truth = [e.time for e in plate if e.side == side and e.name == name]
                found = [e.time for e in source if e.side == side and e.name == name]
                assert truth and found
                for offset in _nearest_offsets(found, truth):
                    assert low <= offset <= high, (relative, side, name, offset)


def test_angle_events_on_opensim_subject01_match_its_grf(real):
    folder = real / "opensim-core/ID_test_subject01"
    _, ts = _parts([folder / "subject01_walk1_ik.mot", folder / "subject01_walk1_grf.mot"])
    grf = {s: ts.channel(f"ground_force_{s}_vy") for s in "rl"}
    plate = [e.time for e in ev.forceplate_events(ts.time, grf, 20.0) if e.name == "foot_strike"]
    kin = [e.time for e in ev.kinematic_events_from_angles(ts) if e.name == "foot_strike"]
    inside = [t for t in plate if ts.time[0] + 0.3 < t < ts.time[-1] - 0.3]
    assert len(inside) >= 3
    assert all(abs(o) <= 0.06 for o in _nearest_offsets(kin, inside))


def test_file_events_of_a_c3d_match_its_force_plates(real):
    parts, ts = _parts([real / "biomechZoo-sample-study/Straight/HC032A03.c3d"])
    file_strikes = [e for e in parts.candidates["file"] if e.name == "foot_strike"]
    plate = ev.forceplate_events(ts.time, {s: ts.channel(f"ground_force_{s}_vy") for s in "rl"}, 20.0 / 75.0)
    for event in file_strikes:
        nearest = min((p for p in plate if p.side == event.side and p.name == "foot_strike"),
                      key=lambda p: abs(p.time - event.time))
        assert abs(nearest.time - event.time) <= 0.02


def test_foot_position_model_is_zero_when_leg_is_vertical():
    assert ev.foot_position_from_angles(np.array([0.0]), np.array([0.0]))[0] == pytest.approx(0.0)
    ahead = ev.foot_position_from_angles(np.array([30.0]), np.array([0.0]))[0]
    assert ahead == pytest.approx(np.sin(np.radians(30)))
    flexed = ev.foot_position_from_angles(np.array([30.0]), np.array([60.0]))[0]
    assert flexed < ahead


def test_kinematic_events_on_synthetic_gait():
    rate = 100.0
    t = np.arange(0, 5, 1 / rate)
    phase = 2 * np.pi * t / 1.1
    hip = 15 + 20 * np.cos(phase)
    knee = 30 - 30 * np.cos(phase + 2.0)
    ts = TimeSeries(t, np.column_stack([hip, knee]), ["hip_flexion_r", "knee_angle_r"], ["deg", "deg"], rate)
    strikes = [e.time for e in ev.kinematic_events_from_angles(ts) if e.name == "foot_strike"]
    assert len(strikes) >= 3
    np.testing.assert_allclose(np.diff(strikes), 1.1, atol=0.02)
