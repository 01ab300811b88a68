"""Finite differences: forward, backward, central and complex-step derivatives, with Richardson extrapolation.

Only evaluations of ``f`` are needed, which makes these the reference every other mode is checked
against, and the slowest: the gradient of a function of n numbers costs about n (one-sided,
complex step) or 2n (central) evaluations. Their error has two parts, truncation (shrinks with
the step h) and rounding (grows like eps/h), so the default step balances the two:

==========  ==================================  =========================  ====================
method      formula                             truncation error           default step
==========  ==================================  =========================  ====================
forward     (f(x + h) - f(x)) / h               h f''/2                    sqrt(eps) max(|x|, 1)
backward    (f(x) - f(x - h)) / h               h f''/2                    sqrt(eps) max(|x|, 1)
central     (f(x + h) - f(x - h)) / 2h          h^2 f'''/6                 cbrt(eps) max(|x|, 1)
complex     Im f(x + ih) / h                    h^2 f'''/6 (no cancellation) eps^2 max(|x|, 1)
==========  ==================================  =========================  ====================

The complex step subtracts nothing, so its step can be tiny and the result is exact to rounding,
but only for *analytic* functions evaluated by operations that keep the imaginary part: a
primitive whose registry flag ``analytic`` is False (abs, relu, maximum, where, ...) makes it
wrong, so the evaluation watches every primitive it runs and refuses with
:class:`NotAnalyticError` instead of returning a wrong number.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from chainrule.core.errors import ChainruleError, DTypeError, ShapeError
from chainrule.core.primitives import reshape
from chainrule.core.registry import _NO_PARAMS, Box, bind
from chainrule.core.tensor import Tensor

__all__ = ["METHODS", "Estimate", "NumericError", "NotAnalyticError", "PrecisionWarning",
           "default_step", "derivative", "gradient", "jacobian"]

METHODS = ("forward", "backward", "central", "complex")
# Order of the leading truncation term in h, and by how much each Richardson level raises it.
_ORDER = {"forward": (1, 1), "backward": (1, 1), "central": (2, 2), "complex": (2, 2)}


class NumericError(ChainruleError, ValueError):
    """A finite difference that cannot be trusted: a non-finite value, or a step that cannot work."""


class NotAnalyticError(NumericError):
    """The complex step met a primitive that is not analytic (abs, relu, max, where, ...).

    ``primitives`` holds the names of the offending primitives."""

    def __init__(self, message, primitives=()):
        super().__init__(message)
        self.primitives = tuple(primitives)


class PrecisionWarning(UserWarning):
    """Finite differences in float32 or lower: the result has only a few correct digits."""


@dataclass
class Estimate:
    """A finite-difference result with what it cost (``full_output=True``).

    ``value`` is the derivative (a tuple of them for several ``argnums``), ``error`` the
    Richardson error estimate (None without extrapolation), ``evaluations`` the number of
    calls of ``f`` including ``f(x)`` itself, ``step`` the step used for each input entry.
    """

    value: object
    error: object
    evaluations: int
    step: object
    method: str
    richardson: int


# ---------------------------------------------------------------- steps


def default_step(x, method="central", richardson=0):
    r"""The step for each entry of ``x``: ``eps^{1/(p+1)} max(|x|, 1)`` for a difference whose
    truncation error is of order p (after ``richardson`` extrapolations), which balances
    truncation (h^p) against rounding (eps/h); ``eps^2 max(|x|, 1)`` for the complex step.
    ``eps`` is the machine epsilon of x's dtype.

    >>> float(default_step(1.0, "forward"))  # sqrt(2.2e-16)
    1.4901161193847656e-08
    >>> float(default_step(100.0, "central")) # cbrt(2.2e-16) * 100
    0.0006055454452393343
    """
    _check_method(method)
    x = np.asarray(x)
    dtype = x.dtype if np.issubdtype(x.dtype, np.floating) else np.dtype(np.float64)
    eps = float(np.finfo(dtype).eps)
    scale = np.maximum(np.abs(x), 1.0).astype(dtype)
    if method == "complex":
        return (eps ** 2 * scale).astype(dtype)
    p, q = _ORDER[method]
    order = p + richardson * q
    return (eps ** (1.0 / (order + 1)) * scale).astype(dtype)


def _check_method(method):
    if method not in METHODS:
        raise ValueError(f"numeric: unknown method {method!r}; choose one of {', '.join(METHODS)}")


# ---------------------------------------------------------------- public functions


def jacobian(f, *args, argnums=0, method="central", step=None, richardson=0, full_output=False):
    r"""The Jacobian $J_{ij} = \partial f_i / \partial x_j$ of ``f`` with respect to the argument(s)
    ``argnums``, by finite differences: shape ``f(x).shape + x.shape``.

    ``method`` is "forward", "backward", "central" or "complex" (see the module docstring);
    ``step`` overrides the default step (a number or an array of x's shape); ``richardson=k``
    takes differences at the k + 2 steps h, h/2, ..., h/2^(k+1) and extrapolates k times, which
    removes k more orders of the truncation error; the two k-times extrapolated values that
    result differ by about their error, which, plus the rounding error eps |f| / h, is the error
    estimate. ``full_output=True`` returns an :class:`Estimate` with the error estimate and the
    number of evaluations.

    >>> import chainrule as cr
    >>> jacobian(lambda x: cr.sin(x) * 2, [0.0, 1.0]).round(8)
    array([[2.        , 0.        ],
           [0.        , 1.08060461]])
    """
    _check_method(method)
    if not isinstance(richardson, (int, np.integer)) or isinstance(richardson, bool) or richardson < 0:
        raise ValueError(f"numeric: richardson must be a whole number of extrapolations >= 0, got {richardson!r}")
    if method == "complex" and richardson:
        raise ValueError("numeric: the complex step needs no Richardson extrapolation: with h = eps^2 its "
                         "truncation error h^2 f'''/6 is already far below rounding")
    if not args:
        raise TypeError("numeric: give the point to differentiate at, e.g. jacobian(f, x)")
    args = [_as_float_array(a, i) for i, a in enumerate(args)]
    many = isinstance(argnums, (tuple, list))
    nums = tuple(argnums) if many else (argnums,)
    for n in nums:
        if not isinstance(n, (int, np.integer)) or not -len(args) <= n < len(args):
            raise ValueError(f"numeric: argnums {argnums!r} does not fit the {len(args)} argument(s) given")
    calls = [0]

    def call(*xs):
        calls[0] += 1
        return f(*xs)

    f0 = _output(call(*args))
    if not np.all(np.isfinite(f0)):
        raise NumericError(f"numeric: f is not finite at the given point ({_first_bad(f0)}); "
                           "finite differences need finite values around x")
    _warn_precision([args[n] for n in nums], f0, method)
    values, errors, steps = [], [], []
    for n in nums:
        v, e, h = _jacobian_block(call, args, n % len(args), f0, method, step, richardson)
        values.append(v)
        errors.append(e)
        steps.append(h)
    if not many:
        values, errors, steps = values[0], errors[0], steps[0]
    else:
        values, errors, steps = tuple(values), tuple(errors), tuple(steps)
    if full_output:
        return Estimate(values, errors if richardson else None, calls[0], steps, method, richardson)
    return values


def gradient(f, *args, argnums=0, method="central", step=None, richardson=0, full_output=False):
    r"""The gradient $\nabla f(x)$ of a scalar function by finite differences (shape of x).

    The arguments are those of :func:`jacobian`; ``f`` must return one number.

    >>> import chainrule as cr
    >>> f = lambda x, z: cr.exp(x * z) + x * z / cr.log(x) + cr.sin(cr.log(x)) / (x * z)
    >>> g = gradient(f, 2.0, 3.0, argnums=(0, 1), method="complex")
    >>> [round(float(v), 10) for v in g]
    [1208.3812151266, 809.7074792186]
    """
    return jacobian(_scalar_only(f), *args, argnums=argnums, method=method, step=step,
                    richardson=richardson, full_output=full_output)


def derivative(f, x, method="central", step=None, richardson=0, full_output=False):
    r"""$f'(x)$ for a number x by finite differences (of the output's shape).

    >>> import chainrule as cr
    >>> round(float(derivative(cr.exp, 1.0, richardson=2)), 12)  # e
    2.718281828459
    """
    if np.ndim(x.numpy() if isinstance(x, Tensor) else x) != 0:
        raise ShapeError(f"numeric.derivative: x must be a single number, got shape {np.shape(x)}; "
                         "use numeric.gradient or numeric.jacobian for arrays")
    out = jacobian(f, x, method=method, step=step, richardson=richardson, full_output=full_output)
    if full_output:
        out.value = out.value[()]
        return out
    return out[()]


def _scalar_only(f):
    def scalar(*xs):
        out = f(*xs)
        size = np.size(out.data if isinstance(out, Tensor) else out)
        if size != 1:
            raise ShapeError(f"numeric.gradient: f must return one number, got shape {np.shape(_raw(out))}; "
                             "use numeric.jacobian, or reduce the output (e.g. cr.sum)")
        return reshape(out, shape=())

    scalar.__name__ = getattr(f, "__name__", "f")
    return scalar


# ---------------------------------------------------------------- the differences


def _jacobian_block(call, args, n, f0, method, step, richardson):
    """Columns of the Jacobian for argument n: one input entry at a time."""
    x = args[n]
    if step is None:
        h = default_step(x, method, richardson)
    else:
        h = np.broadcast_to(np.asarray(step, dtype=x.dtype), x.shape).copy()
        if not np.all(np.isfinite(h)) or np.any(h <= 0):
            raise ValueError(f"numeric: step must be positive and finite, got {step!r}")
    out_dtype = np.result_type(f0.dtype, x.dtype)
    jac = np.empty(f0.shape + (x.size,), dtype=out_dtype)
    err = np.zeros_like(jac) if richardson else None
    p, q = _ORDER[method]
    eps = float(np.finfo(out_dtype if np.issubdtype(out_dtype, np.floating) else np.float64).eps)
    flat_h = h.reshape(-1)
    for j in range(x.size):
        # One step more than the extrapolation needs gives two estimates of the same order,
        # whose difference is the error estimate.
        steps = richardson + 2 if richardson else 1
        estimates = [_difference(call, args, n, j, flat_h[j] / 2 ** k, f0, method) for k in range(steps)]
        value, error = _richardson(estimates, p, q)
        jac[..., j] = value
        if err is not None:
            # Two extrapolations can agree by chance; rounding, about eps |f| / h at the
            # smallest step, is a floor under what can be promised.
            err[..., j] = error + eps * np.abs(f0) / (flat_h[j] / 2 ** (steps - 1))
    shape = f0.shape + x.shape
    return jac.reshape(shape), (err.reshape(shape) if err is not None else None), h


def _difference(call, args, n, j, h, f0, method):
    x = args[n]
    if method == "complex":
        xc = x.astype(np.result_type(x.dtype, np.complex64))
        xc.flat[j] += 1j * h
        probe = _probe(xc, set())
        out = _check_complex(call(*_replace(args, n, probe)), probe, f0)
        return _finite(np.imag(out), n, j, x, f"{h:.3g}i") / h
    xj = x.flat[j]
    if method in ("forward", "central"):
        xp = x.copy()
        xp.flat[j] = xj + h
        fp = _finite(_output(call(*_replace(args, n, xp))), n, j, x, f"+{h:.3g}")
    if method in ("backward", "central"):
        xm = x.copy()
        xm.flat[j] = xj - h
        fm = _finite(_output(call(*_replace(args, n, xm))), n, j, x, f"-{h:.3g}")
    # Divide by the step actually taken: x + h is rounded, and using h instead of
    # (x + h) - x would add an error of order eps|x|/h.
    if method == "forward":
        return (fp - f0) / (xp.flat[j] - xj)
    if method == "backward":
        return (f0 - fm) / (xj - xm.flat[j])
    return (fp - fm) / (xp.flat[j] - xm.flat[j])


def _richardson(estimates, p, q):
    """Richardson's table for k + 2 estimates at steps h, h/2, ...: each column removes the
    next term (h^p, then h^(p+q), ...) of the error. Returns the k-times extrapolated value from
    the smallest steps and its distance to the one from the largest steps, the error estimate."""
    row = estimates
    order = p
    while len(row) > 2:
        factor = 2.0 ** order - 1
        row = [b + (b - a) / factor for a, b in zip(row, row[1:])]
        order += q
    if len(row) == 1:
        return row[0], None
    return row[1], np.abs(row[1] - row[0])


def _replace(args, n, value):
    return [value if i == n else a for i, a in enumerate(args)]


def _finite(out, n, j, x, shift):
    if not np.all(np.isfinite(out)):
        where = f" entry {tuple(int(i) for i in np.unravel_index(j, x.shape))}" if x.shape else ""
        raise NumericError(f"numeric: f is not finite ({_first_bad(out)}) when argument {n}{where} is shifted "
                           f"by {shift}; the point may be at the edge of f's domain (e.g. log near 0): "
                           "pass a smaller step= or a one-sided method ('forward' or 'backward')")
    return out


def _first_bad(a):
    bad = np.asarray(a)[~np.isfinite(a)]
    return f"value {bad.flat[0]}" if bad.size else "value"


# ---------------------------------------------------------------- conversions and checks


def _as_float_array(a, i):
    if isinstance(a, Tensor):
        a = a.numpy()
    a = np.asarray(a)
    if a.dtype == bool or not np.issubdtype(a.dtype, np.number):
        raise DTypeError(f"numeric: argument {i} has dtype {a.dtype}; pass real numbers")
    if np.issubdtype(a.dtype, np.complexfloating):
        raise DTypeError(f"numeric: argument {i} is complex; finite differences here differentiate real functions")
    if not np.issubdtype(a.dtype, np.floating):
        a = a.astype(np.float64)
    else:
        a = a.copy()
    if not np.all(np.isfinite(a)):
        raise NumericError(f"numeric: argument {i} is not finite ({_first_bad(a)})")
    return a


def _raw(out):
    return out.data if isinstance(out, Tensor) else out


def _output(out):
    """The value f returned, as an array (Tensors and probes unwrapped)."""
    if isinstance(out, _ComplexProbe):
        return np.asarray(out.data)
    if isinstance(out, Tensor):
        return out.numpy()
    if isinstance(out, Box):
        raise TypeError(f"numeric: f returned a traced {type(out).__name__}; finite differences need plain values")
    return np.asarray(out)


def _warn_precision(xs, f0, method):
    lowest = min([x.dtype for x in xs if np.issubdtype(x.dtype, np.floating)] + [f0.dtype],
                 key=lambda d: np.finfo(d).eps if np.issubdtype(d, np.floating) else 0.0)
    if not np.issubdtype(lowest, np.floating) or np.finfo(lowest).eps <= np.finfo(np.float64).eps:
        return
    eps, eps64 = float(np.finfo(lowest).eps), float(np.finfo(np.float64).eps)
    p = _ORDER[method][0]
    accuracy = (lambda e: e) if method == "complex" else (lambda e: e ** (p / (p + 1)))
    warnings.warn(
        f"numeric: finite differences in {lowest} are unreliable: the {method} difference is accurate to "
        f"only about {accuracy(eps):.0e} (relative) with the best step; pass float64 values, "
        f"e.g. np.asarray(x, dtype=np.float64), for about {accuracy(eps64):.0e}",
        PrecisionWarning, stacklevel=4)


# ---------------------------------------------------------------- the complex step, watched


class _ComplexProbe(Tensor):
    """A Tensor whose operations run on complex data and note each non-analytic primitive used.

    It takes a fresh level, so every operation on it reaches :meth:`_bind`, which is how the
    complex step sees abs or relu inside ``f`` instead of returning a wrong number.
    """

    def _bind(self, prim, args, params):
        level = self._level
        vals = []
        boxed = False
        for a in args:
            if isinstance(a, _ComplexProbe) and a._level == level:
                vals.append(a.data)
            else:
                boxed = boxed or isinstance(a, Box)
                vals.append(a)
        self._touched[0] = True
        if not prim.analytic:
            self._used.add(prim.name)
        elif prim.name == "power" and np.iscomplexobj(vals[1]) and np.any(np.real(vals[0]) < 0):
            # x**y = exp(y log x) with x < 0 is not real around a real y (log x has the
            # imaginary part pi), so Im f(y + ih) / h is not the derivative: refuse it.
            self._used.add("power with a negative base")
        try:
            if boxed:
                data = prim.op(*vals, **params)
            else:
                data = _COMPLEX_IMPLS.get(prim.name, prim.impl)(*vals, **params)
        except (TypeError, ValueError) as err:
            if self._used:
                raise _not_analytic(self._used) from None
            raise NumericError(f"numeric: the complex step cannot run {prim.name} on complex values ({err}); "
                               "use method='central'") from None
        return _probe(data, self._used, level, self._touched)

    # f reads the values (x.data, np.asarray(x), x.numpy(), x.tolist(), ...): a real result may
    # mean it dropped the imaginary part. Every way out of chainrule's operations reads `data`,
    # so reading it marks the probe as used.
    @property
    def data(self):
        self._touched[0] = True
        return self._complex

    @data.setter
    def data(self, value):
        self._complex = value

    # Tensor's fast paths for one and two arguments would skip the check: route them through it.
    def _binary(self, prim, a, b):
        return bind(prim, (a, b), _NO_PARAMS)

    def _bind_unary(self, prim, params):
        return self._bind(prim, (self,), params)


def _probe(data, used, level=None, touched=None):
    """A probe around complex ``data``; ``used`` collects the non-analytic primitives met and
    ``touched`` (one flag, shared by every value computed from the probe) says whether f
    used the probe at all."""
    from chainrule.core.registry import new_level

    t = object.__new__(_ComplexProbe)
    t.data = data
    t._level = new_level() if level is None else level
    t._used = used
    t._touched = [False] if touched is None else touched
    return t


def _check_complex(out, probe, f0):
    """The value of f at x + ih, once it is certain that the complex step saw all of f."""
    if probe._used:
        raise _not_analytic(probe._used)
    value = _output(out)
    if not probe._touched[0] and not isinstance(out, _ComplexProbe):
        # f never used this argument: its derivative is 0 (the imaginary part of a real value)
        if value.shape != f0.shape:
            raise ShapeError(f"numeric: f returned shape {value.shape} at a complex point but {f0.shape} at x")
        return value
    if not np.iscomplexobj(value):
        raise NumericError("numeric: the complex step lost the imaginary part: f turns its input into real numbers "
                           "somewhere (float(), .real, a numpy function that drops it); use method='central'")
    if not isinstance(out, _ComplexProbe):
        # Part of f ran outside chainrule's operations (numpy functions), where abs or max
        # cannot be seen: say so rather than vouch for the number.
        warnings.warn("numeric: f computes with numpy functions that the complex step cannot watch; if any of "
                      "them is not analytic (abs, maximum, ...) the result is wrong: use chainrule's operations "
                      "(cr.exp, cr.abs, ...) or method='central'", UserWarning, stacklevel=5)
    if value.shape != f0.shape:
        raise ShapeError(f"numeric: f returned shape {value.shape} at a complex point but {f0.shape} at x")
    return value


def _not_analytic(used):
    names = ", ".join(sorted(used))
    return NotAnalyticError(
        f"numeric: the complex step is wrong for this function: it uses {names}, which "
        f"{'is' if len(used) == 1 else 'are'} not analytic (Im f(x + ih)/h is then not f'(x); "
        f"e.g. |x + ih| is real); use method='central'", sorted(used))


def _sigmoid_complex(z):
    # The real implementation uses |x| for stability, which would drop the imaginary part; choose
    # the same two analytic branches by the real part instead.
    with np.errstate(over="ignore", invalid="ignore"):
        pos = 1 / (1 + np.exp(-z))
        e = np.exp(z)
        neg = e / (1 + e)
    return np.where(np.real(z) >= 0, pos, neg)


def _softplus_complex(z):
    # logaddexp has no complex loop: log(1 + e^z), written as z + log(1 + e^-z) for large z.
    with np.errstate(over="ignore", invalid="ignore"):
        big = z + np.log1p(np.exp(-z))
        small = np.log1p(np.exp(z))
    return np.where(np.real(z) > 0, big, small)


def _astype_complex(x, dtype):
    # A cast to a real dtype would drop the imaginary part: keep the precision, stay complex.
    dtype = np.dtype(dtype)
    if np.iscomplexobj(x) and np.issubdtype(dtype, np.floating):
        dtype = np.result_type(dtype, np.complex64)
    return np.asarray(x).astype(dtype, copy=False)


# Primitives whose numpy implementation is not complex-safe although the function is analytic.
_COMPLEX_IMPLS = {"sigmoid": _sigmoid_complex, "softplus": _softplus_complex, "astype": _astype_complex}
