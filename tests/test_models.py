"""gaitcli.models: the interface every registered model keeps (parametrized over ``list_models()``,
so a new model is tested without new test code), the architectures' own properties, the presets'
sizes, and the selective scan."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from torch import nn

from gaitcli.models import (DiffusionTransformer, GaitModel, LSTMConfig, MambaConfig, TransformerConfig,
                            config_from_dict, create_model, list_models, mamba_ssm_backbone_state_dict,
                            model_from_config, selective_scan_parallel, selective_scan_ref)
from gaitcli.models import mamba as mamba_module
from gaitcli.models.registry import list_architectures

MODELS = list_models()


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _length(model: GaitModel, t: int = 48) -> int:
    p = getattr(model.config, "patch_len", 1)
    return max(p, t // p * p)


def _batch(model: GaitModel, b: int = 2, t: int = 48, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, _length(model, t), model.config.in_channels, generator=g)


def _steps(model: GaitModel, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Extra forward inputs: a diffusion denoiser also takes its diffusion step t, one per window."""
    if isinstance(model, DiffusionTransformer):
        return {"t": torch.arange(x.shape[0]) * 97 % model.config.diffusion_steps}
    return {}


def _mask(x: torch.Tensor, every: int = 5) -> torch.Tensor:
    mask = torch.zeros(x.shape[:2], dtype=torch.bool)
    mask[:, 3::every] = True
    mask[0, :4] = True
    return mask


# ---- the registry ------------------------------------------------------------------------------

def test_registry_lists_the_presets():
    assert {"transformer", "transformer_li2025", "transformer_tan2024", "lstm", "mamba", "diffusion",
            "diffusion_gaitdynamics"} <= set(MODELS)
    assert MODELS == sorted(MODELS)
    assert list_models("transformer_*") == ["transformer_li2025", "transformer_tan2024"]
    assert set(list_architectures()) == {"transformer", "lstm", "mamba", "diffusion_transformer"}


def test_create_model_drops_none_overrides_and_names_bad_ones():
    default = create_model("transformer")
    assert create_model("transformer", d_model=None, dropout=None).config == default.config
    assert create_model("transformer", d_model=32, n_heads=2).config.d_model == 32
    with pytest.raises(ValueError, match="no hyperparameter 'hidden_size'"):
        create_model("transformer", hidden_size=3)
    with pytest.raises(ValueError, match="unknown model 'resnet50'"):
        create_model("resnet50")
    with pytest.raises(ValueError, match="multiple of n_heads"):
        create_model("transformer", d_model=30, n_heads=4)
    with pytest.raises(ValueError, match="positions"):
        create_model("transformer", positions="learned")


def test_import_is_light():
    code = "import sys, gaitcli.models as m; m.__all__; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


# ---- the interface, for every registered model -----------------------------------------------

@pytest.mark.parametrize("name", MODELS)
def test_output_shape(name):
    model = create_model(name).eval()
    assert isinstance(model, GaitModel)
    x = _batch(model)
    kw = _steps(model, x)
    with torch.no_grad():
        y = model(x, **kw)
        h = model.encode(x, **kw)
    assert y.shape == (x.shape[0], x.shape[1], model.config.out_channels)
    assert h.dim() == 3 and h.shape[0] == x.shape[0]
    assert torch.isfinite(y).all()
    with pytest.raises(ValueError, match="channels"):
        model(torch.randn(x.shape[0], _length(model), model.config.in_channels + 1), **kw)
    with pytest.raises(ValueError, match="mask"):
        model(x, torch.zeros(x.shape[0], x.shape[1] + 1, dtype=torch.bool), **kw)


@pytest.mark.parametrize("name", MODELS)
def test_gradients_reach_every_parameter(name):
    torch.manual_seed(0)
    model = create_model(name, dropout=0.0).train()
    x = _batch(model)
    for mask in (None, _mask(x)):
        model.zero_grad(set_to_none=True)
        model(x, mask, **_steps(model, x)).square().mean().backward()
        for pname, p in model.named_parameters():
            if mask is None and pname == "mask_token":
                assert p.grad is None, "the mask token is used only where something is masked"
                continue
            assert p.grad is not None and torch.isfinite(p.grad).all(), pname
            assert p.grad.abs().sum() > 0, f"{pname} gets a zero gradient"


