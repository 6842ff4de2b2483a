"""Bidirectional LSTM (the Gait2Hip-60 benchmark's recurrent baseline).

    x [B, T, C_in] -> masked steps replaced by a learnable vector (input space)
      -> optional Linear input projection -> num_layers (bi)LSTM layers, dropout between layers
      -> Linear head per time step (2*hidden -> C_out) -> [B, T, C_out]

The layers are separate one-layer ``nn.LSTM`` modules (``layers.{i}``) rather than one
``nn.LSTM(num_layers=...)`` so that ``blocks()`` can hand out, and fine-tuning can freeze, single
layers; the computation is the same as the stacked module's (dropout on every layer's output but
the last).

Masking: ``mask_token`` is a learnable vector of ``in_channels`` values that replaces the inputs
at masked time steps (inputs are z-scored, so it starts near the channel means: N(0, 0.02)).
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from .base import GaitModel, ModelConfig, _check_bool, _check_float, _check_int, replace_masked
from .registry import build, register_architecture, register_model

__all__ = ["LSTMConfig", "LSTMModel", "lstm"]


@dataclasses.dataclass
class LSTMConfig(ModelConfig):
    architecture: ClassVar[str] = "lstm"

    name: str = "lstm"
    in_channels: int = 6
    out_channels: int = 6
    hidden_size: int = 128       # per direction
    num_layers: int = 2
    bidirectional: bool = True   # moments are estimated offline: both directions of time are available
    dropout: float = 0.1         # between LSTM layers
    input_proj: int = 0          # width of a Linear input projection; 0 = feed the channels directly
    window: int = 180            # Gait2Hip-60 resamples every gait cycle to 180 frames
    preset: str | None = None

    def validate(self) -> None:
        _check_int("hidden_size", self.hidden_size, minimum=1)
        _check_int("num_layers", self.num_layers, minimum=1)
        _check_int("input_proj", self.input_proj, minimum=0)
        _check_int("window", self.window, minimum=1)
        _check_bool("bidirectional", self.bidirectional)
        _check_float("dropout", self.dropout, low=0.0, high=1.0)


@register_architecture("lstm")
class LSTMModel(GaitModel):
    """Stacked (bi)LSTM with a per-step linear head (see the module docstring)."""

    config_class = LSTMConfig
    config: LSTMConfig

    def __init__(self, config: LSTMConfig) -> None:
        super().__init__()
        self.config = c = config
        self.mask_token = nn.Parameter(torch.empty(c.in_channels))
        nn.init.normal_(self.mask_token, std=0.02)
        self.input_proj = nn.Linear(c.in_channels, c.input_proj) if c.input_proj else nn.Identity()
        width = c.input_proj or c.in_channels
        directions = 2 if c.bidirectional else 1
        self.layers = nn.ModuleList()
        for i in range(c.num_layers):
            self.layers.append(nn.LSTM(width if i == 0 else directions * c.hidden_size, c.hidden_size,
                                       batch_first=True, bidirectional=c.bidirectional))
        self.dropout = nn.Dropout(c.dropout)
        self.head = self._new_head(c.out_channels)

    def _new_head(self, out_channels: int) -> nn.Linear:
        return nn.Linear((2 if self.config.bidirectional else 1) * self.config.hidden_size, out_channels)

    def embedding_modules(self) -> list[nn.Module | nn.Parameter]:
        return [self.input_proj, self.mask_token]

    def encode(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        mask = self._check_input(x, mask)
        h = self.input_proj(replace_masked(x, mask, self.mask_token))
        for i, layer in enumerate(self.layers):
            if i:
                h = self.dropout(h)
            h, _ = layer(h)
        return h

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        return self.head(self.encode(x, mask))


@register_model
def lstm(**overrides: Any) -> LSTMModel:
    """Gait2Hip-60's LSTM: bidirectional, hidden 128, 2 layers, dropout 0.1 between layers."""
    defaults = dict(in_channels=6, out_channels=6, hidden_size=128, num_layers=2, bidirectional=True,
                    dropout=0.1, input_proj=0, window=180)
    return build(LSTMModel, defaults, overrides, preset="lstm")  # type: ignore[return-value]
