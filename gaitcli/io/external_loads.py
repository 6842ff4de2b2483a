"""OpenSim ExternalLoads setup files: which GRF columns act on which foot."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class AppliedForce:
    side: str  # "r" or "l"
    force_identifier: str  # column prefix, e.g. "1_ground_force_v"
    point_identifier: str
    torque_identifier: str


def _side_of_body(body: str) -> str | None:
    body = body.strip().lower()
    for side in ("r", "l"):
        if body.endswith("_" + side):
            return side
    return None


def read_external_loads(path: Path) -> tuple[str | None, list[AppliedForce]]:
    """(datafile named in the setup, forces with their sides); (None, []) if not ExternalLoads."""
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError):
        return None, []
    loads = root.find(".//ExternalLoads")
    if loads is None:
        return None, []
    forces = []
    for force in loads.iter("ExternalForce"):
        side = _side_of_body(force.findtext("applied_to_body") or "")
        if side is None:
            continue
        forces.append(AppliedForce(
            side=side,
            force_identifier=(force.findtext("force_identifier") or "").strip(),
            point_identifier=(force.findtext("point_identifier") or "").strip(),
            torque_identifier=(force.findtext("torque_identifier") or "").strip(),
        ))
    datafile = (loads.findtext("datafile") or "").strip() or None
    return datafile, forces


def slot_sides_for(grf_file: Path) -> dict[str, str]:
    """Map GRF column prefixes ("" or "1_" ...) to sides, from an ExternalLoads XML beside the file.

    An XML counts when its datafile (or an ExternalForce data source) names ``grf_file``.
    """
    slots: dict[str, str] = {}
    for xml in sorted(grf_file.parent.glob("*.xml")):
        datafile, forces = read_external_loads(xml)
        if not forces or (datafile and Path(datafile).name != grf_file.name):
            continue
        for force in forces:
            ident = force.force_identifier
            for stem in ("ground_force_v", "ground_force_"):
                if ident.endswith(stem):
                    slots[ident[: -len(stem)]] = force.side
                    break
    return slots
