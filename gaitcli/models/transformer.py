"""Patch Transformer encoder (Li et al. 2025; Tan et al. 2024).

    x [B, T, C_in] -> patches [B, T/P, P*C_in] -> Linear -> [B, N, D]
      -> masked patches replaced by a learnable mask token (embedding space)
      -> + sinusoidal positions (or rotary positions inside attention)
      -> dropout -> n_layers encoder blocks -> (final LayerNorm if pre-norm)
      -> Linear head per patch -> [B, N, P*C_out] -> [B, T, C_out]

The encoder block is written out (qkv projection, ``scaled_dot_product_attention``, output
projection, ReLU feed-forward, dropout, LayerNorm) with exactly the semantics *and state-dict key
names* of ``torch.nn.TransformerEncoderLayer(batch_first=True)``: ``self_attn.in_proj_weight``,
``self_attn.in_proj_bias``, ``self_attn.out_proj.*``, ``linear1.*``, ``linear2.*``, ``norm1.*``,
``norm2.*``. Both papers use that PyTorch layer's default, post-norm
(``x = norm1(x + attn(x)); x = norm2(x + ff(x))``), and so do the presets here;
``norm_first=True`` gives the pre-norm variant (``x = x + attn(norm1(x))``, plus a final LayerNorm
before the head).

Masking: a patch is masked when any of its time steps is (``mask.view(B, N, P).any(-1)``); its
embedding is replaced by ``mask_token`` *before* positions are added, so the model knows where the
hidden patch is. Positions: ``"sinusoidal"`` (Vaswani et al., added to the patch embeddings, not
scaled by sqrt(D)) or ``"rotary"`` (RoPE, rotate-half form, applied to q and k of every head in
every block; needs an even head dimension).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .base import GaitModel, ModelConfig, _check_bool, _check_choice, _check_float, _check_int, replace_masked
from .registry import build, register_architecture, register_model

__all__ = [
    "TransformerConfig", "TransformerModel", "EncoderBlock", "SelfAttention",
    "sinusoidal_positions", "rotary_cos_sin", "apply_rotary",
    "transformer", "transformer_li2025", "transformer_tan2024", "grf_refiner",
]


@dataclasses.dataclass
class TransformerConfig(ModelConfig):
    architecture: ClassVar[str] = "transformer"

    name: str = "transformer"
    in_channels: int = 6
    out_channels: int = 6
    d_model: int = 64            # width of a patch embedding
    n_heads: int = 4
    n_layers: int = 4            # encoder blocks
    d_ff: int = 256              # feed-forward units
    dropout: float = 0.1         # attention, residual, feed-forward and embedding dropout
    layer_norm_eps: float = 1e-5
    activation: str = "relu"     # "relu" | "gelu"
    norm_first: bool = False     # False: post-norm (nn.TransformerEncoderLayer default, both papers)
    patch_len: int = 1           # time steps per token; T must be a multiple of it
    positions: str = "sinusoidal"  # "sinusoidal" | "rotary"
    rope_base: float = 10000.0
    window: int = 64             # the window length the model is meant for (preprocessing); any T works
    preset: str | None = None    # the registered constructor that built it, for provenance

    def validate(self) -> None:
        for name in ("d_model", "n_heads", "d_ff", "patch_len", "window"):
            _check_int(name, getattr(self, name), minimum=1)
        _check_int("n_layers", self.n_layers, minimum=0)
        _check_float("dropout", self.dropout, low=0.0, high=1.0)
        _check_float("layer_norm_eps", self.layer_norm_eps, low=0.0, low_inclusive=False)
        _check_float("rope_base", self.rope_base, low=1.0, low_inclusive=False)
        _check_choice("activation", self.activation, ("relu", "gelu"))
        _check_choice("positions", self.positions, ("sinusoidal", "rotary"))
        _check_bool("norm_first", self.norm_first)
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model ({self.d_model}) must be a multiple of n_heads ({self.n_heads})")
        if self.positions == "rotary" and (self.d_model // self.n_heads) % 2:
            raise ValueError(f"rotary positions need an even head dimension, d_model/n_heads = "
                             f"{self.d_model // self.n_heads}")


# ---- positions ---------------------------------------------------------------------------------

def sinusoidal_positions(n: int, d: int, *, device: Any = None, dtype: torch.dtype = torch.float32) -> Tensor:
    """[n, d] table: even dims sin(pos / 10000^(2i/d)), odd dims cos(...) (Vaswani et al. 2017)."""
    pos = torch.arange(n, device=device, dtype=torch.float64).unsqueeze(1)
    inv = torch.exp(torch.arange(0, d, 2, device=device, dtype=torch.float64) * (-math.log(10000.0) / d))
    pe = torch.zeros(n, d, device=device, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(pos * inv)
    pe[:, 1::2] = torch.cos(pos * inv)[:, : d // 2]
    return pe.to(dtype)


def rotary_cos_sin(n: int, head_dim: int, *, base: float = 10000.0, device: Any = None,
                   dtype: torch.dtype = torch.float32) -> tuple[Tensor, Tensor]:
    """cos, sin tables [n, head_dim] for RoPE in the rotate-half layout."""
    inv = 1.0 / (base ** (torch.arange(0, head_dim, 2, device=device, dtype=torch.float64) / head_dim))
    ang = torch.arange(n, device=device, dtype=torch.float64).unsqueeze(1) * inv  # [n, hd/2]
    ang = torch.cat([ang, ang], dim=-1)
    return ang.cos().to(dtype), ang.sin().to(dtype)


def _rotate_half(x: Tensor) -> Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat([-x2, x1], dim=-1)


def apply_rotary(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate ``x`` [..., n, head_dim] by position (RoPE)."""
    return x * cos + _rotate_half(x) * sin


