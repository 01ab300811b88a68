"""Models and checkpoints on disk: weights in safetensors, architecture as JSON in its metadata.

A model file is a plain safetensors file (PyTorch's ``safetensors.torch.load_file`` reads it;
``Linear`` weights have torch's (out, in) layout) whose metadata holds the model's
``config()`` as JSON, the chainrule version and optional user metadata. Nothing is pickled;
every write is atomic, so a crash leaves the previous file intact.
"""
from __future__ import annotations

import json

from chainrule.core.errors import ShapeError
from chainrule.nn.module import MODULE_CLASSES, Module
from chainrule.serialization import ModelFileError, _json_default, load_safetensors, save_safetensors

__all__ = ["save", "load", "load_metadata", "from_config", "save_checkpoint", "load_checkpoint",
           "ModelFileError"]

_FORMAT, _VERSION, _CONFIG, _META = "chainrule.format", "chainrule.version", "chainrule.config", "chainrule.metadata"
_OPTIM, _EXTRA = "chainrule.optimizer", "chainrule.extra"


def _version():
    from chainrule import __version__

    return __version__


def _dumps(obj, what):
    try:
        return json.dumps(obj, default=_json_default, sort_keys=True)
    except (TypeError, ValueError) as e:
        raise TypeError(f"{what} must be JSON-serializable (numbers, strings, lists, dicts, numpy arrays): {e}") from None


def _loads(path, meta, key, what):
    try:
        return json.loads(meta[key])
    except json.JSONDecodeError as e:
        raise ModelFileError(f"{path}: the {what} stored in the file is not valid JSON ({e})") from None


def from_config(config: dict) -> Module:
    """Build a module (freshly initialised) from the dict its ``config()`` returned.

    >>> from_config({"class": "Linear", "in_features": 2, "out_features": 3}).weight.shape
    (3, 2)
    """
    if not isinstance(config, dict) or not isinstance(config.get("class"), str):
        raise ValueError(f"a module config must be a dict with a 'class' name, got {config!r}")
    cls = MODULE_CLASSES.get(config["class"])
    if cls is None:
        known = sorted(n for n in MODULE_CLASSES if not n.startswith("_"))
        raise ValueError(f"unknown module class {config['class']!r} (known: {', '.join(known)}; "
                         "a custom Module class must be imported before loading)")
    return cls.from_config(config)


def save(model: Module, path, metadata=None):
    """Save ``model`` (architecture and weights) to ``path`` as safetensors, atomically.

    ``metadata`` is any JSON-serializable dict saved alongside (for example a Standardizer's
    ``to_dict()`` and class names); it defaults to ``model.metadata`` when the model has one
    (a loaded model), so a load/save round trip keeps it.

    >>> import os, tempfile, chainrule as cr
    >>> path = os.path.join(tempfile.mkdtemp(), "net.safetensors")
    >>> cr.nn.MLP(3, [4], 2, rng=0).save(path, metadata={"classes": ["cat", "dog"]})
    >>> model = cr.nn.load(path)
    >>> model.config()["hidden"], model.metadata
    ([4], {'classes': ['cat', 'dog']})
    """
    config = model.config()
    if metadata is None:
        metadata = getattr(model, "metadata", None)
    if metadata is not None and not isinstance(metadata, dict):
        raise TypeError(f"save: metadata must be a dict, got {type(metadata).__name__}")
    meta = {_FORMAT: "model", _VERSION: _version(), _CONFIG: _dumps(config, "the model config")}
    if metadata:
        meta[_META] = _dumps(metadata, "metadata")
    save_safetensors(path, model.state_dict(), meta)


def _read(path, kind):
    tensors, meta = load_safetensors(path)
    found = meta.get(_FORMAT)
    if found != kind:
        what = "a chainrule checkpoint" if found == "checkpoint" else (
            "a chainrule model file" if found == "model" else "not a chainrule file (no chainrule metadata)")
        use = "load_checkpoint" if found == "checkpoint" else "cr.nn.load"
        hint = f"; read it with {use}" if found in ("model", "checkpoint") else ""
        raise ModelFileError(f"{path}: expected a chainrule {kind} file, but this is {what}{hint}")
    return tensors, meta


