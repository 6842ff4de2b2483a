"""Mamba (selective state space, Mamba-1) in pure PyTorch, CPU-friendly.

    x [B, T, C_in] -> masked steps replaced by a learnable vector (input space)
      -> Linear embed (C_in -> d_model)
      -> n_layers residual blocks  x = x + dropout(mixer(norm(x)) [+ flip(mixer_bwd(flip(norm(x))))])
      -> norm_f -> Linear head per time step -> [B, T, C_out]

The mixer follows ``mamba_ssm.modules.mamba_simple.Mamba`` (its non-fused path) and keeps its
parameter names, initialisation and state-dict keys: ``in_proj.weight``, ``conv1d.weight``,
``conv1d.bias``, ``x_proj.weight``, ``dt_proj.weight``, ``dt_proj.bias``, ``A_log``, ``D``,
``out_proj.weight``. The blocks are ``layers.{i}.mixer.*`` and ``layers.{i}.norm.weight`` (RMSNorm)
with a final ``norm_f.weight``, as in ``MambaLMHeadModel.backbone``, so a published Mamba
checkpoint's backbone loads after stripping ``backbone.`` (``mamba_ssm_backbone_state_dict``). The
embedding here is a Linear over channels (``embed.*``), not a token table.

Bidirectional (the default of the ``mamba`` preset): joint moments are estimated offline, so every
block also runs a second mixer, ``layers.{i}.mixer_bwd`` (same structure, own weights), on the
time-reversed sequence and *adds* its time-reversed output to the forward mixer's; the causal
convolution and scan then see the future as well as the past at every layer. With
``bidirectional=False`` the model is causal.

Masking: ``mask_token`` (``in_channels`` values, N(0, 0.02)) replaces the inputs at masked time steps.

The selective scan ``h_t = exp(delta_t A) h_{t-1} + delta_t B_t u_t,  y_t = C_t h_t + D u_t`` (then
``y * silu(z)``) comes in three implementations with mamba-ssm's ``selective_scan_fn`` signature and
layouts (u, delta, z: [B, D, L]; A: [D, N]; B, C: [B, N, L]):

- ``selective_scan_ref``: the recurrence, a Python loop over time (the specification);
- ``selective_scan_parallel``: a chunked scan, the default on CPU (see its docstring);
- mamba-ssm's CUDA ``selective_scan_fn``, used by ``selective_scan`` only when ``mamba_ssm``
  imports and the tensors are on a CUDA device.
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Any, Callable, ClassVar, Iterable, Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .base import GaitModel, ModelConfig, _check_bool, _check_choice, _check_float, _check_int, replace_masked
from .registry import build, register_architecture, register_model

__all__ = [
    "MambaConfig", "MambaModel", "MambaMixer", "MambaBlock",
    "selective_scan", "selective_scan_ref", "selective_scan_parallel", "mamba_ssm_available",
    "mamba_ssm_backbone_state_dict", "mamba",
]


@dataclasses.dataclass
class MambaConfig(ModelConfig):
    architecture: ClassVar[str] = "mamba"

    name: str = "mamba"
    in_channels: int = 6
    out_channels: int = 6
    d_model: int = 64
    n_layers: int = 4
    d_state: int = 16
    d_conv: int = 4
    expand: int = 2               # d_inner = expand * d_model
    dt_rank: int | None = None    # None: ceil(d_model / 16), mamba-ssm's "auto"
    dt_min: float = 0.001
    dt_max: float = 0.1
    dt_init: str = "random"       # "random" | "constant" (dt_proj.weight init)
    dt_scale: float = 1.0
    dt_init_floor: float = 1e-4
    conv_bias: bool = True
    bias: bool = False            # in_proj / out_proj biases
    norm: str = "rmsnorm"         # "rmsnorm" | "layernorm"
    norm_eps: float = 1e-5
    dropout: float = 0.1          # on each block's mixer output, before the residual add
    bidirectional: bool = True    # add a time-reversed mixer per block (offline estimation)
    window: int = 180             # the window length the model is meant for (preprocessing); any T works
    preset: str | None = None

    def validate(self) -> None:
        for name in ("d_model", "d_state", "d_conv", "expand", "window"):
            _check_int(name, getattr(self, name), minimum=1)
        _check_int("n_layers", self.n_layers, minimum=0)
        if self.dt_rank is not None:
            _check_int("dt_rank", self.dt_rank, minimum=1)
        _check_float("dt_min", self.dt_min, low=0.0, low_inclusive=False)
        _check_float("dt_max", self.dt_max, low=self.dt_min)
        _check_float("dt_scale", self.dt_scale, low=0.0, low_inclusive=False)
        _check_float("dt_init_floor", self.dt_init_floor, low=0.0)
        _check_float("norm_eps", self.norm_eps, low=0.0, low_inclusive=False)
        _check_float("dropout", self.dropout, low=0.0, high=1.0)
        _check_choice("dt_init", self.dt_init, ("random", "constant"))
        _check_choice("norm", self.norm, ("rmsnorm", "layernorm"))
        for name in ("conv_bias", "bias", "bidirectional"):
            _check_bool(name, getattr(self, name))

    @property
    def d_inner(self) -> int:
        return self.expand * self.d_model

    @property
    def resolved_dt_rank(self) -> int:
        return self.dt_rank if self.dt_rank is not None else math.ceil(self.d_model / 16)


# ---- selective scan ------------------------------------------------------------------------------

def _prepare(u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor, delta_bias: Tensor | None,
             delta_softplus: bool) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Upcast like mamba-ssm's reference (float32, or float64 when given float64), apply the delta
    bias and softplus, and go time-major: u, delta -> [L, b, d]; B, C -> [L or 1, b or 1, d or 1, n]."""
    if A.is_complex():
        raise ValueError("complex A is not supported")
    if u.dim() != 3 or delta.shape != u.shape:
        raise ValueError(f"u and delta must both be [batch, d, length], got {tuple(u.shape)} and {tuple(delta.shape)}")
    if A.dim() != 2 or A.shape[0] != u.shape[1]:
        raise ValueError(f"A must be [d, n] with d={u.shape[1]}, got {tuple(A.shape)}")
    ct = torch.float64 if torch.float64 in (u.dtype, delta.dtype, A.dtype) else torch.float32
    u, delta, A = u.to(ct), delta.to(ct), A.to(ct)
    if delta_bias is not None:
        delta = delta + delta_bias.to(ct).unsqueeze(-1)
    if delta_softplus:
        delta = F.softplus(delta)
    d = u.shape[1]

    def time_major(M: Tensor) -> Tensor:
        M = M.to(ct)
        if M.dim() == 2:                          # [d, n]: the same for every step
            return M.unsqueeze(0).unsqueeze(0)    # [1, 1, d, n]
        if M.dim() == 3:                          # [b, n, l]
            return M.permute(2, 0, 1).unsqueeze(2).contiguous()  # [l, b, 1, n]
        if M.dim() == 4:                          # [b, groups, n, l]
            g = M.shape[1]
            if d % g:
                raise ValueError(f"d={d} is not a multiple of the {g} groups of B/C")
            return M.permute(3, 0, 1, 2).repeat_interleave(d // g, dim=2).contiguous()  # [l, b, d, n]
        raise ValueError(f"B and C must be [d, n], [b, n, l] or [b, g, n, l], got {tuple(M.shape)}")

    return (u.permute(2, 0, 1).contiguous(), delta.permute(2, 0, 1).contiguous(), A,
            time_major(B), time_major(C))


def _finish(y: Tensor, u: Tensor, D: Tensor | None, z: Tensor | None, dtype_in: torch.dtype) -> Tensor:
    """y, u: [L, b, d] time-major -> [b, d, L] with the D skip and the silu(z) gate, in dtype_in."""
    if D is not None:
        y = y + u * D.to(y.dtype)
    y = y.permute(1, 2, 0)
    if z is not None:
        y = y * F.silu(z.to(y.dtype))
    return y.to(dtype_in)


def selective_scan_ref(u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor, D: Tensor | None = None,
                       z: Tensor | None = None, delta_bias: Tensor | None = None, delta_softplus: bool = False,
                       return_last_state: bool = False) -> Tensor | tuple[Tensor, Tensor]:
    """The selective scan as the recurrence, one time step at a time (the specification; mamba-ssm's
    ``selective_scan_ref``): ``h_t = exp(delta_t A) h_{t-1} + delta_t B_t u_t``, ``y_t = C_t h_t + D u_t``,
    then ``y * silu(z)``; ``delta = softplus(delta + delta_bias)`` with ``delta_softplus``.

    u, delta, z: [b, d, l]; A: [d, n]; B, C: [b, n, l] (or [b, g, n, l], or [d, n]); D, delta_bias: [d].
    Returns y [b, d, l] in u's dtype (and the last state [b, d, n] with ``return_last_state``).
    Computes in float32 (float64 when an input is float64).
    """
    dtype_in = u.dtype
    u, delta, A, Bt, Ct = _prepare(u, delta, A, B, C, delta_bias, delta_softplus)
    length, b, d = u.shape
    deltaA = torch.exp(delta.unsqueeze(-1) * A)                  # [l, b, d, n]
    deltaB_u = (delta * u).unsqueeze(-1) * Bt                    # [l, b, d, n]
    Cs = Ct.unbind(0) if Ct.shape[0] > 1 else (Ct[0],) * length  # unbind: a cheap backward
    h = u.new_zeros(b, d, A.shape[1])
    ys = []
    for a_t, bu_t, c_t in zip(deltaA.unbind(0), deltaB_u.unbind(0), Cs):
        h = a_t * h + bu_t
        ys.append((h * c_t).sum(-1))
    y = torch.stack(ys) if ys else u.new_zeros(0, b, d)
    out = _finish(y, u, D, z, dtype_in)
    return (out, h) if return_last_state else out


# On CPU, chunks scanned side by side keep at most this many state values in flight per step, so
# that one step's tensors stay in cache (measured on a 2-core CPU: beyond it the scan turns memory
# bound and side-by-side chunks only add work).
_SIDE_BY_SIDE_STATES = 1 << 17


def _chunks(length: int, states_per_chunk: int, chunk_size: int | None, on_cpu: bool) -> int:
    """Steps per chunk: ~sqrt(L/2) (about sqrt(2L) chunks side by side, the fewest sequential steps),
    with fewer chunks side by side on CPU when a step's states would no longer fit in cache."""
    if chunk_size is not None:
        return max(1, min(length, int(chunk_size)))
    side_by_side = round(math.sqrt(2 * length))
    if on_cpu:
        side_by_side = min(side_by_side, _SIDE_BY_SIDE_STATES // max(1, states_per_chunk))
    return -(-length // max(1, side_by_side))


def selective_scan_parallel(u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor, D: Tensor | None = None,
                            z: Tensor | None = None, delta_bias: Tensor | None = None,
                            delta_softplus: bool = False, return_last_state: bool = False,
                            chunk_size: int | None = None) -> Tensor | tuple[Tensor, Tensor]:
    """The selective scan as a chunked scan; same arguments and results as ``selective_scan_ref``.

    The L steps are cut into ``nc`` chunks of ``chunk_size`` steps that are scanned side by side,
    so the sequential loops take about ``2 * chunk_size + nc`` steps instead of ``L`` (64 instead of
    512 for L=512 at the default ``nc ~ sqrt(2L)``):

    1. every chunk is scanned from a zero state, all chunks at once, giving the state it ends in;
    2. the state entering each chunk is carried chunk to chunk, with the chunk's total decay taken
       from the cumulative log-decay ``exp(A * sum(delta over the chunk))`` (the log-decay of Mamba-1
       factorises as delta_t * A, so it is summed over delta [b, d] values, not [b, d, n] ones);
    3. every chunk is scanned again from its entering state, reading ``y_t = C_t h_t`` on the fly.

    Numerically it is the reference recurrence, reordered: only products of decays in (0, 1] and
    exponentials of non-positive numbers (for A < 0), never a division or a growing exponential
    (an all-pairs ``exp(S_t - S_s)`` form would need L x L decays per state, ``exp(-S_s)`` alone
    overflows). The discretised ``exp(delta A)`` and ``delta B u`` ([b, d, n] per step) are made one step
    at a time and kept for the second pass only while the batch is small. On CPU, when the batch
    is large (b*d*n beyond ``_SIDE_BY_SIDE_STATES``), fewer chunks run side by side, down to one: a
    plain loop that discretises each step just before using it, because then the scan is memory
    bound, not step bound, and a step's working set must stay in cache. Differentiable by autograd
    (the loops slice with ``unbind``, whose backward is one stack, not one full-size scatter per step).
    """
    dtype_in = u.dtype
    u, delta, A, Bt, Ct = _prepare(u, delta, A, B, C, delta_bias, delta_softplus)
    length, b, d = u.shape
    n = A.shape[1]
    if length == 0:
        out = _finish(u.new_zeros(0, b, d), u, D, z, dtype_in)
        return (out, u.new_zeros(b, d, n)) if return_last_state else out
    lc = _chunks(length, b * d * n, chunk_size, u.device.type == "cpu")
    nc = -(-length // lc)
    pad = nc * lc - length
    du = delta * u                                               # [L, b, d]
    dl = delta
    if pad:  # delta = 0 on the padded steps: decay 1, no input, the state passes through unchanged
        dl, du = F.pad(dl, (0, 0, 0, 0, 0, pad)), F.pad(du, (0, 0, 0, 0, 0, pad))
        if Bt.shape[0] > 1:
            Bt = F.pad(Bt, (0, 0, 0, 0, 0, 0, 0, pad))
        if Ct.shape[0] > 1:
            Ct = F.pad(Ct, (0, 0, 0, 0, 0, 0, 0, pad))

    def steps(M: Tensor) -> tuple[Tensor, ...]:
        """[L_pad, ...] -> lc slices [nc, ...]: step i of every chunk (constant B/C broadcast)."""
        if M.shape[0] == 1:
            return (M,) * lc
        return M.view(nc, lc, *M.shape[1:]).unbind(1)

    dl_s, du_s = steps(dl.unsqueeze(-1)), steps(du.unsqueeze(-1))  # [nc, b, d, 1]
    B_s, C_s = steps(Bt), steps(Ct)                                 # [nc, b, 1|d, n]
    fast_y = Ct.shape[2] == 1 and Ct.shape[0] > 1                   # y_t = h_t @ C_t as a batched matmul

    def discretised() -> Iterator[tuple[Tensor, Tensor]]:
        for dl_t, du_t, b_t in zip(dl_s, du_s, B_s):
            yield torch.exp(dl_t * A), du_t * b_t                  # exp(delta A), delta B u: [nc, b, d, n]

    if nc > 1:
        # small batch: keep the discretised steps for the second pass
        steps_ab: Iterable[tuple[Tensor, Tensor]] = list(discretised())
        h = None
        for a_t, bu_t in steps_ab:                                  # (1) from zero, side by side
            h = bu_t if h is None else torch.addcmul(bu_t, a_t, h)
        total = torch.exp(dl.view(nc, lc, b, d).sum(1).unsqueeze(-1) * A)  # (2) [nc, b, d, n]
        carry = torch.zeros_like(h[0])
        entering = [carry]
        for total_c, end_c in zip(total.unbind(0)[:-1], h.unbind(0)[:-1]):
            carry = torch.addcmul(end_c, total_c, carry)
            entering.append(carry)
        h = torch.stack(entering)
    else:
        # one chunk: a plain loop, each step discretised just before use (while it is in cache)
        steps_ab = discretised()
        h = u.new_zeros(1, b, d, n)
    ys = []
    for (a_t, bu_t), c_t in zip(steps_ab, C_s):                      # (3) again, from the entering states
        h = torch.addcmul(bu_t, a_t, h)
        if fast_y:
            ys.append(torch.matmul(h, c_t.transpose(-1, -2)).squeeze(-1))  # [nc, b, d]
        else:
            ys.append((h * c_t).sum(-1))
    y = torch.stack(ys, 1).view(nc * lc, b, d)[:length]
    out = _finish(y, u, D, z, dtype_in)
    return (out, h[-1]) if return_last_state else out


_cuda_scan: Callable[..., Any] | None | bool = False  # False: not looked for yet


def mamba_ssm_available() -> bool:
    """Whether mamba-ssm's CUDA selective scan can be imported (looked up once)."""
    global _cuda_scan
    if _cuda_scan is False:
        try:
            from mamba_ssm.ops.selective_scan_interface import selective_scan_fn  # type: ignore[import-not-found]
            _cuda_scan = selective_scan_fn
        except Exception:  # not installed, or built for another torch / CUDA
            _cuda_scan = None
    return _cuda_scan is not None


def selective_scan(u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor, D: Tensor | None = None,
                   z: Tensor | None = None, delta_bias: Tensor | None = None, delta_softplus: bool = False,
                   return_last_state: bool = False, impl: str = "auto") -> Tensor | tuple[Tensor, Tensor]:
    """Dispatch: ``impl="auto"`` uses mamba-ssm's CUDA kernel for CUDA tensors when mamba_ssm imports,
    ``selective_scan_parallel`` otherwise; ``"cuda"``, ``"parallel"`` or ``"ref"`` force one."""
    if impl == "auto":
        impl = "cuda" if u.is_cuda and mamba_ssm_available() else "parallel"
    if impl == "cuda":
        if not mamba_ssm_available():
            raise RuntimeError("impl='cuda' needs the mamba_ssm package (pip install mamba-ssm)")
        assert callable(_cuda_scan)
        # The kernel wants the last dimension contiguous and A, D, delta_bias in float32.
        return _cuda_scan(u.contiguous(), delta.contiguous(), A.float().contiguous(), B.contiguous(),
                          C.contiguous(), None if D is None else D.float().contiguous(),
                          None if z is None else z.contiguous(),
                          None if delta_bias is None else delta_bias.float().contiguous(),
                          delta_softplus, return_last_state)
    if impl == "parallel":
        return selective_scan_parallel(u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state)
    if impl == "ref":
        return selective_scan_ref(u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state)
    raise ValueError(f"impl must be 'auto', 'cuda', 'parallel' or 'ref', got {impl!r}")


# ---- the mixer and the block -----------------------------------------------------------------------

def _upcast(t: Tensor) -> Tensor:
    return t if t.dtype == torch.float64 else t.float()


class MambaMixer(nn.Module):
    """mamba-ssm's ``Mamba`` mixer (Mamba-1), non-fused path, same parameter names and init.

    ``scan_impl`` ("auto", "parallel", "ref", "cuda") picks the selective scan; it is a runtime choice,
    not part of the config.
    """

    def __init__(self, d_model: int, d_state: int = 16, d_conv: int = 4, expand: int = 2,
                 dt_rank: int | None = None, dt_min: float = 0.001, dt_max: float = 0.1,
                 dt_init: str = "random", dt_scale: float = 1.0, dt_init_floor: float = 1e-4,
                 conv_bias: bool = True, bias: bool = False) -> None:
        super().__init__()
        self.d_model, self.d_state, self.d_conv = d_model, d_state, d_conv
        self.d_inner = expand * d_model
        self.dt_rank = dt_rank if dt_rank is not None else math.ceil(d_model / 16)
        self.scan_impl = "auto"
        self.in_proj = nn.Linear(d_model, 2 * self.d_inner, bias=bias)
        self.conv1d = nn.Conv1d(self.d_inner, self.d_inner, kernel_size=d_conv, groups=self.d_inner,
                                padding=d_conv - 1, bias=conv_bias)
        self.act = nn.SiLU()
        self.x_proj = nn.Linear(self.d_inner, self.dt_rank + 2 * d_state, bias=False)
        self.dt_proj = nn.Linear(self.dt_rank, self.d_inner, bias=True)
        # dt_proj: weights so that dt starts in [dt_min, dt_max], log-uniformly (mamba-ssm's init)
        std = self.dt_rank ** -0.5 * dt_scale
        if dt_init == "constant":
            nn.init.constant_(self.dt_proj.weight, std)
        else:
            nn.init.uniform_(self.dt_proj.weight, -std, std)
        dt = torch.exp(torch.rand(self.d_inner) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min))
        dt = dt.clamp(min=dt_init_floor)
        with torch.no_grad():
            self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))  # softplus^-1(dt)
        self.dt_proj.bias._no_reinit = True  # type: ignore[attr-defined]
        # S4D-real initialisation: A = -[1, 2, ..., d_state] for every channel
        A = torch.arange(1, d_state + 1, dtype=torch.float32).repeat(self.d_inner, 1)
        self.A_log = nn.Parameter(torch.log(A))
        self.A_log._no_weight_decay = True  # type: ignore[attr-defined]
        self.D = nn.Parameter(torch.ones(self.d_inner))
        self.D._no_weight_decay = True  # type: ignore[attr-defined]
        self.out_proj = nn.Linear(self.d_inner, d_model, bias=bias)

    def forward(self, hidden: Tensor) -> Tensor:
        """hidden [B, L, d_model] -> [B, L, d_model] (causal in L)."""
        length = hidden.shape[1]
        xz = self.in_proj(hidden).transpose(1, 2)                # [B, 2*d_inner, L]
        x, z = xz.chunk(2, dim=1)
        x = self.act(self.conv1d(x)[..., :length])               # causal depthwise conv
        x_dbl = self.x_proj(x.transpose(1, 2))                   # [B, L, dt_rank + 2*d_state]
        dt, Bm, Cm = torch.split(x_dbl, [self.dt_rank, self.d_state, self.d_state], dim=-1)
        dt = F.linear(dt, self.dt_proj.weight).transpose(1, 2)   # [B, d_inner, L]; bias goes in the scan
        A = -torch.exp(_upcast(self.A_log))                      # [d_inner, d_state]
        y = selective_scan(x, dt, A, Bm.transpose(1, 2), Cm.transpose(1, 2), _upcast(self.D), z=z,
                           delta_bias=_upcast(self.dt_proj.bias), delta_softplus=True, impl=self.scan_impl)
        return self.out_proj(y.transpose(1, 2))                  # type: ignore[union-attr]


class MambaBlock(nn.Module):
    """Pre-norm residual block, ``x + dropout(mixer(norm(x)))`` (mamba-ssm's ``Block``), with an
    optional time-reversed second mixer whose output is added."""

    def __init__(self, config: MambaConfig) -> None:
        super().__init__()
        c = config
        kw = dict(d_state=c.d_state, d_conv=c.d_conv, expand=c.expand, dt_rank=c.dt_rank, dt_min=c.dt_min,
                  dt_max=c.dt_max, dt_init=c.dt_init, dt_scale=c.dt_scale, dt_init_floor=c.dt_init_floor,
                  conv_bias=c.conv_bias, bias=c.bias)
        self.norm = _norm(c)
        self.mixer = MambaMixer(c.d_model, **kw)  # type: ignore[arg-type]
        self.mixer_bwd = MambaMixer(c.d_model, **kw) if c.bidirectional else None  # type: ignore[arg-type]
        self.dropout = nn.Dropout(c.dropout)

    def forward(self, x: Tensor) -> Tensor:
        h = self.norm(x)
        y = self.mixer(h)
        if self.mixer_bwd is not None:
            y = y + self.mixer_bwd(h.flip(1)).flip(1)
        return x + self.dropout(y)


def _norm(c: MambaConfig) -> nn.Module:
    if c.norm == "rmsnorm":
        return nn.RMSNorm(c.d_model, eps=c.norm_eps)
    return nn.LayerNorm(c.d_model, eps=c.norm_eps)


@register_architecture("mamba")
class MambaModel(GaitModel):
    """Stack of (bidirectional) Mamba blocks with a per-step linear head (see the module docstring)."""

    config_class = MambaConfig
    config: MambaConfig

    def __init__(self, config: MambaConfig) -> None:
        super().__init__()
        self.config = c = config
        self.mask_token = nn.Parameter(torch.empty(c.in_channels))
        nn.init.normal_(self.mask_token, std=0.02)
        self.embed = nn.Linear(c.in_channels, c.d_model)
        self.layers = nn.ModuleList(MambaBlock(c) for _ in range(c.n_layers))
        self.norm_f = _norm(c)
        self.head = self._new_head(c.out_channels)
        # mamba-ssm's _init_weights(rescale_prenorm_residual=True): scale the residual branch's output
        # projections by 1/sqrt(number of residual additions)
        mixers = [m for m in self.modules() if isinstance(m, MambaMixer)]
        with torch.no_grad():
            for m in mixers:
                if m.out_proj.bias is not None:
                    nn.init.zeros_(m.out_proj.bias)
                m.out_proj.weight /= math.sqrt(max(1, len(mixers)))

    def _new_head(self, out_channels: int) -> nn.Linear:
        return nn.Linear(self.config.d_model, out_channels)

    @property
    def scan_impl(self) -> str:
        mixers = [m for m in self.modules() if isinstance(m, MambaMixer)]
        return mixers[0].scan_impl if mixers else "auto"

    @scan_impl.setter
    def scan_impl(self, impl: str) -> None:
        if impl not in ("auto", "parallel", "ref", "cuda"):
            raise ValueError(f"scan_impl must be 'auto', 'parallel', 'ref' or 'cuda', got {impl!r}")
        for m in self.modules():
            if isinstance(m, MambaMixer):
                m.scan_impl = impl

    def embedding_modules(self) -> list[nn.Module | nn.Parameter]:
        return [self.embed, self.mask_token]

    def encode(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        mask = self._check_input(x, mask)
        h = self.embed(replace_masked(x, mask, self.mask_token))
        for layer in self.layers:
            h = layer(h)
        return self.norm_f(h)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        return self.head(self.encode(x, mask))


def mamba_ssm_backbone_state_dict(state_dict: dict[str, Tensor], *, copy_to_backward: bool = True) -> dict[str, Tensor]:
    """Map a ``MambaLMHeadModel`` state dict onto this model's keys: ``backbone.layers.{i}.mixer.*``
    and ``.norm.weight`` -> ``layers.{i}.*`` (and, with ``copy_to_backward``, the mixer also to
    ``layers.{i}.mixer_bwd.*``), ``backbone.norm_f.weight`` -> ``norm_f.weight``; the token embedding
    and the LM head are left out. Load the result with ``model.load_state_dict(sd, strict=False)``.
    """
    out: dict[str, Tensor] = {}
    for key, value in state_dict.items():
        k = key[len("backbone."):] if key.startswith("backbone.") else key
        m = re.match(r"layers\.(\d+)\.(mixer|norm)\.(.+)$", k)
        if m:
            out[k] = value
            if copy_to_backward and m.group(2) == "mixer":
                out[f"layers.{m.group(1)}.mixer_bwd.{m.group(3)}"] = value.clone()
        elif k.startswith("norm_f."):
            out[k] = value
    return out


@register_model
def mamba(**overrides: Any) -> MambaModel:
    """Small bidirectional Mamba: d_model 64, 4 layers, d_state 16, d_conv 4, expand 2."""
    defaults = dict(in_channels=6, out_channels=6, d_model=64, n_layers=4, d_state=16, d_conv=4, expand=2,
                    dropout=0.1, bidirectional=True, window=180)
    return build(MambaModel, defaults, overrides, preset="mamba")  # type: ignore[return-value]
