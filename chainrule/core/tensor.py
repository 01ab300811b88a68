"""The Tensor: an array that records, when asked, how it was computed (a node of the graph)."""
from __future__ import annotations

import itertools
import sys
import traceback
from contextvars import ContextVar

import numpy as np

from chainrule.core import primitives as P
from chainrule.core.ops import ArrayOperators, concrete
from chainrule.core.errors import COMPLEX_REFUSAL, AnomalyError, DTypeError, GraphError
from chainrule.core.registry import (_ANOMALY, _GRAD_ENABLED, _NO_PARAMS, _NUMBER_TYPES, Box, _failed, anomaly_enabled, bind,
                                     grad_enabled, shape_error)

_PACKAGE_DIR = __file__.rsplit("core", 1)[0]


class Tensor(Box, ArrayOperators):
    """An array with an optional gradient. Operations on Tensors that require a gradient record
    the graph: each result remembers its primitive, its arguments and their versions.

    >>> x = tensor(2.0, requires_grad=True)
    >>> y = x * x + 3 * x
    >>> y.backward(); float(x.grad)
    7.0

    Gradients accumulate into ``.grad`` of leaves across backward calls (as in PyTorch): call
    ``zero_grad`` on a model, or set ``x.grad = None``, between steps.
    """

    # Defaults live on the class so that making a result tensor sets only what differs.
    requires_grad = False
    grad = None
    name = None
    _level = 0
    _prim = None  # the primitive that made this tensor; None for a leaf
    _parents = ()  # its arguments as given (Tensors and constants); None once released
    _saved = None  # their values at this level, as the rules receive them
    _params = _NO_PARAMS  # the primitive's keyword parameters (none, for most)
    _versions = None  # each Tensor argument's version when recorded (-1 for constants)
    _version = 0  # bumped by every in-place change
    _seq = 0  # creation order: consumers are made after what they consume
    _retain = False
    _where = None  # the user's line that built it (anomaly mode)

    def __init__(self, data, requires_grad=False, dtype=None, name=None):
        if isinstance(data, Tensor):
            data = data.data
        data = np.array(data, dtype=dtype)
        if data.dtype == object:
            raise DTypeError(f"tensor: cannot make a numeric array from {type(data.flat[0]).__name__} values")
        if requires_grad and data.dtype.kind != "f":
            raise DTypeError(_requires_grad_refusal("tensor: requires_grad=True", data.dtype))
        self.data = data
        self.requires_grad = bool(requires_grad)
        self.name = name

    # -- recording ---------------------------------------------------------
    def _bind(self, prim, args, params):
        """Apply ``prim`` to ``args`` (self among them, at the highest level): unbox the tensors of
        this level, evaluate (on arrays, or on lower-level boxes through ``prim.op``), and record
        the result when an input requires a gradient."""
        n = len(args)
        if n == 2 and not params:
            return self._binary(prim, args[0], args[1])
        if n == 1:
            return self._bind_unary(prim, params)
        level = self._level
        vals = []
        versions = []
        needs = False
        mutable = False
        boxed = False  # a value of a lower level (nested transformation) is still inside
        for a in args:
            if isinstance(a, Tensor) and a._level == level:
                data = a.data
                if a.requires_grad:
                    needs = True
                versions.append(a._version)
            else:
                data = a
                versions.append(-1)
                if type(a) not in _SAVED_AS_IS:
                    mutable = True  # a constant that may change before the backward pass
            if isinstance(data, Box):
                boxed = True
            vals.append(data)
        data = prim.op(*vals, **params) if boxed else _call_impl(prim, vals, params)
        out = _new(data, level)
        if needs and grad_enabled() and prim.differentiable:
            if mutable:  # keep copies of the constants (see _frozen)
                args = tuple(_frozen(a) if v < 0 else a for a, v in zip(args, versions))
                vals = [a if v < 0 else x for a, x, v in zip(args, vals, versions)]
            out.requires_grad = True
            out._prim = prim
            out._parents = args
            out._saved = vals
            out._params = _frozen_params(params) if params else params
            out._versions = versions
            out._seq = next(_sequence)
        if anomaly_enabled():
            _check_forward(out, prim)
        return out

    def _bind_unary(self, prim, params):
        """``prim(self, **params)``: ``_bind`` for one argument, written out (the common case)."""
        data = self.data
        level = self._level
        # Only the data of a nested transformation's tensor (level > 0) can itself be traced.
        if level and isinstance(data, Box):
            value = prim.op(data, **params)
        else:
            try:
                value = prim.impl(data, **params) if params else prim.impl(data)
            except (ValueError, IndexError, TypeError) as err:
                value = _failed(prim, (data,), params, err)  # a shape error, or a traced parameter
        out = _object_new(Tensor)
        out.data = value
        if level:
            out._level = level
        if self.requires_grad and grad_enabled() and prim.differentiable:
            out.requires_grad = True
            out._prim = prim
            out._parents = (self,)
            out._saved = (data,)
            if params:
                out._params = _frozen_params(params)
            out._versions = (self._version,)
            out._seq = next(_sequence)
        if anomaly_enabled():
            _check_forward(out, prim)
        return out

    def _binary(self, prim, a, b):
        """``prim(a, b)`` where self is a or b, at the higher level: the same as ``_bind`` with
        the checks of the common case (tensors of one level and plain constants) written out."""
        level = self._level
        if isinstance(a, Tensor) and a._level == level:
            av, va, ga = a.data, a._version, a.requires_grad
        elif isinstance(a, Box) and a._level > level:
            return a._bind(prim, (a, b), _NO_PARAMS)
        else:
            av, va, ga = a, -1, False  # a constant (or a box of an outer transformation)
        if isinstance(b, Tensor) and b._level == level:
            bv, vb, gb = b.data, b._version, b.requires_grad
        elif isinstance(b, Box) and b._level > level:
            return b._bind(prim, (a, b), _NO_PARAMS)
        else:
            bv, vb, gb = b, -1, False
        if level and (isinstance(av, Box) or isinstance(bv, Box)):  # as in _bind_unary
            data = prim.op(av, bv)
        else:
            # One operand is a tensor's numpy value, so the Python operator (see
            # Primitive.operator: much cheaper on numpy scalars) computes what impl would.
            try:
                data = (prim.operator or prim.impl)(av, bv)
            except (ValueError, IndexError, TypeError) as err:
                raise shape_error(prim, (av, bv), _NO_PARAMS, err) from None
        out = _object_new(Tensor)
        out.data = data
        if level:
            out._level = level
        if (ga or gb) and grad_enabled() and prim.differentiable:
            if va < 0 and type(av) not in _SAVED_AS_IS:  # a constant that may change (below)
                a = av = _frozen(av)
            elif vb < 0 and type(bv) not in _SAVED_AS_IS:
                b = bv = _frozen(bv)
            out.requires_grad = True
            out._prim = prim
            out._parents = (a, b)
            out._saved = (av, bv)
            out._versions = (va, vb)
            out._seq = next(_sequence)
        if anomaly_enabled():
            _check_forward(out, prim)
        return out

    @property
    def is_leaf(self) -> bool:
        return self._prim is None

    # -- reverse mode ------------------------------------------------------
    def backward(self, gradient=None, retain_graph=None, create_graph=False):
        """Accumulate d(self)/d(leaf) into every leaf's ``.grad`` by reverse mode.

        ``gradient`` is the cotangent of self (required unless self has one element);
        ``retain_graph`` keeps the saved values for another backward (default: ``create_graph``); ``create_graph`` records
        the backward pass itself so the gradients can be differentiated again.
        """
        (_reverse_module or _reverse()).backward(self, gradient, retain_graph=retain_graph, create_graph=create_graph)

    def retain_grad(self):
        """Keep ``.grad`` on this non-leaf tensor too after backward."""
        self._retain = True
        return self

    def detach(self) -> "Tensor":
        """The same data, cut from the graph."""
        return _new(self.data, self._level)

    def requires_grad_(self, flag=True):
        if flag and np.dtype(self.dtype).kind != "f":
            raise DTypeError(_requires_grad_refusal("requires_grad_", self.dtype))
        self.requires_grad = flag
        return self

    # -- conversion --------------------------------------------------------
    # float(), int(), bool(), .item(), .tolist() and np.asarray() come from ArrayOperators: they
    # refuse where a derivative would be lost (np.asarray of a Tensor that requires grad, any
    # conversion inside a transformation), as PyTorch's numpy() does.
    def numpy(self) -> np.ndarray:
        """The value as a numpy array (shares memory; not differentiable): the explicit way to
        take the plain value of any Tensor, wherever it is (``t.detach().numpy()`` in PyTorch)."""
        data = self.data
        while isinstance(data, Box):  # a tensor of a nested transformation
            data = data.primal if hasattr(data, "primal") else data.data
        return np.asarray(data)

    def __len__(self):
        if not self.shape:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def __repr__(self):
        body = np.array2string(self.numpy(), separator=", ", prefix="tensor(")
        extra = ""
        if self.dtype != np.float64 and np.issubdtype(self.dtype, np.floating):
            extra += f", dtype={self.dtype}"
        if self._prim is not None:
            extra += f", grad_fn={self._prim.name}"
        elif self.requires_grad:
            extra += ", requires_grad=True"
        return f"tensor({body}{extra})"

    # -- numpy-like surface (the rest comes from ArrayOperators) -------------
    shape = property(lambda self: P.shape_of(self.data))
    ndim = property(lambda self: len(P.shape_of(self.data)))
    dtype = property(lambda self: P.dtype_of(self.data))
    size = property(lambda self: int(np.prod(P.shape_of(self.data))))

    def __add__(self, o): return self._binary(_ADD, self, o)
    def __radd__(self, o): return self._binary(_ADD, o, self)
    def __sub__(self, o): return self._binary(_SUB, self, o)
    def __rsub__(self, o): return self._binary(_SUB, o, self)
    def __mul__(self, o): return self._binary(_MUL, self, o)
    def __rmul__(self, o): return self._binary(_MUL, o, self)
    def __truediv__(self, o): return self._binary(_DIV, self, o)
    def __rtruediv__(self, o): return self._binary(_DIV, o, self)
    def __pow__(self, o): return self._binary(_POW, self, o)
    def __rpow__(self, o): return self._binary(_POW, o, self)
    def __matmul__(self, o): return self._binary(_MATMUL, self, o)
    def __rmatmul__(self, o): return self._binary(_MATMUL, o, self)
    def __neg__(self): return bind(_NEG, (self,), {})
    def argmax(self, axis=None):
        """Index of the maximum (an integer array; not differentiable)."""
        return self.numpy().argmax(axis=axis)

    # -- in-place changes: allowed only where no gradient is being recorded ---
    def _inplace(self, what, fn):
        if self.requires_grad and grad_enabled():
            kind = "a leaf" if self._prim is None else "a tensor"
            raise GraphError(f"in-place {what} on {kind} that requires a gradient would make its graph wrong; "
                             "write x = x + y instead, or do it inside `with chainrule.no_grad():`")
        data = self.data
        if isinstance(data, np.ndarray) and data.flags.writeable:
            fn(data)
        else:  # numpy scalars and broadcast views cannot be written: rebind instead
            data = np.array(data)
            fn(data)
            self.data = data
        self._version += 1
        return self

    def __iadd__(self, o): return self._inplace("+=", lambda d: np.add(d, _raw(o), out=d, casting="same_kind"))
    def __isub__(self, o): return self._inplace("-=", lambda d: np.subtract(d, _raw(o), out=d, casting="same_kind"))
    def __imul__(self, o): return self._inplace("*=", lambda d: np.multiply(d, _raw(o), out=d, casting="same_kind"))
    def __itruediv__(self, o): return self._inplace("/=", lambda d: np.true_divide(d, _raw(o), out=d, casting="same_kind"))

    def __setitem__(self, index, value):
        self._inplace("assignment", lambda d: d.__setitem__(concrete(index), _raw(value)))

    def copy_(self, value):
        """Overwrite the data in place (same shape), e.g. to load weights."""
        return self._inplace("copy_", lambda d: np.copyto(d, _raw(value), casting="same_kind"))

    def zero_(self):
        return self._inplace("zero_", lambda d: d.fill(0))


