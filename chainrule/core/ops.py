"""The functions users call: every primitive with a numpy-like signature, and the composites.

Each accepts Tensors, arrays and Python scalars alike: with a Tensor (or another traced value)
among the arguments the result is traced; on plain arrays it is exactly numpy's result.
"""
from __future__ import annotations

import numpy as np

from chainrule.core import primitives as P

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
    return P.sum(x, axis=_axis(axis), keepdims=keepdims)


def mean(x, axis=None, keepdims=False):
    r"""$\frac1n \sum_i x_i$ over ``axis``."""
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
