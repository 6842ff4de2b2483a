"""C3D reader and force plates, on the real files under /work/shared/data only.

Fixtures live here (not in a conftest) so this file stands alone.
"""

from __future__ import annotations

import csv
import warnings
from functools import lru_cache
from pathlib import Path

import c3d
import numpy as np
import pytest

from gaitcli.data.timeseries import Recording, TimeSeries
from gaitcli.errors import ReadError
from gaitcli.io import c3d_files
from gaitcli.io.c3d_files import event_name_and_side, read_c3d, unwrap_int16
from gaitcli.io.forceplates import compute_forceplates

DATA = Path("/work/shared/data")
REAL = DATA / "real"
SAMPLES = REAL / "c3d-org-samples"
ZOO = REAL / "biomechZoo-sample-study"
GENEVA = DATA / "labeled" / "geneva-norm-pig-c3d"

ALL_C3D = sorted(set(DATA.rglob("*.c3d")) | set(DATA.rglob("*.C3D")))
# Files that legitimately fail to read, with the reason. None do today.
KNOWN_FAILURES: dict[str, str] = {}

pytestmark = pytest.mark.skipif(not ALL_C3D, reason="real data folder not available")


@lru_cache(maxsize=None)
def recording(path: Path) -> Recording:
    """Each file is read once per test session."""
    return read_c3d(path)


def geneva_index() -> list[dict[str, str]]:
    with open(GENEVA / "index.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def geneva_kinetic_files() -> list[Path]:
    return [GENEVA / "c3d" / row["file"] for row in geneva_index() if row["has_kinetics"] == "1"]


ZOO_STRAIGHT = sorted((ZOO / "Straight").glob("*.c3d"))
PIG_KINETIC = ZOO_STRAIGHT + geneva_kinetic_files() if GENEVA.exists() else ZOO_STRAIGHT


def ids(paths: list[Path]) -> list[str]:
    return [p.name for p in paths]


def xyz(ts: TimeSeries, stem: str) -> np.ndarray:
    return np.column_stack([ts.channel(f"{stem}_{axis}") for axis in "xyz"])


def plate_channels(ts: TimeSeries, plate: int, kind: str) -> np.ndarray:
    return np.column_stack([ts.channel(f"fp{plate}_{kind}{axis}") for axis in "xyz"])


def plate_numbers(ts: TimeSeries) -> list[int]:
    return [int(c[2:-3]) for c in ts.channels if c.endswith("_fx")]


def vertical_index(rec: Recording) -> int:
    return "XYZ".index(rec.info["forceplate_vertical_axis"][-1])


# --------------------------------------------------------------------------------------
# every real file


@pytest.mark.parametrize("path", ALL_C3D, ids=ids(ALL_C3D))
def test_every_real_c3d_reads(path: Path) -> None:
    if path.name in KNOWN_FAILURES:
        with pytest.raises(ReadError):
            read_c3d(path)
        return
    rec = recording(path)
    assert rec.format == "c3d" and rec.path == path
    assert rec.series, "nothing read"
    for key, ts in rec.series.items():
        assert ts.time[0] == 0.0, key
        assert ts.rate > 0, key
        assert np.allclose(np.diff(ts.time), 1.0 / ts.rate), key
        assert len(set(ts.channels)) == len(ts.channels), f"duplicate channels in {key}"
    points = rec.series["points"]
    assert all(c.endswith(("_x", "_y", "_z")) for c in points.channels)
    assert len(points) == rec.info["n_frames"]
    assert rec.info["point_rate"] == points.rate
    bare = {c[:-2].split(":")[-1] for c in points.channels}
    assert set(rec.point_groups) == bare
    assert set(rec.point_groups.values()) <= {"angle", "moment", "force", "power", "marker",
                                              "other"}
    if "analog" in rec.series:
        assert rec.info["analog_rate"] == rec.series["analog"].rate
    times = [e.time for e in rec.events]
    assert times == sorted(times)
    assert all(e.side in ("l", "r", "") and e.source == "file" for e in rec.events)


@pytest.mark.parametrize("path", ALL_C3D, ids=ids(ALL_C3D))
def test_data_block_matches_py_c3d_read_frames(path: Path) -> None:
    """The numpy decoder gives py-c3d's values (float32 there), NaN exactly where it flags."""
    rec = recording(path)
    with warnings.catch_warnings(), open(path, "rb") as handle:
        warnings.simplefilter("ignore")
        frames = list(c3d.Reader(handle).read_frames())
    ref_points = np.array([p for _, p, _ in frames])
    mine = rec.series["points"].data.reshape(len(frames), -1, 3)
    invalid = ref_points[:, :, 3] < 0
    assert np.isnan(mine[invalid]).all()
    both = ~invalid[:, :, None] & np.isfinite(mine)
    ref = ref_points[:, :, :3].astype(np.float64)
    assert np.allclose(mine[both], ref[both], rtol=1e-6, atol=1e-3)
    if "analog" in rec.series:
        ref_analog = np.concatenate([a.T for _, _, a in frames], axis=0)
        ref_analog, _ = unwrap_int16(ref_analog)  # NP1001a16 (SCALE 1, OFFSET 0) wraps
        assert np.allclose(rec.series["analog"].data, ref_analog, rtol=1e-9, atol=1e-9)


# --------------------------------------------------------------------------------------
# format variants


def test_integer_and_real_variants_give_the_same_values() -> None:
    integer, real = recording(SAMPLES / "sample01_Eb015pi.c3d"), recording(
        SAMPLES / "sample01_Eb015pr.c3d")
    assert integer.info["data_format"] == "integer" and real.info["data_format"] == "real"
    a, b = integer.series["points"], real.series["points"]
    assert a.channels == b.channels and a.units == b.units
    assert np.array_equal(np.isnan(a.data), np.isnan(b.data))
    scale = 0.083  # POINT:SCALE: one integer step in mm
    assert np.nanmax(np.abs(a.data - b.data)) <= scale
    assert np.allclose(integer.series["analog"].data, real.series["analog"].data, atol=1e-6)
    fa, fb = integer.series["forceplates"], real.series["forceplates"]
    assert np.allclose(np.nan_to_num(fa.data), np.nan_to_num(fb.data), atol=1e-6)


def test_dec_float_decoder_matches_py_c3d() -> None:
    raw = (SAMPLES / "sample09_PlugInC3D.c3d").read_bytes()[20 * 512: 40 * 512]
    buf = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 4)
    words = buf.view("<u2").reshape(-1, 2)
    normal = ((words[:, 0] >> 7) & 0xFF) > 2  # py-c3d is inexact for exponents 1 and 2
    buf = np.ascontiguousarray(buf[normal])
    mine = c3d_files._dec_to_float(buf.view("<u4").ravel())
    ref = c3d.c3d.DEC_to_IEEE_BYTES(buf.tobytes()).astype(np.float64)
    finite = np.isfinite(ref)
    assert finite.sum() > 1000
    assert np.array_equal(mine[finite], ref[finite])


