"""The functions users call: every primitive with a numpy-like signature, and the composites.

Each accepts Tensors, arrays and Python scalars alike: with a Tensor (or another traced value)
among the arguments the result is traced; on plain arrays it is exactly numpy's result.
"""
from __future__ import annotations

import numpy as np

from chainrule.core import primitives as P
from chainrule.core.registry import _NO_PARAMS, REGISTRY, STATE, bind

# Elementwise primitives take no parameters: the operation is the public function itself.
add, subtract, negative, multiply, divide, power = P.add, P.subtract, P.negative, P.multiply, P.divide, P.power
exp, log, sin, cos, tanh, sqrt, abs, sign = P.exp, P.log, P.sin, P.cos, P.tanh, P.sqrt, P.abs, P.sign
relu, sigmoid, softplus, maximum, minimum, matmul = P.relu, P.sigmoid, P.softplus, P.maximum, P.minimum, P.matmul
equal, not_equal, greater, greater_equal, less, less_equal = (
    P.equal, P.not_equal, P.greater, P.greater_equal, P.less, P.less_equal)
unbroadcast, swapaxes = P.unbroadcast, P.swapaxes


def _axis(axis):
    return tuple(axis) if isinstance(axis, list) else axis


def where(condition, x, y):
    """``x`` where ``condition`` else ``y`` (broadcasting); the condition is not differentiated."""
    if hasattr(condition, "data") and not isinstance(condition, np.ndarray):
        condition = np.asarray(condition)
    return P.where(condition, x, y)


def sum(x, axis=None, keepdims=False):
    r"""$\sum_i x_i$ over ``axis`` (None: every axis)."""
    if axis is None and not keepdims:
        return P.sum(x)  # the defaults: no parameters to pass along (a loss's sum, on the hot path)
    return P.sum(x, axis=_axis(axis), keepdims=keepdims)


def mean(x, axis=None, keepdims=False):
    r"""$\frac1n \sum_i x_i$ over ``axis``."""
    if axis is None and not keepdims:
        return P.mean(x)
    return P.mean(x, axis=_axis(axis), keepdims=keepdims)


def max(x, axis=None, keepdims=False):
    """Largest entry over ``axis``; tied maxima share the derivative equally."""
    return P.max(x, axis=_axis(axis), keepdims=keepdims)


def min(x, axis=None, keepdims=False):
    """Smallest entry over ``axis``: -max(-x)."""
    return P.negative(P.max(P.negative(x), axis=_axis(axis), keepdims=keepdims))


def logsumexp(x, axis=None, keepdims=False):
    r"""$\log \sum_i e^{x_i}$, shifted by the max so it never overflows."""
    return P.logsumexp(x, axis=_axis(axis), keepdims=keepdims)


def softmax(x, axis=-1):
    r"""$e^{x_i} / \sum_j e^{x_j}$ along ``axis`` (stable for inputs of any size)."""
    return P.softmax(x, axis=axis)


def log_softmax(x, axis=-1):
    r"""$x_i - \log\sum_j e^{x_j}$: a composite, stable because logsumexp is."""
    return P.subtract(x, P.logsumexp(x, axis=axis, keepdims=True))


def reshape(x, shape):
    """The same entries in another shape (one entry may be -1)."""
    return P.reshape(x, shape=(shape,) if isinstance(shape, int) else tuple(shape))


def transpose(x, axes=None):
    """Permute the axes (None: reverse them)."""
    return P.transpose(x, axes=None if axes is None else tuple(axes))


def broadcast_to(x, shape):
    """``x`` repeated along broadcast axes to ``shape``."""
    return P.broadcast_to(x, shape=tuple(shape))


def concatenate(arrays, axis=0):
    """Join a sequence of arrays along an existing axis."""
    return P.concatenate(*arrays, axis=axis)


def stack(arrays, axis=0):
    """Join a sequence of arrays along a new axis."""
    return P.stack(*arrays, axis=axis)


def astype(x, dtype):
    """``x`` cast to ``dtype``; the derivative is cast back."""
    return P.astype(x, dtype=np.dtype(dtype))


def square(x):
    """x * x."""
    return P.multiply(x, x)


def concrete(x):
    """The plain value inside any traced value (for indices, which are positions, not numbers
    to differentiate)."""
    if isinstance(x, tuple):
        return tuple(concrete(i) for i in x)
    while hasattr(x, "_bind"):  # a Box: Tensor keeps .data, Dual keeps .primal
        x = x.primal if hasattr(x, "primal") else x.data
    if isinstance(x, range):
        return np.arange(x.start, x.stop, x.step)
    if isinstance(x, list):
        return np.asarray(x)
    return x


def _numpy_args(x, what, dtype, out):
    """``x`` (cast to ``dtype``) for a reduction called the numpy way; ``out`` cannot be honoured."""
    if out is not None:
        raise TypeError(f"{what}: out= is not supported on {type(x).__name__}s (results are new values)")
    return x if dtype is None else astype(x, dtype)


