"""The model shipped in the package: licence of its data, size, and predict on real files."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from gaitcli.cli.main import app
from gaitcli.models.checkpoint import read_checkpoint_metadata
from gaitcli.models.inference import Predictor, default_model_path

PERMISSIVE_SUBJECT_PREFIXES = ("HC", "WBDS", "subject0", "example3DWalking_Rajagopal", "opencap-processing")


def test_default_model_ships_small_and_self_describing():
    path = default_model_path()
    assert path.is_file() and path.stat().st_size < 10_000_000
    meta = read_checkpoint_metadata(path)
    assert meta["task"] == "finetune" and meta["units"]["knee_angle_r_moment"] == "N·m/kg"
    assert meta["inputs"] == ["hip_flexion_r", "hip_flexion_l", "knee_angle_r", "knee_angle_l",
                              "ankle_angle_r", "ankle_angle_l"]


def test_default_model_saw_only_permissively_licensed_subjects():
    """Geneva (GPL-3.0, NP*), ezc3d files (GPL-3.0) and c3d.org samples never go into shipped weights."""
    meta = read_checkpoint_metadata(default_model_path())
    for subject in meta["data_subjects"]:
        assert subject.startswith(PERMISSIVE_SUBJECT_PREFIXES), subject


@pytest.mark.parametrize("relative", ["opensim-core/ID_test_subject01/subject01_walk1_ik.mot",
                                      "biomechZoo-sample-study/Straight/HC050A11.c3d"])
def test_predict_with_default_model_writes_sto_that_opensim_reads(real, tmp_path, relative):
    import opensim

    out = tmp_path / "moments.sto"
    result = CliRunner().invoke(app, ["predict", str(real / relative), "-o", str(out)])
    assert result.exit_code == 0, result.stderr
    table = opensim.TimeSeriesTable(str(out))
    labels = list(table.getColumnLabels())
    assert {"knee_angle_r_moment", "hip_flexion_l_moment", "ankle_angle_r_moment"} <= set(labels)
    knee = table.getDependentColumn("ankle_angle_r_moment").to_numpy()
    assert np.nanmin(knee) < -0.5, "a walking ankle shows a plantarflexor moment (negative) in late stance"


def test_default_model_predicts_the_shape_of_a_held_out_trial(real):
    """On a biomechZoo child's trial, the predicted ankle moment follows the Plug-in Gait one."""
    from gaitcli.data.ingest import build_trial

    meta = read_checkpoint_metadata(default_model_path())
    held_out = [s for s in meta["split"]["test"] if s.startswith("HC")]
    if not held_out:
        pytest.skip("no biomechZoo subject among the default model's test subjects")
    path = next((real / "biomechZoo-sample-study/Straight").glob(f"{held_out[0]}*.c3d"))
    prediction = Predictor().predict(path, joint="ankle", side="r")
    trial = build_trial([path])
    reference = trial.continuous.channel("ankle_angle_r_moment")
    predicted = prediction.values[:, 0]
    ok = np.isfinite(reference) & np.isfinite(predicted)
    assert ok.sum() > 50
    assert np.corrcoef(reference[ok], predicted[ok])[0, 1] > 0.5
