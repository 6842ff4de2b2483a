"""gait predict: joint moments from a .mot, .sto, .c3d or ingest Parquet file."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from gaitcli.cli import console
from gaitcli.cli.errors import EXIT_FAILED, EXIT_OK, run_mapped
from gaitcli.cli.options import Mass, ModelPath, Quiet


def predict(
    files: Annotated[list[Path], typer.Argument(help=".mot, .sto, .c3d or *.continuous.parquet files.")],
    model: ModelPath = None,
    joint: Annotated[str, typer.Option("--joint", help="hip, knee, ankle or all.")] = "all",
    side: Annotated[str, typer.Option("--side", help="l, r or both.")] = "both",
    output: Annotated[str | None, typer.Option("--output", "-o", help="File (.sto, .csv, .parquet), folder for several inputs, or - for CSV on stdout.")] = None,
    stride: Annotated[int | None, typer.Option("--stride", min=1, help="Samples between overlapping windows (default: window/4).")] = None,
    mass: Mass = None,
    quiet: Quiet = False,
) -> None:
    """Predict joint moments (N·m/kg; also N·m when body mass is known) with the shipped or a given model.

    Output: an OpenSim .sto by default (<input>.moments.sto in the current folder), or CSV/Parquet
    by suffix; `-o -` streams CSV to stdout for pipelines. Exit 1 when some file failed.
    """
    from gaitcli.models.inference import Predictor, peak_summary, prediction_csv, write_prediction

    predictor = run_mapped(lambda: Predictor(model))
    targets = _targets(files, output)
    failures = 0
    header = True
    bar = _bar(len(files), quiet)
    for k, (path, target) in enumerate(zip(files, targets), start=1):
        if bar is not None:
            bar.update(bar.task_ids[0], completed=k - 1, description=path.name)
        try:
            prediction = run_mapped(lambda: predictor.predict(path, joint, side, stride, mass))
        except typer.Exit:
            failures += 1
            continue
        if target is None:
            sys.stdout.write(prediction_csv(prediction, with_source=len(files) > 1, header=header))
            header = False
        else:
            run_mapped(lambda: write_prediction(prediction, target))
        if not quiet:
            _summary(prediction, target, k, len(files))
    if bar is not None:
        bar.stop()
    raise typer.Exit(EXIT_FAILED if failures else EXIT_OK)


def _bar(total: int, quiet: bool):
    """A progress bar on a terminal when there are several files."""
    if quiet or total < 2 or not console.stderr_is_terminal():
        return None
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    bar = Progress(TextColumn("predict"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.description}"),
                   console=console.err(), transient=True)
    bar.add_task("", total=total)
    bar.start()
    return bar


def _targets(files: list[Path], output: str | None) -> list[Path | None]:
    from gaitcli.errors import UsageError

    if output == "-":
        return [None] * len(files)
    if output is None:
        return [Path(f.name.split(".")[0] + ".moments.sto") for f in files]
    out = Path(output)
    if len(files) == 1 and out.suffix:
        return [out]
    if out.suffix and len(files) > 1:
        raise UsageError(f"-o {output}: several inputs need a folder (or - for stdout)")
    out.mkdir(parents=True, exist_ok=True)
    return [out / (f.name.split(".")[0] + ".moments.sto") for f in files]


def _summary(prediction, target: Path | None, k: int, n: int) -> None:
    from gaitcli.models.inference import peak_summary

    err = console.err()
    where = str(target) if target else "stdout"
    err.print(f"[{k}/{n}] {prediction.source} -> {where}: {', '.join(prediction.channels)}"
              + (f" (mass {prediction.mass_kg:g} kg)" if prediction.mass_kg else " (mass unknown: N·m/kg only)"),
              markup=False)
    peaks = peak_summary(prediction)
    if peaks and console.stderr_is_terminal():
        from rich.table import Table

        table = Table(title="peak moments per cycle", show_header=True)
        for column in ("side", "cycle", "channel", "peak", "at %"):
            table.add_column(column)
        for row in peaks:
            table.add_row(row["side"], str(row["cycle"]), row["channel"], f"{row['peak']:+.2f} {row['unit']}",
                          f"{row['at_percent']:.0f}")
        err.print(table)
    elif peaks:
        for row in peaks:
            err.print(f"  cycle {row['side']}{row['cycle']} {row['channel']}: peak {row['peak']:+.2f} {row['unit']} "
                      f"at {row['at_percent']:.0f} %", markup=False)