@pytest.mark.parametrize("name", MODELS)
def test_mask_hides_the_inputs(name):
    model = create_model(name).eval()
    x = _batch(model)
    mask = _mask(x)
    kw = _steps(model, x)
    with torch.no_grad():
        plain, masked = model(x, **kw), model(x, mask, **kw)
        assert not torch.allclose(plain[mask], masked[mask]), "masking must change the masked positions"
        assert torch.equal(model(x, torch.zeros_like(mask), **kw), plain), "an all-False mask is no mask"
        x2 = x.clone()
        x2[mask] = torch.randn_like(x2[mask]) * 10
        torch.testing.assert_close(model(x2, mask, **kw), masked, msg="masked inputs must not be seen")


@pytest.mark.parametrize("name", MODELS)
def test_reset_head(name):
    model = create_model(name)
    old_head = model.head
    model.reset_head(3)
    assert model.config.out_channels == 3 and model.head is not old_head
    x = _batch(model)
    assert model(x, **_steps(model, x)).shape == (x.shape[0], x.shape[1], 3)
    assert model_from_config(model.config.to_dict()).config.out_channels == 3
    with pytest.raises(ValueError):
        model.reset_head(0)


@pytest.mark.parametrize("name", MODELS)
def test_blocks_and_freezing(name):
    model = create_model(name)
    blocks = model.blocks()
    assert blocks and all(isinstance(b, nn.Module) for b in blocks)
    model.freeze_blocks(1)
    assert not any(p.requires_grad for p in blocks[0].parameters())
    assert all(p.requires_grad for b in blocks[1:] for p in b.parameters())
    assert all(p.requires_grad for p in model.head.parameters())
    assert not model.mask_token.requires_grad
    model.freeze_blocks(0)
    assert all(p.requires_grad for p in model.parameters())
    with pytest.raises(ValueError):
        model.freeze_blocks(len(blocks) + 1)


@pytest.mark.parametrize("name", MODELS)
def test_config_round_trip(name):
    model = create_model(name).eval()
    d = json.loads(json.dumps(model.config.to_dict()))
    assert d["name"] in list_architectures() and d["preset"] == name
    assert config_from_dict(d) == model.config
    rebuilt = model_from_config(d).eval()
    assert rebuilt.config == model.config
    rebuilt.load_state_dict(model.state_dict(), strict=True)
    x = _batch(model)
    kw = _steps(model, x)
    with torch.no_grad():
        assert torch.equal(rebuilt(x, **kw), model(x, **kw))
    with pytest.raises(ValueError, match="unknown"):
        config_from_dict({**d, "n_experts": 8})
    with pytest.raises(ValueError, match="unknown model architecture"):
        config_from_dict({**d, "name": "resnet"})


# ---- a tiny model of each architecture overfits one batch ---------------------------------------

TINY = {
    "transformer": dict(d_model=16, n_heads=2, n_layers=2, d_ff=32, dropout=0.0),
    "lstm": dict(hidden_size=16, num_layers=1, dropout=0.0),
    "mamba": dict(d_model=16, n_layers=2, d_state=8, dropout=0.0),
}


@pytest.mark.parametrize("arch", sorted(TINY))
def test_tiny_model_overfits_one_batch(arch):
    torch.manual_seed(0)
    model = create_model(arch, in_channels=3, out_channels=2, **TINY[arch])
    x = torch.randn(4, 32, 3)
    t = torch.linspace(0, 6.283, 32)
    y = torch.stack([torch.sin(t + x[:, :1, 0]), torch.cos(2 * t) * x[:, :1, 1]], dim=-1)  # [4, 32, 2]
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(300):
        loss = (model(x) - y).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if losses[-1] < losses[0] / 20:
            break
    assert losses[-1] < losses[0] / 10, f"{arch}: loss {losses[0]:.3g} -> {losses[-1]:.3g}"


# ---- the transformer ---------------------------------------------------------------------------