def _build(path, meta):
    if _CONFIG not in meta:
        raise ModelFileError(f"{path}: the file holds no model config ({_CONFIG!r} metadata)")
    config = _loads(path, meta, _CONFIG, "model config")
    try:
        return from_config(config)
    except (TypeError, ValueError) as e:
        raise ModelFileError(f"{path}: cannot rebuild the model from its config {config}: {e}") from None


def _load_weights(path, model, state):
    try:
        model.load_state_dict(state)
    except ShapeError as e:
        raise ModelFileError(f"{path}: the weights do not match the architecture: {e}") from None


def load(path) -> Module:
    """Load a model saved by :func:`save`: rebuild it from its config, then load and check
    the weights (names, shapes, dtypes). The saved metadata is in ``model.metadata``.

    Raises ``ModelFileError`` (a ValueError) naming the file and the problem for truncated,
    corrupted or mismatched files.
    """
    tensors, meta = _read(path, "model")
    model = _build(path, meta)
    _load_weights(path, model, tensors)
    model.metadata = _loads(path, meta, _META, "metadata") if _META in meta else {}
    return model


def load_metadata(path) -> dict:
    """The user metadata saved with a model (without building the model)."""
    _, meta = _read(path, "model")
    return _loads(path, meta, _META, "metadata") if _META in meta else {}


def save_checkpoint(path, model: Module, optimizer=None, extra=None):
    """Save model weights and optimizer state (momentum buffers, Adam moments, step counts)
    to one safetensors file, atomically, so training can resume exactly where it stopped.

    ``extra`` is any JSON-serializable dict (epoch, history, a scheduler's ``state_dict()``,
    a random generator's ``bit_generator.state``), returned by :func:`load_checkpoint`.
    """
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    meta = {_FORMAT: "checkpoint", _VERSION: _version()}
    try:
        meta[_CONFIG] = _dumps(model.config(), "the model config")
    except NotImplementedError:
        pass  # a custom module without config(): its weights still round-trip
    if optimizer is not None:
        state = optimizer.state_dict()
        tensors.update({f"optimizer.{k}": v for k, v in state.pop("buffers").items()})
        meta[_OPTIM] = _dumps(state, "the optimizer state")
    if extra is not None:
        meta[_EXTRA] = _dumps(extra, "extra")
    save_safetensors(path, tensors, meta)


def load_checkpoint(path, model: Module, optimizer=None):
    """Restore a checkpoint written by :func:`save_checkpoint` into ``model`` (and
    ``optimizer``), in place; returns the ``extra`` dict (None if none was saved). Nothing is
    changed unless everything fits.

    >>> import os, tempfile, chainrule as cr
    >>> path = os.path.join(tempfile.mkdtemp(), "ckpt.safetensors")
    >>> model = cr.nn.MLP(2, [3], 1, rng=0); opt = cr.optim.Adam(model.parameters())
    >>> save_checkpoint(path, model, opt, extra={"epoch": 5})
    >>> load_checkpoint(path, model, opt)
    {'epoch': 5}
    """
    tensors, meta = _read(path, "checkpoint")
    state = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
    if optimizer is not None and _OPTIM not in meta:
        raise ModelFileError(f"{path}: the checkpoint holds no optimizer state")
    before = model.state_dict()
    _load_weights(path, model, state)
    if optimizer is not None:
        ostate = _loads(path, meta, _OPTIM, "optimizer state")
        ostate["buffers"] = {k[10:]: v for k, v in tensors.items() if k.startswith("optimizer.")}
        try:
            optimizer.load_state_dict(ostate)
        except (ValueError, KeyError, TypeError) as e:
            model.load_state_dict(before)
            raise ModelFileError(f"{path}: the optimizer state does not fit this optimizer: {e}") from None
    return _loads(path, meta, _EXTRA, "extra") if _EXTRA in meta else None
