"""Compiled mode: trace a function once into a flat program of primitive calls, replay it as
straight-line Python.

One more interpreter of the registry (as reverse, forward and symbolic mode are). A
:class:`Tracer` is a box at the *outermost* level of a computation (its level is drawn before any
transformation inside the function draws its own), so every primitive applied while the function
runs, its own and those that ``grad``, ``jvp`` or ``hessian`` apply to compute derivatives (their
rules are registry operations), reaches the tracer last and is recorded as one equation
``out = primitive[params](inputs)`` of a :class:`Program` (JAX's jaxpr is the model). Passes
rewrite the program (dead code, common subexpressions, constants, no-op reshapes); the generator
writes Python source from it, one line per equation, each a direct call of the primitive's
``impl`` (bound as a local name: no boxes, no dispatch, no lookups at run time)::

    >>> import numpy as np, chainrule as cr
    >>> f = cr.compile(cr.value_and_grad(lambda x: cr.sum(cr.tanh(x))))
    >>> v, g = f(np.zeros(3))
    >>> print(f.source(np.zeros(3)))
    def value_and_grad__lambda(x):
        v1 = tanh(x)
        v2 = sum(v1)
        g4 = v1 * v1
        g5 = c1 - g4
        return (v2, g5)
    <BLANKLINE>

Semantics, as with JAX's ``jit``: the function runs once per *signature* (the structure of the
arguments, the shapes and dtypes of their arrays, and the values of everything that is not a float
number or array: ints, strings, ``static_argnums``); Python side effects (printing, appending to a
list) happen only then. Arrays captured from the enclosing scope are constants of the program,
copied when it is traced. A Python decision on a traced value (``if x > 0``, ``float(x)``) or an
in-place change of one raises :class:`~chainrule.core.errors.ConcretizationError` naming the line;
make the argument static (``static_argnums=``) or use ``cr.where``.

On 0-d float64 values the program runs on Python floats with ``math`` (as the tape does), falling
back to the array program where Python refuses (``1.0 / 0.0``, ``math.log(0)``). The array module
is a parameter of the generated program (``backend=``, numpy today).

Memory, with numpy (``inplace=True``, the default): a temporary of 16 KiB or more is written
with ``out=`` into an array the compiled program keeps between calls (a pool of such sets, one
per call running at once, so threads never share one), an elementwise result into the array of an
input read for the last time (the SGD update ``p - lr * g`` over the dead gradient ``g``, a bias
into the product it is added to). Results are always new arrays (a kept array returned would
change under the caller on the next call) and arguments are never written. The ``fuse`` pass
computes ``logsumexp`` and the softmax its backward needs from one exp (softmax cross-entropy)
and applies a number multiplying a product (the learning rate of ``W - lr * (X.T @ g)``) to the
product's smaller operand.
"""
from __future__ import annotations

import functools
import itertools
import keyword
import math
import sys
from collections import OrderedDict, namedtuple

import numpy as np

from chainrule.core.errors import ConcretizationError
from chainrule.core.ops import ArrayOperators
from chainrule.core.registry import _FLOAT_ERRORS, REGISTRY, Box, new_level, shape_error
from chainrule.core.tensor import Tensor, user_frame
from chainrule.modes.pytree import LEAF, flatten, unflatten

__all__ = ["compile", "Compiled", "Program", "trace", "PASSES"]

_F64 = np.float64
_F64_DTYPE = np.dtype(np.float64)


# ---------------------------------------------------------------- the program
class Var:
    """A value of a program: its name in the source and its shape and dtype (its abstract value)."""

    __slots__ = ("name", "shape", "dtype", "py")

    def __init__(self, name, shape, dtype, py=False):
        self.name, self.shape, self.dtype = name, shape, dtype
        self.py = py  # an input given as a Python float: the array program makes it a numpy float64

    def __repr__(self):
        return self.name

    @property
    def scalar(self):
        """A 0-d float64 value: the float program computes it on a Python float."""
        return self.shape == () and self.dtype == _F64_DTYPE


class Lit:
    """A constant of a program (a number, an array the function captured or made)."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value

    def __repr__(self):
        return _short(self.value)


class Eqn:
    """``out = prim[params](*ins)``: ins are Vars and Lits; params may hold Vars (an index array
    computed in the program)."""

    __slots__ = ("prim", "ins", "params", "out")

    def __init__(self, prim, ins, params, out):
        self.prim, self.ins, self.params, self.out = prim, ins, params, out

    def __repr__(self):
        params = "".join(f"{', ' if i else ''}{k}={_short(v)}" for i, (k, v) in enumerate(self.params.items()))
        params = f"[{params}]" if params else ""
        args = ", ".join(map(repr, self.ins))
        return f"{self.out.name}: {_aval(self.out)} = {self.prim.name}{params}({args})"

    def reads(self):
        """Every Var this equation reads, its parameters' included."""
        for v in self.ins:
            if type(v) is Var:
                yield v
        if self.params:
            yield from _vars_in(tuple(self.params.values()))


class FusedEqn(Eqn):
    """``out, out2 = prim[params](*ins)``: two equations the ``fuse`` pass computes in one place
    (``logsumexp`` and the ``softmax`` its backward builds)."""

    __slots__ = ("out2",)

    def __init__(self, prim, ins, params, out, out2):
        super().__init__(prim, ins, params, out)
        self.out2 = out2

    def __repr__(self):
        head, rest = super().__repr__().split(" = ", 1)
        return f"{head}, {self.out2.name}: {_aval(self.out2)} = {rest}"


class Program:
    """A flat program: ``invars`` (one per traced leaf of the arguments), ``eqns`` in the order
    they were traced, ``outs`` (Vars and Lits, one per leaf of the result) and the result's
    structure ``out_def``. ``str(program)`` prints one equation per line."""

    def __init__(self, name, invars, eqns, outs, out_def):
        self.name, self.invars, self.eqns, self.outs, self.out_def = name, invars, eqns, outs, out_def

    def __str__(self):
        head = ", ".join(f"{v.name}: {_aval(v)}" for v in self.invars)
        body = "".join(f"  {e!r}\n" for e in self.eqns)
        return f"{self.name}({head}):\n{body}  return {', '.join(map(repr, self.outs))}"

    def __len__(self):
        return len(self.eqns)

    def counts(self):
        """Equations per primitive name."""
        out = {}
        for e in self.eqns:
            out[e.prim.name] = out.get(e.prim.name, 0) + 1
        return out


def _aval(v):
    dt = {"float64": "f64", "float32": "f32", "int64": "i64", "bool": "bool"}.get(str(v.dtype), str(v.dtype))
    return f"{dt}[{','.join(map(str, v.shape))}]"


def _short(v):
    if isinstance(v, np.ndarray) and v.size > 4:
        return f"array<{v.dtype}{list(v.shape)}>"
    if isinstance(v, tuple):
        return "(" + ", ".join(_short(x) for x in v) + ("," if len(v) == 1 else "") + ")"
    return repr(v)


def _vars_in(x):
    if type(x) is Var:
        yield x
    elif type(x) is tuple or type(x) is list:
        for v in x:
            yield from _vars_in(v)
    elif type(x) is slice:
        yield from _vars_in((x.start, x.stop, x.step))


def _sub(x, env):
    """``x`` (a parameter) with every Var replaced through ``env``."""
    if type(x) is Var:
        return env.get(x, x)
    if type(x) is tuple or type(x) is list:
        return type(x)(_sub(v, env) for v in x)
    if type(x) is slice:
        return slice(_sub(x.start, env), _sub(x.stop, env), _sub(x.step, env))
    return x


# ---------------------------------------------------------------- tracing
class _Trace:
    """One tracing: the level of its tracers and the equations recorded so far."""

    def __init__(self):
        self.level = new_level()
        self.eqns = []
        self.count = itertools.count(1)
        self.used = set()  # the names of the arguments
        self.adjoints = {}  # cotangent Var -> the forward Var it is the adjoint of (name_adjoints)


