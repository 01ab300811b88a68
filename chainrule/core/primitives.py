"""The table of primitives: evaluation, reverse rule, forward rule, symbolic form, display.

Conventions of the rules (as in JAX's Autodidax): ``g`` is the output cotangent, ``t`` an input
tangent, ``ans`` the output value; arrays are positional, parameters keyword. Rules only use the
operations defined here, so they work on arrays, Tensors (double backward), Duals and symbols.
Reverse rules write ``+ - *`` as Python operators: every kind of value maps them to these same
primitives, and on arrays and numbers they skip a call (the cotangent of an output is never a
list, where ``*`` would mean repetition). Division stays ``divide``: Python's ``1.0 / 0.0``
raises where numpy gives inf.
Reverse rules of broadcasting (``elementwise``) primitives return cotangents in the broadcast
shape; reverse mode sums them back with :func:`unbroadcast`, the one place that undoes
broadcasting.
"""
from __future__ import annotations

import builtins
import functools
import math
import operator

import numpy as np

from chainrule.core.errors import DTypeError, LabelError
from chainrule.core.registry import _NUMPY_TYPES, PerArg, defprim


def shape_of(x) -> tuple:
    """Shape of an array, box or Python scalar."""
    return getattr(x, "shape", ())


def ndim_of(x) -> int:
    return len(shape_of(x))


def dtype_of(x):
    dtype = getattr(x, "dtype", None)  # np.result_type only when needed: on a box it is numpy's dispatch
    return np.result_type(x) if dtype is None else dtype


def _axes(axis, nd):
    """Normalise ``axis`` (None, int or tuple, possibly negative) to a sorted tuple."""
    if axis is None:
        return tuple(range(nd))
    if isinstance(axis, int):
        return (axis % nd if nd else axis,)
    return tuple(sorted(a % nd if nd else a for a in axis))


# ---------------------------------------------------------------- arithmetic
add = defprim("add", np.add, (lambda g, ans, x, y: g, lambda g, ans, x, y: g),
              (lambda t, ans, x, y: t, lambda t, ans, x, y: t),
              sym=lambda sp, x, y: x + y, latex="{0} + {1}", display="+", elementwise=True,
              operator=operator.add, doc="x + y, elementwise with broadcasting.")
subtract = defprim("subtract", np.subtract,
                   (lambda g, ans, x, y: g, lambda g, ans, x, y: -g),
                   (lambda t, ans, x, y: t, lambda t, ans, x, y: negative(t)),
                   sym=lambda sp, x, y: x - y, latex="{0} - {1}", display="-", elementwise=True,
                   operator=operator.sub, doc="x - y, elementwise with broadcasting.")
negative = defprim("negative", np.negative, (lambda g, ans, x: -g,),
                   (lambda t, ans, x: negative(t),),
                   sym=lambda sp, x: -x, latex="-{0}", display="neg", elementwise=True,
                   operator=operator.neg, doc="-x.")
multiply = defprim("multiply", np.multiply,
                   (lambda g, ans, x, y: g * y, lambda g, ans, x, y: g * x),
                   (lambda t, ans, x, y: multiply(t, y), lambda t, ans, x, y: multiply(x, t)),
                   sym=lambda sp, x, y: x * y, latex="{0} \\cdot {1}", display="*",
                   elementwise=True, operator=operator.mul, doc="x * y, elementwise with broadcasting.")
divide = defprim("divide", np.true_divide,
                 (lambda g, ans, x, y: divide(g, y),
                  lambda g, ans, x, y: -divide(g * ans, y)),
                 (lambda t, ans, x, y: divide(t, y),
                  lambda t, ans, x, y: negative(divide(multiply(t, ans), y))),
                 sym=lambda sp, x, y: x / y, latex="\\frac{{{0}}}{{{1}}}", display="/",
                 elementwise=True, operator=operator.truediv, doc="x / y; d/dy = -x/y^2 = -ans/y.")


def _pow_log(x):
    # log x for d(x**y)/dy = x**y log x, taken as 0 at x = 0 (PyTorch's convention: 0**y is the
    # constant 0 for y > 0, so its derivative in y is 0); a negative x gives NaN, as the
    # derivative of a power that is not real around y does not exist (PyTorch: NaN too). A
    # Python number stays a Python number: numpy treats it as weakly typed, so float32 stays
    # float32 (np.log(2.0) is a strongly typed float64).
    if isinstance(x, (int, float)):
        return math.log(x) if x > 0 else 0.0 if x == 0 else math.nan
    return log(where(equal(x, 0), 1, x))


def _pow_dx(x, y):
    # y * x**(y-1), and 0 where y = 0 (PyTorch's mask): x**0 = 1 is constant, but 0 * 0**-1
    # would be NaN at x = 0. An array exponent replaces x by 1 where x = y = 0 instead of masking
    # the product, so that the second derivative in x there is 0 too (no inf behind a where) and
    # the one in y stays x**-1 elsewhere. A Python exponent stays a Python number (weakly typed:
    # np.subtract(2, 1) would be a strongly typed int64).
    if isinstance(y, (int, float)):
        return multiply(y, power(x, y - 1)) if y != 0 else 0.0
    return multiply(y, power(where(equal(x, 0), where(equal(y, 0), 1, x), x), subtract(y, 1)))


power = defprim("power", np.power,
                (lambda g, ans, x, y: multiply(g, _pow_dx(x, y)),
                 lambda g, ans, x, y: multiply(g, multiply(ans, _pow_log(x)))),
                (lambda t, ans, x, y: multiply(t, _pow_dx(x, y)),
                 lambda t, ans, x, y: multiply(t, multiply(ans, _pow_log(x)))),
                sym=lambda sp, x, y: x ** y, latex="{{{0}}}^{{{1}}}", display="**", elementwise=True,
                doc="x ** y; d/dx = y x^(y-1) (0 where y = 0), d/dy = x^y log x (0 at x = 0, NaN for x < 0).")

# ---------------------------------------------------------------- elementwise functions
exp = defprim("exp", np.exp, (lambda g, ans, x: g * ans,), (lambda t, ans, x: multiply(t, ans),),
              sym=lambda sp, x: sp.exp(x), latex="e^{{{0}}}", scalar=math.exp, elementwise=True,
              doc="e^x; d/dx = e^x.")
log = defprim("log", np.log, (lambda g, ans, x: divide(g, x),), (lambda t, ans, x: divide(t, x),),
              sym=lambda sp, x: sp.log(x), latex="\\ln\\left({0}\\right)", scalar=math.log, elementwise=True,
              doc="Natural logarithm; d/dx = 1/x.")
