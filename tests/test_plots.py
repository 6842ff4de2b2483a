"""gaitcli.eval.plots: PNG figures from synthetic and real gait cycles; matplotlib stays optional."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gaitcli.errors import DataError
from gaitcli.eval import plots

from conftest import REAL

MOMENTS = [f"{joint}_{side}_moment" for joint in ("hip_flexion", "knee_angle", "ankle_angle") for side in "rl"]


def _synthetic_waveforms(channels: list[str], models: list[str], cycles: int = 12, points: int = 101) -> pd.DataFrame:
    """Sinusoidal 'moments' with cycle-to-cycle noise; each model a biased, noisy copy."""
    rng = np.random.default_rng(0)
    percent = np.linspace(0, 100, points)
    parts = []
    for c, channel in enumerate(channels):
        for k in range(cycles):
            clean = (1 + 0.2 * c) * np.sin(2 * np.pi * percent / 100 + c) + rng.normal(0, 0.1)
            reference = clean + rng.normal(0, 0.05, points)
            reference[:3] = np.nan  # masked samples are left out, not drawn as zeros
            for m, model in enumerate(models):
                predicted = clean + 0.1 * (m + 1) + rng.normal(0, 0.05, points)
                parts.append(pd.DataFrame({"model": model, "channel": channel, "percent": percent,
                                           "cycle_id": f"S1/walk/{k}", "reference": reference,
                                           "predicted": predicted}))
    return pd.concat(parts, ignore_index=True)


def _efficiency_frame() -> pd.DataFrame:
    rng = np.random.default_rng(1)
    rows = [{"model": model, "variant": variant, "fraction": fraction, "subject": f"S{s}",
             "rmse": 0.3 * fraction ** -0.3 * (0.8 if variant == "ssl" else 1.0) + rng.normal(0, 0.03)}
            for model in ("transformer", "lstm") for variant in ("scratch", "ssl")
            for fraction in (0.05, 0.1, 0.25, 0.5, 1.0) for s in range(6)]
    return pd.DataFrame(rows)


def _boxes_frame() -> pd.DataFrame:
    rng = np.random.default_rng(2)
    rows = [{"model": model, "channel": channel, "subject": f"S{s}", "rmse": abs(rng.normal(0.2, 0.05))}
            for model in ("transformer", "lstm") for channel in MOMENTS for s in range(10)]
    return pd.DataFrame(rows)


def assert_valid_png(path: Path) -> None:
    """A real, non-trivial picture: a readable PNG over 10 kB that is not a single colour."""
    from matplotlib.image import imread

    assert path.is_file() and path.stat().st_size > 10_000
    pixels = imread(path)
    assert pixels.ndim == 3 and pixels.shape[0] > 200 and pixels.shape[1] > 200 and pixels.shape[2] in (3, 4)
    assert float(pixels[..., :3].std()) > 0
    assert not list(path.parent.glob(f".{path.name}.*")), "no temporary file left beside the figure"


@pytest.mark.parametrize(("channel", "label"), [
    ("knee_angle_r_moment", "Knee moment (R)"),
    ("hip_flexion_l_moment", "Hip flexion moment (L)"),
    ("ankle_angle_l", "Ankle angle (L)"),
    ("ground_force_r_vy", "Ground force vy (R)"),
    ("pelvis_tilt", "Pelvis tilt"),
])
def test_channel_label(channel, label):
    assert plots.channel_label(channel) == label


def test_plot_waveforms_synthetic(tmp_path):
    pytest.importorskip("matplotlib")
    frame = _synthetic_waveforms(MOMENTS[:5], ["transformer", "lstm"])
    path = plots.plot_waveforms(frame, tmp_path / "waves.png", title="synthetic",
                                units={c: "N·m/kg" for c in MOMENTS})
    assert path == tmp_path / "waves.png"
    assert_valid_png(path)


def test_plot_waveforms_real_cycles(tmp_path):
    """Real gait cycles (biomechZoo C3D through ingest): the reference is the ingest cycle
    table, the 'prediction' the same cycles smoothed."""
    pytest.importorskip("matplotlib")
    from gaitcli.data.ingest import ingest

    ingest([REAL / "biomechZoo-sample-study/Straight"], tmp_path / "data")
    parts = []
    for path in sorted((tmp_path / "data").rglob("*.cycles.parquet")):
        cycles = pd.read_parquet(path)
        for (side, cycle), rows in cycles.groupby(["side", "cycle"], observed=True):
            channel = f"knee_angle_{side}_moment"
            reference = rows[channel].to_numpy(dtype=float)
            parts.append(pd.DataFrame({"model": "smoothed", "channel": channel, "percent": rows["percent"],
                                       "cycle_id": f"{path.stem}/{side}/{cycle}", "reference": reference,
                                       "predicted": np.convolve(np.nan_to_num(reference), np.ones(9) / 9, "same")}))
    frame = pd.concat(parts, ignore_index=True)
    assert frame["cycle_id"].nunique() >= 10
    assert_valid_png(plots.plot_waveforms(frame, tmp_path / "real.png", units={"knee_angle_r_moment": "N·m/kg",
                                                                              "knee_angle_l_moment": "N·m/kg"}))


@pytest.mark.parametrize("log_x", [None, False])
def test_plot_efficiency(tmp_path, log_x):
    pytest.importorskip("matplotlib")
    assert_valid_png(plots.plot_efficiency(_efficiency_frame(), tmp_path / "efficiency.png", "rmse", "N·m/kg",
                                           log_x=log_x))


def test_plot_efficiency_rejects_fractions_outside_0_1(tmp_path):
    pytest.importorskip("matplotlib")
    frame = _efficiency_frame().assign(fraction=lambda f: f["fraction"] * 100)
    with pytest.raises(DataError, match="fraction"):
        plots.plot_efficiency(frame, tmp_path / "e.png")


def test_plot_subject_boxes(tmp_path):
    pytest.importorskip("matplotlib")
    assert_valid_png(plots.plot_subject_boxes(_boxes_frame(), tmp_path / "boxes.png", "rmse", "N·m/kg"))


def test_overwrites_an_existing_figure(tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "boxes.png"
    path.write_bytes(b"old")
    plots.plot_subject_boxes(_boxes_frame(), path)
    assert_valid_png(path)


@pytest.mark.parametrize(("draw", "frame", "missing"), [
    (plots.plot_waveforms, _synthetic_waveforms(MOMENTS[:1], ["m"]).drop(columns="cycle_id"), "cycle_id"),
    (plots.plot_efficiency, _efficiency_frame().drop(columns="variant"), "variant"),
    (plots.plot_subject_boxes, _boxes_frame().drop(columns="rmse"), "rmse"),
])
def test_missing_column_is_a_data_error(tmp_path, draw, frame, missing):
    with pytest.raises(DataError, match=missing) as caught:
        draw(frame, tmp_path / "x.png")
    assert "\n" not in str(caught.value)
    assert not (tmp_path / "x.png").exists()


def test_only_png_paths(tmp_path):
    from gaitcli.errors import UsageError

    with pytest.raises(UsageError, match=r"\.png"):
        plots.plot_subject_boxes(_boxes_frame(), tmp_path / "boxes.pdf")


def test_empty_frame_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="empty"):
        plots.plot_subject_boxes(_boxes_frame().iloc[:0], tmp_path / "x.png")


def test_without_matplotlib_plotting_is_unavailable(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes `import matplotlib` fail
    assert not plots.matplotlib_available()
    with pytest.raises(plots.PlottingUnavailable, match="matplotlib is not installed"):
        plots.plot_waveforms(_synthetic_waveforms(MOMENTS[:1], ["m"]), tmp_path / "w.png")
    with pytest.raises(plots.PlottingUnavailable):
        plots.plot_subject_boxes(_boxes_frame(), tmp_path / "b.png")
    assert not list(tmp_path.iterdir())
