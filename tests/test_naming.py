"""Canonical naming: the tables, the GRF styles, the knee convention, and cross-source signs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gaitcli.data import naming
from gaitcli.data.timeseries import TimeSeries
from gaitcli.io.opensim_files import read_opensim
from gaitcli.io.wbds import read_wbds


def test_vocabulary_expands_sides_and_has_units():
    vocab = naming.vocabulary()
    for name in ("hip_flexion_r", "hip_flexion_l", "knee_angle_l_moment", "ground_force_r_vy", "pelvis_tilt"):
        assert name in vocab
    assert vocab["knee_angle_r"].unit == "deg"
    assert vocab["ankle_angle_l_moment"].family == "moment"
    assert naming.canonical_unit("ground_force_r_vy", per_kg=True) == "N/kg"


def test_every_mapping_targets_a_canonical_channel():
    vocab = naming.vocabulary()
    for source in naming.sources():
        for row in naming.mapping(source):
            assert row.canonical in vocab, (source, row.source_channel)
            assert row.sign in (1.0, -1.0)


@pytest.mark.parametrize("relative, style", [
    ("opensim-models/Gait2354_Simbody/subject01_walk1_grf.mot", "1_ground_force_vx"),
    ("opensim-models/Hamner_running/subject02_running_grf.mot", "1_ground_force_vx"),
    ("opensim-core/ID_test_subject01/subject01_walk1_grf.mot", "l_ground_force_vx"),
    ("opensim-core/example3DWalking_Rajagopal/grf_walk.mot", "ground_force_r_vx"),
])
def test_grf_styles_of_real_files_map_to_both_feet(real, relative, style):
    table = read_opensim(real / relative).series["table"]
    assert naming.grf_style(table.channels) == style
    mapped = {naming.grf_canonical_name(c) for c in table.channels} - {None}
    for side in "rl":
        assert {f"ground_force_{side}_vy", f"ground_force_{side}_px", f"ground_torque_{side}_y"} <= mapped


def test_opencap_style_and_unknown_columns():
    assert naming.grf_canonical_name("R_ground_force_vy") == "ground_force_r_vy"
    assert naming.grf_canonical_name("L_ground_torque_z") == "ground_torque_l_z"
    assert naming.grf_canonical_name("1_ground_force_px") == "ground_force_l_px"
    assert naming.grf_canonical_name("ground_force_vx", {"": "l"}) == "ground_force_l_vx"
    assert naming.grf_canonical_name("f1_1") is None


@pytest.mark.parametrize("relative, convention", [
    ("opensim-core/ID_test_subject01/subject01_walk1_ik.mot", "gait2392"),
    ("opensim-models/Hamner_running/subject02_running_ik.mot", "gait2392"),
    ("opensim-models/Gait10dof18musc/subject01_walk_IK.mot", "gait2392"),
    ("opensim-core/example3DWalking_Rajagopal/coordinates.sto", "rajagopal"),
    ("opencap-processing/walking1_videoAndMocap.mot", "rajagopal"),
])
def test_knee_convention_of_real_models(real, relative, convention):
    table = read_opensim(real / relative).series["table"]
    assert naming.knee_convention(table.channel("knee_angle_r")) == convention


def test_zero_filled_knee_column_says_nothing(real):
    grf = read_opensim(real / "opensim-models/Hamner_running/subject02_running_grf.mot").series["table"]
    assert naming.knee_convention(grf.channel("knee_angle_r")) == "unknown"


def test_opensim_canonical_flips_gait2392_knee_and_drops_zero_columns():
    ts = TimeSeries(np.arange(4.0), np.array([[-60.0, 5.0, 0.0], [-10, 6, 0], [-5, 7, 0], [-65, 8, 0]]),
                    ["knee_angle_r", "hip_flexion_r", "ankle_angle_r"], ["deg"] * 3, 1.0)
    out, notes = naming.opensim_canonical(ts, "gait2392")
    assert out.channels == ["knee_angle_r", "hip_flexion_r"]
    assert out.channel("knee_angle_r").max() == 65.0
    assert any("knee_angle_r" in n for n in notes)


def test_wbds_mapping_converts_signs(labeled):
    rec = read_wbds(labeled / "fukuchi2018-wbds/WBDS01walkOCknt.txt")
    out, _ = naming.apply_map(rec.series["table"], "wbds")
    source = rec.series["table"].channel("RAnkleMomentZ")
    np.testing.assert_allclose(out.channel("ankle_angle_r_moment"), -source)
    assert out.unit("ankle_angle_r_moment") == "N·m/kg"


def test_pig_moments_become_newton_metres_per_kg():
    ts = TimeSeries(np.arange(3.0), np.array([[1000.0], [1500.0], [0.0]]), ["Matt:RAnkleMoment_x"], ["Nmm"], 100.0)
    out, notes = naming.apply_map(ts, "pig", strip_prefix="Matt:")
    np.testing.assert_allclose(out.channel("ankle_angle_r_moment"), [-1.0, -1.5, 0.0])
    assert out.unit("ankle_angle_r_moment") == "N·m/kg"
    assert notes


# -- against the real corpus, through ingest ----------------------------------------------------
def _right_cycles(ingested, prefix: str) -> pd.DataFrame:
    frames = [pd.read_parquet(f) for f in sorted(ingested.glob("*/*.cycles.parquet")) if f.name.startswith(prefix)]
    frame = pd.concat(frames, ignore_index=True)
    return frame[frame.side == "r"]


SOURCES = {"biomechZoo": "HC", "geneva": "walkNorm", "wbds": "WBDS", "opensim-subject01": "subject01_walk1__ID",
           "opensim-gait10dof": "subject01_walk."}


@pytest.mark.parametrize("source", SOURCES)
def test_knee_flexion_peaks_near_60_deg_in_swing(ingested, source):
    cycles = _right_cycles(ingested, SOURCES[source])
    mean = cycles.groupby("point")["knee_angle_r"].mean()
    assert 50.0 <= mean.max() <= 75.0
    assert 55 <= int(mean.idxmax()) <= 85, "the peak belongs in swing"
    assert mean.iloc[:10].min() < 25.0, "the knee is nearly extended at foot strike"


@pytest.mark.parametrize("source", ["biomechZoo", "geneva", "opensim-subject01", "opensim-gait10dof"])
@pytest.mark.parametrize("channel", ["hip_flexion_r", "knee_angle_r", "ankle_angle_r",
                                     "hip_flexion_r_moment", "knee_angle_r_moment", "ankle_angle_r_moment"])
def test_mean_cycles_agree_with_wbds(ingested, source, channel):
    reference = _right_cycles(ingested, "WBDS").groupby("point")[channel].mean()
    cycles = _right_cycles(ingested, SOURCES[source])
    mean = cycles.groupby("point")[channel].mean().interpolate(limit_direction="both")
    r = np.corrcoef(mean.to_numpy(), reference.to_numpy())[0, 1]
    assert r > 0.6, f"{channel} of {source} correlates {r:.2f} with WBDS: a sign or mapping is wrong"


def test_ankle_plantarflexor_moment_is_negative_and_plausible(ingested):
    for prefix in ("HC", "walkNorm", "WBDS", "subject01_walk1__ID"):
        mean = _right_cycles(ingested, prefix).groupby("point")["ankle_angle_r_moment"].mean()
        assert -2.0 < mean.min() < -0.9, prefix
        assert mean.max() < 0.4, prefix