# --------------------------------------------------------------------------------------
# labels, groups, units, subject


@pytest.mark.parametrize("path", PIG_KINETIC, ids=ids(PIG_KINETIC))
def test_pig_moments_are_read_with_group_units_and_mass(path: Path) -> None:
    rec = recording(path)
    points = rec.series["points"]
    for side in "LR":
        for joint in ("Hip", "Knee", "Ankle"):
            label = f"{side}{joint}Moment"
            assert f"{label}_x" in points.channels, f"{label} lost (POINT:LABELS2?)"
            assert rec.point_groups[label] == "moment"
            assert points.unit(f"{label}_x") == "Nmm"
        assert rec.point_groups[f"{side}KneeAngles"] == "angle"
        assert points.unit(f"{side}KneeAngles_x") == "deg"
    # a robust stance peak: PiG leaves a few wrong frames where it mis-assigns plates
    # (NP1012a07, NP1013a06 reach 3800-5500 for a frame or ten)
    ankle_peak = max(np.nanpercentile(np.abs(points.channel(f"{s}AnkleMoment_x")), 95)
                     for s in "LR")
    assert 500 <= ankle_peak <= 2500, "ankle moment not in N·mm/kg as PiG stores it"
    assert rec.subject.mass_kg is not None and 15 < rec.subject.mass_kg < 150
    assert rec.subject.sources["mass_kg"].startswith("c3d ")


