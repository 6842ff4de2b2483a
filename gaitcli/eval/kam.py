"""External knee adduction moment (KAM) from the ground reaction force and the knee joint centre."""

from __future__ import annotations

import numpy as np

from gaitcli.errors import DataError

GRAVITY = 9.81  # m/s^2
UNLOADED_N = 20.0  # |vertical GRF| below which the foot counts as off the ground


def knee_adduction_moment(force_n: np.ndarray, cop_m: np.ndarray, knee_m: np.ndarray, side: str,
                          mass_kg: float, height_m: float) -> np.ndarray:
    """External KAM [% BW·ht], (T,), by the cross-product (lever-arm) method.

    Inputs are (T, 3) in the ground frame (x forward = walking direction, y up, z right):
    ``force_n`` the GRF on the foot [N], ``cop_m`` its centre of pressure [m], ``knee_m`` the
    knee joint centre [m]. The GRF's moment about the knee, M = (cop - knee) x F, is taken about
    the forward (x) axis, the frontal-plane moment in the ground frame (not the tibia's frame).
    Adduction (GRF passing medial to the knee, the usual pattern in walking) is positive on both
    sides: +M_x for the right knee, -M_x for the left. Free moments of the force plate are left
    out (they have no frontal-plane component for a horizontal plate). Normalised as
    100 * M / (mass_kg * 9.81 * height_m). Unloaded samples (|F_y| < 20 N, or NaN COP) are NaN.
    """
    force, cop, knee = (_vectors(name, a) for name, a in
                        (("force_n", force_n), ("cop_m", cop_m), ("knee_m", knee_m)))
    if not force.shape == cop.shape == knee.shape:
        raise DataError(f"force_n, cop_m and knee_m must have the same shape (T, 3), got "
                        f"{force.shape}, {cop.shape} and {knee.shape}")
    if side not in ("r", "l"):
        raise DataError(f"side must be 'r' or 'l', got {side!r}")
    if not (mass_kg > 0 and height_m > 0):
        raise DataError(f"mass_kg and height_m must be positive, got {mass_kg} kg and {height_m} m")
    moment_x = np.cross(cop - knee, force)[:, 0]
    sign = 1.0 if side == "r" else -1.0
    kam = 100.0 * sign * moment_x / (mass_kg * GRAVITY * height_m)
    loaded = (np.abs(force[:, 1]) >= UNLOADED_N) & np.isfinite(cop).all(axis=1)
    return np.where(loaded, kam, np.nan)


def _vectors(name: str, values: np.ndarray) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 2 or array.shape[1] != 3:
        raise DataError(f"{name} must have shape (T, 3) (x forward, y up, z right), got {array.shape}")
    return array
