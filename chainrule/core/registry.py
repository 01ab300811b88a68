"""The registry of primitives and the dispatcher that every mode plugs into.

A primitive is declared once, with everything each mode needs: ``impl`` evaluates it on arrays,
``vjps[i](g, ans, *args, **params)`` is its reverse rule for argument ``i`` (the cotangent of
that argument given the output cotangent ``g``), ``jvps[i](t, ans, *args, **params)`` its
forward rule (the output tangent contributed by the tangent ``t`` of argument ``i``), ``sym`` its
symbolic form and ``latex`` / ``display`` how it is shown; ``operator`` and ``scalar`` are the
same function on numbers (Python's operator, math's function), which cost far less than a
ufunc. Rules are written with chainrule's own operations, so they are differentiable themselves
and work on every kind of value.

Values that a mode traces (Tensor for reverse mode, Dual for forward mode, symbolic values) are
*boxes*. Calling a primitive's operation on plain arrays goes straight to ``impl``; when any
argument is a box, the box with the highest *level* (the innermost transformation) handles it,
which is what keeps nested derivatives free of perturbation confusion.
"""
from __future__ import annotations

import itertools
from contextvars import ContextVar
from functools import partial

import numpy as np

from chainrule.core.errors import ChainruleError, ConcretizationError, ShapeError

REGISTRY: dict[str, "Primitive"] = {}


# ---------------------------------------------------------------- mode state
# Grad mode and anomaly mode belong to the code that switches them: each thread and each asyncio
# task has its own (a ContextVar: a new thread starts with the defaults, a task starts with a copy
# of its creator's values), so a `no_grad` block or a backward pass in one thread never stops
# another thread's recording. The hot path calls the bound `get` methods below: one C call each.
# timeit, Python 3.11: the two reads of a recorded operation took 25 ns as these calls against
# 57 ns as attributes of the shared object they replace (loop overhead subtracted).
_GRAD_ENABLED = ContextVar("chainrule.grad_enabled", default=True)
_ANOMALY = ContextVar("chainrule.anomaly", default=False)
grad_enabled = _GRAD_ENABLED.get  # () -> bool: are operations on Tensors recorded here?
anomaly_enabled = _ANOMALY.get  # () -> bool: is every value checked for NaN and inf here?


class State:
    """The mode switches as attributes, for code that reads or sets them by name. They are views
    of the per-thread, per-task values above (``STATE.grad_enabled = False`` affects only the
    caller's thread or task); the hot path calls ``grad_enabled()`` / ``anomaly_enabled()``."""

    __slots__ = ()
    grad_enabled = property(lambda self: _GRAD_ENABLED.get(), lambda self, v: _GRAD_ENABLED.set(bool(v)))
    anomaly = property(lambda self: _ANOMALY.get(), lambda self, v: _ANOMALY.set(bool(v)))


STATE = State()

# Levels only need to be unique and to grow: the innermost transformation of one computation is
# the one started last, in the same thread, so it gets the higher number whatever other threads
# draw in between. One process-wide counter is therefore right for every thread, and next() on
# itertools.count is a single C call, atomic under the GIL (no two threads get the same level).
_levels = itertools.count(1)


def new_level() -> int:
    """A fresh level for one transformation (grad, jvp, ...); eager tensors live at level 0."""
    return next(_levels)


class Box:
    """A value traced by some mode. Subclasses implement ``_bind(prim, args, params)``; they may
    override ``_bind_unary`` with a faster path for one argument."""

    __slots__ = ()
    _level = 0

    def _bind(self, prim, args, params):  # pragma: no cover - abstract
        raise NotImplementedError

    def _bind_unary(self, prim, params):
        return self._bind(prim, (self,), params)


def bind(prim: "Primitive", args, params):
    """Apply ``prim`` to arguments of which at least one is a box: the innermost box handles it."""
    top = None
    for a in args:
        if isinstance(a, Box):
            if top is None or a._level > top._level:
                top = a
        elif type(a) is list or type(a) is tuple:
            # A sequence among the arguments (cr.concatenate([x, [x[0], 1.0]])): one holding
            # values that carry a derivative is stacked first, so that they are inputs of this
            # operation; the box's _bind would take it for a constant and numpy would read its
            # values as plain numbers, dropping their derivative.
            args = tuple(stack_sequence(v) for v in args)
            top = _top_box(args)
            break
    return top._bind(prim, args, params)