sin = defprim("sin", np.sin, (lambda g, ans, x: g * cos(x),),
              (lambda t, ans, x: multiply(t, cos(x)),),
              sym=lambda sp, x: sp.sin(x), latex="\\sin\\left({0}\\right)", scalar=math.sin, elementwise=True,
              doc="sin x; d/dx = cos x.")
cos = defprim("cos", np.cos, (lambda g, ans, x: -(g * sin(x)),),
              (lambda t, ans, x: negative(multiply(t, sin(x))),),
              sym=lambda sp, x: sp.cos(x), latex="\\cos\\left({0}\\right)", scalar=math.cos, elementwise=True,
              doc="cos x; d/dx = -sin x.")
# g - (g ans) ans rather than g (1 - ans^2): three array operations are cheaper than a Python
# scalar minus an array, which numpy promotes slowly.
tanh = defprim("tanh", np.tanh, (lambda g, ans, x: g - g * ans * ans,),
               (lambda t, ans, x: multiply(t, subtract(1, multiply(ans, ans))),),
               sym=lambda sp, x: sp.tanh(x), latex="\\tanh\\left({0}\\right)", scalar=math.tanh,
               elementwise=True,
               doc="tanh x; d/dx = 1 - tanh(x)^2.")
sqrt = defprim("sqrt", np.sqrt, (lambda g, ans, x: divide(g, 2 * ans),),
               (lambda t, ans, x: divide(t, multiply(2, ans)),),
               sym=lambda sp, x: sp.sqrt(x), latex="\\sqrt{{{0}}}", scalar=math.sqrt, elementwise=True,
               doc="sqrt x; d/dx = 1 / (2 sqrt x).")


def _zero_rule(g, ans, x):
    # The derivative of a piecewise-constant function: zeros of the cotangent's (or tangent's)
    # shape and dtype, as a constant. Its output still carries a (zero) derivative, as in PyTorch,
    # so that backward() through it reaches the leaves instead of refusing.
    if type(g) is float:
        return 0.0
    return np.zeros(shape_of(g), dtype=dtype_of(g))


sign = defprim("sign", np.sign, (_zero_rule,), (_zero_rule,), sym=lambda sp, x: sp.sign(x),
               latex="\\operatorname{{sign}}\\left({0}\\right)", elementwise=True, analytic=False,
               doc="Sign of x (-1, 0 or 1); piecewise constant, so its derivative is 0 (as PyTorch's).")
abs = defprim("abs", np.abs, (lambda g, ans, x: g * sign(x),),
              (lambda t, ans, x: multiply(t, sign(x)),),
              sym=lambda sp, x: sp.Abs(x), latex="\\left|{0}\\right|", scalar=builtins.abs, elementwise=True,
              analytic=False,
              doc="|x|; d/dx = sign(x), so the subgradient at 0 is 0.")


def _relu_impl(x):
    # max(x, 0) against a row of zeros rather than the scalar 0: numpy's maximum has a SIMD loop
    # for two contiguous operands but not for a scalar one, so this is twice as fast for a
    # (128, 256) float32 batch (same values: the zeros broadcast along the last axis).
    if type(x) is np.ndarray and x.ndim and x.dtype.kind == "f":
        return np.maximum(x, np.zeros(x.shape[-1], x.dtype))
    return np.maximum(x, 0)


# g times the mask x > 0 rather than where(x > 0, g, 0): numpy's where is eight times slower on
# a random mask, and this is the hottest rule of a ReLU network (only an infinite g differs).
relu = defprim("relu", _relu_impl, (lambda g, ans, x: g * greater(x, 0),),
               (lambda t, ans, x: multiply(t, greater(x, 0)),),
               sym=lambda sp, x: sp.Max(0, x), latex="\\operatorname{{relu}}\\left({0}\\right)",
               elementwise=True, analytic=False,
               doc="max(x, 0); derivative 1 for x > 0 and 0 for x <= 0 (the subgradient 0 at 0, as PyTorch).")


def _sigmoid_impl(x):
    # exp(-|x|) never overflows; the two branches are the same function rearranged.
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


sigmoid = defprim("sigmoid", _sigmoid_impl,
                  (lambda g, ans, x: g * (ans * (1 - ans)),),
                  (lambda t, ans, x: multiply(t, multiply(ans, subtract(1, ans))),),
                  sym=lambda sp, x: 1 / (1 + sp.exp(-x)), latex="\\sigma\\left({0}\\right)",
                  elementwise=True,
                  doc="1 / (1 + e^-x), a primitive so that it is stable for |x| = 1000; d/dx = s (1 - s).")
softplus = defprim("softplus", lambda x: np.logaddexp(0, x),
                   (lambda g, ans, x: g * sigmoid(x),),
                   (lambda t, ans, x: multiply(t, sigmoid(x)),),
                   sym=lambda sp, x: sp.log(1 + sp.exp(x)), latex="\\operatorname{{softplus}}\\left({0}\\right)",
                   elementwise=True,
                   doc="log(1 + e^x), a primitive computed as logaddexp(0, x) so it never overflows; d/dx = sigmoid(x).")


def _where_impl(cond, x, y):
    return np.where(cond, x, y)


where = defprim("where", _where_impl,
                (None, lambda g, ans, c, x, y: where(c, g, 0), lambda g, ans, c, x, y: where(c, 0, g)),
                (None, lambda t, ans, c, x, y: where(c, t, 0), lambda t, ans, c, x, y: where(c, 0, t)),
                sym=lambda sp, c, x, y: sp.Piecewise((x, c), (y, True)),
                latex="\\begin{{cases}}{1} & {0}\\\\ {2} & \\text{{otherwise}}\\end{{cases}}",
                elementwise=True, analytic=False,
                doc="x where cond else y; cond is not differentiable.")


def _comparison(name, impl, symbol, sym):
    return defprim(name, impl, (None, None), (None, None), sym=sym, latex="{0} " + symbol + " {1}",
                   display=symbol, elementwise=True, differentiable=False, analytic=False,
                   doc=f"x {symbol} y elementwise: a boolean array, not differentiable.")


equal = _comparison("equal", np.equal, "==", lambda sp, x, y: sp.Eq(x, y))
not_equal = _comparison("not_equal", np.not_equal, "!=", lambda sp, x, y: sp.Ne(x, y))
greater = _comparison("greater", np.greater, ">", lambda sp, x, y: x > y)
greater_equal = _comparison("greater_equal", np.greater_equal, ">=", lambda sp, x, y: x >= y)
less = _comparison("less", np.less, "<", lambda sp, x, y: x < y)
less_equal = _comparison("less_equal", np.less_equal, "<=", lambda sp, x, y: x <= y)


def _tie_share(x, other, g, loses):
    # PyTorch's rule: x gets all of g unless the other side wins, half of it at a tie; where a
    # side is NaN neither wins nor ties, so both get g (as PyTorch's maximum and minimum).
    return where(loses(x, other), 0, where(equal(x, other), multiply(g, 0.5), g))


