"""``gait pretrain`` and ``gait finetune`` as library calls: data -> windows -> fit -> checkpoint.

The subject split is made once, at pretraining, and stored in the checkpoint: fine-tuning a
pretrained model reuses its test subjects, so no held-out subject's data (not even unlabeled
kinematics) is seen by either stage. Everything a model needs at prediction time (channels,
units, rate, window, z-score statistics) travels in its checkpoint metadata.
"""

from __future__ import annotations

import fnmatch
import hashlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gaitcli import __version__
from gaitcli.data.windows import (Normalizer, Split, TrialData, Windows, label_subset, load_cycle_windows,
                                  load_trials, make_windows, require_windows, select_channels, split_subjects)
from gaitcli.errors import DataError, UsageError
from gaitcli.train.loop import FitResult, ProgressCallback, TrainConfig, fit


@dataclass
class DataSpec:
    inputs: str | list[str] = "sagittal-angles"
    targets: str | list[str] = "sagittal-moments"
    unit: str = "windows"  # "windows" over continuous trials, or whole time-normalised "cycles"
    window: int = 64  # Li 2025 (with unit "cycles" the cycle's --points from ingest)
    stride: int = 8
    test_fraction: float = 0.2  # Gait2Hip-60: 20 % of subjects held out
    val_fraction: float = 0.1
    seed: int = 0
    test_subjects: list[str] | None = None
    label_fraction: float = 1.0
    label_sampling: str = "subject"  # "subject" (whole subjects) or "window"
    # (trial glob, channel glob) pairs whose labels are known to be wrong: set to NaN, never learned
    exclude_labels: list[tuple[str, str]] = field(default_factory=list)
    # an explicit subject split {"train": [...], "val": [...], "test": [...]} (benchmark folds);
    # overrides the fractions, and the training subjects are used whole
    split: dict[str, list[str]] | None = None


def data_fingerprint(trials: list[TrialData]) -> str:
    digest = hashlib.sha256()
    for trial in sorted(trials, key=lambda t: (t.subject, t.trial)):
        digest.update(f"{trial.subject}/{trial.trial}/{len(trial.time)}/{','.join(sorted(trial.values))}".encode())
        for name in sorted(trial.values):
            digest.update(np.ascontiguousarray(trial.values[name], dtype=np.float32).tobytes())
    return digest.hexdigest()[:16]


def _exclude(found: Windows, targets: list[str], rules: list[tuple[str, str]]) -> tuple[Windows, list[str]]:
    """Known-bad labels set to NaN (rules: trial glob on ``subject/trial``, channel glob); examples
    left with no label at all are dropped. Returns the examples and what was excluded."""
    if not rules or found.targets is None:
        return found, []
    notes: set[str] = set()
    for i, (subject, name) in enumerate(zip(found.subjects, found.trials)):
        trial = f"{subject}/{name.split('/')[0]}"  # cycle examples are named trial/side
        for trial_glob, channel_glob in rules:
            if fnmatch.fnmatch(trial, trial_glob):
                for j, channel in enumerate(targets):
                    if fnmatch.fnmatch(channel, channel_glob):
                        found.targets[i][:, j] = np.nan
                        notes.add(f"{trial}: {channel} excluded")
    return found.subset(np.isfinite(found.targets).any(axis=(1, 2))), sorted(notes)


def examples(data: list[str | Path], trials: list[TrialData], inputs: list[str], targets: list[str] | None,
             spec: DataSpec, subjects: list[str]) -> Windows:
    """Training examples of the spec's unit for some subjects, with known-bad labels set to NaN."""
    if spec.unit == "cycles":
        found = load_cycle_windows(data, inputs, targets, subjects)
    elif spec.unit == "windows":
        found = make_windows(trials, inputs, targets, spec.window, spec.stride, subjects)
    else:
        raise UsageError(f"unit must be windows or cycles, not {spec.unit!r}")
    return _exclude(found, targets or [], spec.exclude_labels)[0]


def _require_sequence_model(name: str) -> None:
    from gaitcli.models.registry import is_denoiser, sequence_models

    if is_denoiser(name):
        raise UsageError(f"{name} is a diffusion denoiser, not an inputs -> targets model; "
                         f"choose one of {', '.join(sequence_models())}")


def _subjects_with(trials: list[TrialData], channels: list[str]) -> list[str]:
    return sorted({t.subject for t in trials if t.has(channels)})


def _units(trials: list[TrialData], channels: list[str]) -> dict[str, str]:
    """Each channel's unit over the trials that have every channel; several units are an error."""
    used = [t for t in trials if t.has(channels)]
    units = {}
    for c in channels:
        found = {t.units.get(c) for t in used} - {None}
        units[c] = sorted(found)[0] if found else ""
        if len(found) > 1:
            raise DataError(f"channel {c} comes in several units ({', '.join(sorted(found))}); "
                            "ingest with body mass known so moments are all per kg")
    return units


