"""The one interface every gait model implements, and the config base class.

Every model maps a batch of joint-angle windows to a batch of output windows of the same
length::

    y = model(x, mask=None)      # x: [B, T, C_in] float, mask: [B, T] bool or None -> y: [B, T, C_out]

The diffusion denoiser (``gaitcli.models.diffusion``) keeps this interface and takes one more input,
the diffusion step of each window: ``model(x_t, mask=None, t=t)`` with ``t`` [B] integers.

``mask[b, t] = True`` hides time step ``t`` of sample ``b`` from the model (masked pretraining, or
missing data at prediction time): the model never sees those input values, it sees a learnable
mask embedding instead (where exactly that embedding lives is architecture specific and documented
on each model class). ``mask=None`` means nothing is hidden.

Every model also has

- ``config``: a dataclass (``TransformerConfig``, ``LSTMConfig``, ``MambaConfig``, ``DiffusionConfig``) holding the
  architecture name, ``in_channels``, ``out_channels`` and every hyperparameter, so that
  ``model_from_config(model.config.to_dict())`` rebuilds the same architecture;
- ``blocks()``: the encoder blocks in input-to-output order (freeze the first K for fine-tuning);
- ``head``: the output module (per time step, or per patch for the transformer);
- ``reset_head(out_channels)``: a new randomly initialised head (and ``config.out_channels``);
- ``encode(x, mask)``: the features the head reads, ``[B, T', D]`` (``T' = T / patch_len``).
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

__all__ = ["GaitModel", "ModelConfig", "replace_masked"]


@dataclasses.dataclass
class ModelConfig:
    """Base class of the per-architecture config dataclasses.

    Subclasses declare every field (all with defaults), starting with ``name`` (the architecture),
    ``in_channels`` and ``out_channels``. Values are plain JSON types so ``to_dict`` can go into a
    checkpoint header as is.
    """

    architecture: ClassVar[str] = ""

    def __post_init__(self) -> None:
        if getattr(self, "name", None) != self.architecture:
            raise ValueError(f"{type(self).__name__}.name must be {self.architecture!r}, "
                             f"got {getattr(self, 'name', None)!r}")
        for field in ("in_channels", "out_channels"):
            _check_int(field, getattr(self, field), minimum=1)
        self.validate()

    def validate(self) -> None:
        """Raise ValueError naming the hyperparameter when a value is out of range."""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (``config_from_dict`` / ``model_from_config`` read it back)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ModelConfig":
        """Strict inverse of ``to_dict``: an unknown key is a ValueError (a config written by a newer
        gait may describe an architecture this version would silently build differently)."""
        if not isinstance(d, dict):
            raise ValueError(f"model config must be a JSON object, got {type(d).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown {cls.architecture} hyperparameter(s) {', '.join(unknown)}")
        return cls(**d)

    def replace(self, **changes: Any) -> "ModelConfig":
        return dataclasses.replace(self, **changes)


def _check_int(name: str, value: Any, *, minimum: int = 0) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


def _check_float(name: str, value: Any, *, low: float, high: float | None = None,
                 low_inclusive: bool = True) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if ok:
        ok = value >= low if low_inclusive else value > low
        ok = ok and (high is None or value <= high)
    if not ok:
        bound = f"{'[' if low_inclusive else '('}{low}, {high if high is not None else 'inf'}]"
        raise ValueError(f"{name} must be a number in {bound}, got {value!r}")


def _check_choice(name: str, value: Any, choices: tuple[Any, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")


def _check_bool(name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false, got {value!r}")


def replace_masked(x: Tensor, mask: Tensor | None, token: Tensor) -> Tensor:
    """``x`` [B, N, D] with the rows where ``mask`` [B, N] is True replaced by ``token`` [D]."""
    if mask is None:
        return x
    return torch.where(mask.unsqueeze(-1), token.to(x.dtype), x)


class GaitModel(nn.Module):
    """Base class: the shared interface (see the module docstring)."""

    config_class: ClassVar[type[ModelConfig]] = ModelConfig
    config: ModelConfig
    head: nn.Module

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:  # pragma: no cover
        raise NotImplementedError

    def encode(self, x: Tensor, mask: Tensor | None = None) -> Tensor:  # pragma: no cover
        raise NotImplementedError

    def blocks(self) -> list[nn.Module]:
        """The encoder blocks in order (every architecture keeps them in ``self.layers``)."""
        return list(self.layers)

    def _new_head(self, out_channels: int) -> nn.Module:  # pragma: no cover
        raise NotImplementedError

    def reset_head(self, out_channels: int) -> None:
        """A new, randomly initialised output head for ``out_channels`` (fine-tuning)."""
        if isinstance(out_channels, bool) or not isinstance(out_channels, int) or out_channels < 1:
            raise ValueError(f"out_channels must be a positive integer, got {out_channels!r}")
        old = self.head.weight
        self.config = self.config.replace(out_channels=out_channels)
        self.head = self._new_head(out_channels).to(device=old.device, dtype=old.dtype)

    # ---- shared helpers -------------------------------------------------------------------

    @property
    def in_channels(self) -> int:
        return self.config.in_channels

    @property
    def out_channels(self) -> int:
        return self.config.out_channels

    def num_parameters(self, trainable_only: bool = False) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)

    def freeze_blocks(self, k: int, *, embedding: bool = True) -> None:
        """Freeze the first ``k`` blocks (Li 2025 freezes 6 of 8), and with ``embedding`` the input
        embedding and mask token in front of them; everything else is made trainable."""
        blocks = self.blocks()
        if not 0 <= k <= len(blocks):
            raise ValueError(f"k must be in [0, {len(blocks)}], got {k}")
        for p in self.parameters():
            p.requires_grad_(True)
        frozen = list(blocks[:k])
        if embedding and k > 0:
            frozen.extend(self.embedding_modules())
        for module in frozen:
            for p in (module.parameters() if isinstance(module, nn.Module) else [module]):
                p.requires_grad_(False)

    def embedding_modules(self) -> list[nn.Module | nn.Parameter]:
        """What sits in front of the first block (input embedding, mask token)."""
        return []

    def _check_input(self, x: Tensor, mask: Tensor | None) -> Tensor | None:
        if not isinstance(x, Tensor) or x.dim() != 3:
            shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"x must be a [batch, time, {self.config.in_channels}] tensor, got {shape}")
        if x.shape[-1] != self.config.in_channels:
            raise ValueError(f"x has {x.shape[-1]} channels, the model expects in_channels="
                             f"{self.config.in_channels} (shape {tuple(x.shape)})")
        if not x.is_floating_point():
            raise ValueError(f"x must be a floating point tensor, got {x.dtype}")
        if mask is None:
            return None
        if not isinstance(mask, Tensor) or mask.shape != x.shape[:2]:
            shape = tuple(mask.shape) if isinstance(mask, Tensor) else type(mask).__name__
            raise ValueError(f"mask must be a [batch, time] = {tuple(x.shape[:2])} bool tensor, got {shape}")
        if mask.dtype != torch.bool:
            raise ValueError(f"mask must be a bool tensor (True = hidden), got {mask.dtype}")
        return mask.to(x.device)

    def extra_repr(self) -> str:
        return f"config={self.config}"
