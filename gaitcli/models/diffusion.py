"""Diffusion core (GaitDynamics: Tan et al. 2025, ``../shared/papers/003_*``): a denoising
transformer over whole data windows, its noise schedule, training loss, DDIM sampling with
inpainting and gradient guidance, an EMA of the weights, and the median-filling baseline.

Only the core lives here; data windows, the CLI and training on real data come later.

The forward (noising) process, with ``t = 0 .. T-1`` (``T = diffusion_steps``, 1000)::

    x_t = sqrt(alpha_bar[t]) * x_0 + sqrt(1 - alpha_bar[t]) * noise        (q_sample)

``alpha_bar`` follows the cosine schedule of Nichol & Dhariwal (2021) (``cosine_schedule``). Index
``t`` here is the paper's step ``k = t + 1``: the paper's ``k = 0`` (clean data) is ``t = -1``
here, where ``alpha_bar = 1``; ``t = T - 1`` is (almost) pure noise.

The denoiser, ``DiffusionTransformer`` (architecture ``"diffusion_transformer"``)::

    x_t [B, T, C_in] -> Linear -> [B, T, D]
      -> masked time steps replaced by a learnable mask token (embedding space, as the Transformer)
      -> n_layers pre-norm blocks, each:  h = h + FiLM_1(Dropout(SelfAttn(LN_1(h), rotary)), c)
                                          h = h + FiLM_2(Dropout(FeedForward(LN_2(h))), c)
      -> Linear head per time step -> [B, T, C_out]          (x_0 or epsilon, ``config.prediction``)

    c = Linear(Mish(Linear(sinusoidal(t), 4D)), D)           (step embedding, [B, D])
    FiLM_i(y, c) = (1 + scale_i) * y + shift_i,   (scale_i, shift_i) = Linear_i(Mish(c)) -> 2 x [B, 1, D]

This is GaitDynamics' layer (its ``FiLMTransformerDecoderLayer``, EDGE's decoder without the
cross-attention): the diffusion step conditions every sublayer by feature-wise linear modulation,
not by an embedding added to the tokens. Rotary positions (RoPE, rotate-half, per head on q and k,
as ``transformer.py``) along time, so any window length works. Differences from the published
code (stanfordnmbl/GaitDynamics, ``model/dance_decoder.py``), all deliberate: the published layer
rotates the 256-wide features *before* the q/k projections (``rotary_embedding_torch`` on the whole
width), here RoPE rotates q and k per head after the projection (the usual RoPE); the published
model also builds an unused cross-attention module per layer (1,052,672 parameters in the paper
preset, never called) which is left out; there is no final LayerNorm in either.

Parameterisation. The paper writes its sampler with ``epsilon_theta`` (x̂_0 = (x_k -
sqrt(1 - alpha_k) eps) / sqrt(alpha_k)), but its code constructs the diffusion with
``predict_epsilon=False``: the network predicts the clean window ``x_0`` and the noise is derived
from it. ``prediction="x0"`` is therefore the default here; ``"epsilon"`` is available.
Activation: the paper's Methods say ReLU (the default here); its code uses GELU
(``activation="gelu"``). Schedule: the paper says cosine; the code at the commit read constructs
the diffusion with ``schedule="cosine"`` commented out (its default, "linear", then applies).
The papers are the specification here: cosine.

Sampling (``ddim_sample``): DDIM (Song et al. 2021) over ``steps`` (50) of the ``T`` (1000)
steps, spaced as in the paper: ``t = 999, 979, ..., 19`` and then the clean window (each
iteration advances ``T / steps = 20`` steps). Inpainting (RePaint, Lugmayr et al. 2022, the paper's
Fig. 6): at every iteration the known entries of ``x_t`` are replaced by the known values noised to
step ``t`` (``q_sample``), and the output holds the known values exactly. Guidance (the paper's
"what-if" tasks, Fig. 7): before each step, the gradient of a loss of the predicted clean window
``g(x̂_0)`` with respect to the noisy window is subtracted from it, ``guidance_steps`` (5) times with
step ``guidance_scale`` (0.02); ``tolerance_loss`` builds the paper's
``g = SUM(ReLU(|DoF - DoF^| - tolerance))``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .base import GaitModel, ModelConfig, _check_choice, _check_float, _check_int, replace_masked
from .registry import build, register_architecture, register_model
from .transformer import SelfAttention, rotary_cos_sin

__all__ = [
    "DiffusionConfig", "DiffusionTransformer", "DenoiserBlock", "step_embedding",
    "cosine_schedule", "q_sample", "predict_x0", "predict_epsilon", "ddim_timesteps", "ddim_step",
    "ddim_sample", "diffusion_loss", "tolerance_loss", "EMA", "median_template", "median_fill",
    "diffusion", "diffusion_gaitdynamics",
]

PREDICTIONS = ("x0", "epsilon")


# ---- the noise schedule ----------------------------------------------------------------------------

def cosine_schedule(steps: int = 1000, s: float = 0.008) -> dict[str, Tensor]:
    """The cosine schedule of Nichol & Dhariwal (2021), "Improved DDPM", for ``t = 0 .. steps-1``.

    ``f(u) = cos(((u / steps) + s) / (1 + s) * pi / 2) ** 2``; ``betas[t] = 1 - f(t + 1) / f(t)``
    clipped to at most 0.999; ``alphas = 1 - betas``; ``alpha_bar = cumprod(alphas)``, which is
    ``f(t + 1) / f(0)`` wherever no beta was clipped (for 1000 steps: all but the last). Computed in
    float64, returned as float32 tensors of shape ``[steps]`` under the keys ``betas``, ``alphas``,
    ``alpha_bar``, ``sqrt_alpha_bar`` and ``sqrt_one_minus_alpha_bar``.
    """
    _check_int("steps", steps, minimum=1)
    _check_float("s", s, low=0.0, low_inclusive=False)
    u = torch.arange(steps + 1, dtype=torch.float64)
    f = torch.cos(((u / steps) + s) / (1 + s) * math.pi / 2) ** 2
    betas = (1 - f[1:] / f[:-1]).clamp(max=0.999)
    alphas = 1 - betas
    alpha_bar = torch.cumprod(alphas, dim=0)
    out = {"betas": betas, "alphas": alphas, "alpha_bar": alpha_bar, "sqrt_alpha_bar": alpha_bar.sqrt(),
           "sqrt_one_minus_alpha_bar": (1 - alpha_bar).sqrt()}
    return {k: v.to(torch.float32) for k, v in out.items()}


def _at(values: Tensor, t: int | Tensor, like: Tensor, *, prev: bool = False) -> Tensor:
    """``values[t]`` shaped to broadcast over ``like`` [B, ...]; ``t`` an int or a [B] tensor.
    With ``prev``, ``t = -1`` means the clean data: the value is 1 (for alpha_bar and its root)."""
    values = values.to(device=like.device, dtype=like.dtype)
    if isinstance(t, Tensor):
        t = t.to(like.device).long()
        if prev:
            v = torch.where(t >= 0, values[t.clamp(min=0)], torch.ones((), dtype=like.dtype, device=like.device))
        else:
            v = values[t]
        return v.view(-1, *([1] * (like.dim() - 1)))
    if t < 0:
        if not prev:
            raise ValueError(f"diffusion step t must be >= 0, got {t} (-1, the clean data, only as t_prev)")
        return torch.ones((), dtype=like.dtype, device=like.device)
    return values[t]


def q_sample(x0: Tensor, t: int | Tensor, noise: Tensor, schedule: dict[str, Tensor]) -> Tensor:
    """``x_t = sqrt(alpha_bar[t]) x0 + sqrt(1 - alpha_bar[t]) noise``; ``t`` an int or a [B] tensor."""
    return _at(schedule["sqrt_alpha_bar"], t, x0) * x0 + _at(schedule["sqrt_one_minus_alpha_bar"], t, x0) * noise


def predict_x0(model_out: Tensor, x_t: Tensor, t: int | Tensor, schedule: dict[str, Tensor],
               prediction: str) -> Tensor:
    """The clean window a model output implies: itself (``"x0"``), or
    ``(x_t - sqrt(1 - alpha_bar) eps) / sqrt(alpha_bar)`` (``"epsilon"``)."""
    _check_choice("prediction", prediction, PREDICTIONS)
    if prediction == "x0":
        return model_out
    sqrt_ab = _at(schedule["sqrt_alpha_bar"], t, x_t)
    sqrt_one_minus_ab = _at(schedule["sqrt_one_minus_alpha_bar"], t, x_t)
    return (x_t - sqrt_one_minus_ab * model_out) / sqrt_ab


def predict_epsilon(model_out: Tensor, x_t: Tensor, t: int | Tensor, schedule: dict[str, Tensor],
                    prediction: str) -> Tensor:
    """The noise a model output implies: itself (``"epsilon"``), or
    ``(x_t - sqrt(alpha_bar) x0) / sqrt(1 - alpha_bar)`` (``"x0"``)."""
    _check_choice("prediction", prediction, PREDICTIONS)
    if prediction == "epsilon":
        return model_out
    sqrt_ab = _at(schedule["sqrt_alpha_bar"], t, x_t)
    sqrt_one_minus_ab = _at(schedule["sqrt_one_minus_alpha_bar"], t, x_t)
    return (x_t - sqrt_ab * model_out) / sqrt_one_minus_ab


# ---- the denoiser --------------------------------------------------------------------------------

@dataclasses.dataclass
class DiffusionConfig(ModelConfig):
    architecture: ClassVar[str] = "diffusion_transformer"

    name: str = "diffusion_transformer"
    in_channels: int = 40        # the window's channels (x_t); sampling needs out_channels == in_channels
    out_channels: int = 40
    d_model: int = 64            # token width
    n_heads: int = 4
    n_layers: int = 2            # FiLM blocks
    d_ff: int = 256              # feed-forward units
    dropout: float = 0.1         # attention, residual and feed-forward dropout (the paper: 10 %)
    layer_norm_eps: float = 1e-5
    activation: str = "relu"     # "relu" (the paper's Methods) | "gelu" (the published code)
    rope_base: float = 10000.0
    prediction: str = "x0"       # what the head predicts: "x0" (GaitDynamics' code) | "epsilon"
    schedule: str = "cosine"     # the noise schedule the model is trained and sampled with
    diffusion_steps: int = 1000  # T: t runs over 0 .. T-1
    window: int = 150            # the window length the model is meant for (1.5 s at 100 Hz); any T works
    preset: str | None = None    # the registered constructor that built it, for provenance

    def validate(self) -> None:
        for name in ("d_model", "n_heads", "d_ff", "window", "diffusion_steps"):
            _check_int(name, getattr(self, name), minimum=1)
        _check_int("n_layers", self.n_layers, minimum=0)
        _check_float("dropout", self.dropout, low=0.0, high=1.0)
        _check_float("layer_norm_eps", self.layer_norm_eps, low=0.0, low_inclusive=False)
        _check_float("rope_base", self.rope_base, low=1.0, low_inclusive=False)
        _check_choice("activation", self.activation, ("relu", "gelu"))
        _check_choice("prediction", self.prediction, PREDICTIONS)
        _check_choice("schedule", self.schedule, ("cosine",))
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model ({self.d_model}) must be a multiple of n_heads ({self.n_heads})")
        if (self.d_model // self.n_heads) % 2:
            raise ValueError(f"rotary positions need an even head dimension, d_model/n_heads = "
                             f"{self.d_model // self.n_heads}")


def step_embedding(t: Tensor, dim: int) -> Tensor:
    """Sinusoidal embedding of diffusion steps ``t`` [B] -> [B, dim]: ``sin(t w_i)`` then
    ``cos(t w_i)``, ``w_i = 10000^(-i / (dim/2))`` (DDPM; a zero column pads an odd ``dim``)."""
    half = dim // 2
    freqs = torch.exp(torch.arange(half, device=t.device, dtype=torch.float32) * (-math.log(10000.0) / half))
    angles = t.float().unsqueeze(1) * freqs
    emb = torch.cat([angles.sin(), angles.cos()], dim=-1)
    return F.pad(emb, (0, dim % 2))


class FiLM(nn.Module):
    """Feature-wise linear modulation from the step embedding: ``(1 + scale) * y + shift`` with
    ``(scale, shift) = Linear(Mish(c))`` (GaitDynamics' ``DenseFiLM``)."""

    def __init__(self, d_model: int) -> None:
        super().__init__()
        self.proj = nn.Linear(d_model, 2 * d_model)

    def forward(self, y: Tensor, c: Tensor) -> Tensor:
        scale, shift = self.proj(F.mish(c)).unsqueeze(1).chunk(2, dim=-1)  # [B, 1, D] each
        return (1 + scale) * y + shift


class DenoiserBlock(nn.Module):
    """Pre-norm self-attention and feed-forward, each output modulated by FiLM of the step
    embedding before its residual (key names as ``EncoderBlock``, plus ``film1``, ``film2``)."""

    def __init__(self, d_model: int, n_heads: int, d_ff: int, dropout: float, layer_norm_eps: float,
                 activation: str) -> None:
        super().__init__()
        self.self_attn = SelfAttention(d_model, n_heads, dropout)
        self.linear1 = nn.Linear(d_model, d_ff)
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(d_ff, d_model)
        self.norm1 = nn.LayerNorm(d_model, eps=layer_norm_eps)
        self.norm2 = nn.LayerNorm(d_model, eps=layer_norm_eps)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.film1 = FiLM(d_model)
        self.film2 = FiLM(d_model)
        self.activation = nn.ReLU() if activation == "relu" else nn.GELU()

    def forward(self, h: Tensor, c: Tensor, rope: tuple[Tensor, Tensor] | None = None) -> Tensor:
        h = h + self.film1(self.dropout1(self.self_attn(self.norm1(h), rope)), c)
        ff = self.dropout2(self.linear2(self.dropout(self.activation(self.linear1(self.norm2(h))))))
        return h + self.film2(ff, c)


@register_architecture("diffusion_transformer")
class DiffusionTransformer(GaitModel):
    """The GaitDynamics denoiser (see the module docstring).

    ``model(x_t, mask=None, t=t)``: ``x_t`` [B, T, C_in] a noisy window, ``t`` [B] integer diffusion
    steps in ``0 .. diffusion_steps-1`` (required: a denoiser without its step is meaningless, and
    ``gait pretrain``/``finetune`` cannot train it), ``mask`` [B, T] hides time steps as in every
    gait model (a learnable mask token replaces their embeddings). Returns [B, T, C_out], the
    prediction named by ``config.prediction``. ``schedule()`` is the noise schedule it was built for.
    """

    config_class = DiffusionConfig
    config: DiffusionConfig

    def __init__(self, config: DiffusionConfig) -> None:
        super().__init__()
        self.config = c = config
        self.input_proj = nn.Linear(c.in_channels, c.d_model)
        self.mask_token = nn.Parameter(torch.empty(c.d_model))
        nn.init.normal_(self.mask_token, std=0.02)
        self.step_mlp = nn.Sequential(nn.Linear(c.d_model, 4 * c.d_model), nn.Mish(),
                                      nn.Linear(4 * c.d_model, c.d_model))
        self.layers = nn.ModuleList(
            DenoiserBlock(c.d_model, c.n_heads, c.d_ff, c.dropout, c.layer_norm_eps, c.activation)
            for _ in range(c.n_layers))
        self.head = self._new_head(c.out_channels)
        self._rope_cache: tuple[Any, tuple[Tensor, Tensor]] | None = None

    def _new_head(self, out_channels: int) -> nn.Linear:
        return nn.Linear(self.config.d_model, out_channels)

    def embedding_modules(self) -> list[nn.Module | nn.Parameter]:
        # The step MLP is not frozen with the embedding: it conditions every block.
        return [self.input_proj, self.mask_token]

    def schedule(self) -> dict[str, Tensor]:
        """The noise schedule of ``config.schedule`` over ``config.diffusion_steps`` steps."""
        return cosine_schedule(self.config.diffusion_steps)

    def _check_steps(self, t: Any, batch: int, device: torch.device) -> Tensor:
        steps = self.config.diffusion_steps
        if t is None:
            raise ValueError("t (the diffusion step, a [batch] integer tensor) is required: the diffusion "
                             "denoiser is called as model(x_t, mask, t=t); it is trained with diffusion_loss and "
                             "sampled with ddim_sample (gaitcli.models.diffusion), not as a regression model")
        if isinstance(t, int) and not isinstance(t, bool):
            t = torch.full((batch,), t, dtype=torch.long)
        if not isinstance(t, Tensor) or t.dtype.is_floating_point or t.dtype == torch.bool or t.is_complex():
            raise ValueError(f"t must be an int or a [batch] integer tensor of diffusion steps, got "
                             f"{t.dtype if isinstance(t, Tensor) else type(t).__name__}")
        if t.dim() == 0:
            t = t.expand(batch)
        if t.shape != (batch,):
            raise ValueError(f"t must have shape [batch] = ({batch},), got {tuple(t.shape)}")
        if t.numel() and (int(t.min()) < 0 or int(t.max()) >= steps):
            raise ValueError(f"t must be in [0, {steps - 1}] (diffusion_steps={steps}), got "
                             f"[{int(t.min())}, {int(t.max())}]")
        return t.to(device)

    def _rope(self, n: int, h: Tensor) -> tuple[Tensor, Tensor]:
        key = (n, h.device, h.dtype)
        if self._rope_cache is None or self._rope_cache[0] != key:
            c = self.config
            self._rope_cache = (key, rotary_cos_sin(n, c.d_model // c.n_heads, base=c.rope_base,
                                                    device=h.device, dtype=h.dtype))
        return self._rope_cache[1]

    def encode(self, x: Tensor, mask: Tensor | None = None, t: Tensor | int | None = None) -> Tensor:
        mask = self._check_input(x, mask)
        t = self._check_steps(t, x.shape[0], x.device)
        h = replace_masked(self.input_proj(x), mask, self.mask_token)
        c = self.step_mlp(step_embedding(t, self.config.d_model).to(h.dtype))
        rope = self._rope(x.shape[1], h)
        for layer in self.layers:
            h = layer(h, c, rope)
        return h

    def forward(self, x: Tensor, mask: Tensor | None = None, t: Tensor | int | None = None) -> Tensor:
        return self.head(self.encode(x, mask, t))


# ---- registered presets --------------------------------------------------------------------------

# Tan et al. 2025 (GaitDynamics), Methods: 75 channels (velocities, joint angles, joint angular
# velocities, forces of both feet), windows of 150 samples (1.5 s at 100 Hz), "four self-attention
# blocks, each configured with 4 attention heads, a 256-dimensional latent space, and 1024
# feedforward units", rotary positions, 10 % dropout, LayerNorm eps 1e-5, ReLU, 1000 diffusion
# steps with a cosine schedule; the code predicts x0.
GAITDYNAMICS: dict[str, Any] = dict(
    in_channels=75, out_channels=75, d_model=256, n_heads=4, n_layers=4, d_ff=1024, dropout=0.1,
    layer_norm_eps=1e-5, activation="relu", prediction="x0", schedule="cosine", diffusion_steps=1000,
    window=150)

# A CPU-sized default: width 64, 2 blocks of 4 heads, ff 256, 40 channels (a placeholder until
# the data windows fix the channel set). One 50-step DDIM sample of a [1, 150, 40] window takes
# about 50 ms on one CPU thread (width 128 took about 90 ms).
DEFAULT: dict[str, Any] = dict(
    in_channels=40, out_channels=40, d_model=64, n_heads=4, n_layers=2, d_ff=256, dropout=0.1,
    layer_norm_eps=1e-5, activation="relu", prediction="x0", schedule="cosine", diffusion_steps=1000,
    window=150)


@register_model
def diffusion(**overrides: Any) -> DiffusionTransformer:
    """CPU-sized diffusion denoiser (width 64, 2 FiLM blocks of 4 heads, ff 256, 40 channels, windows of 150)."""
    return build(DiffusionTransformer, DEFAULT, overrides, preset="diffusion")  # type: ignore[return-value]


@register_model
def diffusion_gaitdynamics(**overrides: Any) -> DiffusionTransformer:
    """GaitDynamics (Tan et al. 2025): 4 FiLM blocks, 4 heads, width 256, ff 1024, 75 channels, windows of 150."""
    return build(DiffusionTransformer, GAITDYNAMICS, overrides,  # type: ignore[return-value]
                 preset="diffusion_gaitdynamics")


# ---- training ------------------------------------------------------------------------------------

def _randn(shape: tuple[int, ...], generator: torch.Generator | None, device: torch.device,
           dtype: torch.dtype) -> Tensor:
    """Standard normal noise drawn on the generator's device (so a CPU generator reproduces the
    same numbers whatever device the model is on), then moved."""
    where = generator.device if generator is not None else device
    return torch.randn(shape, generator=generator, device=where, dtype=dtype).to(device)


def diffusion_loss(model: nn.Module, x0: Tensor, schedule: dict[str, Tensor], generator: torch.Generator | None = None,
                   valid: Tensor | None = None, *, prediction: str | None = None) -> Tensor:
    """The denoising objective (DDPM's "simple" loss; GaitDynamics: mean squared error).

    ``t`` is drawn uniformly from ``0 .. len(schedule) - 1`` per window and ``noise ~ N(0, I)``
    (both from ``generator``); the model sees ``q_sample(x0, t, noise)`` and the MSE is taken
    against ``x0`` or ``noise`` (``prediction``, default ``model.config.prediction``) over the
    entries that are finite in ``x0`` and True in ``valid`` (same shape as ``x0``, or [B, T]).
    Non-finite entries of ``x0`` are replaced by 0 (the z-scored mean) before noising.
    """
    prediction = prediction or model.config.prediction
    _check_choice("prediction", prediction, PREDICTIONS)
    ok = torch.isfinite(x0)
    if valid is not None:
        if valid.dtype != torch.bool:
            raise ValueError(f"valid must be a bool tensor, got {valid.dtype}")
        if valid.shape == x0.shape[:2]:
            valid = valid.unsqueeze(-1)
        ok = ok & valid.to(x0.device).expand_as(x0)
    x0 = torch.where(ok, x0, torch.zeros((), dtype=x0.dtype, device=x0.device))
    b, steps = x0.shape[0], schedule["alpha_bar"].shape[0]
    where = generator.device if generator is not None else x0.device
    t = torch.randint(0, steps, (b,), generator=generator, device=where).to(x0.device)
    noise = _randn(tuple(x0.shape), generator, x0.device, x0.dtype)
    out = model(q_sample(x0, t, noise, schedule), t=t)
    if out.shape != x0.shape:
        raise ValueError(f"the model predicts {tuple(out.shape)} for windows of {tuple(x0.shape)}: a denoiser "
                         f"needs out_channels == in_channels")
    target = x0 if prediction == "x0" else noise
    weight = ok.to(out.dtype)
    return ((out - target) ** 2 * weight).sum() / weight.sum().clamp_min(1.0)


class EMA:
    """Exponential moving average of a model's weights (Polyak averaging), for sampling.

    ``ema = EMA(model)`` copies the model's state dict; after each optimiser step
    ``ema.update(model)`` sets every floating-point entry to ``decay * ema + (1 - decay) * model``
    (integer buffers are copied); ``ema.copy_to(model)`` loads the average into a model of the same
    architecture (keep the training weights elsewhere first if training goes on). ``state_dict()`` /
    ``load_state_dict()`` hold ``decay``, ``updates`` and the averaged tensors, ready for
    ``save_training_state(..., extra={"ema": ema.state_dict()})``. With decay 0.999 the average
    spans about 1000 steps. GaitDynamics' code keeps an average with 0.99 (updated every few steps),
    EDGE 0.9999; no warm-up of the decay is applied.
    """

    def __init__(self, model: nn.Module, decay: float = 0.999) -> None:
        _check_float("decay", decay, low=0.0, high=1.0)
        self.decay = float(decay)
        self.updates = 0
        self.shadow = {k: v.detach().clone() for k, v in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        state = model.state_dict()
        if state.keys() != self.shadow.keys():
            raise ValueError("EMA.update: the model's state dict keys differ from the averaged ones")
        for k, v in state.items():
            avg = self.shadow[k]
            if avg.is_floating_point():
                avg.lerp_(v.detach().to(avg.dtype), 1.0 - self.decay)
            else:
                avg.copy_(v)
        self.updates += 1

    @torch.no_grad()
    def copy_to(self, model: nn.Module) -> None:
        model.load_state_dict(self.shadow, strict=True)

    def state_dict(self) -> dict[str, Any]:
        return {"decay": self.decay, "updates": self.updates, "shadow": {k: v.clone() for k, v in self.shadow.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.decay = float(state["decay"])
        self.updates = int(state["updates"])
        self.shadow = {k: v.detach().clone() for k, v in state["shadow"].items()}


# ---- sampling ------------------------------------------------------------------------------------

def ddim_timesteps(steps: int = 50, diffusion_steps: int = 1000) -> list[int]:
    """The ``steps + 1`` steps of a DDIM chain, from ``diffusion_steps - 1`` down to -1 (clean):
    ``round(linspace(-1, T - 1, steps + 1))`` reversed, GaitDynamics' spacing (for 50 of 1000:
    999, 979, ..., 19, -1, each iteration advancing 20 steps)."""
    _check_int("diffusion_steps", diffusion_steps, minimum=1)
    _check_int("steps", steps, minimum=1)
    if steps > diffusion_steps:
        raise ValueError(f"steps ({steps}) cannot exceed diffusion_steps ({diffusion_steps})")
    times = torch.linspace(-1, diffusion_steps - 1, steps + 1, dtype=torch.float64).round().long()
    return times.flip(0).tolist()


def ddim_step(model_out: Tensor, x_t: Tensor, t: int | Tensor, t_prev: int | Tensor, schedule: dict[str, Tensor],
              prediction: str, eta: float = 0.0, *, noise: Tensor | None = None,
              generator: torch.Generator | None = None) -> Tensor:
    """One DDIM update (Song et al. 2021, eq. 12) from step ``t`` to ``t_prev`` (-1: the clean data)::

        x_prev = sqrt(ab_prev) x0_hat + sqrt(1 - ab_prev - sigma^2) eps_hat + sigma z
        sigma  = eta sqrt((1 - ab_prev) / (1 - ab_t)) sqrt(1 - ab_t / ab_prev)

    ``x0_hat`` and ``eps_hat`` follow from ``model_out`` (``prediction``: "x0" or "epsilon").
    ``eta = 0`` is deterministic (DDIM), ``eta = 1`` DDPM-like; ``z`` is ``noise`` or drawn from
    ``generator`` when sigma is not zero.
    """
    x0_hat = predict_x0(model_out, x_t, t, schedule, prediction)
    eps_hat = predict_epsilon(model_out, x_t, t, schedule, prediction)
    _check_float("eta", eta, low=0.0)
    ab_t = _at(schedule["alpha_bar"], t, x_t)
    ab_prev = _at(schedule["alpha_bar"], t_prev, x_t, prev=True)
    x_prev = ab_prev.sqrt() * x0_hat
    if eta == 0:
        return x_prev + (1 - ab_prev).clamp_min(0).sqrt() * eps_hat
    sigma = eta * ((1 - ab_prev) / (1 - ab_t) * (1 - ab_t / ab_prev)).clamp_min(0).sqrt()
    if noise is None:
        noise = _randn(tuple(x_t.shape), generator, x_t.device, x_t.dtype)
    return x_prev + (1 - ab_prev - sigma ** 2).clamp_min(0).sqrt() * eps_hat + sigma * noise


def tolerance_loss(target: Tensor, tolerance: Tensor | float,
                   weight: Tensor | float = 1.0) -> Callable[[Tensor], Tensor]:
    """The paper's guidance loss ``g(x0_hat) = SUM(ReLU(|x0_hat - target| - tolerance) * weight)``:
    only discrepancies beyond ``tolerance`` (e.g. 10 % of each channel's range of motion) count.
    ``tolerance`` and ``weight`` broadcast over the window ([C] per channel; weight 0 for the
    channels the loss must not touch, such as angular velocities and forces). NaN targets count
    nothing."""
    def g(x0_hat: Tensor) -> Tensor:
        diff = (x0_hat - torch.nan_to_num(target)).abs()
        return (torch.relu(diff - tolerance) * weight * torch.isfinite(target)).sum()
    return g


def ddim_sample(model: nn.Module, shape: tuple[int, ...], schedule: dict[str, Tensor], steps: int = 50,
                generator: torch.Generator | None = None, known: Tensor | None = None,
                known_mask: Tensor | None = None, guidance: Callable[[Tensor], Tensor] | None = None, *,
                guidance_scale: float = 0.02, guidance_steps: int = 5, eta: float = 0.0,
                prediction: str | None = None, clip_x0: float | None = None) -> Tensor:
    """Generate windows of ``shape`` [B, T, C] by DDIM from pure noise (see the module docstring).

    - ``steps``: model evaluations, spaced by ``ddim_timesteps`` over the schedule's length.
    - ``known``, ``known_mask``: inpainting. ``known_mask`` is a bool tensor broadcastable to
      ``shape`` (True = known); ``known`` holds the values there (other entries are ignored, NaN
      allowed). Before each model evaluation at step ``t`` the known entries of ``x_t`` are set to
      ``q_sample(known, t, fresh noise)``; the result holds ``known`` exactly where known.
    - ``guidance``: ``g(x0_hat) -> scalar``; before each step, ``guidance_steps`` times,
      ``x_t -= guidance_scale * d g(x0_hat(x_t)) / d x_t`` (the paper: 5 times, 0.02).
    - ``generator``: every random draw (initial noise, inpainting noise, ``eta > 0`` noise) comes
      from it, in a fixed order: the same seed gives the same windows.
    - ``prediction``: what the model outputs, default ``model.config.prediction``.
    - ``clip_x0``: clamp the predicted clean window to ``[-clip_x0, clip_x0]`` before each step
      (EDGE's ``clip_denoised``; off, as in GaitDynamics). With ``"epsilon"`` prediction the first
      steps divide by ``sqrt(alpha_bar[999]) = 5e-5``: an imperfect epsilon model needs it there.

    The model is put in eval mode (its mode is restored afterwards); no gradients are kept.
    """
    if prediction is None:
        prediction = model.config.prediction  # type: ignore[union-attr]
    _check_choice("prediction", prediction, PREDICTIONS)
    _check_int("guidance_steps", guidance_steps, minimum=0)
    _check_float("guidance_scale", guidance_scale, low=0.0)
    if clip_x0 is not None:
        _check_float("clip_x0", clip_x0, low=0.0, low_inclusive=False)
    if len(shape) != 3:
        raise ValueError(f"shape must be (batch, time, channels), got {tuple(shape)}")
    shape = tuple(int(s) for s in shape)
    config = getattr(model, "config", None)
    if isinstance(config, DiffusionConfig) and not (config.in_channels == config.out_channels == shape[2]):
        raise ValueError(f"cannot sample {shape[2]} channels with a denoiser of in_channels={config.in_channels}, "
                         f"out_channels={config.out_channels}")
    param = next(iter(model.parameters()), None) if isinstance(model, nn.Module) else None
    device = param.device if param is not None else (known.device if known is not None else torch.device("cpu"))
    dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32
    sched = {k: v.to(device=device, dtype=dtype) for k, v in schedule.items()}
    times = ddim_timesteps(steps, sched["alpha_bar"].shape[0])

    if (known is None) != (known_mask is None):
        raise ValueError("inpainting needs both known and known_mask")
    if known_mask is not None:
        if known_mask.dtype != torch.bool:
            raise ValueError(f"known_mask must be a bool tensor (True = known), got {known_mask.dtype}")
        try:
            known_mask = known_mask.to(device).expand(shape)
            known = known.to(device=device, dtype=dtype).expand(shape)  # type: ignore[union-attr]
        except RuntimeError:
            raise ValueError(f"known {tuple(known.shape)} and known_mask "  # type: ignore[union-attr]
                             f"{tuple(known_mask.shape)} must broadcast to shape {shape}") from None
        known = torch.where(known_mask, known, torch.zeros((), dtype=dtype, device=device))

    was_training = model.training if isinstance(model, nn.Module) else None
    if isinstance(model, nn.Module):
        model.eval()
    try:
        with torch.no_grad():
            x = _randn(shape, generator, device, dtype)
            for t, t_prev in zip(times[:-1], times[1:]):
                tt = torch.full((shape[0],), t, dtype=torch.long, device=device)
                if known_mask is not None:
                    noisy_known = q_sample(known, t, _randn(shape, generator, device, dtype), sched)
                    x = torch.where(known_mask, noisy_known, x)
                if guidance is not None:
                    for _ in range(guidance_steps):
                        with torch.enable_grad():
                            x_req = x.detach().requires_grad_(True)
                            x0_hat = predict_x0(model(x_req, t=tt), x_req, t, sched, prediction)
                            loss = guidance(x0_hat)
                            (grad,) = torch.autograd.grad(loss, x_req)
                        x = x - guidance_scale * grad
                out, kind = model(x, t=tt), prediction
                if clip_x0 is not None:
                    out, kind = predict_x0(out, x, t, sched, prediction).clamp(-clip_x0, clip_x0), "x0"
                x = ddim_step(out, x, t, t_prev, sched, kind, eta, generator=generator)
            if known_mask is not None:
                x = torch.where(known_mask, known, x)
    finally:
        if was_training is not None:
            model.train(was_training)
    return x


# ---- the baseline --------------------------------------------------------------------------------

def median_template(windows: Tensor, *, per_time: bool = True) -> Tensor:
    """The median of training windows [N, T, C] that ``median_fill`` fills with (NaNs ignored):
    per time step and channel, [T, C] (``per_time``), or per channel over all windows and time
    steps, [C] (the paper's "median values of each degree of freedom")."""
    if not isinstance(windows, Tensor) or windows.dim() != 3:
        raise ValueError(f"windows must be a [N, T, C] tensor, got "
                         f"{tuple(windows.shape) if isinstance(windows, Tensor) else type(windows).__name__}")
    if per_time:
        return windows.nanmedian(dim=0).values
    return windows.reshape(-1, windows.shape[-1]).nanmedian(dim=0).values


def median_fill(x: Tensor, known_mask: Tensor, reference_median: Tensor) -> Tensor:
    """The paper's Median Filling baseline: a copy of ``x`` [B, T, C] (or [T, C]) whose unknown
    entries (``known_mask`` False, broadcastable to ``x``) are taken from ``reference_median``:
    [T, C] (per time and channel, ``median_template``) or [C] (one value per channel)."""
    if known_mask.dtype != torch.bool:
        raise ValueError(f"known_mask must be a bool tensor (True = known), got {known_mask.dtype}")
    if reference_median.dim() not in (1, 2) or reference_median.shape[-1] != x.shape[-1] or (
            reference_median.dim() == 2 and reference_median.shape[0] != x.shape[-2]):
        raise ValueError(f"reference_median must be [C] = [{x.shape[-1]}] or [T, C] = "
                         f"[{x.shape[-2]}, {x.shape[-1]}], got {list(reference_median.shape)}")
    template = reference_median.to(device=x.device, dtype=x.dtype).expand_as(x)
    return torch.where(known_mask.to(x.device).expand_as(x), x, template)
