"""What a file holds, as a plain dict: the library side of ``gait inspect``."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from gaitcli.data import naming
from gaitcli.data.timeseries import Recording


def describe(rec: Recording) -> dict[str, Any]:
    series = {}
    for key, ts in rec.series.items():
        series[key] = {
            "rate_hz": round(ts.rate, 6),
            "samples": len(ts),
            "start": float(ts.time[0]) if len(ts) else None,
            "end": float(ts.time[-1]) if len(ts) else None,
            "channels": [{"name": n, "unit": u, "canonical_family": naming.family(n),
                          "finite_fraction": round(float(np.isfinite(ts.data[:, j]).mean()), 4) if len(ts) else 0.0}
                         for j, (n, u) in enumerate(zip(ts.channels, ts.units))],
        }
    plates = rec.series.get("forceplates")
    n_plates = len({c.split("_")[0] for c in plates.channels}) if plates is not None else 0
    groups: dict[str, int] = {}
    for group in rec.point_groups.values():
        groups[group] = groups.get(group, 0) + 1
    return {
        "path": str(rec.path),
        "format": rec.format,
        "time_normalised": rec.time_normalised,
        "series": series,
        "point_groups": groups,
        "force_plates": n_plates,
        "events": [asdict(e) for e in rec.events],
        "subject": asdict(rec.subject),
        "info": _jsonable(rec.info),
        "warnings": list(rec.warnings),
    }


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)
