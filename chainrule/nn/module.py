"""Module and Parameter: models that find their own parameters by walking their attributes."""
from __future__ import annotations

import numpy as np

from chainrule.core.errors import DTypeError, ShapeError
from chainrule.core.tensor import Tensor

__all__ = ["Parameter", "Module", "functional_call", "register_module"]


class Parameter(Tensor):
    """A Tensor that a Module owns and an optimizer updates: always floating point and
    ``requires_grad=True`` by default. Integer data is converted to float64.

    >>> p = Parameter([[1, 2]])
    >>> p.dtype, p.requires_grad
    (dtype('float64'), True)
    """

    def __init__(self, data, requires_grad=True, dtype=None, name=None):
        if isinstance(data, Tensor):
            data = data.data
        if dtype is None and not np.issubdtype(np.asarray(data).dtype, np.inexact):
            dtype = np.float64
        if dtype is not None and not np.issubdtype(np.dtype(dtype), np.floating):
            raise DTypeError(f"Parameter: dtype must be floating point, got {np.dtype(dtype)}")
        super().__init__(data, requires_grad=requires_grad, dtype=dtype, name=name)

    def __repr__(self):
        body = np.array2string(self.numpy(), separator=", ", prefix="Parameter(")
        extra = f", dtype={self.dtype}" if self.dtype != np.float64 else ""
        return f"Parameter({body}{extra})"


# Every structural change to any module (an attribute set, a tracked list or dict changed) bumps
# this counter; a module's cached parameter list is valid while the counter has not moved.
_generation = [0]


def _changed():
    _generation[0] += 1


class _TrackedList(list):
    """A list attribute of a Module: changing it invalidates cached parameter lists."""

    __slots__ = ()

    def _wrap(name):
        base = getattr(list, name)

        def method(self, *args):
            out = base(self, *args)
            _changed()
            return self if name in ("__iadd__", "__imul__") else out

        method.__name__ = name
        return method

    for _name in ("append", "extend", "insert", "remove", "pop", "clear", "reverse",
                  "__setitem__", "__delitem__", "__iadd__", "__imul__"):
        locals()[_name] = _wrap(_name)
    del _name, _wrap

    def sort(self, *, key=None, reverse=False):
        list.sort(self, key=key, reverse=reverse)
        _changed()


class _TrackedDict(dict):
    """A dict attribute of a Module: changing it invalidates cached parameter lists."""

    __slots__ = ()

    def _wrap(name):
        base = getattr(dict, name)

        def method(self, *args, **kwargs):
            out = base(self, *args, **kwargs)
            _changed()
            return self if name == "__ior__" else out

        method.__name__ = name
        return method

    for _name in ("__setitem__", "__delitem__", "pop", "popitem", "clear", "update", "setdefault", "__ior__"):
        locals()[_name] = _wrap(_name)
    del _name, _wrap


_INTERNAL = frozenset(("training", "_param_cache", "metadata"))  # never hold parameters

# Module classes by name, so that a saved config can be rebuilt (cr.nn.load).
MODULE_CLASSES: dict[str, type] = {}


def register_module(cls):
    """Make ``cls`` loadable by name from a saved config (subclasses register themselves)."""
    MODULE_CLASSES[cls.__name__] = cls
    return cls