@pytest.mark.parametrize("norm_first", [False, True])
def test_encoder_block_is_pytorchs_encoder_layer(norm_first):
    """Same math and key names as nn.TransformerEncoderLayer(batch_first=True)."""
    torch.manual_seed(0)
    model = create_model("transformer", d_model=16, n_heads=4, n_layers=1, d_ff=32, norm_first=norm_first).eval()
    ours = model.layers[0]
    theirs = nn.TransformerEncoderLayer(16, 4, 32, dropout=0.1, batch_first=True, norm_first=norm_first).eval()
    theirs.load_state_dict(ours.state_dict(), strict=True)
    h = torch.randn(2, 10, 16)
    with torch.no_grad():
        torch.testing.assert_close(ours(h), theirs(h), rtol=1e-5, atol=1e-5)


def test_rotary_and_sinusoidal_positions():
    x = torch.randn(2, 32, 6)
    outs = {}
    for positions in ("sinusoidal", "rotary"):
        torch.manual_seed(0)
        model = create_model("transformer", positions=positions, dropout=0.0)
        y = model(x)
        assert y.shape == (2, 32, 6)
        y.square().mean().backward()
        assert all(p.grad is not None for n, p in model.named_parameters() if n != "mask_token")
        outs[positions] = y.detach()
    assert not torch.allclose(outs["sinusoidal"], outs["rotary"])
    # positions matter: a permuted sequence is not just a permuted output
    model = create_model("transformer", positions="rotary").eval()
    with torch.no_grad():
        assert not torch.allclose(model(x.flip(1)).flip(1), model(x), atol=1e-4)
    with pytest.raises(ValueError, match="even head dimension"):
        create_model("transformer", positions="rotary", d_model=12, n_heads=4)


def test_patches_and_time_length():
    model = create_model("transformer", patch_len=4)
    assert model(torch.randn(2, 64, 6)).shape == (2, 64, 6)
    h = model.encode(torch.randn(2, 64, 6))
    assert h.shape == (2, 16, 64)
    with pytest.raises(ValueError, match="not a multiple of patch_len=4"):
        model(torch.randn(2, 62, 6))
    # a patch is masked when any of its steps is
    model.eval()
    x = torch.randn(1, 16, 6)
    one = torch.zeros(1, 16, dtype=torch.bool)
    one[0, 5] = True
    whole = one.clone()
    whole[0, 4:8] = True
    with torch.no_grad():
        torch.testing.assert_close(model(x, one), model(x, whole))


def _block_params(d, ff, c_in, c_out):
    attn = 3 * d * d + 3 * d + d * d + d
    ffn = d * ff + ff + ff * d + d
    return attn + ffn + 4 * d, c_in * d + d + d + d * c_out + c_out  # per block; embed + mask + head


def test_li2025_preset_matches_the_paper():
    model = create_model("transformer_li2025")
    c = model.config
    assert (c.n_layers, c.n_heads, c.d_model, c.d_ff, c.dropout, c.layer_norm_eps, c.activation, c.patch_len,
            c.window, c.in_channels, c.positions, c.norm_first) == (
        8, 12, 24, 2048, 0.1, 1e-5, "relu", 1, 64, 18, "sinusoidal", False)
    per_block, rest = _block_params(24, 2048, 18, 18)
    assert per_block == 102_872
    assert model.num_parameters() == 8 * per_block + rest == 823_906
    # "We first froze 75% of the pre-trained model's parameters by freezing the first six layers"
    model.freeze_blocks(6)
    frozen = 1 - model.num_parameters(trainable_only=True) / model.num_parameters()
    assert frozen == pytest.approx(0.75, abs=0.005)
    assert model(torch.randn(2, 64, 18)).shape == (2, 64, 18)


def test_tan2024_preset_matches_the_paper():
    model = create_model("transformer_tan2024")
    c = model.config
    assert (c.n_layers, c.n_heads, c.d_model, c.d_ff, c.window, c.in_channels, c.patch_len) == (6, 8, 192, 512, 128, 48, 1)
    per_block, rest = _block_params(192, 512, 48, 48)
    # "The total number of trainable parameters is 2 million."
    assert model.num_parameters() == 6 * per_block + rest == 2_096_688


# ---- the LSTM ----------------------------------------------------------------------------------

