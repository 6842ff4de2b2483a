"""gait finetune: labeled kinematics -> moments (or GRF), from a pretrained checkpoint or scratch."""

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
                                  Warmup, WeightDecay, parse_overrides)


def finetune(
    checkpoint: Annotated[str, typer.Argument(help="Pretrained checkpoint, or 'none' with --from-scratch --model NAME.")],
    data: Annotated[list[str], typer.Argument(help="Ingest output folders or .parquet files with labels.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Checkpoint to write (.safetensors).")],
    targets: Annotated[str, typer.Option("--targets", help="Target channels: preset (sagittal-moments, grf), names or globs.")] = "sagittal-moments",
    inputs: Inputs = "",
    cycles: Annotated[bool, typer.Option("--cycles", help="With --from-scratch and no checkpoint: whole gait cycles instead of windows (a checkpoint's own unit is kept).")] = False,
    freeze_blocks: Annotated[int, typer.Option("--freeze-blocks", min=0, help="Freeze the first K encoder blocks and the embedding (Li 2025: 6 of 8).")] = 0,
    two_step: Annotated[bool, typer.Option("--two-step", help="Tan 2024: train the new head alone first (--head-epochs), then the whole model.")] = False,
    head_epochs: Annotated[int, typer.Option("--head-epochs", min=0, help="Epochs of head-only training with --two-step.")] = 10,
    grf: Annotated[bool, typer.Option("--grf", help="Train GaitDynamics' force-refinement model (gait-state kinematics -> both feet's GRF and CoP); CHECKPOINT is a diffusion checkpoint whose split and scaling it shares, or 'none'.")] = False,
    from_scratch: Annotated[bool, typer.Option("--from-scratch", help="Same architecture, random initial weights: the papers' baseline.")] = False,
    model: Annotated[str | None, typer.Option("--model", help="Architecture for --from-scratch without a checkpoint.")] = None,
    label_fraction: Annotated[float, typer.Option("--label-fraction", min=0.001, max=1.0, help="Fraction of the training labels used.")] = 1.0,
    label_sampling: Annotated[str, typer.Option("--label-sampling", help="subject (whole training subjects) or window.")] = "subject",
    schedule: Annotated[str, typer.Option("--schedule", help="cosine (warm-up + cosine), constant (after warm-up) or plateau (halve on plateau, Li 2025).")] = "cosine",
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
    set_: Annotated[list[str], typer.Option("--set", help="Model override KEY=VALUE for --from-scratch --model.")] = [],  # noqa: B006
    device: Device = "auto",
    seed: Seed = 0,
    log: LogCsv = None,
    checkpoint_every: CheckpointEvery = 0,
    resume: Resume = False,
    as_json: JsonOutput = False,
    quiet: Quiet = False,
) -> None:
    """Fine-tune to joint moments (N·m/kg) or other targets; reports held-out test metrics.

    With a pretrained checkpoint its input channels, window and test subjects are reused.
    With --grf it trains the force-refinement model that `gait predict --grf` uses.
    """
    from gaitcli.errors import UsageError
    from gaitcli.train.loop import TrainConfig
    from gaitcli.train.workflows import DataSpec
    from gaitcli.train.workflows import finetune as run_finetune

    def _refiner(base: Path | None, cfg: TrainConfig):
        from gaitcli.train.generative import StateSpec, train_refiner

        state_spec = StateSpec(stride=stride, test_fraction=test_fraction, val_fraction=val_fraction, seed=seed,
                               test_subjects=[s.strip() for s in test_subjects.split(",")] if test_subjects else None)
        with TrainingProgress(quiet, "finetune") as progress:
            return train_refiner(data, output, state_spec, cfg, base, model or "grf_refiner", parse_overrides(set_),
                                 log_csv=Path(log) if log else output.with_suffix(".log.csv"), resume=resume,
                                 on_progress=progress)

    def call():
        if label_sampling not in ("subject", "window"):
            raise UsageError(f"--label-sampling must be subject or window, not {label_sampling!r}")
        if schedule not in ("cosine", "constant", "plateau"):
            raise UsageError(f"--schedule must be cosine, constant or plateau, not {schedule!r}")
        base = None if checkpoint.lower() == "none" else Path(checkpoint)
        if base is None and not (from_scratch and model) and not grf:
            raise UsageError("without a checkpoint, give --from-scratch --model NAME")
        spec = DataSpec(inputs=inputs or "sagittal-angles", targets=targets, stride=stride,
                        unit="cycles" if cycles else "windows",
                        test_fraction=test_fraction, val_fraction=val_fraction, seed=seed,
                        test_subjects=[s.strip() for s in test_subjects.split(",")] if test_subjects else None,
                        label_fraction=label_fraction, label_sampling=label_sampling)
        if base is not None and not inputs:
            spec.inputs = ""
        cfg = TrainConfig(task="finetune", epochs=epochs, max_steps=steps, batch_size=batch_size, lr=lr,
                          weight_decay=weight_decay, warmup_steps=warmup, schedule=schedule, grad_clip=clip,
                          patience=patience, freeze_blocks=freeze_blocks, two_step=two_step,
                          head_epochs=head_epochs, device=device, seed=seed, checkpoint_every=checkpoint_every)
        if grf:
            return _refiner(base, cfg)
        with TrainingProgress(quiet, "finetune") as progress:
            return run_finetune(base, data, output, spec, cfg, from_scratch=from_scratch, model_name=model,
                                model_overrides=parse_overrides(set_),
                                log_csv=Path(log) if log else output.with_suffix(".log.csv"), resume=resume,
                                on_progress=progress)

    meta = run_mapped(call)
    summary = {"checkpoint": str(output), **meta["fit"], "train_windows": meta["train_windows"],
               "test_subjects": meta["split"]["test"], "test_metrics": _brief(meta.get("test_metrics"))}
    if as_json:
        print(json.dumps(summary, indent=2))
    elif not quiet:
        _print(summary)
    if meta["fit"]["interrupted"]:
        console.err().print("interrupted: resume with --resume", markup=False)
        raise typer.Exit(130)


def _brief(metrics: dict | None) -> dict:
    """channel -> {rmse, r2} (mean across test subjects)."""
    if not metrics:
        return {}
    out: dict = {}
    for row in metrics.get("summary", []):
        if row["metric"] in ("rmse", "r2"):
            out.setdefault(row["channel"], {})[row["metric"]] = row["mean"]
    return out


def _print(summary: dict) -> None:
    out = console.out()
    out.print(" ".join(f"{k}={summary[k]}" for k in ("checkpoint", "best_epoch", "epochs_run", "seconds")), markup=False)
    for channel, values in summary["test_metrics"].items():
        rmse, r2 = values.get("rmse"), values.get("r2")
        out.print(f"test {channel}: RMSE {rmse:.3f}  R2 {r2:.2f}" if rmse is not None and r2 is not None
                  else f"test {channel}: {values}", markup=False)
