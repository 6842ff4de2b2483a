"""Forward kinematics with OpenSim on the real Gait2354 subject01 model and its IK results."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import REAL
from gaitcli.errors import DataError

GAIT2354 = REAL / "opensim-models" / "Gait2354_Simbody"
MODEL = GAIT2354 / "OutputReference" / "subject01_simbody.osim"  # flexion-negative knee
RAJAGOPAL = REAL / "opensim-models" / "models" / "Rajagopal2016.osim"  # flexion-positive knee
IK = GAIT2354 / "subject01_walk1_ik.mot"

pytestmark = pytest.mark.skipif(not MODEL.is_file(), reason="real data corpus not present")


@pytest.fixture(scope="module", autouse=True)
def opensim():
    return pytest.importorskip("opensim")


def ik_coordinates(path: Path = IK) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The IK table as gait reads it: canonical names and units, knee flexion positive."""
    from gaitcli.data import naming
    from gaitcli.io.opensim_files import read_opensim

    table = read_opensim(path).series["table"]
    canonical, _ = naming.opensim_canonical(table, naming.knee_convention(table.channel("knee_angle_r")))
    return canonical.time, {name: canonical.channel(name) for name in canonical.channels}


@pytest.fixture(scope="module")
def walk() -> dict[str, np.ndarray]:
    from gaitcli.io.osim_fk import frame_positions

    time, coordinates = ik_coordinates()
    positions = frame_positions(MODEL, time, coordinates, ["hip_r", "knee_r", "ankle_r", "calcn_r", "calcn_l"])
    positions["knee_flexion_r"] = coordinates["knee_angle_r"]
    return positions


def test_says_which_coordinates_it_used(walk) -> None:
    _, coordinates = ik_coordinates()
    assert walk.coordinates_used == list(coordinates)  # the model has every coordinate gait read
    assert {"pelvis_ty", "hip_adduction_r", "knee_angle_r", "knee_angle_l"} <= set(coordinates)
    assert walk.knee_flipped == ["knee_angle_r", "knee_angle_l"]


def test_knee_lies_a_thigh_length_below_the_hip(walk) -> None:
    thigh = np.linalg.norm(walk["hip_r"] - walk["knee_r"], axis=1)
    assert np.all((thigh > 0.35) & (thigh < 0.5))
    drop = walk["hip_r"][:, 1] - walk["knee_r"][:, 1]
    assert np.all((drop > 0.35) & (drop < 0.5))


def test_heel_is_near_the_ground_in_stance(walk) -> None:
    """The calcaneus origin (back of the heel) comes down to a few cm above the plates
    (their COP height is -0.0075 m), never below them."""
    for side in ("r", "l"):
        height = walk[f"calcn_{side}"][:, 1]
        assert 0.0 < height.min() < 0.08
        assert height.max() > 0.15  # and lifts in swing


def test_flexing_the_knee_brings_ankle_and_hip_together(walk) -> None:
    """Knee flexion positive after the flip: hip-ankle distance falls as the knee flexes."""
    reach = np.linalg.norm(walk["hip_r"] - walk["ankle_r"], axis=1)
    flexion = walk["knee_flexion_r"]
    assert flexion.max() > 50 and np.corrcoef(flexion, reach)[0, 1] < -0.9


@pytest.mark.parametrize("model, knee_joint", [(MODEL, "knee_r"), (RAJAGOPAL, "walker_knee_r")],
                         ids=["gait2354", "rajagopal"])
def test_positive_flexion_bends_the_knee_backwards_in_both_model_families(model: Path, knee_joint: str) -> None:
    from gaitcli.io.osim_fk import frame_positions

    flexion = np.array([0.0, 60.0])
    positions = frame_positions(model, np.zeros(2), {"knee_angle_r": flexion, "not_a_coordinate": flexion},
                                [knee_joint, "ankle_r"])
    assert positions.coordinates_used == ["knee_angle_r"]
    assert positions.knee_flipped == (["knee_angle_r"] if model == MODEL else [])
    shank = positions["ankle_r"] - positions[knee_joint]
    assert shank[0, 0] == pytest.approx(0.0, abs=0.03)  # straight leg: ankle under the knee
    assert shank[1, 0] < -0.25  # flexed: the ankle swings behind the knee (x forward)


def test_locked_coordinate_is_unlocked(opensim, tmp_path: Path) -> None:
    from gaitcli.io.osim_fk import frame_positions

    model = opensim.Model(str(MODEL))
    model.getCoordinateSet().get("knee_angle_r").set_locked(True)
    model.printToXML(str(tmp_path / "locked.osim"))
    args = (np.zeros(2), {"knee_angle_r": np.array([0.0, 60.0])}, ["ankle_r"])
    locked = frame_positions(tmp_path / "locked.osim", *args)["ankle_r"]
    np.testing.assert_allclose(locked, frame_positions(MODEL, *args)["ankle_r"], atol=1e-9)


def test_nan_coordinate_gives_nan_positions() -> None:
    from gaitcli.io.osim_fk import frame_positions

    positions = frame_positions(MODEL, np.zeros(3), {"knee_angle_r": np.array([0.0, np.nan, 10.0])}, ["ankle_r"])
    assert np.isnan(positions["ankle_r"][1]).all() and np.isfinite(positions["ankle_r"][[0, 2]]).all()


def test_bad_model_or_frame_is_a_data_error(tmp_path: Path) -> None:
    from gaitcli.io.osim_fk import frame_positions

    with pytest.raises(DataError, match="no body or joint named 'knee_x'") as info:
        frame_positions(MODEL, np.zeros(1), {}, ["knee_x"])
    assert str(MODEL) in str(info.value)
    broken = tmp_path / "broken.osim"
    broken.write_text("<OpenSimDocument><Model name='x'><BodySet>")
    with pytest.raises(DataError, match="broken.osim: OpenSim could not load the model") as info:
        frame_positions(broken, np.zeros(1), {}, ["knee_r"])
    assert "\n" not in str(info.value)
    with pytest.raises(DataError, match="no such model file"):
        frame_positions(tmp_path / "missing.osim", np.zeros(1), {}, ["knee_r"])
