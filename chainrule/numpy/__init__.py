"""numpy's surface over chainrule's registry: ``import chainrule.numpy as np`` in place of numpy.

Each function has numpy's name, signature and keyword arguments. On plain data it *is* numpy's
function (numpy's result, dtype and shape); when a chainrule value (a Tensor, a value traced by
``cr.grad``, a Dual, a symbolic value) is among its arguments, at any depth of a list, the same
call is computed from the registry's primitives, so it is differentiable in every mode. A numpy
function chainrule has no rule for is numpy's own: it works on plain data and, through numpy's
``__array_function__``, refuses a value that carries a derivative, naming the function.

>>> import chainrule as cr
>>> import chainrule.numpy as np
>>> float(cr.grad(lambda x: np.sum(np.cumsum(np.array([x, 2 * x]))))(1.0))   # x + (x + 2x)
4.0
"""
from __future__ import annotations

import numpy as _np

from chainrule.core import ops as _ops
from chainrule.core.registry import REGISTRY as _REGISTRY


def _dispatching(np_fn, cr_fn, name):
    """numpy's ``np_fn`` on plain data, chainrule's ``cr_fn`` when a chainrule value is an argument."""
    def fn(*args, **kwargs):
        if _ops.has_box((args, kwargs)):
            return cr_fn(*args, **kwargs)
        return np_fn(*args, **kwargs)
    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = getattr(cr_fn, "__doc__", None) or getattr(np_fn, "__doc__", None)
    fn.__module__ = __name__
    fn.numpy = np_fn
    fn.chainrule = cr_fn
    return fn


def _ufunc(ufunc, prim):
    """A ufunc that is a primitive: the primitive on chainrule values (no ufunc options there)."""
    op = prim.op

    def on_values(*inputs, **kwargs):
        if kwargs:
            return _ops._plain_ufunc(ufunc, "__call__", inputs, kwargs)  # refused while traced
        return op(*[_ops._arr(x) for x in inputs])
    on_values.__doc__ = prim.doc
    on_values.primitive = prim
    return on_values


def _build():
    """name -> function for every public numpy name with a chainrule implementation."""
    prims = {p.impl: p for p in _REGISTRY.values() if isinstance(p.impl, _np.ufunc)}
    out = {}
    for name in dir(_np):
        if name.startswith("_"):
            continue
        obj = getattr(_np, name, None)
        try:
            prim = prims.get(obj)
            impl = _ops.NUMPY_FUNCTIONS.get(obj)
        except TypeError:  # unhashable
            continue
        if prim is not None:
            out[name] = _dispatching(obj, _ufunc(obj, prim), name)
        elif impl is not None:
            out[name] = _dispatching(obj, impl, name)
    # numpy's constructors do not dispatch: chainrule's stack the values they are given
    for name in ("array", "asarray", "asanyarray", "ascontiguousarray"):
        np_fn = getattr(_np, name)
        out[name] = _dispatching(np_fn, _ops.array if name == "array" else
                                 (lambda a, dtype=None, *args, **kw: _ops.array(a, dtype)), name)
    out["full"] = _dispatching(_np.full, _ops.full, "full")
    return out


_FUNCTIONS = _build()
globals().update(_FUNCTIONS)

try:  # numpy.linalg over chainrule's linear algebra, where it exists
    from chainrule.numpy import linalg
except ImportError:  # pragma: no cover - before chainrule.numpy.linalg exists: numpy's own
    linalg = _np.linalg

__all__ = sorted(_FUNCTIONS)


def __getattr__(name):
    """Every other numpy name as numpy has it: constants, dtypes, and functions that chainrule
    does not differentiate (numpy's dispatch refuses them on a value that carries a derivative)."""
    try:
        return getattr(_np, name)
    except AttributeError:
        raise AttributeError(f"module 'chainrule.numpy' has no attribute {name!r} (numpy has none either)") from None


def __dir__():
    return sorted(set(globals()) | set(dir(_np)))


def kind(name):
    """How chainrule computes numpy's ``name``: 'primitive', 'composition', 'no derivative' (a
    result that carries none: shapes, positions, comparisons) or None (numpy's own: refused on
    values that carry a derivative)."""
    fn = _FUNCTIONS.get(name)
    if fn is None:
        return None
    impl = fn.chainrule
    prim = getattr(impl, "primitive", None)
    if prim is not None:
        return "primitive" if prim.differentiable else "no derivative"
    if impl in _PLAIN:
        return "no derivative"
    return "composition"


_PLAIN = {f for f in _ops.NUMPY_FUNCTIONS.values() if getattr(f, "__name__", "") == "on_values"}


def coverage_table():
    """The README's coverage table, generated from the registry and numpy's table."""
    groups = {}
    for name in __all__:
        groups.setdefault(kind(name), []).append(name)
    lines = ["| chainrule.numpy | functions |", "|---|---|"]
    titles = {"primitive": f"primitives of the registry ({len(groups.get('primitive', []))}), reverse and forward rules",
              "composition": f"compositions of primitives ({len(groups.get('composition', []))}), differentiable in every mode",
              "no derivative": f"results without a derivative ({len(groups.get('no derivative', []))}): "
                               "shapes, positions, comparisons"}
    for k in ("primitive", "composition", "no derivative"):
        lines.append(f"| {titles[k]} | {', '.join(f'`{n}`' for n in groups.get(k, []))} |")
    lines.append("| anything else numpy has | numpy's own: works on plain data, refused (naming it) on a "
                 "value that carries a derivative |")
    return "\n".join(lines)