class Tracer(Box, ArrayOperators):
    """A value of a function being compiled: the Var it will be in the program and, while
    tracing, its value at the example arguments (which gives shapes and dtypes to every rule)."""

    __slots__ = ("var", "val", "_level", "_trace")
    _opaque = True  # chainrule.core.ops.concrete stops here: the tracer *is* the plain value at this level

    def _bind(self, prim, args, params):
        trace = self._trace
        ins = []
        vals = []
        for a in args:
            if type(a) is Tracer:
                if a._trace is not trace:
                    raise ConcretizationError(f"{prim.name}: a value of another cr.compile trace; call compiled "
                                              "functions with plain arrays")
                ins.append(a.var)
                vals.append(a.val)
            elif isinstance(a, Box):
                a = _constant_box(a, prim)
                ins.append(Lit(a))
                vals.append(a)
            else:
                a = _constant(a)
                ins.append(Lit(a))
                vals.append(a)
        if params:
            params, pvals = _trace_params(params, trace)
        else:
            pvals = params
        try:
            val = prim.impl(*vals, **pvals)
        except (ValueError, IndexError, TypeError) as err:
            raise shape_error(prim, vals, pvals, err) from None
        return trace_value(trace, prim, ins, params, val)

    # -- the numpy surface ArrayOperators needs
    shape = property(lambda self: self.var.shape)
    dtype = property(lambda self: self.var.dtype)
    ndim = property(lambda self: len(self.var.shape))
    size = property(lambda self: int(np.prod(self.var.shape)))

    def __len__(self):
        if not self.var.shape:
            raise TypeError("len() of a 0-d value")
        return self.var.shape[0]

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def __repr__(self):
        return f"Tracer({self.var.name}: {_aval(self.var)})"

    def _conversion_error(self, what):
        """The error for ``float(x)``, ``if x > 0:``, ``np.asarray(x)``, ... on a traced value
        (called by chainrule.core.ops._conversion_error)."""
        return ConcretizationError(
            f"cr.compile: {what} of a traced value at {user_frame()}: a compiled function is traced once per "
            "signature, so its Python code cannot depend on the values of array or float arguments; use "
            "cr.where(cond, a, b) instead of `if`, keep values as arrays (no float()/item()), or make the argument "
            "static with cr.compile(f, static_argnums=(i,)) (one trace per value)")

    def _inplace(self, *_):
        raise ConcretizationError(
            f"cr.compile: in-place change of a traced value at {user_frame()}: the compiled program computes new "
            "values and never writes its arguments; write x = x + y (or cr.where for masked updates) and return "
            "the result")

    __setitem__ = __iadd__ = __isub__ = __imul__ = __itruediv__ = __ipow__ = __imatmul__ = _inplace


def _constant(a):
    """A constant as the program keeps it: writeable arrays copied now (constants are read when
    the function is traced, as in JAX)."""
    if type(a) is np.ndarray and a.flags.writeable:
        a = a.copy()
        a.flags.writeable = False
    return a


def _constant_box(a, prim):
    if isinstance(a, Tensor) and not a._level and not isinstance(a.data, Box):
        if a.requires_grad:
            raise ConcretizationError(
                f"cr.compile: {prim.name} at {user_frame()} uses a Tensor that requires grad from outside the "
                "compiled function (a model parameter captured by a closure?): its gradient would be lost; pass "
                "it as an argument (cr.nn functional_call) or detach it")
        return _constant(a.data)
    raise ConcretizationError(f"cr.compile: {prim.name} got a {type(a).__name__} from outside the compiled function; "
                              "pass it as an argument")


def _trace_params(params, trace):
    """``(params with Vars, params with values)``: an index computed from traced values becomes a
    value of the program."""
    out = {}
    vals = {}
    for k, v in params.items():
        out[k], vals[k] = _trace_param(v, trace)
    return out, vals


def _trace_param(v, trace):
    if type(v) is Tracer:
        if v._trace is not trace:
            raise ConcretizationError("cr.compile: a parameter traced by another cr.compile")
        return v.var, v.val
    if type(v) is tuple or type(v) is list:
        pairs = [_trace_param(x, trace) for x in v]
        return type(v)(p for p, _ in pairs), type(v)(x for _, x in pairs)
    if type(v) is slice:
        (a, av), (b, bv), (c, cv) = (_trace_param(x, trace) for x in (v.start, v.stop, v.step))
        return slice(a, b, c), slice(av, bv, cv)
    if isinstance(v, Box):
        raise ConcretizationError(f"cr.compile: a {type(v).__name__} used as a parameter (an index, an axis, a "
                                  f"shape) at {user_frame()}; compute it from plain values or static arguments")
    return _constant(v), v


def trace_value(trace, prim, ins, params, val):
    """Record ``val = prim[params](*ins)`` and return its tracer."""
    role = "g" if _in_backward(trace) else "v"
    var = Var(f"{role}{next(trace.count)}", np.shape(val), _dtype(val))
    trace.eqns.append(Eqn(prim, ins, params, var))
    return _tracer(trace, var, val)


def _dtype(val):
    dtype = getattr(val, "dtype", None)
    return np.dtype(dtype) if dtype is not None else np.result_type(val)


def _tracer(trace, var, val):
    t = object.__new__(Tracer)
    t.var, t.val, t._level, t._trace = var, val, trace.level, trace
    return t


_WALKS = None


def _in_backward(trace):
    """Whether the primitive being recorded is part of a reverse-mode walk (its value is then a
    cotangent, named g...). Read from the stack, at trace time only. On the way, the cotangent
    the walk's current rule reads is named as the adjoint of the value the rule belongs to
    (``g_v3``, see :func:`name_adjoints`), as the backward trace table names it."""
    global _WALKS
    if _WALKS is None:
        from chainrule.modes import reverse, tape

        # the frames whose locals hold (the cotangent, the value it is the adjoint of)
        _WALKS = {reverse._walk.__code__: ("g", "node"), tape.pull.__code__: ("g", "ans"),
                  reverse._walk_recording.__code__: None}
    f = sys._getframe(3)
    while f is not None:
        names = _WALKS.get(f.f_code, False)
        if names is not False:
            if names is not None:
                local = f.f_locals
                _name_adjoint(trace, local.get(names[0]), local.get(names[1]))
            return True
        f = f.f_back
    return False


def _name_adjoint(trace, g, value):
    """Note ``g`` (a cotangent the program computes) as the adjoint of ``value`` (a forward value
    of this trace, inside a Tensor of the walk's level): :func:`name_adjoints` names it."""
    while isinstance(g, Tensor):
        g = g.data
    while isinstance(value, Tensor):
        value = value.data
    if type(g) is Tracer and type(value) is Tracer and g._trace is trace and value._trace is trace:
        trace.adjoints.setdefault(g.var, value.var)


def name_adjoints(traced, prog):
    """Name the adjoint of a forward value ``v3`` of ``prog`` (an optimized ``traced``) ``g_v3``,
    as the backward trace table does, where it is that value's whole adjoint: the value is still
    in the program and common-subexpression elimination merged no copy of it into it (its
    adjoint would then be the sum of the copies' adjoints, which the program never forms)."""
    adjoints = getattr(traced, "adjoints", None)
    if not adjoints:
        return prog
    defined = {v for v in prog.invars} | {e.out for e in prog.eqns}
    names = {v.name for v in defined}

    def forward_readers(p):
        counts = {}
        for e in p.eqns:
            if e.out.name[:1] == "v":
                for v in e.reads():
                    counts[v] = counts.get(v, 0) + 1
        return counts

    before, after = forward_readers(traced), forward_readers(prog)
    for g, value in adjoints.items():
        name = f"g_{value.name}"
        if (g in defined and value in defined and g.name[:1] == "g" and g.name[1:].isdigit()
                and value.name[:1] != "g" and name not in names and after.get(value, 0) <= before.get(value, 0)):
            g.name = name
            names.add(name)
    return prog


def _leaf_kind(x):
    """How an argument's leaf enters the program: 'a' traced array, 'f' traced float, 's'
    static (its value is part of the signature)."""
    t = type(x)
    if t is np.ndarray or isinstance(x, np.generic) and x.dtype.kind in "fiucb":
        return "a"
    if t is float:
        return "f"
    return "s"


