"""Gait events: from the file, from force-plate vertical force, or from kinematics.

Order of preference per side (the first source that gives at least two foot strikes wins):
  1. ``file``: events stored in the file (C3D EVENT group);
  2. ``forceplate``: contacts of the foot's vertical GRF above a threshold with hysteresis
     (on at ``threshold``, off at half of it; default 20 N, or 20 N / 75 kg when in N/kg);
  3. ``kinematics``: Zeni et al. (2008): foot strike at the maxima, foot off at the minima, of
     the heel's (strike) and toe's (off) anterior position relative to the sacrum; with joint
     angles only, the foot position is replaced by the ankle's anterior position relative to
     the hip from planar forward kinematics of the thigh and shank (equal segment lengths;
     the extremum times do not depend on the scale).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import find_peaks

from gaitcli.data.timeseries import SIDES, Event, TimeSeries

STRIKE = "foot_strike"
OFF = "foot_off"
DEFAULT_THRESHOLD_N = 20.0
TYPICAL_MASS_KG = 75.0


@dataclass(frozen=True)
class Contact:
    start: float
    end: float


def contacts(time: np.ndarray, vertical: np.ndarray, threshold: float,
             min_duration: float = 0.05) -> list[Contact]:
    """Intervals where ``vertical`` rises above ``threshold`` until it falls below half of it.

    Contacts cut by the start or end of the recording are kept only as far as they are seen:
    their open edge is not an event (callers check ``start > time[0]``).
    """
    force = np.nan_to_num(vertical, nan=0.0)
    # Hysteresis without a Python loop: the state is set to 1 where force >= on, to 0 where
    # force < off, and carried forward elsewhere (index of the last sample that set it).
    setting = (force >= threshold) | (force < threshold / 2.0)
    last_set = np.maximum.accumulate(np.where(setting, np.arange(force.size), -1))
    loaded = np.where(last_set >= 0, force[np.maximum(last_set, 0)] >= threshold, False)
    edges = np.diff(np.concatenate([[False], loaded, [False]]).astype(np.int8))
    starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    found: list[Contact] = []
    for start, stop in zip(starts, stops):
        end = time[stop] if stop < time.size else time[-1]
        if end - time[start] >= min_duration:
            found.append(Contact(float(time[start]), float(end)))
    return found


def forceplate_events(time: np.ndarray, vertical_by_side: dict[str, np.ndarray],
                      threshold: float) -> list[Event]:
    """Foot strike/off events from each foot's vertical GRF."""
    events: list[Event] = []
    for side, vertical in vertical_by_side.items():
        for contact in contacts(time, vertical, threshold):
            if contact.start > time[0]:
                events.append(Event(contact.start, STRIKE, side, "forceplate"))
            if contact.end < time[-1]:
                events.append(Event(contact.end, OFF, side, "forceplate"))
    return sorted(events, key=lambda e: e.time)


def _extrema(time: np.ndarray, signal: np.ndarray, rate: float, maxima: bool) -> list[float]:
    """Times of well-separated maxima (or minima) of a gait-periodic signal."""
    finite = np.isfinite(signal)
    if finite.sum() < max(10, int(0.4 * rate)):
        return []
    values = np.interp(time, time[finite], signal[finite])
    values = values if maxima else -values
    span = np.nanpercentile(values, 95) - np.nanpercentile(values, 5)
    if span <= 0:
        return []
    # Steps are at least 0.4 s apart in walking and running; require a third of the range as prominence.
    peaks, _ = find_peaks(values, distance=max(1, int(0.4 * rate)), prominence=span / 3.0)
    # An extremum at the first or last sample is the recording's edge, not an event.
    peaks = [p for p in peaks if 0 < p < len(values) - 1 and finite[p]]
    return [float(time[p]) for p in peaks]


