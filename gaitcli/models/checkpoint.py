"""Checkpoints: one ``.safetensors`` file, weights plus JSON metadata; never pickle.

File layout (plain safetensors, readable by any safetensors reader):

- tensors: the model's ``state_dict()`` under its own key names (a *training state* stores them
  as ``model.<key>``, next to ``optimizer.*``, ``extra.*`` and ``rng.*`` tensors);
- header metadata ``"gait"``: a JSON object with ``"format"`` (``"gait-checkpoint"`` or
  ``"gait-training-state"``), ``"format_version"`` (1), ``"gait_version"``, ``"model"`` (the
  model config, ``model.config.to_dict()``) and whatever the caller added (channel names, units,
  sampling rate, window, normalisation statistics, training provenance, ...);
- header metadata ``"gait_sha256"``: SHA-256 over the ``"gait"`` JSON and every tensor (name,
  dtype, shape, bytes), so a flipped byte in the weights or in the metadata is caught on load.

Loading checks, in order: the file exists and is a safetensors file whose header parses and whose
data is all there; it carries gait metadata of a format version this gait reads; the tensors decode;
the checksum matches; the config names a known architecture with valid hyperparameters; the tensors
are exactly the model's (names and shapes). Any failure is a ``gaitcli.errors.ReadError`` naming
the file with a one-line reason; nothing is ever unpickled (no ``torch.load``).

``read_checkpoint_metadata`` reads only the header and imports neither torch nor safetensors.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gaitcli.errors import ReadError

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from .base import GaitModel

__all__ = [
    "FORMAT", "TRAINING_FORMAT", "FORMAT_VERSION", "save_checkpoint", "load_checkpoint",
    "read_checkpoint_metadata", "save_training_state", "load_training_state",
]

FORMAT = "gait-checkpoint"
TRAINING_FORMAT = "gait-training-state"
FORMAT_VERSION = 1
METADATA_KEY = "gait"
CHECKSUM_KEY = "gait_sha256"
_RESERVED = ("format", "format_version", "gait_version")
_MAX_HEADER = 100 * 1024 * 1024  # safetensors' own limit


# ---- writing -------------------------------------------------------------------------------------

def save_checkpoint(path: str | os.PathLike[str], model: "GaitModel", metadata: dict[str, Any] | None = None) -> None:
    """Write ``model``'s weights and ``metadata`` (plus the model config under ``"model"``) to one
    safetensors file, atomically (a temporary file in the same folder, then ``os.replace``).

    ``metadata`` must be JSON-serialisable (numpy scalars and arrays, and paths, are converted);
    a ``"model"`` entry, if given, must equal ``model.config.to_dict()``. ``format``,
    ``format_version`` and ``gait_version`` are set here.
    """
    tensors = {k: _cpu(v) for k, v in model.state_dict().items()}
    gait = _gait_metadata_for(FORMAT, model, metadata)
    _write(Path(path), tensors, gait)


def save_training_state(path: str | os.PathLike[str], model: "GaitModel", optimizer: "torch.optim.Optimizer",
                        extra: dict[str, Any] | None = None, *, rng: bool = True) -> None:
    """Everything needed to resume training, in one safetensors file (no pickle): the model weights
    (``model.*``), the optimizer's state dict (tensors as ``optimizer.*``, the rest as JSON),
    ``extra`` (step, best validation loss, scheduler state, ...: JSON values and tensors, nested
    freely) and, with ``rng``, the torch random number generator states (CPU, and CUDA when in use).
    ``load_checkpoint`` also reads such a file (the model only)."""
    import torch

    tensors = {f"model.{k}": _cpu(v) for k, v in model.state_dict().items()}
    optim = {"class": type(optimizer).__name__,
             "state_dict": _flatten(optimizer.state_dict(), "optimizer", tensors)}
    gait = _gait_metadata_for(TRAINING_FORMAT, model, None)
    gait["optimizer"] = optim
    gait["extra"] = _flatten(dict(extra or {}), "extra", tensors)
    if rng:
        tensors["rng.torch"] = torch.get_rng_state()
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            for i, state in enumerate(torch.cuda.get_rng_state_all()):
                tensors[f"rng.cuda.{i}"] = state.cpu()
    _write(Path(path), tensors, gait)


def _cpu(t: "torch.Tensor") -> "torch.Tensor":
    # A copy: safetensors refuses tensors that share memory or are not contiguous.
    return t.detach().to("cpu", copy=True).contiguous()


def _gait_metadata_for(fmt: str, model: "GaitModel", metadata: dict[str, Any] | None) -> dict[str, Any]:
    from gaitcli import __version__

    config = model.config.to_dict()
    user = dict(metadata or {})
    if not all(isinstance(k, str) for k in user):
        raise ValueError("metadata keys must be strings")
    if "model" in user and _json_roundtrip(user["model"]) != _json_roundtrip(config):
        raise ValueError("metadata['model'] differs from model.config.to_dict(); leave it out, it is added")
    for key in _RESERVED:
        user.pop(key, None)
    user.pop("model", None)
    gait = {"format": fmt, "format_version": FORMAT_VERSION, "gait_version": __version__, **user, "model": config}
    _json_roundtrip(gait)  # fail here, with the offending value named, rather than half-way
    return gait


def _json_default(obj: Any) -> Any:
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if hasattr(obj, "tolist") and callable(obj.tolist):  # numpy scalars and arrays, 0-d torch tensors
        return obj.tolist()
    raise TypeError(f"{type(obj).__name__} is not JSON-serialisable")


def _dumps(obj: Any) -> str:
    return json.dumps(obj, default=_json_default, ensure_ascii=False)


def _json_roundtrip(obj: Any) -> Any:
    try:
        return json.loads(_dumps(obj))
    except (TypeError, ValueError) as e:
        raise ValueError(f"checkpoint metadata must be JSON-serialisable: {e}") from None


def _digest(gait_json: str, tensors: dict[str, "torch.Tensor"]) -> str:
    import torch

    h = hashlib.sha256(gait_json.encode("utf-8"))
    for name in sorted(tensors):
        t = tensors[name]
        h.update(f"\0{name}\0{t.dtype}\0{list(t.shape)}\0".encode("utf-8"))
        if t.numel():
            h.update(t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().data)
    return h.hexdigest()


def _write(path: Path, tensors: dict[str, "torch.Tensor"], gait: dict[str, Any]) -> None:
    from safetensors.torch import save

    gait_json = _dumps(gait)
    blob = save(tensors, metadata={METADATA_KEY: gait_json, CHECKSUM_KEY: _digest(gait_json, tensors)})
    _write_atomic(path, blob)


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    try:  # make the rename itself durable (POSIX); best effort
        dir_fd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


# ---- reading -------------------------------------------------------------------------------------

def read_checkpoint_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``"gait"`` metadata of a checkpoint or training state (``format``, ``model``, the caller's
    keys), from the header alone: no weights are read, torch is not imported. The checksum is not
    verified here (that needs the weights); ``load_checkpoint`` verifies it."""
    path = Path(path)
    try:
        with _open(path) as f:
            size = os.fstat(f.fileno()).st_size
            prefix = f.read(8)
            n = _header_length(path, prefix, size)
            header = _parse_header(path, f.read(n))
    except ReadError:
        raise
    except Exception as e:  # pragma: no cover - defensive
        raise ReadError(path, _one_line(f"cannot read: {type(e).__name__}: {e}")) from e
    return _gait_metadata(path, header)[0]