def test_lstm_preset_and_options():
    model = create_model("lstm")
    assert isinstance(model.config, LSTMConfig)
    assert (model.config.hidden_size, model.config.num_layers, model.config.bidirectional) == (128, 2, True)
    assert model.head.in_features == 256
    uni = create_model("lstm", bidirectional=False, input_proj=32, hidden_size=8).eval()
    x = torch.randn(1, 20, 6)
    with torch.no_grad():
        y = uni(x)
        x2 = x.clone()
        x2[:, 10:] += 1.0
        assert torch.equal(uni(x2)[:, :10], y[:, :10]), "a unidirectional LSTM is causal"


# ---- Mamba -------------------------------------------------------------------------------------

def test_mamba_preset_and_state_dict_keys():
    model = create_model("mamba")
    c = model.config
    assert isinstance(c, MambaConfig)
    assert (c.d_model, c.n_layers, c.d_state, c.d_conv, c.expand, c.bidirectional) == (64, 4, 16, 4, 2, True)
    keys = set(model.state_dict())
    mixer = {"in_proj.weight", "conv1d.weight", "conv1d.bias", "x_proj.weight", "dt_proj.weight", "dt_proj.bias",
             "A_log", "D", "out_proj.weight"}
    for i in range(c.n_layers):
        for mod in ("mixer", "mixer_bwd"):
            assert {f"layers.{i}.{mod}.{k}" for k in mixer} <= keys
        assert f"layers.{i}.norm.weight" in keys
    assert "norm_f.weight" in keys
    m = model.layers[0].mixer
    assert m.A_log.shape == (128, 16) and m.x_proj.out_features == 4 + 32 and m.dt_proj.in_features == 4
    torch.testing.assert_close(-torch.exp(m.A_log[0].detach()), -torch.arange(1.0, 17.0))


def test_mamba_direction():
    x = torch.randn(1, 40, 6)
    x2 = x.clone()
    x2[:, 25:] += 1.0
    torch.manual_seed(0)
    causal = create_model("mamba", bidirectional=False).eval()
    both = create_model("mamba").eval()
    with torch.no_grad():
        torch.testing.assert_close(causal(x2)[:, :25], causal(x)[:, :25])
        assert not torch.allclose(both(x2)[:, :25], both(x)[:, :25]), "bidirectional sees the future"
        assert both(x).shape == causal(x).shape == (1, 40, 6)
    assert both.num_parameters() > causal.num_parameters()


def test_mamba_loads_mamba_ssm_backbone_weights():
    torch.manual_seed(0)
    source = create_model("mamba", bidirectional=False, n_layers=2)
    lm = {f"backbone.{k}": v for k, v in source.state_dict().items() if k.startswith(("layers.", "norm_f."))}
    lm["backbone.embedding.weight"] = torch.randn(50, 64)
    lm["lm_head.weight"] = lm["backbone.embedding.weight"]
    target = create_model("mamba", n_layers=2)
    missing, unexpected = target.load_state_dict(mamba_ssm_backbone_state_dict(lm), strict=False)
    assert not unexpected
    assert set(missing) == {"mask_token", "embed.weight", "embed.bias", "head.weight", "head.bias"}
    for k, v in source.state_dict().items():
        if ".mixer." in k:
            assert torch.equal(target.state_dict()[k], v)
            assert torch.equal(target.state_dict()[k.replace(".mixer.", ".mixer_bwd.")], v)


def _scan_inputs(b, d, length, n, dtype, bc="variable", seed=0):
    g = torch.Generator().manual_seed(seed)

    def r(*shape):
        return torch.randn(*shape, generator=g, dtype=dtype)

    u, delta, z = r(b, d, length), r(b, d, length), r(b, d, length)
    A = -torch.exp(r(d, n))
    if bc == "variable":
        B, C = r(b, n, length), r(b, n, length)
    elif bc == "grouped":
        B, C = r(b, 2, n, length), r(b, 2, n, length)
    else:
        B, C = r(d, n), r(d, n)
    return u, delta, A, B, C, r(d), z, r(d)


