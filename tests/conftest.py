"""Shared fixtures: where the real lab data lives (../shared/data beside the repository).

Tests read the real files from there and fail loudly when it is missing: they never download."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
REAL = SHARED / "real"
LABELED = SHARED / "labeled"
EXAMPLES = REPO / "examples"


@pytest.fixture()
def one_torch_thread():
    """Tiny models gain nothing from intra-op threads, and on a busy 2-core machine OpenMP's
    spinning threads make them tens of times slower: one thread per test."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def real() -> Path:
    return REAL


@pytest.fixture(scope="session")
def labeled() -> Path:
    return LABELED


@pytest.fixture(scope="session")
def ingested(tmp_path_factory) -> Path:
    """The whole real corpus ingested once with default options (about 10 s)."""
    from gaitcli.data.ingest import IngestOptions, ingest

    out = tmp_path_factory.mktemp("ingested")
    report = ingest([REAL, LABELED], out, IngestOptions())
    out.joinpath("report.json").write_text(__import__("json").dumps(report.to_dict()))
    return out


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> dict[str, Path]:
    """A tiny transformer pretrained and fine-tuned on real data (WBDS + biomechZoo), in seconds."""
    from gaitcli.data.ingest import ingest
    from gaitcli.train.loop import TrainConfig
    from gaitcli.train.workflows import DataSpec, finetune, pretrain

    root = tmp_path_factory.mktemp("tiny")
    ingest([LABELED / "fukuchi2018-wbds", REAL / "biomechZoo-sample-study/Straight"], root / "data")
    spec = DataSpec(window=32, stride=16, test_fraction=0.2, val_fraction=0.1, seed=0)
    small = {"d_model": 16, "n_heads": 2, "n_layers": 2, "d_ff": 32}
    pretrain([root / "data"], root / "pre.safetensors", "transformer", spec,
             TrainConfig(task="pretrain", epochs=2, lr=1e-3, warmup_steps=5), model_overrides=small)
    finetune(root / "pre.safetensors", [root / "data"], root / "tuned.safetensors", spec,
             TrainConfig(task="finetune", epochs=3, lr=1e-3, warmup_steps=5))
    return {"data": root / "data", "pretrained": root / "pre.safetensors", "finetuned": root / "tuned.safetensors"}