def load_checkpoint(path: str | os.PathLike[str], map_location: Any = "cpu") -> tuple["GaitModel", dict[str, Any]]:
    """Rebuild the model from the file's config, load its weights strictly, move it to
    ``map_location`` and put it in eval mode. Returns ``(model, metadata)``, the metadata being what
    ``read_checkpoint_metadata`` returns. Reads checkpoints and training states. Every failure is a
    ``ReadError(path, reason)``."""
    path = Path(path)
    try:
        gait, tensors = _read_verified(path)
        if gait["format"] == TRAINING_FORMAT:
            tensors = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
        model = _build(path, gait)
        _load_weights(path, model, tensors, cast=True)
        import torch

        model.to(torch.device(map_location if map_location is not None else "cpu")).eval()
        return model, gait
    except ReadError:
        raise
    except Exception as e:
        raise ReadError(path, _one_line(f"cannot load: {type(e).__name__}: {e}")) from e


def load_training_state(path: str | os.PathLike[str], model: "GaitModel",
                        optimizer: "torch.optim.Optimizer | None" = None, *, restore_rng: bool = True) -> dict[str, Any]:
    """Load a ``save_training_state`` file into an existing ``model`` (same architecture and shapes)
    and ``optimizer`` (same class and parameter groups), restore the random number generators
    (``restore_rng``), and return the ``extra`` dict that was saved. Failures are ``ReadError``."""
    path = Path(path)
    try:
        gait, tensors = _read_verified(path)
        if gait["format"] != TRAINING_FORMAT:
            raise ReadError(path, "a model checkpoint, not a training state (it holds no optimizer state); "
                                  "load it with load_checkpoint")
        weights = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
        saved_arch = gait.get("model", {}).get("name") if isinstance(gait.get("model"), dict) else None
        if saved_arch != model.config.name:
            raise ReadError(path, f"saved from a {saved_arch!r} model, cannot load into a {model.config.name!r} model")
        _load_weights(path, model, weights, cast=False)
        extra = _unflatten(gait.get("extra", {}), tensors)
        if optimizer is not None:
            saved = gait.get("optimizer") or {}
            if saved.get("class") != type(optimizer).__name__:
                raise ReadError(path, f"saved with a {saved.get('class')} optimizer, cannot load into "
                                      f"{type(optimizer).__name__}")
            state = _unflatten(saved["state_dict"], tensors)
            try:
                optimizer.load_state_dict(state)
            except (ValueError, KeyError, RuntimeError) as e:
                raise ReadError(path, _one_line(f"optimizer state does not fit this optimizer: {e}")) from e
        if restore_rng:
            import torch

            if "rng.torch" in tensors:
                torch.set_rng_state(tensors["rng.torch"])
            cuda = [tensors[k] for k in sorted((k for k in tensors if k.startswith("rng.cuda.")),
                                                key=lambda k: int(k.rsplit(".", 1)[1]))]
            if cuda and torch.cuda.is_available():
                for i, state in enumerate(cuda[: torch.cuda.device_count()]):
                    torch.cuda.set_rng_state(state, i)
        return extra
    except ReadError:
        raise
    except Exception as e:
        raise ReadError(path, _one_line(f"cannot load training state: {type(e).__name__}: {e}")) from e


