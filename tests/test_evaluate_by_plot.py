"""gait evaluate --by subject|condition|<column> and --plot; cycle_waveforms on real ingest data."""

from __future__ import annotations

import json
import sys

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from gaitcli.cli.main import app
from gaitcli.errors import DataError
from gaitcli.eval.evaluate import channel_side, cycle_waveforms, evaluate_model

runner = CliRunner()
METRIC_COLUMNS = ["rmse", "mae", "r2", "pearson_r", "rrmse", "peak_error"]


def _recorded_and_one_tiled(data) -> list[str]:
    """The subject folders of recorded (C3D) trials, plus one WBDS subject known only by mean cycles."""
    return [str(p) for p in sorted(data.glob("HC*"))] + [str(data / "WBDS01")]


@pytest.fixture(scope="module")
def evaluation(tiny_models):
    """The windows-unit fine-tuned model on real data: recorded trials and one tiled trial."""
    return evaluate_model(tiny_models["finetuned"], _recorded_and_one_tiled(tiny_models["data"]), by="subject")


def _tsv(stdout: str) -> pd.DataFrame:
    lines = [line.split("\t") for line in stdout.strip().splitlines()]
    return pd.DataFrame(lines[1:], columns=lines[0])


def _evaluate(tiny_models, *args: str):
    return runner.invoke(app, ["evaluate", str(tiny_models["finetuned"]), str(tiny_models["data"]), *args])


def test_by_subject_one_row_per_subject_and_channel(tiny_models):
    from gaitcli.eval.evaluate import evaluate

    result = _evaluate(tiny_models, "--split", "test", "--by", "subject")
    assert result.exit_code == 0, result.stderr
    table = _tsv(result.stdout)
    library = evaluate(tiny_models["finetuned"], [tiny_models["data"]], "test")
    subjects, channels = sorted(library.per_group["subject"].unique()), library.channels
    assert list(table.columns) == ["subject", "channel", *METRIC_COLUMNS]
    assert len(table) == len(subjects) * len(channels) == len(set(zip(table.subject, table.channel)))
    assert list(table["subject"]) == sorted(table["subject"]), "sorted by subject"
    expected = library.per_group.query("metric == 'rmse'").set_index(["subject", "channel"])["value"]
    got = table.set_index(["subject", "channel"])["rmse"].astype(float)
    np.testing.assert_allclose(got.loc[expected.index], expected, rtol=1e-5)


def test_by_condition_is_a_stratified_summary(tiny_models):
    result = _evaluate(tiny_models, "--split", "test", "--by", "condition")
    assert result.exit_code == 0, result.stderr
    table = _tsv(result.stdout)
    assert list(table.columns) == ["condition", "channel", "metric", "mean", "sd", "n_subjects"]
    assert len(table) == table["condition"].nunique() * 6 * 7  # strata x channels x metrics
    as_json = json.loads(_evaluate(tiny_models, "--split", "test", "--by", "condition", "--json").stdout)
    assert as_json["by"] == ["condition"] and all("condition" in row for row in as_json["summary"])


def test_by_other_metadata_column(tiny_models):
    result = _evaluate(tiny_models, "--split", "test", "--by", "tiled")
    assert result.exit_code == 0, result.stderr
    assert set(_tsv(result.stdout)["tiled"]) <= {"True", "False"}


def test_unknown_by_column_is_a_usage_error(tiny_models):
    result = _evaluate(tiny_models, "--split", "test", "--by", "weather")
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "weather" in lines[0]
    assert "condition" in lines[0] and "subject" in lines[0], "the message lists what --by accepts"


def test_plot_writes_a_waveform_png(tiny_models, tmp_path):
    pytest.importorskip("matplotlib")
    from matplotlib.image import imread

    out = tmp_path / "waves.png"
    data = _recorded_and_one_tiled(tiny_models["data"])
    result = runner.invoke(app, ["evaluate", str(tiny_models["finetuned"]), *data, "--plot", str(out)])
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("channel\tmetric"), "the table is still printed"
    assert out.is_file() and out.stat().st_size > 10_000 and str(out) in result.stderr
    pixels = imread(out)
    assert pixels.ndim == 3 and min(pixels.shape[:2]) > 300 and float(pixels[..., :3].std()) > 0


