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
    grf: Annotated[bool, typer.Option("--grf", help="Estimate both feet's ground reaction forces (GaitDynamics) and write an OpenSim GRF .mot.")] = False,
    fill_missing: Annotated[str | None, typer.Option("--fill-missing", help="Fill missing kinematics by 'inpaint' (diffusion) or 'median'; writes <output>.kinematics.mot.")] = None,
    modify: Annotated[list[str], typer.Option("--modify", help="What-if edit, e.g. 'lumbar_bending*2.5' or 'pelvis_vx*1.25'; repeatable.")] = [],  # noqa: B006
    osim: Annotated[Path | None, typer.Option("--osim", help="OpenSim model (.osim) for the knee adduction moment (with --grf or --modify).")] = None,
    height: Annotated[float | None, typer.Option("--height", min=0.5, max=2.5, help="Body height in m (velocities and CoP are scaled by it; default: the file's, else 1.75).")] = None,
    generative: Annotated[str | None, typer.Option("--generative", help="Diffusion checkpoint (default: the shipped one).")] = None,
    grf_model: Annotated[str | None, typer.Option("--grf-model", help="Force-refinement checkpoint (default: the shipped one).")] = None,
    ddim_steps: Annotated[int, typer.Option("--ddim-steps", min=1, max=1000, help="DDIM steps for inpainting and --modify.")] = 50,
    seed: Annotated[int, typer.Option("--seed", help="Random seed of the diffusion sampling.")] = 0,
    quiet: Quiet = False,
) -> None:
    """Predict joint moments (N·m/kg; also N·m when body mass is known) with the shipped or a given model.

    Output: an OpenSim .sto by default (<input>.moments.sto in the current folder), or CSV/Parquet
    by suffix; `-o -` streams CSV to stdout for pipelines. Exit 1 when some file failed.

    With --grf, the forces of both feet instead: an OpenSim GRF .mot (N, m; needs the body mass)
    with an ExternalLoads XML beside it, and a <output>.per_kg.sto table (N/kg). Kinematics the
    file lacks are filled first (inpainting unless --fill-missing median) and listed.
    """
    from gaitcli.models.inference import Predictor, prediction_csv, write_prediction

    if grf or modify or fill_missing:
        _generative(files, output, grf, fill_missing, modify, osim, mass, height, generative, grf_model,
                    ddim_steps, seed, quiet, (model, joint, side, stride))
        return
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


def _generative(files, output, grf, fill_missing, modify, osim, mass, height, generative, grf_model, ddim_steps,
                seed, quiet, moments) -> None:
    from gaitcli.errors import UsageError
    from gaitcli.models import gaitdynamics as gd

    def load():
        if fill_missing is not None and fill_missing not in gd.FILL_METHODS:
            raise UsageError(f"--fill-missing must be one of {', '.join(gd.FILL_METHODS)}, not {fill_missing!r}")
        for text in modify:
            gd.parse_modification(text)
        if output == "-":
            raise UsageError("-o -: --grf, --fill-missing and --modify write files; give a file or folder")
        diffusion, refiner = gd.default_paths()
        return gd.GaitDynamics(generative or diffusion, grf_model or refiner)

    engine = run_mapped(load)
    suffix = ".grf.mot" if grf or modify else ".moments.sto"
    targets = _targets(files, output, suffix)
    job = gd.GenerativeJob(grf=grf, fill=fill_missing, modify=tuple(modify), osim=osim, steps=ddim_steps, seed=seed,
                           mass_kg=mass, height_m=height)
    predictor = None
    if not (grf or modify):
        from gaitcli.models.inference import Predictor

        predictor = run_mapped(lambda: Predictor(moments[0]))
    failures = 0
    for k, (path, target) in enumerate(zip(files, targets), start=1):
        try:
            result = run_mapped(lambda: gd.run_generative(engine, path, target, job))
            if not quiet:
                _generative_summary(result, k, len(files))
            if predictor is not None:
                _moments_from(predictor, result.completed or path, target, mass, moments, quiet, k, len(files))
        except typer.Exit:
            failures += 1
    raise typer.Exit(EXIT_FAILED if failures else EXIT_OK)


def _moments_from(predictor, source: Path, target: Path, mass, moments, quiet: bool, k: int, n: int) -> None:
    from gaitcli.models.inference import write_prediction

    _, joint, side, stride = moments
    prediction = run_mapped(lambda: predictor.predict(source, joint, side, stride, mass))
    run_mapped(lambda: write_prediction(prediction, target))
    if not quiet:
        _summary(prediction, target, k, n)


def _generative_summary(result, k: int, n: int) -> None:
    err = console.err()
    err.print(f"[{k}/{n}] {result.source} -> {', '.join(str(p) for p in result.written)}", markup=False)
    if result.filled:
        err.print(f"  filled by {result.method}: {', '.join(result.filled)}", markup=False)
    else:
        err.print("  no channel filled", markup=False)
    for note in result.notes:
        err.print(f"  note: {note}", markup=False)
    for name, (recorded, target, generated) in (result.modified or {}).items():
        err.print(f"  {name}: recorded {recorded:.2f}, target {target:.2f}, generated {generated:.2f}",
                  markup=False)
    if result.peak_vgrf:
        err.print("  peak vertical GRF: " + ", ".join(f"{s} {v:.2f} N/kg ({v / 9.81:.2f} BW)"
                                                      for s, v in result.peak_vgrf.items()), markup=False)
    if result.kam:
        err.print("  knee adduction moment, first peak: " + ", ".join(f"{s} {v:.2f} % BW·ht"
                                                                       for s, v in result.kam.items()), markup=False)


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


def _targets(files: list[Path], output: str | None, suffix: str = ".moments.sto") -> list[Path | None]:
    from gaitcli.errors import UsageError

    if output == "-":
        return [None] * len(files)
    if output is None:
        return [Path(f.name.split(".")[0] + suffix) for f in files]
    out = Path(output)
    if len(files) == 1 and out.suffix:
        return [out]
    if out.suffix and len(files) > 1:
        raise UsageError(f"-o {output}: several inputs need a folder (or - for stdout)")
    out.mkdir(parents=True, exist_ok=True)
    return [out / (f.name.split(".")[0] + suffix) for f in files]


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
