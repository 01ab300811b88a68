"""Models and checkpoints on disk: weights in safetensors, architecture as JSON in its metadata.

A model file is a plain safetensors file (PyTorch's ``safetensors.torch.load_file`` reads it;
``Linear`` weights have torch's (out, in) layout) whose metadata holds the model's
``config()`` as JSON, the chainrule version and optional user metadata. Nothing is pickled;
every write is atomic, so a crash leaves the previous file intact.

Reading checks the file before building anything: the safetensors layer (regular file, header
size and nesting, offsets, checksum), then the metadata keys, then the number of parameters the
config declares against the tensors in the file (for the built-in classes), so a small file
cannot make the loader allocate a large model; then the metadata that ``chainrule predict``
reads (``classes``, ``standardizer``, ``target_standardizer``) against the model's sizes.
"""
from __future__ import annotations

import json
import math

from chainrule.core.errors import ShapeError
from chainrule.nn.module import MODULE_CLASSES, Module
from chainrule.serialization import ModelFileError, _json_default, _parse_json, load_safetensors, save_safetensors

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
    return _parse_json(meta[key], path, f"the {what} stored in the file")


_KEYS = {"model": {_FORMAT, _VERSION, _CONFIG, _META}, "checkpoint": {_FORMAT, _VERSION, _CONFIG, _OPTIM, _EXTRA}}
_NO_PARAMETERS = {"ReLU", "Tanh", "Sigmoid", "Softplus", "LeakyReLU", "Identity",
                  "MSELoss", "BCELoss", "BCEWithLogitsLoss", "CrossEntropyLoss", "NLLLoss"}


def _parameter_count(config):
    """(n, exact): the parameters a built-in module class allocates for ``config``, computed
    without building it. For another class or malformed values n is 0 and exact False (from_config
    then reports malformed values); in a Sequential the known layers still count, so n is a lower
    bound that one unknown layer cannot switch off."""
    if not isinstance(config, dict):
        return 0, False
    cls = config.get("class")

    def dim(key):
        v = config.get(key)
        return v if type(v) is int and v > 0 else None

    if cls in _NO_PARAMETERS:
        return 0, True
    if cls == "Linear":
        i, o = dim("in_features"), dim("out_features")
        return (0, False) if i is None or o is None else (i * o + (o if config.get("bias", True) else 0), True)
    if cls in ("LinearRegression", "LogisticRegression", "SoftmaxRegression", "MLP"):
        hidden = config.get("hidden", [])
        out = dim("n_classes") if cls == "SoftmaxRegression" else 1 if cls != "MLP" else dim("out_features")
        sizes = [dim("in_features"), *hidden, out] if isinstance(hidden, list) else [None]
        if not all(type(n) is int and n > 0 for n in sizes):
            return 0, False
        return sum(a * b + b for a, b in zip(sizes, sizes[1:])), True
    if cls == "Sequential" and isinstance(config.get("layers"), list):
        counts = [_parameter_count(c) for c in config["layers"]]
        return sum(n for n, _ in counts), all(exact for _, exact in counts)
    return 0, False


def _check_size(path, config, tensors):
    (declared, exact), stored = _parameter_count(config), sum(t.size for t in tensors.values())
    if declared > stored or (exact and declared != stored):
        raise ModelFileError(f"{path}: the config declares a model of {'' if exact else 'at least '}{declared} "
                             f"parameters but the file holds {stored}; refusing to build it")


def _check_metadata(path, model, metadata):
    """The keys `chainrule predict` reads must fit the model: one class name per output (two for
    a single output), one mean and standard deviation per input (per output for the target)."""
    def bad(problem):
        raise ModelFileError(f"{path}: metadata {problem}")

    if not isinstance(metadata, dict):
        bad(f"must be a JSON object, got {type(metadata).__name__}")
    n_in, n_out = getattr(model, "in_features", None), getattr(model, "out_features", None)
    classes = metadata.get("classes")
    if classes is not None:
        if not isinstance(classes, list) or not all(isinstance(c, (str, int, float)) and not isinstance(c, bool)
                                                    for c in classes):
            bad("'classes' must be a list of class labels (strings or numbers)")
        if n_out is not None and len(classes) != (2 if n_out == 1 else n_out):
            bad(f"'classes' names {len(classes)} classes but the model has {n_out} output(s)")
    for key, n in (("standardizer", n_in), ("target_standardizer", n_out)):
        if key not in metadata:
            continue
        s = metadata[key]
        if not isinstance(s, dict) or set(s) != {"mean", "std"}:
            bad(f"{key!r} must be {{'mean': [...], 'std': [...]}}")
        for part in ("mean", "std"):
            values = s[part]
            if not isinstance(values, list) or not all(
                    isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values):
                bad(f"{key!r} {part} must be a list of finite numbers")
            if n is not None and len(values) != n:
                bad(f"{key!r} {part} has {len(values)} values but the model has {n} "
                    f"{'inputs' if key == 'standardizer' else 'outputs'}")


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
    if found == kind and set(meta) - _KEYS[kind]:
        raise ModelFileError(f"{path}: unknown metadata key(s) {', '.join(sorted(set(meta) - _KEYS[kind]))} "
                             f"in a chainrule {kind} file")
    if found != kind:
        what = "a chainrule checkpoint" if found == "checkpoint" else (
            "a chainrule model file" if found == "model" else "not a chainrule file (no chainrule metadata)")
        use = "load_checkpoint" if found == "checkpoint" else "cr.nn.load"
        hint = f"; read it with {use}" if found in ("model", "checkpoint") else ""
        raise ModelFileError(f"{path}: expected a chainrule {kind} file, but this is {what}{hint}")
    return tensors, meta


def _build(path, meta, tensors):
    if _CONFIG not in meta:
        raise ModelFileError(f"{path}: the file holds no model config ({_CONFIG!r} metadata)")
    config = _loads(path, meta, _CONFIG, "model config")
    _check_size(path, config, tensors)
    try:
        return from_config(config)
    except (TypeError, ValueError, KeyError, IndexError, AttributeError) as e:
        shown = json.dumps(config)
        shown = shown if len(shown) <= 200 else shown[:200] + "..."
        raise ModelFileError(f"{path}: cannot rebuild the model from its config {shown}: "
                             f"{type(e).__name__}: {e}") from None


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
    model = _build(path, meta, tensors)
    _load_weights(path, model, tensors)
    model.metadata = _loads(path, meta, _META, "metadata") if _META in meta else {}
    _check_metadata(path, model, model.metadata)
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