# numpy's ufuncs that are primitives of the registry (np.exp, np.add, np.maximum, np.matmul, ...).
_UFUNC_PRIMS = {p.impl: p for p in REGISTRY.values() if isinstance(p.impl, np.ufunc)}


def _traced(v):
    """True for a value through which a derivative is being taken now: a Tensor that requires a
    gradient while gradients are recorded, or any other box (Dual, symbolic value)."""
    if not isinstance(v, ArrayOperators):
        return False
    if hasattr(v, "requires_grad"):
        return v.requires_grad and STATE.grad_enabled
    return True


def _plain_ufunc(ufunc, method, inputs, kwargs):
    """A ufunc without a primitive: computed on the plain values, unless a derivative is being
    traced through one of them (it would be lost without a word)."""
    for v in (*inputs, *kwargs.get("out", ())):
        if _traced(v):
            name = ufunc.__name__ if method == "__call__" else f"{ufunc.__name__}.{method}"
            raise TypeError(f"numpy.{name} has no derivative rule in chainrule, so it cannot be applied to a "
                            f"{type(v).__name__} that is being differentiated; use the chainrule function "
                            "(cr.exp, cr.maximum, cr.sum, ...) or apply it to x.detach().numpy()")
    if "out" in kwargs:
        return NotImplemented
    return getattr(ufunc, method)(*[concrete(v) for v in inputs], **kwargs)


class ArrayOperators:
    """numpy's operator and method surface for every kind of traced value (Tensor, Dual, symbolic
    values): each operator applies the registry's primitive, so each mode gets them for free."""

    __slots__ = ()

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        """numpy's ufuncs on traced values: a ufunc that is a primitive (``np.exp(x)``,
        ``np.maximum(x, 0)``, ``array * x``) applies it, so the result stays differentiable;
        any other runs on the plain values, or is refused while a derivative is traced through it."""
        if method == "__call__" and not kwargs:
            prim = _UFUNC_PRIMS.get(ufunc)
            if prim is not None:  # numpy only asks when a box is among the inputs
                return bind(prim, inputs, _NO_PARAMS)
        return _plain_ufunc(ufunc, method, inputs, kwargs)

    def __add__(self, o): return P.add(self, o)
    def __radd__(self, o): return P.add(o, self)
    def __sub__(self, o): return P.subtract(self, o)
    def __rsub__(self, o): return P.subtract(o, self)
    def __mul__(self, o): return P.multiply(self, o)
    def __rmul__(self, o): return P.multiply(o, self)
    def __truediv__(self, o): return P.divide(self, o)
    def __rtruediv__(self, o): return P.divide(o, self)
    def __pow__(self, o): return P.power(self, o)
    def __rpow__(self, o): return P.power(o, self)
    def __matmul__(self, o): return P.matmul(self, o)
    def __rmatmul__(self, o): return P.matmul(o, self)
    def __neg__(self): return P.negative(self)
    def __pos__(self): return self
    def __abs__(self): return P.abs(self)
    def __eq__(self, o): return P.equal(self, o)
    def __ne__(self, o): return P.not_equal(self, o)
    def __lt__(self, o): return P.less(self, o)
    def __le__(self, o): return P.less_equal(self, o)
    def __gt__(self, o): return P.greater(self, o)
    def __ge__(self, o): return P.greater_equal(self, o)
    __hash__ = object.__hash__  # __eq__ is elementwise, identity stays the hash

    def __getitem__(self, index):
        return P.getitem(self, index=concrete(index))

    T = property(lambda self: P.transpose(self, axes=None))

    def reshape(self, *shape):
        return reshape(self, shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape)

    def transpose(self, *axes):
        return transpose(self, (axes[0] if len(axes) == 1 and isinstance(axes[0], (tuple, list)) else axes) or None)

    # dtype and out are accepted so that numpy's np.sum(x), np.mean(x), ... can call these
    def sum(self, axis=None, keepdims=False, dtype=None, out=None):
        return sum(_numpy_args(self, "sum", dtype, out), axis, keepdims)

    def mean(self, axis=None, keepdims=False, dtype=None, out=None):
        return mean(_numpy_args(self, "mean", dtype, out), axis, keepdims)

    def max(self, axis=None, keepdims=False, out=None):
        return max(_numpy_args(self, "max", None, out), axis, keepdims)

    def min(self, axis=None, keepdims=False, out=None):
        return min(_numpy_args(self, "min", None, out), axis, keepdims)

    def astype(self, dtype): return astype(self, dtype)
    def exp(self): return P.exp(self)
    def log(self): return P.log(self)
    def sin(self): return P.sin(self)
    def cos(self): return P.cos(self)
    def tanh(self): return P.tanh(self)
    def sqrt(self): return P.sqrt(self)
    def sigmoid(self): return P.sigmoid(self)
    def relu(self): return P.relu(self)
    def abs(self): return P.abs(self)
