"""Gradient clipping: rescale gradients by replacing ``.grad`` (gradient arrays can be shared)."""
from __future__ import annotations

import math

import numpy as np

from chainrule.core.tensor import _new
from chainrule.optim.optimizer import as_params, check_number

__all__ = ["clip_grad_norm_", "clip_grad_value_"]


def _with_grads(params, who):
    return [p for p in as_params(params, who) if p.grad is not None]


def clip_grad_norm_(params, max_norm, norm_type=2.0, error_if_nonfinite=False) -> float:
    r"""Scale all gradients together so that their joint norm
    $\|(g_1, \dots, g_k)\|_p$ is at most ``max_norm``; returns the norm before clipping.

    Each ``p.grad`` is replaced by a new Tensor (never changed in place). A non-finite norm
    leaves the gradients alone (or raises with ``error_if_nonfinite=True``).

    >>> import chainrule as cr
    >>> w = cr.nn.Parameter([3.0, 4.0]); w.grad = cr.tensor([3.0, 4.0])
    >>> clip_grad_norm_([w], 1.0), [round(g, 6) for g in w.grad.tolist()]
    (5.0, [0.6, 0.8])
    """
    max_norm = check_number(max_norm, "max_norm", "clip_grad_norm_")
    norm_type = float(norm_type)
    if not (norm_type > 0):
        raise ValueError(f"clip_grad_norm_: norm_type must be positive or inf, got {norm_type}")
    params = _with_grads(params, "clip_grad_norm_")
    grads = [p.grad.numpy() for p in params]
    if not grads:
        return 0.0
    if norm_type == math.inf:
        total = max(float(np.max(np.abs(g), initial=0.0)) for g in grads)
    elif norm_type == 2.0:
        total = math.sqrt(sum(float(np.vdot(g, g)) for g in grads))
    else:
        total = sum(float(np.sum(np.abs(g) ** norm_type)) for g in grads) ** (1 / norm_type)
    if not math.isfinite(total):
        if error_if_nonfinite:
            raise FloatingPointError(f"clip_grad_norm_: the gradient norm is {total}")
        return total
    coef = max_norm / (total + 1e-6)  # the 1e-6 keeps a zero norm from dividing by zero
    if coef < 1.0:
        for p, g in zip(params, grads):
            p.grad = _new(g * np.asarray(coef, dtype=g.dtype), p.grad._level)
    return total


def clip_grad_value_(params, clip_value):
    """Clip every gradient entry to [-clip_value, clip_value] (replacing ``.grad``).

    >>> import chainrule as cr
    >>> w = cr.nn.Parameter([1.0, -5.0]); w.grad = cr.tensor([1.0, -5.0])
    >>> clip_grad_value_([w], 2.0); w.grad.tolist()
    [1.0, -2.0]
    """
    clip_value = check_number(clip_value, "clip_value", "clip_grad_value_")
    for p in _with_grads(params, "clip_grad_value_"):
        g = p.grad.numpy()
        p.grad = _new(np.clip(g, -clip_value, clip_value), p.grad._level)
