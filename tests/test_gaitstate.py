"""Gait state (GaitDynamics windows): rotations, round trips on real trials, heading, force validity."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import REAL
from gaitcli.data import gaitstate as gs
from gaitcli.data.windows import TrialData, load_trials

HAMNER = REAL / "opensim-models/Hamner_running"


@pytest.fixture(scope="module")
def running(tmp_path_factory) -> TrialData:
    from gaitcli.data.ingest import ingest

    out = tmp_path_factory.mktemp("hamner")
    ingest([HAMNER], out)
    return next(t for t in load_trials([out]) if t.trial == "subject02_running")


@pytest.fixture(scope="module")
def zoo(tmp_path_factory) -> list[TrialData]:
    from gaitcli.data.ingest import ingest

    out = tmp_path_factory.mktemp("zoo")
    ingest([REAL / "biomechZoo-sample-study/Straight"], out)
    return [t for t in load_trials([out]) if not t.tiled]


def test_euler_zxy_and_6d_round_trip():
    rng = np.random.default_rng(0)
    z, x, y = rng.uniform(-3, 3, 200), rng.uniform(-1.5, 1.5, 200), rng.uniform(-3, 3, 200)
    rot = gs.rotation_zxy(z, x, y)
    assert np.allclose(rot @ np.swapaxes(rot, -1, -2), np.eye(3), atol=1e-12)
    assert np.allclose(np.stack(gs.euler_zxy(rot)), np.stack([z, x, y]), atol=1e-9)
    six = gs.to_6d(rot)
    assert six.shape == (200, 6)
    assert np.allclose(gs.from_6d(six), rot, atol=1e-12)
    # a perturbed 6D vector still maps to a proper rotation
    noisy = gs.from_6d(six + rng.normal(0, 0.05, six.shape))
    assert np.allclose(np.linalg.det(noisy), 1.0)


def test_state_layout():
    assert len(gs.STATE_CHANNELS) == len(set(gs.STATE_CHANNELS)) == 57
    assert gs.STATE_CHANNELS[-len(gs.FORCE_CHANNELS):] == gs.FORCE_CHANNELS
    assert gs.group_channels("knees") == ["knee_angle_r", "knee_angle_l", "knee_angle_r_vel", "knee_angle_l_vel"]
    assert set(gs.group_channels("pelvis")) >= set(gs.VELOCITY)
    assert not set(gs.group_channels("hips")) & set(gs.VELOCITY)
    with pytest.raises(Exception, match="unknown joint group"):
        gs.group_channels("elbows")


def test_real_running_trial_round_trips(running):
    state = gs.trial_state(running)
    assert state.values.shape == (len(running.time), 57)
    assert np.isfinite(state.values).all()  # Hamner: every coordinate and both plates
    back = gs.state_coordinates(state)
    for c in gs.COORDINATES:
        assert np.max(np.abs(back[c] - running.values[c])) < 1e-8, c
    for c in gs.TRANSLATIONS:  # integrated velocities: trapezoid vs central differences
        assert np.max(np.abs(back[c] - running.values[c])) < 5e-3, c
    feet = gs.state_feet(state)
    for side in "rl":
        force = np.column_stack([running.values[f"ground_force_{side}_v{a}"] for a in "xyz"])
        assert np.allclose(feet[side]["force"], force, atol=1e-9)
        cop = np.column_stack([running.values[f"ground_force_{side}_p{a}"] for a in "xz"])
        loaded = np.isfinite(feet[side]["cop"][:, 0])
        assert loaded.mean() > 0.25
        assert np.max(np.abs(feet[side]["cop"][loaded][:, [0, 2]] - cop[loaded])) < 2e-3


def test_heading_is_removed(running):
    """Turning the whole trial 90° about vertical leaves its gait state unchanged."""
    turned = TrialData(**{**running.__dict__, "values": dict(running.values)})
    v = turned.values
    turn = np.radians(90.0)
    pelvis = gs.rotation_zxy(*(np.radians(running.values[c]) for c in ("pelvis_tilt", "pelvis_list", "pelvis_rotation")))
    turned_pelvis = gs.rotation_zxy(np.zeros(1), np.zeros(1), np.array([turn]))[0] @ pelvis
    for c, angle in zip(("pelvis_tilt", "pelvis_list", "pelvis_rotation"), gs.euler_zxy(turned_pelvis)):
        v[c] = np.degrees(angle)

    def rotate(x, z):  # the ground frame turned about +y
        return np.cos(turn) * x + np.sin(turn) * z, -np.sin(turn) * x + np.cos(turn) * z

    v["pelvis_tx"], v["pelvis_tz"] = rotate(running.values["pelvis_tx"], running.values["pelvis_tz"])
    for side in "rl":
        for a, b in (("vx", "vz"), ("px", "pz")):
            x, z = f"ground_force_{side}_{a}", f"ground_force_{side}_{b}"
            v[x], v[z] = rotate(running.values[x], running.values[z])
    a, b = gs.trial_state(running), gs.trial_state(turned)
    assert abs(b.heading - a.heading - turn) < 1e-6
    assert np.allclose(a.values, b.values, atol=1e-6)


def test_stance_off_the_plates_is_unknown_not_zero(zoo):
    """biomechZoo walkways have 2 plates: a stance elsewhere has zero force in the file, which
    must become unknown; swing zeros and plate stances stay."""
    masked = 0
    for trial in zoo:
        state = gs.trial_state(trial)
        for side in "rl":
            fy_file = trial.values[f"ground_force_{side}_vy"]
            fy = state.channel(f"grf_{side}_vy")
            unknown = ~np.isfinite(fy)
            masked += unknown.sum()
            assert np.all(np.abs(fy_file[unknown]) < gs.LOADED_N_PER_KG)  # only unloaded samples are doubted
            assert np.allclose(fy[~unknown], fy_file[~unknown])
    assert masked > 100


def test_short_trials_are_reported(running):
    short = TrialData(**{**running.__dict__, "time": running.time[:100],
                         "values": {k: v[:100] for k, v in running.values.items()}, "trial": "short"})
    windows = gs.state_windows([gs.trial_state(short), gs.trial_state(running)], stride=50)
    assert windows.too_short == ["short: 100 samples, a window needs 150"]
    assert len(windows) == len(range(0, len(running.time) - 150 + 1, 50)) + 1
    assert windows.values.shape[1:] == (150, 57)


def test_minmax_scales_training_range_to_unit_interval(running):
    values = gs.trial_state(running).values
    norm = gs.MinMax.fit(gs.STATE_CHANNELS, values)
    scaled = norm.apply(values)
    assert np.allclose(np.nanmin(scaled, axis=0), -1) and np.allclose(np.nanmax(scaled, axis=0), 1)
    assert np.allclose(norm.invert(scaled), values)
    assert gs.MinMax.from_dict(norm.to_dict()) == norm


def test_missing_height_is_assumed_and_said(running):
    state = gs.trial_state(running)
    assert state.height_m == gs.ASSUMED_HEIGHT_M
    assert any("height unknown" in n for n in state.notes)
    taller = gs.trial_state(running, height_m=2 * gs.ASSUMED_HEIGHT_M)
    assert np.allclose(taller.channel("pelvis_vx"), state.channel("pelvis_vx") / 2)
