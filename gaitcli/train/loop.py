"""The training loop for every gait model, readable top to bottom (after nanoGPT).

Three tasks share it:
  - ``pretrain``: masked reconstruction (Li 2025, Tan 2024): a random (or contiguous) fraction
    of the time steps is hidden from the model, which must reconstruct them; MSE on the hidden
    steps only.
  - ``contrastive``: two views of each window (independent random time masks, Gaussian jitter
    and amplitude scaling of the z-scored angles), time-pooled encodings, InfoNCE (NT-Xent)
    with the other windows of the batch as negatives.
  - ``finetune``: inputs -> targets; MSE on the finite target samples (NaN labels, e.g. masked
    Plug-in Gait moments, are ignored).
Inputs and targets arrive z-scored (statistics from the training subjects only). Optimiser:
AdamW; learning rate: linear warm-up then cosine decay or constant, or reduce-on-plateau; gradient
clipping; early stopping on the validation loss; bf16 autocast on CUDA.
"""

from __future__ import annotations

import copy
import csv
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

from gaitcli.errors import GaitError

TASKS = ("pretrain", "contrastive", "finetune", "diffusion")


@dataclass
class TrainConfig:
    task: str = "finetune"
    epochs: int = 100
    max_steps: int | None = None  # stop after this many optimiser steps, whatever the epochs
    batch_size: int = 64  # Li 2025, Gait2Hip-60
    lr: float = 1e-4  # Li 2025 pretraining, Gait2Hip-60
    min_lr_ratio: float = 0.01  # cosine decays to lr * this
    weight_decay: float = 1e-5  # Li 2025
    warmup_steps: int = 50
    schedule: str = "cosine"  # "cosine", "constant" (after warm-up), or "plateau" (factor 0.5 after `plateau_patience` epochs)
    plateau_patience: int = 5
    grad_clip: float = 1.0
    mask_ratio: float = 0.1  # Li 2025: 10 %; Tan 2024 best: 12.5 %
    mask_mode: str = "random"  # "random" time steps, or one "contiguous" block per window
    temperature: float = 0.1  # contrastive
    patience: int = 20  # early stopping, epochs without a better validation loss (Li 2025); 0 = off
    freeze_blocks: int = 0  # Li 2025 fine-tuning: 6 of 8
    two_step: bool = False  # Tan 2024: head alone first, then the whole model
    head_epochs: int = 10
    device: str = "auto"
    bf16: bool = True
    seed: int = 0
    checkpoint_every: int = 0  # epochs between resumable states (0: only at the end / Ctrl-C)
    keep_best: bool = True  # end with the best validation epoch's weights (False: the last epoch's)
    ema_decay: float = 0.999  # diffusion: the weights kept are this exponential moving average


@dataclass
class FitResult:
    best_val_loss: float
    best_epoch: int
    epochs_run: int
    steps: int
    seconds: float
    history: list[dict[str, float]] = field(default_factory=list)
    interrupted: bool = False


ProgressCallback = Callable[[int, int, float, float | None], None]


# -- the pieces --------------------------------------------------------------------------------
def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise GaitError("--device cuda: no CUDA device is available (torch.cuda.is_available() is False)")
    if name not in ("cpu", "cuda"):
        raise GaitError(f"--device must be auto, cpu or cuda, not {name!r}")
    return torch.device(name)


