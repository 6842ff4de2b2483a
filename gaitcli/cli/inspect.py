"""gait inspect: what a file holds (channels, rates, units, events, plates, subject data)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from gaitcli.cli import console
from gaitcli.cli.errors import run_mapped
from gaitcli.cli.options import JsonOutput


def inspect(
    path: Annotated[Path, typer.Argument(help="A .c3d, .mot, .sto, .trc or WBDS .txt file.")],
    as_json: JsonOutput = False,
    channels: Annotated[bool, typer.Option("--channels", help="List every channel, not only counts.")] = False,
) -> None:
    """Show what a lab file holds: channels, rates, units, events, force plates, subject data."""
    from gaitcli.data.describe import describe
    from gaitcli.io.readers import read_recording

    summary = run_mapped(lambda: describe(read_recording(path)))
    if as_json:
        print(json.dumps(summary, indent=2))
        return
    _render(summary, channels)


def _short(value) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_short(v)}" for k, v in value.items()) + "}"
    return str(value)


def _render(summary: dict, list_channels: bool) -> None:
    from rich.table import Table

    out = console.out()
    out.print(f"{summary['path']}  ({summary['format']})", markup=False)
    table = Table(show_header=True)
    for column in ("series", "rate Hz", "samples", "start s", "end s", "channels", "units"):
        table.add_column(column)
    for key, s in summary["series"].items():
        units = sorted({c["unit"] for c in s["channels"] if c["unit"]})
        table.add_row(key, f"{s['rate_hz']:g}", str(s["samples"]),
                      "" if s["start"] is None else f"{s['start']:.3f}",
                      "" if s["end"] is None else f"{s['end']:.3f}", str(len(s["channels"])),
                      ", ".join(units[:6]) + (" ..." if len(units) > 6 else ""))
    out.print(table)
    if summary["point_groups"]:
        out.print("point groups: " + ", ".join(f"{k} {v}" for k, v in sorted(summary["point_groups"].items())), markup=False)
    out.print(f"force plates: {summary['force_plates']}", markup=False)
    subject = {k: v for k, v in summary["subject"].items() if v not in (None, {}, "") and k != "sources"}
    out.print("subject: " + (", ".join(f"{k}={_short(v)}" for k, v in subject.items()) or "none"), markup=False)
    events = summary["events"]
    out.print(f"events: {len(events)}" + (": " + ", ".join(f"{e['side'] or '-'} {e['name']} @ {e['time']:.3f}" for e in events[:12]) if events else ""), markup=False)
    for warning in summary["warnings"]:
        console.err().print(f"warning: {warning}", markup=False)
    if list_channels:
        for key, s in summary["series"].items():
            for c in s["channels"]:
                out.print(f"{key}\t{c['name']}\t{c['unit']}\t{c['finite_fraction']}", markup=False)