class PerArg:
    """Rules of a variadic primitive (concatenate, stack): ``rule(i, g, ans, *args)`` for any i,
    or one rule shared by the arguments of a fixed-arity primitive (``arity``, as matmul)."""

    __slots__ = ("rule", "arity", "_rules")

    def __init__(self, rule, arity=None):
        self.rule = rule
        self.arity = arity
        # a fixed arity gets its per-argument rules made once (reverse mode looks them up per edge)
        self._rules = tuple(partial(rule, i) for i in range(arity)) if arity else ()

    def __getitem__(self, i):
        if i < len(self._rules):
            return self._rules[i]
        return partial(self.rule, i)

    def rules(self, n):
        """The rules of the arguments of a call with ``n`` of them."""
        return self._rules or tuple(partial(self.rule, i) for i in range(n))


class Primitive:
    """One primitive operation and all its rules; see the module docstring."""

    __slots__ = ("name", "impl", "vjps", "jvps", "sym", "latex", "display", "elementwise",
                 "differentiable", "analytic", "doc", "operator", "scalar", "op", "broadcasts")

    def __init__(self, name, impl, vjps=(), jvps=(), *, sym=None, latex=None, display=None,
                 elementwise=False, differentiable=True, analytic=True, doc="", operator=None,
                 scalar=None):
        self.name = name
        self.impl = impl
        # The Python operator (operator.mul, ...) that computes the same as impl on numpy values:
        # on numpy scalars it is ten times cheaper than calling the ufunc (scalar code, the
        # lecture's examples and every rule applied to a scalar loss's cotangent).
        self.operator = operator
        # The same function on a Python float (math.exp, ...): a tenth of the ufunc's cost on a
        # number. Where it refuses (math.log(0), math.exp(1000)) impl gives numpy's inf or nan.
        self.scalar = scalar or (operator if _arity(vjps) == 1 else None)
        self.vjps = vjps
        self.jvps = jvps
        self.sym = sym
        self.latex = latex
        self.display = display or name
        self.elementwise = elementwise  # broadcasting: reverse mode sums cotangents back
        # Only an elementwise primitive of several arguments can broadcast one of them: reverse
        # mode checks the cotangents' shapes for these alone.
        self.broadcasts = elementwise and _arity(vjps) != 1
        self.differentiable = differentiable  # False: output carries no derivative (comparisons)
        self.analytic = analytic  # False: complex-step differences are wrong here (abs, max, ...)
        self.doc = doc
        self.op = _make_op(self)

    def __repr__(self):
        return f"<primitive {self.name}>"


# Types on which impl and the Python operator agree: numpy arrays and scalars (whose operators
# are the ufuncs, or numpy's scalar math), with Python numbers as the other operand. Two Python
# numbers, lists and array subclasses go through impl (1.0 / 0.0 must give inf, not an error).
_NUMPY_TYPES = frozenset([np.ndarray, *np.sctypeDict.values()])
_PYTHON_NUMBERS = frozenset([int, float, complex, bool])
_NUMBER_TYPES = _NUMPY_TYPES | _PYTHON_NUMBERS
# What Python's float arithmetic and math raise where numpy returns inf or nan (1.0 / 0.0,
# math.exp(1000), math.log(-1)): such calls go to impl instead.
_FLOAT_ERRORS = (ArithmeticError, ValueError)


def _arity(vjps):
    """The number of arguments a primitive takes (None: variadic), from its reverse rules."""
    return vjps.arity if isinstance(vjps, PerArg) else len(vjps) if hasattr(vjps, "__len__") else None


def general_op(prim: Primitive):
    """The operation of ``prim`` for any number of arguments and keyword parameters: a box among
    the arguments gets the work, plain values go to the impl (variadic primitives, and a user's
    primitive whose parameters the one- and two-argument fast paths would not pass on)."""
    impl = prim.impl

    def op(*args, **params):
        for a in args:
            if isinstance(a, Box):
                return bind(prim, args, params)
        try:
            return impl(*args, **params)
        except (ValueError, IndexError, TypeError) as err:
            return _failed(prim, args, params, err)

    op.__name__ = op.__qualname__ = prim.name
    op.__doc__ = prim.doc
    op.primitive = prim
    return op


