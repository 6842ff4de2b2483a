"""GaitDynamics end to end on real files: training both models, filling, forces, files OpenSim reads."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import REAL
from gaitcli.cli.main import app
from gaitcli.data import gaitstate as gs
from gaitcli.models import gaitdynamics as gd

HAMNER_IK = REAL / "opensim-models/Hamner_running/subject02_running_ik.mot"
runner = CliRunner()


@pytest.fixture(scope="module")
def pair(tmp_path_factory) -> dict:
    """A tiny diffusion model and refiner trained for a few steps on biomechZoo + Hamner running."""
    from gaitcli.data.ingest import ingest
    from gaitcli.train.generative import StateSpec, train_diffusion, train_refiner
    from gaitcli.train.loop import TrainConfig

    root = tmp_path_factory.mktemp("gen")
    ingest([REAL / "biomechZoo-sample-study/Straight", REAL / "biomechZoo-sample-study/Static",
            REAL / "opensim-models/Hamner_running"], root / "data")
    spec = StateSpec(stride=50, test_subjects=["HC031A"], val_fraction=0.1)
    cfg = TrainConfig(epochs=2, lr=1e-3, warmup_steps=2, batch_size=16, patience=0)
    small = {"d_model": 16, "n_heads": 2, "n_layers": 1, "d_ff": 32}
    train_diffusion([root / "data"], root / "d.safetensors", "diffusion", spec, cfg, small)
    train_refiner([root / "data"], root / "r.safetensors", spec, TrainConfig(epochs=2, lr=1e-3, warmup_steps=2,
                                                                               batch_size=16),
                  root / "d.safetensors", overrides=small)
    return {"root": root, "data": root / "data", "diffusion": root / "d.safetensors", "refiner": root / "r.safetensors"}


def test_checkpoints_carry_state_scaling_and_split(pair):
    from gaitcli.models.checkpoint import read_checkpoint_metadata

    d, r = (read_checkpoint_metadata(pair[k]) for k in ("diffusion", "refiner"))
    assert d["kind"] == r["kind"] == "gait-state" and (d["role"], r["role"]) == ("diffusion", "grf-refiner")
    assert d["state_channels"] == gs.STATE_CHANNELS and d["window"] == 150
    assert d["normalizer"] == r["normalizer"] and d["split"] == r["split"]  # the refiner shares them
    assert d["split"]["test"] == ["HC031A"] and "HC031A" not in d["split"]["train"]
    assert d["task"] == "diffusion" and d["train_config"]["ema_decay"] == 0.999
    assert len(d["median"]) == 57 and all(-1.0 <= m <= 1.0 for m in d["median"])
    assert {row["channel"] for row in r["test_metrics"]["summary"]} >= {"grf_r_vy", "grf_l_vy"}
    assert any("too short" in s for s in d["skipped"])  # HC002D02 (static, 0.51 s) is said, not dropped silently


def test_fill_keeps_known_entries_exactly_and_is_seeded(pair, running_state):
    model = gd.GaitDynamics(pair["diffusion"], pair["refiner"])
    values = running_state.values[:300].copy()
    knees = [gs.STATE_CHANNELS.index(c) for c in gs.group_channels("knees")]
    values[:, knees] = np.nan
    a = model.fill(values, "inpaint", steps=5, seed=3)
    b = model.fill(values, "inpaint", steps=5, seed=3)
    c = model.fill(values, "inpaint", steps=5, seed=4)
    known = np.isfinite(values)
    assert np.array_equal(a[known], values[known])
    assert np.isfinite(a[:, knees]).all()
    assert np.array_equal(a, b, equal_nan=True) and not np.array_equal(a[:, knees], c[:, knees])
    median = model.fill(values, "median")
    assert np.array_equal(median[known], values[known])
    expected = model.norm.invert(np.tile(model.median, (300, 1)))[:, knees]
    assert np.allclose(median[:, knees], expected)


def test_forces_cover_every_sample_of_short_and_long_trials(pair, running_state):
    model = gd.GaitDynamics(pair["diffusion"], pair["refiner"])
    for n in (90, 150, 997):
        forces = model.forces(running_state.values[:n])
        assert forces.shape == (n, len(gs.FORCE_CHANNELS)) and np.isfinite(forces).all()


def test_predict_grf_writes_a_file_opensim_reads(pair, tmp_path):
    opensim = pytest.importorskip("opensim")
    out = tmp_path / "out.mot"
    result = runner.invoke(app, ["predict", str(HAMNER_IK), "--grf", "-o", str(out), "--generative",
                                 str(pair["diffusion"]), "--grf-model", str(pair["refiner"]), "--ddim-steps", "5"])
    assert result.exit_code == 0, result.output
    assert "no channel filled" in result.output and "65.9" in (tmp_path / "out.mot").read_text()[:400]
    table = opensim.TimeSeriesTable(str(out))
    labels = list(table.getColumnLabels())
    assert labels[:3] == ["ground_force_r_vx", "ground_force_r_vy", "ground_force_r_vz"] and len(labels) == 18
    assert table.getNumRows() == 997  # 60 Hz IK resampled to 100 Hz
    loads = opensim.ExternalLoads(str(tmp_path / "out_external_loads.xml"), True)
    assert loads.getSize() == 2
    per_kg = (tmp_path / "out.per_kg.sto").read_text()
    assert "N/kg" in per_kg
    vy = table.getDependentColumn("ground_force_r_vy").to_numpy()
    assert np.isfinite(vy).all()


def test_fill_missing_completes_a_mot_without_knees(pair, tmp_path):
    src = tmp_path / "noknee.mot"
    _drop_columns(HAMNER_IK, src, ("knee_angle_r", "knee_angle_l"))
    result = runner.invoke(app, ["predict", str(src), "--fill-missing", "inpaint", "--grf", "-o",
                                 str(tmp_path / "p.mot"), "--generative", str(pair["diffusion"]), "--grf-model",
                                 str(pair["refiner"]), "--ddim-steps", "5"])
    assert result.exit_code == 0, result.output
    assert "filled by inpaint: knee_angle_r, knee_angle_l" in result.output
    completed = tmp_path / "p.kinematics.mot"
    text = completed.read_text()
    assert "gait: filled by inpaint (DDIM 5 steps, seed 0): knee_angle_r, knee_angle_l" in text
    got, original = gd.read_trial(completed), gd.read_trial(HAMNER_IK)
    assert {"knee_angle_r", "knee_angle_l", "arm_flex_r"} <= set(got.values)
    assert np.allclose(got.values["hip_flexion_r"], original.values["hip_flexion_r"], atol=1e-4)  # known: untouched
    assert np.isfinite(got.values["knee_angle_r"]).all()


def test_usage_errors_are_one_line(pair, tmp_path):
    cases = [(["--fill-missing", "magic"], "--fill-missing must be"),
             (["--modify", "knee_angle_r/2"], "expected COORDINATE*FACTOR"),
             (["--modify", "elbow_spin*2"], "is not one of")]
    for extra, message in cases:
        result = runner.invoke(app, ["predict", str(HAMNER_IK), "-o", str(tmp_path / "x.mot"), "--generative",
                                     str(pair["diffusion"]), "--grf-model", str(pair["refiner"])] + extra)
        assert result.exit_code == 2 and message in result.output, result.output
    bad = tmp_path / "empty.mot"
    bad.write_text("nothing\n")
    result = runner.invoke(app, ["predict", str(bad), "--grf", "-o", str(tmp_path / "y.mot"), "--generative",
                                 str(pair["diffusion"]), "--grf-model", str(pair["refiner"])])
    assert result.exit_code == 1 and "empty.mot" in result.output
    assert not (tmp_path / "y.mot").exists()


def test_modification_parsing():
    m = gd.parse_modification("lumbar_bending*2.5")
    values = np.array([1.0, 3.0, 5.0])
    assert (m.coordinate, m.op, m.amount) == ("lumbar_bending", "*", 2.5)
    assert np.allclose(m.apply(values), [-2.0, 3.0, 8.0])  # about the mean
    assert gd.parse_modification("knee_angle_r-5").apply(values).tolist() == [-4.0, -2.0, 0.0]


def test_pretrain_and_finetune_commands_train_the_pair(pair, tmp_path):
    d, r = tmp_path / "d.safetensors", tmp_path / "r.safetensors"
    small = ["--set", "d_model=16", "--set", "n_layers=1", "--set", "n_heads=2", "--set", "d_ff=32"]
    result = runner.invoke(app, ["pretrain", str(pair["data"]), "-o", str(d), "--model", "diffusion", "--steps", "2",
                                 "--stride", "50", "--json", "-q"] + small)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["steps"] == 2
    result = runner.invoke(app, ["finetune", str(d), str(pair["data"]), "-o", str(r), "--grf", "--steps", "2",
                                 "--stride", "50", "--json", "-q"] + small)
    assert result.exit_code == 0, result.output
    assert set(json.loads(result.stdout)["test_metrics"]) >= {"grf_r_vy"}


def test_evaluate_grf_reports_percent_body_weight(pair):
    result = runner.invoke(app, ["evaluate", str(pair["refiner"]), str(pair["data"]), "--grf", "--generative",
                                 str(pair["diffusion"]), "--ddim-steps", "3", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert rows[0]["method"] == "inpaint" and rows[0]["masked"] == "none"
    assert rows[0]["stances"] >= 10 and 0 < rows[0]["vertical_mae_mean"] < 200


@pytest.fixture(scope="module")
def running_state(tmp_path_factory) -> gs.StateTrial:
    trial = gd.read_trial(HAMNER_IK)
    return gs.trial_state(trial)


def _drop_columns(src, dst, names) -> None:
    lines = src.read_text().splitlines()
    end = next(i for i, line in enumerate(lines) if line.strip().lower() == "endheader")
    header = lines[end + 1].split("\t")
    drop = {i for i, h in enumerate(header) if h.strip() in names}
    body = ["\t".join(x for i, x in enumerate(line.split("\t")) if i not in drop) for line in lines[end + 1:]]
    head = [line.replace(f"nColumns={len(header)}", f"nColumns={len(header) - len(drop)}") for line in lines[:end + 1]]
    dst.write_text("\n".join(head + body) + "\n")
