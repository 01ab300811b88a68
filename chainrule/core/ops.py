"""The functions users call: every primitive with a numpy-like signature, and the composites.

Each accepts Tensors, arrays and Python scalars alike: with a Tensor (or another traced value)
among the arguments the result is traced; on plain arrays it is exactly numpy's result.

It also holds the rule that a value carrying a derivative never silently becomes a plain one:
``ArrayOperators`` routes numpy's functions (``__array_ufunc__``, ``__array_function__``) to
chainrule through one table, :data:`NUMPY_FUNCTIONS`, refuses the others while a derivative is
taken, and refuses ``float()``, ``np.asarray()``, ... on such a value (``ConcretizationError``).
"""
from __future__ import annotations

import numpy as np

from chainrule.core import primitives as P
import builtins

from chainrule.core.errors import ConcretizationError, ShapeError
from chainrule.core.registry import _NO_PARAMS, REGISTRY, Box, bind, grad_enabled, stack_sequence

# Elementwise primitives take no parameters: the operation is the public function itself.
add, subtract, negative, multiply, divide, power = P.add, P.subtract, P.negative, P.multiply, P.divide, P.power
exp, log, sin, cos, tanh, sqrt, abs, sign = P.exp, P.log, P.sin, P.cos, P.tanh, P.sqrt, P.abs, P.sign
relu, sigmoid, softplus, maximum, minimum, matmul = P.relu, P.sigmoid, P.softplus, P.maximum, P.minimum, P.matmul
equal, not_equal, greater, greater_equal, less, less_equal = (
    P.equal, P.not_equal, P.greater, P.greater_equal, P.less, P.less_equal)
unbroadcast = P.unbroadcast


def swapaxes(x, axis1, axis2):
    """Exchange two axes (numpy's names ``axis1``, ``axis2``)."""
    return P.swapaxes(x, axis1, axis2)


def _axis(axis):
    return tuple(axis) if isinstance(axis, list) else axis


def where(condition, x, y):
    """``x`` where ``condition`` else ``y`` (broadcasting); the condition is not differentiated
    (it is piecewise constant), so a Tensor's plain value is taken."""
    if hasattr(condition, "requires_grad"):
        condition = concrete(condition)
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
    while hasattr(x, "_bind") and not hasattr(x, "_opaque"):  # a Box: Tensor keeps .data, Dual keeps .primal
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


def _traced(v, eager=True):
    """True for a value through which a derivative is being taken now: a Tensor that requires a
    gradient while gradients are recorded (with ``eager=False`` only one inside a transformation,
    level > 0), or any other box (Dual, symbolic value); looked for through every level."""
    while isinstance(v, ArrayOperators):
        if not hasattr(v, "requires_grad"):
            return True
        if v.requires_grad and grad_enabled() and (eager or v._level):
            return True
        v = v.data
    return False


def _conversion_error(x, what):
    """The error for ``what`` (``float()``, ``numpy.asarray()``, ...) asked of ``x``, which
    carries a derivative, saying how to take its value on purpose."""
    inner = x  # a value traced by cr.compile, at any depth, says it itself (modes/compile.py)
    while inner is not None and hasattr(inner, "_bind") and not hasattr(inner, "_opaque"):
        inner = inner.primal if hasattr(inner, "primal") else getattr(inner, "data", None)
    if hasattr(inner, "_opaque"):
        return inner._conversion_error(what)
    if hasattr(x, "requires_grad") and not x._level:
        return ConcretizationError(
            f"{what} of a Tensor that requires grad would detach it from the graph without a word; use "
            "t.detach().numpy() (or t.numpy()) for its value, cr.stack([...]) to make one Tensor of several, "
            "or chainrule's functions (cr.sum, cr.exp, ...) to keep its gradient")
    if not hasattr(x, "requires_grad") and not hasattr(x, "primal"):
        return ConcretizationError(f"{what} of a symbolic value: it has no number; keep it symbolic with "
                                   "chainrule's functions (cr.exp, cr.sin, cr.where instead of `if`, ...)")
    kind = "a Dual (forward mode)" if hasattr(x, "primal") else "a value traced by cr.grad (reverse mode)"
    return ConcretizationError(
        f"{what} of {kind} inside a function being differentiated would lose its derivative without a word "
        "(math.* functions call float()); use chainrule's functions (cr.exp, cr.sin, cr.where instead of `if` "
        "on a number, ...), take float() or .item() of the result outside the transformation, or take the "
        "value on purpose inside it with x.detach() or cr.stop_gradient(x) (its derivative is then zero)")


def _plain_value(x, what, eager=False):
    """The plain value of ``x`` for a conversion, or ConcretizationError when that would drop a
    derivative (``eager``: also an eager Tensor that requires grad, as PyTorch's ``numpy()``)."""
    if _traced(x, eager):
        raise _conversion_error(x, what)
    return concrete(x)


def stop_gradient(x):
    """``x``'s value with no derivative through it, for every kind of value: an eager Tensor
    detached, the plain value of a traced one (a Tensor of a transformation, a Dual, at every
    level), lists and tuples entry by entry; plain values as they are. The derivative of what
    is computed from it is zero (as ``jax.lax.stop_gradient``).

    >>> import chainrule as cr
    >>> float(cr.grad(lambda x: x * cr.stop_gradient(x))(3.0))   # d/dx (x * c) at c = x
    3.0
    """
    if type(x) is list or type(x) is tuple:
        return type(x)(stop_gradient(v) for v in x)
    if not isinstance(x, ArrayOperators) or hasattr(x, "_opaque"):  # _opaque: cr.compile's values
        return x
    if hasattr(x, "requires_grad") and not x._level and not isinstance(x.data, Box):
        return x.detach()
    if not hasattr(x, "requires_grad") and not hasattr(x, "primal"):
        raise TypeError("stop_gradient: a symbolic value has no numeric value to stop at; symbolic "
                        "differentiation works on functions without constants taken from their inputs")
    return concrete(x)


