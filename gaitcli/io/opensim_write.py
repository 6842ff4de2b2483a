"""Writing OpenSim Storage files (.sto/.mot) that OpenSim's own readers open."""

from __future__ import annotations

import io
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np

from gaitcli.errors import DataError
from gaitcli.io.parquet import atomic_write_bytes


def storage_text(name: str, time: np.ndarray, columns: dict[str, np.ndarray], comments: list[str] = (),
                 in_degrees: bool = False) -> str:
    """An OpenSim version-1 Storage file: header, ``endheader``, tab-separated ``time`` + columns.

    NaN is written as ``NaN``, which OpenSim reads back as NaN.
    """
    names = list(columns)
    buffer = io.StringIO()
    buffer.write(f"{name}\nversion=1\nnRows={len(time)}\nnColumns={len(names) + 1}\n")
    buffer.write(f"inDegrees={'yes' if in_degrees else 'no'}\n")
    for line in comments:
        buffer.write(line.replace("\n", " ") + "\n")
    buffer.write("endheader\n")
    buffer.write("\t".join(["time"] + names) + "\n")
    table = np.column_stack([time] + [np.asarray(columns[c], dtype=np.float64) for c in names])
    np.savetxt(buffer, table, delimiter="\t", fmt="%.8g")
    return buffer.getvalue().replace("nan", "NaN")


def write_storage(path: Path, name: str, time: np.ndarray, columns: dict[str, np.ndarray],
                  comments: list[str] = (), in_degrees: bool = False) -> None:
    atomic_write_bytes(path, storage_text(name, time, columns, comments, in_degrees).encode())


GRF_SIDES = ("r", "l")
_AXES = "xyz"


def grf_columns(time: np.ndarray, feet: dict[str, dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """GRF columns in OpenSim's layout, per side (r, then l): ``ground_force_{s}_vx/vy/vz``,
    ``ground_force_{s}_px/py/pz``, ``ground_torque_{s}_x/y/z``.

    ``feet`` maps "r"/"l" to {"force": (T,3) N, "cop": (T,3) m, optional "torque": (T,3) N·m}
    in the OpenSim ground frame (x forward, y up, z right); a missing torque is zeros. NaN
    (a NaN COP while the foot is unloaded, a NaN force) is written as 0: OpenSim's
    ExternalLoads cannot take NaN, and a zero force at the origin applies nothing.
    """
    n = len(time)
    columns: dict[str, np.ndarray] = {}
    for side in (s for s in GRF_SIDES if s in feet):
        foot = feet[side]
        parts = {f"ground_force_{side}_v": foot["force"], f"ground_force_{side}_p": foot["cop"],
                 f"ground_torque_{side}_": foot.get("torque", np.zeros((n, 3)))}
        for prefix, values in parts.items():
            values = np.asarray(values, dtype=np.float64)
            if values.shape != (n, 3):
                raise DataError(f"{prefix}: expected shape ({n}, 3) like time (x, y, z), got "
                                f"{values.shape}")
            for k, axis in enumerate(_AXES):
                columns[prefix + axis] = np.nan_to_num(values[:, k], nan=0.0)
    return columns


def write_grf_mot(path: Path, time: np.ndarray, feet: dict[str, dict[str, np.ndarray]],
                  comments: list[str] = ()) -> None:
    """Write a GRF .mot that OpenSim's ExternalLoads read (columns of ``grf_columns``; NaN -> 0),
    atomically; the header name is the file stem."""
    path = Path(path)
    write_storage(path, path.stem, np.asarray(time, dtype=np.float64), grf_columns(time, feet),
                  comments, in_degrees=False)


def external_loads_xml(grf_file: str, bodies: dict[str, str] | None = None) -> str:
    """OpenSim 4 ExternalLoads XML: one ExternalForce per side in ``bodies`` reading the
    ``ground_force_{s}_v/p`` and ``ground_torque_{s}_`` columns of ``grf_file``."""
    bodies = {"r": "calcn_r", "l": "calcn_l"} if bodies is None else bodies
    names = {"r": "right", "l": "left"}
    forces = "".join(f"""
			<ExternalForce name="{names.get(side, side)}">
				<applied_to_body>{escape(body)}</applied_to_body>
				<force_expressed_in_body>ground</force_expressed_in_body>
				<point_expressed_in_body>ground</point_expressed_in_body>
				<force_identifier>ground_force_{side}_v</force_identifier>
				<point_identifier>ground_force_{side}_p</point_identifier>
				<torque_identifier>ground_torque_{side}_</torque_identifier>
			</ExternalForce>""" for side, body in bodies.items())
    return f"""<?xml version="1.0" encoding="UTF-8" ?>
<OpenSimDocument Version="40000">
	<ExternalLoads name="externalloads">
		<objects>{forces}
		</objects>
		<groups />
		<datafile>{escape(grf_file)}</datafile>
	</ExternalLoads>
</OpenSimDocument>
"""


def write_external_loads_xml(path: Path, grf_file: str, *,
                             bodies: dict[str, str] | None = None) -> None:
    """Write ``external_loads_xml`` atomically. ``grf_file`` is stored as given: pass a name
    relative to the XML's folder (OpenSim resolves it from there)."""
    atomic_write_bytes(Path(path), external_loads_xml(grf_file, bodies).encode())
