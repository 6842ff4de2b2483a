"""gait pretrain: self-supervised pretraining on unlabeled kinematics."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from gaitcli.cli import console
from gaitcli.cli.errors import run_mapped
from gaitcli.cli.options import Device, JsonOutput, Quiet, Seed
from gaitcli.cli.training import (BatchSize, CheckpointEvery, Clip, Epochs, Inputs, LearningRate, LogCsv, Patience,
                                  Resume, Steps, Stride, TestFraction, TestSubjects, TrainingProgress, ValFraction,
                                  Warmup, WeightDecay, Window, parse_overrides)


def pretrain(
    data: Annotated[list[str], typer.Argument(help="Ingest output folders or .parquet files.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Checkpoint to write (.safetensors).")],
    model: Annotated[str, typer.Option("--model", help="Architecture from the registry (gait pretrain --list-models).")] = "transformer",
    objective: Annotated[str, typer.Option("--objective", help="masked (reconstruction) or contrastive (InfoNCE).")] = "masked",
    mask_ratio: Annotated[float, typer.Option("--mask-ratio", min=0.01, max=0.9, help="Fraction of time steps hidden (Li 2025: 0.1).")] = 0.1,
    mask_mode: Annotated[str, typer.Option("--mask-mode", help="random time steps, or one contiguous block.")] = "random",
    inputs: Inputs = "sagittal-angles",
    cycles: Annotated[bool, typer.Option("--cycles", help="Train on whole time-normalised gait cycles instead of sliding windows.")] = False,
    window: Window = 64,
    stride: Stride = 8,
    epochs: Epochs = 100,
    steps: Steps = None,
    batch_size: BatchSize = 64,
    lr: LearningRate = 1e-4,
    weight_decay: WeightDecay = 1e-5,
    warmup: Warmup = 50,
    clip: Clip = 1.0,
    patience: Patience = 20,
    test_fraction: TestFraction = 0.2,
    val_fraction: ValFraction = 0.1,
    test_subjects: TestSubjects = None,
    set_: Annotated[list[str], typer.Option("--set", help="Model hyperparameter override KEY=VALUE (e.g. n_layers=4); repeatable.")] = [],  # noqa: B006
    device: Device = "auto",
    seed: Seed = 0,
    log: LogCsv = None,
    checkpoint_every: CheckpointEvery = 0,
    resume: Resume = False,
    as_json: JsonOutput = False,
    quiet: Quiet = False,
) -> None:
    """Pretrain a model on unlabeled joint angles by masked reconstruction (or contrastive learning).

    With --model diffusion (or diffusion_gaitdynamics) it trains GaitDynamics' diffusion model
    instead: 1.5 s windows of gait state (kinematics and both feet's forces), cosine schedule,
    EMA weights; --window and --objective do not apply.

    Held-out test subjects (--test-fraction or --test-subjects) are left out of pretraining and
    stored in the checkpoint, so fine-tuning tests on subjects neither stage has seen.
    """
    from gaitcli.errors import UsageError
    from gaitcli.models.registry import is_denoiser
    from gaitcli.train.loop import TrainConfig
    from gaitcli.train.workflows import DataSpec
    from gaitcli.train.workflows import pretrain as run_pretrain

    def _diffusion(cfg: TrainConfig):
        from gaitcli.train.generative import StateSpec, train_diffusion

        state_spec = StateSpec(stride=stride, test_fraction=test_fraction, val_fraction=val_fraction, seed=seed,
                               test_subjects=[s.strip() for s in test_subjects.split(",")] if test_subjects else None)
        cfg.keep_best, cfg.patience = False, 0
        with TrainingProgress(quiet, "pretrain") as progress:
            return train_diffusion(data, output, model, state_spec, cfg, parse_overrides(set_),
                                   log_csv=Path(log) if log else output.with_suffix(".log.csv"), resume=resume,
                                   on_progress=progress)

    def call():
        if objective not in ("masked", "contrastive"):
            raise UsageError(f"--objective must be masked or contrastive, not {objective!r}")
        spec = DataSpec(inputs=inputs, unit="cycles" if cycles else "windows", window=window, stride=stride, test_fraction=test_fraction,
                        val_fraction=val_fraction, seed=seed,
                        test_subjects=[s.strip() for s in test_subjects.split(",")] if test_subjects else None)
        cfg = TrainConfig(task="pretrain" if objective == "masked" else "contrastive", epochs=epochs, max_steps=steps,
                          batch_size=batch_size, lr=lr, weight_decay=weight_decay, warmup_steps=warmup,
                          grad_clip=clip, patience=patience, mask_ratio=mask_ratio, mask_mode=mask_mode,
                          device=device, seed=seed, checkpoint_every=checkpoint_every)
        if is_denoiser(model):
            return _diffusion(cfg)
        with TrainingProgress(quiet, "pretrain") as progress:
            return run_pretrain(data, output, model, spec, cfg, parse_overrides(set_),
                                log_csv=Path(log) if log else output.with_suffix(".log.csv"), resume=resume,
                                on_progress=progress)

    meta = run_mapped(call)
    summary = {"checkpoint": str(output), **meta["fit"], "train_windows": meta["train_windows"],
               "val_windows": meta["val_windows"], "test_subjects": meta["split"]["test"]}
    if as_json:
        print(json.dumps(summary, indent=2))
    elif not quiet:
        console.out().print(" ".join(f"{k}={v}" for k, v in summary.items() if k != "test_subjects"), markup=False)
    if meta["fit"]["interrupted"]:
        console.err().print("interrupted: resume with --resume", markup=False)
        raise typer.Exit(130)
