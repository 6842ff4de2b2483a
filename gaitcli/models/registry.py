"""The model registry, after timm: small registered constructor functions, ``create_model``.

A constructor is a function named after the model it builds, taking hyperparameter overrides::

    @register_model
    def transformer_li2025(**overrides) -> TransformerModel:
        return build(TransformerModel, LI2025, overrides, preset="transformer_li2025")

Architectures (the classes behind the constructors) register themselves with
``@register_architecture``, so that ``model_from_config`` can rebuild a model from nothing but a
saved config dict (``config["name"]`` is the architecture).

This module does not import torch: the architecture modules (which do) are imported the first time
a model is listed, created or rebuilt. A new architecture is one new file plus one line in
``_MODEL_MODULES``.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import importlib
from typing import TYPE_CHECKING, Any, Callable, TypeVar

if TYPE_CHECKING:  # pragma: no cover
    from .base import GaitModel, ModelConfig

__all__ = [
    "register_model", "register_architecture", "create_model", "list_models", "is_model", "is_denoiser",
    "sequence_models",
    "model_entrypoint", "list_architectures", "model_from_config", "config_from_dict", "build",
]

# The modules holding architectures and their registered constructors, imported lazily.
_MODEL_MODULES = ("gaitcli.models.transformer", "gaitcli.models.lstm", "gaitcli.models.mamba",
                  "gaitcli.models.diffusion")

_model_entrypoints: dict[str, Callable[..., "GaitModel"]] = {}
_architectures: dict[str, type] = {}
_loaded = False

F = TypeVar("F", bound=Callable[..., Any])
C = TypeVar("C", bound=type)


def register_model(fn: F) -> F:
    """Register a constructor ``fn(**overrides) -> GaitModel`` under its function name."""
    name = fn.__name__
    if name in _model_entrypoints and _model_entrypoints[name] is not fn:
        raise ValueError(f"a model named {name!r} is already registered")
    _model_entrypoints[name] = fn
    return fn


def register_architecture(name: str) -> Callable[[C], C]:
    """Class decorator: ``model_from_config({"name": name, ...})`` builds this class."""

    def decorate(cls: C) -> C:
        if name in _architectures and _architectures[name] is not cls:
            raise ValueError(f"an architecture named {name!r} is already registered")
        if cls.config_class.architecture != name:  # type: ignore[attr-defined]
            raise ValueError(f"{cls.__name__}.config_class is for {cls.config_class.architecture!r}, "  # type: ignore[attr-defined]
                             f"not {name!r}")
        _architectures[name] = cls
        return cls

    return decorate


def _load() -> None:
    global _loaded
    if not _loaded:
        for module in _MODEL_MODULES:
            importlib.import_module(module)
        _loaded = True


def list_models(pattern: str | None = None) -> list[str]:
    """Registered model names, sorted; ``pattern`` is a shell-style filter (``"transformer*"``)."""
    _load()
    names = sorted(_model_entrypoints)
    return [n for n in names if fnmatch.fnmatchcase(n, pattern)] if pattern else names


def is_denoiser(name: str) -> bool:
    """A diffusion denoiser (needs a diffusion step ``t``): not a kinematics -> kinetics model."""
    return name.startswith("diffusion")


def sequence_models() -> list[str]:
    """The models that map input channels to output channels (what pretrain/finetune train)."""
    return [n for n in list_models() if not is_denoiser(n)]


def list_architectures() -> list[str]:
    _load()
    return sorted(_architectures)


def is_model(name: str) -> bool:
    _load()
    return name in _model_entrypoints


def model_entrypoint(name: str) -> Callable[..., "GaitModel"]:
    _load()
    try:
        return _model_entrypoints[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; registered models: "
                         f"{', '.join(sorted(_model_entrypoints))}") from None


def create_model(name: str, **overrides: Any) -> "GaitModel":
    """Build registered model ``name``; overrides replace its defaults, ``None`` ones are dropped
    (so a CLI can pass every option through and each model keeps its own defaults)."""
    overrides = {k: v for k, v in overrides.items() if v is not None}
    return model_entrypoint(name)(**overrides)


def _architecture(name: Any) -> type:
    _load()
    if name not in _architectures:
        raise ValueError(f"unknown model architecture {name!r}; known: {', '.join(sorted(_architectures))}")
    return _architectures[name]


def config_from_dict(d: "dict[str, Any] | ModelConfig") -> "ModelConfig":
    """The config dataclass for a ``to_dict()`` dict (strict: unknown keys are a ValueError)."""
    if dataclasses.is_dataclass(d) and not isinstance(d, type):
        d = d.to_dict()  # type: ignore[union-attr]
    if not isinstance(d, dict):
        raise ValueError(f"model config must be a dict, got {type(d).__name__}")
    if "name" not in d:
        raise ValueError("model config has no 'name' (the architecture)")
    return _architecture(d["name"]).config_class.from_dict(d)  # type: ignore[attr-defined]


def model_from_config(config: "dict[str, Any] | ModelConfig") -> "GaitModel":
    """Rebuild a (randomly initialised) model from a saved config dict or config dataclass."""
    cfg = config_from_dict(config)
    return _architecture(cfg.name)(cfg)  # type: ignore[attr-defined]


def build(model_cls: type, defaults: dict[str, Any], overrides: dict[str, Any], *,
          preset: str) -> "GaitModel":
    """What registered constructors call: ``model_cls(Config(**defaults | overrides))``, with a
    clear error for an override that is not a hyperparameter of that architecture."""
    config_cls = model_cls.config_class  # type: ignore[attr-defined]
    known = {f.name for f in dataclasses.fields(config_cls)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(f"{preset} has no hyperparameter {', '.join(map(repr, unknown))}; "
                         f"known: {', '.join(sorted(known - {'name'}))}")
    if "name" in overrides and overrides["name"] != config_cls.architecture:
        raise ValueError(f"{preset} builds a {config_cls.architecture!r} model, cannot override name")
    values = {"preset": preset, **defaults, **overrides}
    return model_cls(config_cls(**values))
