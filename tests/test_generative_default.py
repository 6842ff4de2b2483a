"""The shipped GaitDynamics pair: size, licences, and what it does on real files it never saw."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import REAL
from gaitcli.cli.main import app
from gaitcli.data import gaitstate as gs
from gaitcli.models import gaitdynamics as gd
from gaitcli.models.checkpoint import read_checkpoint_metadata

DIFFUSION, REFINER = gd.default_paths()
OPENCAP = REAL / "opencap-processing/walking1_videoAndMocap.mot"  # not in the pair's training data
HAMNER = REAL / "opensim-models/Hamner_running/subject02_running_ik.mot"
runner = CliRunner()
KNEE_RMSE_DEG = 15.0  # measured 9.3 (seeds 0-2: 9.2-9.4); median filling 22.4


def test_shipped_pair_is_small_and_trained_on_permissive_data_only():
    assert DIFFUSION.stat().st_size + REFINER.stat().st_size < 20e6
    for path in (DIFFUSION, REFINER):
        meta = read_checkpoint_metadata(path)
        assert meta["kind"] == "gait-state"
        seen = " ".join(meta["trials"] + meta["split"]["train"] + meta["split"]["val"]).lower()
        for forbidden in ("walknorm", "np10", "geneva", "qualisys", "bts"):
            assert forbidden not in seen, forbidden
    assert read_checkpoint_metadata(DIFFUSION)["split"] == read_checkpoint_metadata(REFINER)["split"]


@pytest.fixture(scope="module")
def engine() -> gd.GaitDynamics:
    return gd.GaitDynamics(DIFFUSION, REFINER)


def _knees_removed(path):
    trial = gd.read_trial(path)
    truth = {c: trial.values.pop(c) for c in ("knee_angle_r", "knee_angle_l")}
    return trial, truth


def test_inpainted_knees_of_an_unseen_walk_have_the_right_shape(engine):
    """OpenCap's walking (another lab, another pipeline) with both knees removed: the inpainted
    knee angles follow the removed truth far better than median filling."""
    trial, truth = _knees_removed(OPENCAP)
    state = gs.trial_state(trial)
    errors = {}
    for method in ("inpaint", "median"):
        coords = gs.state_coordinates(state, engine.fill(state.values, method, steps=50, seed=0))
        errors[method] = np.mean([np.sqrt(np.mean((coords[c] - truth[c]) ** 2)) for c in truth])
        if method == "inpaint":
            r = [np.corrcoef(coords[c], truth[c])[0, 1] for c in truth]
    assert errors["inpaint"] < KNEE_RMSE_DEG, errors
    assert errors["inpaint"] < 0.6 * errors["median"], errors
    assert min(r) > 0.8, r


def test_guidance_moves_trunk_sway_towards_the_target(engine):
    trial = gd.read_trial(HAMNER)
    state = gs.trial_state(trial)
    change = gd.parse_modification("lumbar_bending*2.5")
    plain = gs.state_coordinates(state, engine.modify(state, [], steps=20, seed=0))["lumbar_bending"]
    guided = gs.state_coordinates(state, engine.modify(state, [change], steps=20, seed=0))["lumbar_bending"]
    target = change.apply(trial.values["lumbar_bending"])
    # Measured: RMSE to the target 6.87 guided vs 6.96 unguided: the shipped model moves the trunk
    # only a little (the trunk is known in 2 of its training subjects; see the model card).
    assert np.sqrt(np.mean((guided - target) ** 2)) < np.sqrt(np.mean((plain - target) ** 2))


def test_default_grf_of_the_running_trial_is_opensim_readable_and_plausible(tmp_path):
    opensim = pytest.importorskip("opensim")
    out = tmp_path / "out.mot"
    result = runner.invoke(app, ["predict", str(HAMNER), "--grf", "-o", str(out)])
    assert result.exit_code == 0, result.output
    table = opensim.TimeSeriesTable(str(out))
    vy = table.getDependentColumn("ground_force_r_vy").to_numpy() / 65.9 / 9.81  # BW
    assert 1.5 < vy.max() < 3.5  # running: about 2.5 BW
    assert np.mean(vy < 0.1) > 0.3  # a flight/swing phase exists
