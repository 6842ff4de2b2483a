"""Gait cycles: ipsilateral foot strike to foot strike, validity checks, time normalisation."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from gaitcli.data.events import OFF, STRIKE
from gaitcli.data.timeseries import SIDES, Event, TimeSeries

DEFAULT_POINTS = 101
MIN_DURATION_S = 0.2
MAX_DURATION_S = 2.0


@dataclass(frozen=True)
class Cycle:
    side: str
    index: int  # order within the trial and side, from 0
    start: float
    end: float
    foot_off: float | None  # time of the ipsilateral foot off inside the cycle
    event_source: str  # "file", "forceplate", "kinematics" or "pre-normalised"

    @property
    def duration(self) -> float:
        return self.end - self.start

    @property
    def stance_percent(self) -> float | None:
        if self.foot_off is None:
            return None
        return 100.0 * (self.foot_off - self.start) / self.duration


def segment(events: list[Event], sources: dict[str, str]) -> list[Cycle]:
    """Cycles between consecutive foot strikes of each side."""
    cycles: list[Cycle] = []
    for side in SIDES:
        strikes = sorted(e.time for e in events if e.side == side and e.name == STRIKE)
        offs = sorted(e.time for e in events if e.side == side and e.name == OFF)
        for index, (start, end) in enumerate(zip(strikes[:-1], strikes[1:])):
            inside = [t for t in offs if start < t < end]
            cycles.append(Cycle(side, index, start, end, inside[0] if inside else None,
                                sources.get(side, "none")))
    return cycles


def rejection(cycle: Cycle, ts: TimeSeries, required: list[str],
              min_duration: float = MIN_DURATION_S, max_duration: float = MAX_DURATION_S) -> str | None:
    """Why a cycle is not valid, as ``"kind: detail"``, or None when it is valid."""
    if not min_duration <= cycle.duration <= max_duration:
        return f"duration out of range: {cycle.duration:.2f} s, not {min_duration:g}-{max_duration:g} s"
    if cycle.start < ts.time[0] - 1e-9 or cycle.end > ts.time[-1] + 1e-9:
        return f"beyond the recording: {cycle.start:.2f}-{cycle.end:.2f} s"
    window = (ts.time >= cycle.start - 1e-9) & (ts.time <= cycle.end + 1e-9)
    if window.sum() < 10:
        return f"too few samples: {int(window.sum())}"
    if required:
        finite = np.all(np.isfinite(ts.select(required).data[window]), axis=0)
        if not finite.all():
            return "gap in joint angles: " + ", ".join(n for n, ok in zip(required, finite) if not ok)
    return None


def normalise(ts: TimeSeries, start: float, end: float, points: int = DEFAULT_POINTS) -> np.ndarray:
    """Channels between ``start`` and ``end`` resampled to ``points`` samples (0..100 %).

    Linear interpolation; a NaN in the source makes the neighbouring output samples NaN.
    """
    grid = np.linspace(start, end, points)
    out = np.empty((points, len(ts.channels)))
    for j in range(len(ts.channels)):
        out[:, j] = np.interp(grid, ts.time, ts.data[:, j])
    return out


def count_reasons(reasons: list[str]) -> dict[str, int]:
    """Rejection counts by kind (the part of each reason before the colon)."""
    return dict(Counter(r.split(":")[0] for r in reasons))