# ---- the block -----------------------------------------------------------------------------------

class SelfAttention(nn.Module):
    """Multi-head self-attention with nn.MultiheadAttention's parameter names and initialisation,
    computed with ``F.scaled_dot_product_attention`` (flash / memory-efficient kernels when
    available; attention dropout only in training)."""

    def __init__(self, d_model: int, n_heads: int, dropout: float) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.head_dim = d_model // n_heads
        self.dropout = dropout
        self.in_proj_weight = nn.Parameter(torch.empty(3 * d_model, d_model))
        self.in_proj_bias = nn.Parameter(torch.empty(3 * d_model))
        self.out_proj = nn.Linear(d_model, d_model)
        nn.init.xavier_uniform_(self.in_proj_weight)
        nn.init.zeros_(self.in_proj_bias)
        nn.init.zeros_(self.out_proj.bias)

    def forward(self, x: Tensor, rope: tuple[Tensor, Tensor] | None = None) -> Tensor:
        b, n, d = x.shape
        qkv = F.linear(x, self.in_proj_weight, self.in_proj_bias)
        q, k, v = qkv.view(b, n, 3, self.n_heads, self.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        if rope is not None:
            cos, sin = rope
            q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0)
        return self.out_proj(out.transpose(1, 2).reshape(b, n, d))


class EncoderBlock(nn.Module):
    """``nn.TransformerEncoderLayer(batch_first=True)``, written out (same math, same key names)."""

    def __init__(self, d_model: int, n_heads: int, d_ff: int, dropout: float, layer_norm_eps: float,
                 activation: str, norm_first: bool) -> None:
        super().__init__()
        self.self_attn = SelfAttention(d_model, n_heads, dropout)
        self.linear1 = nn.Linear(d_model, d_ff)
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(d_ff, d_model)
        self.norm1 = nn.LayerNorm(d_model, eps=layer_norm_eps)
        self.norm2 = nn.LayerNorm(d_model, eps=layer_norm_eps)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.activation = nn.ReLU() if activation == "relu" else nn.GELU()
        self.norm_first = norm_first

    def _ff(self, x: Tensor) -> Tensor:
        return self.dropout2(self.linear2(self.dropout(self.activation(self.linear1(x)))))

    def forward(self, x: Tensor, rope: tuple[Tensor, Tensor] | None = None) -> Tensor:
        if self.norm_first:
            x = x + self.dropout1(self.self_attn(self.norm1(x), rope))
            return x + self._ff(self.norm2(x))
        x = self.norm1(x + self.dropout1(self.self_attn(x, rope)))
        return self.norm2(x + self._ff(x))


# ---- the model -----------------------------------------------------------------------------------