_ADD, _SUB, _MUL, _DIV, _POW, _MATMUL, _NEG = (f.primitive for f in (
    P.add, P.subtract, P.multiply, P.divide, P.power, P.matmul, P.negative))


def _requires_grad_refusal(where, dtype):
    if np.dtype(dtype).kind == "c":  # refused, not half supported: see the README's conventions
        return f"{where} needs real floating-point data, got dtype {dtype}: {COMPLEX_REFUSAL}"
    return f"{where} needs floating-point data, got dtype {dtype}; pass dtype=float or float values"


def _new(data, level=0) -> Tensor:
    """A Tensor around ``data`` without validation or copying (the hot path)."""
    t = _object_new(Tensor)
    t.data = data
    if level:
        t._level = level
    return t


_object_new = object.__new__
# Creation numbers order one graph's nodes (a consumer is made after what it consumes); they need
# only be unique and growing, so one counter serves every thread (next() is atomic under the GIL).
_sequence = itertools.count(1)


def _reverse():
    # modes.reverse imports this module, so it is looked up on first use.
    global _reverse_module
    if _reverse_module is None:
        from chainrule.modes import reverse as _reverse_module
    return _reverse_module


_reverse_module = None


# -- constants saved for the backward pass -------------------------------------
# A Tensor changed in place after an operation saved it is refused by its version counter; a
# plain array is not a Tensor and has no counter. So a recording operation keeps its own copy of
# every constant that can still be written: a writeable array, a view of memory that something can
# write (a view of a writeable array, even a read-only view), a list. What nothing can change is
# kept as it is: numbers, and arrays that are read-only down to the memory they view (cr.fit
# hands out such batches, so training pays nothing). Changing a read-only array after writing
# True to its flags is the one way left to change a saved value: that is on purpose. The copy
# stays writeable: only the graph holds it, and making it read-only would cost more than the
# copy of a small array.
_SAVED_AS_IS = (_NUMBER_TYPES - {np.ndarray}) | {type(None), str, slice, type(Ellipsis)}


