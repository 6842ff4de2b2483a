"""gaitcli.models.diffusion: the cosine schedule against its closed form, q_sample and DDIM steps
against hand-written formulas, oracle denoisers, inpainting that keeps the known values bit for
bit, seeded reproducibility, guidance, EMA, the loss, median filling, checkpoints and the presets.
The interface every registered model keeps is tested in test_models.py (diffusion included)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from gaitcli.models import create_model, list_architectures, list_models, load_checkpoint, save_checkpoint
from gaitcli.models.checkpoint import load_training_state, save_training_state
from gaitcli.models.diffusion import (EMA, DiffusionConfig, DiffusionTransformer, cosine_schedule, ddim_sample,
                                      ddim_step, ddim_timesteps, diffusion_loss, median_fill, median_template,
                                      predict_epsilon, predict_x0, q_sample, step_embedding, tolerance_loss)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SCHEDULE = cosine_schedule(1000)
TINY = dict(in_channels=3, out_channels=3, d_model=16, n_heads=2, n_layers=1, d_ff=32)


def _tiny(seed: int = 0, **kw) -> DiffusionTransformer:
    torch.manual_seed(seed)
    return create_model("diffusion", **{**TINY, **kw}).eval()


def _f(u: float, steps: int = 1000, s: float = 0.008) -> float:
    return math.cos(((u / steps) + s) / (1 + s) * math.pi / 2) ** 2


# ---- the schedule ------------------------------------------------------------------------------

def test_cosine_schedule_is_its_closed_form():
    s = SCHEDULE
    assert set(s) == {"betas", "alphas", "alpha_bar", "sqrt_alpha_bar", "sqrt_one_minus_alpha_bar"}
    assert all(v.dtype == torch.float32 and v.shape == (1000,) for v in s.values())
    for t in (0, 1, 19, 250, 500, 750, 900, 979, 990, 998):  # alpha_bar[t] = f(t + 1) / f(0)
        assert float(s["alpha_bar"][t]) == pytest.approx(_f(t + 1) / _f(0), rel=1e-5, abs=1e-12)
        assert float(s["betas"][t]) == pytest.approx(1 - _f(t + 1) / _f(t), rel=1e-5)
    assert (s["betas"] <= 0.999).all() and float(s["betas"][-1]) == pytest.approx(0.999)  # the clip
    torch.testing.assert_close(s["alphas"], 1 - s["betas"])
    torch.testing.assert_close(s["alpha_bar"].double(), torch.cumprod(1 - s["betas"].double(), 0), rtol=1e-4, atol=0)
    torch.testing.assert_close(s["sqrt_alpha_bar"] ** 2, s["alpha_bar"], rtol=1e-5, atol=1e-12)
    torch.testing.assert_close(s["sqrt_one_minus_alpha_bar"] ** 2, 1 - s["alpha_bar"].double(), rtol=1e-4,
                               atol=1e-7, check_dtype=False)
    assert (s["alpha_bar"].diff() < 0).all(), "alpha_bar decreases monotonically"
    assert 0.9999 < float(s["alpha_bar"][0]) < 1 and float(s["alpha_bar"][-1]) < 1e-6
    small = cosine_schedule(10)
    assert float(small["alpha_bar"][4]) == pytest.approx(_f(5, 10) / _f(0, 10), rel=1e-6)
    with pytest.raises(ValueError, match="steps"):
        cosine_schedule(0)


def test_ddim_timesteps_follow_the_paper():
    times = ddim_timesteps(50, 1000)
    assert times == list(range(999, 0, -20)) + [-1]  # 999, 979, ..., 19, then the clean window
    assert ddim_timesteps(1000, 1000) == list(range(999, -2, -1))
    assert ddim_timesteps(1, 1000) == [999, -1]
    odd = ddim_timesteps(7, 100)
    assert odd[0] == 99 and odd[-1] == -1 and all(a > b for a, b in zip(odd, odd[1:]))
    with pytest.raises(ValueError, match="cannot exceed"):
        ddim_timesteps(1001, 1000)


# ---- q_sample and one DDIM step, by hand --------------------------------------------------------

def test_q_sample_matches_the_formula():
    g = torch.Generator().manual_seed(0)
    x0, noise = torch.randn(3, 5, 2, generator=g), torch.randn(3, 5, 2, generator=g)
    t = torch.tensor([0, 499, 999])
    ab = SCHEDULE["alpha_bar"].double()
    expected = torch.stack([ab[i].sqrt() * x0[b].double() + (1 - ab[i]).sqrt() * noise[b].double()
                            for b, i in enumerate(t.tolist())])
    torch.testing.assert_close(q_sample(x0, t, noise, SCHEDULE).double(), expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(q_sample(x0, 499, noise, SCHEDULE)[1], q_sample(x0, t, noise, SCHEDULE)[1])


@pytest.mark.parametrize("prediction", ["x0", "epsilon"])
def test_ddim_step_is_the_closed_form(prediction):
    g = torch.Generator().manual_seed(1)
    x_t, out, z = (torch.randn(2, 4, 3, generator=g, dtype=torch.float64) for _ in range(3))
    ab = SCHEDULE["alpha_bar"].double()  # a float64 schedule whose roots are those of alpha_bar, as by hand
    sched = {"alpha_bar": ab, "sqrt_alpha_bar": ab.sqrt(), "sqrt_one_minus_alpha_bar": (1 - ab).sqrt()}
    for t, t_prev in ((999, 979), (500, 480), (19, -1)):
        a_t, a_p = float(ab[t]), (1.0 if t_prev < 0 else float(ab[t_prev]))
        if prediction == "x0":
            x0_hat = out
            eps_hat = (x_t - math.sqrt(a_t) * x0_hat) / math.sqrt(1 - a_t)
        else:
            eps_hat = out
            x0_hat = (x_t - math.sqrt(1 - a_t) * eps_hat) / math.sqrt(a_t)
        torch.testing.assert_close(predict_x0(out, x_t, t, sched, prediction), x0_hat)
        torch.testing.assert_close(predict_epsilon(out, x_t, t, sched, prediction), eps_hat)
        expected = math.sqrt(a_p) * x0_hat + math.sqrt(1 - a_p) * eps_hat
        torch.testing.assert_close(ddim_step(out, x_t, t, t_prev, sched, prediction), expected)
        # eta > 0 (Song et al. eq. 16), with the noise given
        sigma = 0.5 * math.sqrt((1 - a_p) / (1 - a_t) * (1 - a_t / a_p))
        expected = math.sqrt(a_p) * x0_hat + math.sqrt(1 - a_p - sigma ** 2) * eps_hat + sigma * z
        torch.testing.assert_close(ddim_step(out, x_t, t, t_prev, sched, prediction, eta=0.5, noise=z), expected)
    # t_prev = -1 lands on the predicted clean window; per-sample steps as tensors
    torch.testing.assert_close(ddim_step(out, x_t, 19, -1, sched, prediction),
                               predict_x0(out, x_t, 19, sched, prediction))
    both = ddim_step(out, x_t, torch.tensor([500, 19]), torch.tensor([480, -1]), sched, prediction)
    torch.testing.assert_close(both[0], ddim_step(out, x_t, 500, 480, sched, prediction)[0])
    torch.testing.assert_close(both[1], ddim_step(out, x_t, 19, -1, sched, prediction)[1])


class _Oracle(nn.Module):
    """A perfect denoiser for one clean window ``x0``: it outputs x0, or the exact noise in x_t."""

    def __init__(self, x0: torch.Tensor, prediction: str) -> None:
        super().__init__()
        self.x0, self.prediction = x0, prediction

    def forward(self, x, mask=None, t=None):
        if self.prediction == "x0":
            return self.x0.expand_as(x)
        return predict_epsilon(self.x0.expand_as(x), x, t, SCHEDULE, "x0")


@pytest.mark.parametrize("prediction", ["x0", "epsilon"])
def test_ddim_with_an_oracle_ends_at_its_x0(prediction):
    x0 = torch.randn(1, 20, 3, generator=torch.Generator().manual_seed(2))
    out = ddim_sample(_Oracle(x0, prediction), (2, 20, 3), SCHEDULE, steps=25,
                      generator=torch.Generator().manual_seed(0), prediction=prediction)
    tol = dict(rtol=0, atol=1e-6) if prediction == "x0" else dict(rtol=1e-3, atol=1e-3)
    torch.testing.assert_close(out, x0.expand(2, -1, -1), **tol)


# ---- the denoiser --------------------------------------------------------------------------------

def test_denoiser_needs_and_uses_the_step():
    model = _tiny()
    x = torch.randn(2, 12, 3)
    with pytest.raises(ValueError, match="t .*is required"):
        model(x)
    with pytest.raises(ValueError, match=r"t must be in \[0, 999\]"):
        model(x, t=torch.tensor([0, 1000]))
    with pytest.raises(ValueError, match="integer"):
        model(x, t=torch.tensor([1.0, 2.0]))
    with pytest.raises(ValueError, match=r"shape \[batch\]"):
        model(x, t=torch.tensor([1, 2, 3]))
    with torch.no_grad():
        a, b = model(x, t=torch.tensor([10, 10])), model(x, t=torch.tensor([10, 900]))
        torch.testing.assert_close(model(x, t=10), a)  # an int is broadcast
        torch.testing.assert_close(a[0], b[0])
        assert not torch.allclose(a[1], b[1]), "the step conditions the output (FiLM)"
        # rotary positions: permuting time does not just permute the output
        assert not torch.allclose(model(x.flip(1), t=10).flip(1), a, atol=1e-4)
    emb = step_embedding(torch.tensor([0, 3]), 8)
    assert emb.shape == (2, 8)
    torch.testing.assert_close(emb[0], torch.tensor([0.0] * 4 + [1.0] * 4))
    assert step_embedding(torch.tensor([5]), 7).shape == (1, 7)


def test_config_validates():
    assert DiffusionConfig().name == "diffusion_transformer" and DiffusionConfig().prediction == "x0"
    with pytest.raises(ValueError, match="prediction"):
        DiffusionConfig(prediction="v")
    with pytest.raises(ValueError, match="even head dimension"):
        DiffusionConfig(d_model=12, n_heads=4)
    with pytest.raises(ValueError, match="schedule"):
        DiffusionConfig(schedule="linear")
    with pytest.raises(ValueError, match="diffusion_steps"):
        DiffusionConfig(diffusion_steps=0)


def _preset_params(c: int, d: int, ff: int, layers: int) -> int:
    embed = c * d + d + d  # input projection, mask token
    step = d * 4 * d + 4 * d + 4 * d * d + d  # Linear(D, 4D), Mish, Linear(4D, D)
    block = (4 * d * d + 4 * d) + (d * ff + ff + ff * d + d) + 4 * d + 2 * (d * 2 * d + 2 * d)  # attn, ff, 2 LN, 2 FiLM
    return embed + step + layers * block + d * c + c


def test_registry_and_presets():
    assert {"diffusion", "diffusion_gaitdynamics"} <= set(list_models())
    assert "diffusion_transformer" in list_architectures()
    paper = create_model("diffusion_gaitdynamics")
    c = paper.config
    assert (c.n_layers, c.n_heads, c.d_model, c.d_ff, c.dropout, c.layer_norm_eps, c.activation, c.in_channels,
            c.window, c.diffusion_steps, c.prediction, c.schedule) == (
        4, 4, 256, 1024, 0.1, 1e-5, "relu", 75, 150, 1000, "x0", "cosine")
    # GaitDynamics' own count adds 1,052,672 for the cross-attention its layers build but never call
    assert paper.num_parameters() == _preset_params(75, 256, 1024, 4) == 4_776_267
    assert 4_700_000 < paper.num_parameters() < 4_850_000
    default = create_model("diffusion")
    assert (default.config.d_model, default.config.n_layers, default.config.n_heads, default.config.d_ff,
            default.config.in_channels, default.config.window) == (64, 2, 4, 256, 40, 150)
    assert default.num_parameters() == _preset_params(40, 64, 256, 2) == 171_624


# ---- sampling ----------------------------------------------------------------------------------

def test_inpainting_keeps_the_known_values_exactly():
    model = _tiny()
    g = torch.Generator().manual_seed(3)
    known = torch.randn(2, 16, 3, generator=g) * 3 + 1
    mask = torch.rand(2, 16, 3, generator=g) < 0.5
    known_with_gaps = torch.where(mask, known, torch.tensor(float("nan")))  # unknown entries may be NaN
    out = ddim_sample(model, (2, 16, 3), SCHEDULE, steps=10, generator=torch.Generator().manual_seed(0),
                      known=known_with_gaps, known_mask=mask)
    assert torch.isfinite(out).all()
    assert torch.equal(out[mask], known[mask]), "known entries must be bitwise equal"
    assert not torch.equal(out[~mask], known[~mask])
    # a channel mask broadcasts: channel 0 known everywhere, with guidance and eta > 0 as well
    channel = torch.tensor([True, False, False])
    out = ddim_sample(model, (2, 16, 3), SCHEDULE, steps=5, generator=torch.Generator().manual_seed(1),
                      known=known, known_mask=channel, eta=1.0, guidance=lambda x0: x0[..., 1].sum(),
                      guidance_steps=2)
    assert torch.equal(out[..., 0], known[..., 0])
    with pytest.raises(ValueError, match="both known and known_mask"):
        ddim_sample(model, (2, 16, 3), SCHEDULE, steps=2, known=known)
    with pytest.raises(ValueError, match="bool"):
        ddim_sample(model, (2, 16, 3), SCHEDULE, steps=2, known=known, known_mask=mask.float())
    with pytest.raises(ValueError, match="cannot sample 4 channels"):
        ddim_sample(model, (2, 16, 4), SCHEDULE, steps=2)


def test_sampling_is_reproducible_with_a_seed():
    model = _tiny().train()  # sampling switches to eval mode itself, and back
    for eta in (0.0, 1.0):
        def run(seed):
            return ddim_sample(model, (2, 16, 3), SCHEDULE, steps=8, generator=torch.Generator().manual_seed(seed),
                               eta=eta)
        a, b, c = run(7), run(7), run(8)
        assert torch.equal(a, b)
        assert not torch.allclose(a, c)
    assert model.training


def test_guidance_moves_the_channel_toward_its_target():
    k, target = 1, 2.0

    def loss(x0_hat):
        return (x0_hat[..., k].mean() - target) ** 2

    for seed in (0, 1):
        model = _tiny(seed)
        kw = dict(steps=10, generator=None)
        plain = ddim_sample(model, (2, 24, 3), SCHEDULE, **{**kw, "generator": torch.Generator().manual_seed(5)})
        guided = ddim_sample(model, (2, 24, 3), SCHEDULE, **{**kw, "generator": torch.Generator().manual_seed(5)},
                             guidance=loss, guidance_scale=1.0, guidance_steps=5)
        gap_plain, gap_guided = abs(float(plain[..., k].mean()) - target), abs(float(guided[..., k].mean()) - target)
        assert gap_guided < gap_plain - 0.1, (seed, gap_plain, gap_guided)
        assert torch.isfinite(guided).all()


def test_tolerance_loss_counts_only_beyond_the_tolerance():
    target = torch.tensor([[[0.0, 1.0], [2.0, float("nan")]]])
    g = tolerance_loss(target, tolerance=torch.tensor([0.5, 0.1]), weight=torch.tensor([1.0, 0.0]))
    assert float(g(target.nan_to_num())) == 0.0
    x = torch.tensor([[[0.4, 9.0], [3.0, 5.0]]])  # channel 0: 0.4 within 0.5; 1.0 beyond by 0.5; channel 1 weight 0
    assert float(g(x)) == pytest.approx(0.5)


# ---- training pieces ---------------------------------------------------------------------------

class _Zero(nn.Module):
    def forward(self, x, mask=None, t=None):
        return torch.zeros_like(x)


def test_diffusion_loss_targets_and_valid_entries():
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(4, 10, 3, generator=g)
    x0[0, 2, 1] = float("nan")
    valid = torch.ones(4, 10, dtype=torch.bool)
    valid[1, :5] = False
    ok = torch.isfinite(x0) & valid.unsqueeze(-1)
    # a model predicting zeros: the x0 loss is the mean square of the valid clean values, whatever t
    loss = diffusion_loss(_Zero(), x0, SCHEDULE, torch.Generator().manual_seed(1), valid, prediction="x0")
    torch.testing.assert_close(loss, x0[ok].square().mean())
    # ... and the epsilon loss that of the noise drawn after t from the same generator
    loss = diffusion_loss(_Zero(), x0, SCHEDULE, torch.Generator().manual_seed(1), valid, prediction="epsilon")
    replay = torch.Generator().manual_seed(1)
    torch.randint(0, 1000, (4,), generator=replay)
    noise = torch.randn(x0.shape, generator=replay)
    torch.testing.assert_close(loss, noise[ok].square().mean())
    # a real model: finite loss and gradients despite the NaN, and a few steps lower it
    model = _tiny().train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    gen = torch.Generator().manual_seed(2)
    data = torch.sin(torch.linspace(0, 6.28, 10)).repeat(4, 3, 1).transpose(1, 2).contiguous()
    first = None
    for _ in range(30):
        loss = diffusion_loss(model, data, SCHEDULE, gen)
        opt.zero_grad()
        loss.backward()
        opt.step()
        first = first if first is not None else loss.item()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    with torch.no_grad():
        late = float(torch.stack([diffusion_loss(model, data, SCHEDULE, torch.Generator().manual_seed(s))
                                  for s in range(8)]).mean())
    assert late < first
    loss = diffusion_loss(model, x0, SCHEDULE, torch.Generator().manual_seed(3), valid)
    loss.backward()
    assert torch.isfinite(loss) and all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_ema_decay_math():
    model = _tiny()
    start = {k: v.clone() for k, v in model.state_dict().items()}
    ema = EMA(model, decay=0.9)
    ema.update(model)  # constant weights: the average is them, exactly
    assert all(torch.equal(ema.shadow[k], start[k]) for k in start)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.01)
    new = {k: v.clone() for k, v in model.state_dict().items()}
    ema.update(model)  # one update: 0.9 * old + 0.1 * new
    for k in start:
        torch.testing.assert_close(ema.shadow[k], 0.9 * start[k] + 0.1 * new[k])
    for _ in range(200):  # constant weights from now on: the average converges to them
        ema.update(model)
    for k in start:
        torch.testing.assert_close(ema.shadow[k], new[k], rtol=0, atol=1e-6)
    assert ema.updates == 202
    other = _tiny(seed=5)
    ema.copy_to(other)
    x = torch.randn(1, 8, 3)
    with torch.no_grad():
        torch.testing.assert_close(other(x, t=3), model(x, t=3), rtol=1e-5, atol=1e-5)
    restored = EMA(_tiny(seed=6))
    restored.load_state_dict(ema.state_dict())
    assert restored.decay == 0.9 and restored.updates == 202
    assert all(torch.equal(restored.shadow[k], ema.shadow[k]) for k in start)
    assert EMA(model).decay == 0.999


def test_median_fill():
    g = torch.Generator().manual_seed(0)
    windows = torch.randn(9, 6, 2, generator=g)
    windows[0, 0, 0] = float("nan")
    template = median_template(windows)
    assert template.shape == (6, 2)
    assert float(template[1, 1]) == float(windows[:, 1, 1].median())
    assert float(template[0, 0]) == float(windows[1:, 0, 0].median())  # NaN ignored
    per_channel = median_template(windows, per_time=False)
    assert per_channel.shape == (2,)
    x = torch.randn(3, 6, 2, generator=g)
    mask = torch.rand(3, 6, 2, generator=g) < 0.5
    before = x.clone()
    filled = median_fill(x, mask, template)
    assert torch.equal(x, before), "a copy, not in place"
    assert torch.equal(filled[mask], x[mask])
    assert torch.equal(filled, torch.where(mask, x, template.expand(3, 6, 2)))
    filled = median_fill(x, torch.tensor([True, False]), per_channel)
    assert torch.equal(filled[..., 0], x[..., 0]) and (filled[..., 1] == per_channel[1]).all()
    with pytest.raises(ValueError, match=r"\[T, C\]"):
        median_fill(x, mask, torch.zeros(5, 2))


# ---- checkpoints -------------------------------------------------------------------------------

def test_checkpoint_round_trip(tmp_path):
    model = _tiny(prediction="epsilon", activation="gelu")
    path = tmp_path / "diffusion.safetensors"
    save_checkpoint(path, model, {"channels": ["a", "b", "c"]})
    loaded, meta = load_checkpoint(path)
    assert isinstance(loaded, DiffusionTransformer) and loaded.config == model.config
    assert meta["model"]["prediction"] == "epsilon" and meta["model"]["diffusion_steps"] == 1000
    x, t = torch.randn(2, 12, 3), torch.tensor([0, 700])
    with torch.no_grad():
        assert torch.equal(loaded(x, t=t), model(x, t=t))
    a = ddim_sample(model, (1, 12, 3), SCHEDULE, steps=4, generator=torch.Generator().manual_seed(0), clip_x0=5.0)
    b = ddim_sample(loaded, (1, 12, 3), loaded.schedule(), steps=4, generator=torch.Generator().manual_seed(0),
                    clip_x0=5.0)
    assert torch.equal(a, b)
    # the EMA travels in a training state
    ema = EMA(model)
    state = tmp_path / "state.safetensors"
    opt = torch.optim.AdamW(model.parameters())
    save_training_state(state, model, opt, {"ema": ema.state_dict(), "step": 3})
    extra = load_training_state(state, _tiny(seed=9, prediction="epsilon", activation="gelu"), restore_rng=False)
    restored = EMA(model)
    restored.load_state_dict(extra["ema"])
    assert all(torch.equal(restored.shadow[k], ema.shadow[k]) for k in ema.shadow)
