"""gait benchmark: the protocol's splits, resuming after a kill, the report and its figures.

Runs on real ingested data (WBDS and biomechZoo, from the ``tiny_models`` fixture) with tiny
models and a few epochs: the protocol, not the accuracy, is under test here.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from gaitcli.cli.main import app
from gaitcli.eval.stats import holm
from gaitcli.train.benchmark import BenchmarkConfig, group_kfold, parse_fractions, plan

TINY = ["--set", "transformer.d_model=16", "--set", "transformer.n_heads=2", "--set", "transformer.n_layers=1",
        "--set", "transformer.d_ff=32", "--set", "lstm.hidden_size=16", "--set", "lstm.num_layers=1"]
TINY_OVERRIDES = {"transformer": {"d_model": 16, "n_heads": 2, "n_layers": 1, "d_ff": 32},
                  "lstm": {"hidden_size": 16, "num_layers": 1}}


def _args(data: Path, out: Path, *extra: str) -> list[str]:
    return ["benchmark", str(data), "-o", str(out), "--models", "transformer,lstm", "--folds", "2",
            "--epochs", "2", "--label-fractions", "0.5,1", "--device", "cpu", "-q", *TINY, *extra]


def test_group_kfold_keeps_each_subject_in_one_fold():
    subjects = [f"S{i}" for i in range(11)]
    sizes = {s: 1 + i % 4 for i, s in enumerate(subjects)}
    folds = group_kfold(subjects, sizes, 5, seed=0)
    assert len(folds) == 5
    flat = [s for fold in folds for s in fold]
    assert sorted(flat) == sorted(subjects) and len(flat) == len(set(flat))
    loads = [sum(sizes[s] for s in fold) for fold in folds]
    assert max(loads) - min(loads) <= max(sizes.values())
    assert len(group_kfold(subjects[:3], sizes, 5, seed=0)) == 3  # k shrinks to the subjects there are


def test_parse_fractions():
    assert parse_fractions("0.05,0.1,1") == [0.05, 0.1, 1.0]
    assert parse_fractions("linear:4") == [0.25, 0.5, 0.75, 1.0]
    log = parse_fractions("log:0.01:3")
    assert log == pytest.approx([0.01, 0.1, 1.0])
    from gaitcli.errors import UsageError

    for bad in ("0", "1.5", "x", "log:0.1"):
        with pytest.raises(UsageError):
            parse_fractions(bad)


def test_no_subject_appears_in_two_splits(tiny_models):
    cfg = BenchmarkConfig(models=["transformer", "lstm"], folds=3, label_fractions=[0.2, 0.5, 1.0],
                          seeds=[0, 1], pretrain=["transformer"])
    bench = plan([tiny_models["data"]], cfg)
    assert set(bench.test).isdisjoint(bench.pool)
    assert sorted(bench.test + bench.pool) == bench.labelled_subjects
    assert len(bench.test) == round(0.2 * len(bench.labelled_subjects))
    for run in bench.runs:
        train, val, test = set(run.train), set(run.val), set(run.test)
        assert train and test == set(bench.test)
        assert train.isdisjoint(val) and train.isdisjoint(test) and val.isdisjoint(test), run.run_id
    # the folds of one subset partition it; smaller label fractions are subsets of larger ones
    finals = {(r.model, r.variant, r.fraction, r.seed): r for r in bench.stage("final")}
    for (model, variant, fraction, seed), final in finals.items():
        folds = [r for r in bench.stage("cv") if (r.model, r.variant, r.fraction, r.seed) == (model, variant, fraction, seed)]
        assert sorted(s for r in folds for s in r.val) == sorted(final.train)
        if fraction < 1.0:
            assert set(final.train) <= set(finals[(model, variant, 1.0, seed)].train)
    # the same test subjects for every seed, so that per-subject results pair up
    assert len({tuple(r.test) for r in bench.runs}) == 1


def _results(out: Path) -> dict[str, dict]:
    return {str(p.relative_to(out)): json.loads(p.read_text()) for p in sorted((out / "runs").rglob("result.json"))}


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "gaitcli.cli.main", *args]


def test_killed_benchmark_resumes_without_redoing_runs(tiny_models, tmp_path):
    data = tiny_models["data"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    reference = subprocess.run(_cli(*_args(data, tmp_path / "whole")), env=env, capture_output=True, text=True)
    assert reference.returncode == 0, reference.stderr

    out = tmp_path / "killed"
    process = subprocess.Popen(_cli(*_args(data, out)), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list((out / "runs").rglob("result.json"))) < 2:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    before = _results(out)
    assert 2 <= len(before) < 12, "the kill should land mid-way"
    stamps = {k: (out / k).stat().st_mtime_ns for k in before}

    resumed = subprocess.run(_cli(*[a for a in _args(data, out) if a != "-q"]), env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stderr.count("] reused ") == len(before)
    assert resumed.stderr.count("] done ") == 12 - len(before)
    assert f"{12 - len(before)} runs trained, {len(before)} reused" in resumed.stderr
    after = _results(out)
    assert len(after) == 12
    for key in before:
        assert after[key] == before[key] and (out / key).stat().st_mtime_ns == stamps[key]
    whole = pd.read_csv(tmp_path / "whole" / "metrics.csv")
    again = pd.read_csv(out / "metrics.csv")
    pd.testing.assert_frame_equal(whole, again)
    assert (tmp_path / "whole" / "statistics.csv").read_text() == (out / "statistics.csv").read_text()


@pytest.fixture(scope="module")
def finished(tiny_models, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bench") / "results"
    result = CliRunner().invoke(app, _args(tiny_models["data"], out, "--pretrain", "transformer",
                                           "--pretrain-epochs", "2"))
    assert result.exit_code == 0, result.output
    return out


def test_results_folder_holds_config_splits_metrics_and_report(finished, tiny_models):
    config = json.loads((finished / "config.json").read_text())
    assert len(config["hash"]) == 16 and config["config"]["folds"] == 2
    splits = json.loads((finished / "splits.json").read_text())
    assert set(splits["test"]).isdisjoint(splits["pool"])
    assert len(splits["runs"]) == 1 + 3 * 2 * 3  # pretraining, then (2 folds + 1 final) per variant and fraction
    metrics = pd.read_parquet(finished / "metrics.parquet")
    assert set(metrics["label"]) == {"transformer", "lstm", "transformer+ssl"}
    assert set(metrics["subject"]) == set(splits["test"])
    assert set(metrics["fraction"]) == {0.5, 1.0}
    rmse = metrics[metrics.metric == "rmse"]["value"]
    assert np.isfinite(rmse).all() and (rmse > 0).all()
    runs = pd.read_csv(finished / "runs.csv")
    finals = runs[runs.stage == "final"]
    assert (finals["retrain_epochs"] >= 1).all() and (finals["retrain_epochs"] <= 2).all()
    report = (finished / "report.md").read_text()
    for heading in ("## Test-set results", "### Pairwise comparisons", "## Data efficiency", "SSL fine-tuned vs"):
        assert heading in report
    for subject in splits["test"]:
        assert subject in report


def test_statistics_are_holm_corrected_wilcoxon_on_subjects(finished):
    from scipy.stats import wilcoxon

    stats = pd.read_csv(finished / "statistics.csv")
    metrics = pd.read_parquet(finished / "metrics.parquet")
    rmse = metrics[(metrics.metric == "rmse") & (metrics.fraction == 1.0)]
    per_subject = rmse.groupby(["label", "subject"])["value"].mean().unstack("label")
    table = stats[stats.metric == "rmse"]
    assert len(table) == 3
    for row in table.itertuples():
        assert row.p == pytest.approx(wilcoxon(per_subject[row.a], per_subject[row.b]).pvalue)
    assert table["p_holm"].to_numpy() == pytest.approx(holm(table["p"].to_numpy()))


def test_figures_are_written_and_not_empty(finished):
    image = pytest.importorskip("matplotlib.image")
    figures = sorted((finished / "figures").glob("*.png"))
    assert [f.name for f in figures] == ["data_efficiency.png", "subjects_rmse.png", "waveforms.png"]
    for figure in figures:
        assert figure.stat().st_size > 10_000
        pixels = image.imread(figure)
        assert pixels.shape[0] > 300 and pixels.shape[1] > 300 and pixels.std() > 0.05
        assert f"figures/{figure.name}" in (finished / "report.md").read_text()


def test_report_without_matplotlib_says_so(finished, tiny_models, monkeypatch):
    from gaitcli.eval import plots
    from gaitcli.train.benchmark import report_only

    copy = finished.parent / "no-plots"
    import shutil

    shutil.copytree(finished, copy)
    shutil.rmtree(copy / "figures")
    monkeypatch.setattr(plots, "matplotlib_available", lambda: False)
    cfg = BenchmarkConfig(models=["transformer", "lstm"], folds=2, epochs=2, label_fractions=[0.5, 1.0],
                          pretrain=["transformer"], pretrain_epochs=2, device="cpu", model_overrides=TINY_OVERRIDES)
    report_only([tiny_models["data"]], copy, cfg)
    text = (copy / "report.md").read_text()
    assert "matplotlib is not installed" in text and not (copy / "figures").exists()


def test_dry_run_prints_the_plan_and_trains_nothing(tiny_models, tmp_path):
    result = CliRunner().invoke(app, _args(tiny_models["data"], tmp_path / "plan", "--dry-run", "--json"))
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["runs"] == 12 and summary["stages"] == {"pretrain": 0, "cv": 8, "final": 4}
    assert summary["estimate"]["upper_bound_s"] > 0
    assert not (tmp_path / "plan" / "runs").exists()


@pytest.mark.parametrize("extra, message", [
    (["--models", "transformer,gru"], "unknown model"),
    (["--label-fractions", "0,1"], "--label-fractions"),
    (["--pretrain", "mamba"], "--pretrain"),
    (["--set", "width=3"], "MODEL.KEY=VALUE"),
])
def test_bad_options_are_one_line_usage_errors(tiny_models, tmp_path, extra, message):
    result = CliRunner().invoke(app, _args(tiny_models["data"], tmp_path / "x", *extra))
    assert result.exit_code == 2
    assert message in result.output and len(result.output.strip().splitlines()) == 1


def test_windows_unit_scores_continuous_test_trials(tiny_models, tmp_path):
    from gaitcli.train.benchmark import run_benchmark

    cfg = BenchmarkConfig(models=["transformer"], unit="windows", window=32, stride=16, folds=2, epochs=1,
                          device="cpu", model_overrides=TINY_OVERRIDES)
    bench, written = run_benchmark([tiny_models["data"]], tmp_path / "w", cfg)
    predictions = pd.read_parquet(tmp_path / "w" / "runs" / "final" / "transformer-scratch-f1.000-s0" / "predictions.parquet")
    assert "time" in predictions and set(predictions["subject"]) == set(bench.test)
    metrics = pd.read_parquet(tmp_path / "w" / "metrics.parquet")
    assert set(metrics["subject"]) == set(bench.test) and np.isfinite(metrics.query("metric == 'rmse'")["value"]).all()
    assert (tmp_path / "w" / "report.md").exists()


def test_waveforms_cut_each_sided_channel_at_its_own_cycles(finished):
    from gaitcli.eval.report import _waveform_rows

    frame = pd.read_parquet(finished / "runs" / "final" / "transformer-scratch-f1.000-s0" / "predictions.parquet")
    waves = _waveform_rows(frame, ["knee_angle_r_moment", "knee_angle_l_moment"], "transformer", [])
    for channel, side in (("knee_angle_r_moment", "r"), ("knee_angle_l_moment", "l")):
        ids = waves.loc[waves.channel == channel, "cycle_id"]
        assert len(ids) and ids.str.contains(f"/{side}/").all()
    assert len(waves) == len(frame)  # every cycle once, under the channels of its side
