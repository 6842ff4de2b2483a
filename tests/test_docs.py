"""Docs generated from code must not drift; every command has a page (see scripts/gen_docs.py)."""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))

import gen_docs  # noqa: E402


def test_cli_reference_is_current():
    assert (REPO / "docs/cli.md").read_text(encoding="utf-8") == gen_docs.cli_markdown() + "\n", \
        "docs/cli.md is stale: run python scripts/gen_docs.py"


def test_naming_tables_are_current():
    current = (REPO / "docs/naming.md").read_text(encoding="utf-8")
    assert current == gen_docs.naming_markdown(current), "docs/naming.md is stale: run python scripts/gen_docs.py"


def test_changelog_and_readme_commands():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    ci = (REPO / ".ci/run").read_text(encoding="utf-8")
    test_command = next(line for line in readme.splitlines() if "pytest" in line)
    assert test_command.strip() in ci
    assert "## [Unreleased]" in (REPO / "CHANGELOG.md").read_text(encoding="utf-8")
