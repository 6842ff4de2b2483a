"""gait's models: one interface (``GaitModel``), a timm-style registry, three architectures
(patch Transformer, bidirectional LSTM, Mamba), a diffusion denoiser (GaitDynamics; its schedule,
loss and DDIM sampler are in ``gaitcli.models.diffusion``) and safetensors checkpoints.

    from gaitcli.models import create_model, list_models, save_checkpoint, load_checkpoint
    model = create_model("transformer_li2025", in_channels=6, out_channels=6)
    y = model(x, mask=None)                     # [B, T, C_in] -> [B, T, C_out]
    save_checkpoint("m.safetensors", model, {"channels": [...]})
    model, meta = load_checkpoint("m.safetensors")

Importing this package is cheap: nothing here imports torch until a name that needs it is used
(``gaitcli.models.create_model`` etc. are resolved lazily, PEP 562).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# public name -> submodule that defines it
_LAZY = {
    # registry (torch is imported when the first model is listed or built)
    "register_model": "registry", "register_architecture": "registry", "create_model": "registry",
    "list_models": "registry", "list_architectures": "registry", "is_model": "registry",
    "model_entrypoint": "registry", "model_from_config": "registry", "config_from_dict": "registry",
    # interface
    "GaitModel": "base", "ModelConfig": "base",
    # architectures
    "TransformerConfig": "transformer", "TransformerModel": "transformer",
    "LSTMConfig": "lstm", "LSTMModel": "lstm",
    "MambaConfig": "mamba", "MambaModel": "mamba", "selective_scan": "mamba",
    "selective_scan_ref": "mamba", "selective_scan_parallel": "mamba",
    "mamba_ssm_backbone_state_dict": "mamba",
    "DiffusionConfig": "diffusion", "DiffusionTransformer": "diffusion",
    # checkpoints (read_checkpoint_metadata needs neither torch nor safetensors)
    "save_checkpoint": "checkpoint", "load_checkpoint": "checkpoint",
    "read_checkpoint_metadata": "checkpoint", "save_training_state": "checkpoint",
    "load_training_state": "checkpoint",
}

__all__ = sorted(_LAZY)

if TYPE_CHECKING:  # pragma: no cover
    from .base import GaitModel, ModelConfig
    from .checkpoint import (load_checkpoint, load_training_state, read_checkpoint_metadata, save_checkpoint,
                             save_training_state)
    from .diffusion import DiffusionConfig, DiffusionTransformer
    from .lstm import LSTMConfig, LSTMModel
    from .mamba import (MambaConfig, MambaModel, mamba_ssm_backbone_state_dict, selective_scan,
                        selective_scan_parallel, selective_scan_ref)
    from .registry import (config_from_dict, create_model, is_model, list_architectures, list_models,
                           model_entrypoint, model_from_config, register_architecture, register_model)
    from .transformer import TransformerConfig, TransformerModel


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
