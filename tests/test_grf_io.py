"""Writing GRF .mot files and ExternalLoads XML that OpenSim itself reads back."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import REAL
from gaitcli.errors import DataError
from gaitcli.io.opensim_write import grf_columns, write_external_loads_xml, write_grf_mot

GRF_MOT = REAL / "opensim-models" / "Gait2354_Simbody" / "subject01_walk1_grf.mot"
MODEL = GRF_MOT.parent / "OutputReference" / "subject01_simbody.osim"
needs_data = pytest.mark.skipif(not GRF_MOT.is_file(), reason="real data corpus not present")


@pytest.fixture(scope="module")
def opensim():
    opensim = pytest.importorskip("opensim")
    opensim.Logger.removeFileSink()
    opensim.Logger.setLevelString("Error")
    return opensim


def _example_feet() -> tuple[np.ndarray, dict[str, dict[str, np.ndarray]]]:
    """The OpenSim example's GRF: slot "" is the right foot, "1_" the left (its XML says so)."""
    labels = GRF_MOT.read_text().split("endheader")[1].split("\n")[1].split()
    data = np.loadtxt(GRF_MOT, skiprows=7)
    col = {name: data[:, j] for j, name in enumerate(labels)}

    def foot(slot: str) -> dict[str, np.ndarray]:
        return {key: np.column_stack([col[f"{slot}{stem}{axis}"] for axis in "xyz"])
                for key, stem in (("force", "ground_force_v"), ("cop", "ground_force_p"),
                                  ("torque", "ground_torque_"))}

    return col["time"], {"r": foot(""), "l": foot("1_")}


def _table(opensim, path: Path) -> tuple[list[str], np.ndarray, np.ndarray]:
    table = opensim.TimeSeriesTable(str(path))
    labels = list(table.getColumnLabels())
    values = np.column_stack([table.getDependentColumn(name).to_numpy() for name in labels])
    return labels, np.asarray(table.getIndependentColumn()), values


def test_column_layout() -> None:
    time = np.arange(3) * 0.01
    feet = {side: {"force": np.ones((3, 3)), "cop": np.zeros((3, 3))} for side in ("l", "r")}
    names = list(grf_columns(time, feet))
    per_side = [f"ground_force_{{s}}_{q}{a}" for q in "vp" for a in "xyz"] + \
               [f"ground_torque_{{s}}_{a}" for a in "xyz"]
    assert names == [n.format(s="r") for n in per_side] + [n.format(s="l") for n in per_side]
    assert not grf_columns(time, feet)["ground_torque_l_y"].any()  # no torque given -> zeros


@needs_data
def test_real_grf_round_trips_through_opensim(opensim, tmp_path: Path) -> None:
    time, feet = _example_feet()
    path = tmp_path / "walk_grf.mot"
    write_grf_mot(path, time, feet, comments=["written by gait's tests"])

    labels, read_time, values = _table(opensim, path)
    expected = grf_columns(time, feet)
    assert labels == list(expected)
    np.testing.assert_allclose(read_time, time, rtol=0, atol=1e-9)
    np.testing.assert_allclose(values, np.column_stack(list(expected.values())), rtol=1e-7, atol=1e-6)
    assert np.allclose(values[:, labels.index("ground_force_r_vy")], feet["r"]["force"][:, 1], rtol=1e-7)

    storage = opensim.Storage(str(path))
    assert storage.getSize() == len(time)
    assert storage.getColumnLabels().getSize() == len(labels) + 1  # with time


@needs_data
def test_gait_reads_back_the_same_canonical_channels(tmp_path: Path) -> None:
    from gaitcli.data import naming
    from gaitcli.io.opensim_files import read_opensim

    time, feet = _example_feet()
    write_grf_mot(tmp_path / "walk_grf.mot", time, feet)
    written, _ = naming.opensim_canonical(read_opensim(tmp_path / "walk_grf.mot").series["table"], "unknown")
    original, _ = naming.opensim_canonical(read_opensim(GRF_MOT).series["table"], "unknown")
    assert sorted(written.channels) == sorted(original.channels)
    for name in original.channels:
        np.testing.assert_allclose(written.channel(name), original.channel(name), rtol=1e-7, atol=1e-6)


