"""The one time-series type every reader returns and everything downstream takes.

After KineticsToolkit: a time vector, channels by name with time on axis 0, a unit per
channel, events as (time, name, side). Values are float64; missing samples are NaN.
Operations return copies; nothing is changed in place unless a method says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

SIDES = ("r", "l")


@dataclass(frozen=True)
class Event:
    """A gait event on the recording's time axis (seconds, same axis as ``TimeSeries.time``)."""

    time: float
    name: str  # "foot_strike", "foot_off", or the file's own label for anything else
    side: str = ""  # "r", "l" or "" when the event belongs to no foot
    source: str = "file"  # "file", "forceplate" or "kinematics"


@dataclass
class TimeSeries:
    """Channels sampled on one time vector.

    ``data`` has shape (n_samples, n_channels); ``channels`` and ``units`` have one entry per
    column. ``rate`` is the nominal sampling rate in Hz (the file's declared rate, or the
    median of 1/dt when the file declares none).
    """

    time: np.ndarray
    data: np.ndarray
    channels: list[str]
    units: list[str]
    rate: float  # declared rate when the time column agrees with it within 5 %, else 1/median(dt)

    def __post_init__(self) -> None:
        self.time = np.asarray(self.time, dtype=np.float64)
        self.data = np.asarray(self.data, dtype=np.float64)
        if self.data.ndim == 1:
            self.data = self.data[:, None]
        if self.time.ndim != 1 or self.data.shape[0] != self.time.shape[0]:
            raise ValueError(
                f"time has shape {self.time.shape} but data has shape {self.data.shape}; "
                "expected time (n,) and data (n, channels)"
            )
        if len(self.channels) != self.data.shape[1] or len(self.units) != self.data.shape[1]:
            raise ValueError(
                f"{self.data.shape[1]} data columns but {len(self.channels)} channel names "
                f"and {len(self.units)} units"
            )
        self.channels = list(self.channels)
        self.units = list(self.units)
        self._positions: dict[str, int] = {}

    # -- access -----------------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self.time.shape[0])

    @property
    def duration(self) -> float:
        return float(self.time[-1] - self.time[0]) if len(self) else 0.0

    def index(self, name: str) -> int:
        # A name -> column map, checked on every use so that edits of ``channels`` stay safe.
        position = self._positions.get(name)
        if position is not None and position < len(self.channels) and self.channels[position] == name:
            return position
        self._positions = {channel: j for j, channel in enumerate(self.channels)}
        try:
            return self._positions[name]
        except KeyError:
            raise KeyError(f"no channel named {name!r}") from None

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        try:
            self.index(name)
            return True
        except KeyError:
            return False

    def channel(self, name: str) -> np.ndarray:
        """A copy of one channel's values."""
        return self.data[:, self.index(name)].copy()

    def unit(self, name: str) -> str:
        return self.units[self.index(name)]

    # -- copies -----------------------------------------------------------------------------
    def copy(self) -> "TimeSeries":
        return replace(self, time=self.time.copy(), data=self.data.copy(),
                       channels=list(self.channels), units=list(self.units))

    def select(self, names: Sequence[str]) -> "TimeSeries":
        """The named channels, in the order given."""
        cols = [self.index(n) for n in names]
        return replace(self, time=self.time.copy(), data=self.data[:, cols].copy(),
                       channels=list(names), units=[self.units[c] for c in cols])

    def with_channels(self, names: Sequence[str], values: np.ndarray,
                      units: Sequence[str]) -> "TimeSeries":
        """A copy with channels added (or replaced, when the name exists)."""
        out = self.copy()
        values = np.asarray(values, dtype=np.float64).reshape(len(self), len(names))
        for j, (name, unit) in enumerate(zip(names, units)):
            if name in out.channels:
                k = out.index(name)
                out.data[:, k] = values[:, j]
                out.units[k] = unit
            else:
                out.data = np.column_stack([out.data, values[:, j]])
                out.channels.append(name)
                out.units.append(unit)
        return out

    def between(self, t0: float, t1: float) -> "TimeSeries":
        """Samples with t0 <= time <= t1."""
        keep = (self.time >= t0) & (self.time <= t1)
        return replace(self, time=self.time[keep].copy(), data=self.data[keep].copy(),
                       channels=list(self.channels), units=list(self.units))

    def to_frame(self) -> "Any":
        """A pandas DataFrame with a ``time`` column followed by the channels."""
        import pandas as pd

        frame = pd.DataFrame(self.data, columns=self.channels)
        frame.insert(0, "time", self.time)
        return frame


@dataclass
class SubjectInfo:
    """What a file says about the person. ``sources`` records where each value came from."""

    name: str | None = None
    mass_kg: float | None = None
    height_m: float | None = None
    leg_length_m: dict[str, float] = field(default_factory=dict)  # side -> metres
    sources: dict[str, str] = field(default_factory=dict)  # field -> "c3d PROCESSING:Bodymass", ...


@dataclass
class Recording:
    """Everything one file holds, as read, before naming and processing.

    ``series`` holds one TimeSeries per sampling clock:
      - ``"table"``: the columns of a .mot/.sto/.trc/text table;
      - ``"points"``: C3D POINT data, markers and model outputs alike as ``<label>_x/_y/_z``,
        in the file's units (subject prefixes such as ``Matt:`` kept in the channel name);
      - ``"analog"``: C3D analog channels, scaled to physical units;
      - ``"forceplates"``: per plate ``fp<i>_fx/fy/fz`` [N], ``fp<i>_copx/copy/copz`` [m] and
        ``fp<i>_tz`` [N·m] (free moment about the vertical), in the lab frame, force being the
        force the plate applies to the subject; ``info["forceplate_vertical_axis"]`` ('+Z',
        '+Y', ...) says which lab axis is up.
    ``point_groups`` maps C3D point labels (without prefix) to ``marker``, ``angle``,
    ``moment``, ``force``, ``power`` or ``other``.
    """

    path: Path
    format: str  # "c3d", "mot", "sto", "trc", "wbds"
    series: dict[str, TimeSeries]
    events: list[Event] = field(default_factory=list)
    subject: SubjectInfo = field(default_factory=SubjectInfo)
    point_groups: dict[str, str] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    time_normalised: bool = False  # values are over % gait cycle already (0..100), not seconds

    def all_channels(self) -> Iterable[tuple[str, str]]:
        """(series key, channel name) for every channel of every series."""
        for key, ts in self.series.items():
            for name in ts.channels:
                yield key, name


def nominal_rate(time: np.ndarray) -> float:
    """The sampling rate implied by a time vector: 1 / median(dt). Robust to rounded times."""
    if time.shape[0] < 2:
        return 0.0
    dt = np.diff(time)
    dt = dt[dt > 0]
    return float(1.0 / np.median(dt)) if dt.size else 0.0


def as_path(path: str | Path) -> Path:
    return path if isinstance(path, Path) else Path(path)