# -- pretraining -------------------------------------------------------------------------------
def pretrain(data: list[str | Path], out: Path, model_name: str, spec: DataSpec, cfg: TrainConfig,
             model_overrides: dict[str, Any] | None = None, log_csv: Path | None = None,
             resume: bool = False, on_progress: ProgressCallback | None = None) -> dict[str, Any]:
    """Self-supervised pretraining on the input channels of every trial (no labels needed)."""
    from gaitcli.models.checkpoint import save_checkpoint
    from gaitcli.models.registry import create_model

    if cfg.task not in ("pretrain", "contrastive"):
        raise UsageError(f"pretraining task must be pretrain or contrastive, not {cfg.task}")
    _require_sequence_model(model_name)
    trials = load_trials(data)
    inputs = select_channels(spec.inputs)
    subjects = _subjects_with(trials, inputs)
    if len(subjects) < 2:
        raise DataError(f"pretraining needs at least 2 subjects with {', '.join(inputs)}; found {len(subjects)}")
    split = _explicit_split(spec, subjects) or split_subjects(subjects, spec.test_fraction, spec.val_fraction,
                                                              spec.seed, spec.test_subjects)
    train = require_windows(examples(data, trials, inputs, None, spec, split.train), "training")
    val = examples(data, trials, inputs, None, spec, split.val)
    spec.window = int(train.inputs.shape[1])
    norm = Normalizer.fit(inputs, train.inputs)
    model = create_model(model_name, in_channels=len(inputs), out_channels=len(inputs), **(model_overrides or {}))
    result = fit(model, norm.apply(train.inputs), None, norm.apply(val.inputs) if len(val) else None, None, cfg,
                 log_csv=log_csv, state_path=_state_path(out), resume=resume, on_progress=on_progress)
    metadata = _metadata(model, cfg, spec, inputs, inputs, _units(trials, inputs), norm, norm, split, trials,
                         train, val, result)
    save_checkpoint(out, model, metadata)
    return metadata


# -- fine-tuning -------------------------------------------------------------------------------
def finetune(checkpoint: Path | None, data: list[str | Path], out: Path, spec: DataSpec, cfg: TrainConfig,
             from_scratch: bool = False, model_name: str | None = None, model_overrides: dict | None = None,
             log_csv: Path | None = None, resume: bool = False,
             on_progress: ProgressCallback | None = None) -> dict[str, Any]:
    """Inputs -> targets, starting from a pretrained checkpoint (or from scratch, same architecture)."""
    from gaitcli.models.checkpoint import load_checkpoint, save_checkpoint
    from gaitcli.models.registry import create_model, model_from_config

    base_meta: dict[str, Any] = {}
    if checkpoint is not None:
        model, base_meta = load_checkpoint(checkpoint)
        inputs = list(base_meta["inputs"])
        if spec.inputs not in (None, "", base_meta.get("inputs_spec")) and select_channels(spec.inputs) != inputs:
            raise UsageError(f"{checkpoint}: the model was pretrained on {', '.join(inputs)}; "
                             "fine-tuning must use the same input channels")
        spec.window = int(base_meta.get("window", spec.window))
        spec.unit = str(base_meta.get("unit", spec.unit))
        if from_scratch:  # the papers' baseline: same architecture, random initial weights
            model = model_from_config(base_meta["model"])
    elif model_name:
        _require_sequence_model(model_name)
        inputs = select_channels(spec.inputs)
        model = create_model(model_name, in_channels=len(inputs), out_channels=len(inputs), **(model_overrides or {}))
    else:
        raise UsageError("give a pretrained checkpoint, or --from-scratch with --model NAME")

    trials = load_trials(data)
    targets = select_channels(spec.targets)
    subjects = _subjects_with(trials, inputs + targets)
    if len(subjects) < 2:
        raise DataError(f"fine-tuning needs at least 2 subjects with {', '.join(inputs + targets)}; found {len(subjects)}")
    split = _explicit_split(spec, subjects) or _finetune_split(base_meta, subjects, spec)
    train_subjects = split.train
    if spec.split is None and spec.label_sampling == "subject" and spec.label_fraction < 1.0:
        train_subjects = label_subset(split.train, spec.label_fraction, spec.seed)
    train = require_windows(examples(data, trials, inputs, targets, spec, train_subjects), "training")
    if spec.label_sampling == "window" and spec.label_fraction < 1.0:
        keep = np.random.default_rng(spec.seed).random(len(train)) < spec.label_fraction
        keep[np.random.default_rng(spec.seed).integers(len(train))] = True
        train = train.subset(keep)
    val = examples(data, trials, inputs, targets, spec, split.val)
    spec.window = int(train.inputs.shape[1])
    in_norm = Normalizer.from_dict(base_meta["input_norm"]) if "input_norm" in base_meta else Normalizer.fit(inputs, train.inputs)
    out_norm = Normalizer.fit(targets, train.targets)
    model.reset_head(len(targets))
    cfg.task = "finetune"
    result = fit(model, in_norm.apply(train.inputs), out_norm.apply(train.targets),
                 in_norm.apply(val.inputs) if len(val) else None, out_norm.apply(val.targets) if len(val) else None,
                 cfg, log_csv=log_csv, state_path=_state_path(out), resume=resume, on_progress=on_progress)
    metadata = _metadata(model, cfg, spec, inputs, targets, _units(trials, inputs + targets), in_norm, out_norm,
                         split, trials, train, val, result)
    metadata.update(pretrained_from=str(checkpoint) if checkpoint and not from_scratch else None,
                    from_scratch=from_scratch or checkpoint is None, train_subjects_used=train_subjects,
                    excluded_labels=spec.exclude_labels)
    test = examples(data, trials, inputs, targets, spec, split.test)
    if len(test):
        metadata["test_metrics"] = window_metrics(model, test, in_norm, out_norm, targets)
    save_checkpoint(out, model, metadata)
    return metadata