def test_geneva_subject_matches_index() -> None:
    for row in geneva_index():
        rec = recording(GENEVA / "c3d" / row["file"])
        assert rec.subject.mass_kg == pytest.approx(float(row["body_mass_kg"]), abs=1e-3)
        assert rec.subject.height_m == pytest.approx(float(row["height_mm"]) / 1000, abs=1e-3)
        assert rec.subject.leg_length_m["l"] == pytest.approx(
            float(row["leg_length_L_mm"]) / 1000, abs=1e-3)
        assert rec.info["first_frame"] == int(row["first_frame"])
        assert len(rec.series["points"]) == int(row["n_frames"])


def test_biomechzoo_keeps_labels2_outputs() -> None:
    rec = recording(ZOO / "Straight" / "HC030A05.c3d")
    points = rec.series["points"]
    assert len(points.channels) == 3 * 290
    assert "RWristMoment_z" in points.channels  # the last label of LABELS2
    assert rec.point_groups["LArchHeightIndex"] == "other"  # POINT:SCALARS
    assert rec.point_groups["LASI"] == "marker"
    assert points.unit("LASI_x") == "mm"


def test_subject_prefix_is_kept_in_channels_and_dropped_from_groups() -> None:
    rec = recording(SAMPLES / "sample04_sub_labels.c3d")
    assert rec.info["label_prefix"] == "Matt:"
    assert "Matt:LKneeAngles_x" in rec.series["points"].channels
    assert rec.point_groups["LKneeAngles"] == "angle"
    assert rec.point_groups["LHipMoment"] == "moment"
    assert rec.subject.name == "Matt"


def test_metre_point_units_are_recorded() -> None:
    rec = recording(SAMPLES / "sample00_IST_Gait_with_EMG.c3d")
    assert rec.info["point_units"] == "m"
    assert rec.series["points"].units[0] == "m"


def test_pig_invalid_values_are_masked_in_sample23() -> None:
    rec = recording(SAMPLES / "sample23_Vicon_analysis.c3d")
    points = rec.series["points"]
    hip = xyz(points, "LHipMoment")
    assert np.nanmax(np.abs(hip)) < 20000  # the 61495 N·mm/kg hump is gone
    assert np.isnan(hip[270:300]).all()
    assert np.isnan(xyz(points, "LKneeAngles")[:253]).all()  # frames PiG did not process
    assert np.isfinite(xyz(points, "LKneeAngles")[300:600]).all()
    assert np.isfinite(xyz(points, "RAnkleMoment")[400:500]).all()
    assert any("PiG invalid" in w for w in rec.warnings)


@pytest.mark.parametrize("path", PIG_KINETIC, ids=ids(PIG_KINETIC))
def test_pig_masking_leaves_clean_files_alone(path: Path) -> None:
    rec = recording(path)
    assert not any("PiG invalid" in w for w in rec.warnings)


# --------------------------------------------------------------------------------------
# events


def test_event_times_are_shifted_into_the_recording() -> None:
    rec = recording(ZOO / "Straight" / "HC030A05.c3d")
    duration = rec.series["points"].duration
    assert duration == pytest.approx(1.96)
    assert rec.info["first_frame"] == 286
    assert len(rec.events) == 4
    assert all(0.0 <= e.time <= duration for e in rec.events)
    assert [(e.name, e.side) for e in rec.events] == [
        ("foot_strike", "r"), ("foot_strike", "l"), ("foot_off", "r"), ("foot_off", "l")]
    assert not any("outside the recording" in w for w in rec.warnings)


def test_geneva_events_match_index_after_shift() -> None:
    row = geneva_index()[0]
    rec = recording(GENEVA / "c3d" / row["file"])
    shift = (int(row["first_frame"]) - 1) / rec.info["point_rate"]
    expected = sorted(float(item.split("@")[1]) - shift for item in row["events"].split(";"))
    assert [e.time for e in rec.events] == pytest.approx(expected, abs=1e-3)
    assert {e.name for e in rec.events} == {"eFS", "eFO", "mFS", "mFO"}
    assert {e.side for e in rec.events} == {"r"}


