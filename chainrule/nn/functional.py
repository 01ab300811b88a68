"""Losses and activations as plain functions of Tensors (or arrays, or any traced value).

Every loss takes ``reduction="mean" | "sum" | "none"`` and is stable for logits of any size
(value and gradient stay finite for logits of +-1000).
"""
from __future__ import annotations

import math

import numpy as np

from chainrule.core import primitives as P
from chainrule.core.primitives import _class_labels_impl
from chainrule.core.errors import DTypeError, ShapeError
from chainrule.core.ops import log_softmax, softmax
from chainrule.core.registry import Box
from chainrule.core.tensor import Tensor

__all__ = ["relu", "sigmoid", "tanh", "softplus", "leaky_relu", "identity", "softmax", "log_softmax",
           "linear", "mse_loss", "binary_cross_entropy", "binary_cross_entropy_with_logits",
           "cross_entropy", "nll_loss", "REDUCTIONS"]

relu, sigmoid, tanh, softplus = P.relu, P.sigmoid, P.tanh, P.softplus
REDUCTIONS = ("mean", "sum", "none")


def identity(x):
    """x."""
    return x


def leaky_relu(x, negative_slope=0.01):
    r"""$x$ for $x > 0$, else $\alpha x$ (derivative $\alpha$ at 0, as PyTorch)."""
    return P.where(P.greater(x, 0), x, P.multiply(x, negative_slope))


def linear(x, weight, bias=None):
    r"""$x W^\top + b$ with ``weight`` of shape (out, in)."""
    if bias is None:
        return P.matmul(x, P.transpose(weight, axes=None))
    return P.linear(x, weight, bias)


# ---------------------------------------------------------------- helpers
def _check_reduction(reduction, who):
    if reduction not in REDUCTIONS:
        raise ValueError(f"{who}: reduction must be one of {', '.join(map(repr, REDUCTIONS))}, got {reduction!r}")


def _reduce(loss, reduction):
    if reduction == "mean":
        return P.mean(loss)
    if reduction == "sum":
        return P.sum(loss)
    return loss


def _dtype(x):
    """dtype of an array, Tensor or traced value (cheaply: this is on every training step)."""
    d = x.data if isinstance(x, Tensor) else x
    return d.dtype if isinstance(d, np.ndarray) else P.dtype_of(d)


def as_dtype(x, dtype, who, refusal):
    """``x`` (Tensor, traced value, array or list) as numbers of ``dtype``, and its shape; an array
    of anything but numbers is a DTypeError: ``who + refusal`` followed by its dtype (the message
    is only built then: this runs on every training step)."""
    if isinstance(x, Box):
        if _dtype(x) != dtype:
            x = P.astype(x, dtype=dtype)
        return x, P.shape_of(x)
    if type(x) is not np.ndarray:
        x = np.asarray(x)
    if x.dtype != dtype:
        if x.dtype.kind not in "biuf":
            raise DTypeError(f"{who}{refusal} dtype {x.dtype}")
        x = x.astype(dtype)
    return x, x.shape


def _target_like(target, input, who):
    """``target`` in the input's dtype and shape. A target with as many entries as the input
    (labels (n,) for outputs (n, 1)) is reshaped; anything else is a ShapeError, because
    broadcasting (n,) against (n, 1) would silently compare every pair."""
    dtype, shape = _dtype(input), P.shape_of(input)
    if dtype.kind != "f":
        dtype = np.dtype(np.float64)
    target, tshape = as_dtype(target, dtype, who, ": targets must be numbers, got")
    if tshape != shape:
        if math.prod(tshape) != math.prod(shape):
            raise ShapeError(f"{who}: input has shape {shape} but target has shape {tshape}")
        target = target.reshape(shape) if isinstance(target, np.ndarray) else P.reshape(target, shape=shape)
    return target


def _values(x):
    """The plain numpy value of x, or None for a traced value that is not a Tensor."""
    if isinstance(x, Tensor):
        x = x.data
    return None if isinstance(x, Box) else np.asarray(x)


def _labels(target, n, k, who):
    """Integer class labels (n,) in 0..k-1, checked (``class_labels``): a numpy array, or in a
    function being compiled, the program's checked labels (checked again on every call)."""
    lab = _values(target)
    if lab is None:
        # Only cr.compile's values are data at their level; labels that carry a derivative are not
        if not getattr(type(target), "_opaque", False):
            raise TypeError(f"{who}: class labels must be data (an array or Tensor), not a traced value")
        lab = target
    shape = P.shape_of(lab)
    if shape != (n,):
        raise ShapeError(f"{who}: {n} rows of scores but labels of shape {shape} (expected ({n},))")
    if lab is target:
        return P.class_labels(lab, classes=k, who=who)
    return _class_labels_impl(lab, k, who)


def _scores_2d(x, who):
    shape = P.shape_of(x)
    if len(shape) != 2:
        raise ShapeError(f"{who}: expected scores of shape (n, n_classes), got shape {shape}")
    return shape