def _explicit_split(spec: DataSpec, subjects: list[str]) -> Split | None:
    """The spec's explicit split, restricted to the subjects that have the channels."""
    if spec.split is None:
        return None
    have = set(subjects)
    parts = {part: sorted(s for s in spec.split.get(part, []) if s in have) for part in ("train", "val", "test")}
    seen: set[str] = set()
    for part, names in parts.items():
        if seen & set(names):
            raise UsageError(f"subject(s) {', '.join(sorted(seen & set(names)))} in two parts of the split")
        seen |= set(names)
    return Split(parts["train"], parts["val"], parts["test"])


def _finetune_split(base_meta: dict, subjects: list[str], spec: DataSpec) -> Split:
    stored = base_meta.get("split")
    if stored and spec.test_subjects is None:
        test = [s for s in stored["test"] if s in subjects]
        rest = [s for s in subjects if s not in stored["test"]]
        inner = split_subjects(rest, 0.0, spec.val_fraction, spec.seed) if len(rest) > 1 else Split(rest, [], [])
        return Split(inner.train, inner.val, test)
    return split_subjects(subjects, spec.test_fraction, spec.val_fraction, spec.seed, spec.test_subjects)


def window_metrics(model, windows: Windows, in_norm: Normalizer, out_norm: Normalizer,
                   targets: list[str]) -> dict[str, Any]:
    """Per-channel metrics on held-out windows (per subject, mean ± SD, and pooled)."""
    import pandas as pd

    from gaitcli.eval.metrics import evaluate_table

    pred = predict_windows(model, windows.inputs, in_norm, out_norm)
    n, t, c = windows.targets.shape
    frame = pd.DataFrame({"subject": np.repeat(windows.subjects, t), "trial": np.repeat(windows.trials, t),
                          "cycle": np.repeat(np.arange(n), t)})  # each window or cycle: one peak-error unit
    for j, name in enumerate(targets):
        frame[name] = windows.targets[:, :, j].reshape(-1)
        frame[name + "_pred"] = pred[:, :, j].reshape(-1)
    return evaluate_table(frame, targets).to_dict()


def predict_windows(model, inputs: np.ndarray, in_norm: Normalizer, out_norm: Normalizer,
                    batch_size: int = 256) -> np.ndarray:
    """Model outputs in target units for windows of raw inputs (N, T, C_in)."""
    import torch

    model.eval()
    device = next(model.parameters()).device
    outputs = []
    with torch.no_grad():
        for start in range(0, len(inputs), batch_size):
            x = torch.as_tensor(in_norm.apply(inputs[start:start + batch_size]), dtype=torch.float32, device=device)
            outputs.append(model(x).float().cpu().numpy())
    stacked = np.concatenate(outputs) if outputs else np.zeros((0,) + inputs.shape[1:2] + (len(out_norm.channels),))
    return out_norm.invert(stacked)


def _state_path(out: Path) -> Path:
    return out.with_name(out.name + ".state.safetensors")


def _metadata(model, cfg: TrainConfig, spec: DataSpec, inputs: list[str], outputs: list[str],
              units: dict[str, str], in_norm: Normalizer, out_norm: Normalizer, split: Split,
              trials: list[TrialData], train: Windows, val: Windows, result: FitResult) -> dict[str, Any]:
    return {
        "model": model.config.to_dict(), "task": cfg.task, "gait_version": __version__,
        "inputs": inputs, "inputs_spec": spec.inputs if isinstance(spec.inputs, str) else None,
        "outputs": outputs, "units": units, "rate_hz": 100.0, "unit": spec.unit, "window": spec.window,
        "stride": spec.stride,
        "input_norm": in_norm.to_dict(), "output_norm": out_norm.to_dict(), "split": split.to_dict(),
        "train_config": asdict(cfg), "data_fingerprint": data_fingerprint(trials),
        "data_subjects": sorted({t.subject for t in trials}), "train_windows": len(train), "val_windows": len(val),
        "tiled_trials": sorted(f"{t.subject}/{t.trial}" for t in trials if t.tiled),
        "fit": {"best_val_loss": result.best_val_loss, "best_epoch": result.best_epoch,
                "epochs_run": result.epochs_run, "steps": result.steps, "seconds": round(result.seconds, 1),
                "interrupted": result.interrupted},
    }