def _extremum(name, impl, loses, sym, word):
    # maximum and minimum: the winner of each pair gets the derivative, ties split it
    return defprim(name, impl,
                   (lambda g, ans, x, y: _tie_share(x, y, g, loses), lambda g, ans, x, y: _tie_share(y, x, g, loses)),
                   (lambda t, ans, x, y: _tie_share(x, y, t, loses), lambda t, ans, x, y: _tie_share(y, x, t, loses)),
                   sym=sym, latex=f"\\{word}\\left({{0}}, {{1}}\\right)", elementwise=True, analytic=False,
                   doc=f"Elementwise {word}; at a tie the derivative is split equally between x and y, and "
                       "both get it where one is NaN (as PyTorch).")


maximum = _extremum("maximum", np.maximum, less, lambda sp, x, y: sp.Max(x, y), "max")
minimum = _extremum("minimum", np.minimum, greater, lambda sp, x, y: sp.Min(x, y), "min")


# ---------------------------------------------------------------- binary cross-entropy
_EXP_M100 = math.exp(-100)  # log p is clamped at -100 (PyTorch's clamp): p below this gives -100
_BCE_EPS = 1e-12  # PyTorch's floor under p (1 - p) in the derivative


def _bce_log(p):
    # max(log p, -100) without log(0)'s warning: 1e-45 (float32's smallest number, rounded) has
    # a log below -100 in float32 and float64 alike
    return np.maximum(np.log(np.maximum(p, 1e-45)), -100)


def _bce_impl(p, y):
    return -(y * _bce_log(p) + (1 - y) * _bce_log(1 - p))


def _clamped_log(p):
    # max(log p, -100) written with where, so that its derivative is 0 (not 0 * inf) where p = 0
    pos = greater(p, _EXP_M100)
    return where(pos, log(where(pos, p, 1)), -100)


def _bce_dp(p, y):
    # (p - y) / max(p (1 - p), 1e-12): the exact derivative of -(y log p + (1-y) log(1-p)) for p
    # inside (0, 1), finite at p = 0 and 1 (PyTorch's formula)
    return divide(subtract(p, y), maximum(multiply(p, subtract(1, p)), _BCE_EPS))


def _bce_dy(p):
    return subtract(_clamped_log(subtract(1, p)), _clamped_log(p))


binary_cross_entropy = defprim(
    "binary_cross_entropy", _bce_impl,
    (lambda g, ans, p, y: multiply(g, _bce_dp(p, y)), lambda g, ans, p, y: multiply(g, _bce_dy(p))),
    (lambda t, ans, p, y: multiply(t, _bce_dp(p, y)), lambda t, ans, p, y: multiply(t, _bce_dy(p))),
    # Symbolically the formula itself: it agrees with the clamped value for p inside (0, 1).
    sym=lambda sp, p, y: -(y * sp.log(p) + (1 - y) * sp.log(1 - p)),
    latex="\\operatorname{{BCE}}\\left({0}, {1}\\right)", elementwise=True, analytic=False,
    doc="-(y log p + (1 - y) log(1 - p)) elementwise for probabilities p and targets y, each log "
        "clamped at -100; a primitive so that, as in PyTorch, its value and its derivative "
        "d/dp = (p - y) / max(p (1 - p), 1e-12) stay finite at p = 0 and 1.")


def _astype_impl(x, dtype):
    return x.astype(dtype, copy=False) if hasattr(x, "astype") else np.asarray(x, dtype)


astype = defprim("astype", _astype_impl,
                 (lambda g, ans, x, dtype: astype(g, dtype=dtype_of(x)),),
                 (lambda t, ans, x, dtype: astype(t, dtype=dtype),),
                 sym=lambda sp, x, dtype: x, latex="{0}",
                 doc="Cast to another dtype; the cotangent is cast back.")

# ---------------------------------------------------------------- reductions


def _sum_impl(x, axis=None, keepdims=False):
    # positional axis: numpy parses keywords of a ufunc method slowly (a tenth of a small sum)
    return np.add.reduce(x, axis, keepdims=True) if keepdims else np.add.reduce(x, axis)


def _keepdims(g, xshape, axis, keepdims):
    """The cotangent (or value) of a reduction with its reduced axes put back as size 1, so that
    it broadcasts against the input without a copy."""
    if not keepdims and axis is not None:
        kept = list(shape_of(g))
        for a in _axes(axis, len(xshape)):
            kept.insert(a, 1)
        # a plain array (every backward that is not recorded) is reshaped directly: the
        # primitive's dispatch costs more than the reshape on this path of every reduction rule
        g = g.reshape(kept) if type(g) is np.ndarray else reshape(g, shape=tuple(kept))
    return g


def _unreduce(g, xshape, axis, keepdims):
    """Broadcast the cotangent of a reduction back to the input's shape."""
    if axis is None and type(g) in _NUMPY_TYPES:  # a full reduction's plain cotangent (a loss)
        return _broadcast_to_impl(g, xshape)
    return broadcast_to(_keepdims(g, xshape, axis, keepdims), shape=xshape)


def _count(xshape, axis):
    n = 1
    for a in _axes(axis, len(xshape)):
        n *= xshape[a]
    return n


sum = defprim("sum", _sum_impl,
              (lambda g, ans, x, axis=None, keepdims=False: _unreduce(g, shape_of(x), axis, keepdims),),
              (lambda t, ans, x, axis=None, keepdims=False: sum(t, axis=axis, keepdims=keepdims),),
              sym=lambda sp, x, axis=None, keepdims=False: x, latex="\\sum {0}", display="sum",
              doc="Sum over axis (None: all); the cotangent is broadcast back.")


def _mean_impl(x, axis=None, keepdims=False):
    return _sum_impl(x, axis, keepdims) / _count(np.shape(x), axis)


mean = defprim("mean", _mean_impl,
               (lambda g, ans, x, axis=None, keepdims=False:  # divide the small cotangent, then spread it
                _unreduce(divide(g, _count(shape_of(x), axis)), shape_of(x), axis, keepdims),),
               (lambda t, ans, x, axis=None, keepdims=False: mean(t, axis=axis, keepdims=keepdims),),
               sym=lambda sp, x, axis=None, keepdims=False: x, latex="\\operatorname{{mean}} {0}",
               doc="Mean over axis (None: all).")


def _max_impl(x, axis=None, keepdims=False):
    return np.maximum.reduce(x, axis=axis, keepdims=keepdims)