def _plain_ufunc(ufunc, method, inputs, kwargs):
    """A ufunc without a primitive: computed on the plain values, unless a derivative is being
    traced through one of them (it would be lost without a word)."""
    for v in (*inputs, *kwargs.get("out", ())):
        if _traced(v):
            name = ufunc.__name__ if method == "__call__" else f"{ufunc.__name__}.{method}"
            raise _no_rule(name, v)
    if "out" in kwargs:
        return NotImplemented
    return getattr(ufunc, method)(*[concrete(v) for v in inputs], **kwargs)


def _no_rule(name, v):
    return ConcretizationError(
        f"numpy.{name} has no derivative rule in chainrule, so it cannot be applied to a {type(v).__name__} "
        "that is being differentiated (its derivative would be lost); use chainrule's functions (cr.exp, "
        "cr.maximum, cr.sum, ...), or apply it to x.detach() or cr.stop_gradient(x) for a constant")


def _leaves(tree):
    """The values inside nested lists and tuples (numpy's sequences of arrays), and dicts' values."""
    if type(tree) is list or type(tree) is tuple:
        for v in tree:
            yield from _leaves(v)
    elif type(tree) is dict:
        for v in tree.values():
            yield from _leaves(v)
    else:
        yield tree


def has_box(tree):
    """Whether a chainrule value (any box) is inside ``tree``: nested lists, tuples, dicts' values."""
    for v in _leaves(tree):
        if isinstance(v, Box):
            return True
    return False


def _plain_tree(tree):
    """``tree`` with every box replaced by its plain value (for values that carry no derivative)."""
    if type(tree) is list or type(tree) is tuple:
        return type(tree)(_plain_tree(v) for v in tree)
    if type(tree) is dict:
        return {k: _plain_tree(v) for k, v in tree.items()}
    if isinstance(tree, Box):
        if not hasattr(tree, "data") and not hasattr(tree, "primal"):  # a symbolic value: no number
            raise _conversion_error(tree, "a numpy function")
        return concrete(tree)
    return tree


def _plain_function(func, args, kwargs):
    """A numpy function without an entry in NUMPY_FUNCTIONS: refused while a derivative is traced
    through one of its arguments, else computed on the plain values (as numpy would)."""
    for v in _leaves((args, kwargs)):
        if _traced(v):
            raise _no_rule(_numpy_name(func), v)
    return func(*_plain_tree(args), **_plain_tree(kwargs))


def _numpy_name(func):
    module = getattr(func, "__module__", None) or ""
    return f"linalg.{func.__name__}" if module.endswith("linalg") else func.__name__


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
            impl = NUMPY_FUNCTIONS.get(ufunc)  # a composition (np.square, ...)
            if impl is not None:
                return impl(*inputs)
        return _plain_ufunc(ufunc, method, inputs, kwargs)

    def __array_function__(self, func, types, args, kwargs):
        """numpy's other functions (``np.dot``, ``np.reshape``, ``np.var``, ...) on traced values:
        one with an entry in NUMPY_FUNCTIONS is computed by chainrule, so it stays differentiable;
        any other runs on the plain values, or is refused while a derivative is traced through it."""
        impl = NUMPY_FUNCTIONS.get(func)
        if impl is not None:
            return impl(*args, **kwargs)
        return _plain_function(func, args, kwargs)

    # -- conversions: plain values only where no derivative is lost (see _plain_value) ------
    def __array__(self, dtype=None, copy=None):
        a = np.asarray(_plain_value(self, "numpy.asarray()", eager=True))
        if dtype is not None:
            a = a.astype(dtype, copy=False)
        return np.array(a, copy=True) if copy else a

    def __float__(self): return float(_plain_value(self, "float()"))
    def __int__(self): return int(_plain_value(self, "int()"))
    def __complex__(self): return complex(_plain_value(self, "complex()"))
    def __bool__(self): return bool(_plain_value(self, "bool() (an `if` or `and` on a number)"))
    def __index__(self): return np.asarray(_plain_value(self, "use as an index")).__index__()

    def item(self):
        """The value as a Python number (an eager Tensor; inside a transformation: an error)."""
        return np.asarray(_plain_value(self, ".item()")).item()

    def tolist(self):
        return np.asarray(_plain_value(self, ".tolist()")).tolist()

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
    def __mod__(self, o): return P.mod(self, o)
    def __rmod__(self, o): return P.mod(o, self)
    def __floordiv__(self, o): return P.floor(P.divide(self, o))
    def __rfloordiv__(self, o): return P.floor(P.divide(o, self))
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

    def astype(self, dtype, order="K", casting="unsafe", subok=True, copy=True): return astype(self, dtype)
    def ravel(self, order="C"): return _np_ravel(self, order)
    def flatten(self, order="C"): return _np_ravel(self, order)
    def squeeze(self, axis=None): return _np_squeeze(self, axis)
    def swapaxes(self, axis1, axis2): return swapaxes(self, axis1, axis2)
    def clip(self, min=None, max=None, out=None): return _np_clip(self, min, max, out)
    def dot(self, b, out=None): return _np_dot(self, b, out)
    def diagonal(self, offset=0, axis1=0, axis2=1): return diagonal(self, offset, axis1, axis2)
    def trace(self, offset=0, axis1=0, axis2=1, dtype=None, out=None): return _np_trace(self, offset, axis1, axis2, dtype, out)
    def repeat(self, repeats, axis=None): return repeat(self, repeats, axis)
    def round(self, decimals=0, out=None): return _np_round(self, decimals, out)

    def prod(self, axis=None, dtype=None, out=None, keepdims=False):
        return _np_prod(self, axis, dtype, out, keepdims)

    def var(self, axis=None, dtype=None, out=None, ddof=0, keepdims=False):
        return _np_var(self, axis, dtype, out, ddof, keepdims)

    def std(self, axis=None, dtype=None, out=None, ddof=0, keepdims=False):
        return _np_std(self, axis, dtype, out, ddof, keepdims)

    def cumsum(self, axis=None, dtype=None, out=None): return _np_cumsum(self, axis, dtype, out)
    def cumprod(self, axis=None, dtype=None, out=None): return _np_cumprod(self, axis, dtype, out)
    def exp(self): return P.exp(self)
    def log(self): return P.log(self)
    def sin(self): return P.sin(self)
    def cos(self): return P.cos(self)
    def tanh(self): return P.tanh(self)
    def sqrt(self): return P.sqrt(self)
    def sigmoid(self): return P.sigmoid(self)
    def relu(self): return P.relu(self)
    def abs(self): return P.abs(self)


