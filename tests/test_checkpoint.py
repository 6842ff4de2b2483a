"""gaitcli.models.checkpoint: exact round trips, self-describing metadata, every kind of bad file
as a ReadError naming the file, no pickle anywhere, and resumable training states."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from gaitcli import __version__
from gaitcli.errors import ReadError
from gaitcli.models import (DiffusionTransformer, create_model, list_models, load_checkpoint, load_training_state,
                            read_checkpoint_metadata, save_checkpoint, save_training_state)
from gaitcli.models import checkpoint as ckpt

META = {"channels": ["knee_angle_r", "knee_angle_l"], "units": {"knee_angle_r": "deg"}, "sample_rate": 100.0,
        "normalization": {"mean": np.array([1.5, -2.0]), "std": [3.0, 4.0]}, "epochs": np.int64(12)}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _tiny(arch: str = "transformer", **kw):
    sizes = {"transformer": dict(d_model=16, n_heads=2, n_layers=2, d_ff=32),
             "lstm": dict(hidden_size=8, num_layers=2), "mamba": dict(d_model=16, n_layers=2, d_state=4)}
    torch.manual_seed(0)
    return create_model(arch, in_channels=2, out_channels=2, **{**sizes[arch], **kw})


@pytest.fixture
def saved(tmp_path) -> Path:
    path = tmp_path / "tiny.safetensors"
    save_checkpoint(path, _tiny(), META)
    return path


def _expect_read_error(path: Path, match: str | None = None) -> ReadError:
    with pytest.raises(ReadError) as info:
        load_checkpoint(path)
    err = info.value
    assert type(err) is ReadError
    assert path.name in str(err) and "\n" not in str(err)
    if match:
        assert match in err.reason, err.reason
    return err


# ---- round trips -------------------------------------------------------------------------------

@pytest.mark.parametrize("name", list_models())
def test_round_trip_is_exact(tmp_path, name):
    torch.manual_seed(0)
    model = create_model(name, in_channels=4, out_channels=3).eval()
    path = tmp_path / f"{name}.safetensors"
    save_checkpoint(path, model, META)
    loaded, meta = load_checkpoint(path)
    assert type(loaded) is type(model) and loaded.config == model.config and not loaded.training
    a, b = model.state_dict(), loaded.state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) and a[k].dtype == b[k].dtype for k in a)
    x = torch.randn(2, 16, 4)
    kw = {"t": torch.tensor([0, 500])} if isinstance(model, DiffusionTransformer) else {}  # a denoiser's step
    with torch.no_grad():
        assert torch.equal(loaded(x, **kw), model(x, **kw))
    assert meta == read_checkpoint_metadata(path)
    assert [p.name for p in tmp_path.iterdir()] == [path.name], "no temporary file left behind"


def test_metadata_is_preserved(saved):
    meta = read_checkpoint_metadata(saved)
    assert meta["format"] == "gait-checkpoint" and meta["format_version"] == 1
    assert meta["gait_version"] == __version__
    assert meta["channels"] == META["channels"] and meta["units"] == META["units"]
    assert meta["sample_rate"] == 100.0 and meta["epochs"] == 12
    assert meta["normalization"] == {"mean": [1.5, -2.0], "std": [3.0, 4.0]}
    assert meta["model"] == _tiny().config.to_dict()
    # plain safetensors: any reader sees the weights and the JSON
    from safetensors import safe_open

    with safe_open(str(saved), framework="pt") as f:
        assert json.loads(f.metadata()["gait"])["model"]["name"] == "transformer"
        assert "head.weight" in set(f.keys())


def test_reading_metadata_imports_no_torch(saved):
    code = (f"import sys, json; from gaitcli.models import read_checkpoint_metadata as r; "
            f"m = r({str(saved)!r}); print(json.dumps([m['model']['name'], 'torch' in sys.modules, "
            f"'safetensors' in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert json.loads(out) == ["transformer", False, False]


def test_save_is_atomic_and_overwrites(tmp_path, monkeypatch):
    path = tmp_path / "m.safetensors"
    save_checkpoint(path, _tiny(), {"run": 1})
    save_checkpoint(path, _tiny(), {"run": 2})
    assert read_checkpoint_metadata(path)["run"] == 2

    def fail(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(ckpt.os, "replace", fail)
    with pytest.raises(OSError):
        save_checkpoint(path, _tiny(), {"run": 3})
    monkeypatch.undo()
    assert read_checkpoint_metadata(path)["run"] == 2, "a failed save leaves the old file alone"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.safetensors"]


def test_save_refuses_bad_metadata(tmp_path):
    path = tmp_path / "m.safetensors"
    with pytest.raises(ValueError, match="JSON"):
        save_checkpoint(path, _tiny(), {"callback": object()})
    with pytest.raises(ValueError, match="model.config"):
        save_checkpoint(path, _tiny(), {"model": {"name": "lstm"}})
    assert not path.exists()
    save_checkpoint(path, _tiny(), {"model": _tiny().config.to_dict(), "format": "ignored"})
    assert read_checkpoint_metadata(path)["format"] == "gait-checkpoint"


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float64])
def test_weights_load_in_the_dtype_they_were_saved_in(tmp_path, dtype):
    model = _tiny("mamba").to(dtype)
    path = tmp_path / "m.safetensors"
    save_checkpoint(path, model)
    loaded, _ = load_checkpoint(path, map_location=None)
    assert all(p.dtype == dtype for p in loaded.parameters())
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), loaded.state_dict().values()))


# ---- bad files ---------------------------------------------------------------------------------

def test_missing_empty_directory(tmp_path):
    _expect_read_error(tmp_path / "nope.safetensors", "no such file")
    (tmp_path / "empty.safetensors").write_bytes(b"")
    _expect_read_error(tmp_path / "empty.safetensors", "empty file")
    (tmp_path / "dir.safetensors").mkdir()
    _expect_read_error(tmp_path / "dir.safetensors", "directory")
    for path in (tmp_path / "nope.safetensors", tmp_path / "empty.safetensors"):
        with pytest.raises(ReadError, match=path.name):
            read_checkpoint_metadata(path)


def test_truncated(saved, tmp_path):
    data = saved.read_bytes()
    header_end = 8 + int.from_bytes(data[:8], "little")
    for cut in (3, 8, 100, header_end - 1, header_end, header_end + 10, len(data) // 2, len(data) - 1):
        bad = tmp_path / f"cut{cut}.safetensors"
        bad.write_bytes(data[:cut])
        _expect_read_error(bad)
    bad = tmp_path / "long.safetensors"
    bad.write_bytes(data + b"\0" * 16)
    _expect_read_error(bad, "unexpected bytes")


def test_random_bytes(tmp_path):
    rng = np.random.default_rng(0)
    for i, n in enumerate((1, 7, 8, 64, 5000)):
        bad = tmp_path / f"random{i}.safetensors"
        bad.write_bytes(rng.bytes(n))
        _expect_read_error(bad)
    text = tmp_path / "notes.safetensors"
    text.write_text("hello, this is not a checkpoint\n" * 10)
    _expect_read_error(text)


def test_every_flipped_header_byte_is_caught(tmp_path):
    """Flip one bit of each header byte in turn (ASCII stays ASCII, so this reaches past the JSON
    parser): every variant is a ReadError, none loads silently changed weights or config."""
    bad = tmp_path / "flipped.safetensors"
    save_checkpoint(bad, _tiny("lstm", num_layers=1), {"channels": ["a", "b"]})
    data = bad.read_bytes()
    header_end = 8 + int.from_bytes(data[:8], "little")
    kinds = set()
    with open(bad, "r+b") as f:  # patch in place: rewriting the file each time is slow on some filesystems
        for i in range(header_end):
            f.seek(i)
            f.write(bytes([data[i] ^ 0x01]))
            f.flush()
            with pytest.raises(ReadError) as info:
                load_checkpoint(bad)
            assert "flipped.safetensors" in str(info.value)
            kinds.add(info.value.reason.split(":")[0])
            f.seek(i)
            f.write(data[i:i + 1])
    assert bad.read_bytes() == data
    assert len(kinds) >= 4, kinds  # JSON, checksum, foreign, truncation, safetensors' own checks...


def test_flipped_weight_bytes_are_caught(saved, tmp_path):
    data = bytearray(saved.read_bytes())
    header_end = 8 + int.from_bytes(data[:8], "little")
    bad = tmp_path / "bitrot.safetensors"
    for i in np.linspace(header_end, len(data) - 1, 7).astype(int):
        flipped = bytearray(data)
        flipped[i] ^= 0x10
        bad.write_bytes(flipped)
        _expect_read_error(bad, "checksum mismatch")


def test_foreign_safetensors(tmp_path):
    plain = tmp_path / "plain.safetensors"
    save_file({"w": torch.zeros(3)}, str(plain))
    _expect_read_error(plain, "not a gait checkpoint")
    other = tmp_path / "other.safetensors"
    save_file(_tiny().state_dict(), str(other), metadata={"format": "pt"})
    _expect_read_error(other, "not a gait checkpoint")
    with pytest.raises(ReadError, match="not a gait checkpoint"):
        read_checkpoint_metadata(other)


def _write_raw(path: Path, model, gait_changes: dict, tensors=None):
    gait = ckpt._gait_metadata_for(ckpt.FORMAT, model, None)
    gait.update(gait_changes)
    ckpt._write(path, tensors if tensors is not None else {k: v.contiguous() for k, v in model.state_dict().items()},
                gait)


def test_unknown_model_name(tmp_path):
    model = _tiny()
    path = tmp_path / "resnet.safetensors"
    _write_raw(path, model, {"model": {**model.config.to_dict(), "name": "resnet"}})
    err = _expect_read_error(path, "unknown model architecture 'resnet'")
    assert "transformer" in err.reason
    assert read_checkpoint_metadata(path)["model"]["name"] == "resnet"


def test_bad_configs_and_weights(tmp_path):
    model = _tiny()
    cfg = model.config.to_dict()
    cases = {
        "noconfig": ({"model": None}, None, "no model config"),
        "heads": ({"model": {**cfg, "n_heads": 3}}, None, "invalid transformer model config"),
        "newkey": ({"model": {**cfg, "n_experts": 4}}, None, "invalid transformer model config"),
        "future": ({"format_version": 2}, None, "newer gait"),
        "wide": ({"model": {**cfg, "d_model": 32}}, None, "shape mismatch"),
        "missing": ({}, {k: v for k, v in model.state_dict().items() if k != "head.bias"}, "missing head.bias"),
        "extra": ({}, {**model.state_dict(), "bonus": torch.zeros(1)}, "unexpected bonus"),
    }
    for name, (changes, tensors, reason) in cases.items():
        path = tmp_path / f"{name}.safetensors"
        _write_raw(path, model, changes, tensors)
        _expect_read_error(path, reason)


def test_loading_never_unpickles(saved, tmp_path, monkeypatch):
    state = tmp_path / "state.safetensors"
    model = _tiny()
    opt = torch.optim.Adam(model.parameters())
    model(torch.randn(1, 8, 2)).sum().backward()
    opt.step()
    save_training_state(state, model, opt, {"step": 1})

    def boom(*a, **k):
        raise AssertionError("unpickling")

    class NoUnpickler:
        def __init__(self, *a, **k):
            boom()

    for mod, attr in ((pickle, "load"), (pickle, "loads"), (torch, "load")):
        monkeypatch.setattr(mod, attr, boom)
    monkeypatch.setattr(pickle, "Unpickler", NoUnpickler)
    load_checkpoint(saved)
    load_checkpoint(state)
    assert load_training_state(state, _tiny(), torch.optim.Adam(_tiny().parameters())) == {"step": 1}


def test_read_error_is_the_only_exception(tmp_path):
    """Whatever the bytes, load_checkpoint raises ReadError or succeeds (seeded fuzz over a real file)."""
    path = tmp_path / "m.safetensors"
    save_checkpoint(path, _tiny("lstm"))
    data = path.read_bytes()
    rng = np.random.default_rng(1)
    bad = tmp_path / "fuzz.safetensors"
    for _ in range(60):
        mutated = bytearray(data)
        for i in rng.integers(0, len(data), size=int(rng.integers(1, 4))):
            mutated[i] = int(rng.integers(0, 256))
        if rng.random() < 0.3:
            mutated = mutated[: int(rng.integers(0, len(mutated)))]
        bad.write_bytes(bytes(mutated))
        try:
            load_checkpoint(bad)
        except ReadError:
            pass


# ---- training state ----------------------------------------------------------------------------

def _step(model, opt, x, y):
    opt.zero_grad()
    (model(x) - y).square().mean().backward()
    opt.step()


@pytest.mark.parametrize("arch", ["transformer", "mamba", "lstm"])
def test_training_state_resumes_exactly(tmp_path, arch):
    x, y = torch.randn(3, 16, 2), torch.randn(3, 16, 2)
    model = _tiny(arch, dropout=0.2).train()  # dropout: the RNG state must come back too
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, betas=(0.8, 0.99), weight_decay=1e-3)
    for _ in range(3):
        _step(model, opt, x, y)
    path = tmp_path / "state.safetensors"
    extra = {"step": 3, "best_val_loss": 0.25, "history": [1.0, 0.5], "never": float("inf"),
             "scheduler": {"last_epoch": 3, "base_lrs": [1e-2]}, "ema": torch.arange(4.0)}
    save_training_state(path, model, opt, extra)
    _step(model, opt, x, y)  # the original run continues

    torch.manual_seed(123)  # a fresh process: other weights, other RNG state
    fresh = create_model(arch, **{k: v for k, v in model.config.to_dict().items() if k not in ("name", "preset")}).train()
    fresh_opt = torch.optim.AdamW(fresh.parameters(), lr=1.0)
    got = load_training_state(path, fresh, fresh_opt)
    assert got.keys() == extra.keys() and torch.equal(got["ema"], extra["ema"])
    assert {k: v for k, v in got.items() if k != "ema"} == {k: v for k, v in extra.items() if k != "ema"}
    assert fresh_opt.param_groups[0]["betas"] == (0.8, 0.99) and fresh_opt.param_groups[0]["lr"] == 1e-2
    _step(fresh, fresh_opt, x, y)
    for (k, a), b in zip(model.state_dict().items(), fresh.state_dict().values()):
        assert torch.equal(a, b), k
    assert read_checkpoint_metadata(path)["format"] == "gait-training-state"


def test_training_state_checks(tmp_path, saved):
    model = _tiny()
    opt = torch.optim.Adam(model.parameters())
    path = tmp_path / "state.safetensors"
    save_training_state(path, model, opt, {"step": 0})
    loaded, _ = load_checkpoint(path)  # the weights of a training state load as a model
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), loaded.state_dict().values()))
    with pytest.raises(ReadError, match="not a training state"):
        load_training_state(saved, model, opt)
    with pytest.raises(ReadError, match="SGD"):
        load_training_state(path, model, torch.optim.SGD(model.parameters(), lr=0.1))
    with pytest.raises(ReadError, match="'lstm' model"):
        load_training_state(path, _tiny("lstm"), None)
    with pytest.raises(ReadError, match="shape mismatch"):
        load_training_state(path, _tiny(d_model=32), None)
    with pytest.raises(ValueError, match="cannot store extra.fn"):
        save_training_state(tmp_path / "x.safetensors", model, opt, {"fn": print})
    assert not (tmp_path / "x.safetensors").exists()
    os.remove(path)
    with pytest.raises(ReadError, match="no such file"):
        load_training_state(path, model, opt)