@needs_data
def test_external_loads_xml_loads_in_opensim(opensim, tmp_path: Path) -> None:
    time, feet = _example_feet()
    write_grf_mot(tmp_path / "walk_grf.mot", time, feet)
    xml = tmp_path / "walk_grf.xml"
    write_external_loads_xml(xml, "walk_grf.mot")

    loads = opensim.ExternalLoads(str(xml), True)
    assert loads.getSize() == 2
    assert loads.getDataFileName() == "walk_grf.mot"
    for k, side in enumerate(("r", "l")):
        force = loads.get(k)
        assert force.get_applied_to_body() == f"calcn_{side}"
        assert force.get_force_expressed_in_body() == "ground"
        assert force.get_point_expressed_in_body() == "ground"
        assert force.get_force_identifier() == f"ground_force_{side}_v"
        assert force.get_point_identifier() == f"ground_force_{side}_p"
        assert force.get_torque_identifier() == f"ground_torque_{side}_"


@needs_data
def test_model_with_the_external_loads_applies_the_written_forces(opensim, tmp_path: Path) -> None:
    """A model given the written XML finds its .mot beside it and every identifier's columns."""
    time, feet = _example_feet()
    write_grf_mot(tmp_path / "walk_grf.mot", time, feet)
    write_external_loads_xml(tmp_path / "walk_grf.xml", "walk_grf.mot")
    model = opensim.Model(str(MODEL))
    loads = opensim.ExternalLoads(str(tmp_path / "walk_grf.xml"), True)
    model.addModelComponent(loads)
    model.initSystem()  # connects the forces to the data: raises if a column is missing
    row = int(np.argmax(np.minimum(feet["r"]["force"][:, 1], feet["l"]["force"][:, 1])))  # double support
    for k, side in enumerate(("r", "l")):
        force, point = loads.get(k).getForceAtTime(time[row]), loads.get(k).getPointAtTime(time[row])
        np.testing.assert_allclose([force.get(i) for i in range(3)], feet[side]["force"][row], rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose([point.get(i) for i in range(3)], feet[side]["cop"][row], atol=1e-7)


def test_nan_becomes_zero(tmp_path: Path, opensim) -> None:
    time = np.arange(4) * 0.01
    cop = np.full((4, 3), np.nan)
    cop[2] = [0.1, 0.0, 0.2]
    force = np.array([[0, 0, 0], [np.nan, np.nan, np.nan], [1, 700, 2], [0, 0, 0]], dtype=float)
    path = tmp_path / "grf.mot"
    write_grf_mot(path, time, {"r": {"force": force, "cop": cop}})
    assert "nan" not in path.read_text().lower()
    labels, _, values = _table(opensim, path)
    px = values[:, labels.index("ground_force_r_px")]
    np.testing.assert_array_equal(px, [0, 0, 0.1, 0])
    np.testing.assert_array_equal(values[:, labels.index("ground_force_r_vy")], [0, 0, 700, 0])


def test_failed_write_leaves_no_partial_file(tmp_path: Path, monkeypatch) -> None:
    time = np.arange(3) * 0.01
    feet = {"r": {"force": np.zeros((3, 3)), "cop": np.zeros((3, 3))}}
    with pytest.raises(DataError, match="ground_force_r_v"):  # checked before anything is written
        write_grf_mot(tmp_path / "grf.mot", time, {"r": {"force": np.zeros((2, 3)), "cop": np.zeros((3, 3))}})
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    with pytest.raises(OSError):  # its folder cannot be made
        write_grf_mot(blocked / "grf.mot", time, feet)
    with pytest.raises(OSError):
        write_external_loads_xml(blocked / "loads.xml", "grf.mot")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]

    old = tmp_path / "old.mot"
    write_grf_mot(old, time, feet)
    before = old.read_bytes()

    def failing_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr("gaitcli.io.parquet.os.replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):  # fails after the temporary file was written
        write_grf_mot(old, time, {"l": feet["r"]})
    assert old.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "old.mot"]
