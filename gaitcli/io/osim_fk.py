"""Forward kinematics with OpenSim: where a model's bodies and joint centres are over time.

Coordinates come in gait's canonical units and signs (degrees for rotational coordinates,
metres for translational ones, knee flexion positive); this module converts them to what the
model expects. Importing it does not import opensim.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np

from gaitcli.errors import DataError

_ROTATIONAL = 1  # opensim.Coordinate.Rotational
_KNEE = re.compile(r"^knee_angle_[rl]$")


class FramePositions(dict):
    """Frame name -> (T, 3) origin positions in ground [m], plus what was used to compute them.

    ``coordinates_used``: the given coordinates the model has (the others were ignored; the
    model's coordinates not given stayed at their default values). ``knee_flipped``: the knee
    coordinates whose sign was flipped because the model defines knee flexion as negative.
    """

    coordinates_used: list[str]
    knee_flipped: list[str]


def frame_positions(model_path: Path, time: np.ndarray, coordinates: dict[str, np.ndarray],
                    frames: list[str]) -> FramePositions:
    """Origins of ``frames`` in ground, (T, 3) metres each, from the coordinates at each sample.

    A frame is a body (``calcn_r``) or a joint (``knee_r``: its child frame, the joint centre).
    ``coordinates`` maps OpenSim coordinate names to (T,) values in canonical units: degrees
    (converted to radians for the model's rotational coordinates), metres, knee flexion
    positive. gait2392-family models (gait2354, gait10dof18musc, Hamner) define knee flexion as
    negative (range about -120..10 deg); for them ``knee_angle_r/l`` are negated before use.
    Locked coordinates are unlocked. A NaN coordinate gives NaN positions at that sample.
    Raises DataError naming the file for a model OpenSim cannot load or a frame it lacks.
    """
    import opensim  # slow import: only when forward kinematics is asked for

    from gaitcli.io.opensim_files import _quiet_opensim_logging

    _quiet_opensim_logging(opensim)
    model_path = Path(model_path)
    model, state = _load(opensim, model_path)
    targets = [_frame(model, model_path, name) for name in frames]
    columns, used, flipped = _model_columns(model, state, model_path, len(time), coordinates)
    positions = _run(opensim, model, state, np.asarray(time, dtype=np.float64), columns, targets)
    result = FramePositions(zip(frames, positions))
    result.coordinates_used, result.knee_flipped = used, flipped
    return result


def _load(opensim, path: Path):
    if not path.is_file():
        raise DataError(f"{path}: no such model file")
    try:
        model = opensim.Model(str(path))
        state = model.initSystem()
    except Exception as exc:  # SWIG raises RuntimeError; any failure means an unusable model
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise DataError(f"{path}: OpenSim could not load the model: {first}") from None
    return model, state


def _frame(model, path: Path, name: str):
    """A body, or a joint's child frame (the joint centre)."""
    if model.getBodySet().contains(name):
        return model.getBodySet().get(name)
    if model.getJointSet().contains(name):
        return model.getJointSet().get(name).getChildFrame()
    raise DataError(f"{path}: the model has no body or joint named '{name}'")


def negative_knee_flexion(coordinate) -> bool:
    """True for a gait2392-style knee: range max <= 15 deg and min < -60 deg."""
    low, high = math.degrees(coordinate.getRangeMin()), math.degrees(coordinate.getRangeMax())
    return high <= 15.0 and low < -60.0


def _model_columns(model, state, path: Path, n: int, coordinates: dict[str, np.ndarray]):
    """(coordinate, values in model units) for the given coordinates the model has."""
    coordinate_set = model.getCoordinateSet()
    columns, used, flipped = [], [], []
    for name, values in coordinates.items():
        if not coordinate_set.contains(name):
            continue
        values = np.asarray(values, dtype=np.float64)
        if values.shape != (n,):
            raise DataError(f"{path}: coordinate '{name}' has shape {values.shape}, expected ({n},) "
                            "like time")
        coordinate = coordinate_set.get(name)
        if int(coordinate.getMotionType()) == _ROTATIONAL:
            values = np.radians(values)
        if _KNEE.match(name) and negative_knee_flexion(coordinate):
            values, flipped = -values, flipped + [name]
        if coordinate.getLocked(state):
            coordinate.setLocked(state, False)
        columns.append((coordinate, values))
        used.append(name)
    return columns, used, flipped


def _couplers(opensim, model, state):
    """(dependent, independents, function, scale) of each enforced CoordinateCouplerConstraint
    (Rajagopal's patella follows the knee this way); None when another kind of constraint is
    enforced, and only a full assembly can satisfy it."""
    couplers = []
    constraints = model.getConstraintSet()
    coordinates = model.getCoordinateSet()
    for i in range(constraints.getSize()):
        constraint = constraints.get(i)
        if not constraint.isEnforced(state):
            continue
        coupler = opensim.CoordinateCouplerConstraint.safeDownCast(constraint)
        if coupler is None:
            return None
        names = coupler.getIndependentCoordinateNames()
        independents = [coordinates.get(names.get(j)) for j in range(names.getSize())]
        scale = float(coupler.getPropertyByName("scale_factor").toString())
        couplers.append((coordinates.get(coupler.getDependentCoordinateName()), independents,
                         coupler.getFunction(), scale))
    return couplers


def _run(opensim, model, state, time: np.ndarray, columns, targets) -> list[np.ndarray]:
    """Set the coordinates and realise positions sample by sample, reusing one State."""
    out = np.full((len(targets), len(time), 3), np.nan)
    couplers = _couplers(opensim, model, state)
    finite = np.all([np.isfinite(values) for _, values in columns], axis=0) if columns else \
        np.ones(len(time), dtype=bool)
    for k, t in enumerate(time):
        if not finite[k]:
            continue  # a missing coordinate: positions stay NaN
        state.setTime(float(t))
        for coordinate, values in columns:
            coordinate.setValue(state, float(values[k]), False)
        if couplers is None:
            model.assemble(state)  # slow (milliseconds), only for constraints other than couplers
        for dependent, independents, function, scale in couplers or ():
            x = opensim.Vector([c.getValue(state) for c in independents])
            dependent.setValue(state, scale * function.calcValue(x), False)
        model.realizePosition(state)
        for j, frame in enumerate(targets):
            out[j, k] = frame.getPositionInGround(state).to_numpy()
    return list(out)
