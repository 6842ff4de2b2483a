"""Pick the reader for a file by its suffix (and, for text files, its first line)."""

from __future__ import annotations

from pathlib import Path

from gaitcli.data.timeseries import Recording
from gaitcli.errors import ReadError, UnsupportedFile

DATA_SUFFIXES = (".c3d", ".mot", ".sto", ".txt")
# Files that are expected in lab export folders and are not trials: said once, not failures.
KNOWN_OTHER = {
    ".osim": "OpenSim model (used for body mass when it sits beside a trial)",
    ".xml": "OpenSim setup file (ExternalLoads XML is used to assign GRF columns to feet)",
    ".trc": "marker trajectories: gait ingests joint angles (run OpenSim IK first); see `gait inspect`",
    ".md": "documentation",
    ".csv": "table (not a recognised gait export)",
}


def is_candidate(path: Path) -> bool:
    return path.suffix.lower() in DATA_SUFFIXES


def looks_like_data(path: Path) -> bool:
    """Cheap check used when scanning folders: text files must look like a WBDS table."""
    if path.suffix.lower() != ".txt":
        return True
    from gaitcli.io.wbds import looks_like_wbds

    return looks_like_wbds(path)


def why_not_data(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in KNOWN_OTHER:
        return KNOWN_OTHER[suffix]
    if suffix == ".txt":
        return "text file that is not a WBDS gait table"
    return f"unknown file type {suffix or '(no suffix)'}"


def read_recording(path: str | Path) -> Recording:
    """Read any supported file; raises ReadError (or UnsupportedFile) with a one-line reason."""
    path = Path(path)
    suffix = path.suffix.lower()
    if not path.is_file():
        raise ReadError(path, "no such file")
    if suffix == ".c3d":
        from gaitcli.io.c3d_files import read_c3d

        return read_c3d(path)
    if suffix in (".mot", ".sto"):
        from gaitcli.io.opensim_files import read_opensim

        return read_opensim(path)
    if suffix == ".trc":
        from gaitcli.io.opensim_files import read_trc

        return read_trc(path)
    if suffix == ".txt":
        from gaitcli.io.wbds import looks_like_wbds, read_wbds

        if looks_like_wbds(path):
            return read_wbds(path)
    raise UnsupportedFile(path, why_not_data(path))