def test_events_from_header_first_frame_and_context_names() -> None:
    qualisys = recording(REAL / "ezc3d-testFiles" / "Qualisys.c3d")  # no TRIAL group
    duration = qualisys.series["points"].duration
    assert all(0 <= e.time <= duration for e in qualisys.events)
    assert [(e.name, e.side) for e in qualisys.events][:2] == [("foot_strike", "l"),
                                                               ("foot_off", "r")]
    motion = recording(SAMPLES / "sample00_MotionAnalysis_Walk1.c3d")  # names in CONTEXTS
    assert {(e.name, e.side) for e in motion.events} == {
        ("foot_strike", "l"), ("foot_strike", "r"), ("foot_off", "l"), ("foot_off", "r")}


def test_events_outside_the_recording_are_kept_with_a_warning() -> None:
    rec = recording(ZOO / "Straight" / "HC040A14.c3d")
    assert len(rec.events) == 24
    assert any(e.time < 0 for e in rec.events)
    assert any("outside the recording" in w for w in rec.warnings)


@pytest.mark.parametrize("label, context, expected", [
    ("Foot Strike", "Left", ("foot_strike", "l")),
    ("foot off", "Right", ("foot_off", "r")),
    ("RHS", "", ("foot_strike", "r")),
    ("LTO", "", ("foot_off", "l")),
    ("", "LHS", ("foot_strike", "l")),
    ("mFS", "Right", ("mFS", "r")),
    ("Event", "General", ("Event", "")),
])
def test_event_names(label: str, context: str, expected: tuple[str, str]) -> None:
    assert event_name_and_side(label, context) == expected


# --------------------------------------------------------------------------------------
# analog


def test_missing_analog_rate_is_derived_with_a_warning() -> None:
    rec = recording(SAMPLES / "sample28_type1.c3d")
    assert rec.series["analog"].rate == 100.0
    assert rec.info["analog_rate"] == 100.0
    assert any("ANALOG:RATE" in w for w in rec.warnings)


def test_16_bit_wraparound_is_unwrapped() -> None:
    rec = recording(GENEVA / "c3d" / "walkNorm_NP1001a16.c3d")
    analog = rec.series["analog"]
    moment = analog.channel("Moment.My3")
    assert np.abs(np.diff(moment)).max() < 5000
    assert np.abs(moment).max() > 32768  # the true values beyond the 16-bit range
    assert any("wrapped" in w for w in rec.warnings)
    raw = np.array([[32000.0], [32700.0], [-32700.0], [-32100.0], [32600.0]])
    fixed, counts = unwrap_int16(raw)
    assert fixed.ravel().tolist() == [32000.0, 32700.0, 32836.0, 33436.0, 32600.0]
    assert counts == {0: 2}


# --------------------------------------------------------------------------------------
# force plates


def test_type2_and_type4_plates_agree() -> None:
    type2 = recording(SAMPLES / "sample10_TYPE-2a.c3d").series["forceplates"]
    type4 = recording(SAMPLES / "sample10_TYPE-4a.c3d").series["forceplates"]
    for plate in (1, 2):
        fz2, fz4 = type2.channel(f"fp{plate}_fz"), type4.channel(f"fp{plate}_fz")
        assert fz4.max() == pytest.approx(fz2.max(), rel=0.01)
        loaded = fz2 > 50
        assert np.abs(fz4[loaded] - fz2[loaded]).max() <= 0.01 * fz2.max()
        for axis in "xy":  # shear differs by the cross-talk terms of the full matrix only
            a, b = type2.channel(f"fp{plate}_f{axis}"), type4.channel(f"fp{plate}_f{axis}")
            assert np.abs(a[loaded] - b[loaded]).max() <= 0.05 * np.abs(a[loaded]).max() + 1
        cop2, cop4 = plate_channels(type2, plate, "cop"), plate_channels(type4, plate, "cop")
        stance = fz2 > 0.25 * fz2.max()
        assert np.abs(cop2[stance] - cop4[stance]).max() < 0.003  # m


@pytest.mark.parametrize("name", ["sample26_Walking_Hybrid_1_1.c3d",
                                  "sample26_Walking_Hybrid_1_2.c3d", "sample10_TYPE-3.c3d"])