_ARANGE: dict = {}


def _rows(n):
    # np.arange(n) for the row index of logp[rows, labels]; batches repeat sizes, so cache it.
    r = _ARANGE.get(n)
    if r is None:
        r = _ARANGE[n] = np.arange(n)
        r.flags.writeable = False
    return r


# ---------------------------------------------------------------- losses
def mse_loss(input, target, reduction="mean"):
    r"""Mean squared error (the quadratic loss, PyTorch's definition):
    $\frac1N \sum_i (\hat y_i - y_i)^2$ over all entries.

    >>> float(mse_loss(np.array([1.0, 2.0]), np.array([0.0, 0.0])))
    2.5
    """
    _check_reduction(reduction, "mse_loss")
    d = P.subtract(input, _target_like(target, input, "mse_loss"))
    return _reduce(P.multiply(d, d), reduction)


def _in_unit_interval(x, what, who, hint=""):
    # NaN fails both comparisons, so it is refused too (traced values cannot be checked)
    v = _values(x)
    if v is not None and v.size and not (v.min() >= 0 and v.max() <= 1):
        raise ValueError(f"{who}: {what} in [0, 1] (got values from {v.min():.4g} to {v.max():.4g}){hint}")


def binary_cross_entropy(input, target, reduction="mean"):
    r"""$-[y \log p + (1 - y) \log(1 - p)]$ for probabilities $p$ and targets $y$ in [0, 1], with
    PyTorch's conventions at the edges: each log is clamped at -100 and the derivative
    $(p - y) / \max(p (1 - p), 10^{-12})$ stays finite at $p = 0$ and $1$. Prefer
    :func:`binary_cross_entropy_with_logits` on logits.

    >>> round(float(binary_cross_entropy(np.array([0.8]), np.array([1.0]))), 6)
    0.223144
    """
    who = "binary_cross_entropy"
    _check_reduction(reduction, who)
    y = _target_like(target, input, who)
    _in_unit_interval(input, "input must be probabilities", who, "; for logits use binary_cross_entropy_with_logits")
    _in_unit_interval(y, "targets must be", who)
    return _reduce(P.binary_cross_entropy(input, y), reduction)


def binary_cross_entropy_with_logits(input, target, reduction="mean"):
    r"""Binary cross-entropy of logits $z$: $\mathrm{softplus}(z) - y z$, which equals
    $-[y\log\sigma(z) + (1-y)\log(1-\sigma(z))]$ but never overflows; gradient $\sigma(z) - y$.

    >>> round(float(binary_cross_entropy_with_logits(np.array([1000.0]), np.array([0.0]))), 3)
    1000.0
    """
    _check_reduction(reduction, "binary_cross_entropy_with_logits")
    y = _target_like(target, input, "binary_cross_entropy_with_logits")
    return _reduce(P.subtract(P.softplus(input), P.multiply(y, input)), reduction)


def cross_entropy(input, target, reduction="mean"):
    r"""Softmax cross-entropy of logits (n, K): $-\log \mathrm{softmax}(z_i)_{y_i}$ averaged over
    rows, computed as ``log_softmax`` + ``logp[range(n), labels]`` (stable for any logits).

    ``target`` is integer class labels (n,), or one-hot / probability rows of shape (n, K)
    (then the loss of a row is $-\sum_k t_k \log \mathrm{softmax}(z)_k$).

    >>> round(float(cross_entropy(np.array([[2.0, 0.0]]), np.array([0]))), 6)
    0.126928
    """
    _check_reduction(reduction, "cross_entropy")
    n, k = _scores_2d(input, "cross_entropy")
    tshape = P.shape_of(target) if isinstance(target, Box) else np.shape(target)
    if tshape == (n, k):
        t = _target_like(target, input, "cross_entropy")
        logp = log_softmax(input, axis=-1)
        return _reduce(P.negative(P.sum(P.multiply(t, logp), axis=-1)), reduction)
    labels = _labels(target, n, k, "cross_entropy")
    # -log softmax(z)_y = logsumexp(z) - z_y: the same numbers as picking from log_softmax
    # (IEEE subtraction is antisymmetric), without its (n, K) array and its backward.
    picked = P.getitem(input, index=(_rows(n), labels))
    return _reduce(P.subtract(P.logsumexp(input, axis=-1), picked), reduction)


def nll_loss(input, target, reduction="mean"):
    r"""Negative log-likelihood of log-probabilities (n, K) and labels (n,):
    $-\frac1n\sum_i \mathrm{logp}_{i, y_i}$. ``cross_entropy(z, y) == nll_loss(log_softmax(z), y)``.

    >>> round(float(nll_loss(np.log(np.array([[0.25, 0.75]])), np.array([1]))), 6)
    0.287682
    """
    _check_reduction(reduction, "nll_loss")
    n, k = _scores_2d(input, "nll_loss")
    labels = _labels(target, n, k, "nll_loss")
    return P.negative(_reduce(P.getitem(input, index=(_rows(n), labels)), reduction))
