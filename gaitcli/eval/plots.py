"""Figures of evaluation results, as PNG files: waveforms over the gait cycle, data efficiency,
per-subject boxes.

matplotlib is an optional dependency (``pip install 'gaitcli[plots]'``): it is imported inside the
functions that draw, never at import time, and without it they raise `PlottingUnavailable`.
Figures are drawn on matplotlib's object API with the Agg canvas, so no display is needed and
no pyplot state (or backend choice) of the caller is touched. Every file is written atomically:
to a temporary file in the same folder, then renamed over the target.
"""

from __future__ import annotations

import math
import os
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gaitcli.errors import DataError, GaitError, UsageError

__all__ = [
    "PlottingUnavailable",
    "channel_label",
    "matplotlib_available",
    "plot_efficiency",
    "plot_subject_boxes",
    "plot_waveforms",
]

DPI = 150
MAX_COLUMNS = 3
LEGEND_COLUMNS = 4
CHARACTER_WIDTH_IN = 0.07  # of a 9-point tick label, roughly
WAVEFORM_COLUMNS = ("model", "channel", "percent", "cycle_id", "reference", "predicted")
SIDE_NAMES = {"r": "R", "l": "L"}
REFERENCE_COLOUR = "black"
REFERENCE_BAND = "0.6"
BAND_ALPHA = 0.18
VARIANT_STYLES = {"ssl": ("-", "o"), "scratch": ("--", "s")}
OTHER_VARIANT_STYLE = (":", "^")
FONT_SIZES = {
    "font.size": 10, "axes.titlesize": 10.5, "axes.labelsize": 10, "xtick.labelsize": 9,
    "ytick.labelsize": 9, "legend.fontsize": 9, "figure.titlesize": 12,
}
INSTALL_HINT = "matplotlib is not installed: pip install 'gaitcli[plots]' (or matplotlib) to draw figures"


class PlottingUnavailable(GaitError):
    """matplotlib, needed to draw figures, is not installed."""

    def __init__(self, message: str = INSTALL_HINT) -> None:
        super().__init__(message)


def matplotlib_available() -> bool:
    """Whether matplotlib can be imported (figures can be drawn)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


# --------------------------------------------------------------------------- shared helpers


def channel_label(channel: str) -> str:
    """A readable name for a canonical channel: ``knee_angle_r_moment`` -> ``Knee moment (R)``.

    ``_moment`` and ``_angle`` are dropped (and said again as a word: ``knee_angle_l`` ->
    ``Knee angle (L)``), the side token ``r``/``l`` becomes ``(R)``/``(L)`` wherever it is
    (``ground_force_r_vy`` -> ``Ground force vy (R)``), underscores become spaces.
    """
    tokens = [t for t in channel.split("_") if t]
    if not tokens:
        return channel
    kind = ""
    if len(tokens) > 1 and tokens[-1] == "moment":
        kind, tokens = "moment", tokens[:-1]
    side = ""
    side_at = next((i for i in range(len(tokens) - 1, 0, -1) if tokens[i] in SIDE_NAMES), None)
    if side_at is not None:
        side = SIDE_NAMES[tokens.pop(side_at)]
    if len(tokens) > 1 and tokens[-1] == "angle":
        tokens = tokens[:-1]
        kind = kind or "angle"
    words = " ".join(tokens + ([kind] if kind else []))
    label = words[:1].upper() + words[1:]
    return f"{label} ({side})" if side else label


def _require_columns(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(f"{what} table lacks column(s) {', '.join(missing)} (needs {', '.join(columns)})")
    if frame.empty:
        raise DataError(f"{what} table is empty: nothing to plot")


def _png_path(path: str | Path) -> Path:
    out = Path(path)
    if out.suffix.lower() != ".png":
        raise UsageError(f"{out}: figures are written as PNG; give a path ending in .png")
    return out


def _require_matplotlib() -> None:
    if not matplotlib_available():
        raise PlottingUnavailable()


def _new_figure(width_in: float, height_in: float) -> Any:
    """A matplotlib Figure on the Agg canvas (no display, no pyplot state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width_in, height_in), dpi=DPI)
    FigureCanvasAgg(figure)
    return figure


@contextmanager
def _readable_fonts() -> Iterator[None]:
    import matplotlib

    with matplotlib.rc_context(FONT_SIZES):
        yield