# ---------------------------------------------------------------- numpy's functions on traced values
# numpy function (or ufunc without a primitive) -> the chainrule function computing it with
# numpy's signature, from the registry's primitives. ``ArrayOperators.__array_function__`` and
# ``__array_ufunc__`` read this table; ``chainrule.numpy`` extends it through ``implements``.
NUMPY_FUNCTIONS: dict = {}


def implements(*numpy_functions):
    """Decorator: the function computes each of ``numpy_functions`` on chainrule values (None,
    a name this numpy version lacks, is skipped)."""
    def register(fn):
        for f in numpy_functions:
            if f is not None:
                NUMPY_FUNCTIONS[f] = fn
        return fn
    return register


def _unsupported(name, **options):
    """Refuse numpy options that chainrule does not compute (out=, where=, ...), naming them."""
    for key, value in options.items():
        if value is not None and value is not np._NoValue and value is not False:
            raise TypeError(f"numpy.{name}: {key}= is not supported on chainrule values (results are new "
                            f"values, computed by chainrule); call it without {key}=")


def _arr(x):
    """numpy's array_like: a sequence holding traced values stacked (see stack_sequence)."""
    return stack_sequence(x) if type(x) is list or type(x) is tuple else x


def _norm_axis(axis, nd):
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    return tuple(int(a) % nd for a in axes)


@implements(np.sum)
def _np_sum(a, axis=None, dtype=None, out=None, keepdims=False, initial=np._NoValue, where=np._NoValue):
    _unsupported("sum", out=out, initial=initial, where=where)
    a = _arr(a)
    return sum(a if dtype is None else astype(a, dtype), axis, keepdims)


@implements(np.mean)
def _np_mean(a, axis=None, dtype=None, out=None, keepdims=False, *, where=np._NoValue):
    _unsupported("mean", out=out, where=where)
    a = _arr(a)
    return mean(a if dtype is None else astype(a, dtype), axis, keepdims)


@implements(np.max, np.amax)
def _np_max(a, axis=None, out=None, keepdims=False, initial=np._NoValue, where=np._NoValue):
    _unsupported("max", out=out, initial=initial, where=where)
    return max(_arr(a), axis, keepdims)


@implements(np.min, np.amin)
def _np_min(a, axis=None, out=None, keepdims=False, initial=np._NoValue, where=np._NoValue):
    _unsupported("min", out=out, initial=initial, where=where)
    return min(_arr(a), axis, keepdims)


@implements(np.ptp)
def _np_ptp(a, axis=None, out=None, keepdims=False):
    _unsupported("ptp", out=out)
    a = _arr(a)
    return subtract(max(a, axis, keepdims), min(a, axis, keepdims))


@implements(np.var)
def _np_var(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False, *, where=np._NoValue,
            mean=np._NoValue, correction=np._NoValue):
    r"""$\frac{1}{n - \mathrm{ddof}} \sum_i (x_i - \bar x)^2$ over ``axis``."""
    _unsupported("var", out=out, where=where, mean=mean)
    if correction is not np._NoValue:
        ddof = correction
    a = _arr(a)
    if dtype is not None:
        a = astype(a, dtype)
    d = subtract(a, globals()["mean"](a, axis, True))
    shape = P.shape_of(a)
    n = P._count(shape, None if axis is None else _norm_axis(axis, len(shape)))
    return divide(sum(multiply(d, d), axis, keepdims), n - ddof)


@implements(np.std)
def _np_std(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False, *, where=np._NoValue,
            mean=np._NoValue, correction=np._NoValue):
    """sqrt(var): its derivative is infinite where the variance is 0."""
    return sqrt(_np_var(a, axis, dtype, out, ddof, keepdims, where=where, mean=mean, correction=correction))


@implements(np.average)
def _np_average(a, axis=None, weights=None, returned=False, *, keepdims=False):
    _unsupported("average", returned=returned)
    a = _arr(a)
    if weights is None:
        return mean(a, axis, keepdims)
    weights = _arr(weights)
    if P.shape_of(weights) != P.shape_of(a):
        raise TypeError("numpy.average: on chainrule values the weights need the shape of the values")
    return divide(sum(multiply(a, weights), axis, keepdims), sum(weights, axis, keepdims))


@implements(np.reshape)
def _np_reshape(a, /, shape=None, order="C", *, newshape=None, copy=None):
    if order != "C":
        raise TypeError("numpy.reshape: only order='C' is supported on chainrule values")
    return reshape(_arr(a), newshape if shape is None else shape)


@implements(np.ravel)
def _np_ravel(a, order="C"):
    if order not in ("C", "K", "A"):
        raise TypeError("numpy.ravel: only order='C' is supported on chainrule values")
    return reshape(_arr(a), -1)


@implements(np.transpose, getattr(np, "permute_dims", None))
def _np_transpose(a, axes=None):
    return transpose(_arr(a), axes)


@implements(getattr(np, "matrix_transpose", None), getattr(np.linalg, "matrix_transpose", None))
def _np_matrix_transpose(x, /):
    return swapaxes(_arr(x), -1, -2)


@implements(np.swapaxes)
def _np_swapaxes(a, axis1, axis2):
    return swapaxes(_arr(a), axis1, axis2)