def lr_at(step: int, total_steps: int, cfg: TrainConfig) -> float:
    """Linear warm-up, then cosine decay to lr * min_lr_ratio, or constant (a pure function of the step)."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    if cfg.schedule == "constant":
        return cfg.lr
    progress = min(1.0, (step - cfg.warmup_steps) / max(1, total_steps - cfg.warmup_steps))
    floor = cfg.lr * cfg.min_lr_ratio
    return floor + 0.5 * (cfg.lr - floor) * (1.0 + math.cos(math.pi * progress))


def random_mask(batch: int, length: int, ratio: float, mode: str, generator: torch.Generator,
                device: torch.device) -> torch.Tensor:
    """Boolean (B, T): True where a time step is hidden. At least one step per window."""
    count = max(1, int(round(ratio * length)))
    if mode == "contiguous":
        starts = torch.randint(0, length - count + 1, (batch, 1), generator=generator)
        steps = torch.arange(length).unsqueeze(0)
        mask = (steps >= starts) & (steps < starts + count)
    elif mode == "random":
        scores = torch.rand(batch, length, generator=generator)
        mask = scores.argsort(dim=1).argsort(dim=1) < count
    else:
        raise GaitError(f"mask mode must be random or contiguous, not {mode!r}")
    return mask.to(device)


def masked_mse(pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the entries where ``valid`` is True."""
    valid = valid.to(pred.dtype)
    return ((pred - torch.nan_to_num(target)) ** 2 * valid).sum() / valid.sum().clamp_min(1.0)