def _make_op(prim: Primitive):
    # Plain arrays go straight to numpy: one check per argument, then the impl. Unary and binary
    # operations get their own wrappers because *args/**params packing is most of the overhead,
    # and they hand a box its work directly (the one box, or the higher level of two).
    impl = prim.impl
    fast = prim.operator
    scalar = prim.scalar

    def unary(x, **params):
        if isinstance(x, Box):
            return x._bind_unary(prim, params)
        tx = type(x)
        if tx is float and scalar is not None and not params:
            try:
                return scalar(x)
            except _FLOAT_ERRORS:
                pass
        try:
            if tx in _NUMPY_TYPES and fast is not None:
                return fast(x)
            return impl(x, **params) if params else impl(x)
        except (ValueError, IndexError, TypeError) as err:
            return _failed(prim, (x,), params, err)

    def binary(x, y):
        if isinstance(x, Box):
            if isinstance(y, Box) and y._level > x._level:
                return y._bind(prim, (x, y), _NO_PARAMS)
            return x._bind(prim, (x, y), _NO_PARAMS)
        if isinstance(y, Box):
            return y._bind(prim, (x, y), _NO_PARAMS)
        try:
            return impl(x, y)
        except (ValueError, IndexError, TypeError) as err:
            return _failed(prim, (x, y), _NO_PARAMS, err)

    def binary_fast(x, y):
        tx = type(x)
        ty = type(y)
        if (tx is float and ty in _PYTHON_NUMBERS) or (ty is float and tx in _PYTHON_NUMBERS):
            try:  # Python's float arithmetic: numpy's numbers at a third of the cost
                return fast(x, y)
            except _FLOAT_ERRORS:  # 1.0 / 0.0: numpy's inf
                return impl(x, y)
        if (tx in _NUMPY_TYPES and ty in _NUMBER_TYPES) or (ty in _NUMPY_TYPES and tx in _NUMBER_TYPES):
            try:
                return fast(x, y)
            except (ValueError, IndexError, TypeError) as err:
                raise shape_error(prim, (x, y), {}, err) from None
        return binary(x, y)

    arity = _arity(prim.vjps)
    if arity == 1:
        fn = unary
    elif arity == 2:
        fn = binary_fast if fast is not None else binary
    else:
        return general_op(prim)
    fn.__name__ = fn.__qualname__ = prim.name
    fn.__doc__ = prim.doc
    fn.primitive = prim
    return fn


_NO_PARAMS: dict = {}


def stack_sequence(x):
    """A list or tuple (nested: rows) holding values that carry a derivative, as one value made
    by the stack primitive, so that ``cr.sum([x, 3 * x])`` differentiates as numpy would compute
    it; anything else as it is."""
    if type(x) is not list and type(x) is not tuple:
        return x
    items = [stack_sequence(v) for v in x]
    if any(isinstance(v, Box) for v in items):
        return REGISTRY["stack"].op(*items, axis=0)
    return x


def _failed(prim, args, params, err):
    """The error path of a primitive's operation on arguments with no box among them. numpy
    refuses to convert a sequence holding values that carry a derivative (their ``__array__``
    raises ConcretizationError): such a sequence is stacked and the primitive applied again; a
    traced value among the parameters gets the work. Out of the hot path, since only a failed
    call gets here. Anything else is a shape error."""
    if isinstance(err, ConcretizationError):
        if any(type(a) is list or type(a) is tuple for a in args):
            return prim.op(*[stack_sequence(a) for a in args], **params)
        # A parameter computed by cr.compile's trace (labels in an index) with no box among the
        # arguments (the backward's scatter of a constant cotangent): that trace records it.
        top = _top_box(tuple(params.values()))
        if top is not None:
            return top._bind(prim, args, params)
    raise shape_error(prim, args, params, err) from None


def _top_box(x, top=None):
    """The box of the highest level inside ``x`` (nested tuples, lists and slices), or ``top``."""
    if isinstance(x, Box):
        return x if top is None or x._level > top._level else top
    if type(x) is tuple or type(x) is list:
        for v in x:
            top = _top_box(v, top)
    elif type(x) is slice:
        top = _top_box((x.start, x.stop, x.step), top)
    return top


def shape_error(prim, args, params, err):
    if isinstance(err, ChainruleError):
        return err  # already says what was wrong (a refused conversion, ...)
    shapes = [np.shape(a) if hasattr(a, "shape") or isinstance(a, (list, tuple)) else type(a).__name__
              for a in args]
    if prim.name == "matmul" and len(shapes) == 2 and all(isinstance(s, tuple) for s in shapes):
        a, b = shapes
        inner = (a[-1] if a else None, (b[-2] if len(b) > 1 else b[0]) if b else None)
        msg = (f"matmul: shapes {a} and {b} do not fit: the last axis of the left operand ({inner[0]}) "
               f"must equal the {'first' if len(b) == 1 else 'second-to-last'} axis of the right one ({inner[1]})")
    else:
        shown = " and ".join(str(s) for s in shapes)
        extra = "".join(f", {k}={v!r}" for k, v in params.items() if k != "index")
        msg = f"{prim.name}: cannot apply to shape{'s' if len(shapes) > 1 else ''} {shown}{extra}: {err}"
    return ShapeError(msg)


def defprim(name, impl, vjps=(), jvps=(), **kw):
    """Declare a primitive, register it and return its operation (the function users call)."""
    if name in REGISTRY:
        raise ValueError(f"primitive {name!r} is already registered")
    prim = Primitive(name, impl, vjps, jvps, **kw)
    REGISTRY[name] = prim
    return prim.op