def _frozen(v):
    """``v`` as the backward pass may keep it: ``v`` itself when nothing can change it, else a
    copy (lists and tuples item by item, as tuples)."""
    if type(v) is np.ndarray and v.flags.writeable:  # the common case: a caller's array
        return v.__copy__()  # numpy's copy in v's own layout (order "K"), so rules compute as on v
    if isinstance(v, np.ndarray):
        a = v
        while not a.flags.writeable:
            a = a.base
            if a is None or type(a) is bytes:  # read-only down to memory nothing can write
                return v
            if not isinstance(a, np.ndarray):  # memory of another object (mmap, buffer)
                break
        return v.__copy__()
    tv = type(v)
    if tv is tuple:  # a shape, an index: most often numbers and slices alone
        for x in v:
            if type(x) not in _SAVED_AS_IS:
                break
        else:
            return v
    if tv is list or tv is tuple:
        items = tuple(x if type(x) in _SAVED_AS_IS else _frozen(x) for x in v)
        return v if tv is tuple and all(x is y for x, y in zip(items, v)) else items
    return v  # a number, a box of another transformation, a dtype, ...


def _frozen_params(params):
    """``params`` with their arrays frozen (getitem's index arrays, say); the same dict when none
    needed it."""
    for v in params.values():
        if type(v) not in _SAVED_AS_IS:
            break
    else:
        return params  # axis=, keepdims=, ...: nothing to look into
    changed = None
    for k, v in params.items():
        f = _frozen(v)
        if f is not v:
            if changed is None:
                changed = dict(params)
            changed[k] = f
    return params if changed is None else changed


