"""External knee adduction moment: a closed-form case and subject01's walk (Gait2354 example)."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import REAL
from gaitcli.errors import DataError
from gaitcli.eval.kam import knee_adduction_moment

MASS, HEIGHT = 70.0, 1.75


@pytest.mark.parametrize("side, medial", [("r", -1.0), ("l", 1.0)])  # medial is -z on the right, +z on the left
def test_vertical_force_medial_to_the_knee_is_adduction(side: str, medial: float) -> None:
    f, d = 700.0, 0.03
    knee = np.array([[0.0, 0.5, 0.1 * -medial]] * 2)
    cop = knee * [1, 0, 1] + [[0.0, 0.0, medial * d], [0.0, 0.0, -medial * d]]  # medial, then lateral
    force = np.array([[0.0, f, 0.0]] * 2)
    kam = knee_adduction_moment(force, cop, knee, side, MASS, HEIGHT)
    expected = 100 * f * d / (MASS * 9.81 * HEIGHT)
    np.testing.assert_allclose(kam, [expected, -expected])


def test_medial_shear_adds_a_lever_arm_of_the_knee_height() -> None:
    """Right foot, COP under the knee, GRF tilted medially (-z): M_x = h * |F_z|."""
    knee, cop = np.array([[0.0, 0.5, 0.1]]), np.array([[0.0, 0.0, 0.1]])
    kam = knee_adduction_moment(np.array([[0.0, 700.0, -40.0]]), cop, knee, "r", MASS, HEIGHT)
    np.testing.assert_allclose(kam, 100 * 0.5 * 40.0 / (MASS * 9.81 * HEIGHT))


def test_unloaded_samples_are_nan() -> None:
    force = np.array([[0.0, 10.0, 0.0], [0.0, 700.0, 0.0], [0.0, 700.0, 0.0], [np.nan] * 3])
    cop = np.array([[0.0, 0.0, 0.1], [0.0, 0.0, 0.1], [np.nan] * 3, [0.0, 0.0, 0.1]])
    kam = knee_adduction_moment(force, cop, np.zeros((4, 3)), "r", MASS, HEIGHT)
    assert np.isnan(kam[[0, 2, 3]]).all() and np.isfinite(kam[1])


def test_bad_arguments_are_data_errors() -> None:
    ok = np.zeros((2, 3))
    with pytest.raises(DataError, match="knee_m must have shape"):
        knee_adduction_moment(ok, ok, np.zeros(2), "r", MASS, HEIGHT)
    with pytest.raises(DataError, match="side"):
        knee_adduction_moment(ok, ok, ok, "right", MASS, HEIGHT)
    with pytest.raises(DataError, match="positive"):
        knee_adduction_moment(ok, ok, ok, "r", 0.0, HEIGHT)


GAIT2354 = REAL / "opensim-models" / "Gait2354_Simbody"
MODEL = GAIT2354 / "OutputReference" / "subject01_simbody.osim"


@pytest.mark.skipif(not MODEL.is_file(), reason="real data corpus not present")
def test_subject01_first_peak_is_in_the_healthy_range() -> None:
    """Knee centres from OpenSim FK of the IK result, GRF from the example's .mot. Subject01's
    height is not published with the example: 1.8 m (the generic gait2354's) is assumed."""
    pytest.importorskip("opensim")
    from test_osim_fk import ik_coordinates

    from gaitcli.data import naming
    from gaitcli.io.opensim_files import model_info, read_opensim
    from gaitcli.io.osim_fk import frame_positions

    time, coordinates = ik_coordinates(GAIT2354 / "subject01_walk1_ik.mot")
    knees = frame_positions(MODEL, time, coordinates, ["knee_r", "knee_l"])
    grf, _ = naming.opensim_canonical(read_opensim(GAIT2354 / "subject01_walk1_grf.mot").series["table"], "unknown")
    inside = (grf.time >= time[0]) & (grf.time <= time[-1])  # IK covers 0.4-1.6 s of the 2.5 s
    t = grf.time[inside]
    mass = model_info(MODEL).mass_kg  # 72.6 kg
    peaks = {}
    for side in ("r", "l"):
        force, cop = (np.column_stack([grf.channel(f"ground_force_{side}_{q}{a}")[inside] for a in "xyz"])
                      for q in "vp")
        knee = np.column_stack([np.interp(t, time, knees[f"knee_{side}"][:, a]) for a in range(3)])
        kam = knee_adduction_moment(force, cop, knee, side, mass, 1.8)
        loaded = np.isfinite(kam)
        strike = t[1:][loaded[1:] & ~loaded[:-1]][0]  # first heel strike inside the IK window
        peaks[side] = np.nanmax(kam[(t >= strike) & (t <= strike + 0.3)])
    print(f"subject01 first-peak KAM: right {peaks['r']:.2f}, left {peaks['l']:.2f} % BW·ht")
    assert all(0.5 < peak < 6.0 for peak in peaks.values())  # healthy walking: about 1-5
    assert 1.0 < peaks["r"] < 2.0 and 2.2 < peaks["l"] < 3.2  # measured: 1.46 and 2.66