def _augment(x: torch.Tensor, cfg: TrainConfig, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """One contrastive view: jitter and amplitude scaling of z-scored angles, plus a time mask."""
    noise = torch.randn(x.shape, generator=generator).to(x.device) * 0.05
    scale = (0.9 + 0.2 * torch.rand(x.shape[0], 1, x.shape[2], generator=generator)).to(x.device)
    mask = random_mask(x.shape[0], x.shape[1], max(cfg.mask_ratio, 0.1), cfg.mask_mode, generator, x.device)
    return x * scale + noise, mask


def info_nce(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> torch.Tensor:
    """NT-Xent: each window's two views are positives, the other 2B - 2 views negatives."""
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    sim = z @ z.T / temperature
    sim.fill_diagonal_(float("-inf"))
    n = z1.shape[0]
    targets = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    return F.cross_entropy(sim, targets)


def _encoding(model: torch.nn.Module, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    encode = getattr(model, "encode", None)
    features = encode(x, mask) if callable(encode) else model(x, mask)
    return features.mean(dim=1)  # pool over time


def batch_loss(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor | None, cfg: TrainConfig,
               generator: torch.Generator, projector: torch.nn.Module | None = None) -> torch.Tensor:
    if cfg.task == "pretrain":
        mask = random_mask(x.shape[0], x.shape[1], cfg.mask_ratio, cfg.mask_mode, generator, x.device)
        recon = model(x, mask)
        hidden = mask.unsqueeze(-1).expand_as(x)
        return masked_mse(recon, x, hidden)
    if cfg.task == "contrastive":
        (v1, m1), (v2, m2) = _augment(x, cfg, generator), _augment(x, cfg, generator)
        return info_nce(projector(_encoding(model, v1, m1)), projector(_encoding(model, v2, m2)), cfg.temperature)
    if cfg.task == "diffusion":
        from gaitcli.models.diffusion import diffusion_loss

        return diffusion_loss(model, x, _schedule(model, x.device), generator)
    pred = model(x)
    return masked_mse(pred, y, torch.isfinite(y))


_SCHEDULES: dict[tuple[int, str], dict[str, torch.Tensor]] = {}


def _schedule(model: torch.nn.Module, device: torch.device) -> dict[str, torch.Tensor]:
    from gaitcli.models.diffusion import cosine_schedule

    key = (model.config.diffusion_steps, str(device))
    if key not in _SCHEDULES:
        _SCHEDULES[key] = {k: v.to(device) for k, v in cosine_schedule(model.config.diffusion_steps).items()}
    return _SCHEDULES[key]


@torch.no_grad()
def evaluate(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor | None, cfg: TrainConfig,
             projector: torch.nn.Module | None = None, batch_size: int = 256) -> float:
    """Mean loss over a dataset, in eval mode (restored afterwards), with a fixed mask seed."""
    was_training = model.training
    model.eval()
    generator = torch.Generator().manual_seed(cfg.seed + 1)
    total, count = 0.0, 0
    for start in range(0, x.shape[0], batch_size):
        xb = x[start:start + batch_size]
        yb = None if y is None else y[start:start + batch_size]
        total += float(batch_loss(model, xb, yb, cfg, generator, projector)) * xb.shape[0]
        count += xb.shape[0]
    model.train(was_training)
    return total / max(count, 1)


def freeze(model: torch.nn.Module, blocks: int, head_only: bool = False) -> None:
    """Freeze the first ``blocks`` encoder blocks and the embedding in front of them, or (for the
    first step of two-step fine-tuning) everything but the head."""
    if head_only:
        for p in model.parameters():
            p.requires_grad_(False)
        for p in model.head.parameters():
            p.requires_grad_(True)
        return
    available = len(model.blocks())
    if blocks > available:
        raise GaitError(f"--freeze-blocks {blocks}: the model has only {available} blocks")
    model.freeze_blocks(blocks)


# -- the loop ----------------------------------------------------------------------------------
def fit(model: torch.nn.Module, train_x: np.ndarray, train_y: np.ndarray | None,
        val_x: np.ndarray | None, val_y: np.ndarray | None, cfg: TrainConfig,
        log_csv: Path | None = None, state_path: Path | None = None, resume: bool = False,
        on_progress: ProgressCallback | None = None) -> FitResult:
    """Train ``model`` in place; on return it holds the weights of the best validation epoch
    (or of the last epoch with ``cfg.keep_best`` False; for ``task="diffusion"`` the EMA of the
    weights, which a resume restarts from the resumed weights)."""
    if cfg.task not in TASKS:
        raise GaitError(f"task must be one of {', '.join(TASKS)}, not {cfg.task!r}")
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    generator = torch.Generator().manual_seed(cfg.seed)
    device = resolve_device(cfg.device)
    model.to(device).train()
    x = torch.as_tensor(train_x, dtype=torch.float32, device=device)
    y = None if train_y is None else torch.as_tensor(train_y, dtype=torch.float32, device=device)
    vx = None if val_x is None or len(val_x) == 0 else torch.as_tensor(val_x, dtype=torch.float32, device=device)
    vy = None if vx is None or val_y is None else torch.as_tensor(val_y, dtype=torch.float32, device=device)
    projector = _projector(model, x, device) if cfg.task == "contrastive" else None

    params = list(model.parameters()) + (list(projector.parameters()) if projector is not None else [])
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5, patience=cfg.plateau_patience) \
        if cfg.schedule == "plateau" else None
    steps_per_epoch = max(1, math.ceil(x.shape[0] / cfg.batch_size))
    total_steps = cfg.max_steps or cfg.epochs * steps_per_epoch
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if (device.type == "cuda" and cfg.bf16) else _nullcontext()
    ema = _ema(model, cfg)

    step, first_epoch, best, best_epoch, best_state, history = 0, 0, float("inf"), -1, None, []
    if resume and state_path is not None and state_path.exists():
        extra = _load_state(state_path, model, optimizer)
        step, first_epoch = extra["step"], extra["epoch"] + 1
        best, best_epoch, history = extra["best_val_loss"], extra["best_epoch"], extra["history"]
        best_state = copy.deepcopy(model.state_dict()) if best_epoch >= 0 else None
    board = _tensorboard(log_csv)
    began, epoch, done, interrupted = time.perf_counter(), first_epoch - 1, first_epoch - 1, False
    try:
        for epoch in range(first_epoch, cfg.epochs):
            freeze(model, cfg.freeze_blocks, head_only=cfg.two_step and epoch < cfg.head_epochs)
            order = torch.randperm(x.shape[0], generator=generator).to(device)
            losses = []
            for start in range(0, x.shape[0], cfg.batch_size):
                idx = order[start:start + cfg.batch_size]
                if plateau is None:
                    for group in optimizer.param_groups:
                        group["lr"] = lr_at(step, total_steps, cfg)
                with autocast:
                    loss = batch_loss(model, x[idx], None if y is None else y[idx], cfg, generator, projector)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
                optimizer.step()
                if ema is not None:
                    ema.update(model)
                losses.append(float(loss.detach()))
                step += 1
                if cfg.max_steps and step >= cfg.max_steps:
                    break
            train_loss = float(np.mean(losses)) if losses else float("nan")
            val_loss = evaluate(model, vx, vy, cfg, projector) if vx is not None else train_loss
            if plateau is not None:
                plateau.step(val_loss)
            history.append({"epoch": epoch, "step": step, "lr": optimizer.param_groups[0]["lr"],
                            "train_loss": train_loss, "val_loss": val_loss,
                            "seconds": round(time.perf_counter() - began, 3)})
            done = epoch  # the last epoch whose results are recorded: a resume starts after it
            _log(log_csv, history[-1])
            if board is not None:
                for key in ("train_loss", "val_loss", "lr"):
                    board.add_scalar(key, history[-1][key], step)
            if val_loss < best:
                best, best_epoch, best_state = val_loss, epoch, copy.deepcopy(model.state_dict())
            if on_progress:
                on_progress(epoch + 1, cfg.epochs, train_loss, val_loss if vx is not None else None)
            if state_path is not None and cfg.checkpoint_every and (epoch + 1) % cfg.checkpoint_every == 0:
                _save_state(state_path, model, optimizer, step, epoch, best, best_epoch, history)
            if (cfg.patience and epoch - best_epoch >= cfg.patience) or (cfg.max_steps and step >= cfg.max_steps):
                break
    except KeyboardInterrupt:
        # Weights include any updates of the unfinished epoch; the resume redoes that epoch from them.
        interrupted = True
    if state_path is not None:
        _save_state(state_path, model, optimizer, step, done, best, best_epoch, history)
    if board is not None:
        board.close()
    if ema is not None:
        ema.copy_to(model)
    elif best_state is not None and cfg.keep_best:
        model.load_state_dict(best_state)
    model.eval()
    return FitResult(best_val_loss=best, best_epoch=best_epoch, epochs_run=done + 1, steps=step,
                     seconds=time.perf_counter() - began, history=history, interrupted=interrupted)


def _ema(model: torch.nn.Module, cfg: TrainConfig):
    """Diffusion keeps an exponential moving average of its weights; the model ends with it."""
    if cfg.task != "diffusion":
        return None
    from gaitcli.models.diffusion import EMA

    return EMA(model, cfg.ema_decay)


def _projector(model: torch.nn.Module, x: torch.Tensor, device: torch.device) -> torch.nn.Module:
    with torch.no_grad():
        width = _encoding(model, x[:2], None).shape[-1]
    return torch.nn.Sequential(torch.nn.Linear(width, width), torch.nn.ReLU(), torch.nn.Linear(width, 64)).to(device)


class _nullcontext:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: Any) -> None:
        return None


def _tensorboard(log_csv: Path | None):
    """A TensorBoard writer beside the CSV log when the tensorboard package is installed."""
    if log_csv is None:
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(log_dir=str(log_csv.with_suffix("")) + ".tensorboard")


def _log(path: Path | None, row: dict[str, float]) -> None:
    if path is None:
        return
    new = not path.exists()
    with open(path, "a", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(row))
        if new:
            writer.writeheader()
        writer.writerow(row)


def _save_state(path: Path, model, optimizer, step: int, epoch: int, best: float, best_epoch: int,
                history: list) -> None:
    from gaitcli.models.checkpoint import save_training_state

    save_training_state(path, model, optimizer, {"step": step, "epoch": epoch, "best_val_loss": best,
                                                 "best_epoch": best_epoch, "history": history})


def _load_state(path: Path, model, optimizer) -> dict:
    from gaitcli.models.checkpoint import load_training_state

    return load_training_state(path, model, optimizer)


def config_dict(cfg: TrainConfig) -> dict[str, Any]:
    return asdict(cfg)