def _max_weights(ans, x, axis, keepdims):
    # 1 at the maxima, shared equally between tied maxima (as PyTorch's amax does), 0 elsewhere.
    hit = equal(x, _unreduce(ans, shape_of(x), axis, keepdims))
    share = astype(hit, dtype=dtype_of(x))
    return divide(share, sum(share, axis=axis, keepdims=True))


def _max_share(g, ans, x, axis, keepdims):
    return multiply(_unreduce(g, shape_of(x), axis, keepdims), _max_weights(ans, x, axis, keepdims))


max = defprim("max", _max_impl,
              (lambda g, ans, x, axis=None, keepdims=False: _max_share(g, ans, x, axis, keepdims),),
              (lambda t, ans, x, axis=None, keepdims=False:
               sum(multiply(t, _max_weights(ans, x, axis, keepdims)), axis=axis, keepdims=keepdims),),
              sym=lambda sp, x, axis=None, keepdims=False: x, latex="\\max {0}", analytic=False,
              doc="Max over axis; tied maxima share the derivative equally.")


def _logsumexp_impl(x, axis=None, keepdims=False):
    # Shift by the max so exp never overflows; a row of -inf stays -inf instead of NaN.
    m = np.maximum.reduce(x, axis=axis, keepdims=True) if np.size(x) else np.zeros_like(x)
    m = np.where(np.isfinite(m), m, 0)
    out = np.log(np.add.reduce(np.exp(x - m), axis=axis, keepdims=True)) + m
    return out if keepdims else (np.squeeze(out, axis=axis) if axis is not None else out.reshape(()))


def _lse_weights(ans, x, axis, keepdims):
    # softmax(x) = exp(x - logsumexp(x)); broadcasting (not copies) puts ans back to x's shape
    return exp(subtract(x, _keepdims(ans, shape_of(x), axis, keepdims)))


logsumexp = defprim("logsumexp", _logsumexp_impl,
                    (lambda g, ans, x, axis=None, keepdims=False:
                     multiply(_keepdims(g, shape_of(x), axis, keepdims), _lse_weights(ans, x, axis, keepdims)),),
                    (lambda t, ans, x, axis=None, keepdims=False:
                     sum(multiply(t, _lse_weights(ans, x, axis, keepdims)), axis=axis, keepdims=keepdims),),
                    sym=lambda sp, x, axis=None, keepdims=False: x,
                    latex="\\log\\sum e^{{{0}}}",
                    doc="log sum exp(x) over axis, a primitive so it is shifted by the max (stable); "
                        "d/dx = softmax(x).")


def _softmax_impl(x, axis=-1):
    z = np.exp(x - np.maximum.reduce(x, axis=axis, keepdims=True))
    return z / np.add.reduce(z, axis=axis, keepdims=True)


softmax = defprim("softmax", _softmax_impl,
                  (lambda g, ans, x, axis=-1:
                   multiply(ans, subtract(g, sum(multiply(g, ans), axis=axis, keepdims=True))),),
                  (lambda t, ans, x, axis=-1:
                   multiply(ans, subtract(t, sum(multiply(t, ans), axis=axis, keepdims=True))),),
                  # Symbolic values are numbers, and the softmax of one number is e^x / e^x = 1
                  # (sp is None where a symbolic derivative is evaluated on numbers).
                  sym=lambda sp, x, axis=-1: np.ones_like(x) if sp is None else sp.Integer(1),
                  latex="\\operatorname{{softmax}}\\left({0}\\right)",
                  doc="exp(x) / sum exp(x) along axis; a primitive because its vjp "
                      "s * (g - <g, s>) needs only the output (one pass, stable).")

# ---------------------------------------------------------------- linear algebra


def _expand(a, axis):
    s = list(shape_of(a))
    s.insert(axis % (len(s) + 1), 1)
    return reshape(a, shape=tuple(s))


def _matmul_vjp(i, g, ans, x, y):
    # Matrices held as plain arrays (every backward that is not recorded, as a training step's):
    # the rule below reduced to its one product, without dispatch or shape bookkeeping.
    if type(g) is np.ndarray and type(x) is np.ndarray and type(y) is np.ndarray and x.ndim == 2 and y.ndim == 2:
        return g @ y.T if i == 0 else x.T @ g
    # Promote vectors to matrices (as matmul does), use the matrix rule, then undo the promotion.
    xv, yv = ndim_of(x) == 1, ndim_of(y) == 1
    if xv and yv:
        return multiply(g, y) if i == 0 else multiply(g, x)
    x2 = _expand(x, 0) if xv else x
    y2 = _expand(y, -1) if yv else y
    g2 = _expand(g, -1) if yv else g
    g2 = _expand(g2, -2) if xv else g2
    if i == 0:
        out, target = matmul(g2, swapaxes(y2, -1, -2)), shape_of(x2)
    else:
        out, target = matmul(swapaxes(x2, -1, -2), g2), shape_of(y2)
    out = unbroadcast(out, target)  # batch axes that were broadcast
    shape = shape_of(x if i == 0 else y)
    return out if shape_of(out) == shape else reshape(out, shape=shape)


matmul = defprim("matmul", np.matmul, PerArg(_matmul_vjp, arity=2),
                 (lambda t, ans, x, y: matmul(t, y), lambda t, ans, x, y: matmul(x, t)),
                 sym=lambda sp, x, y: x * y, latex="{0} {1}", display="@",
                 doc="Matrix product with numpy's vector and batch rules; "
                     "vjp: g @ y^T and x^T @ g.")



def _linear_impl(x, w, b):
    out = np.matmul(x, w.T)
    if type(out) is np.ndarray and np.result_type(out, b) == out.dtype:
        out += b  # the product is a fresh array: add the bias in place, as hand-written code does
        return out
    return out + b


def _rows(a, n):
    # (..., n) as a matrix of rows (a view; only batched inputs need it)
    return a if ndim_of(a) == 2 else reshape(a, shape=(-1, n))


# Each rule has a fast path for a batch of rows held in plain arrays (every backward that is not
# recorded, as a training step's): the same product without dispatch or shape bookkeeping.
def _linear_vjp_x(g, ans, x, w, b):
    if type(g) is np.ndarray and type(w) is np.ndarray:
        return g @ w
    return matmul(g, w)


def _linear_vjp_w(g, ans, x, w, b):
    # d/dW of x W^T: g^T x, computed as (x^T g)^T so that the gradient has the weight's layout
    # (nn.Linear keeps W column-major), summed over every leading axis of x.
    if type(g) is np.ndarray and type(x) is np.ndarray and x.ndim == 2:
        return (x.T @ g).T
    n_out, n_in = shape_of(w)
    if ndim_of(x) == 1:
        return multiply(reshape(g, shape=(n_out, 1)), reshape(x, shape=(1, n_in)))
    return transpose(matmul(transpose(_rows(x, n_in), axes=None), _rows(g, n_out)), axes=None)