def _save(figure: Any, path: Path) -> Path:
    """Write ``figure`` as PNG to ``path`` atomically (temporary file + rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # not tempfile.mkstemp: its 0600 mode would stay on the figure after the rename
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(temporary, "xb") as stream:
            figure.savefig(stream, format="png", dpi=DPI)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return path


def _colours(n: int) -> list[Any]:
    """Distinct colours: matplotlib's tab10, then tab20 for more."""
    from matplotlib import colormaps

    cmap = colormaps["tab10"] if n <= 10 else colormaps["tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


def _ordered(values: pd.Series) -> list[Any]:
    """Distinct values in order of first appearance."""
    return list(pd.unique(values))


def _axis_label(metric: str, units: str) -> str:
    return f"{metric.upper()} ({units})" if units else metric.upper()


# --------------------------------------------------------------------------- waveforms


def _mean_sd_by_percent(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    """Mean and SD (ddof 1) of ``column`` across cycles at each percent value, NaN ignored."""
    values = frame.assign(percent=frame["percent"].astype(float).round(6))
    stats = values.groupby("percent", sort=True)[column].agg(["mean", "std"])
    return stats.reset_index()


def _cycle_count_text(frame: pd.DataFrame) -> str:
    """``n = K cycles per channel`` (a range when channels differ), counting cycles with data."""
    has_data = frame["reference"].notna() | frame["predicted"].notna()
    counts = frame[has_data].groupby("channel", sort=False)["cycle_id"].nunique()
    low, high = (int(counts.min()), int(counts.max())) if len(counts) else (0, 0)
    amount = f"{low}" if low == high else f"{low}–{high}"
    return f"n = {amount} cycle{'s' if high != 1 else ''} per channel"


def _draw_band(ax: Any, stats: pd.DataFrame, colour: Any, band: Any, band_alpha: float) -> None:
    x = stats["percent"].to_numpy(dtype=float)
    mean = stats["mean"].to_numpy(dtype=float)
    sd = stats["std"].to_numpy(dtype=float)
    ax.fill_between(x, mean - sd, mean + sd, color=band, alpha=band_alpha, linewidth=0)
    ax.plot(x, mean, color=colour, linewidth=1.6)


def _grid_shape(n_panels: int) -> tuple[int, int]:
    columns = min(MAX_COLUMNS, n_panels)
    return math.ceil(n_panels / columns), columns


def _waveform_axes(figure: Any, n_channels: int) -> list[Any]:
    """One axes per channel on a grid sharing x; the grid's spare slots hidden."""
    rows, columns = _grid_shape(n_channels)
    grid = figure.subplots(rows, columns, sharex=True, squeeze=False)
    for spare in range(n_channels, rows * columns):
        grid[spare // columns][spare % columns].set_visible(False)
    return [grid[i // columns][i % columns] for i in range(n_channels)]


def _label_bottom_axes(axes: list[Any], columns: int) -> None:
    """x label and tick labels on the lowest axes of each column (also above an empty slot)."""
    for index, ax in enumerate(axes):
        if index + columns >= len(axes):
            ax.xaxis.set_tick_params(labelbottom=True)
            ax.set_xlabel("gait cycle (%)")


def _waveform_legend(figure: Any, models: list[Any], colours: dict[Any, Any], bottom_in: float,
                     height_in: float, bands: bool) -> None:
    """One legend for the figure, centred below the grid (where it covers no data)."""
    from matplotlib.legend_handler import HandlerTuple
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    # band under line, drawn in one legend slot
    handles = [(Patch(color=REFERENCE_BAND, alpha=0.35), Line2D([], [], color=REFERENCE_COLOUR, linewidth=1.6))]
    if bands:
        handles += [(Patch(color=colours[m], alpha=BAND_ALPHA), Line2D([], [], color=colours[m], linewidth=1.6))
                    for m in models]
    else:
        handles += [(Line2D([], [], color=colours[m], linewidth=1.6),) for m in models]
    labels = ["reference (mean ± SD)"] + [f"{m} (mean ± SD)" if bands else f"{m} (mean)" for m in models]
    figure.legend(handles, labels, loc="lower center", bbox_to_anchor=(0.5, 0.1 * bottom_in / height_in),
                  ncol=min(LEGEND_COLUMNS, len(labels)), frameon=False,
                  handler_map={tuple: HandlerTuple(ndivide=1)})


def plot_waveforms(frame: pd.DataFrame, path: str | Path, title: str = "",
                   units: dict[str, str] | None = None, model_bands: bool | None = None) -> Path:
    """Reference vs predicted mean ± SD over gait cycles, one subplot per channel; a PNG at ``path``.

    ``frame`` columns: ``model`` (label), ``channel``, ``percent`` (0-100), ``cycle_id``,
    ``reference`` (may be NaN) and ``predicted``. Each subplot shows the reference mean ± SD
    across cycles (black line, grey band) and each model's predicted mean ± SD (coloured line
    and band), computed at each percent value with NaN left out. ``units`` maps channels to
    their unit for the y labels. ``model_bands=None`` draws the models' SD bands only for up to
    two models: more overlapping bands hide each other and the reference.
    """
    _require_columns(frame, WAVEFORM_COLUMNS, "waveform")
    out = _png_path(path)
    _require_matplotlib()
    units = units or {}
    channels = _ordered(frame["channel"])
    models = _ordered(frame["model"])
    colours = dict(zip(models, _colours(len(models))))
    bands = len(models) <= 2 if model_bands is None else model_bands
    rows, columns = _grid_shape(len(channels))
    legend_rows = math.ceil((len(models) + 1) / LEGEND_COLUMNS)
    top_in, bottom_in = 0.45, 0.15 + 0.28 * legend_rows
    height_in = 2.6 * rows + top_in + bottom_in
    with _readable_fonts():
        figure = _new_figure(max(5.6, 4.0 * columns + 0.4), height_in)
        axes = _waveform_axes(figure, len(channels))
        for ax, channel in zip(axes, channels):
            of_channel = frame[frame["channel"] == channel]
            # the reference is the same for every model: count each cycle once
            reference = of_channel.drop_duplicates(["cycle_id", "percent"])
            _draw_band(ax, _mean_sd_by_percent(reference, "reference"), REFERENCE_COLOUR, REFERENCE_BAND, 0.35)
            for model in models:
                predicted = of_channel[of_channel["model"] == model]
                if not predicted.empty:
                    colour = colours[model]
                    _draw_band(ax, _mean_sd_by_percent(predicted, "predicted"), colour, colour,
                               BAND_ALPHA if bands else 0.0)
            ax.set_title(channel_label(str(channel)))
            ax.set_ylabel(units.get(str(channel), ""))
            ax.set_xlim(0, 100)
            ax.axhline(0.0, color="0.75", linewidth=0.8, zorder=0)
            ax.grid(True, color="0.92", linewidth=0.6)
        _label_bottom_axes(axes, columns)
        count = _cycle_count_text(frame)
        figure.suptitle(f"{title} ({count})" if title else count)
        _waveform_legend(figure, models, colours, bottom_in, height_in, bands)
        figure.tight_layout(rect=(0, bottom_in / height_in, 1, 1))
        return _save(figure, out)


# --------------------------------------------------------------------------- data efficiency


def _variant_style(variant: str) -> tuple[str, str]:
    return VARIANT_STYLES.get(str(variant), OTHER_VARIANT_STYLE)


def _dodge(x: np.ndarray, slot: int, n_slots: int, log_x: bool, span: float) -> np.ndarray:
    """Shift series sideways a little so error bars at the same fraction do not overlap."""
    offset = (slot - (n_slots - 1) / 2) * 0.012
    return x * 10 ** offset if log_x else x + offset * span


def _use_log_x(fractions: np.ndarray, log_x: bool | None) -> bool:
    if log_x is not None:
        return log_x
    return float(fractions.max()) / float(fractions.min()) >= 10


def _check_fractions(fractions: np.ndarray) -> None:
    bad = ~np.isfinite(fractions) | (fractions <= 0) | (fractions > 1)
    if bad.any():
        raise DataError(f"fraction must be in (0, 1]; got {fractions[bad][0]!r}")


def plot_efficiency(frame: pd.DataFrame, path: str | Path, metric: str = "rmse", units: str = "",
                    log_x: bool | None = None) -> Path:
    """A metric against the fraction of labelled training data, per model and variant; a PNG.

    ``frame`` columns: ``model``, ``variant`` (``scratch`` or ``ssl``), ``fraction`` (in
    (0, 1]), ``subject`` and ``metric``. Each (model, variant) is a line through the metric's
    mean across subjects at each fraction, with error bars of the SD across subjects;
    ``scratch`` dashed, ``ssl`` solid, one colour per model. ``log_x=None`` picks a log x axis
    when the largest fraction is at least 10 times the smallest.
    """
    _require_columns(frame, ("model", "variant", "fraction", "subject", metric), "efficiency")
    out = _png_path(path)
    _require_matplotlib()
    fractions = frame["fraction"].to_numpy(dtype=float)
    _check_fractions(fractions)
    use_log = _use_log_x(fractions, log_x)
    stats = (frame.groupby(["model", "variant", "fraction"], sort=False)[metric]
             .agg(["mean", "std"]).reset_index())
    series = list(stats.groupby(["model", "variant"], sort=False))
    models = _ordered(frame["model"])
    colours = dict(zip(models, _colours(len(models))))
    percents = np.unique(fractions * 100.0)
    span = float(percents.max() - percents.min()) or 1.0
    with _readable_fonts():
        figure = _new_figure(7.2, 4.2)
        ax = figure.subplots()
        for slot, ((model, variant), points) in enumerate(series):
            points = points.sort_values("fraction")
            x = _dodge(points["fraction"].to_numpy(dtype=float) * 100.0, slot, len(series), use_log, span)
            linestyle, marker = _variant_style(variant)
            ax.errorbar(x, points["mean"], yerr=points["std"].fillna(0.0), color=colours[model],
                        linestyle=linestyle, marker=marker, markersize=5, capsize=3, linewidth=1.6,
                        label=f"{model}, {variant}")
        _format_fraction_axis(ax, percents, use_log)
        ax.set_xlabel("labelled training data (%)")
        ax.set_ylabel(_axis_label(metric, units))
        n_subjects = frame["subject"].nunique()
        ax.set_title(f"{metric.upper()} vs labelled data (mean ± SD across {n_subjects} subjects)")
        ax.grid(True, color="0.92", linewidth=0.6)
        ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)
        figure.tight_layout()
        return _save(figure, out)


def _format_fraction_axis(ax: Any, percents: np.ndarray, use_log: bool) -> None:
    """Ticks at the fractions that were run, written as plain percentages."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    if use_log:
        ax.set_xscale("log")
        ax.xaxis.set_minor_locator(NullLocator())
        low, high = float(percents.min()), float(percents.max())
        ax.set_xlim(low / 1.3, high * 1.3)
    else:
        pad = 0.06 * (float(percents.max() - percents.min()) or 10.0)
        ax.set_xlim(float(percents.min()) - pad, float(percents.max()) + pad)
    ax.xaxis.set_major_locator(FixedLocator(percents))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))


# --------------------------------------------------------------------------- per-subject boxes


def plot_subject_boxes(frame: pd.DataFrame, path: str | Path, metric: str = "rmse", units: str = "") -> Path:
    """The metric's distribution across subjects: one box per model per channel; a PNG.

    ``frame`` columns: ``model``, ``channel``, ``subject`` and ``metric``. Channels are groups
    along the x axis (models side by side within a group, one colour each); every subject's
    value is drawn over its box as a small jittered dot.
    """
    _require_columns(frame, ("model", "channel", "subject", metric), "per-subject")
    out = _png_path(path)
    _require_matplotlib()
    channels = _ordered(frame["channel"])
    models = _ordered(frame["model"])
    colours = dict(zip(models, _colours(len(models))))
    slot = 0.8 / len(models)
    jitter = np.random.default_rng(0)  # fixed: the same data gives the same figure
    width = max(6.0, 1.6 + len(channels) * (0.45 + 0.4 * len(models)))
    with _readable_fonts():
        figure = _new_figure(width, 4.4)
        ax = figure.subplots()
        for g, channel in enumerate(channels):
            for m, model in enumerate(models):
                chosen = (frame["channel"] == channel) & (frame["model"] == model)
                values = frame.loc[chosen, metric].to_numpy(dtype=float)
                values = values[np.isfinite(values)]
                if values.size:
                    centre = g - 0.4 + slot * (m + 0.5)
                    _draw_box(ax, values, centre, slot, colours[model], jitter)
        _format_channel_axis(ax, channels, group_width_in=(width - 2.4) / len(channels))
        ax.set_ylabel(_axis_label(metric, units))
        ax.set_title(f"{metric.upper()} per subject (n = {frame['subject'].nunique()} subjects)")
        ax.grid(True, axis="y", color="0.92", linewidth=0.6)
        _model_legend(ax, models, colours)
        figure.tight_layout()
        return _save(figure, out)


def _draw_box(ax: Any, values: np.ndarray, centre: float, slot: float, colour: Any,
              jitter: np.random.Generator) -> None:
    box = ax.boxplot([values], positions=[centre], widths=slot * 0.8, patch_artist=True,
                     showfliers=False, manage_ticks=False)
    for patch in box["boxes"]:
        patch.set_facecolor((*colour[:3], 0.3))
        patch.set_edgecolor(colour)
    for part in ("whiskers", "caps"):
        for line in box[part]:
            line.set_color(colour)
    for line in box["medians"]:
        line.set_color("black")
    x = centre + jitter.uniform(-slot * 0.22, slot * 0.22, size=values.size)
    ax.scatter(x, values, s=10, color=colour, edgecolors="white", linewidths=0.4, zorder=3)


def _format_channel_axis(ax: Any, channels: list[Any], group_width_in: float) -> None:
    labels = [channel_label(str(c)) for c in channels]
    ax.set_xticks(range(len(channels)))
    crowded = max(len(label) for label in labels) * CHARACTER_WIDTH_IN > group_width_in
    ax.set_xticklabels(labels, rotation=30 if crowded else 0, ha="right" if crowded else "center")
    ax.set_xlim(-0.6, len(channels) - 0.4)
    ax.set_xlabel("channel")


def _model_legend(ax: Any, models: list[Any], colours: dict[Any, Any]) -> None:
    from matplotlib.patches import Patch

    handles = [Patch(facecolor=(*colours[m][:3], 0.3), edgecolor=colours[m], label=str(m)) for m in models]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
