"""Shared fixtures: where the real lab data lives (../shared/data beside the repository).

Tests read the real files from there and fail loudly when it is missing: they never download."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
REAL = SHARED / "real"
LABELED = SHARED / "labeled"
EXAMPLES = REPO / "examples"


@pytest.fixture(scope="session")
def real() -> Path:
    return REAL


@pytest.fixture(scope="session")
def labeled() -> Path:
    return LABELED


@pytest.fixture(scope="session")
def ingested(tmp_path_factory) -> Path:
    """The whole real corpus ingested once with default options (about 10 s)."""
    from gaitcli.data.ingest import IngestOptions, ingest

    out = tmp_path_factory.mktemp("ingested")
    report = ingest([REAL, LABELED], out, IngestOptions())
    out.joinpath("report.json").write_text(__import__("json").dumps(report.to_dict()))
    return out