# ---- reading, the steps -------------------------------------------------------------------------

class _open:
    """``open(path, "rb")`` with OS errors turned into ReadError."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __enter__(self) -> Any:
        try:
            self.f = open(self.path, "rb")
        except FileNotFoundError:
            raise ReadError(self.path, "no such file") from None
        except IsADirectoryError:
            raise ReadError(self.path, "is a directory, not a checkpoint file") from None
        except PermissionError:
            raise ReadError(self.path, "permission denied") from None
        except OSError as e:
            raise ReadError(self.path, _one_line(f"cannot open: {e.strerror or e}")) from None
        return self.f

    def __exit__(self, *exc: Any) -> None:
        self.f.close()


def _header_length(path: Path, prefix: bytes, size: int) -> int:
    if size == 0:
        raise ReadError(path, "empty file")
    if len(prefix) < 8:
        raise ReadError(path, f"not a safetensors file: only {size} bytes")
    n = int.from_bytes(prefix, "little")
    if n > _MAX_HEADER or n > size - 8:
        raise ReadError(path, f"not a safetensors file, or truncated: the header length ({n} bytes) "
                              f"exceeds the file ({size} bytes)")
    return n


def _parse_header(path: Path, raw: bytes) -> dict[str, Any]:
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ReadError(path, "corrupted safetensors header: not valid JSON") from None
    if not isinstance(header, dict):
        raise ReadError(path, "corrupted safetensors header: not a JSON object")
    return header


def _data_length(path: Path, header: dict[str, Any]) -> int:
    """The tensor data the header describes, checking each entry's shape."""
    end = 0
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        try:
            start, stop = entry["data_offsets"]
            shape, dtype = entry["shape"], entry["dtype"]
            ok = (isinstance(start, int) and isinstance(stop, int) and 0 <= start <= stop
                  and isinstance(shape, list) and all(isinstance(s, int) and s >= 0 for s in shape)
                  and isinstance(dtype, str))
        except (TypeError, KeyError, ValueError):
            ok = False
        if not ok:
            raise ReadError(path, f"corrupted safetensors header: bad entry for tensor {name!r}")
        end = max(end, stop)
    return end