@implements(np.moveaxis)
def _np_moveaxis(a, source, destination):
    a = _arr(a)
    nd = len(P.shape_of(a))
    src, dst = _norm_axis(source, nd), _norm_axis(destination, nd)
    order = [i for i in range(nd) if i not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return transpose(a, order)


@implements(np.squeeze)
def _np_squeeze(a, axis=None):
    a = _arr(a)
    shape = P.shape_of(a)
    drop = range(len(shape)) if axis is None else _norm_axis(axis, len(shape))
    for i in drop:
        if axis is not None and shape[i] != 1:
            raise ShapeError(f"numpy.squeeze: axis {i} has size {shape[i]}, not 1")
    return reshape(a, [n for i, n in enumerate(shape) if not (i in drop and n == 1)])


@implements(np.expand_dims)
def _np_expand_dims(a, axis):
    a = _arr(a)
    shape = list(P.shape_of(a))
    for i in sorted(_norm_axis(axis, len(shape) + (1 if isinstance(axis, (int, np.integer)) else len(axis)))):
        shape.insert(i, 1)
    return reshape(a, shape)


def _at_least(n):
    def atleast(*arys):
        out = []
        for a in arys:
            a = _arr(a)
            shape = P.shape_of(a)
            if len(shape) < n:  # numpy's rules: () -> (1,) -> (1, k) -> (1, k, 1); (m, k) -> (m, k, 1)
                if n == 3 and shape:
                    shape = ((1,) + shape + (1,)) if len(shape) == 1 else shape + (1,)
                else:
                    shape = (1,) * (n - len(shape)) + shape
                a = reshape(a, shape)
            out.append(a)
        return out[0] if len(out) == 1 else tuple(out)
    return atleast


implements(np.atleast_1d)(_at_least(1))
implements(np.atleast_2d)(_at_least(2))
implements(np.atleast_3d)(_at_least(3))


@implements(np.broadcast_to)
def _np_broadcast_to(array, shape, subok=False):
    return broadcast_to(_arr(array), (shape,) if isinstance(shape, (int, np.integer)) else shape)


@implements(np.concatenate, getattr(np, "concat", None))
def _np_concatenate(arrays, /, axis=0, out=None, *, dtype=None, casting=None):
    _unsupported("concatenate", out=out, casting=casting)
    arrays = [_arr(a) for a in arrays]
    if axis is None:
        arrays, axis = [reshape(a, -1) for a in arrays], 0
    if dtype is not None:
        arrays = [astype(a, dtype) for a in arrays]
    return concatenate(arrays, axis)


@implements(np.stack)
def _np_stack(arrays, axis=0, out=None, *, dtype=None, casting=None):
    _unsupported("stack", out=out, casting=casting)
    arrays = [_arr(a) for a in arrays]
    if dtype is not None:
        arrays = [astype(a, dtype) for a in arrays]
    return stack(arrays, axis)


@implements(np.vstack)
def _np_vstack(tup, *, dtype=None, casting=None):
    return _np_concatenate(_at_least(2)(*tup) if len(tup) > 1 else [_at_least(2)(*tup)], 0, dtype=dtype)


@implements(np.hstack)
def _np_hstack(tup, *, dtype=None, casting=None):
    arrays = _at_least(1)(*tup)
    arrays = list(arrays) if len(tup) > 1 else [arrays]
    return _np_concatenate(arrays, 0 if len(P.shape_of(arrays[0])) == 1 else 1, dtype=dtype)


@implements(np.flip)
def _np_flip(m, axis=None):
    m = _arr(m)
    nd = len(P.shape_of(m))
    axes = range(nd) if axis is None else _norm_axis(axis, nd)
    return P.getitem(m, index=tuple(slice(None, None, -1) if i in axes else slice(None) for i in range(nd)))


implements(np.fliplr)(lambda m: _np_flip(m, 1))
implements(np.flipud)(lambda m: _np_flip(m, 0))


@implements(np.where)
def _np_where(condition, *xy):
    if not xy:  # the positions where condition holds: integers, which carry no derivative
        return np.nonzero(concrete(_arr(condition)))
    if len(xy) != 2:
        raise TypeError("numpy.where takes one or three arguments")
    return where(concrete(_arr(condition)), _arr(xy[0]), _arr(xy[1]))


@implements(np.clip)
def _np_clip(a, a_min=np._NoValue, a_max=np._NoValue, out=None, *, min=np._NoValue, max=np._NoValue, **kwargs):
    """maximum then minimum, as numpy: where a_min > a_max every value is a_max."""
    _unsupported("clip", out=out, **kwargs)
    lo = a_min if a_min is not np._NoValue else min if min is not np._NoValue else None
    hi = a_max if a_max is not np._NoValue else max if max is not np._NoValue else None
    a = _arr(a)
    if lo is not None:
        a = maximum(a, _arr(lo))
    if hi is not None:
        a = minimum(a, _arr(hi))
    return a


def _tensordot(a, b, axes):
    """sum over a's axes ``axes[0]`` against b's ``axes[1]``: a transpose and a reshape of each to
    a matrix, one matmul, and a reshape to the free axes."""
    sa, sb = P.shape_of(a), P.shape_of(b)
    if isinstance(axes, (int, np.integer)):
        ax_a, ax_b = tuple(range(len(sa) - axes, len(sa))), tuple(range(axes))
    else:
        ax_a, ax_b = (_norm_axis(axes[0], len(sa)) if len(sa) else (), _norm_axis(axes[1], len(sb)) if len(sb) else ())
    if len(ax_a) != len(ax_b) or any(sa[i] != sb[j] for i, j in zip(ax_a, ax_b)):
        raise ShapeError(f"numpy.tensordot: shapes {sa} and {sb} do not fit over axes {ax_a} and {ax_b}")
    free_a = [i for i in range(len(sa)) if i not in ax_a]
    free_b = [i for i in range(len(sb)) if i not in ax_b]
    k = int(np.prod([sa[i] for i in ax_a]))
    ma = reshape(transpose(a, free_a + list(ax_a)), (-1, k))
    mb = reshape(transpose(b, list(ax_b) + free_b), (k, -1))
    return reshape(matmul(ma, mb), [sa[i] for i in free_a] + [sb[i] for i in free_b])


@implements(np.tensordot, getattr(np.linalg, "tensordot", None))
def _np_tensordot(a, b, axes=2):
    return _tensordot(_arr(a), _arr(b), axes)


@implements(np.dot)
def _np_dot(a, b, out=None):
    """numpy's dot: a product with a scalar, matmul for a matrix or vector b, else a sum over
    a's last axis and b's second-to-last."""
    _unsupported("dot", out=out)
    a, b = _arr(a), _arr(b)
    na, nb = len(P.shape_of(a)), len(P.shape_of(b))
    if na == 0 or nb == 0:
        return multiply(a, b)
    if nb <= 2:
        return matmul(a, b)
    return _tensordot(a, b, ([na - 1], [nb - 2]))


@implements(np.inner)
def _np_inner(a, b, /):
    a, b = _arr(a), _arr(b)
    na, nb = len(P.shape_of(a)), len(P.shape_of(b))
    if na == 0 or nb == 0:
        return multiply(a, b)
    return _tensordot(a, b, ([na - 1], [nb - 1]))


@implements(np.vdot)
def _np_vdot(a, b, /):
    return sum(multiply(reshape(_arr(a), -1), reshape(_arr(b), -1)))


@implements(np.outer, getattr(np.linalg, "outer", None))
def _np_outer(a, b, out=None):
    _unsupported("outer", out=out)
    return multiply(reshape(_arr(a), (-1, 1)), reshape(_arr(b), (1, -1)))


@implements(getattr(np.linalg, "matmul", None))
def _np_matmul(x1, x2, /):
    return matmul(_arr(x1), _arr(x2))


# numpy.linalg (norm, solve, eigh, ...) is in chainrule.core.linalg.


@implements(getattr(np, "astype", None))
def _np_astype(x, dtype, /, *, copy=True, device=None):
    return astype(x, dtype)


# ufuncs without a primitive, composed from primitives (exactly: no loss of precision)
implements(np.square)(square)
implements(np.positive)(lambda x, /: multiply(x, 1))
implements(np.reciprocal)(lambda x, /: divide(1.0, x))
implements(np.fabs)(abs)
implements(np.deg2rad, np.radians)(lambda x, /: multiply(x, np.pi / 180))
implements(np.rad2deg, np.degrees)(lambda x, /: multiply(x, 180 / np.pi))


def _on_plain_values(func):
    """A numpy function whose result carries no derivative (a shape, positions, a truth value,
    an array made from a shape): computed on the plain values, at every level."""
    def on_values(*args, **kwargs):
        return func(*_plain_tree(args), **_plain_tree(kwargs))
    return on_values


for _f in (np.shape, np.ndim, np.size, np.result_type, np.iscomplexobj, np.isrealobj, np.iscomplex, np.isreal,
           np.zeros_like, np.ones_like, np.empty_like, np.argmax, np.argmin, np.argsort, np.argwhere, np.nonzero,
           np.flatnonzero, np.count_nonzero, np.isclose, np.allclose, np.array_equal, np.array_equiv, np.any,
           np.all, np.isneginf, np.isposinf, np.may_share_memory, np.shares_memory, np.searchsorted,
           np.digitize, np.lexsort, np.min_scalar_type, np.can_cast, np.isnan, np.isinf, np.isfinite,
           np.signbit):
    NUMPY_FUNCTIONS[_f] = _on_plain_values(_f)


# ================================================================ chainrule.numpy's functions
# numpy's signatures over the primitives; each is reached as chainrule.numpy.NAME and, through
# __array_function__, as numpy.NAME on chainrule values. Positions (sort orders, repeats, rolls)
# are computed on plain values; the values are gathered with getitem, whose rules are exact.

def _neg(axis, nd):
    return int(axis) % nd - nd if nd else int(axis)


def _flat_axis(a, axis):
    """(a, negative axis) for a function along one axis, numpy's axis=None meaning the flattened array."""
    if axis is None:
        return reshape(a, -1), -1
    return a, _neg(axis, len(P.shape_of(a)))


def _along(a, axis, index):
    """a with the integer array ``index`` taken along ``axis`` (the other axes whole)."""
    nd = len(P.shape_of(a))
    return P.getitem(a, index=(slice(None),) * (axis % nd) + (np.asarray(index, dtype=np.intp),))


def _dtype_first(a, dtype):
    return a if dtype is None else astype(a, dtype)


@implements(np.cumsum)
def _np_cumsum(a, axis=None, dtype=None, out=None):
    _unsupported("cumsum", out=out)
    a, axis = _flat_axis(_dtype_first(_arr(a), dtype), axis)
    return P.cumsum(a, axis=axis)


@implements(np.cumprod)
def _np_cumprod(a, axis=None, dtype=None, out=None):
    _unsupported("cumprod", out=out)
    a, axis = _flat_axis(_dtype_first(_arr(a), dtype), axis)
    return P.cumprod(a, axis=axis)


@implements(np.prod)
def _np_prod(a, axis=None, dtype=None, out=None, keepdims=False, initial=np._NoValue, where=np._NoValue):
    _unsupported("prod", out=out, initial=initial, where=where)
    a = _dtype_first(_arr(a), dtype)
    return P.prod(a, axis=_axis(axis), keepdims=keepdims)


def take_along_axis(arr, indices, axis):
    """numpy's take_along_axis: ``arr`` gathered at integer ``indices`` (plain) along ``axis``."""
    arr = _arr(arr)
    indices = np.asarray(concrete(indices))
    if axis is None:
        return P.getitem(reshape(arr, -1), index=indices)
    nd = len(P.shape_of(arr))
    axis = int(axis) % nd
    grid = list(np.ogrid[tuple(slice(n) for n in indices.shape)])
    grid[axis] = indices
    return P.getitem(arr, index=tuple(grid))


implements(np.take_along_axis)(take_along_axis)


@implements(np.sort)
def sort(a, axis=-1, kind=None, order=None, *, stable=None):
    """Sorted along ``axis``: the entries gathered in numpy's order (ties: each entry keeps its
    own derivative)."""
    if order is not None:
        raise TypeError("numpy.sort: order= (structured arrays) is not supported on chainrule values")
    a = _arr(a)
    if axis is None:
        a, axis = reshape(a, -1), -1
    return take_along_axis(a, np.argsort(concrete(a), axis=axis, kind=kind or "stable"), axis)


@implements(np.median)
def median(a, axis=None, out=None, overwrite_input=False, keepdims=False):
    """The middle entry of the sorted values (the mean of the two middle ones for an even count)."""
    _unsupported("median", out=out)
    a = _arr(a)
    shape = P.shape_of(a)
    if axis is None or (not isinstance(axis, (int, np.integer)) and len(axis) == len(shape)):
        flat, ax = reshape(a, -1), -1
    elif isinstance(axis, (int, np.integer)):
        flat, ax = a, _neg(axis, len(shape))
    else:  # several axes: moved to the end and flattened into one
        axes = _norm_axis(axis, len(shape))
        keep = [i for i in range(len(shape)) if i not in axes]
        flat = reshape(transpose(a, keep + list(axes)), [shape[i] for i in keep] + [-1])
        ax = -1
    n = P.shape_of(flat)[ax]
    s = sort(flat, axis=ax)
    mid = _along(s, ax, [(n - 1) // 2, n // 2])
    out = mean(mid, axis=ax)
    if keepdims:
        kept = [1 if axis is None or i in _norm_axis(axis, len(shape)) else d for i, d in enumerate(shape)]
        out = reshape(out, kept)
    return out


@implements(np.einsum)
def einsum(*operands, out=None, optimize=False, dtype=None, order="K", casting="safe"):
    """numpy's einsum with subscripts (implicit output and '...' written out before the primitive)."""
    _unsupported("einsum", out=out)
    if not isinstance(operands[0], str):
        raise TypeError("einsum: only the subscripts form einsum('ij,jk->ik', a, b) is supported on chainrule values")
    subscripts, ops = operands[0].replace(" ", ""), [_arr(o) for o in operands[1:]]
    if dtype is not None:
        ops = [astype(o, dtype) for o in ops]
    ins, arrow, out_s = subscripts.partition("->")
    ins = ins.split(",")
    if len(ins) != len(ops):
        raise ShapeError(f"einsum: {len(ins)} operand subscripts for {len(ops)} operands")
    if "..." in subscripts:
        free = [c for c in "ZYXWVUTSRQPONMLKJIHGFEDCBA" if c not in subscripts]
        n = builtins.max(len(P.shape_of(o)) - (len(s) - 3) for s, o in zip(ins, ops) if "..." in s)
        ell = "".join(free[:n][::-1])
        ins = [s.replace("...", ell[n - (len(P.shape_of(o)) - len(s) + 3):]) if "..." in s else s
               for s, o in zip(ins, ops)]
        out_s = out_s.replace("...", ell) if arrow else out_s
    else:
        ell = ""
    if not arrow:  # numpy's implicit output: the letters seen once, in alphabetical order
        letters = "".join(ins)
        out_s = ell + "".join(sorted(c for c in set(letters) if letters.count(c) == 1 and c not in ell))
    return P.einsum(*ops, subscripts=",".join(ins) + "->" + out_s)


@implements(np.kron)
def kron(a, b):
    """Kronecker product: each entry of a times the whole of b, as blocks."""
    a, b = _arr(a), _arr(b)
    sa, sb = P.shape_of(a), P.shape_of(b)
    nd = builtins.max(len(sa), len(sb))
    sa, sb = (1,) * (nd - len(sa)) + sa, (1,) * (nd - len(sb)) + sb
    a = reshape(a, [d for n in sa for d in (n, 1)])
    b = reshape(b, [d for n in sb for d in (1, n)])
    return reshape(multiply(a, b), [m * n for m, n in zip(sa, sb)])


@implements(np.cross)
def cross(a, b, axisa=-1, axisb=-1, axisc=-1, axis=None):
    """Cross product of 3-vectors along the given axes."""
    a, b = _arr(a), _arr(b)
    if axis is not None:
        axisa = axisb = axisc = axis
    a, b = _np_moveaxis(a, axisa, -1), _np_moveaxis(b, axisb, -1)
    if P.shape_of(a)[-1] != 3 or P.shape_of(b)[-1] != 3:
        raise ShapeError(f"numpy.cross: on chainrule values both vectors need 3 entries, got shapes "
                         f"{P.shape_of(a)} and {P.shape_of(b)}")
    x = [P.getitem(a, index=(Ellipsis, i)) for i in range(3)]
    y = [P.getitem(b, index=(Ellipsis, i)) for i in range(3)]
    c = stack([x[1] * y[2] - x[2] * y[1], x[2] * y[0] - x[0] * y[2], x[0] * y[1] - x[1] * y[0]], -1)
    return _np_moveaxis(c, -1, axisc)


def array(object, dtype=None, *, copy=True, order="K", subok=False, ndmin=0, like=None):
    """numpy's array, which also builds one array from chainrule values (``array([x, 2 * x])``
    is stacked, so it stays differentiable)."""
    a = stack_sequence(object)
    if dtype is not None:
        a = astype(a, dtype)
    nd = len(P.shape_of(a))
    return reshape(a, (1,) * (ndmin - nd) + P.shape_of(a)) if ndmin > nd else a


def _split_at(ary, cuts, axis):
    n = P.shape_of(ary)[axis]
    bounds = [0, *[builtins.min(builtins.max(int(c), 0), n) for c in cuts], n]
    pre = (slice(None),) * (axis % len(P.shape_of(ary)))
    return [P.getitem(ary, index=pre + (slice(lo, builtins.max(lo, hi)),)) for lo, hi in zip(bounds, bounds[1:])]


@implements(np.array_split)
def array_split(ary, indices_or_sections, axis=0):
    ary = _arr(ary)
    if isinstance(indices_or_sections, (int, np.integer)):
        n, k = P.shape_of(ary)[axis], int(indices_or_sections)
        size, extra = divmod(n, k)
        cuts = np.cumsum([size + 1] * extra + [size] * (k - extra))[:-1]
    else:
        cuts = indices_or_sections
    return _split_at(ary, cuts, axis)


@implements(np.split)
def split(ary, indices_or_sections, axis=0):
    ary = _arr(ary)
    if isinstance(indices_or_sections, (int, np.integer)) and P.shape_of(ary)[axis] % indices_or_sections:
        raise ValueError("array split does not result in an equal division")
    return array_split(ary, indices_or_sections, axis)


implements(np.hsplit)(lambda ary, indices_or_sections: split(
    ary, indices_or_sections, 1 if len(P.shape_of(_arr(ary))) > 1 else 0))
implements(np.vsplit)(lambda ary, indices_or_sections: split(ary, indices_or_sections, 0))
implements(np.dsplit)(lambda ary, indices_or_sections: split(ary, indices_or_sections, 2))


@implements(np.append)
def append(arr, values, axis=None):
    arr, values = _arr(arr), _arr(values)
    if axis is None:
        return concatenate([reshape(arr, -1), reshape(values, -1)], 0)
    return concatenate([arr, values], axis)


@implements(np.column_stack)
def column_stack(tup):
    return _np_concatenate([reshape(a, (-1, 1)) if len(P.shape_of(a)) < 2 else a for a in map(_arr, tup)], 1)


@implements(np.dstack)
def dstack(tup):
    arrays = _at_least(3)(*tup)
    return _np_concatenate(list(arrays) if len(tup) > 1 else [arrays], 2)


@implements(np.repeat)
def repeat(a, repeats, axis=None):
    a, axis = _flat_axis(_arr(a), axis)
    n = P.shape_of(a)[axis]
    return _along(a, axis, np.repeat(np.arange(n), concrete(repeats)))


@implements(np.tile)
def tile(A, reps):
    A = _arr(A)
    reps = (reps,) if isinstance(reps, (int, np.integer)) else tuple(reps)
    shape = P.shape_of(A)
    nd = builtins.max(len(shape), len(reps))
    shape, reps = (1,) * (nd - len(shape)) + shape, (1,) * (nd - len(reps)) + reps
    A = reshape(A, shape)
    index = np.ix_(*[np.tile(np.arange(n), r) for n, r in zip(shape, reps)])
    return P.getitem(A, index=index) if nd else A


@implements(np.roll)
def roll(a, shift, axis=None):
    a = _arr(a)
    if axis is None:
        return reshape(roll(reshape(a, -1), shift, 0), P.shape_of(a))
    shifts = np.broadcast_to(shift, np.shape(axis)).ravel() if np.ndim(axis) else [shift]
    for ax, s in zip(np.atleast_1d(axis), shifts):
        n = P.shape_of(a)[ax]
        a = _along(a, ax, (np.arange(n) - int(s)) % n if n else np.arange(0))
    return a


@implements(np.rot90)
def rot90(m, k=1, axes=(0, 1)):
    m = _arr(m)
    k %= 4
    if k == 0:
        return m
    if k == 2:
        return _np_flip(_np_flip(m, axes[0]), axes[1])
    perm = list(range(len(P.shape_of(m))))
    perm[axes[0]], perm[axes[1]] = perm[axes[1]], perm[axes[0]]
    return transpose(_np_flip(m, axes[1]), perm) if k == 1 else _np_flip(transpose(m, perm), axes[1])


@implements(np.pad)
def pad(array, pad_width, mode="constant", **kwargs):
    """numpy's pad: 'constant' places the values inside a constant frame (scatter_add); the
    other modes take each padded position from an entry (numpy's own pad of the positions)."""
    x = _arr(array)
    shape = P.shape_of(x)
    widths = np.broadcast_to(np.asarray(pad_width, dtype=np.intp), (len(shape), 2))
    if mode == "constant":
        out_shape = tuple(int(n + lo + hi) for n, (lo, hi) in zip(shape, widths))
        index = tuple(slice(int(lo), int(lo + n)) for n, (lo, _) in zip(shape, widths))
        inner = P.scatter_add(x, index=index, shape=out_shape)
        frame = np.pad(np.zeros(shape, dtype=P.dtype_of(x)), pad_width, mode="constant", **kwargs)
        return add(inner, frame) if np.any(frame) else inner
    if callable(mode) or mode in ("linear_ramp", "maximum", "mean", "median", "minimum", "empty"):
        raise TypeError(f"numpy.pad: mode={mode!r} is not supported on chainrule values; 'constant', 'edge', "
                        "'reflect', 'symmetric' and 'wrap' are")
    for ax, (lo, hi) in enumerate(widths):
        x = _along(x, ax, np.pad(np.arange(shape[ax]), (int(lo), int(hi)), mode=mode, **kwargs))
    return x


@implements(np.diagonal)
def diagonal(a, offset=0, axis1=0, axis2=1):
    """The diagonal of axes axis1 and axis2, as numpy's last axis."""
    a = _arr(a)
    nd = len(P.shape_of(a))
    axis1, axis2 = int(axis1) % nd, int(axis2) % nd
    a = transpose(a, [i for i in range(nd) if i not in (axis1, axis2)] + [axis1, axis2])
    n1, n2 = P.shape_of(a)[-2:]
    i = np.arange(builtins.max(0, builtins.min(n1 + builtins.min(offset, 0), n2 - builtins.max(offset, 0))))
    rows, cols = (i, i + offset) if offset >= 0 else (i - offset, i)
    return P.getitem(a, index=(Ellipsis, rows, cols))


@implements(np.trace)
def _np_trace(a, offset=0, axis1=0, axis2=1, dtype=None, out=None):
    _unsupported("trace", out=out)
    return sum(_dtype_first(diagonal(a, offset, axis1, axis2), dtype), -1)


@implements(np.diag)
def diag(v, k=0):
    """The k-th diagonal of a matrix, or a matrix with v on its k-th diagonal."""
    v = _arr(v)
    shape = P.shape_of(v)
    if len(shape) == 2:
        return diagonal(v, k)
    if len(shape) != 1:
        raise ValueError("Input must be 1- or 2-d.")
    n = shape[0] + builtins.abs(k)
    i = np.arange(shape[0])
    return P.scatter_add(v, index=(i - builtins.min(k, 0), i + builtins.max(k, 0)), shape=(n, n))


def _triangle(m, k, lower):
    m = _arr(m)
    rows, cols = P.shape_of(m)[-2:]
    mask = np.tri(rows, cols, k, dtype=bool)
    return where(mask if lower else ~np.tri(rows, cols, k - 1, dtype=bool), m, np.zeros((), P.dtype_of(m)))


implements(np.tril)(lambda m, k=0: _triangle(m, k, True))
implements(np.triu)(lambda m, k=0: _triangle(m, k, False))
tril = NUMPY_FUNCTIONS[np.tril]
triu = NUMPY_FUNCTIONS[np.triu]


@implements(np.diff)
def diff(a, n=1, axis=-1, prepend=np._NoValue, append=np._NoValue):
    a = _arr(a)
    axis = _neg(axis, len(P.shape_of(a)))
    parts = [a]
    for side, extra in ((0, prepend), (1, append)):
        if extra is not np._NoValue:
            extra = _arr(extra)
            if len(P.shape_of(extra)) == 0:
                shape = list(P.shape_of(a))
                shape[axis] = 1
                extra = broadcast_to(extra, shape)
            parts.insert(0 if side == 0 else len(parts), extra)
    if len(parts) > 1:
        a = concatenate(parts, axis)
    pre = (slice(None),) * (axis % len(P.shape_of(a)))
    for _ in range(n):
        a = subtract(P.getitem(a, index=pre + (slice(1, None),)), P.getitem(a, index=pre + (slice(None, -1),)))
    return a


@implements(np.nan_to_num)
def nan_to_num(x, copy=True, nan=0.0, posinf=None, neginf=None):
    """NaN and infinities replaced by numbers (constants: derivative 0 there, 1 elsewhere)."""
    x = _arr(x)
    v = np.asarray(concrete(x))
    info = np.finfo(v.dtype) if v.dtype.kind == "f" else None
    if info is None:
        return x
    posinf = info.max if posinf is None else posinf
    neginf = info.min if neginf is None else neginf
    out = where(np.isnan(v), np.asarray(nan, v.dtype), x)
    out = where(np.isposinf(v), np.asarray(posinf, v.dtype), out)
    return where(np.isneginf(v), np.asarray(neginf, v.dtype), out)


@implements(np.round, getattr(np, "around", None), getattr(np, "round_", None))
def _np_round(a, decimals=0, out=None):
    """Rounded (half to even) to ``decimals``: piecewise constant, derivative 0."""
    _unsupported("round", out=out)
    a = _arr(a)
    if decimals == 0:
        return P.rint(a)
    scale = 10.0 ** decimals
    return divide(P.rint(multiply(a, scale)), scale) if decimals > 0 else multiply(P.rint(divide(a, 1 / scale)), 1 / scale)


implements(np.sinc)(lambda x: P.sinc(_arr(x)))
implements(np.floor_divide)(lambda x1, x2, /: P.floor(divide(_arr(x1), _arr(x2))))
implements(np.fix)(lambda x, out=None: P.trunc(_arr(x)))
implements(np.float_power)(lambda x1, x2, /: power(astype(_arr(x1), np.float64), astype(_arr(x2), np.float64)))


@implements(np.real, np.conj, np.conjugate)
def _real_identity(val, /, *args, **kwargs):
    """real(x) and conj(x) of a real value: x itself (complex chainrule values do not exist)."""
    if P.dtype_of(val).kind == "c":
        raise TypeError("numpy.real/conj: chainrule values are real")
    return val


clip = _np_clip
var, std, average = _np_var, _np_std, _np_average
prod, cumsum, cumprod = _np_prod, _np_cumsum, _np_cumprod


@implements(np.rollaxis)
def rollaxis(a, axis, start=0):
    a = _arr(a)
    nd = len(P.shape_of(a))
    axis, start = int(axis) % nd, int(start) % (nd + 1)
    return _np_moveaxis(a, axis, start - 1 if start > axis else start)


@implements(np.linspace)
def linspace(start, stop, num=50, endpoint=True, retstep=False, dtype=None, axis=0, *, device=None):
    """start + (stop - start) * ramp: differentiable in start and stop (the ramp is a constant)."""
    start, stop = _arr(start), _arr(stop)
    div = (num - 1) if endpoint else num
    ramp = np.arange(num, dtype=float) / div if div > 0 else np.zeros(num)
    if endpoint and num > 1:
        ramp[-1] = 1.0  # numpy ends exactly at stop
    nd = builtins.max(len(P.shape_of(start)), len(P.shape_of(stop)))
    ramp = ramp.reshape((num,) + (1,) * nd)
    delta = subtract(stop, start)
    out = add(multiply(ramp, delta), start)
    if endpoint and num > 1:  # numpy's last entry is stop itself
        out = concatenate([P.getitem(out, index=slice(None, -1)), reshape(broadcast_to(stop, P.shape_of(out)[1:]), (1,) + P.shape_of(out)[1:])], 0)
    if axis != 0:
        out = _np_moveaxis(out, 0, axis)
    if dtype is not None:
        out = astype(out, dtype)
    return (out, divide(delta, div) if div > 0 else np.nan) if retstep else out


@implements(np.gradient)
def gradient(f, *varargs, axis=None, edge_order=1):
    """numpy's gradient for unit or scalar spacing: central differences inside, one-sided first-order
    differences at the edges (edge_order=1)."""
    f = _arr(f)
    nd = len(P.shape_of(f))
    axes = tuple(range(nd)) if axis is None else _norm_axis(axis, nd)
    if edge_order != 1 or len(varargs) > 1 or (varargs and np.ndim(varargs[0])):
        raise TypeError("numpy.gradient: on chainrule values only one scalar spacing and edge_order=1 are supported")
    h = float(varargs[0]) if varargs else 1.0
    out = []
    for ax in axes:
        pre = (slice(None),) * ax
        at = lambda s: P.getitem(f, index=pre + (s,))  # noqa: E731
        inner = divide(subtract(at(slice(2, None)), at(slice(None, -2))), 2 * h)
        first = divide(subtract(at(slice(1, 2)), at(slice(0, 1))), h)
        last = divide(subtract(at(slice(-1, None)), at(slice(-2, -1))), h)
        out.append(concatenate([first, inner, last], ax))
    return out[0] if len(out) == 1 else tuple(out)


def full(shape, fill_value, dtype=None, order="C", *, device=None, like=None):
    """numpy's full, differentiable in fill_value (broadcast to shape)."""
    fill = _arr(fill_value)
    return broadcast_to(fill if dtype is None else astype(fill, dtype), (shape,) if isinstance(shape, (int, np.integer)) else shape)