class Module:
    """Base class of layers and models. Parameters are found by walking the attributes in the
    order they were set (Parameters, Modules, and lists, tuples and dicts of them), so a
    subclass only assigns them in ``__init__`` and writes ``forward``.

    >>> import chainrule as cr
    >>> class Affine(Module):
    ...     def __init__(self):
    ...         self.w = Parameter([2.0])
    ...         self.b = Parameter([1.0])
    ...     def forward(self, x):
    ...         return x * self.w + self.b
    >>> m = Affine()
    >>> [name for name, _ in m.named_parameters()]
    ['w', 'b']
    >>> m(cr.tensor([3.0])).item()
    7.0
    """

    training = True

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        register_module(cls)

    def __setattr__(self, name, value):
        # Plain lists and dicts become tracked ones so that appending a layer later is noticed.
        if type(value) is list:
            value = _TrackedList(value)
        elif type(value) is dict:
            value = _TrackedDict(value)
        object.__setattr__(self, name, value)
        if name != "_param_cache":
            _generation[0] += 1

    def __delattr__(self, name):
        object.__delattr__(self, name)
        _generation[0] += 1

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    # -- parameters ---------------------------------------------------------
    def _walk(self):
        """(dotted name, owner, key) for every parameter slot, shared parameters once."""
        out, seen, visited = [], set(), set()

        def visit(prefix, value, owner, key):
            if isinstance(value, Parameter):
                if id(value) not in seen:
                    seen.add(id(value))
                    out.append((prefix, owner, key))
            elif isinstance(value, Module):
                if id(value) in visited:
                    return
                visited.add(id(value))
                for name, v in vars(value).items():
                    if name not in _INTERNAL:
                        visit(f"{prefix}.{name}" if prefix else name, v, value, name)
            elif isinstance(value, (list, tuple)):
                for i, v in enumerate(value):
                    visit(f"{prefix}.{i}", v, value, i)
            elif isinstance(value, dict):
                for k, v in value.items():
                    visit(f"{prefix}.{k}", v, value, k)

        visit("", self, None, None)
        return out

    def named_parameters(self):
        """[(dotted name, Parameter)] in a stable order: ``layers.0.weight``, ``layers.0.bias``, ..."""
        cache = self.__dict__.get("_param_cache")
        if cache is None or cache[0] != _generation[0]:
            named = [(name, owner[key] if not isinstance(owner, Module) else getattr(owner, key))
                     for name, owner, key in self._walk()]
            cache = (_generation[0], named, [p for _, p in named])
            object.__setattr__(self, "_param_cache", cache)
        return list(cache[1])

    def parameters(self):
        """The list of Parameters (cached until the module's structure changes)."""
        cache = self.__dict__.get("_param_cache")
        if cache is None or cache[0] != _generation[0]:
            self.named_parameters()
            cache = self.__dict__["_param_cache"]
        return list(cache[2])

    def num_parameters(self) -> int:
        """Number of scalar weights (entries of all parameters)."""
        return sum(int(p.data.size) for p in self.parameters())

    def zero_grad(self):
        """Forget accumulated gradients (sets every ``.grad`` to None)."""
        for p in self.parameters():
            p.grad = None

    def modules(self):
        """This module and every module inside it, depth first, each once."""
        out, seen = [], set()

        def visit(v):
            if isinstance(v, Module):
                if id(v) in seen:
                    return
                seen.add(id(v))
                out.append(v)
                for name, w in vars(v).items():
                    if name not in _INTERNAL:
                        visit(w)
            elif isinstance(v, (list, tuple)):
                for w in v:
                    visit(w)
            elif isinstance(v, dict):
                for w in v.values():
                    visit(w)

        visit(self)
        return out

    def train(self, mode=True):
        """Set training mode on this module and all inside it; returns self."""
        for m in self.modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self):
        """Set evaluation mode (``train(False)``); returns self."""
        return self.train(False)

    # -- state --------------------------------------------------------------
    def state_dict(self) -> dict:
        """{dotted name: numpy array} (copies, so later training does not change them)."""
        return {name: np.array(p.numpy(), copy=True) for name, p in self.named_parameters()}

    def load_state_dict(self, state, strict=True):
        """Copy arrays from ``state`` into the parameters, checking names, shapes and dtypes.

        With ``strict`` every parameter must be present and nothing else; dtypes must match
        exactly (a float32 model does not silently take float64 weights).
        """
        named = dict(self.named_parameters())
        problems = []
        missing = [n for n in named if n not in state]
        unexpected = [n for n in state if n not in named]
        if strict and missing:
            problems.append(f"missing {', '.join(missing)}")
        if strict and unexpected:
            problems.append(f"unexpected {', '.join(map(str, unexpected))}")
        arrays = {}
        for name, p in named.items():
            if name not in state:
                continue
            a = state[name]
            a = a.numpy() if isinstance(a, Tensor) else np.asarray(a)
            if a.shape != p.shape:
                problems.append(f"{name}: shape {a.shape} in the state, {p.shape} in the model")
            elif a.dtype != p.dtype:
                problems.append(f"{name}: dtype {a.dtype} in the state, {p.dtype} in the model")
            else:
                arrays[name] = a
        if problems:
            raise ShapeError(f"load_state_dict into {type(self).__name__}: " + "; ".join(problems))
        for name, a in arrays.items():
            p = named[name]
            np.copyto(p.data, a)
            p._version += 1  # graphs recorded before the load must not be walked with new weights

    # -- configuration and files --------------------------------------------
    def config(self) -> dict:
        """{"class": name, **constructor arguments}: enough to rebuild the architecture."""
        raise NotImplementedError(
            f"{type(self).__name__} has no config(); define config() returning "
            "{'class': ..., **constructor args} so it can be saved and loaded")

    @classmethod
    def from_config(cls, config: dict):
        """Rebuild a module from :meth:`config` (weights are initialised, not loaded)."""
        args = {k: v for k, v in config.items() if k != "class"}
        return cls(**args)

    def save(self, path, metadata=None):
        """Save architecture and weights to one safetensors file (see :func:`chainrule.nn.save`)."""
        from chainrule.nn.io import save

        save(self, path, metadata=metadata)

    # -- display ------------------------------------------------------------
    def extra_repr(self) -> str:
        return ""

    def _repr_children(self):
        out = []
        for name, v in vars(self).items():
            if isinstance(v, Module):
                out.append((name, v))
            elif isinstance(v, (list, tuple)):
                out.extend((f"{name}.{i}", w) for i, w in enumerate(v) if isinstance(w, Module))
            elif isinstance(v, dict):
                out.extend((f"{name}.{k}", w) for k, w in v.items() if isinstance(w, Module))
        return out

    def _repr_html_(self):
        """Jupyter: the structure, then one row per parameter with its shape and size."""
        import html

        from chainrule.viz.page import html_table

        rows = [[name, " x ".join(map(str, p.data.shape)) or "scalar", f"{p.data.size:,}", str(p.data.dtype)]
                for name, p in self.named_parameters()]
        table = html_table(["parameter", "shape", "entries", "dtype"], rows, numeric=(2,),
                           caption=f"{type(self).__name__}: {self.num_parameters():,} parameters")
        return f'<div class="chainrule"><pre>{html.escape(repr(self))}</pre>{table}</div>'

    def __repr__(self):
        children = self._repr_children()
        head = f"{type(self).__name__}({self.extra_repr()}"
        if not children:
            return head + ")"
        lines = [head]
        for name, child in children:
            lines.append(f"  ({name}): " + repr(child).replace("\n", "\n  "))
        return "\n".join(lines) + "\n)"