def test_plot_without_matplotlib_is_one_line_and_exit_1(tiny_models, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    result = _evaluate(tiny_models, "--split", "test", "--plot", str(tmp_path / "w.png"))
    assert result.exit_code == 1
    assert result.stdout.startswith("channel\tmetric"), "the other output is still printed"
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: matplotlib is not installed")
    assert not (tmp_path / "w.png").exists()


def test_cycle_waveforms_reference_matches_ingest_cycle_tables(evaluation, tiny_models):
    """Cutting the continuous reference at the cycle times must give back what ingest wrote
    into the cycle tables (both interpolate the same samples at the same times)."""
    waves = evaluation.waveforms()
    assert list(waves.columns[:3]) == ["model", "channel", "subject"] and set(waves.model) == {"transformer"}
    recorded = sorted(evaluation.frame.loc[~evaluation.frame.tiled, "subject"].unique())
    assert sorted(waves["subject"].unique()) == recorded, "every recorded trial, no tiled (WBDS) one"
    assert all(side == channel_side(channel) for channel, side in zip(waves.channel, waves.side))
    tables = pd.concat([pd.read_parquet(p) for p in sorted(tiny_models["data"].rglob("*.cycles.parquet"))])
    tables["cycle_id"] = (tables["subject"].astype(str) + "/" + tables["trial"].astype(str) + "/"
                          + tables["side"].astype(str) + "/" + tables["cycle"].astype(str))
    checked = 0
    for channel, rows in waves.groupby("channel"):
        merged = rows.merge(tables[["cycle_id", "percent", channel]], on=["cycle_id", "percent"], how="left")
        assert len(merged) == len(rows) and merged[channel].notna().any()
        np.testing.assert_array_equal(merged["reference"].isna(), merged[channel].isna())
        np.testing.assert_allclose(merged["reference"], merged[channel], atol=1e-6, equal_nan=True)
        checked += int(merged[channel].notna().sum())
    assert checked > 2000
    assert waves["predicted"].notna().mean() > 0.95


def test_cycle_waveforms_without_recorded_cycles_names_the_data(evaluation, tiny_models):
    tiled_only = evaluation.frame[evaluation.frame.tiled]
    assert len(tiled_only)
    with pytest.raises(DataError, match="WBDS01") as caught:
        cycle_waveforms(tiled_only, evaluation.data, evaluation.targets)
    assert "\n" not in str(caught.value)


def test_cycle_waveforms_of_a_cycle_model_frame_keeps_each_side():
    """A cycles-unit frame: a right channel over right cycles only, a left one over left cycles."""
    percent = np.linspace(0, 100, 5)
    frame = pd.concat([pd.DataFrame({"subject": "S1", "trial": f"walk/{side}", "cycle": 0, "percent": percent,
                                     "knee_angle_r_moment": 1.0, "knee_angle_r_moment_pred": 1.5,
                                     "knee_angle_l_moment": 2.0, "knee_angle_l_moment_pred": 2.5})
                       for side in "rl"], ignore_index=True)
    waves = cycle_waveforms(frame, [], ["knee_angle_r_moment", "knee_angle_l_moment"], model="m")
    assert len(waves) == 10
    right = waves[waves.channel == "knee_angle_r_moment"]
    assert set(right.side) == {"r"} and set(right.trial) == {"walk"} and set(right.reference) == {1.0}
    assert set(waves.loc[waves.channel == "knee_angle_l_moment", "cycle_id"]) == {"S1/walk/l/0"}


def test_subject_boxes_from_real_per_subject_metrics(evaluation, tmp_path):
    pytest.importorskip("matplotlib")
    from gaitcli.eval.plots import plot_subject_boxes

    table = evaluation.table().assign(model=evaluation.model_label)
    assert len(table) == table["subject"].nunique() * len(evaluation.targets)
    path = plot_subject_boxes(table, tmp_path / "subjects.png", "rmse", "N·m/kg")
    assert path.stat().st_size > 10_000