def _linear_vjp_b(g, ans, x, w, b):
    nd = ndim_of(g)
    if nd < 2:
        return g
    if type(g) is np.ndarray:
        return np.add.reduce(g, axis=0) if nd == 2 else np.add.reduce(g, axis=tuple(range(nd - 1)))
    return sum(g, axis=tuple(range(nd - 1)))


linear = defprim("linear", _linear_impl,
                 (_linear_vjp_x, _linear_vjp_w, _linear_vjp_b),
                 (lambda t, ans, x, w, b: matmul(t, transpose(w, axes=None)),
                  lambda t, ans, x, w, b: matmul(x, transpose(t, axes=None)),
                  lambda t, ans, x, w, b: broadcast_to(t, shape=shape_of(ans))),
                 sym=lambda sp, x, w, b: x * w + b, latex="{0} {1}^\\top + {2}", display="linear",
                 doc="x W^T + b (an affine layer, W of shape (out, in)); one primitive rather than "
                     "transpose, matmul and add so that a layer is one graph node and the bias is "
                     "added in place. vjp: g W, g^T x, and g summed over the batch axes.")

# ---------------------------------------------------------------- shapes and indexing


def _reshape_impl(x, shape):
    return np.reshape(x, shape)


reshape = defprim("reshape", _reshape_impl,
                  (lambda g, ans, x, shape: reshape(g, shape=shape_of(x)),),
                  (lambda t, ans, x, shape: reshape(t, shape=shape),),
                  sym=lambda sp, x, shape: x, latex="{0}", doc="Same data, another shape.")


def _transpose_impl(x, axes=None):
    return np.transpose(x, axes)


def _inverse_axes(axes, nd):
    if axes is None:
        return None
    return tuple(np.argsort([a % nd for a in axes]).tolist())


transpose = defprim("transpose", _transpose_impl,
                    (lambda g, ans, x, axes=None: transpose(g, axes=_inverse_axes(axes, ndim_of(x))),),
                    (lambda t, ans, x, axes=None: transpose(t, axes=axes),),
                    sym=lambda sp, x, axes=None: x, latex="{{{0}}}^\\top",
                    doc="Permute axes (None: reverse them).")


def swapaxes(x, a, b):
    """Exchange two axes (a transpose)."""
    axes = list(range(ndim_of(x)))
    axes[a], axes[b] = axes[b], axes[a]
    return transpose(x, axes=tuple(axes))


def _broadcast_to_impl(x, shape):
    # On the hot path of every sum's cotangent: attribute reads, not np.shape / np.result_type.
    dtype = getattr(x, "dtype", None)
    if dtype is None:
        x = np.asarray(x)
        dtype = x.dtype
    if x.shape == tuple(shape):
        return x
    out = np.empty(shape, dtype=dtype)  # a writable copy: cheaper than a view here
    if x.shape == ():
        out.fill(x)  # the cotangent of a full sum or mean: fill is cheaper than out[...] = x
    else:
        out[...] = x
    return out


broadcast_to = defprim("broadcast_to", _broadcast_to_impl,
                       (lambda g, ans, x, shape: unbroadcast(g, shape_of(x)),),
                       (lambda t, ans, x, shape: broadcast_to(t, shape=shape),),
                       sym=lambda sp, x, shape: x, latex="{0}",
                       doc="Broadcast to a shape (a read-only view).")


def unbroadcast(g, shape):
    """Sum a cotangent of a broadcast result back to ``shape``: the one helper that undoes
    broadcasting for every rule. Leading axes are summed away; axes of size 1 are summed with
    keepdims."""
    gshape = shape_of(g)
    if gshape == shape:
        return g
    lead = len(gshape) - len(shape)
    axes = tuple(range(lead)) + tuple(lead + i for i, n in enumerate(shape) if n == 1 and gshape[lead + i] != 1)
    if type(g) is np.ndarray:  # what sum and reshape do on a plain array, without their dispatch
        if axes:
            g = np.add.reduce(g, axis=axes)
        return g.reshape(shape) if g.shape != shape else g
    if axes:
        g = sum(g, axis=axes)
    return reshape(g, shape=shape) if shape_of(g) != shape else g


def _is_advanced(index):
    parts = index if isinstance(index, tuple) else (index,)
    return any(not isinstance(p, (int, slice, type(None), type(Ellipsis))) for p in parts)


def _getitem_impl(x, index):
    return x[index]


def _scatter_add_impl(g, index, shape):
    out = np.zeros(shape, dtype=np.result_type(g))
    if _is_advanced(index):
        np.add.at(out, index, g)  # repeated indices must add up, which plain assignment loses
    else:
        out[index] = g
    return out


getitem = defprim("getitem", _getitem_impl,
                  (lambda g, ans, x, index: scatter_add(g, index=index, shape=shape_of(x)),),
                  (lambda t, ans, x, index: getitem(t, index=index),),
                  sym=lambda sp, x, index: x, latex="{0}_{{[\\cdot]}}", display="[]",
                  doc="x[index]: basic slicing and integer-array indexing such as x[range(n), labels].")
scatter_add = defprim("scatter_add", _scatter_add_impl,
                      (lambda g, ans, u, index, shape: getitem(g, index=index),),
                      (lambda t, ans, u, index, shape: scatter_add(t, index=index, shape=shape),),
                      sym=lambda sp, u, index, shape: u,  # one number placed in a one-element array
                      latex="\\operatorname{{scatter}}\\left({0}\\right)",
                      doc="Zeros of `shape` with u added at index (repeated indices add up); "
                          "the transpose of getitem.")


def _class_labels_impl(y, classes, who="labels"):
    """``y`` as int64 labels, each in 0..classes-1, or a :class:`LabelError` naming the first
    that is not (a :class:`DTypeError` for labels that are not whole numbers). A primitive so that a compiled program
    checks the labels of every call, not only those it was traced with."""
    if y.dtype.kind not in "iu":
        if y.dtype.kind != "f" or not np.all(y == np.round(y)):
            raise DTypeError(f"{who}: class labels must be whole numbers, got dtype {y.dtype}")
        y = y.astype(np.int64)
    if y.size and (y.min() < 0 or y.max() >= classes):
        row = int(np.flatnonzero((y < 0) | (y >= classes))[0])
        raise LabelError(f"{who}: label {y.flat[row]} (row {row}) is out of range for {classes} classes; "
                         f"labels must be in 0..{classes - 1}")
    return y


class_labels = defprim("class_labels", _class_labels_impl, (None,), (None,), differentiable=False, analytic=False,
                       latex="\\operatorname{{labels}}\\left({0}\\right)", display="labels",
                       doc="Integer class labels checked against the number of classes: data, not differentiable.")


