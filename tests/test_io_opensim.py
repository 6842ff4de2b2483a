"""The OpenSim file reader against OpenSim itself and against the real files' known facts.

Parity: every .mot/.sto (and .trc) under /work/shared/data is parsed by gait and by the opensim
package; labels, row counts, time and values must agree (values compared after applying gait's
own degree conversion to OpenSim's numbers, since OpenSim's table readers convert nothing).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gaitcli.errors import ReadError
from gaitcli.io.opensim_files import (
    OsimModelInfo,
    moco_short_name,
    model_info,
    read_opensim,
    read_trc,
)

DATA = Path("/work/shared/data")
REAL = DATA / "real"
ID_TEST = REAL / "opensim-core" / "ID_test_subject01"
RAJAGOPAL = REAL / "opensim-core" / "example3DWalking_Rajagopal"
GAIT2354 = REAL / "opensim-models" / "Gait2354_Simbody"
HAMNER = REAL / "opensim-models" / "Hamner_running"

needs_data = pytest.mark.skipif(not REAL.is_dir(), reason="real data corpus not present")


def _real_files(*suffixes: str) -> list[Path]:
    if not DATA.is_dir():
        return []
    return sorted(p for suffix in suffixes for p in DATA.rglob(f"*{suffix}"))


def _file_id(path: Path) -> str:
    return str(path.relative_to(DATA))


@pytest.fixture(scope="module")
def opensim_quiet():
    """opensim, logging errors only and writing no opensim.log (as model_info leaves it)."""
    opensim = pytest.importorskip("opensim")
    opensim.Logger.removeFileSink()
    opensim.Logger.setLevelString("Error")
    return opensim


def _opensim_table(opensim, path: Path):
    """(labels without time, time, values, reader name) from OpenSim, or None if it refuses."""
    try:
        table = opensim.TimeSeriesTable(str(path))
        return (list(table.getColumnLabels()), np.asarray(table.getIndependentColumn()),
                table.getMatrix().to_numpy(), "TimeSeriesTable")
    except Exception:
        pass
    try:
        storage = opensim.Storage(str(path))
    except Exception:
        return None
    labels_array = storage.getColumnLabels()
    labels = [labels_array.get(i) for i in range(1, labels_array.getSize())]
    time = opensim.ArrayDouble()
    storage.getTimeColumn(time)
    columns = []
    for label in labels:
        column = opensim.ArrayDouble()
        storage.getDataColumn(label, column)
        columns.append([column.get(i) for i in range(column.getSize())])
    return (labels, np.asarray([time.get(i) for i in range(time.getSize())]),
            np.asarray(columns).T, "Storage")


# -- parity with OpenSim -------------------------------------------------------------------------


@needs_data
@pytest.mark.parametrize("path", _real_files(".mot", ".sto"), ids=_file_id)
def test_table_matches_opensim(path: Path, opensim_quiet) -> None:
    reference = _opensim_table(opensim_quiet, path)
    if reference is None:  # OpenSim refuses it: gait must read it or say why, nothing else
        try:
            read_opensim(path)
        except ReadError:
            pass
        return
    labels, time, values, _reader = reference
    recording = read_opensim(path)
    table = recording.series["table"]

    assert recording.info["raw_columns"] == labels
    assert len(table) == len(time) == values.shape[0]
    np.testing.assert_allclose(table.time, time, rtol=1e-12, atol=0)
    factors = np.array([recording.info["scale_factors"].get(c, 1.0) for c in table.channels])
    np.testing.assert_allclose(table.data, values * factors, rtol=1e-9, atol=0, equal_nan=True)


@needs_data
@pytest.mark.parametrize("path", _real_files(".trc"), ids=_file_id)
def test_markers_match_opensim(path: Path, opensim_quiet) -> None:
    flat = opensim_quiet.TimeSeriesTableVec3(str(path)).flatten()
    labels = list(flat.getColumnLabels())  # <marker>_1/_2/_3
    values = flat.getMatrix().to_numpy()
    table = read_trc(path).series["table"]

    assert table.channels == [label[:-2] + "_" + "xyz"[int(label[-1]) - 1] for label in labels]
    np.testing.assert_allclose(table.time, np.asarray(flat.getIndependentColumn()), rtol=1e-12)
    np.testing.assert_allclose(table.data, values, rtol=1e-9, atol=0, equal_nan=True)
    assert set(table.units) == {"mm"}


# -- known facts of the real files ---------------------------------------------------------------


@needs_data
def test_coordinates_sto_radians_moco_labels_and_column_count() -> None:
    recording = read_opensim(RAJAGOPAL / "coordinates.sto")
    table = recording.series["table"]
    raw_knee = "/jointset/walker_knee_r/knee_angle_r/value"

    assert recording.info["in_degrees"] is False
    assert recording.info["renamed"][raw_knee] == "knee_angle_r"
    assert raw_knee in recording.info["raw_columns"]
    assert table.unit("knee_angle_r") == "deg"
    # Peak knee flexion of this walk is 72.2 deg (1.26 rad in the file).
    assert table.channel("knee_angle_r").max() == pytest.approx(72.234, abs=0.01)
    assert table.unit("pelvis_ty") == "m"  # translations stay metres
    assert table.channel("pelvis_ty").max() < 1.1
    # Coupled coordinate: OpenSim never converts it, neither do we.
    assert table.unit("knee_angle_r_beta") == ""
    assert "knee_angle_r_beta" not in recording.info["scale_factors"]
    assert any("coordinates.sto" in w and "40 columns" in w and "32" in w
               for w in recording.warnings)
    assert any(c.startswith("knee_angle_r: rad -> deg") for c in recording.info["conversions"])
    assert table.rate == 1000.0


@needs_data
def test_model_decides_which_columns_are_rotational() -> None:
    with_model = read_opensim(RAJAGOPAL / "coordinates.sto",
                              model=RAJAGOPAL / "subject_walk_scaled.osim")
    by_names = read_opensim(RAJAGOPAL / "coordinates.sto")
    assert with_model.info["column_kinds"] == by_names.info["column_kinds"]
    assert with_model.info["column_kinds"]["knee_angle_r_beta"] == "coupled"
    np.testing.assert_array_equal(with_model.series["table"].data, by_names.series["table"].data)


@needs_data
def test_hamner_grf_header_rows_disagree_with_data() -> None:
    recording = read_opensim(HAMNER / "subject02_running_grf.mot")
    assert len(recording.series["table"]) == 601
    assert recording.info["declared_rows"] == 901
    assert "subject02_running_grf.mot: header says 901 rows, file has 601" in recording.warnings
    assert recording.series["table"].unit("ground_force_vy") == "N"
    assert recording.series["table"].unit("ground_force_px") == "m"
    assert recording.series["table"].unit("ground_torque_y") == "N·m"
    # The 23 zero-filled coordinate columns do not trigger the "may be radians" warning.
    assert not any("radians" in w for w in recording.warnings)


@needs_data
@pytest.mark.parametrize(("path", "style", "also_seen"), [
    (GAIT2354 / "subject01_walk1_grf.mot", "1_ground_force_vx", ["ground_force_vx"]),
    (HAMNER / "subject02_running_grf.mot", "1_ground_force_vx", ["ground_force_vx"]),
    (ID_TEST / "subject01_walk1_grf.mot", "l_ground_force_vx", ["ground_force_vx"]),
    (RAJAGOPAL / "grf_walk.mot", "ground_force_r_vx", []),
], ids=lambda value: value.name if isinstance(value, Path) else None)
def test_grf_naming_style_of_real_files(path: Path, style: str, also_seen: list[str]) -> None:
    recording = read_opensim(path)
    assert recording.info["grf_style"] == style
    assert recording.info["grf_styles_seen"] == [style, *also_seen]
    table = recording.series["table"]
    vy = next(c for c in table.channels if c.endswith("vy"))
    assert vy in recording.info["raw_columns"]  # names kept as in the file


def test_opencap_and_plain_grf_styles(tmp_path: Path) -> None:
    # No OpenCap GRF file is in the corpus, so the R_/L_ style is checked on a written one.
    opencap = _write(tmp_path / "opencap_grf.mot", _new_header(3) +
                     "time\tR_ground_force_vx\tL_ground_force_vx\n0\t1\t2\n0.01\t1\t2\n")
    plain = _write(tmp_path / "plain_grf.mot", _new_header(2) +
                   "time\tground_force_vx\n0\t1\n0.01\t1\n")
    assert read_opensim(opencap).info["grf_style"] == "R_ground_force_vx"
    assert read_opensim(plain).info["grf_style"] == "ground_force_vx"


@needs_data
def test_rounded_600hz_time_column_is_kept_as_written() -> None:
    table = read_opensim(GAIT2354 / "subject01_walk1_grf.mot").series["table"]
    assert table.time[1] == 0.0017  # 4-decimal rounding kept, not resampled
    assert set(np.round(np.diff(table.time), 6)) == {0.0016, 0.0017}
    assert table.rate == 588.235  # 1/median(dt), not snapped to 600
    assert len(table) == 1501


@needs_data
def test_ik_knee_angle_without_indegrees_line_is_degrees() -> None:
    recording = read_opensim(ID_TEST / "subject01_walk1_ik.mot")
    table = recording.series["table"]
    knee = table.channel("knee_angle_r")
    assert recording.info["in_degrees"] is None
    assert recording.info["angle_unit_source"] == "header text"  # "Angles are in degrees."
    assert recording.info["scale_factors"] == {}
    assert table.unit("knee_angle_r") == "deg"
    # gait2392 knee_angle is negative in flexion: the real data reach -69.5 deg (swing, t=3.97 s)
    # and barely pass 0 in extension (+1.6 deg).
    assert knee.min() == pytest.approx(-69.455379, abs=1e-6)
    assert table.time[knee.argmin()] == pytest.approx(3.96666667)
    assert knee.max() == pytest.approx(1.58211129, abs=1e-6)
    assert table.rate == 60.0
    assert not recording.warnings


@needs_data
def test_inverse_dynamics_units() -> None:
    table = read_opensim(ID_TEST / "std_subject01_InverseDynamics.sto").series["table"]
    assert table.unit("knee_angle_r_moment") == "N·m"
    assert table.unit("pelvis_ty_force") == "N"
    assert table.unit("pelvis_tilt_moment") == "N·m"


@needs_data
def test_trc_header_and_declared_rate() -> None:
    recording = read_opensim(GAIT2354 / "subject01_walk1.trc")
    table = recording.series["table"]
    assert recording.format == "trc"
    assert table.channels[:3] == ["R.ASIS_x", "R.ASIS_y", "R.ASIS_z"]
    assert table.data.shape == (151, 123)
    assert table.rate == 60.0  # declared; the 3-decimal time column alone says 58.8
    downsampled = read_trc(REAL / "opensim-core/c3d/reference_conversions/std_walking2_markers.trc")
    assert downsampled.series["table"].rate == 25.0  # header says 250, the rows are 0.04 s apart
    assert any("250" in w for w in downsampled.warnings)


@needs_data
def test_model_info_of_subject01() -> None:
    info = model_info(ID_TEST / "subject01.osim")
    assert isinstance(info, OsimModelInfo)
    assert info.mass_kg == pytest.approx(72.6, abs=0.1)
    assert len(info.coordinates) == 23
    assert info.coordinates["pelvis_tx"] == "translational"
    assert info.coordinates["knee_angle_r"] == "rotational"
    assert model_info(str(ID_TEST / "subject01.osim")) == info  # cached per resolved path
    lai = model_info(REAL / "opencap-processing/LaiUhlrich2022.osim")
    assert lai.coordinates["knee_angle_r_beta"] == "coupled"


def test_model_info_bad_files(tmp_path: Path) -> None:
    bad = _write(tmp_path / "bad.osim", "hello\n")
    with pytest.raises(ReadError, match="bad.osim"):
        model_info(bad)
    with pytest.raises(ReadError, match="missing.osim"):
        model_info(tmp_path / "missing.osim")


def test_importing_the_reader_does_not_import_opensim() -> None:
    code = "import sys, gaitcli.io.opensim_files; print('opensim' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, cwd=Path(__file__).resolve().parents[1])
    assert result.stdout.strip() == "False"


@pytest.mark.parametrize(("label", "short"), [
    ("/jointset/walker_knee_r/knee_angle_r/value", "knee_angle_r"),
    ("/jointset/walker_knee_r/knee_angle_r/speed", "knee_angle_r_speed"),
    ("/forceset/soleus_r/activation", "soleus_r_activation"),
    ("/forceset/soleus_r", "soleus_r"),
    ("knee_angle_r", "knee_angle_r"),
])
def test_moco_short_name(label: str, short: str) -> None:
    assert moco_short_name(label) == short


def test_moco_speeds_are_converted_and_named(tmp_path: Path) -> None:
    path = _write(tmp_path / "states.sto", "states\ninDegrees=no\nendheader\n"
                  "time\t/jointset/knee_r/knee_angle_r/value\t/jointset/knee_r/knee_angle_r/speed"
                  "\t/jointset/gp/pelvis_tx/speed\t/forceset/soleus_r/activation\n"
                  "0\t1\t2\t3\t0.5\n0.01\t1\t2\t3\t0.5\n")
    table = read_opensim(path).series["table"]
    assert table.channels == ["knee_angle_r", "knee_angle_r_speed", "pelvis_tx_speed",
                              "soleus_r_activation"]
    assert table.units == ["deg", "deg/s", "m/s", ""]
    np.testing.assert_allclose(table.data[0], [np.degrees(1), np.degrees(2), 3, 0.5])


# -- bad input -----------------------------------------------------------------------------------


def _write(path: Path, text: str | bytes) -> Path:
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def _new_header(n_columns: int, n_rows: int = 2) -> str:
    return f"test\nversion=1\nnRows={n_rows}\nnColumns={n_columns}\ninDegrees=yes\nendheader\n"


GOOD_LABELS = "time\tknee_angle_r\tpelvis_tx\n"

BAD_TABLES: dict[str, str | bytes] = {
    "empty": "",
    "only_header": _new_header(3),
    "no_endheader": "test\nnRows=2\n" + GOOD_LABELS + "0 1 2\n0.01 1 2\n",
    "truncated_mid_row": _new_header(3, 3) + GOOD_LABELS + "0 1 2\n0.01 1\n0.02 1 2\n",
    "long_row": _new_header(3) + GOOD_LABELS + "0 1 2\n0.01 1 2 3\n",
    "random_bytes": np.random.default_rng(20240501).bytes(4096),
    "non_utf8_binary": bytes(range(128, 256)) * 8,
    "non_numeric_cell": _new_header(3) + GOOD_LABELS + "0 1 2\n0.01 abc 2\n",
    "duplicate_times": _new_header(3) + GOOD_LABELS + "0 1 2\n0.01 1 2\n0.01 1 2\n",
    "decreasing_times": _new_header(3) + GOOD_LABELS + "0 1 2\n0.02 1 2\n0.01 1 2\n",
    "missing_time_column": _new_header(2) + "knee_angle_r\tpelvis_tx\n1 2\n1 2\n",
    "all_nan_time": _new_header(3) + GOOD_LABELS + "NaN 1 2\nNaN 1 2\n",
    "no_data_rows": _new_header(3) + GOOD_LABELS,
}


@pytest.mark.parametrize("case", sorted(BAD_TABLES))
def test_bad_table_is_a_read_error(case: str, tmp_path: Path) -> None:
    path = _write(tmp_path / f"{case}.mot", BAD_TABLES[case])
    with pytest.raises(ReadError) as caught:
        read_opensim(path)
    assert path.name in str(caught.value)
    assert "\n" not in caught.value.reason


def test_bad_table_reasons_point_at_the_problem(tmp_path: Path) -> None:
    def reason(case: str) -> str:
        with pytest.raises(ReadError) as caught:
            read_opensim(_write(tmp_path / f"{case}.mot", BAD_TABLES[case]))
        return caught.value.reason

    assert reason("duplicate_times") == "time is not increasing at row 3 (line 10: 0.01 after 0.01)"
    assert reason("non_numeric_cell") == ("non-numeric value 'abc' in column 'knee_angle_r' "
                                          "at line 9")
    assert reason("truncated_mid_row") == "line 9 has 2 fields, expected 3 (one per column label)"
    assert "endheader" in reason("no_endheader")
    assert "time" in reason("missing_time_column")


def test_nan_rows_are_kept(tmp_path: Path) -> None:
    path = _write(tmp_path / "nan_rows.mot", _new_header(3, 3) + GOOD_LABELS +
                  "0 1 2\n0.01 NaN NaN\n0.02 nan 2\n")
    recording = read_opensim(path)
    data = recording.series["table"].data
    assert data.shape == (3, 2)
    assert np.isnan(data[1]).all() and np.isnan(data[2, 0]) and data[2, 1] == 2
    assert not recording.warnings


def test_rows_without_time_are_dropped_with_a_warning(tmp_path: Path) -> None:
    path = _write(tmp_path / "nan_time.mot", _new_header(3, 3) + GOOD_LABELS +
                  "0 1 2\nNaN 1 2\n0.02 1 2\n")
    recording = read_opensim(path)
    assert list(recording.series["table"].time) == [0.0, 0.02]
    assert any("nan_time.mot" in w and "line 9" in w for w in recording.warnings)


def test_incomplete_last_line_is_dropped_with_a_warning(tmp_path: Path) -> None:
    path = _write(tmp_path / "cut.mot", _new_header(3, 3) + GOOD_LABELS + "0 1 2\n0.01 1 2\n0.02 1")
    recording = read_opensim(path)
    assert len(recording.series["table"]) == 2
    assert any("cut.mot" in w and "incomplete" in w for w in recording.warnings)


def test_old_header_space_separated_crlf(tmp_path: Path) -> None:
    text = ("name old.mot\r\ndatacolumns 3\r\ndatarows 2\r\nrange 0 0.01\r\nendheader\r\n"
            "   time  ground_force_vx  knee_angle_r\r\n0 1.5 -20\r\n0.01 1.5 -25\r\n")
    recording = read_opensim(_write(tmp_path / "old.mot", text.encode()))
    assert recording.info["header"]["datarows"] == "2"
    assert recording.info["declared_rows"] == 2 and recording.info["declared_columns"] == 3
    assert recording.series["table"].channels == ["ground_force_vx", "knee_angle_r"]
    assert recording.series["table"].units == ["N", "deg"]
    assert not recording.warnings


def test_small_angles_without_indegrees_warn_of_radians(tmp_path: Path) -> None:
    path = _write(tmp_path / "small.mot", "Coordinates\nendheader\n" + GOOD_LABELS +
                  "0 0.3 1\n0.01 -0.4 1\n")
    recording = read_opensim(path)
    assert recording.info["angle_unit_source"] == "assumed from .mot"
    assert recording.series["table"].channel("knee_angle_r")[0] == 0.3  # kept, only flagged
    assert any("small.mot" in w and "radians" in w for w in recording.warnings)


def test_sto_without_indegrees_is_radians_like_opensim_storage(tmp_path: Path) -> None:
    header = "Coordinates\nnRows=2\nnColumns=3\nendheader\n"
    quiet = read_opensim(_write(tmp_path / "states.sto", header + GOOD_LABELS +
                                "0 0.5 1\n0.01 -0.5 1\n"))
    assert quiet.info["angle_unit_source"] == "assumed from .sto"
    np.testing.assert_allclose(quiet.series["table"].channel("knee_angle_r"),
                               np.degrees([0.5, -0.5]))
    assert quiet.series["table"].channel("pelvis_tx")[0] == 1  # translations untouched
    assert not quiet.warnings
    loud = read_opensim(_write(tmp_path / "degrees.sto", header + GOOD_LABELS +
                               "0 45 1\n0.01 60 1\n"))
    assert any("degrees.sto" in w and "may be degrees" in w for w in loud.warnings)
    said = read_opensim(_write(tmp_path / "said.sto", "Coordinates\nAngles are in degrees.\n"
                               "endheader\n" + GOOD_LABELS + "0 45 1\n0.01 60 1\n"))
    assert said.info["angle_unit_source"] == "header text"
    assert said.series["table"].channel("knee_angle_r")[1] == 60


TRC_HEADER = ("PathFileType\t4\t(X/Y/Z)\tx.trc\n"
              "DataRate\tCameraRate\tNumFrames\tNumMarkers\tUnits\n"
              "100\t100\t2\t1\tmm\nFrame#\tTime\tM1\t\t\n\t\tX1\tY1\tZ1\n\n")

BAD_TRC: dict[str, str | bytes] = {
    "empty": "",
    "not_trc": "hello\nworld\n",
    "no_rows": TRC_HEADER,
    "non_numeric": TRC_HEADER + "1\t0\t1\t2\t3\n2\t0.01\t1\tx\t3\n",
    "duplicate_times": TRC_HEADER + "1\t0\t1\t2\t3\n2\t0\t1\t2\t3\n",
    "random_bytes": np.random.default_rng(7).bytes(2048),
}


@pytest.mark.parametrize("case", sorted(BAD_TRC))
def test_bad_trc_is_a_read_error(case: str, tmp_path: Path) -> None:
    path = _write(tmp_path / f"{case}.trc", BAD_TRC[case])
    with pytest.raises(ReadError) as caught:
        read_opensim(path)
    assert path.name in str(caught.value)


def test_trc_missing_samples_are_nan_and_frame_count_warns(tmp_path: Path) -> None:
    text = ("PathFileType\t4\t(X/Y/Z)\tx.trc\nDataRate\tCameraRate\tNumFrames\tNumMarkers\tUnits\n"
            "100\t100\t5\t2\tm\nFrame#\tTime\tA\t\t\tB\t\t\n\t\tX1\tY1\tZ1\tX2\tY2\tZ2\n\n"
            "1\t0\t1\t2\t3\t\t\t\t\n2\t0.01\t1\t2\t3\t4\t5\t6\n")
    recording = read_trc(_write(tmp_path / "gaps.trc", text))
    table = recording.series["table"]
    assert table.channels == ["A_x", "A_y", "A_z", "B_x", "B_y", "B_z"]
    assert set(table.units) == {"m"}
    assert np.isnan(table.data[0, 3:]).all() and table.data[1, 5] == 6
    assert "gaps.trc: header says 5 frames, file has 2" in recording.warnings


def test_unknown_extension_is_a_read_error(tmp_path: Path) -> None:
    with pytest.raises(ReadError, match="notes.txt"):
        read_opensim(_write(tmp_path / "notes.txt", "hello"))