def test_kistler_plates_give_body_weight_and_cop_on_the_plate(name: str) -> None:
    path = SAMPLES / name
    rec = recording(path)
    plates = rec.series["forceplates"]
    corners, types = plate_geometry(path)
    up = vertical_index(rec)
    kistler = [i + 1 for i, t in enumerate(types) if t == 3]
    assert kistler
    for plate in kistler:
        vertical = plate_channels(plates, plate, "f")[:, up]
        assert 500 <= vertical.max() <= 2000
        stance = vertical > 0.2 * vertical.max()
        cop = plate_channels(plates, plate, "cop")[stance]
        lo, hi = corners[plate - 1].min(axis=0), corners[plate - 1].max(axis=0)
        horizontal = [a for a in range(3) if a != up]
        inside = ((cop[:, horizontal] >= lo[horizontal] - 0.01)
                  & (cop[:, horizontal] <= hi[horizontal] + 0.01)).all(axis=1)
        assert inside.all(), f"plate {plate}: COP leaves the plate"


def plate_geometry(path: Path) -> tuple[np.ndarray, list[int]]:
    """Corners in metres and plate types, straight from the parameters (py-c3d)."""
    with warnings.catch_warnings(), open(path, "rb") as handle:
        warnings.simplefilter("ignore")
        reader = c3d.Reader(handle)
        corners = reader.get("FORCE_PLATFORM:CORNERS").float_array.reshape(-1, 4, 3)
        types = reader.get("FORCE_PLATFORM:TYPE").int16_array.ravel().tolist()
        unit = reader.get("POINT:UNITS").string_value.strip("\x00 ")
    return corners * (1e-3 if unit == "mm" else 1.0), types


def test_type1_plate_with_derived_analog_rate() -> None:
    rec = recording(SAMPLES / "sample28_type1.c3d")
    plates = rec.series["forceplates"]
    assert plates.rate == 100.0
    assert rec.info["forceplate_vertical_axis"] == "+Y"  # BTS lab: Y up
    vertical = plates.channel("fp1_fy")
    assert 500 <= vertical.max() <= 1500
    corners, _ = plate_geometry(SAMPLES / "sample28_type1.c3d")
    stance = vertical > 100
    cop = plate_channels(plates, 1, "cop")[stance]
    assert (cop[:, 0] > corners[0][:, 0].min() - 0.01).all()
    assert (cop[:, 0] < corners[0][:, 0].max() + 0.01).all()


@pytest.mark.parametrize("path", ALL_C3D, ids=ids(ALL_C3D))
def test_plate_outputs_are_sane(path: Path) -> None:
    rec = recording(path)
    if "forceplates" not in rec.series:
        pytest.skip("no force plates")
    plates = rec.series["forceplates"]
    up = vertical_index(rec)
    for plate in plate_numbers(plates):
        assert plates.unit(f"fp{plate}_fx") == "N" and plates.unit(f"fp{plate}_copx") == "m"
        force = plate_channels(plates, plate, "f")
        assert np.isfinite(force).all()
        vertical = force[:, up]
        assert vertical.min() > -50, "vertical reaction must be positive under load"
        cop = plate_channels(plates, plate, "cop")
        assert np.isnan(cop[np.abs(vertical) < 10]).all()


# files whose foot markers tell where the COP must be (heel -> toe segment of the foot)
FOOT_MARKERS = {
    "HC030A05.c3d": ("{s}HEE", "{s}TOE"), "HC050A11.c3d": ("{s}HEE", "{s}TOE"),
    "sample00_Vicon_pyCGM2_CGM24_Walking01.c3d": ("{s}HEE", "{s}TOE"),
    "sample10_TYPE-2a.c3d": ("{s}HEE", "{s}TOE"), "sample10_TYPE-4a.c3d": ("{s}HEE", "{s}TOE"),
    "sample09_PlugInC3D.c3d": ("{s}HEE", "{s}TOE"), "walking2.c3d": ("{s}CAL", "{s}MT2"),
    "walking5.c3d": ("{s}CAL", "{s}MT2"), "BTS.c3d": ("{lower} heel", "{lower} met"),
}