def _concatenate_impl(*xs, axis=0):
    return np.concatenate(xs, axis=axis)


def _concat_vjp(i, g, ans, *xs, axis=0):
    nd = ndim_of(ans)
    ax = axis % nd
    start = 0
    for x in xs[:i]:
        start += shape_of(x)[ax]
    index = (slice(None),) * ax + (slice(start, start + shape_of(xs[i])[ax]),)
    return getitem(g, index=index)


def _zeros_for(x):
    return np.zeros(shape_of(x), dtype=dtype_of(x))


def _one_tangent(op):
    # Contribution of argument i's tangent alone: the op applied to zeros elsewhere (linear op).
    return PerArg(lambda i, t, ans, *xs, axis=0:
                  op(*[t if j == i else _zeros_for(x) for j, x in enumerate(xs)], axis=axis))


concatenate = defprim("concatenate", _concatenate_impl, PerArg(_concat_vjp),
                      _one_tangent(lambda *xs, axis: concatenate(*xs, axis=axis)),
                      sym=lambda sp, *xs, axis=0: xs[0],  # one piece: symbolic mode refuses several (an array)
                      latex="\\left[{0}\\right]", doc="Join arrays along an existing axis.")


def _stack_impl(*xs, axis=0):
    return np.stack(xs, axis=axis)


def _stack_vjp(i, g, ans, *xs, axis=0):
    ax = axis % ndim_of(ans)
    return getitem(g, index=(slice(None),) * ax + (i,))


stack = defprim("stack", _stack_impl, PerArg(_stack_vjp), _one_tangent(lambda *xs, axis: stack(*xs, axis=axis)),
                sym=lambda sp, *xs, axis=0: xs[0],  # one piece: symbolic mode refuses several (an array)
                latex="\\left[{0}\\right]", doc="Join arrays along a new axis.")

# ================================================================ chainrule.numpy's primitives
# (analytic=False on cbrt, arctan2, hypot and logaddexp: numpy has no complex version of them, so
# the complex step cannot probe them; the others take complex values like their real selves.)
# Functions of numpy's surface (chainrule.numpy) that are primitives because a composition would
# be imprecise (log1p, expm1, the inverse functions near their poles), slow (einsum, cumsum) or
# wrong at special points (prod with a zero entry). Everything else there is a composition.


def _unary(name, impl, deriv, sym=None, latex=None, scalar=None, analytic=True, doc=""):
    """An elementwise function of one argument whose derivative is ``deriv(ans, x)``:
    vjp g * f'(x), jvp t * f'(x)."""
    return defprim(name, impl, (lambda g, ans, x: g * deriv(ans, x),),
                   (lambda t, ans, x: multiply(t, deriv(ans, x)),),
                   sym=sym, latex=latex or f"\\operatorname{{{{{name}}}}}\\left({{0}}\\right)",
                   scalar=scalar, elementwise=True, analytic=analytic, doc=doc)


def _one_minus_sq(x):
    return subtract(1, multiply(x, x))


_LN2, _LN10 = math.log(2.0), math.log(10.0)

tan = _unary("tan", np.tan, lambda ans, x: add(1, multiply(ans, ans)), lambda sp, x: sp.tan(x),
             "\\tan\\left({0}\\right)", math.tan, doc="tan x; d/dx = 1 + tan^2 x.")
sinh = _unary("sinh", np.sinh, lambda ans, x: cosh(x), lambda sp, x: sp.sinh(x),
              "\\sinh\\left({0}\\right)", math.sinh, doc="sinh x; d/dx = cosh x.")
cosh = _unary("cosh", np.cosh, lambda ans, x: sinh(x), lambda sp, x: sp.cosh(x),
              "\\cosh\\left({0}\\right)", math.cosh, doc="cosh x; d/dx = sinh x.")
arcsin = _unary("arcsin", np.arcsin, lambda ans, x: divide(1, sqrt(_one_minus_sq(x))), lambda sp, x: sp.asin(x),
                "\\arcsin\\left({0}\\right)", math.asin, doc="arcsin x; d/dx = 1 / sqrt(1 - x^2).")
arccos = _unary("arccos", np.arccos, lambda ans, x: negative(divide(1, sqrt(_one_minus_sq(x)))),
                lambda sp, x: sp.acos(x), "\\arccos\\left({0}\\right)", math.acos,
                doc="arccos x; d/dx = -1 / sqrt(1 - x^2).")
arctan = _unary("arctan", np.arctan, lambda ans, x: divide(1, add(1, multiply(x, x))), lambda sp, x: sp.atan(x),
                "\\arctan\\left({0}\\right)", math.atan, doc="arctan x; d/dx = 1 / (1 + x^2).")
arcsinh = _unary("arcsinh", np.arcsinh, lambda ans, x: divide(1, sqrt(add(multiply(x, x), 1))),
                 lambda sp, x: sp.asinh(x), "\\operatorname{{arsinh}}\\left({0}\\right)", math.asinh,
                 doc="arsinh x; d/dx = 1 / sqrt(x^2 + 1).")
arccosh = _unary("arccosh", np.arccosh, lambda ans, x: divide(1, sqrt(subtract(multiply(x, x), 1))),
                 lambda sp, x: sp.acosh(x), "\\operatorname{{arcosh}}\\left({0}\\right)", math.acosh,
                 doc="arcosh x (x >= 1); d/dx = 1 / sqrt(x^2 - 1).")
arctanh = _unary("arctanh", np.arctanh, lambda ans, x: divide(1, _one_minus_sq(x)), lambda sp, x: sp.atanh(x),
                 "\\operatorname{{artanh}}\\left({0}\\right)", math.atanh, doc="artanh x; d/dx = 1 / (1 - x^2).")
log1p = _unary("log1p", np.log1p, lambda ans, x: divide(1, add(1, x)), lambda sp, x: sp.log(1 + x),
               "\\ln\\left(1 + {0}\\right)", math.log1p,
               doc="log(1 + x), exact for tiny x (a composition would round 1 + x); d/dx = 1 / (1 + x).")
expm1 = _unary("expm1", np.expm1, lambda ans, x: add(ans, 1), lambda sp, x: sp.exp(x) - 1,
               "e^{{{0}}} - 1", math.expm1, doc="e^x - 1, exact for tiny x; d/dx = e^x = ans + 1.")
log2 = _unary("log2", np.log2, lambda ans, x: divide(1, multiply(x, _LN2)), lambda sp, x: sp.log(x, 2),
              "\\log_2\\left({0}\\right)", math.log2, doc="Base-2 logarithm (exact at powers of 2); d/dx = 1 / (x ln 2).")
