"""Gradient checks users can run on their own functions and primitives.

``check_grads`` compares every differentiation mode that chainrule has against float64 central
differences along random directions: for a random input direction v and output direction u,
each mode's <u, J v> must match (f(x + h v) - f(x - h v)) / 2h projected on u.
"""
from __future__ import annotations

import numpy as np

from chainrule.core.primitives import shape_of
from chainrule.core.primitives import sum as sum_
from chainrule.core.tensor import Tensor

# name -> function(f, args, u, v) returning <u, J v>; forward mode registers itself here too.
MODES: dict = {}


def _as_float64(a):
    a = a.numpy() if isinstance(a, Tensor) else np.asarray(a)
    if not np.issubdtype(a.dtype, np.inexact):
        raise TypeError(f"check_grads: arguments must be floating-point arrays, got dtype {a.dtype}")
    return np.array(a, dtype=np.float64)


def _value(out):
    return np.asarray(out.numpy() if isinstance(out, Tensor) else out, dtype=np.float64)


def reverse_directional(f, args, u, v, create_graph=False):
    """<J^T u, v> by reverse mode: one backward pass from the output cotangent u."""
    from chainrule.modes.reverse import grads_of

    leaves = [Tensor(a, requires_grad=True) for a in args]
    out = f(*leaves)
    if not isinstance(out, Tensor) or not out.requires_grad:
        return 0.0
    grads = grads_of(out, np.asarray(u, dtype=out.dtype).reshape(out.shape), leaves, retain_graph=False)
    return float(sum(np.vdot(_value(g), vi) for g, vi in zip(grads, v) if g is not None))


MODES["reverse"] = reverse_directional


def forward_directional(f, args, u, v):
    """<u, J v> by forward mode: one pass of Duals with tangents v."""
    from chainrule.modes.api import jvp

    _, tangent = jvp(f, tuple(args), tuple(np.asarray(vi, dtype=a.dtype) for a, vi in zip(args, v)))
    return float(np.vdot(u, _value(tangent)))


MODES["forward"] = forward_directional


def numeric_directional(f, args, u, v, eps):
    """<u, (f(x + eps v) - f(x - eps v)) / 2 eps>: central differences in float64."""
    plus = _value(f(*[a + eps * vi for a, vi in zip(args, v)]))
    minus = _value(f(*[a - eps * vi for a, vi in zip(args, v)]))
    return float(np.vdot(u, (plus - minus) / (2 * eps)))


def _second_order(f, args, w):
    """x -> <w, grad_x sum f(x)>, a function whose derivative (checked by forward mode) is a
    Hessian-vector product by forward over reverse."""
    from chainrule.modes.api import vjp

    def g(*xs):
        out, vjp_fn = vjp(f, *xs)
        grads = vjp_fn(np.ones(shape_of(out)))
        total = 0.0
        for gr, wi in zip(grads, w):
            total = total + sum_(gr * wi)
        return total

    return g


def check_grads(f, *args, order=1, modes=None, eps=None, rtol=1e-5, atol=1e-7, seed=0, trials=2):
    """Check ``f``'s derivatives at ``args`` in every mode against central differences.

    ``order=2`` also checks second derivatives: the derivative of <w, grad sum f> for a random w,
    by forward over reverse (a Hessian-vector product), against central differences of the gradient.
    Raises AssertionError naming the argument, the mode and the size of the disagreement.

    >>> import chainrule as cr
    >>> check_grads(lambda x: cr.sum(cr.tanh(x) * x), [0.5, -1.0])
    """
    rng = np.random.default_rng(seed)
    args = [_as_float64(a) for a in args]
    modes = list(MODES) if modes is None else list(modes)
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        raise ValueError(f"check_grads: unknown mode(s) {unknown}; available: {sorted(MODES)}")
    out = _value(f(*args))
    for _ in range(trials):
        u = rng.standard_normal(out.shape)
        for i in range(len(args)):  # one argument at a time, so a failure names it
            v = [np.zeros_like(a) for a in args]
            v[i] = rng.standard_normal(args[i].shape)
            scale = float(np.max(np.abs(args[i]), initial=1.0))
            h = eps if eps is not None else np.cbrt(np.finfo(np.float64).eps) * scale
            expected = numeric_directional(f, args, u, v, h)
            for mode in modes:
                got = MODES[mode](f, args, u, v)
                err = abs(got - expected)
                if not err <= atol + rtol * abs(expected):
                    raise AssertionError(
                        f"check_grads: {mode} mode disagrees with central differences for argument {i} "
                        f"(shape {args[i].shape}): directional derivative {got!r} vs {expected!r}, "
                        f"absolute error {err:.3g}, relative {err / max(abs(expected), 1e-300):.3g}")
    if order >= 2:
        w = [rng.standard_normal(a.shape) for a in args]
        check_grads(_second_order(f, args, w), *args, order=order - 1, modes=["forward"],
                    eps=eps, rtol=max(rtol, 1e-4), atol=max(atol, 1e-6), seed=seed + 1, trials=trials)