@pytest.mark.parametrize("name", sorted(FOOT_MARKERS))
def test_cop_lies_under_the_stance_foot(name: str) -> None:
    path = next(p for p in ALL_C3D if p.name == name)
    rec = recording(path)
    points, plates = rec.series["points"], rec.series["forceplates"]
    step = int(round(plates.rate / points.rate))
    up = vertical_index(rec)
    horizontal = [a for a in range(3) if a != up]
    heel_pattern, toe_pattern = FOOT_MARKERS[name]
    checked = 0
    for plate in plate_numbers(plates):
        vertical = plate_channels(plates, plate, "f")[::step, up][:len(points)]
        if vertical.max() < 200:
            continue
        stance = np.flatnonzero(vertical > 0.5 * vertical.max())
        frame = stance[len(stance) // 2]
        cop = plate_channels(plates, plate, "cop")[frame * step, horizontal] * 1000
        distances = []
        for side in "LR":
            fmt = {"s": side, "lower": side.lower()}
            heel = xyz(points, heel_pattern.format(**fmt))[frame, horizontal]
            toe = xyz(points, toe_pattern.format(**fmt))[frame, horizontal]
            distances.append(distance_to_segment(cop, heel, toe))
        assert min(distances) < 50, f"plate {plate}: COP {min(distances):.0f} mm from the foot"
        checked += 1
    assert checked


def distance_to_segment(point: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        return np.inf
    t = np.clip(np.dot(point - a, b - a) / np.dot(b - a, b - a), 0.0, 1.0)
    return float(np.linalg.norm(point - (a + t * (b - a))))


PIG_GRF = PIG_KINETIC + [SAMPLES / "sample00_Vicon_pyCGM2_CGM24_Walking01.c3d"]


def test_plate_force_per_kg_matches_pig_ground_reaction() -> None:
    """Plate vertical force / body mass vs PiG GroundReactionForce (N/kg) at each foot's peak."""
    ratios = []
    for path in PIG_GRF:
        rec = recording(path)
        points, plates = rec.series["points"], rec.series["forceplates"]
        k = int(round(plates.rate / points.rate))
        n = len(points)
        vertical = sum(plates.channel(f"fp{i}_fz") for i in plate_numbers(plates))
        per_frame = vertical[:n * k].reshape(n, k).mean(axis=1) / rec.subject.mass_kg
        for side in "LR":
            name = f"{side}GroundReactionForce_z"
            if name not in points.channels:
                continue
            pig = points.channel(name)
            if not np.nanmax(pig, initial=0) > 5:
                continue
            frame = int(np.nanargmax(pig))
            ratios.append(per_frame[frame] / pig[frame])
    ratios = np.array(ratios)
    assert len(ratios) >= 60  # 64 feet with a plate strike
    assert np.median(np.abs(ratios - 1)) < 0.005
    assert (np.abs(ratios - 1) < 0.05).mean() >= 0.95
    assert (np.abs(ratios - 1) < 0.10).all()


def test_plates_with_moment_units_1000x_off_are_repaired() -> None:
    for name in ("sample23_Vicon_analysis.c3d", "sample03_gait-raw.c3d"):
        rec = recording(SAMPLES / name)
        assert any("1000x" in w for w in rec.warnings), name
        plates = rec.series["forceplates"]
        corners, _ = plate_geometry(SAMPLES / name)
        for plate in plate_numbers(plates):
            force = plate_channels(plates, plate, "f")
            loaded = force[:, 2] > 0.5 * force[:, 2].max()
            cop = plate_channels(plates, plate, "cop")[loaded]
            centre = corners[plate - 1].mean(axis=0)
            assert np.abs(cop[:, :2] - centre[:2]).max() < 0.4, f"{name} plate {plate}"


def test_zero_offset_is_removed_only_when_clear() -> None:
    rec = recording(SAMPLES / "sample10_TYPE-3.c3d")
    plates = rec.series["forceplates"]
    assert any("zero offset removed (vertical +212" in w for w in rec.warnings)
    assert abs(np.median(plates.channel("fp3_fz"))) < 2
    static = recording(ZOO / "Static" / "HC002D02.c3d")  # subject stands on a plate throughout
    assert not any("zero offset" in w for w in static.warnings)
    assert static.series["forceplates"].channel("fp1_fz").min() > 100


def test_raw_volt_channels_are_not_turned_into_forces() -> None:
    path = SAMPLES / "sample10_TYPE-2a.c3d"
    rec = recording(path)
    analog = rec.series["analog"]
    volts = analog.copy()
    volts.units = ["V"] * len(volts.units)
    volts.data = volts.data / 1000.0  # a plausible ADC range
    params = c3d_files._C3DFile(path, path.read_bytes())._plate_parameters()
    result = compute_forceplates(volts, params)
    assert result.series is None
    assert any("channels in V without calibration; forces skipped" in w for w in result.warnings)


def test_qualisys_plates_use_their_newton_channels() -> None:
    """Qualisys.c3d declares V on most analog channels, but its plates read N / N·mm ones."""
    rec = recording(REAL / "ezc3d-testFiles" / "Qualisys.c3d")
    plates = rec.series["forceplates"]
    assert 600 < plates.channel("fp1_fz").max() < 1200
    assert 600 < plates.channel("fp2_fz").max() < 1200


def test_positive_origin_z_is_flipped_with_a_warning() -> None:
    rec = recording(SAMPLES / "sample26_Walking_Hybrid_1_1.c3d")
    assert any("ORIGIN z stored positive" in w for w in rec.warnings)
    assert not any("ORIGIN" in w for w in recording(SAMPLES / "sample10_TYPE-2a.c3d").warnings)


# --------------------------------------------------------------------------------------
# bad input


GOOD = ZOO / "Straight" / "HC030A05.c3d"


def assert_read_error(path: Path, contains: str = "") -> ReadError:
    with pytest.raises(ReadError) as info:
        read_c3d(path)
    assert path.name in str(info.value)
    assert contains in info.value.reason
    assert "\n" not in info.value.reason
    return info.value


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.c3d"
    path.write_bytes(b"")
    assert_read_error(path, "empty")


def test_missing_file(tmp_path: Path) -> None:
    assert_read_error(tmp_path / "absent.c3d", "cannot open")


def test_random_bytes(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    for k in range(20):
        path = tmp_path / f"random{k}.c3d"
        data = rng.bytes(int(rng.integers(1, 20000)))
        if k % 2:  # with the C3D key byte, to get past the first check
            data = bytes([2, 0x50]) + data
        path.write_bytes(data)
        assert_read_error(path)


@pytest.mark.parametrize("cut", [1, 100, 511, 512, 516, 2000, 34000, 34816, 35000, 600000,
                                 1137000])
def test_truncated_file(tmp_path: Path, cut: int) -> None:
    path = tmp_path / f"cut{cut}.c3d"
    path.write_bytes(GOOD.read_bytes()[:cut])
    error = assert_read_error(path)
    if cut > 34816:
        assert error.reason.startswith("truncated: data section ends at frame")


def test_truncated_data_section_reports_frames(tmp_path: Path) -> None:
    raw = GOOD.read_bytes()
    path = tmp_path / "half.c3d"
    path.write_bytes(raw[:len(raw) // 2])
    error = assert_read_error(path, "truncated")
    assert "of 197" in error.reason


def test_corrupted_parameter_section(tmp_path: Path) -> None:
    raw = bytearray(GOOD.read_bytes())
    start = (raw[0] - 1) * 512
    cases = {
        "zeroed": lambda b: b.__setitem__(slice(start + 4, start + 404), bytes(400)),
        "processor": lambda b: b.__setitem__(start + 3, 99),
        "garbage": lambda b: b.__setitem__(slice(start + 4, start + 4004),
                                           np.random.default_rng(2).bytes(4000)),
    }
    for name, corrupt in cases.items():
        data = bytearray(raw)
        corrupt(data)
        path = tmp_path / f"{name}.c3d"
        path.write_bytes(bytes(data))
        assert_read_error(path, "parameter section")


def test_point_count_disagreeing_with_header(tmp_path: Path) -> None:
    raw = bytearray(GOOD.read_bytes())
    raw[2:4] = (100).to_bytes(2, "little")  # header point count 290 -> 100
    path = tmp_path / "points.c3d"
    path.write_bytes(bytes(raw))
    assert_read_error(path, "POINT:USED")


def test_random_parameter_damage_never_escapes_as_another_error(tmp_path: Path) -> None:
    raw = GOOD.read_bytes()
    rng = np.random.default_rng(3)
    for k in range(40):
        data = bytearray(raw)
        start = 512 + int(rng.integers(0, 34000))
        size = int(rng.integers(1, 400))
        data[start:start + size] = rng.bytes(size)
        path = tmp_path / f"damaged{k}.c3d"
        path.write_bytes(bytes(data))
        try:
            read_c3d(path)
        except ReadError as error:
            assert path.name in str(error)
