"""gait benchmark: LSTM vs Transformer vs Mamba (and SSL vs scratch) under one protocol."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer

from gaitcli.cli import console
from gaitcli.cli.errors import run_mapped
from gaitcli.cli.options import Device, Jobs, JsonOutput, Quiet
from gaitcli.cli.training import BatchSize, Clip, Inputs, LearningRate, Patience, Stride, Window, WeightDecay, \
    parse_overrides


def benchmark(
    data: Annotated[list[str], typer.Argument(help="Ingest output folders or .parquet files with labels.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Results folder (created; runs already in it are reused).")],
    models: Annotated[str, typer.Option("--models", help="Comma-separated registry models.")] = "transformer,lstm,mamba",
    targets: Annotated[str, typer.Option("--targets", help="Target channels: preset, names or globs.")] = "sagittal-moments",
    inputs: Inputs = "sagittal-angles",
    unit: Annotated[str, typer.Option("--unit", help="cycles (one gait cycle per example, Gait2Hip-60) or windows (Li 2025).")] = "cycles",
    window: Window = 64,
    stride: Stride = 8,
    pretrained: Annotated[str | None, typer.Option("--pretrained", help="A pretrained checkpoint: its model gets an SSL variant beside its from-scratch twin.")] = None,
    pretrain: Annotated[str, typer.Option("--pretrain", help="Models to pretrain (masked reconstruction) on the pool's kinematics, each then fine-tuned as an SSL variant: e.g. transformer, or all.")] = "",
    pretrain_epochs: Annotated[int, typer.Option("--pretrain-epochs", min=1, help="Epochs of --pretrain (early stopping on 10 % of the pool).")] = 100,
    label_fractions: Annotated[str, typer.Option("--label-fractions", help="Fractions of pool subjects with labels: 0.05,0.1,0.5,1 or linear:N or log:MIN:N.")] = "1.0",
    folds: Annotated[int, typer.Option("--folds", min=2, help="GroupKFold folds (by subject) in the training pool.")] = 5,
    seeds: Annotated[int, typer.Option("--seeds", min=1, help="Repeat every run with seeds 0..N-1 (initial weights, batches, label subsets).")] = 1,
    test_fraction: Annotated[float, typer.Option("--test-fraction", min=0.01, max=0.9, help="Fraction of labelled subjects held out as the test set.")] = 0.2,
    split_seed: Annotated[int, typer.Option("--split-seed", help="Seed of the test split (fixed for all runs).")] = 0,
    epochs: Annotated[int, typer.Option("--epochs", min=1, help="At most this many epochs per fold (early stopping).")] = 300,
    patience: Patience = 20,
    batch_size: BatchSize = 64,
    lr: LearningRate = 1e-4,
    weight_decay: WeightDecay = 1e-5,
    clip: Clip = 0.5,
    set_: Annotated[list[str], typer.Option("--set", help="Model override MODEL.KEY=VALUE, e.g. transformer.width=32 (repeatable).")] = [],  # noqa: B006
    exclude_labels: Annotated[list[str], typer.Option("--exclude-labels", help="TRIAL_GLOB:CHANNEL_GLOB labels known to be wrong (never learned or scored; repeatable).")] = [],  # noqa: B006
    by: Annotated[str, typer.Option("--by", help="Strata for the report: cadence (tertiles), side, condition or another column.")] = "cadence,side",
    jobs: Jobs = 1,
    device: Device = "auto",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan (runs, subjects, time estimate) and exit.")] = False,
    report_only: Annotated[bool, typer.Option("--report-only", help="Rebuild tables, figures and report from finished runs.")] = False,
    as_json: JsonOutput = False,
    quiet: Quiet = False,
) -> None:
    """Compare models under one protocol: subject-level test split, GroupKFold CV with early stopping,
    retraining for the median best epoch, per-subject test metrics, Wilcoxon + Holm, report and figures.

    Every run is cached in OUTPUT/runs: run the same command again to resume after a stop.
    """
    from gaitcli.train import benchmark as bench_lib

    def configure() -> bench_lib.BenchmarkConfig:
        return bench_lib.BenchmarkConfig(
            models=[m.strip() for m in models.split(",") if m.strip()], inputs=inputs, targets=targets, unit=unit,
            window=window, stride=stride, test_fraction=test_fraction, split_seed=split_seed, folds=folds,
            seeds=list(range(seeds)), label_fractions=bench_lib.parse_fractions(label_fractions),
            pretrained=pretrained, pretrain=_pretrain_models(pretrain, models), pretrain_epochs=pretrain_epochs, epochs=epochs,
            patience=patience, lr=lr, weight_decay=weight_decay, batch_size=batch_size, grad_clip=clip,
            device=device, model_overrides=_model_overrides(set_), exclude_labels=_exclusions(exclude_labels),
            strata=[b.strip() for b in by.split(",") if b.strip()])

    cfg = run_mapped(configure)
    if dry_run:
        bench = run_mapped(lambda: bench_lib.plan(data, cfg))
        estimate = run_mapped(lambda: bench_lib.estimate_seconds(bench, output))
        _print_plan(bench, estimate, output, as_json)
        return
    if report_only:
        bench, written = run_mapped(lambda: bench_lib.report_only(data, output, cfg))
    else:
        progress = _Progress(quiet)
        began = time.perf_counter()
        bench, written = run_mapped(lambda: bench_lib.run_benchmark(data, output, cfg, jobs, progress))
        if not quiet:
            console.err().print(f"{progress.trained} runs trained, {progress.reused} reused, in "
                                f"{(time.perf_counter() - began) / 60:.1f} min", markup=False)
    if as_json:
        print(json.dumps({"output": str(output), "runs": len(bench.runs), "files": [str(p) for p in written]}, indent=2))
    elif not quiet:
        console.err().print(f"report: {output / 'report.md'}  ({len(written)} files written)", markup=False)


def _pretrain_models(text: str, models: str) -> list[str]:
    chosen = models if text.strip() == "all" else text
    return [m.strip() for m in chosen.split(",") if m.strip()]


def _model_overrides(values: list[str]) -> dict[str, dict]:
    from gaitcli.errors import UsageError

    overrides: dict[str, dict] = {}
    for item in values:
        model, dot, rest = item.partition(".")
        if not dot or "=" not in rest:
            raise UsageError(f"--set {item}: expected MODEL.KEY=VALUE, e.g. transformer.width=32")
        overrides.setdefault(model, {}).update(parse_overrides([rest]))
    return overrides


def _exclusions(values: list[str]) -> list[list[str]]:
    from gaitcli.errors import UsageError

    rules = []
    for item in values:
        trial, sep, channel = item.partition(":")
        if not sep or not trial or not channel:
            raise UsageError(f"--exclude-labels {item}: expected TRIAL_GLOB:CHANNEL_GLOB, e.g. 'Rajagopal*/*:hip_*'")
        rules.append([trial, channel])
    return rules


class _Progress:
    """One line per finished or reused run on stderr, with the count."""

    def __init__(self, quiet: bool) -> None:
        self.quiet, self.finished, self.trained, self.reused = quiet, 0, 0, 0

    def __call__(self, event: str, run, result) -> None:
        if event == "start":
            return
        self.finished += 1
        self.reused += event == "cached"
        self.trained += event == "done"
        if self.quiet:
            return
        if event == "cached":
            text = f"[{self.finished}] reused {run.run_id}"
        else:
            extra = f"best epoch {result['best_epoch'] + 1}" if run.stage != "final" else \
                f"{result['retrain_epochs']} epochs"
            text = f"[{self.finished}] done {run.run_id}: {extra}, {result['seconds']:.0f} s"
        console.err().print(text, markup=False)


def _print_plan(bench, estimate: dict, output: Path, as_json: bool) -> None:
    stages = {s: len(bench.stage(s)) for s in ("pretrain", "cv", "final")}
    summary = {"runs": len(bench.runs), "stages": stages, "labelled_subjects": len(bench.labelled_subjects),
               "test_subjects": bench.test, "pool_subjects": len(bench.pool), "examples": bench.n_examples,
               "estimate": {k: round(v, 3) for k, v in estimate.items()},
               "run_ids": [r.run_id for r in bench.runs]}
    if as_json:
        print(json.dumps(summary, indent=2))
        return
    out = console.out()
    out.print(f"{len(bench.runs)} runs: {stages['pretrain']} pretraining, {stages['cv']} cross-validation folds, "
              f"{stages['final']} final retrainings", markup=False)
    out.print(f"{len(bench.labelled_subjects)} labelled subjects ({bench.n_examples} {bench.config.unit}); "
              f"test {len(bench.test)}: {', '.join(bench.test)}; pool {len(bench.pool)}", markup=False)
    steps = ", ".join(f"{k[5:-2]} {v * 1000:.0f} ms" for k, v in estimate.items() if k.startswith("step_"))
    out.print(f"time per optimiser step: {steps}", markup=False)
    out.print(f"at most {estimate['upper_bound_s'] / 60:.0f} min if no fold stops early; "
              f"{estimate['remaining_upper_bound_s'] / 60:.0f} min of it still to run in {output}", markup=False)
