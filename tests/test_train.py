"""Training: the loop's pieces, pretraining and fine-tuning workflows, resume, freezing."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch


from gaitcli.models.registry import create_model
from gaitcli.train import loop


def test_lr_schedule_warms_up_then_decays_to_the_floor():
    cfg = loop.TrainConfig(lr=1e-3, warmup_steps=10, min_lr_ratio=0.01)
    lrs = [loop.lr_at(s, 110, cfg) for s in range(111)]
    assert lrs[0] == pytest.approx(1e-4) and lrs[9] == pytest.approx(1e-3)
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:]))
    assert lrs[110] == pytest.approx(1e-5)


@pytest.mark.parametrize("mode", ["random", "contiguous"])
def test_masks_hide_the_requested_fraction(mode):
    g = torch.Generator().manual_seed(0)
    mask = loop.random_mask(8, 64, 0.125, mode, g, torch.device("cpu"))
    assert mask.shape == (8, 64) and (mask.sum(dim=1) == 8).all()
    if mode == "contiguous":
        for row in mask:
            idx = torch.nonzero(row).flatten()
            assert (idx[-1] - idx[0]).item() == 7


def test_masked_mse_ignores_invalid_labels():
    pred = torch.zeros(2, 3, 1)
    target = torch.tensor([[[1.0], [float("nan")], [1.0]], [[1.0], [1.0], [float("nan")]]])
    assert float(loop.masked_mse(pred, target, torch.isfinite(target))) == pytest.approx(1.0)


def test_info_nce_prefers_matching_views():
    z = torch.randn(16, 8)
    assert float(loop.info_nce(z, z + 0.01 * torch.randn(16, 8), 0.1)) < float(loop.info_nce(z, torch.randn(16, 8), 0.1))


def _data(n=96, t=32, c=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, t, c)).astype(np.float32)
    y = np.cumsum(x, axis=1)[..., :2].astype(np.float32) / 5
    return x, y


def test_fit_reduces_finetune_loss_and_keeps_best_weights():
    x, y = _data()
    model = create_model("lstm", in_channels=3, out_channels=2, hidden_size=16, num_layers=1)
    cfg = loop.TrainConfig(task="finetune", epochs=15, lr=1e-2, warmup_steps=2, batch_size=32, patience=0)
    before = loop.evaluate(model, torch.as_tensor(x), torch.as_tensor(y), cfg)
    result = loop.fit(model, x, y, x[:32], y[:32], cfg)
    after = loop.evaluate(model, torch.as_tensor(x[:32]), torch.as_tensor(y[:32]), cfg)
    assert after < 0.5 * before and after == pytest.approx(result.best_val_loss, rel=1e-4)


@pytest.mark.parametrize("task", ["pretrain", "contrastive"])
def test_self_supervised_tasks_run_and_learn(task):
    x, _ = _data()
    model = create_model("transformer", in_channels=3, out_channels=3, d_model=16, n_heads=2, n_layers=2, d_ff=32)
    cfg = loop.TrainConfig(task=task, epochs=8, lr=3e-3, warmup_steps=2, batch_size=32, patience=0)
    result = loop.fit(model, x, None, None, None, cfg)
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]


def test_freeze_first_blocks_and_head_only():
    model = create_model("transformer", in_channels=3, out_channels=2, d_model=16, n_heads=2, n_layers=3, d_ff=32)
    loop.freeze(model, 2)
    blocks = list(model.blocks())
    assert not any(p.requires_grad for b in blocks[:2] for p in b.parameters())
    assert all(p.requires_grad for p in blocks[2].parameters())
    assert all(p.requires_grad for p in model.head.parameters())
    loop.freeze(model, 0, head_only=True)
    assert [p.requires_grad for p in model.parameters()].count(True) == len(list(model.head.parameters()))
    with pytest.raises(Exception, match="only 3 blocks"):
        loop.freeze(model, 4)


def test_resume_continues_where_it_stopped(tmp_path):
    x, y = _data()
    make = lambda: create_model("lstm", in_channels=3, out_channels=2, hidden_size=8, num_layers=1)  # noqa: E731
    cfg = loop.TrainConfig(task="finetune", epochs=6, lr=1e-2, warmup_steps=2, batch_size=32, patience=0)
    torch.manual_seed(0)
    full = make()
    full_result = loop.fit(full, x, y, x[:32], y[:32], cfg)
    state = tmp_path / "run.state.safetensors"
    torch.manual_seed(0)
    first = make()
    loop.fit(first, x, y, x[:32], y[:32], loop.TrainConfig(**{**cfg.__dict__, "epochs": 3}), state_path=state)
    torch.manual_seed(0)
    resumed = make()
    result = loop.fit(resumed, x, y, x[:32], y[:32], cfg, state_path=state, resume=True)
    assert result.epochs_run == 6 and len(result.history) == 6
    assert [h["epoch"] for h in result.history] == list(range(6))
    assert math.isfinite(result.best_val_loss) and full_result.epochs_run == 6


def test_pretrain_and_finetune_workflows_write_self_describing_checkpoints(tiny_models):
    from gaitcli.models.checkpoint import load_checkpoint, read_checkpoint_metadata

    pre = read_checkpoint_metadata(tiny_models["pretrained"])
    tuned = read_checkpoint_metadata(tiny_models["finetuned"])
    assert pre["task"] == "pretrain" and tuned["task"] == "finetune"
    assert tuned["inputs"] == pre["inputs"] and len(tuned["outputs"]) == 6
    assert tuned["split"]["test"] == [s for s in pre["split"]["test"] if s in tuned["data_subjects"]]
    assert not set(tuned["split"]["test"]) & set(tuned["split"]["train"])
    assert not set(pre["split"]["test"]) & set(pre["split"]["train"]), "pretraining never saw test subjects"
    assert tuned["units"]["knee_angle_r_moment"] == "N·m/kg"
    assert tuned["test_metrics"]["summary"], "held-out metrics are stored with the model"
    model, meta = load_checkpoint(tiny_models["finetuned"])
    assert meta["output_norm"]["channels"] == tuned["outputs"]


def test_ctrl_c_leaves_a_resumable_state(tmp_path):
    x, y = _data()
    state = tmp_path / "run.state.safetensors"
    cfg = loop.TrainConfig(task="finetune", epochs=5, lr=1e-2, warmup_steps=2, batch_size=32, patience=0)

    def interrupt_after_two(epoch, epochs, train_loss, val_loss):
        if epoch == 2:
            raise KeyboardInterrupt

    model = create_model("lstm", in_channels=3, out_channels=2, hidden_size=8, num_layers=1)
    result = loop.fit(model, x, y, x[:32], y[:32], cfg, state_path=state, on_progress=interrupt_after_two)
    assert result.interrupted and state.exists()
    resumed = create_model("lstm", in_channels=3, out_channels=2, hidden_size=8, num_layers=1)
    again = loop.fit(resumed, x, y, x[:32], y[:32], cfg, state_path=state, resume=True)
    assert not again.interrupted and again.epochs_run == 5
    assert [h["epoch"] for h in again.history] == [0, 1, 2, 3, 4]


def test_cycle_unit_trains_predicts_and_evaluates(tiny_models, real, tmp_path):
    """Whole time-normalised cycles instead of windows, from pretraining to predict."""
    import numpy as np

    from gaitcli.eval.evaluate import evaluate
    from gaitcli.models.inference import Predictor
    from gaitcli.train.workflows import DataSpec, finetune, pretrain

    small = {"d_model": 16, "n_heads": 2, "n_layers": 1, "d_ff": 16}
    pre = pretrain([tiny_models["data"]], tmp_path / "p.safetensors", "transformer", DataSpec(unit="cycles"),
                   loop.TrainConfig(task="pretrain", epochs=1, warmup_steps=2), model_overrides=small)
    assert pre["unit"] == "cycles" and pre["window"] == 101
    tuned = finetune(tmp_path / "p.safetensors", [tiny_models["data"]], tmp_path / "t.safetensors", DataSpec(),
                     loop.TrainConfig(task="finetune", epochs=1, warmup_steps=2))
    assert tuned["unit"] == "cycles", "fine-tuning keeps the pretrained model's unit"
    prediction = Predictor(tmp_path / "t.safetensors").predict(
        real / "opensim-core/ID_test_subject01/subject01_walk1_ik.mot", joint="knee")
    assert prediction.cycles and np.isfinite(prediction.values).any(axis=1).mean() > 0.5
    report = evaluate(tmp_path / "t.safetensors", [tiny_models["data"]], split="test")
    assert "peak_error" in set(report.summary.metric)


def test_label_exclusion_rules_mask_channels_and_drop_empty_examples():
    import numpy as np

    from gaitcli.data.windows import Windows
    from gaitcli.train.workflows import _exclude

    targets = ["hip_flexion_r_moment", "knee_angle_r_moment"]
    found = Windows(np.zeros((3, 4, 1), np.float32), np.ones((3, 4, 2), np.float32), ["A", "B", "B"],
                    ["walk", "walk/r", "run"], [0, 0, 0])
    kept, notes = _exclude(found, targets, [("B/walk", "hip_*"), ("B/run", "*")])
    assert len(kept) == 2 and notes == ["B/run: hip_flexion_r_moment excluded", "B/run: knee_angle_r_moment excluded",
                                        "B/walk: hip_flexion_r_moment excluded"]
    assert np.isnan(kept.targets[1][:, 0]).all() and np.isfinite(kept.targets[1][:, 1]).all()
    assert np.isfinite(kept.targets[0]).all()
