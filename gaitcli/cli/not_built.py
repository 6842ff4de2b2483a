"""Commands whose issue is still open: they say so and exit 1, they never pretend to work."""

from __future__ import annotations

import sys
from typing import Callable

import typer

COMMANDS = (
    ("pretrain", 3, "Self-supervised pretraining (masked reconstruction, contrastive) and the diffusion model."),
    ("finetune", 3, "Fine-tune a pretrained model on labeled kinematics -> moments / GRF."),
    ("predict", 3, "Predict joint moments (and GRF) from a .mot, .sto, .c3d or ingested Parquet file."),
    ("benchmark", 4, "LSTM vs Transformer vs Mamba under one protocol, with data-efficiency curves."),
    ("evaluate", 3, "The papers' metrics per subject, condition and channel."),
)


def make(name: str, issue: int) -> Callable[[typer.Context], None]:
    def command(ctx: typer.Context) -> None:
        print(f"Error: `gait {name}` is not built yet (issue #{issue}); "
              "`gait ingest` and `gait inspect` work today.", file=sys.stderr)
        raise typer.Exit(1)

    command.__name__ = name
    return command