def functional_call(module: Module, params: dict, *args, **kwargs):
    """Call ``module`` with some parameters replaced by the given values (arrays, Tensors,
    traced values), restoring them afterwards: how the functional API (``cr.grad``,
    ``check_grads``) differentiates a model with respect to its weights.

    >>> import numpy as np, chainrule as cr
    >>> lin = cr.nn.Linear(2, 1, init="zeros")
    >>> functional_call(lin, {"weight": np.array([[1.0, 2.0]])}, np.array([[3.0, 4.0]])).item()
    11.0
    """
    slots = {name: (owner, key) for name, owner, key in module._walk()}
    unknown = [n for n in params if n not in slots]
    if unknown:
        raise KeyError(f"functional_call: {type(module).__name__} has no parameter(s) {unknown}; "
                       f"it has {list(slots)}")
    saved = []
    try:
        for name, value in params.items():
            owner, key = slots[name]
            if isinstance(owner, Module):
                saved.append((owner, key, getattr(owner, key)))
                object.__setattr__(owner, key, value)
            else:
                saved.append((owner, key, owner[key]))
                list.__setitem__(owner, key, value) if isinstance(owner, list) else dict.__setitem__(owner, key, value)
        return module(*args, **kwargs)
    finally:
        for owner, key, old in reversed(saved):
            if isinstance(owner, Module):
                object.__setattr__(owner, key, old)
            elif isinstance(owner, list):
                list.__setitem__(owner, key, old)
            else:
                dict.__setitem__(owner, key, old)