def _gait_metadata(path: Path, header: dict[str, Any]) -> tuple[dict[str, Any], str]:
    meta = header.get("__metadata__")
    if not isinstance(meta, dict) or METADATA_KEY not in meta:
        raise ReadError(path, "not a gait checkpoint: a safetensors file without gait metadata "
                              f"(no {METADATA_KEY!r} key in its header metadata)")
    raw = meta[METADATA_KEY]
    try:
        gait = json.loads(raw) if isinstance(raw, str) else None
    except ValueError:
        gait = None
    if not isinstance(gait, dict):
        raise ReadError(path, "corrupted gait metadata: not a JSON object")
    fmt = gait.get("format")
    if fmt not in (FORMAT, TRAINING_FORMAT):
        raise ReadError(path, f"not a gait checkpoint: metadata format is {fmt!r}")
    version = gait.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ReadError(path, f"corrupted gait metadata: format_version is {version!r}")
    if version > FORMAT_VERSION:
        raise ReadError(path, f"written by a newer gait (format_version {version}, gait "
                              f"{gait.get('gait_version', '?')}); this gait reads format_version {FORMAT_VERSION}")
    return gait, raw


def _read_verified(path: Path) -> tuple[dict[str, Any], dict[str, "torch.Tensor"]]:
    """Header, gait metadata and tensors of a file, with its checksum verified."""
    with _open(path) as f:
        try:
            data = f.read()
        except OSError as e:
            raise ReadError(path, _one_line(f"cannot read: {e.strerror or e}")) from None
    n = _header_length(path, data[:8], len(data))
    header = _parse_header(path, data[8:8 + n])
    gait, gait_json = _gait_metadata(path, header)
    expected, found = _data_length(path, header), len(data) - 8 - n
    if found < expected:
        raise ReadError(path, f"truncated: the header describes {expected} bytes of tensor data, "
                              f"the file holds {found}")
    if found > expected:
        raise ReadError(path, f"corrupted: {found - expected} unexpected bytes after the tensor data")
    from safetensors.torch import load

    try:
        tensors = load(data)
    except Exception as e:  # safetensors' own validation (dtypes, offsets, overlaps)
        raise ReadError(path, _one_line(f"corrupted safetensors data: {e}")) from None
    digest = header["__metadata__"].get(CHECKSUM_KEY)
    if not isinstance(digest, str):
        raise ReadError(path, f"corrupted gait metadata: no {CHECKSUM_KEY!r} checksum")
    if _digest(gait_json, tensors) != digest:
        raise ReadError(path, "corrupted: checksum mismatch (the weights or the metadata changed after writing)")
    return gait, tensors