def trace(fn, args, kwargs=None, static_argnums=(), name=None):
    """The :class:`Program` of ``fn(*args, **kwargs)`` (arguments at ``static_argnums`` and the
    leaves that are not float numbers or arrays are constants of it)."""
    kwargs = kwargs or {}
    tr = _Trace()
    names = _arg_names(fn, len(args))
    invars = []
    name = _free_name(name or _fn_name(fn), tr.used)
    tr.used.update((name + "_arrays", "F64", "FLOAT_ERRORS"))
    targs = [a if i in static_argnums else _traced(tr, a, names[i], invars) for i, a in enumerate(args)]
    # in the order the signature reads them (Compiled._signature): a call's order may be any
    tkwargs = {key: _traced(tr, kwargs[key], key, invars) for key in sorted(kwargs)}
    out = fn(*targs, **tkwargs)
    leaves, out_def = flatten(out)
    outs = []
    for x in leaves:
        if type(x) is Tracer and x._trace is tr:
            outs.append(x.var)
        elif isinstance(x, Box):
            if isinstance(x, Tensor) and type(x.data) is Tracer:  # a Tensor of a transformation inside
                outs.append(x.data.var)
            else:
                raise ConcretizationError(f"cr.compile: the function returned a {type(x).__name__}; return arrays")
        else:
            outs.append(Lit(_constant(x)))  # an array of the function's own, read as it is now
    prog = Program(name, invars, tr.eqns, outs, out_def)
    prog.adjoints = tr.adjoints
    return prog


def _traced(tr, a, base, invars):
    """The argument ``a`` with each leaf that is an array or a float replaced by a tracer, a new
    input of the program (appended to ``invars``) named from ``base``; other leaves stay."""
    leaves, treedef = flatten(a)
    boxed = []
    for k, x in enumerate(leaves):
        if _leaf_kind(x) == "s":
            boxed.append(x)
            continue
        var = Var(_free_name(base if treedef is LEAF else _leaf_name(base, treedef, k), tr.used), np.shape(x),
                  _dtype(x), type(x) is float)
        invars.append(var)
        boxed.append(_tracer(tr, var, x))
    return boxed[0] if treedef is LEAF else unflatten(treedef, boxed)


def _leaf_name(base, treedef, k):
    """``params_W`` for the leaf at ``['W']`` of the argument ``params`` (``x_0`` at ``[0]``)."""
    from chainrule.modes.pytree import leaf_paths

    path = "".join(c if c.isalnum() else "_" for c in str(leaf_paths(treedef)[k]))
    path = "_".join(p for p in path.split("_") if p)
    return f"{base}_{path}" if path else f"{base}_{k}"


def _fn_name(fn):
    name = getattr(fn, "__name__", "f")
    name = "".join(c if c.isalnum() or c == "_" else "_" for c in name).strip("_") or "f"
    return name if name.isidentifier() and not keyword.iskeyword(name) else f"f_{name}"