def foot_position_from_angles(hip_flexion: np.ndarray, knee_flexion: np.ndarray,
                              pelvis_tilt: np.ndarray | None = None) -> np.ndarray:
    """Anterior position of the ankle relative to the hip, in leg lengths (planar model).

    Canonical signs: hip flexion +, knee flexion +, pelvis_tilt + posterior (so the thigh's
    angle in the lab is hip_flexion + pelvis_tilt).
    """
    thigh = np.radians(hip_flexion + (pelvis_tilt if pelvis_tilt is not None else 0.0))
    shank = thigh - np.radians(knee_flexion)
    return 0.5 * np.sin(thigh) + 0.5 * np.sin(shank)


def kinematic_events_from_angles(ts: TimeSeries) -> list[Event]:
    """Zeni-style events from canonical hip and knee angles (no markers needed)."""
    events: list[Event] = []
    tilt = ts.channel("pelvis_tilt") if "pelvis_tilt" in ts else None
    for side in SIDES:
        hip, knee = f"hip_flexion_{side}", f"knee_angle_{side}"
        if hip not in ts or knee not in ts:
            continue
        position = foot_position_from_angles(ts.channel(hip), ts.channel(knee), tilt)
        events += [Event(t, STRIKE, side, "kinematics") for t in _extrema(ts.time, position, ts.rate, True)]
        events += [Event(t, OFF, side, "kinematics") for t in _extrema(ts.time, position, ts.rate, False)]
    return sorted(events, key=lambda e: e.time)


def kinematic_events_from_markers(time: np.ndarray, rate: float, heel: dict[str, np.ndarray],
                                  toe: dict[str, np.ndarray], sacrum: np.ndarray,
                                  forward: np.ndarray) -> list[Event]:
    """Zeni et al. 2008: marker positions (n, 3) projected on the walking direction ``forward``."""
    events: list[Event] = []
    sacrum_fwd = sacrum @ forward
    for side in SIDES:
        if side in heel:
            rel = heel[side] @ forward - sacrum_fwd
            events += [Event(t, STRIKE, side, "kinematics") for t in _extrema(time, rel, rate, True)]
        if side in toe:
            rel = toe[side] @ forward - sacrum_fwd
            events += [Event(t, OFF, side, "kinematics") for t in _extrema(time, rel, rate, False)]
    return sorted(events, key=lambda e: e.time)


def strikes(events: list[Event], side: str) -> list[float]:
    return sorted(e.time for e in events if e.side == side and e.name == STRIKE)


def choose_events(candidates: dict[str, list[Event]]) -> tuple[list[Event], dict[str, str]]:
    """Per side, the events of the first source (file, forceplate, kinematics) with >= 2 strikes.

    Returns the chosen events and, per side, the source used ("none" when no source has two
    strikes on that side). Foot-off events are taken from the same source when it has them,
    else from the next source that does.
    """
    order = ("file", "forceplate", "kinematics")
    chosen: list[Event] = []
    used: dict[str, str] = {}
    for side in SIDES:
        used[side] = "none"
        for source in order:
            events = candidates.get(source, [])
            if len(strikes(events, side)) >= 2:
                used[side] = source
                chosen += [e for e in events if e.side == side and e.name == STRIKE]
                break
        offs_source = [s for s in order if any(e.side == side and e.name == OFF for e in candidates.get(s, []))]
        if used[side] != "none" and offs_source:
            source = used[side] if used[side] in offs_source else offs_source[0]
            chosen += [e for e in candidates[source] if e.side == side and e.name == OFF]
    return sorted(chosen, key=lambda e: e.time), used


def stance_mask(time: np.ndarray, events: list[Event], side: str) -> np.ndarray:
    """True between each foot strike and the next foot off of ``side``.

    Samples before the first event on the side take the state implied by that event (stance
    before a foot off, swing before a foot strike).
    """
    mask = np.zeros(time.shape[0], dtype=bool)
    side_events = sorted((e for e in events if e.side == side and e.name in (STRIKE, OFF)), key=lambda e: e.time)
    if not side_events:
        return mask
    state = side_events[0].name == OFF
    edges = [time[0]] + [e.time for e in side_events] + [time[-1] + 1.0]
    states = [state] + [e.name == STRIKE for e in side_events]
    for (t0, t1), in_stance in zip(zip(edges[:-1], edges[1:]), states):
        if in_stance:
            mask |= (time >= t0) & (time < t1)
    return mask
