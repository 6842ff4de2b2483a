"""Options and progress shared by `gait pretrain` and `gait finetune`."""

from __future__ import annotations

from typing import Annotated

import typer

from gaitcli.cli import console

Epochs = Annotated[int, typer.Option("--epochs", min=1, help="Passes over the training windows.")]
Steps = Annotated[int | None, typer.Option("--steps", min=1, help="Stop after this many optimiser steps.")]
BatchSize = Annotated[int, typer.Option("--batch-size", min=1, help="Windows per batch (papers: 64).")]
LearningRate = Annotated[float, typer.Option("--lr", min=0.0, help="Peak learning rate (AdamW).")]
WeightDecay = Annotated[float, typer.Option("--weight-decay", min=0.0, help="AdamW weight decay (Li 2025: 1e-5).")]
Warmup = Annotated[int, typer.Option("--warmup", min=0, help="Linear warm-up steps before the cosine decay.")]
Clip = Annotated[float, typer.Option("--clip", min=0.0, help="Gradient-norm clipping.")]
Patience = Annotated[int, typer.Option("--patience", min=0, help="Early stopping: epochs without a better validation loss (0: off).")]
Window = Annotated[int, typer.Option("--window", min=2, help="Window length in samples (Li 2025: 64 at 100 Hz).")]
Stride = Annotated[int, typer.Option("--stride", min=1, help="Step between training windows, samples.")]
Inputs = Annotated[str, typer.Option("--inputs", help="Input channels: preset (sagittal-angles, lower-limb-angles), names or globs, comma separated.")]
TestFraction = Annotated[float, typer.Option("--test-fraction", min=0.0, max=0.9, help="Fraction of subjects held out for testing.")]
ValFraction = Annotated[float, typer.Option("--val-fraction", min=0.0, max=0.9, help="Fraction of the remaining subjects for validation.")]
TestSubjects = Annotated[str | None, typer.Option("--test-subjects", help="Comma-separated subject ids to hold out (instead of a random fraction).")]
LogCsv = Annotated[str | None, typer.Option("--log", help="CSV training log (default: next to the output, .log.csv).")]
Resume = Annotated[bool, typer.Option("--resume", help="Continue from the resumable state saved beside the output.")]
CheckpointEvery = Annotated[int, typer.Option("--checkpoint-every", min=0, help="Save a resumable state every N epochs (0: at the end and on Ctrl-C).")]


class TrainingProgress:
    """A rich bar with the losses on a terminal; a plain line every few epochs otherwise."""

    def __init__(self, quiet: bool, label: str) -> None:
        self.quiet, self.label, self.bar, self.task = quiet, label, None, None

    def __enter__(self):
        if self.quiet:
            return None
        if console.stderr_is_terminal():
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self.bar = Progress(TextColumn(self.label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                                TextColumn("{task.description}"), console=console.err())
            self.bar.start()
            self.task = self.bar.add_task("", total=None)
        return self.update

    def update(self, epoch: int, epochs: int, train_loss: float, val_loss: float | None) -> None:
        text = f"loss {train_loss:.4f}" + (f"  val {val_loss:.4f}" if val_loss is not None else "")
        if self.bar is not None:
            self.bar.update(self.task, completed=epoch, total=epochs, description=text)
        elif epoch == 1 or epoch == epochs or epoch % 10 == 0:
            console.err().print(f"[{self.label} {epoch}/{epochs}] {text}", markup=False)

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.stop()


def parse_overrides(values: list[str]) -> dict:
    """--set key=value model overrides (numbers parsed; true/false as booleans)."""
    from gaitcli.errors import UsageError

    overrides = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--set {item}: expected KEY=VALUE")
        value: object = raw
        if raw.lower() in ("true", "false"):
            value = raw.lower() == "true"
        else:
            for cast in (int, float):
                try:
                    value = cast(raw)
                    break
                except ValueError:
                    continue
        overrides[key] = value
    return overrides