@pytest.mark.parametrize("length", [1, 2, 7, 64, 181, 512])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_parallel_scan_equals_the_recurrence(length, dtype):
    u, delta, A, B, C, D, z, bias = _scan_inputs(2, 16, length, 8, dtype)
    tol = dict(rtol=1e-10, atol=1e-10) if dtype == torch.float64 else dict(rtol=1e-5, atol=1e-5)
    for with_dz in (True, False):
        Dx, zx = (D, z) if with_dz else (None, None)
        ref, h_ref = selective_scan_ref(u, delta, A, B, C, Dx, zx, bias, True, return_last_state=True)
        par, h_par = selective_scan_parallel(u, delta, A, B, C, Dx, zx, bias, True, return_last_state=True)
        assert par.dtype == dtype and par.shape == (2, 16, length)
        torch.testing.assert_close(par, ref, **tol)
        torch.testing.assert_close(h_par, h_ref, **tol)
    # without the softplus and bias, and with every chunk size
    ref = selective_scan_ref(u, delta.abs(), A, B, C, D, z)
    for chunk in (1, 3, 16, length):
        torch.testing.assert_close(selective_scan_parallel(u, delta.abs(), A, B, C, D, z, chunk_size=chunk), ref, **tol)


def test_parallel_scan_float32_against_float64():
    args64 = _scan_inputs(2, 16, 512, 16, torch.float64, seed=1)
    exact = selective_scan_ref(*args64, delta_softplus=True)
    fast = selective_scan_parallel(*[a.float() for a in args64], delta_softplus=True)
    torch.testing.assert_close(fast.double(), exact, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("bc", ["grouped", "constant"])
def test_parallel_scan_other_b_c_layouts(bc):
    args = _scan_inputs(2, 8, 50, 4, torch.float64, bc=bc)
    torch.testing.assert_close(selective_scan_parallel(*args, delta_softplus=True),
                               selective_scan_ref(*args, delta_softplus=True), rtol=1e-10, atol=1e-10)


def test_parallel_scan_gradients_equal_the_recurrence():
    args = [a.requires_grad_() for a in _scan_inputs(2, 8, 70, 4, torch.float64)]
    gref = torch.autograd.grad(selective_scan_ref(*args, delta_softplus=True).sin().sum(), args)
    gpar = torch.autograd.grad(selective_scan_parallel(*args, delta_softplus=True).sin().sum(), args)
    for a, b in zip(gpar, gref):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)


def test_parallel_scan_is_stable_with_strong_decay():
    u, delta, A, B, C, D, z, bias = _scan_inputs(1, 4, 300, 4, torch.float32)
    delta = delta.abs() * 50  # decays down to exp(-50 * |A|): exp(-S) alone would overflow
    out = selective_scan_parallel(u, delta, A * 20, B, C, D, z)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, selective_scan_ref(u, delta, A * 20, B, C, D, z), rtol=1e-5, atol=1e-5)


def test_selective_scan_dispatch(monkeypatch):
    args = _scan_inputs(1, 4, 10, 2, torch.float32)
    calls = []

    def fake_cuda(*a):
        calls.append(a)
        return selective_scan_ref(*a)

    monkeypatch.setattr(mamba_module, "_cuda_scan", None)  # mamba_ssm not installed
    assert not mamba_module.mamba_ssm_available()
    with pytest.raises(RuntimeError, match="mamba_ssm"):
        mamba_module.selective_scan(*args, impl="cuda")
    monkeypatch.setattr(mamba_module, "_cuda_scan", fake_cuda)  # installed, but CPU tensors: not used
    mamba_module.selective_scan(*args)
    assert not calls
    out = mamba_module.selective_scan(*args, delta_softplus=True, impl="cuda")
    assert len(calls) == 1
    torch.testing.assert_close(out, selective_scan_ref(*args, delta_softplus=True))
    model = create_model("mamba", n_layers=1).eval()
    x = torch.randn(1, 30, 6)
    with torch.no_grad():
        y = model(x)
        model.scan_impl = "ref"
        torch.testing.assert_close(model(x), y, rtol=1e-5, atol=1e-5)


def test_config_classes_validate():
    assert TransformerConfig().name == "transformer"
    with pytest.raises(ValueError, match="name"):
        TransformerConfig(name="lstm")
    with pytest.raises(ValueError, match="dropout"):
        LSTMConfig(dropout=1.5)
    with pytest.raises(ValueError, match="in_channels"):
        MambaConfig(in_channels=0)
    with pytest.raises(ValueError, match="bidirectional"):
        MambaConfig(bidirectional="yes")
