"""gait ingest: lab exports -> Parquet trials and gait cycles."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from gaitcli.cli import console
from gaitcli.cli.errors import EXIT_FAILED, EXIT_OK, run_mapped
from gaitcli.cli.options import Jobs, JsonOutput, Mass, Points, Quiet, Rate
from gaitcli.errors import UsageError

FAMILIES = ("angle", "moment", "grf", "*")


def parse_lowpass(values: list[str]) -> dict[str, float]:
    """'6' (every channel) or 'angle=6', 'grf=20' ... -> {family: Hz}."""
    cutoffs: dict[str, float] = {}
    for value in values:
        family, _, hz = value.rpartition("=")
        family = family or "*"
        if family not in FAMILIES:
            raise UsageError(f"--lowpass {value}: family must be one of {', '.join(FAMILIES[:-1])}")
        try:
            cutoffs[family] = float(hz)
        except ValueError:
            raise UsageError(f"--lowpass {value}: cutoff must be a number of Hz") from None
        if cutoffs[family] <= 0:
            raise UsageError(f"--lowpass {value}: cutoff must be positive")
    return cutoffs


def ingest(
    paths: Annotated[list[str], typer.Argument(help="Files, folders (searched recursively) or glob patterns.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Output folder (one subfolder per subject).")],
    jobs: Jobs = 1,
    subjects: Annotated[Path | None, typer.Option("--subjects", help="CSV with columns subject, mass_kg[, height_m].")] = None,
    subject_pattern: Annotated[str | None, typer.Option("--subject-pattern", help="Regex whose first group is the subject id in file names.")] = None,
    condition: Annotated[str, typer.Option("--condition", help="Condition label stored with every row.")] = "",
    mass: Mass = None,
    rate: Rate = 100.0,
    points: Points = 101,
    lowpass: Annotated[list[str], typer.Option("--lowpass", help="Zero-lag Butterworth cutoff: HZ for all channels, or FAMILY=HZ (angle, moment, grf); repeatable.")] = [],  # noqa: B006
    threshold: Annotated[float, typer.Option("--threshold", min=0.1, help="Vertical GRF contact threshold, N (hysteresis: off at half).")] = 20.0,
    min_cycle: Annotated[float, typer.Option("--min-cycle", help="Shortest valid cycle, s.")] = 0.2,
    max_cycle: Annotated[float, typer.Option("--max-cycle", help="Longest valid cycle, s.")] = 2.0,
    force: Annotated[bool, typer.Option("--force", help="Re-ingest trials whose sources are unchanged.")] = False,
    as_json: JsonOutput = False,
    quiet: Quiet = False,
) -> None:
    """Convert C3D, OpenSim .mot/.sto and WBDS exports into Parquet trials and gait cycles.

    Exit status: 0 when every file worked, 1 when some failed (the others are still written),
    2 on usage errors.
    """
    from gaitcli.data.ingest import IngestOptions
    from gaitcli.data.ingest import ingest as run_ingest

    def call():
        options = IngestOptions(
            rate=rate, points=points, lowpass=parse_lowpass(lowpass), threshold_n=threshold,
            min_cycle_s=min_cycle, max_cycle_s=max_cycle, mass_kg=mass, jobs=jobs,
            subjects_csv=subjects, subject_pattern=subject_pattern, condition=condition, force=force,
        )
        with _progress(quiet) as on_progress:
            return run_ingest(paths, output, options, on_progress=on_progress)

    report = run_mapped(call)
    if as_json:
        print(json.dumps(report.to_dict(), indent=2))
    elif not quiet:
        _print_summary(report)
    raise typer.Exit(EXIT_FAILED if report.failures else EXIT_OK)


class _progress:
    """A rich progress bar on a terminal, plain lines when stderr is piped, nothing when quiet."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.bar = None
        self.task = None

    def __enter__(self):
        if self.quiet:
            return None
        if console.stderr_is_terminal():
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self.bar = Progress(TextColumn("ingest"), BarColumn(), MofNCompleteColumn(),
                                TimeElapsedColumn(), TextColumn("{task.description}"), console=console.err())
            self.bar.start()
            self.task = self.bar.add_task("", total=None)
        return self.update

    def update(self, done: int, total: int, label: str) -> None:
        if self.bar is not None:
            self.bar.update(self.task, completed=done, total=total, description=label)
        else:
            console.err().print(f"[{done}/{total}] {label}", markup=False)

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.stop()


def _print_summary(report) -> None:
    """A table on a terminal; ``name<TAB>value`` lines when stdout is piped (easy to grep/cut)."""
    totals = report.to_dict()
    rows = [("files", totals["files"]), ("trials", totals["trials"]), ("written", totals["written"]),
            ("unchanged", totals["unchanged"]), ("cycles R", report.cycles["r"]), ("cycles L", report.cycles["l"]),
            ("failures", len(report.failures)), ("skipped", len(report.skipped))]
    rejected: dict[str, int] = {}
    for trial in report.trials:
        for reason, count in trial.rejected.items():
            rejected[reason] = rejected.get(reason, 0) + count
    rejected_line = "; ".join(f"{n} x {r}" for r, n in sorted(rejected.items()))
    if console.stdout_is_terminal():
        from rich.table import Table

        table = Table(title="gait ingest", show_header=True)
        for name, _ in rows:
            table.add_column(name, justify="right")
        table.add_row(*(str(value) for _, value in rows))
        console.out().print(table)
        if rejected_line:
            console.out().print("cycles rejected: " + rejected_line, markup=False)
    else:
        for name, value in rows:
            print(f"{name}\t{value}")
        if rejected_line:
            print(f"cycles rejected\t{rejected_line}")
    for problem in report.failures:
        console.err().print(f"failed: {problem.path}: {problem.reason}", markup=False)
