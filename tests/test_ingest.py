"""gait ingest as a library: grouping, outputs, metadata, re-runs, failures, jobs, label masks."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from gaitcli.data import ingest as ing
from gaitcli.data.schema import CYCLE_KEYS
from gaitcli.errors import UsageError
from gaitcli.io.parquet import read_metadata

from conftest import EXAMPLES


@pytest.fixture()
def examples_copy(tmp_path) -> Path:
    target = tmp_path / "examples"
    shutil.copytree(EXAMPLES, target)
    return target


def test_grouping_of_real_folders(real, labeled):
    files, _ = ing.discover([real / "opensim-core", real / "opensim-models/Gait10dof18musc", labeled / "fukuchi2018-wbds"])
    groups = {(g.subject, g.trial): [f.name for f in g.files] for g in ing.group_trials(files)}
    assert groups[("subject01", "subject01_walk1")] == [
        "std_subject01_InverseDynamics.sto", "subject01_walk1_grf.mot", "subject01_walk1_ik.mot"]
    assert sorted(groups[("subject01", "subject01_walk")]) == [
        "subject01_walk_ID.sto", "subject01_walk_IK.mot", "subject01_walk_grf.mot"]
    rajagopal = [v for (s, t), v in groups.items() if t == "walk"]
    assert sorted(rajagopal[0]) == ["coordinates.sto", "grf_walk.mot", "id_walk.sto"]
    assert groups[("WBDS07", "WBDS07walkOC")] == ["WBDS07walkOCang.txt", "WBDS07walkOCknt.txt"]


def test_discover_skips_non_data_with_reasons(real):
    files, skipped = ing.discover([real / "opensim-core/ID_test_subject01"])
    assert all(f.suffix in (".mot", ".sto") for f in files)
    reasons = {Path(p.path).suffix: p.reason for p in skipped}
    assert "model" in reasons[".osim"] and "setup" in reasons[".xml"]
    with pytest.raises(UsageError, match="no such file"):
        ing.discover([real / "nope.c3d"])
    with pytest.raises(UsageError, match="no such file"):
        ing.discover([str(real / "*.nothing")])


def test_examples_ingest_outputs_and_metadata(examples_copy, tmp_path):
    out = tmp_path / "out"
    report = ing.ingest([examples_copy], out)
    assert not report.failures
    assert {(t.subject, t.trial) for t in report.trials} == {
        ("HC002D", "HC002D06"), ("subject01", "subject01_walk1"), ("WBDS01", "WBDS01walkOC")}
    cycles = pd.read_parquet(out / "HC002D/HC002D06.cycles.parquet")
    assert list(cycles.columns[: len(CYCLE_KEYS)]) == list(CYCLE_KEYS)
    assert len(cycles) % 101 == 0 and set(cycles.side) == {"r", "l"}
    meta = read_metadata(out / "HC002D/HC002D06.cycles.parquet")
    assert meta["units"]["knee_angle_r_moment"] == "N·m/kg"
    assert meta["units"]["ground_force_r_vy"] == "N/kg"
    assert meta["mass_kg"] == pytest.approx(32.1, abs=0.01) and meta["mass_normalised"]
    assert meta["sources"][0]["sha256"] == ing.sha256(examples_copy / "c3d/HC002D06.c3d")
    continuous = pd.read_parquet(out / "subject01/subject01_walk1.continuous.parquet")
    assert np.allclose(np.diff(continuous.time), 0.01)
    sub_meta = read_metadata(out / "subject01/subject01_walk1.continuous.parquet")
    assert sub_meta["mass_source"] == "model subject01.osim" and sub_meta["mass_kg"] == pytest.approx(72.6, abs=0.1)
    assert not (out / "WBDS01/WBDS01walkOC.continuous.parquet").exists()
    assert not list(out.rglob("*.tmp")), "no temporary files are left behind"


def test_rerun_skips_unchanged_and_never_duplicates(examples_copy, tmp_path):
    out = tmp_path / "out"
    first = ing.ingest([examples_copy], out)
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*.parquet")}
    second = ing.ingest([examples_copy], out)
    assert {t.status for t in second.trials} == {"unchanged"}
    assert second.cycles == first.cycles
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.parquet")} == before
    # a changed source is re-ingested, replacing (not appending to) its file
    mot = examples_copy / "opensim/subject01_walk1_ik.mot"
    mot.write_text(mot.read_text().replace("\n0.50000000", "\n0.50000000", 1) + "\n")
    third = ing.ingest([examples_copy], out)
    statuses = {t.trial: t.status for t in third.trials}
    assert statuses["subject01_walk1"] == "written" and statuses["HC002D06"] == "unchanged"
    rows = duckdb.sql(f"select count(*) from read_parquet('{out}/*/*.cycles.parquet', union_by_name=true)").fetchall()[0][0]
    assert rows == 101 * sum(first.cycles.values())


def test_failures_are_reported_and_the_rest_written(examples_copy, tmp_path):
    (examples_copy / "broken.c3d").write_bytes(b"\x02P" + bytes(range(256)) * 3)
    (examples_copy / "empty.mot").write_text("")
    report = ing.ingest([examples_copy], tmp_path / "out")
    failed = {Path(p.path).name: p.reason for p in report.failures}
    assert set(failed) == {"broken.c3d", "empty.mot"}
    assert all("\n" not in r and r for r in failed.values())
    assert len(report.trials) == 3


def test_jobs_two_gives_the_same_dataset(examples_copy, tmp_path):
    one = ing.ingest([examples_copy], tmp_path / "one", ing.IngestOptions(jobs=1))
    two = ing.ingest([examples_copy], tmp_path / "two", ing.IngestOptions(jobs=2))
    assert one.cycles == two.cycles
    for path in (tmp_path / "one").rglob("*.parquet"):
        pd.testing.assert_frame_equal(pd.read_parquet(path), pd.read_parquet(tmp_path / "two" / path.relative_to(tmp_path / "one")))


def test_options_change_points_and_mass(examples_copy, tmp_path):
    report = ing.ingest([examples_copy / "c3d"], tmp_path / "out", ing.IngestOptions(points=180, mass_kg=40.0, lowpass={"angle": 6.0}))
    cycles = pd.read_parquet(tmp_path / "out/HC002D/HC002D06.cycles.parquet")
    assert len(cycles) == 180 * sum(report.cycles.values())
    meta = read_metadata(tmp_path / "out/HC002D/HC002D06.cycles.parquet")
    assert meta["mass_kg"] == 40.0 and meta["mass_source"] == "--mass" and meta["lowpass_hz"] == {"angle": 6.0}


def test_subjects_csv_gives_mass(examples_copy, tmp_path):
    table = tmp_path / "subjects.csv"
    table.write_text("subject,mass_kg,height_m\nWBDS01,70.5,1.75\nsubject01,80\n")
    report = ing.ingest([examples_copy / "opensim"], tmp_path / "out", ing.IngestOptions(subjects_csv=table))
    assert report.trials[0].mass_kg == 80.0 and report.trials[0].mass_source == "subjects.csv"
    bad = tmp_path / "bad.csv"
    bad.write_text("name,weight\nx,1\n")
    with pytest.raises(UsageError, match="bad.csv"):
        ing.ingest([examples_copy / "opensim"], tmp_path / "out2", ing.IngestOptions(subjects_csv=bad))


def test_every_real_file_is_ingested_or_named(ingested):
    report = json.loads((ingested / "report.json").read_text())
    assert report["trials"] >= 90 and report["cycles"]["r"] >= 100 and report["cycles"]["l"] >= 100
    for failure in report["failures"]:
        assert failure["reason"] and "\n" not in failure["reason"] and "Traceback" not in failure["reason"]


def _moment_cycles(ingested, prefix):
    files = [f for f in ingested.glob("*/*.cycles.parquet") if f.name.startswith(prefix)]
    return files


@pytest.mark.parametrize("prefix, count", [("HC", 9), ("walkNorm", 29)])
def test_pig_kinetic_trials_have_plausible_moments_per_kg(ingested, labeled, prefix, count):
    files = _moment_cycles(ingested, prefix)
    assert len(files) >= count
    index = pd.read_csv(labeled / "geneva-norm-pig-c3d/index.csv")
    kinetic = {Path(f).stem for f in index[index.has_kinetics == 1].file}
    checked = 0
    for path in files:
        trial = path.name.split(".")[0]
        if prefix == "walkNorm" and trial not in kinetic:
            continue
        if trial == "HC002D02":  # static trial
            continue
        cycles = pd.read_parquet(path)
        meta = read_metadata(path)
        assert len(cycles) > 0, trial
        assert meta["units"]["ankle_angle_r_moment"] == "N·m/kg"
        ankle = cycles[[c for c in cycles if c.startswith("ankle_angle_") and c.endswith("_moment")]]
        peak = np.nanmax(np.abs(ankle.to_numpy()))
        assert 0.6 < peak < 4.0, (trial, peak)
        checked += 1
    assert checked >= (9 - 1 if prefix == "HC" else 23)


def test_pig_moments_are_masked_in_stance_off_the_plates(ingested):
    path = ingested / "HC031A/HC031A06.continuous.parquet"
    frame = pd.read_parquet(path)
    meta = read_metadata(path)
    masked = frame["knee_angle_r_moment"].isna()
    assert masked.iloc[:10].all() and masked.iloc[-10:].all(), "trial edges are masked"
    assert 0.2 < masked.mean() < 0.9
    on_plate = frame["ground_force_r_vy"] > 1.0
    assert frame.loc[on_plate, "knee_angle_r_moment"].notna().mean() > 0.9
    assert any("masked" in n for n in meta["notes"])


def test_parquet_reads_unchanged_in_pandas_and_duckdb(ingested):
    path = next(ingested.glob("*/*.cycles.parquet"))
    frame = pd.read_parquet(path)
    count = duckdb.sql(f"select count(*) from '{path}'").fetchall()[0][0]
    assert count == len(frame)
    subjects = duckdb.sql(f"select count(distinct subject) from read_parquet('{ingested}/*/*.cycles.parquet', union_by_name=true)").fetchall()[0][0]
    assert subjects >= 60