log10 = _unary("log10", np.log10, lambda ans, x: divide(1, multiply(x, _LN10)), lambda sp, x: sp.log(x, 10),
               "\\log_{{10}}\\left({0}\\right)", math.log10,
               doc="Base-10 logarithm (exact at powers of 10); d/dx = 1 / (x ln 10).")
exp2 = _unary("exp2", np.exp2, lambda ans, x: multiply(ans, _LN2), lambda sp, x: 2 ** x, "2^{{{0}}}",
              doc="2^x (exact at integers); d/dx = 2^x ln 2.")
cbrt = _unary("cbrt", np.cbrt, lambda ans, x: divide(1, multiply(3, multiply(ans, ans))),
              lambda sp, x: sp.cbrt(x), "\\sqrt[3]{{{0}}}", analytic=False, doc="Real cube root; d/dx = 1 / (3 cbrt(x)^2).")


def _sinc_deriv(ans, x):
    # (cos(pi x) - sinc x) / x, replaced near 0 (where it is 0 / 0) by its Taylor series
    # -(pi^2 / 3) x + (pi^4 / 30) x^3, so that the first and second derivatives at 0 are right.
    small = less(abs(x), 1e-3)
    safe = where(small, 1.0, x)
    exact = divide(subtract(cos(multiply(safe, math.pi)), sinc(safe)), safe)
    x2 = multiply(x, x)
    series = multiply(x, add(-math.pi ** 2 / 3, multiply(x2, math.pi ** 4 / 30)))
    return where(small, series, exact)


sinc = _unary("sinc", np.sinc, _sinc_deriv, lambda sp, x: sp.sin(sp.pi * x) / (sp.pi * x),
              "\\operatorname{{sinc}}\\left({0}\\right)",
              doc="sin(pi x) / (pi x), 1 at 0 (numpy's normalised sinc); d/dx = (cos(pi x) - sinc x) / x, "
                  "its Taylor series near 0.")


def _step(name, impl, sym, latex):
    return defprim(name, impl, (_zero_rule,), (_zero_rule,), sym=sym, latex=latex, elementwise=True,
                   analytic=False, doc=f"numpy's {name}: piecewise constant, so its derivative is 0 "
                                       "(at the jumps too, as PyTorch's).")


floor = _step("floor", np.floor, lambda sp, x: sp.floor(x), "\\lfloor {0} \\rfloor")
ceil = _step("ceil", np.ceil, lambda sp, x: sp.ceiling(x), "\\lceil {0} \\rceil")
trunc = _step("trunc", np.trunc, lambda sp, x: sp.sign(x) * sp.floor(sp.Abs(x)), "\\operatorname{{trunc}}\\left({0}\\right)")
# SymPy has no round-half-to-even: an undefined function shows it (its derivative is 0 anyway)
rint = _step("rint", np.rint, lambda sp, x: sp.Function("rint")(x), "\\operatorname{{rint}}\\left({0}\\right)")


def _binary(name, impl, dx, dy, sym=None, latex=None, analytic=True, doc=""):
    """An elementwise function of two arguments with partial derivatives ``dx(ans, x, y)`` and
    ``dy(ans, x, y)``; reverse mode sums broadcast cotangents back."""
    return defprim(name, impl,
                   (lambda g, ans, x, y: g * dx(ans, x, y), lambda g, ans, x, y: g * dy(ans, x, y)),
                   (lambda t, ans, x, y: multiply(t, dx(ans, x, y)), lambda t, ans, x, y: multiply(t, dy(ans, x, y))),
                   sym=sym, latex=latex or f"\\operatorname{{{{{name}}}}}\\left({{0}}, {{1}}\\right)",
                   elementwise=True, analytic=analytic, doc=doc)


def _sq_norm(x, y):
    return add(multiply(x, x), multiply(y, y))


arctan2 = _binary("arctan2", np.arctan2, lambda ans, y, x: divide(x, _sq_norm(x, y)),
                  lambda ans, y, x: negative(divide(y, _sq_norm(x, y))), lambda sp, y, x: sp.atan2(y, x),
                  analytic=False, doc="The angle of the point (x, y) for arctan2(y, x); d/dy = x / (x^2 + y^2), "
                      "d/dx = -y / (x^2 + y^2).")
hypot = _binary("hypot", np.hypot, lambda ans, x, y: divide(x, ans), lambda ans, x, y: divide(y, ans),
                lambda sp, x, y: sp.sqrt(x ** 2 + y ** 2), analytic=False,
                doc="sqrt(x^2 + y^2) without overflow; d/dx = x / ans, d/dy = y / ans.")
logaddexp = _binary("logaddexp", np.logaddexp, lambda ans, x, y: exp(subtract(x, ans)),
                    lambda ans, x, y: exp(subtract(y, ans)), lambda sp, x, y: sp.log(sp.exp(x) + sp.exp(y)), analytic=False,
                    doc="log(e^x + e^y) without overflow; d/dx = e^(x - ans).")
logaddexp2 = _binary("logaddexp2", np.logaddexp2, lambda ans, x, y: exp2(subtract(x, ans)),
                     lambda ans, x, y: exp2(subtract(y, ans)), lambda sp, x, y: sp.log(2 ** x + 2 ** y, 2), analytic=False,
                     doc="log2(2^x + 2^y) without overflow; d/dx = 2^(x - ans).")
mod = _binary("mod", np.remainder, lambda ans, x, y: 1.0,
              lambda ans, x, y: negative(floor(divide(x, y))), lambda sp, x, y: sp.Mod(x, y),
              analytic=False,
              doc="x - floor(x / y) y (numpy's mod and remainder: the sign of y); d/dx = 1, "
                  "d/dy = -floor(x / y), away from the jumps.")
fmod = _binary("fmod", np.fmod, lambda ans, x, y: 1.0, lambda ans, x, y: negative(trunc(divide(x, y))),
               sym=lambda sp, x, y: x - y * sp.sign(x / y) * sp.floor(sp.Abs(x / y)), analytic=False, doc="x - trunc(x / y) y (C's fmod: the sign of x); d/dx = 1, d/dy = -trunc(x / y).")


def _fshare(x, other, g, loses):
    # fmax / fmin: as maximum / minimum, except that a NaN side always loses (numpy ignores it)
    nan_x, nan_o = x != x, other != other
    out = _tie_share(x, other, g, loses)
    return where(nan_x, 0, where(nan_o, g, out))


fmax = defprim("fmax", np.fmax,
               (lambda g, ans, x, y: _fshare(x, y, g, less), lambda g, ans, x, y: _fshare(y, x, g, less)),
               (lambda t, ans, x, y: _fshare(x, y, t, less), lambda t, ans, x, y: _fshare(y, x, t, less)),
               sym=lambda sp, x, y: sp.Max(x, y), latex="\\max\\left({0}, {1}\\right)", elementwise=True,
               analytic=False, doc="Elementwise max ignoring NaN; ties split the derivative, a NaN side gets none.")