def _arg_names(fn, n):
    import inspect

    names = []
    try:
        params = [p for p in inspect.signature(fn).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        names = [p.name for p in params]
    except (TypeError, ValueError):
        pass
    return [names[i] if i < len(names) else f"a{i}" for i in range(n)]


_RESERVED = ({"add_reduce", "logsumexp_softmax"} | set(REGISTRY)
             | set(dir(__builtins__) if isinstance(__builtins__, dict) else dir(__import__("builtins"))))


def _free_name(base, used):
    base = base.lstrip("_")  # _names are the generated code's own (buffers); "_x" would never be free
    base = base if base.isidentifier() and not keyword.iskeyword(base) else "a"
    name = base
    # v1, g2 and c3 are the program's own names; the primitives' names are their impls
    while (name in used or name in _RESERVED or name.startswith("_")
           or (name[:1] in "vgc" and name[1:].isdigit())):
        name = name + "_"
    used.add(name)
    return name


# ---------------------------------------------------------------- passes
def dce(prog):
    """Dead-code elimination: drop equations no output reads (primitives have no side effects)."""
    live = {v for v in prog.outs if type(v) is Var}
    kept = []
    for e in reversed(prog.eqns):
        if e.out in live or type(e) is FusedEqn and e.out2 in live:
            kept.append(e)
            live.update(e.reads())
    kept.reverse()
    return Program(prog.name, prog.invars, kept, prog.outs, prog.out_def)


def _key(x):
    """A hashable stand-in for an input or parameter (arrays by identity)."""
    t = type(x)
    if t is Var:
        return x
    if t is Lit:
        return _key(x.value)
    if t is tuple or t is list:
        return (t, tuple(_key(v) for v in x))
    if t is slice:
        return (slice, _key(x.start), _key(x.stop), _key(x.step))
    if t is np.ndarray:
        return ("array", id(x))
    if t in (float, np.float64, np.float32) and x != x:
        return (t, "nan", id(x))
    try:
        hash(x)
    except TypeError:
        return ("object", id(x))
    return (t, x)


def cse(prog):
    """Common-subexpression elimination: an equation that repeats an earlier one (same primitive,
    inputs and parameters) reuses its value."""
    seen = {}
    env = {}
    kept = []
    for e in prog.eqns:
        e = _rename(e, env)
        k = (e.prim, tuple(_key(v) for v in e.ins), tuple((n, _key(v)) for n, v in e.params.items()))
        first = seen.get(k)
        if first is not None:
            env[e.out] = first
        else:
            seen[k] = e.out
            kept.append(e)
    return Program(prog.name, prog.invars, kept, [_sub(v, env) for v in prog.outs], prog.out_def)


def _rename(e, env):
    if not env:
        return e
    ins = [env.get(v, v) if type(v) is Var else v for v in e.ins]
    params = {k: _sub(v, env) for k, v in e.params.items()} if e.params else e.params
    if type(e) is FusedEqn:
        return FusedEqn(e.prim, ins, params, e.out, e.out2)
    return Eqn(e.prim, ins, params, e.out)


def fold_constants(prog):
    """Constant folding: an equation whose inputs are all constants is computed now."""
    consts = {}
    kept = []
    for e in prog.eqns:
        e = _replace(e, consts)
        if all(type(v) is Lit for v in e.ins) and not any(True for _ in e.reads()):
            consts[e.out] = Lit(_constant(e.prim.impl(*(v.value for v in e.ins), **e.params)))
        else:
            kept.append(e)
    outs = [consts.get(v, v) if type(v) is Var else v for v in prog.outs]
    return Program(prog.name, prog.invars, kept, outs, prog.out_def)


def _replace(e, consts):
    if not consts:
        return e
    return Eqn(e.prim, [consts.get(v, v) if type(v) is Var else v for v in e.ins], e.params, e.out)


def _same(v, out):
    return type(v) is Var and v.shape == out.shape and v.dtype == out.dtype


def _is_number(lit, value):
    """Whether ``lit`` is a constant whose every entry is ``value`` (a seed of ones, ...)."""
    v = lit.value if type(lit) is Lit else None
    if type(v) in (int, float) or isinstance(v, np.generic):
        return v == value
    return isinstance(v, np.ndarray) and v.dtype.kind in "fiub" and v.size <= 1 << 16 and bool(np.all(v == value))


def _whole(index):
    """Whether ``index`` is made of slices with step 1 (and ``...``): on a result of its input's
    shape, the whole array."""
    parts = index if type(index) is tuple else (index,)
    return all(p is Ellipsis or type(p) is slice and p.step in (None, 1) and not any(_vars_in(p)) for p in parts)


def simplify(prog):
    """Remove no-ops: a reshape, broadcast_to, astype or transpose that gives its input's shape
    and dtype back (for transpose: of at most one axis; a reshape of a reshape is one reshape),
    a slice of the whole array, ``x * 1``, ``1 * x``, ``x / 1``, ``x + 0``, ``0 + x``, ``x - 0``,
    where the result has x's shape and dtype."""
    env = {}
    kept = []
    relu_of = {}  # z -> relu(z): the mask z > 0 is read from relu(z) > 0 (the same booleans, NaN too)
    reshaped = {}  # reshape(x) -> x: a reshape of a reshape is one reshape of x (none if x's shape)
    for e in prog.eqns:
        e = _rename(e, env)
        name = e.prim.name
        ins = e.ins
        alias = None
        if name == "reshape" and ins[0] in reshaped and set(e.params) == {"shape"}:
            e = Eqn(e.prim, [reshaped[ins[0]]], e.params, e.out)
            ins = e.ins
        if name == "reshape" and type(ins[0]) is Var and set(e.params) == {"shape"}:
            reshaped[e.out] = ins[0]
        if name == "relu" and not e.params and type(ins[0]) is Var:
            relu_of[ins[0]] = e.out
        elif name == "greater" and ins[0] in relu_of and _is_number(ins[1], 0) and type(ins[1].value) is int:
            e = Eqn(e.prim, [relu_of[ins[0]], ins[1]], e.params, e.out)
        if name in ("reshape", "broadcast_to", "astype") or (name == "transpose" and len(e.out.shape) <= 1):
            if _same(ins[0], e.out):
                alias = ins[0]
        elif name == "getitem" and _same(ins[0], e.out) and _whole(e.params.get("index")):
            alias = ins[0]  # x[0:n] of n rows: x
        elif name in ("multiply", "add") and len(ins) == 2:
            unit = 1 if name == "multiply" else 0
            if _is_number(ins[1], unit) and _same(ins[0], e.out):
                alias = ins[0]
            elif _is_number(ins[0], unit) and _same(ins[1], e.out):
                alias = ins[1]
        elif name in ("divide", "subtract") and len(ins) == 2:
            if _is_number(ins[1], 1 if name == "divide" else 0) and _same(ins[0], e.out):
                alias = ins[0]
        if alias is not None:
            env[e.out] = alias
        else:
            kept.append(e)
    return Program(prog.name, prog.invars, kept, [_sub(v, env) for v in prog.outs], prog.out_def)


class _FusedPrim:
    """The primitive of a :class:`FusedEqn`: a name (in the program and the source) and its numpy
    implementation returning both results."""

    __slots__ = ("name", "impl", "note")
    scalar = None

    def __init__(self, name, impl, note):
        self.name, self.impl, self.note = name, impl, note

    def __repr__(self):
        return f"<fused {self.name}>"


def _lse_softmax_impl(x, axis=None, keepdims=False):
    """``(logsumexp(x), softmax(x))`` from one exp: with m the max (0 where it is not finite, as
    logsumexp's impl), e = exp(x - m), s = sum(e): logsumexp = log(s) + m and softmax =
    exp(x - logsumexp) = e / s, computed in place in e."""
    if x.ndim == 2 and type(axis) is int and axis % 2 == 1 and x.shape[1] < 64:
        return _lse_softmax_rows(x, keepdims)
    m = np.maximum.reduce(x, axis=axis, keepdims=True)
    finite = np.isfinite(m)
    if not np.logical_and.reduce(finite, None):
        m = np.where(finite, m, 0)
    e = np.subtract(x, m)
    np.exp(e, out=e)
    s = np.add.reduce(e, axis=axis, keepdims=True)
    e /= s
    lse = np.log(s)
    lse += m
    if not keepdims:
        lse = np.squeeze(lse, axis=axis) if axis is not None else lse.reshape(())
    return lse, e


def _lse_softmax_rows(x, keepdims):
    """``_lse_softmax_impl`` over the rows of a batch of a few classes (the logits of a
    classifier): numpy reduces a short contiguous axis slowly (a loop per row), so the classes go
    down a transposed copy, every step is an operation on whole rows of the batch, and the
    softmax comes back as the transposed view."""
    e = x.T.copy()
    m = np.maximum.reduce(e, 0)
    finite = np.isfinite(m)
    if not np.logical_and.reduce(finite):
        m = np.where(finite, m, 0)
    np.subtract(e, m, out=e)
    np.exp(e, out=e)
    s = np.add.reduce(e, 0)
    e /= s
    lse = np.log(s)
    lse += m
    return (lse[:, None] if keepdims else lse), e.T


LSE_SOFTMAX = _FusedPrim("logsumexp_softmax", _lse_softmax_impl,
                         "fused: logsumexp and the softmax of its backward, exp(x - logsumexp), from one exp")


def _kept_shape(shape, axis):
    """``shape`` with the reduced axes (``axis`` as numpy takes it) kept as 1."""
    if axis is None:
        axes = set(range(len(shape)))
    else:
        axes = {a % len(shape) for a in (axis if isinstance(axis, (tuple, list)) else (axis,))}
    return tuple(1 if k in axes else d for k, d in enumerate(shape))


def fuse(prog):
    """Fusion of the softmax cross-entropy pattern: ``l = logsumexp(x)`` and the softmax its
    backward computes, ``exp(x - reshape(l))``, become one equation ``l, s =
    logsumexp_softmax(x)`` (one max, one exp, one sum; the softmax is e / sum e). The subtract
    and reshape go when nothing else reads them. Then two rewrites of products
    (:func:`_transpose_products`, :func:`_scale_products`): ``(A @ B).T`` as ``B.T @ A.T`` and
    ``s * (A @ B)`` as ``A @ (s * B)`` with B the smaller. (The other fusions, the ReLU mask read
    from the ReLU's output and the bias added into a product's array, are in ``simplify`` and in
    the generator's memory plan, :func:`_plan`.)"""
    defs = _defs(prog)
    readers = _readers(prog)
    fused = {}  # index of the logsumexp -> the softmax Var
    drop = set()
    for i, e in enumerate(prog.eqns):
        if e.prim.name != "exp" or e.params or type(e.ins[0]) is not Var or e.ins[0] not in defs:
            continue
        j = defs[e.ins[0]]
        sub = prog.eqns[j]
        if sub.prim.name != "subtract" or sub.params or len(sub.ins) != 2:
            continue
        x, r = sub.ins
        if type(x) is not Var or type(r) is not Var or r not in defs or x.dtype.kind != "f" or not x.shape:
            continue
        k = defs[r]
        red = prog.eqns[k]
        chain = [j]
        if red.prim.name == "reshape" and type(red.ins[0]) is Var and red.ins[0] in defs:
            chain.append(k)
            k = defs[red.ins[0]]
            red = prog.eqns[k]
        if (red.prim.name != "logsumexp" or red.ins[0] is not x or k in fused or set(red.params) - {"axis", "keepdims"}
                or sub.out.shape != x.shape or e.out.dtype != x.dtype or red.out.dtype != x.dtype
                or r.shape not in ((), _kept_shape(x.shape, red.params.get("axis")))):
            continue
        fused[k] = e.out
        drop.add(i)
        for c in chain:  # the subtract, then the reshape: dropped when the next link was their only reader
            if readers.get(prog.eqns[c].out, 0) != 1:
                break
            drop.add(c)
    if fused:
        eqns = [FusedEqn(LSE_SOFTMAX, e.ins, e.params, e.out, fused[i]) if i in fused else e
                for i, e in enumerate(prog.eqns) if i not in drop]
        prog = Program(prog.name, prog.invars, eqns, prog.outs, prog.out_def)
    return _scale_products(_transpose_products(prog))


def _fresh_names(prog):
    """New names v/g<k> after the program's own."""
    return itertools.count(1 + max((int(v.name[1:]) for e in prog.eqns for v in (e.out, getattr(e, "out2", e.out))
                                    if v.name[:1] in "vg" and v.name[1:].isdigit()), default=0))


def _is_transpose(e):
    return (e.prim.name == "transpose" and len(e.out.shape) == 2 and type(e.ins[0]) is Var
            and e.params.get("axes") in (None, (1, 0), [1, 0]))


def _defs(prog):
    """The index of the equation that computes each value (a fused equation's first value)."""
    return {e.out: i for i, e in enumerate(prog.eqns)}


def _readers(prog):
    """How many equations read each value; a result counts as two readers more (a rewrite that
    needs a value read once leaves results alone)."""
    readers = {}
    for e in prog.eqns:
        for v in e.reads():
            readers[v] = readers.get(v, 0) + 1
    for v in prog.outs:
        if type(v) is Var:
            readers[v] = readers.get(v, 0) + 2
    return readers


def _splice(prog, new, drop):
    """``prog`` with the equation at each index of ``new`` replaced by the equations listed there
    and those at the indices in ``drop`` left out; then dead code removed (the transposes and
    products a rewrite no longer reads)."""
    if not new:
        return prog
    eqns = []
    for i, e in enumerate(prog.eqns):
        if i in new:
            eqns.extend(new[i])
        elif i not in drop:
            eqns.append(e)
    return dce(Program(prog.name, prog.invars, eqns, prog.outs, prog.out_def))


def _transpose_products(prog):
    """``(A @ B).T`` (the product read only there) computed as ``B.T @ A.T``: BLAS reads the
    transposed operands as they are and the result comes in the transposed layout, so an update
    ``W - lr * (X.T @ g).T`` of a weight stored (out, in) (cr.nn's layout) runs on contiguous
    arrays rather than through a transposed view."""
    readers = _readers(prog)
    outs = {v for v in prog.outs if type(v) is Var}
    defs = _defs(prog)
    names = None
    new = {}  # index of the transpose -> the equations that replace it
    drop = set()
    for i, e in enumerate(prog.eqns):
        # A result keeps the layout eager mode gives it: a gradient returned for a parameter
        # stored as a transposed view (cr.nn's weights) is then updated along its memory order
        if not _is_transpose(e) or e.ins[0] not in defs or e.out in outs:
            continue
        p = e.ins[0]
        j = defs[p]
        prod = prog.eqns[j]
        if (prod.prim.name != "matmul" or prod.params or readers.get(p) != 1 or p in outs
                or any((np.ndim(v.value) if type(v) is Lit else len(v.shape)) != 2 for v in prod.ins) or j in drop):
            continue
        names = names or _fresh_names(prog)
        eqns = []
        ops = []
        for v in reversed(prod.ins):  # (A @ B).T = B.T @ A.T
            if type(v) is Lit:
                ops.append(Lit(v.value.T))
            elif v in defs and _is_transpose(prog.eqns[defs[v]]):
                ops.append(prog.eqns[defs[v]].ins[0])  # a transpose transposed: the array itself
            else:
                t = Var(f"g{next(names)}", v.shape[::-1], v.dtype)
                eqns.append(Eqn(e.prim, [v], {"axes": (1, 0)}, t))
                ops.append(t)
        eqns.append(Eqn(prod.prim, ops, {}, e.out))
        new[i] = eqns
        drop.add(j)
    return _splice(prog, new, drop)


def _scale_products(prog):
    """``s * (A @ B)`` (s a number, the product read only there, or its transpose read only
    there) computed as ``A @ (s * B)`` when B is smaller than the product (or A, the smaller
    one): the SGD update ``W - lr * (X.T @ g)`` scales the (batch, out) cotangent rather than the
    (in, out) gradient, a pass less over the largest array of the step. Equal up to rounding (s
    applied before the sums rather than after)."""
    readers = _readers(prog)
    defs = _defs(prog)
    count = _fresh_names(prog)
    new = {}  # index of an equation -> the equations that replace it
    drop = set()  # the multiplications by s, now done on the operand
    for i, e in enumerate(prog.eqns):
        if e.prim.name != "multiply" or e.params or len(e.ins) != 2:
            continue
        k = 0 if type(e.ins[0]) is Lit else 1
        lit, g = e.ins[k], e.ins[1 - k]
        if (type(lit) is not Lit or type(lit.value) not in (float, int) or type(g) is not Var or g not in defs
                or readers.get(g) != 1 or g.dtype.kind != "f" or g.dtype != e.out.dtype or g.shape != e.out.shape):
            continue
        j = t = defs[g]
        prod = prog.eqns[j]
        x = prod.ins[0]
        if (prod.prim.name == "sum" and set(prod.params) <= {"axis", "keepdims"}
                and prod.params.get("axis") in (0, (0,)) and not prod.params.get("keepdims") and type(x) is Var and len(x.shape) == 2 and x.dtype == g.dtype
                and x.dtype in (np.float32, np.float64) and j not in new):
            # s * (column sums of x) as (s * ones) @ x: the bias update p - lr * sum(g, axis=0)
            ones = np.full(x.shape[0], lit.value, x.dtype)
            ones.flags.writeable = False
            new[j] = [Eqn(REGISTRY["matmul"], [Lit(ones), x], {}, e.out)]
            drop.add(i)
            continue
        if len(g.shape) != 2:
            continue
        if (prod.prim.name == "transpose" and type(prod.ins[0]) is Var and prod.ins[0] in defs
                and readers.get(prod.ins[0]) == 1 and prod.params.get("axes") in (None, (1, 0), [1, 0])):
            j = defs[prod.ins[0]]
            prod = prog.eqns[j]
        if prod.prim.name != "matmul" or prod.params or j in new or len(prod.out.shape) != 2:
            continue
        operands = [(math.prod(v.shape), n) for n, v in enumerate(prod.ins)
                    if type(v) is Var and v.dtype == g.dtype and len(v.shape) == 2]
        if not operands:
            continue
        size, n = min(operands, key=lambda t: (t[0], -t[1]))
        if size >= math.prod(g.shape):
            continue
        op = prod.ins[n]
        op_s = Var(f"g{next(count)}", op.shape, op.dtype)
        ins = list(prod.ins)
        ins[n] = op_s
        if op in defs and _is_transpose(prog.eqns[defs[op]]):  # s * B.T as (s * B).T: B read in its order
            b = prog.eqns[defs[op]].ins[0]
            b_s = Var(f"g{next(count)}", b.shape, b.dtype)
            scale = [Eqn(e.prim, [lit, b] if k == 0 else [b, lit], {}, b_s),
                     Eqn(prog.eqns[defs[op]].prim, [b_s], {"axes": (1, 0)}, op_s)]
        else:
            scale = [Eqn(e.prim, [lit, op] if k == 0 else [op, lit], {}, op_s)]
        # the values that hold s times what they held get new names (the product's and its
        # transpose's: a name of the trace, such as an adjoint's, no longer fits); the result of
        # the multiplication keeps its own
        if t == j:
            new[j] = scale + [Eqn(prod.prim, ins, {}, e.out)]
        else:
            p_s = Var(f"g{next(count)}", prod.out.shape, prod.out.dtype)
            new[j] = scale + [Eqn(prod.prim, ins, {}, p_s)]
            new[t] = [Eqn(prog.eqns[t].prim, [p_s], prog.eqns[t].params, e.out)]
        drop.add(i)
    return _splice(prog, new, drop)


PASSES = {"simplify": simplify, "fold": fold_constants, "cse": cse, "dce": dce, "fuse": fuse}


def optimize(prog, passes=tuple(PASSES)):
    """Apply the named passes in order, twice (one pass opens work for another); ``fuse`` once,
    last (the other passes see one output per equation)."""
    for _ in range(2):
        for p in passes:
            if p != "fuse":
                prog = PASSES[p](prog)
    return fuse(prog) if "fuse" in passes else prog


# ---------------------------------------------------------------- code generation
_INFIX = {"add": "+", "subtract": "-", "multiply": "*", "divide": "/"}
_SIMPLE = (int, float, bool, str, type(None))


class _Namer:
    """Names for the generated source: constants c1, c2, ... and the impls by primitive name."""

    def __init__(self, backend):
        self.env = {}
        self.count = itertools.count(1)
        self.ids = {}
        self.backend = backend

    def const(self, value):
        if type(value) in _SIMPLE and (type(value) is not float or math.isfinite(value)):
            return repr(value)
        key = id(value)
        if key not in self.ids:
            name = f"c{next(self.count)}"
            if isinstance(value, np.ndarray) and self.backend is not np:
                value = self.backend.asarray(value)
            self.ids[key] = (name, value)
            self.env[name] = value
        return self.ids[key][0]

    def impl(self, prim, scalar=False):
        name = f"{prim.name}_f" if scalar else prim.name
        self.env[name] = (prim.scalar if scalar else _impl_for(prim, self.backend))
        return name

    def expr(self, x):
        if type(x) is Var:
            return x.name
        if type(x) is Lit:
            return self.const(x.value)
        if type(x) is tuple:
            return "(" + ", ".join(self.expr(v) for v in x) + ("," if len(x) == 1 else "") + ")"
        if type(x) is list:
            return "[" + ", ".join(self.expr(v) for v in x) + "]"
        if type(x) is slice:
            return f"slice({self.expr(x.start)}, {self.expr(x.stop)}, {self.expr(x.step)})"
        return self.const(x)


def _impl_for(prim, backend):
    """The function computing ``prim`` on ``backend``'s arrays: the registry's impl for numpy (a
    GPU array module would give its own here)."""
    if backend is np:
        return prim.impl
    raise NotImplementedError(f"cr.compile: no implementation of {prim.name} for the array module {backend!r}")


def _line(e, n, floats, out=None, note=""):
    """One line of source for the equation ``e`` (``floats``: names holding Python floats in the
    float program; None in the array program; ``out``: the name of the array that takes the
    result, a dead input's or a kept buffer; ``note``: a comment for the line)."""
    prim = e.prim
    if type(e) is FusedEqn:
        params = "".join(f", {k}={n.expr(v)}" for k, v in e.params.items())
        n.env[prim.name] = _impl_for(prim, n.backend)
        return (f"# {prim.note}\n{e.out.name}, {e.out2.name} = {prim.name}({n.expr(e.ins[0])}{params})")
    if out is not None:
        note = f"  # {note}" if note else ""
        args = ", ".join(n.expr(v) for v in e.ins)
        name = e.out.name
        if prim.name == "relu":  # its impl's computation, written into the given array
            n.env["maximum"] = np.maximum
            zeros = np.zeros(e.out.shape[-1], e.out.dtype)
            zeros.flags.writeable = False
            return f"{name} = maximum({args}, {n.const(zeros)}, out={out}){note}"
        if prim.name == "matmul":
            n.env["matmul"] = np.matmul
            return f"{name} = matmul({args}, out={out}){note}"
        if prim.name == "linear":  # the impl's steps (see the array program's line below)
            n.env["matmul"] = np.matmul
            x, w, b = (n.expr(v) for v in e.ins)
            return f"{name} = matmul({x}, {w}.T, out={out})\n{name} += {b}  # the bias added into the product's array"
        if prim.name in ("sum", "mean"):
            n.env["add_reduce"] = np.add.reduce
            line = f"{name} = add_reduce({args}, {n.expr(e.params.get('axis'))}, None, {out}){note}"
            if prim.name == "mean":
                line += f"\n{name} /= {math.prod(e.ins[0].shape) // max(math.prod(e.out.shape), 1)}"
            return line
        return f"{name} = {n.impl(prim)}({args}, out={out}){note}"
    # a float64 number beside float64 values is written as a Python float: the same result
    f64 = all(v.dtype == _F64_DTYPE for v in e.ins if type(v) is Var)
    args = [repr(float(v.value)) if f64 and type(v) is Lit and type(v.value) is _F64 and math.isfinite(v.value)
            else n.expr(v) for v in e.ins]
    if floats is not None and not e.params and _float_inputs(e, floats):
        if len(args) == 2 and prim.name in _INFIX:
            floats.add(e.out.name)
            return f"{e.out.name} = {args[0]} {_INFIX[prim.name]} {args[1]}"
        if len(args) == 1 and prim.scalar is not None:
            floats.add(e.out.name)
            if prim.name == "negative":
                return f"{e.out.name} = -{args[0]}"
            return f"{e.out.name} = {n.impl(prim, scalar=True)}({args[0]})"
    if prim.name in _INFIX and len(args) == 2 and not e.params:
        return f"{e.out.name} = {args[0]} {_INFIX[prim.name]} {args[1]}"
    a = e.ins[0].value if type(e.ins[0]) is Lit else None
    if (prim.name == "matmul" and n.backend is np and len(args) == 2 and type(a) is np.ndarray and a.ndim == 1
            and a.size and type(e.ins[1]) is Var and len(e.ins[1].shape) == 2 and np.all(a == a[0])):
        # the fuse pass's s * sum(x, axis=0): a row of s times x
        return f"{e.out.name} = {args[0]} @ {args[1]}  # {str(a[0])} * column sums of {args[1]}"
    # numpy's own spelling of a few impls on numpy arrays (the same computation, one call less):
    # only where every input is a value of the array program (not a Python float)
    if n.backend is np and all(type(v) is Var and (floats is None or v.name not in floats) for v in e.ins):
        if prim.name == "matmul" and len(args) == 2 and e.out.shape:
            return f"{e.out.name} = {args[0]} @ {args[1]}"
        if prim.name == "getitem" and set(e.params) == {"index"}:  # the impl is x[index]
            index = e.params["index"]
            index = ", ".join(n.expr(v) for v in index) if type(index) is tuple and index else n.expr(index)
            return f"{e.out.name} = {args[0]}[{index}]"
        axes = e.params.get("axes")
        if prim.name == "transpose" and (axes is None or tuple(axes) == tuple(range(len(e.out.shape)))[::-1]):
            return f"{e.out.name} = {args[0]}.T"
        if prim.name == "linear" and _linear_inline(e):
            # the impl's own steps, with its dtype check done now: the bias added in place
            return f"{e.out.name} = {args[0]} @ {args[1]}.T\n{e.out.name} += {args[2]}"
        if prim.name == "mean" and set(e.params) <= {"axis"} and e.ins[0].shape:
            n.env["add_reduce"] = np.add.reduce
            count = math.prod(e.ins[0].shape) // max(math.prod(e.out.shape), 1)
            return f"{e.out.name} = add_reduce({args[0]}, {n.expr(e.params.get('axis'))}) / {count}"
        if prim.name == "sum" and e.params and set(e.params) <= {"axis", "keepdims"} and not e.params.get("keepdims"):
            x = e.ins[0]
            if (e.params.get("axis") in (0, (0,)) and len(x.shape) == 2 and x.dtype == e.out.dtype
                    and x.dtype in (np.float32, np.float64)):
                # the column sums as a product with ones: BLAS's loop, about three times numpy's
                # add.reduce over the first axis (a bias gradient)
                ones = np.ones(x.shape[0], x.dtype)
                ones.flags.writeable = False
                return f"{e.out.name} = {n.const(ones)} @ {args[0]}  # column sums: ones @ {args[0]}"
            n.env["add_reduce"] = np.add.reduce
            return f"{e.out.name} = add_reduce({args[0]}, {n.expr(e.params.get('axis'))})"
    if prim.name == "negative" and not e.params:
        return f"{e.out.name} = -{args[0]}"
    params = "".join(f", {k}={n.expr(v)}" for k, v in e.params.items())
    return f"{e.out.name} = {n.impl(prim)}({', '.join(args)}{params})"


# Primitives whose result is a new array of its own (never a view of an input): their values'
# buffers may be written once no one reads them.
_FRESH = {"matmul", "linear", "sum", "mean", "logsumexp", "softmax", "relu", "sigmoid", "softplus", "where",
          "maximum", "minimum", "binary_cross_entropy", "scatter_add", "concatenate", "stack", "max",
          LSE_SOFTMAX.name}


_REUSE_BYTES = 1 << 16  # 64 KiB: the 784-256-256-10 step's (128, 256) float32 values are 128 KiB
_KEEP_BYTES = 1 << 14  # 16 KiB: kept arrays save the allocation (its ReLU masks are 32 KiB)


def _fresh(e):
    return e.prim.name in _FRESH or isinstance(e.prim.impl, np.ufunc)


def _writes_out(e):
    """Whether the generator can write ``e``'s result into a given array (``out=``)."""
    name, ins, out = e.prim.name, e.ins, e.out
    if not out.shape:
        return False
    if isinstance(e.prim.impl, np.ufunc):
        return e.prim.impl.nout == 1 and not e.params
    if name == "relu":
        return out.dtype.kind == "f" and not e.params
    if name == "matmul":
        return len(ins) == 2 and not e.params
    if name == "linear":
        return _linear_inline(e)
    if name in ("sum", "mean"):
        return (out.dtype.kind == "f" and e.ins[0].dtype == out.dtype and set(e.params) <= {"axis", "keepdims"}
                and not e.params.get("keepdims") and type(ins[0]) is Var)
    return False


def _linear_inline(e):
    """Whether ``linear(x, W, b)`` is written out as ``x @ W.T`` then ``+= b`` (its impl's steps)."""
    x, w, b = e.ins
    return (all(type(v) is Var for v in e.ins) and x.shape and len(w.shape) == 2 and b.shape in ((), w.shape[:1])
            and np.result_type(x.dtype, w.dtype) == e.out.dtype)


def _plan(prog):
    """Where the array program writes its values: ``(reuse, buffers)``.

    ``reuse`` ``{equation index: input Var}``: an elementwise equation (a ufunc, relu) writes its
    result into the array of an input read for the last time (``out=``): the SGD update
    ``p - lr * g`` into the dead gradient g, a bias add into the product it is added to. The input
    must be an array made by the program (not an argument, a constant or a result of a
    primitive that may return a view), never read through a view, with the result's shape and
    dtype, and of at least ``_REUSE_BYTES`` (numpy and malloc recycle small blocks themselves; a
    softmax of the fused softmax cross-entropy is updated in place at any size).

    ``buffers`` ``{Var: slot}``: values whose array is kept between calls (a matmul, ufunc, relu,
    sum or mean written with ``out=`` into an array of the compiled entry) so a call makes no new
    large temporaries: every value of at least ``_KEEP_BYTES`` that the generator can write with
    ``out=`` and that does not escape, i.e. neither it nor a value written in place into its
    array (or a view of those) is a result. Results are always fresh arrays: a kept array
    returned would change under the caller on the next call (copying results instead would cost
    a pass over each)."""
    last = {}
    viewed = set()
    for i, e in enumerate(prog.eqns):
        fresh = _fresh(e)
        for v in e.reads():
            last[v] = i
            if not fresh:
                viewed.add(v)  # a transpose, reshape, getitem, ... may share its memory
    owned = set()
    small = set()  # softmaxes of the fused softmax cross-entropy: in place at any size
    for e in prog.eqns:
        if _fresh(e):
            owned.add(e.out)
        if type(e) is FusedEqn:
            owned.add(e.out2)
            small.add(e.out2)
    outs = {v for v in prog.outs if type(v) is Var}
    taken = set()
    reuse = {}
    root = {}  # a value -> the value whose array holds it
    for i, e in enumerate(prog.eqns):
        # elementwise: not matmul (a generalized ufunc), which numpy computes into an operand's
        # own array only through a copy of that operand
        ufunc = isinstance(e.prim.impl, np.ufunc) and e.prim.impl.nout == 1 and e.prim.impl.signature is None
        relu = e.prim.name == "relu" and e.out.dtype.kind == "f"  # maximum(x, row of zeros), see _relu_impl
        if not (ufunc or relu) or e.params or not e.out.shape:
            continue
        big = math.prod(e.out.shape) * e.out.dtype.itemsize >= _REUSE_BYTES
        for v in e.ins:
            if (type(v) is Var and v in owned and last.get(v) == i and v not in viewed and v not in outs
                    and v not in taken and v.shape == e.out.shape and v.dtype == e.out.dtype
                    and (big or v in small)):
                reuse[i] = v
                taken.add(v)
                owned.add(e.out)
                root[e.out] = root.get(v, v)
                if v in small:
                    small.add(e.out)
                break
    # what a result may share memory with: the results, and (backwards) what views of them read
    escape = set(outs)
    for e in reversed(prog.eqns):
        if not _fresh(e) and e.out in escape:
            escape.update(e.reads())
    escape = {root.get(v, v) for v in escape}
    buffers = {}
    for i, e in enumerate(prog.eqns):
        if (i not in reuse and type(e) is not FusedEqn and e.out not in escape and _writes_out(e)
                and math.prod(e.out.shape) * e.out.dtype.itemsize >= _KEEP_BYTES):
            buffers[e.out] = len(buffers)
    return reuse, buffers


def _float_inputs(e, floats):
    if not e.out.scalar:
        return False
    for v in e.ins:
        if type(v) is Var:
            if v.name not in floats:
                return False
        elif type(v.value) not in (float, int):
            return False
    return True


def _return_expr(out_def, names):
    """The result's structure as a Python expression (None: unflatten at run time)."""
    it = iter(names)

    def build(td):
        if td is LEAF:
            return next(it)
        kind, keys, children = td
        if kind is tuple:
            items = [build(c) for c in children]
            return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"
        if kind is list:
            return "[" + ", ".join(build(c) for c in children) + "]"
        if kind is dict and all(type(k) in (str, int) for k in keys):
            return "{" + ", ".join(f"{k!r}: {build(c)}" for k, c in zip(keys, children)) + "}"
        raise ValueError
    try:
        return build(out_def)
    except ValueError:
        return None


def generate(prog, backend=np, floats=True, inplace=True):
    """``(source, function)``: the program as a straight-line Python function of its inputs
    (leaves in order) that returns the result (or its leaves, when ``function.unflatten`` is set)."""
    n = _Namer(backend)
    ins = [v.name for v in prog.invars]
    lines = [f"def {prog.name}({', '.join(ins)}):"]
    # the float program: worth it when the inputs are numbers and most work is on numbers
    scalar_in = floats and prog.invars and all(v.scalar for v in prog.invars)
    # numpy's inf for 1.0 / 0.0 (the float program falls back to this one with Python floats)
    body = [f"{v.name} = F64({v.name})" for v in prog.invars if v.py or scalar_in]
    reuse, buffers = _plan(prog) if inplace and backend is np else ({}, {})
    pool = []  # the idle sets of kept arrays (one set per call running at once)
    if buffers:
        # a set of arrays per call: taken from the pool (or made when every set is in use, by
        # another thread or a call inside this one) and given back at the end; list.pop and
        # list.append are atomic, so two threads never hold the same set
        specs = [(v.shape, v.dtype) for v in buffers]
        n.env["_pool"] = pool
        n.env["_take"] = functools.partial(_take, pool, specs, backend.empty)
        names = ", ".join(f"_b{k}" for k in range(len(buffers)))
        body.append(f"{names}{',' if len(buffers) == 1 else ''} = _bufs = _take()  # this call's kept arrays")
    defs = _defs(prog)
    for i, e in enumerate(prog.eqns):
        if i in reuse:
            into = reuse[i]
            note = ("the bias added into the product's array" if e.prim.name == "add" and into in defs
                    and prog.eqns[defs[into]].prim.name == "matmul" else "")
            body.append(_line(e, n, None, into.name, note))
        else:
            body.append(_line(e, n, None, f"_b{buffers[e.out]}" if e.out in buffers else None))
    if buffers:
        body.append("_pool.append(_bufs)")
    n.env["F64"] = _F64
    # a constant result is a new array on each call (the caller may write it), as in eager mode
    outs = [n.expr(v) + (".copy()" if type(v) is Lit and type(v.value) is np.ndarray else "") for v in prog.outs]
    ret = _return_expr(prog.out_def, outs)
    unflat = ret is None
    if unflat:
        ret = "(" + "".join(o + ", " for o in outs) + ")"
    if scalar_in and prog.eqns:
        floats = {v.name for v in prog.invars}
        fbody = [_line(e, n, floats) for e in prog.eqns]
        fouts = [f"F64({o})" if o in floats else o for o in outs]
        fret = _return_expr(prog.out_def, fouts) if not unflat else "(" + "".join(o + ", " for o in fouts) + ")"
        n.env["FLOAT_ERRORS"] = _FLOAT_ERRORS
        lines.append("    # on Python floats (math), as the tape computes; numpy where Python refuses")
        lines.append("    try:")
        lines += [f"        {v} = float({v})" for v in ins]
        lines += _indent(fbody, 2)
        lines.append(f"        return {fret}")
        lines.append("    except FLOAT_ERRORS:")
        lines.append(f"        return {prog.name}_arrays({', '.join(ins)})")
        arrays = [f"def {prog.name}_arrays({', '.join(ins)}):"] + _indent(body, 1) + [f"    return {ret}"]
        source = "\n".join(arrays) + "\n\n\n" + "\n".join(lines) + "\n"
    else:
        lines += _indent(body, 1) + [f"    return {ret}"]
        source = "\n".join(lines) + "\n"
    fn = _exec(source, prog.name, n.env)
    fn.unflatten = prog.out_def if unflat else None
    fn.buffers = pool
    return source, fn


def _take(pool, specs, empty):
    """A set of kept arrays for one call: an idle one, or new ones when all are in use."""
    try:
        return pool.pop()
    except IndexError:
        return tuple(empty(shape, dtype) for shape, dtype in specs)


def _indent(lines, depth):
    """The statements of ``lines`` (one equation may take two: linear's bias add) indented."""
    pad = "    " * depth
    return [pad + part for line in lines for part in line.split("\n")]


def _exec(source, name, env):
    """Define the generated function. The source is ours (from a Program), never user text; the
    constants and impls are bound as closure variables of a factory (cheap reads at run time)."""
    names = sorted(env)
    factory = (f"def _factory({', '.join(names)}):\n" + "\n".join("    " + l for l in source.splitlines())
               + f"\n    return {name}\n")
    ns = {}
    exec(builtins_compile(factory, f"<chainrule.compile {name}>", "exec"), ns)  # noqa: S102 - our own source
    return ns["_factory"](*(env[k] for k in names))


builtins_compile = __import__("builtins").compile


# ---------------------------------------------------------------- cr.compile
CacheInfo = namedtuple("CacheInfo", "hits misses maxsize currsize")
_TREE = object()  # marks an argument's general (flatten) signature: equal to no keyword's name


class Compiled:
    """What :func:`compile` returns: call it as the function; see the module docstring."""

    def __init__(self, fn, static_argnums=(), maxsize=64, passes=tuple(PASSES), backend=np, floats=True,
                 inplace=True):
        if isinstance(static_argnums, int):
            static_argnums = (static_argnums,)
        self.fn = fn
        self.static_argnums = tuple(static_argnums)
        if not isinstance(maxsize, (int, np.integer)) or isinstance(maxsize, bool) or maxsize < 0:  # always bounded
            raise ValueError(f"cr.compile: maxsize must be a whole number >= 0 (the programs kept), got {maxsize!r}")
        self.maxsize = maxsize
        self.passes = tuple(passes)
        for p in self.passes:
            if p not in PASSES:
                raise ValueError(f"cr.compile: unknown pass {p!r}; the passes are {', '.join(PASSES)}")
        self.backend = backend
        self.floats = floats
        self.inplace = inplace
        self._cache = OrderedDict()
        self._hits = self._misses = 0
        functools.update_wrapper(self, fn)

    # -- the signature of a call: what a trace depends on
    def _signature(self, args, kwargs):
        """``(key, leaves)``: the key of the call's signature and the traced leaves in order;
        key None: the call cannot be compiled (a box among the arguments)."""
        key = []
        dyn = []
        static = self.static_argnums
        for i, a in enumerate(args):
            t = type(a)
            if i in static:
                key.append(("static", _hashable(a, i)))
            elif t is np.ndarray:
                key.append((a.shape, a.dtype))
                dyn.append(a)
            elif t is float:
                key.append(float)
                dyn.append(a)
            else:
                mark, dmark = len(key), len(dyn)
                if not _fast_tree(a, key, dyn):  # anything but dicts, lists, tuples of arrays and floats
                    del key[mark:], dyn[dmark:]
                    key.append(_TREE)
                    if not self._tree(a, key, dyn):
                        return None, None
        if kwargs:
            for k in sorted(kwargs):
                key.append(k)
                if not self._tree(kwargs[k], key, dyn):
                    return None, None
        return tuple(key), dyn

    @staticmethod
    def _tree(a, key, dyn):
        leaves, treedef = flatten(a)
        key.append(treedef)
        for x in leaves:
            t = type(x)
            if t is np.ndarray:  # the common leaf, written out (this runs on every call)
                key.append(x.shape)
                key.append(x.dtype)
                dyn.append(x)
                continue
            kind = _leaf_kind(x)
            if kind == "a":
                key.append((type(x), np.shape(x), x.dtype))
                dyn.append(x)
            elif kind == "f":
                key.append(float)
                dyn.append(x)
            elif isinstance(x, Box):
                return False
            else:
                key.append(("static", _hashable(x, None)))
        return True

    def __call__(self, *args, **kwargs):
        key, dyn = self._signature(args, kwargs)
        if key is None:  # a transformation outside (grad of a compiled function): run it as it is
            return self.fn(*args, **kwargs)
        entry = self._cache.get(key)
        if entry is None:
            entry = self._compile(key, args, kwargs)
        else:
            self._hits += 1
            if len(self._cache) > 1:
                try:
                    self._cache.move_to_end(key)
                except KeyError:  # another thread's call dropped it meanwhile: this call still runs it
                    pass
        out = entry(*dyn)
        return out if entry.unflatten is None else unflatten(entry.unflatten, out)

    def _compile(self, key, args, kwargs):
        self._misses += 1
        traced = trace(self.fn, args, kwargs, self.static_argnums)
        prog = name_adjoints(traced, optimize(traced, self.passes))
        source, fn = generate(prog, self.backend, self.floats, self.inplace)
        fn.program, fn.source = prog, source
        self._cache[key] = fn
        if len(self._cache) > self.maxsize:
            try:
                self._cache.popitem(last=False)
            except KeyError:  # emptied meanwhile by cache_clear() in another thread
                pass
        return fn

    def _entry(self, args, kwargs):
        key, _ = self._signature(args, kwargs)
        if key is None:
            raise TypeError("cr.compile: the arguments hold values of a transformation; nothing is compiled for them")
        return self._cache.get(key) or self._compile(key, args, kwargs)

    def source(self, *args, **kwargs) -> str:
        """The generated Python source for a call with these arguments (traced if needed)."""
        return self._entry(args, kwargs).source

    def program(self, *args, **kwargs) -> Program:
        """The (optimized) program for a call with these arguments; ``print`` shows it."""
        return self._entry(args, kwargs).program

    def buffers(self, *args, **kwargs) -> list:
        """The arrays the program for these arguments keeps between calls (``out=`` targets of
        its large temporaries, made on its first call): a list of the idle sets, one tuple of
        arrays per call that ran at once (usually one). Results are never among them, and a
        call running while another holds a set gets new arrays; empty with ``inplace=False``.
        The arrays stay allocated while the program is in the cache (``cache_clear()`` frees
        them), as the workspace of a compiled kernel does."""
        return self._entry(args, kwargs).buffers

    def cache_info(self):
        """``CacheInfo(hits, misses, maxsize, currsize)``, as functools.lru_cache."""
        return CacheInfo(self._hits, self._misses, self.maxsize, len(self._cache))

    def cache_clear(self):
        self._cache.clear()
        self._hits = self._misses = 0


def _fast_tree(a, key, dyn):
    """The signature of a dict, list or tuple of arrays and floats (leaves in flatten's order),
    without building a treedef: False for anything else (the general path then runs)."""
    t = type(a)
    if t is np.ndarray:
        key.append(a.shape)
        key.append(a.dtype)
        dyn.append(a)
        return True
    if t is float:
        key.append(float)
        dyn.append(a)
        return True
    if t is dict:
        try:
            keys = sorted(a)
        except TypeError:
            return False
        key.append((dict, *keys))
        for k in keys:
            if not _fast_tree(a[k], key, dyn):
                return False
        return True
    if t is list or t is tuple:
        key.append((t, len(a)))
        for v in a:
            if not _fast_tree(v, key, dyn):
                return False
        return True
    return False


def _hashable(x, i):
    try:
        hash(x)
    except TypeError:
        where = f"static argument {i}" if i is not None else "a non-array leaf of the arguments"
        raise TypeError(f"cr.compile: {where} ({type(x).__name__}) must be hashable: its value is part of the "
                        "signature that selects the compiled program") from None
    return (type(x), x)


def compile(fn=None, *, static_argnums=(), maxsize=64, passes=tuple(PASSES), backend=np, floats=True,
            inplace=True):
    """``fn`` traced once per signature into a straight-line program of primitive calls.

    ``fn`` may be a transformed function (``cr.value_and_grad(loss)``, ``cr.hessian(f)``): its
    derivative computation is traced too. ``static_argnums`` name arguments whose values select
    the program (hashable, traced as constants); ``maxsize`` bounds the cache of programs (least
    recently used dropped first); ``passes`` are the rewrites applied (``()``: none); ``backend``
    is the array module of the program; ``floats=False`` leaves out the program on Python floats
    that runs where every input is a 0-d float64 value; ``inplace=False`` keeps every value in
    its own new array (by default, with numpy as the array module, an elementwise result is
    written into the array of a large temporary read for the last time, and large temporaries
    into arrays kept between calls, ``out=``: see :meth:`Compiled.buffers`; results are always
    new arrays and arguments are never written).

    >>> import numpy as np, chainrule as cr
    >>> f = cr.compile(cr.grad(lambda x: cr.sum(x * x)))
    >>> f(np.array([1.0, 2.0]))
    array([2., 4.])
    >>> f.cache_info()
    CacheInfo(hits=0, misses=1, maxsize=64, currsize=1)
    """
    if fn is None:
        return functools.partial(compile, static_argnums=static_argnums, maxsize=maxsize, passes=passes,
                                 backend=backend, floats=floats, inplace=inplace)
    return Compiled(fn, static_argnums, maxsize, passes, backend, floats, inplace)