def _call_impl(prim, vals, params):
    try:
        return prim.impl(*vals, **params)
    except (ValueError, IndexError, TypeError) as err:
        return _failed(prim, vals, params, err)


def _raw(x):
    return x.data if isinstance(x, Tensor) else x


def tensor(data, requires_grad=False, dtype=None, name=None) -> Tensor:
    """Make a Tensor (a copy of ``data``). Integer and boolean data cannot require a gradient.

    >>> tensor([1.0, 2.0], requires_grad=True).shape
    (2,)
    """
    return Tensor(data, requires_grad=requires_grad, dtype=dtype, name=name)


# ---------------------------------------------------------------- grad mode and anomaly mode
_RESTORE = ContextVar("chainrule.mode_restore", default=None)  # (outer entries, value to restore)


class _Switch:
    """Context manager (and decorator) that sets a mode for the current thread or asyncio task
    and restores it after; other threads and tasks keep theirs."""

    var = _GRAD_ENABLED  # the mode's ContextVar (see chainrule.core.registry)
    value = True

    # The value to restore is kept per thread and task too (a stack: blocks nest), never on the
    # switch object: one `no_grad()` object shared by threads, or entered again inside its own
    # block, would otherwise restore another entry's value and leave the mode switched.
    def __enter__(self):
        var = self.var
        _RESTORE.set((_RESTORE.get(), var.get()))
        var.set(self.value)
        return self

    def __exit__(self, *exc):
        entry = _RESTORE.get()
        if entry is None:  # entered in another thread or task (a generator closed elsewhere): nothing here
            return False
        rest, prev = entry
        _RESTORE.set(rest)
        self.var.set(prev)
        return False

    def __call__(self, fn):
        import functools

        @functools.wraps(fn)
        def wrapped(*a, **k):
            with self:
                return fn(*a, **k)

        return wrapped


class no_grad(_Switch):
    """Record nothing inside this block (in this thread or asyncio task): operations cost what
    numpy costs."""

    value = False


class enable_grad(_Switch):
    """Record again inside a ``no_grad`` block."""

    value = True


class detect_anomaly(_Switch):
    """Name the first operation whose value or cotangent becomes NaN or inf, with the line of
    user code that built it (in this thread or asyncio task). Opt-in: it checks every value, so
    it is slow."""

    var, value = _ANOMALY, True


def is_grad_enabled() -> bool:
    """Whether operations on Tensors are recorded in the current thread / asyncio task."""
    return grad_enabled()


def user_frame() -> str:
    """The innermost stack frame outside chainrule, as 'file:line in function: code'."""
    for frame in reversed(traceback.extract_stack(sys._getframe(1))):
        if not frame.filename.startswith(_PACKAGE_DIR):
            return f"{frame.filename}:{frame.lineno} in {frame.name}: {frame.line}"
    return "<unknown>"


def _check_forward(out, prim):
    out._where = user_frame()
    if not np.all(np.isfinite(out.numpy())):
        raise AnomalyError(f"{prim.name} produced a non-finite value (NaN or inf), built at {out._where}")
