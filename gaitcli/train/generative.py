"""Training GaitDynamics' two models on gait-state windows (gaitcli.data.gaitstate).

- ``train_diffusion``: the diffusion denoiser over every state channel (kinematics and forces);
  entries a trial lacks (no pelvis translation, trunk not tracked, stance off the plates) are
  left out of the loss, not invented.
- ``train_refiner``: the force-refinement Transformer, kinematic channels -> both feet's forces.
  Given a diffusion checkpoint it reuses that checkpoint's subject split and min-max scaling, so
  the pair is evaluated on subjects neither has seen. Unknown kinematic inputs are 0 (the middle
  of the training range); at prediction time they are filled first (inpainting or median).

Both use the one training loop (``gaitcli.train.loop.fit``) and write safetensors checkpoints
whose metadata carries the state definition, the scaling and the split.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gaitcli import __version__
from gaitcli.data import gaitstate as gs
from gaitcli.data.windows import Split, split_subjects
from gaitcli.errors import DataError, UsageError
from gaitcli.train.loop import FitResult, ProgressCallback, TrainConfig, fit
from gaitcli.train.workflows import _state_path

STATE_KIND = "gait-state"


@dataclass
class StateSpec:
    stride: int = 10
    test_fraction: float = 0.2
    val_fraction: float = 0.1
    seed: int = 0
    test_subjects: list[str] | None = None
    height_m: float | None = None  # for trials whose metadata has none (else 1.75 m is assumed)


@dataclass
class StateData:
    windows: gs.StateWindows
    split: Split
    norm: gs.MinMax
    skipped: list[str]
    trials: list[str]

    def part(self, name: str) -> gs.StateWindows:
        wanted = set(getattr(self.split, name))
        return self.windows.subset(np.array([s in wanted for s in self.windows.subjects], dtype=bool))


def prepare(data: list[str | Path], spec: StateSpec, base: dict[str, Any] | None = None) -> StateData:
    """Windows of every usable trial, the subject split and the min-max scaling (from the
    training subjects), or the split and scaling of ``base`` (a diffusion checkpoint's metadata)."""
    states, skipped = gs.load_states(data, spec.height_m)
    windows = gs.state_windows(states, spec.stride)
    skipped += [f"{t} (too short)" for t in windows.too_short]
    subjects = sorted(set(windows.subjects))
    if len(subjects) < 2:
        raise DataError(f"gait-state training needs windows of at least 2 subjects; found {len(subjects)} "
                        f"({len(states)} usable trials)")
    if base is not None:
        split = Split(**{k: list(v) for k, v in base["split"].items()})
        norm = gs.MinMax.from_dict(base["normalizer"])
    else:
        split = split_subjects(subjects, spec.test_fraction, spec.val_fraction, spec.seed, spec.test_subjects)
        train = windows.subset(np.array([s in set(split.train) for s in windows.subjects], dtype=bool))
        norm = gs.MinMax.fit(gs.STATE_CHANNELS, train.values)
    return StateData(windows, split, norm, skipped, sorted({f"{s.subject}/{s.trial}" for s in states}))


def _fingerprint(windows: gs.StateWindows) -> str:
    digest = hashlib.sha256(np.ascontiguousarray(np.nan_to_num(windows.values[:, ::10])).tobytes())
    digest.update(",".join(windows.trials).encode())
    return digest.hexdigest()[:16]


def train_diffusion(data: list[str | Path], out: Path, model_name: str, spec: StateSpec, cfg: TrainConfig,
                    overrides: dict[str, Any] | None = None, log_csv: Path | None = None, resume: bool = False,
                    on_progress: ProgressCallback | None = None) -> dict[str, Any]:
    """The diffusion model over whole gait-state windows (``gait pretrain --model diffusion``)."""
    from gaitcli.models.checkpoint import save_checkpoint
    from gaitcli.models.registry import create_model, is_denoiser

    if not is_denoiser(model_name):
        raise UsageError(f"{model_name} is not a diffusion model")
    cfg.task = "diffusion"
    prepared = prepare(data, spec)
    train, val = _require(prepared.part("train"), "training"), prepared.part("val")
    channels = len(gs.STATE_CHANNELS)
    model = create_model(model_name, **{"in_channels": channels, "out_channels": channels,
                                        "window": gs.WINDOW, **(overrides or {})})
    result = fit(model, prepared.norm.apply(train.values), None,
                 prepared.norm.apply(val.values) if len(val) else None, None, cfg, log_csv=log_csv,
                 state_path=_state_path(out), resume=resume, on_progress=on_progress)
    meta = _metadata(model, "diffusion", cfg, spec, prepared, gs.STATE_CHANNELS, gs.STATE_CHANNELS, train, val, result)
    save_checkpoint(out, model, meta)
    return meta


def train_refiner(data: list[str | Path], out: Path, spec: StateSpec, cfg: TrainConfig,
                  base_checkpoint: Path | None = None, model_name: str = "grf_refiner",
                  overrides: dict[str, Any] | None = None, log_csv: Path | None = None, resume: bool = False,
                  on_progress: ProgressCallback | None = None) -> dict[str, Any]:
    """The force-refinement model (``gait finetune --grf``): kinematic state -> forces."""
    from gaitcli.models.checkpoint import read_checkpoint_metadata, save_checkpoint
    from gaitcli.models.registry import create_model, is_denoiser

    if is_denoiser(model_name):
        raise UsageError(f"--grf trains a sequence model, not the denoiser {model_name}")
    base = None
    if base_checkpoint is not None:
        base = read_checkpoint_metadata(base_checkpoint)
        if base.get("kind") != STATE_KIND:
            raise UsageError(f"{base_checkpoint}: not a gait-state checkpoint (train one with "
                             "`gait pretrain --model diffusion`)")
    cfg.task = "finetune"
    prepared = prepare(data, spec, base)
    train, val = _require(prepared.part("train"), "training"), prepared.part("val")
    x, y = refiner_arrays(prepared.norm, train.values)
    vx, vy = refiner_arrays(prepared.norm, val.values) if len(val) else (None, None)
    keep = np.isfinite(y).any(axis=(1, 2))  # windows with some measured force
    model = create_model(model_name, **{"in_channels": x.shape[-1], "out_channels": y.shape[-1],
                                        "window": gs.WINDOW, **(overrides or {})})
    result = fit(model, x[keep], y[keep], vx, vy, cfg, log_csv=log_csv, state_path=_state_path(out),
                 resume=resume, on_progress=on_progress)
    meta = _metadata(model, "grf-refiner", cfg, spec, prepared, gs.KINEMATIC_CHANNELS, gs.FORCE_CHANNELS,
                     train, val, result)
    test = prepared.part("test")
    if len(test):
        meta["test_metrics"] = window_metrics(model, prepared.norm, test.values)
    save_checkpoint(out, model, meta)
    return meta


def refiner_arrays(norm: gs.MinMax, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Scaled kinematic inputs (unknown -> 0) and force targets (unknown stays NaN)."""
    scaled = norm.apply(values).astype(np.float32)
    kin = len(gs.KINEMATIC_CHANNELS)
    return np.nan_to_num(scaled[..., :kin]), scaled[..., kin:]


def window_metrics(model, norm: gs.MinMax, values: np.ndarray) -> dict[str, Any]:
    """RMSE and R² per force channel over test windows (measured entries only), in state units."""
    import torch

    x, _ = refiner_arrays(norm, values)
    with torch.no_grad():
        scaled = model.eval()(torch.as_tensor(x)).numpy()
    kin = len(gs.KINEMATIC_CHANNELS)
    full = np.zeros(values.shape)
    full[..., kin:] = scaled
    predicted = norm.invert(full)[..., kin:]
    truth = values[..., kin:]
    rows = []
    for k, channel in enumerate(gs.FORCE_CHANNELS):
        ok = np.isfinite(truth[..., k])
        if not ok.any():
            continue
        err = predicted[..., k][ok] - truth[..., k][ok]
        spread = np.var(truth[..., k][ok])
        rows.append({"channel": channel, "metric": "rmse", "mean": float(np.sqrt(np.mean(err ** 2)))})
        rows.append({"channel": channel, "metric": "r2",
                     "mean": float(1 - np.mean(err ** 2) / spread) if spread > 0 else float("nan")})
    return {"summary": rows, "unit": "state units (GRF N/kg)"}


def channel_medians(scaled: np.ndarray) -> list[float]:
    """Each channel's median over the training windows (scaled; 0 where never known): the
    paper's Median Filling baseline."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        median = np.nanmedian(scaled.reshape(-1, scaled.shape[-1]), axis=0)
    return [float(m) for m in np.nan_to_num(median)]


def _require(windows: gs.StateWindows, what: str) -> gs.StateWindows:
    if len(windows) == 0:
        raise DataError(f"no {what} windows of {gs.WINDOW} samples")
    return windows


def _metadata(model, role: str, cfg: TrainConfig, spec: StateSpec, prepared: StateData, inputs: list[str],
              outputs: list[str], train: gs.StateWindows, val: gs.StateWindows, result: FitResult) -> dict[str, Any]:
    return {
        "kind": STATE_KIND, "role": role, "model": model.config.to_dict(), "task": cfg.task,
        "gait_version": __version__, "state_channels": gs.STATE_CHANNELS, "inputs": list(inputs),
        "outputs": list(outputs), "rate_hz": gs.RATE_HZ, "window": gs.WINDOW, "stride": spec.stride,
        "normalizer": prepared.norm.to_dict(), "split": prepared.split.to_dict(),
        "median": channel_medians(prepared.norm.apply(train.values)),
        "train_config": asdict(cfg), "data_fingerprint": _fingerprint(prepared.windows),
        "trials": prepared.trials, "skipped": prepared.skipped,
        "train_windows": len(train), "val_windows": len(val),
        "fit": {"best_val_loss": result.best_val_loss, "best_epoch": result.best_epoch,
                "epochs_run": result.epochs_run, "steps": result.steps, "seconds": round(result.seconds, 1),
                "interrupted": result.interrupted},
    }
