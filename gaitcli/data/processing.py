"""Signal processing on TimeSeries: zero-lag low-pass filtering, resampling, frames, mass.

Every function returns a new TimeSeries; the input is never changed.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import butter, sosfiltfilt

from gaitcli.data.timeseries import TimeSeries

FILTER_ORDER = 4  # applied forwards and backwards: 8th-order zero-lag response


def _finite_runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(start, stop) index pairs of the runs of True in ``mask``."""
    padded = np.concatenate([[False], mask, [False]])
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    return list(zip(edges[::2], edges[1::2]))


def lowpass(ts: TimeSeries, cutoff_hz: float, channels: list[str] | None = None) -> TimeSeries:
    """Zero-lag Butterworth low-pass of the named channels (all by default).

    NaN gaps are kept: each finite run is filtered on its own; runs too short to filter
    (fewer than ~3 filter lengths) are left as they are.
    """
    if cutoff_hz <= 0:
        raise ValueError(f"cutoff must be positive, got {cutoff_hz} Hz")
    if cutoff_hz >= ts.rate / 2:
        raise ValueError(f"cutoff {cutoff_hz} Hz is not below the Nyquist frequency ({ts.rate / 2:g} Hz)")
    sos = butter(FILTER_ORDER, cutoff_hz, btype="low", fs=ts.rate, output="sos")
    min_length = 3 * (2 * FILTER_ORDER + 1) + 1
    out = ts.copy()
    columns = [out.index(name) for name in (channels if channels is not None else ts.channels)]
    finite = np.isfinite(out.data[:, columns])
    whole = [c for c, ok in zip(columns, finite.all(axis=0)) if ok]
    if whole and len(out) >= min_length:
        # Gap-free columns in one call: much faster than one call per column.
        out.data[:, whole] = sosfiltfilt(sos, out.data[:, whole], axis=0)
    for column in (c for c, ok in zip(columns, finite.all(axis=0)) if not ok):
        values = out.data[:, column]
        for start, stop in _finite_runs(np.isfinite(values)):
            if stop - start >= min_length:
                values[start:stop] = sosfiltfilt(sos, values[start:stop])
    return out


def resample(ts: TimeSeries, rate: float, start: float | None = None, stop: float | None = None) -> TimeSeries:
    """Linear interpolation onto a uniform grid ``start, start + 1/rate, ... <= stop``.

    Samples outside the input's time range, or next to a NaN sample, are NaN. Downsampling
    by more than 2x first low-passes finite runs at 0.4 x the new rate (anti-aliasing).
    """
    start = ts.time[0] if start is None else start
    stop = ts.time[-1] if stop is None else stop
    count = int(np.floor((stop - start) * rate + 1e-9)) + 1
    grid = start + np.arange(max(count, 0)) / rate
    source = ts
    if ts.rate > 2.0 * rate and len(ts) > 30:
        source = _antialiased(ts, 0.4 * rate)
    data = np.full((grid.shape[0], len(ts.channels)), np.nan)
    inside = (grid >= ts.time[0] - 1e-9) & (grid <= ts.time[-1] + 1e-9)
    for j in range(len(ts.channels)):
        column = source.data[:, j]
        # np.interp propagates NaN from either neighbour, which is the behaviour we want.
        data[inside, j] = np.interp(grid[inside], source.time, column)
    return TimeSeries(grid, data, list(ts.channels), list(ts.units), float(rate))


def _antialiased(ts: TimeSeries, cutoff_hz: float) -> TimeSeries:
    """Low-pass for decimation: NaN gaps bridged linearly for the filter, then put back."""
    gaps = ~np.isfinite(ts.data)
    filled = ts.copy()
    for j in np.flatnonzero(gaps.any(axis=0)):
        ok = ~gaps[:, j]
        filled.data[:, j] = np.interp(ts.time, ts.time[ok], ts.data[ok, j]) if ok.any() else 0.0
    out = lowpass(filled, cutoff_hz)
    out.data[gaps] = np.nan
    return out


def merge(series: list[TimeSeries]) -> TimeSeries:
    """Channels of several series on the same grid (first occurrence of a name wins)."""
    base = series[0]
    names, columns, units = [], [], []
    for ts in series:
        if ts.time.shape != base.time.shape or not np.allclose(ts.time, base.time):
            raise ValueError("merge needs series on one time grid; resample them first")
        for j, name in enumerate(ts.channels):
            if name not in names:
                names.append(name)
                columns.append(ts.data[:, j])
                units.append(ts.units[j])
    data = np.column_stack(columns) if columns else np.empty((len(base), 0))
    return TimeSeries(base.time.copy(), data, names, units, base.rate)


def divide_by_mass(ts: TimeSeries, mass_kg: float, families: dict[str, str]) -> TimeSeries:
    """Forces and moments in N or N·m divided by body mass; other channels unchanged."""
    if not mass_kg > 0:
        raise ValueError(f"body mass must be positive, got {mass_kg}")
    out = ts.copy()
    for j, (name, unit) in enumerate(zip(out.channels, out.units)):
        if families.get(name) in ("moment", "force", "grf", "grf_torque") and unit in ("N", "N·m"):
            out.data[:, j] /= mass_kg
            out.units[j] = unit + "/kg"
    return out


def walking_frame(positions: np.ndarray, vertical_axis: int = 2, up_sign: float = 1.0) -> np.ndarray:
    """Rotation (3x3) from the lab frame to x forward (walking direction), y up, z right.

    ``positions`` (n, 3) is any point that travels with the subject (a pelvis marker, the mean
    of all markers, the COP). The walking direction is its net horizontal displacement.
    """
    up = np.zeros(3)
    up[vertical_axis] = 1.0 if up_sign >= 0 else -1.0
    finite = positions[np.all(np.isfinite(positions), axis=1)]
    horizontal = np.zeros(3)
    if finite.shape[0] >= 2:
        horizontal = finite[-1] - finite[0]
        horizontal[vertical_axis] = 0.0
    if np.linalg.norm(horizontal) < 1e-9:
        horizontal = np.eye(3)[0 if vertical_axis != 0 else 1]
    forward = horizontal / np.linalg.norm(horizontal)
    right = np.cross(forward, up)
    return np.vstack([forward, up, right])