@register_architecture("transformer")
class TransformerModel(GaitModel):
    """Patch Transformer encoder with a per-patch linear head (see the module docstring)."""

    config_class = TransformerConfig
    config: TransformerConfig

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.patch_embed = nn.Linear(c.patch_len * c.in_channels, c.d_model)
        self.mask_token = nn.Parameter(torch.empty(c.d_model))
        nn.init.normal_(self.mask_token, std=0.02)
        self.embed_dropout = nn.Dropout(c.dropout)
        self.layers = nn.ModuleList(
            EncoderBlock(c.d_model, c.n_heads, c.d_ff, c.dropout, c.layer_norm_eps, c.activation, c.norm_first)
            for _ in range(c.n_layers))
        self.norm = nn.LayerNorm(c.d_model, eps=c.layer_norm_eps) if c.norm_first else nn.Identity()
        self.head = self._new_head(c.out_channels)

    def _new_head(self, out_channels: int) -> nn.Linear:
        return nn.Linear(self.config.d_model, self.config.patch_len * out_channels)

    def embedding_modules(self) -> list[nn.Module | nn.Parameter]:
        return [self.patch_embed, self.mask_token]

    def encode(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        mask = self._check_input(x, mask)
        c = self.config
        b, t, ch = x.shape
        if t % c.patch_len:
            raise ValueError(f"the time length T={t} of x is not a multiple of patch_len={c.patch_len}; "
                             f"pad or crop the window (this model was configured for windows of {c.window})")
        n = t // c.patch_len
        h = self.patch_embed(x.reshape(b, n, c.patch_len * ch))
        if mask is not None:
            h = replace_masked(h, mask.view(b, n, c.patch_len).any(-1), self.mask_token)
        rope = None
        if c.positions == "sinusoidal":
            h = h + sinusoidal_positions(n, c.d_model, device=h.device, dtype=h.dtype)
        else:
            rope = rotary_cos_sin(n, c.d_model // c.n_heads, base=c.rope_base, device=h.device, dtype=h.dtype)
        h = self.embed_dropout(h)
        for layer in self.layers:
            h = layer(h, rope)
        return self.norm(h)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        h = self.encode(x, mask)
        b, n, _ = h.shape
        return self.head(h).reshape(b, n * self.config.patch_len, self.config.out_channels)


# ---- registered presets --------------------------------------------------------------------------

# Li et al. 2025 (Front. Bioeng. Biotechnol.), section 2.3: 18 joint-angle channels, windows of 64,
# patch length 1, embedding width 24, sinusoidal positions, 8 blocks of 12 heads, 2048 feed-forward
# units, dropout 0.1, LayerNorm eps 1e-5, ReLU; output mapped back to patch_len x 18.
LI2025: dict[str, Any] = dict(
    in_channels=18, out_channels=18, d_model=24, n_heads=12, n_layers=8, d_ff=2048, dropout=0.1,
    layer_norm_eps=1e-5, activation="relu", norm_first=False, patch_len=1, positions="sinusoidal",
    window=64)

# Tan et al. 2024 (IEEE TBME), section II-C: 48 IMU axes, windows of 128, best patch length 1,
# width 192, sinusoidal positions, 6 blocks of 8 heads, 512 feed-forward units, dropout 0.1,
# LayerNorm eps 1e-5, ReLU ("the total number of trainable parameters is 2 million").
TAN2024: dict[str, Any] = dict(
    in_channels=48, out_channels=48, d_model=192, n_heads=8, n_layers=6, d_ff=512, dropout=0.1,
    layer_norm_eps=1e-5, activation="relu", norm_first=False, patch_len=1, positions="sinusoidal",
    window=128)

# GaitDynamics' force-refinement model (Tan et al. 2025, Methods): complete gait-state
# kinematics -> both feet's GRF and CoP; 6 blocks of 8 heads, 512 feed-forward units, rotary
# positions, dropout 0.1, LayerNorm eps 1e-5, ReLU. The paper gives no width: 128 here.
# Channels follow gaitcli.data.gaitstate (47 kinematic in, 10 force out).
GRF_REFINER: dict[str, Any] = dict(
    in_channels=47, out_channels=10, d_model=128, n_heads=8, n_layers=6, d_ff=512, dropout=0.1,
    layer_norm_eps=1e-5, activation="relu", norm_first=True, patch_len=1, positions="rotary",
    window=150)

# A CPU-sized default: 6 angles -> 6 moments, width 64, 4 blocks.
DEFAULT: dict[str, Any] = dict(
    in_channels=6, out_channels=6, d_model=64, n_heads=4, n_layers=4, d_ff=256, dropout=0.1,
    layer_norm_eps=1e-5, activation="relu", norm_first=False, patch_len=1, positions="sinusoidal",
    window=64)


@register_model
def transformer(**overrides: Any) -> TransformerModel:
    """CPU-sized patch Transformer (d_model 64, 4 heads, 4 post-norm blocks, ff 256, windows of 64)."""
    return build(TransformerModel, DEFAULT, overrides, preset="transformer")  # type: ignore[return-value]


@register_model
def transformer_li2025(**overrides: Any) -> TransformerModel:
    """Li et al. 2025: 8 blocks, 12 heads, width 24, ff 2048, 18 channels, windows of 64, patch 1."""
    return build(TransformerModel, LI2025, overrides, preset="transformer_li2025")  # type: ignore[return-value]


@register_model
def transformer_tan2024(**overrides: Any) -> TransformerModel:
    """Tan et al. 2024: 6 blocks, 8 heads, width 192, ff 512, 48 channels, windows of 128, patch 1."""
    return build(TransformerModel, TAN2024, overrides, preset="transformer_tan2024")  # type: ignore[return-value]


@register_model
def grf_refiner(**overrides: Any) -> TransformerModel:
    """GaitDynamics force refinement: 6 blocks, 8 heads, width 128, ff 512, rotary, 47 kinematic -> 10 force channels, windows of 150."""
    return build(TransformerModel, GRF_REFINER, overrides, preset="grf_refiner")  # type: ignore[return-value]
