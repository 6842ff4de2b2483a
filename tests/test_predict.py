"""gait predict on real .mot, .c3d and Parquet; OpenSim reads what it writes; evaluate."""

from __future__ import annotations

import numpy as np
import pytest

from gaitcli.errors import DataError, ReadError
from gaitcli.models.inference import Predictor, peak_summary, write_prediction


@pytest.fixture(scope="module")
def predictor(tiny_models):
    return Predictor(tiny_models["finetuned"])


def _read_sto(path):
    import opensim

    table = opensim.TimeSeriesTable(str(path))
    labels = list(table.getColumnLabels())
    return labels, np.array([table.getIndependentColumn()[i] for i in range(table.getNumRows())])


def test_predict_real_mot_writes_opensim_readable_sto(predictor, real, tmp_path):
    source = real / "opensim-core/ID_test_subject01/subject01_walk1_ik.mot"
    prediction = predictor.predict(source, joint="knee")
    assert prediction.channels == ["knee_angle_r_moment", "knee_angle_l_moment"]
    assert prediction.mass_kg == pytest.approx(72.6, abs=0.1)
    covered = np.isfinite(prediction.values).all(axis=1)
    assert covered.mean() > 0.9
    out = tmp_path / "knee.sto"
    write_prediction(prediction, out)
    labels, time = _read_sto(out)
    assert labels[:2] == ["knee_angle_r_moment", "knee_angle_l_moment"]
    assert "knee_angle_r_moment_Nm" in labels and "knee_angle_r_moment_spread" in labels
    np.testing.assert_allclose(time, prediction.time, atol=1e-6)


def test_predict_real_c3d_and_sides(predictor, real, tmp_path):
    prediction = predictor.predict(real / "biomechZoo-sample-study/Straight/HC002D06.c3d", joint="all", side="l")
    assert all(c.endswith("_l_moment") for c in prediction.channels) and len(prediction.channels) == 3
    assert prediction.cycles and peak_summary(prediction)
    for suffix in (".csv", ".parquet", ".sto"):
        write_prediction(prediction, tmp_path / f"out{suffix}")
        assert (tmp_path / f"out{suffix}").stat().st_size > 0


def test_overlapping_windows_merge_by_median_with_spread(predictor, real):
    prediction = predictor.predict(real / "opensim-core/ID_test_subject01/subject01_walk1_ik.mot", stride=4)
    assert np.nanmax(prediction.spread) > 0, "several windows cover each sample"
    assert np.nanmedian(prediction.spread) < np.nanstd(prediction.values)


def test_missing_inputs_and_short_files_are_one_line_errors(predictor, real, tmp_path):
    with pytest.raises(DataError, match="missing input channels"):
        predictor.predict(real / "opensim-models/Gait2354_Simbody/OutputReference/ResultsInverseDynamics/inverse_dynamics.sto")
    with pytest.raises(ReadError):
        predictor.predict(tmp_path / "nope.mot")


def test_predict_on_ingest_parquet(predictor, tiny_models):
    path = next(tiny_models["data"].glob("HC*/HC002D06.continuous.parquet"))
    prediction = predictor.predict(path, joint="ankle")
    assert prediction.channels == ["ankle_angle_r_moment", "ankle_angle_l_moment"]


def test_evaluate_reports_per_subject_and_pooled(tiny_models):
    from gaitcli.eval.evaluate import evaluate

    report = evaluate(tiny_models["finetuned"], [tiny_models["data"]], split="test")
    summary = report.summary
    assert set(summary.channel) == {f"{j}_{s}_moment" for j in ("hip_flexion", "knee_angle", "ankle_angle") for s in "rl"}
    assert {"rmse", "mae", "mse", "r2", "pearson_r", "rrmse", "peak_error"} <= set(summary.metric)
    assert (summary.n_subjects >= 1).all()
    assert not report.pooled.value.isna().all()