fmin = defprim("fmin", np.fmin,
               (lambda g, ans, x, y: _fshare(x, y, g, greater), lambda g, ans, x, y: _fshare(y, x, g, greater)),
               (lambda t, ans, x, y: _fshare(x, y, t, greater), lambda t, ans, x, y: _fshare(y, x, t, greater)),
               sym=lambda sp, x, y: sp.Min(x, y), latex="\\min\\left({0}, {1}\\right)", elementwise=True,
               analytic=False, doc="Elementwise min ignoring NaN; ties split the derivative, a NaN side gets none.")


# ---------------------------------------------------------------- scans and products
def _flip(x, axis):
    return getitem(x, index=(Ellipsis, slice(None, None, -1)) + (slice(None),) * (-1 - axis))


def _cumsum_impl(x, axis):
    return np.cumsum(x, axis=axis)


# axis is always a negative int here (chainrule.numpy flattens for axis=None and normalises it):
# the same rule then serves a batch of tangents with a leading axis in forward mode.
cumsum = defprim("cumsum", _cumsum_impl,
                 (lambda g, ans, x, axis: _flip(cumsum(_flip(g, axis), axis=axis), axis),),
                 (lambda t, ans, x, axis: cumsum(t, axis=axis),),
                 sym=lambda sp, x, axis: x,  # symbolic values are numbers: one running sum, x itself
                 latex="\\operatorname{{cumsum}}\\left({0}\\right)",
                 doc="Running sums along a (negative) axis; vjp: the running sums of g from the end.")


def _cumprod_impl(x, axis):
    return np.cumprod(x, axis=axis)


cumprod = defprim("cumprod", _cumprod_impl,
                  (lambda g, ans, x, axis: divide(_flip(cumsum(_flip(g * ans, axis), axis=axis), axis), x),),
                  (lambda t, ans, x, axis: multiply(ans, cumsum(divide(t, x), axis=axis)),),
                  sym=lambda sp, x, axis: x,
                  latex="\\operatorname{{cumprod}}\\left({0}\\right)",
                  doc="Running products along a (negative) axis; d ans_j / d x_i = ans_j / x_i for i <= j "
                      "(as HIPS autograd's rule: not defined where an entry is exactly 0, which gives NaN).")


def _prod_impl(x, axis=None, keepdims=False):
    return np.prod(x, axis=axis, keepdims=keepdims)


def _prod_others(ans, x, axis, keepdims):
    """For each entry, the product of the other entries of its reduction: exclusive running
    products from both ends (no division, so exact where an entry is 0)."""
    shape = shape_of(x)
    nd = len(shape)
    red = _axes(axis, nd)
    if not red:
        return np.ones(shape, dtype_of(x))
    keep = [a for a in range(nd) if a not in red]
    perm = keep + list(red)
    k = 1
    for a in red:
        k *= shape[a]
    lead = tuple(shape[a] for a in keep)
    m = reshape(transpose(x, axes=tuple(perm)), shape=lead + (k,))
    ones = np.ones(lead + (1,), dtype_of(x))
    left = concatenate(ones, cumprod(getitem(m, index=(Ellipsis, slice(None, -1))), axis=-1), axis=-1)
    right = _flip(concatenate(ones, cumprod(getitem(_flip(m, -1), index=(Ellipsis, slice(None, -1))), axis=-1),
                              axis=-1), -1)
    others = reshape(multiply(left, right), shape=tuple(shape[a] for a in perm))
    return transpose(others, axes=_inverse_axes(tuple(perm), nd))


prod = defprim("prod", _prod_impl,
               (lambda g, ans, x, axis=None, keepdims=False:
                multiply(_unreduce(g, shape_of(x), axis, keepdims), _prod_others(ans, x, axis, keepdims)),),
               (lambda t, ans, x, axis=None, keepdims=False:
                sum(multiply(t, _prod_others(ans, x, axis, keepdims)), axis=axis, keepdims=keepdims),),
               sym=lambda sp, x, axis=None, keepdims=False: x,  # the product of one number
               latex="\\prod {0}",
               doc="Product over axis; d/dx_i = the product of the other entries, computed without "
                   "dividing by x_i (right where entries are 0).")


# ---------------------------------------------------------------- einsum
def _einsum_impl(*operands, subscripts):
    return np.einsum(subscripts, *operands, optimize=len(operands) > 2)


def _einsum_vjp(i, g, ans, *ops, subscripts):
    """The cotangent of operand i: g contracted with the other operands onto operand i's
    subscripts. A letter of operand i found nowhere else was summed away (g is broadcast along
    it); a letter repeated in operand i (a diagonal) is put back with an identity matrix."""
    ins, out = subscripts.split("->")
    ins = ins.split(",")
    mine = ins[i]
    others = [s for j, s in enumerate(ins) if j != i]
    seen = set(out).union(*others)
    unique = "".join(dict.fromkeys(c for c in mine if c in seen))
    sizes = dict(zip(mine, shape_of(ops[i])))
    spec = ",".join([out] + others) + "->" + unique
    v = einsum(g, *[o for j, o in enumerate(ops) if j != i], subscripts=spec)
    # letters summed away in operand i alone, and repeated letters: one einsum with constants
    extra, eyes, target = [], [], ""
    free = iter(c for c in "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                if c not in subscripts)
    used = set()
    for c in mine:
        if c in used:  # a second appearance: tied to the first by an identity matrix
            d = next(free)
            extra.append(c + d)
            eyes.append(np.eye(sizes[c], dtype=dtype_of(ops[i])))
            target += d
        else:
            used.add(c)
            target += c
            if c not in seen:  # summed away in operand i alone: g is broadcast along it (ones)
                extra.append(c)
                eyes.append(np.ones(sizes[c], dtype_of(ops[i])))
    if not eyes:
        return v
    return einsum(v, *eyes, subscripts=",".join([unique] + extra) + "->" + target)


def _einsum_jvp(i, t, ans, *ops, subscripts):
    return einsum(*[t if j == i else o for j, o in enumerate(ops)], subscripts=subscripts)


einsum = defprim("einsum", _einsum_impl, PerArg(_einsum_vjp), PerArg(_einsum_jvp),
                 # on numbers (one entry per operand) every contraction is the product of the operands
                 sym=lambda sp, *xs, subscripts: functools.reduce(operator.mul, xs),
                 latex="\\operatorname{{einsum}}\\left({0}\\right)",
                 doc="Einstein summation with explicit subscripts 'ij,jk->ik' (chainrule.numpy.einsum "
                     "writes numpy's implicit and '...' forms out); linear in each operand, so each rule "
                     "is an einsum too.")