def _build(path: Path, gait: dict[str, Any]) -> "GaitModel":
    from .registry import list_architectures, model_from_config

    config = gait.get("model")
    if not isinstance(config, dict):
        raise ReadError(path, "gait metadata has no model config ('model')")
    name = config.get("name")
    if name not in list_architectures():
        raise ReadError(path, f"unknown model architecture {name!r} (this gait knows "
                              f"{', '.join(list_architectures())}); written by a newer gait?")
    try:
        return model_from_config(config)
    except (ValueError, TypeError) as e:
        raise ReadError(path, _one_line(f"invalid {name} model config: {e}")) from None


def _load_weights(path: Path, model: "GaitModel", tensors: dict[str, "torch.Tensor"], *, cast: bool) -> None:
    """Strict: the same names and shapes as the model's state dict, or a ReadError saying which
    differ. With ``cast``, a freshly built model first takes the dtype the weights were saved in."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {_few(missing)}")
        if unexpected:
            parts.append(f"unexpected {_few(unexpected)}")
        raise ReadError(path, f"weights do not match the {model.config.name} config: {'; '.join(parts)}")
    for k, v in tensors.items():
        if tuple(v.shape) != tuple(expected[k].shape):
            raise ReadError(path, f"shape mismatch for {k}: file {list(v.shape)}, model {list(expected[k].shape)}")
    if cast:
        dtypes = {v.dtype for v in tensors.values() if v.is_floating_point()}
        if len(dtypes) == 1:
            model.to(dtypes.pop())
    model.load_state_dict(tensors, strict=True)


def _few(names: list[str], k: int = 3) -> str:
    return ", ".join(names[:k]) + (f" and {len(names) - k} more" if len(names) > k else "")


def _one_line(text: str) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= 300 else line[:297] + "..."


# ---- nested values with tensors <-> JSON plus named tensors ---------------------------------------

def _flatten(obj: Any, name: str, tensors: dict[str, "torch.Tensor"]) -> Any:
    """JSON-able copy of ``obj``: tensors go to ``tensors[name...]`` and are replaced by
    ``{"__tensor__": key}``; tuples become ``{"__tuple__": [...]}``; dicts with non-string keys (an
    optimizer's parameter indices) ``{"__items__": [[key, value], ...]}``."""
    import torch

    if isinstance(obj, torch.Tensor):
        tensors[name] = _cpu(obj)
        return {"__tensor__": name}
    if isinstance(obj, dict):
        if all(isinstance(k, str) and not k.startswith("__") for k in obj):
            return {k: _flatten(v, f"{name}.{k}", tensors) for k, v in obj.items()}
        items = []
        for i, (k, v) in enumerate(obj.items()):
            if not isinstance(k, (str, int, float, bool)) and k is not None:
                raise ValueError(f"cannot store {name}: key {k!r} of type {type(k).__name__}")
            items.append([k, _flatten(v, f"{name}.{i}", tensors)])
        return {"__items__": items}
    if isinstance(obj, tuple):
        return {"__tuple__": [_flatten(v, f"{name}.{i}", tensors) for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [_flatten(v, f"{name}.{i}", tensors) for i, v in enumerate(obj)]
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else {"__float__": repr(obj)}
    if hasattr(obj, "tolist") and callable(obj.tolist):  # numpy
        return _flatten(obj.tolist(), name, tensors)
    raise ValueError(f"cannot store {name}: {type(obj).__name__} is neither JSON nor a tensor")


def _unflatten(obj: Any, tensors: dict[str, "torch.Tensor"]) -> Any:
    if isinstance(obj, list):
        return [_unflatten(v, tensors) for v in obj]
    if isinstance(obj, dict):
        if "__tensor__" in obj:
            return tensors[obj["__tensor__"]]
        if "__tuple__" in obj:
            return tuple(_unflatten(v, tensors) for v in obj["__tuple__"])
        if "__items__" in obj:
            return {k: _unflatten(v, tensors) for k, v in obj["__items__"]}
        if "__float__" in obj:
            return float(obj["__float__"])
        return {k: _unflatten(v, tensors) for k, v in obj.items()}
    return obj

