"""Options shared by several commands, defined once."""

from __future__ import annotations

from typing import Annotated

import typer

JsonOutput = Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")]
Jobs = Annotated[int, typer.Option("--jobs", "-j", min=1, help="Worker processes.")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or summary on stderr.")]
Rate = Annotated[float, typer.Option("--rate", min=1.0, help="Common sampling rate of continuous data, Hz.")]
Points = Annotated[int, typer.Option("--points", min=2, help="Samples per time-normalised cycle (101; 180 as in Gait2Hip-60).")]
Mass = Annotated[float | None, typer.Option("--mass", min=1.0, help="Body mass in kg for every input (overrides files and --subjects).")]
Device = Annotated[str, typer.Option("--device", help="auto (CUDA when available), cpu or cuda.")]
Seed = Annotated[int, typer.Option("--seed", help="Random seed (splits, initial weights, masks, batches).")]
ModelPath = Annotated[str | None, typer.Option("--model", "-m", help="Checkpoint (.safetensors), or 'default' for the shipped model.")]
