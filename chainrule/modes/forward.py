"""Forward mode: dual numbers that carry a tangent through every primitive's forward rule.

A :class:`Dual` is a value ``primal + tangent * eps`` with ``eps**2 = 0``: applying a primitive
``f`` gives ``f(primal) + (J_f tangent) eps``, so the tangent of the result is the
Jacobian-vector product, computed alongside the value in one pass (no graph is stored). The
forward rules are the registry's ``jvps``; this module only moves (primal, tangent) pairs
through them.

A tangent may carry a leading *batch* axis of B directions: one pass then gives B
Jacobian-vector products, which is how a forward-mode Jacobian or Hessian costs one pass.
Elementwise rules see the batch axis as one more broadcast axis (the tangent is reshaped to the
output's rank first); the structural primitives (reductions, reshape, matmul, indexing, ...)
have batching rules here that shift their axes; any other primitive falls back to one rule call
per direction, stacked.
"""
from __future__ import annotations

import numpy as np

from chainrule.core import primitives as P
from chainrule.core.errors import COMPLEX_REFUSAL, DTypeError, ShapeError
from chainrule.core.registry import Box, new_level
from chainrule.core.ops import ArrayOperators
from chainrule.core.primitives import dtype_of, shape_of

_object_new = object.__new__


class Dual(Box, ArrayOperators):
    """A number or array with a tangent: ``Dual(primal, tangent)``.

    Any chainrule function applied to Duals returns a Dual whose ``.tangent`` is the derivative
    along the tangents (a Jacobian-vector product); a result that does not depend on any Dual
    is returned plain. Each Dual made by hand takes a fresh level, so Duals made separately never
    mix their perturbations; Duals that must share one (several inputs of one function) are made
    by :func:`chainrule.jvp`.

    >>> import chainrule as cr
    >>> y = cr.sin(Dual(0.5, 1.0)) * 2.0      # d/dx 2 sin x = 2 cos x
    >>> round(float(y.tangent), 6)
    1.755165
    """

    __slots__ = ("primal", "tangent", "_level", "_batch")

    def __init__(self, primal, tangent, *, batched=False):
        if isinstance(primal, (list, tuple, int)) and not isinstance(primal, bool):
            primal = np.asarray(primal, dtype=float)  # an integer point still has real tangents
        check_primal("Dual", "the primal", primal)
        check_tangent("Dual", "the primal", primal, tangent, batched)
        self.primal = primal
        self.tangent = _as_tangent(tangent, primal)
        self._level = new_level()
        self._batch = shape_of(self.tangent)[0] if batched else None

    # -- the forward rules ---------------------------------------------------
    def _bind(self, prim, args, params):
        level = self._level
        primals = []
        tangents = []
        for a in args:
            if type(a) is Dual and a._level == level:
                primals.append(a.primal)
                tangents.append(a.tangent)
            else:  # a constant at this level (maybe a value of an enclosing transformation)
                primals.append(a)
                tangents.append(None)
        ans = prim.op(*primals, **params)
        if not prim.differentiable:
            return ans
        batch = self._batch
        if batch is None:
            t = _push(prim, tangents, ans, primals, params, shape_of(ans) if prim.elementwise else None)
        else:
            rule = _BATCHED.get(prim.name)
            if rule is not None:
                t = rule(tangents, ans, primals, params, batch)
            elif prim.elementwise:
                t = _batched_elementwise(prim, tangents, ans, primals, params, batch)
            else:
                t = _batched_by_loop(prim, tangents, ans, primals, params, batch)
        return ans if t is None else make_dual(ans, t, level, batch)

    def _bind_unary(self, prim, params):
        # One argument, no batch: the common case of exp, relu, sum, ... without the lists.
        if self._batch is not None or prim.name in _JOINT:
            return self._bind(prim, (self,), params)
        x = self.primal
        ans = prim.op(x, **params) if params else prim.op(x)
        if not prim.differentiable:
            return ans
        return make_dual(ans, prim.jvps[0](self.tangent, ans, x, **params), self._level)

    # -- conversion and display ----------------------------------------------
    shape = property(lambda self: shape_of(self.primal))
    ndim = property(lambda self: len(shape_of(self.primal)))
    dtype = property(lambda self: dtype_of(self.primal))
    size = property(lambda self: int(np.prod(shape_of(self.primal))))

    def __repr__(self):
        def show(v):
            return repr(v) if isinstance(v, Box) else np.array2string(np.asarray(v), separator=", ")
        batch = f", batch={self._batch}" if self._batch is not None else ""
        return f"Dual(primal={show(self.primal)}, tangent={show(self.tangent)}{batch})"

    # float(), bool(), np.asarray(), ... come from ArrayOperators: on a Dual they refuse, since
    # the tangent would be lost; ``d.detach()`` or ``cr.stop_gradient(d)`` take the value on purpose.
    def detach(self):
        """The primal without this Dual's tangent (as Tensor.detach: one level)."""
        return self.primal


    def __len__(self):
        shape = shape_of(self.primal)
        if not shape:
            raise TypeError("len() of a 0-d Dual")
        return shape[0]

    def __iter__(self):
        return (self[i] for i in range(len(self)))


def make_dual(primal, tangent, level, batch=None) -> Dual:
    """A Dual of a given level without checks (for jvp, which has checked already)."""
    d = _object_new(Dual)
    d.primal = primal
    d.tangent = tangent
    d._level = level
    d._batch = batch
    return d


def _as_tangent(tangent, primal):
    """The tangent as an array of the primal's floating dtype (a float32 value keeps a float32
    tangent); boxes of enclosing transformations are kept as they are."""
    if isinstance(tangent, Box):
        return tangent
    dtype = dtype_of(primal)
    if isinstance(primal, (float, int)) or not np.issubdtype(dtype, np.inexact):
        dtype = np.float64
    return np.asarray(tangent, dtype=dtype)


def check_primal(where, what, x):
    """Raise a clear error unless ``x`` is a real floating-point value that can be
    differentiated. Complex values are refused here, at every entry point (jvp, grad, vjp,
    Dual), rather than half supported inside."""
    t = type(x)
    if t is float or (t is np.ndarray and x.dtype.kind == "f"):
        return  # the common cases, checked first
    if x is None:
        raise DTypeError(f"{where}: {what} is None; pass a floating-point number or array")
    if isinstance(x, (Box, np.ndarray, np.generic, complex)):
        dtype = np.dtype(dtype_of(x))
        if dtype.kind == "f":
            return
        if dtype.kind == "c":
            raise DTypeError(f"{where}: {what} is complex (dtype {dtype}); {COMPLEX_REFUSAL}")
        raise DTypeError(f"{where}: {what} has dtype {dtype}; derivatives need floating-point values, "
                         "e.g. x.astype(float) or 2.0 instead of 2")
    if isinstance(x, (bool, int)):
        raise DTypeError(f"{where}: {what} is the integer {x!r} (dtype {np.result_type(x)}); derivatives need "
                         f"floating-point values, e.g. {float(x)!r} instead of {x!r}")
    raise DTypeError(f"{where}: {what} has type {t.__name__}; pass a floating-point number or array")


def check_tangent(where, what, primal, tangent, batched, batch=None):
    """Raise a clear error unless ``tangent`` fits ``primal``: same shape, or one more leading
    (batch) axis when ``batched``, every batch with the same number of directions."""
    if tangent is None:
        raise DTypeError(f"{where}: the tangent of {what} is None; pass an array of shape {shape_of(primal)}"
                         " (zeros for no perturbation)")
    if not isinstance(tangent, Box):
        kind = np.asarray(tangent).dtype.kind if isinstance(tangent, (list, tuple)) else \
            getattr(getattr(tangent, "dtype", None), "kind", None)
        if kind is None:
            kind = ("c" if isinstance(tangent, complex) else
                    "f" if isinstance(tangent, (int, float)) and not isinstance(tangent, bool) else "?")
        if kind == "c":
            raise DTypeError(f"{where}: the tangent of {what} is complex; {COMPLEX_REFUSAL}")
        if kind not in "fiu":
            raise DTypeError(f"{where}: the tangent of {what} has type {type(tangent).__name__}"
                             f"{f' (dtype {tangent.dtype})' if hasattr(tangent, 'dtype') else ''}; "
                             "pass a floating-point array")
        if isinstance(tangent, (list, tuple)):
            tangent = np.asarray(tangent)
    ps, ts = shape_of(primal), shape_of(tangent)
    if batched:
        if len(ts) != len(ps) + 1 or ts[1:] != ps:
            raise ShapeError(f"{where}: the batched tangent of {what} has shape {ts}; with batched=True it must be "
                             f"(number of directions,) + the primal's shape {ps}")
        if batch is not None and ts[0] != batch:
            raise ShapeError(f"{where}: the batched tangent of {what} has {ts[0]} directions but an earlier one has "
                             f"{batch}; every tangent needs the same number of directions")
    elif ts != ps:
        hint = (" (for a leading axis of directions, pass batched=True)"
                if len(ts) == len(ps) + 1 and ts[1:] == ps else "")
        raise ShapeError(f"{where}: the tangent of {what} has shape {ts} but the primal has shape {ps}{hint}")


# ---------------------------------------------------------------- rules over all arguments at once
def _zeros(x, lead=()):
    return np.zeros(lead + shape_of(x), dtype=dtype_of(x))


def _join_tangents(tangents, primals, lead=()):
    return [_zeros(x, lead) if t is None else t for t, x in zip(tangents, primals)]


# concatenate and stack are linear in all arguments together: one join of the tangents (zeros
# for constants) instead of one join per argument.
def _plus_minus(sign):
    # x + y and x - y: one add or subtract of the tangents, not one rule call per argument and
    # an add (a pass and a temporary fewer, which counts for big batched tangents).
    def rule(ts, xs, params):
        tx, ty = ts
        if ty is None:
            return tx
        if tx is None:
            return ty if sign is P.add else P.negative(ty)
        return sign(tx, ty)
    return rule


_JOINT = {
    "add": _plus_minus(P.add),
    "subtract": _plus_minus(P.subtract),
    "concatenate": lambda ts, xs, params: P.concatenate(*_join_tangents(ts, xs), **params),
    "stack": lambda ts, xs, params: P.stack(*_join_tangents(ts, xs), **params),
}


# ---------------------------------------------------------------- batched tangents
def _neg_axis(axis, nd):
    """``axis`` as negative numbers (None: all axes): negative axes stay right when a batch
    axis is put in front."""
    if axis is None:
        return tuple(range(-nd, 0))
    if isinstance(axis, tuple):
        return tuple(a % nd - nd for a in axis)
    return axis % nd - nd


def _to_rank(t, x, nd, batch):
    """A batched tangent of ``x`` reshaped to rank 1 + nd with broadcast axes after the batch axis,
    so that it broadcasts against values of rank nd as the primal did."""
    xs = shape_of(x)
    if len(xs) == nd:
        return t
    return P.reshape(t, shape=(batch,) + (1,) * (nd - len(xs)) + xs)


def _push(prim, tangents, ans, primals, params, out_shape=None):
    """The output tangent of one primitive: its joint rule, or the sum of its forward rules'
    contributions (None when every tangent is zero). Given ``out_shape`` (elementwise
    primitives), it is broadcast to it: the contributions broadcast only among themselves."""
    joint = _JOINT.get(prim.name)
    if joint is not None:
        t = joint(tangents, primals, params)
    else:
        t = None
        jvps = prim.jvps
        for i, ti in enumerate(tangents):
            if ti is not None:  # a zero tangent (a constant) costs nothing
                c = jvps[i](ti, ans, *primals, **params)
                t = c if t is None else P.add(t, c)
    if out_shape is not None and t is not None and shape_of(t) != out_shape:
        t = P.broadcast_to(t, shape=out_shape)
    return t


def _batched_elementwise(prim, tangents, ans, primals, params, batch):
    # An elementwise rule treats the batch axis as one more broadcast axis once every tangent
    # has the output's rank (a (B, n) tangent against an (m, n) operand becomes (B, 1, n)).
    nd = len(shape_of(ans))
    ranked = [None if ti is None else _to_rank(ti, x, nd, batch) for ti, x in zip(tangents, primals)]
    return _push(prim, ranked, ans, primals, params, (batch,) + shape_of(ans))


def _batched_by_loop(prim, tangents, ans, primals, params, batch):
    # Correct for any rule: one call per direction, stacked along the batch axis.
    jvps = prim.jvps
    t = None
    for i, ti in enumerate(tangents):
        if ti is None:
            continue
        rule = jvps[i]
        c = P.stack(*[rule(P.getitem(ti, index=b), ans, *primals, **params) for b in range(batch)], axis=0)
        t = c if t is None else P.add(t, c)
    return t


def _reduction(fn):
    def rule(ts, ans, xs, params, batch):
        if ts[0] is None:
            return None
        axis = params.get("axis")
        return fn(ts[0], ans, xs[0], axis, _neg_axis(axis, len(shape_of(xs[0]))), params.get("keepdims", False))
    return rule


def _weighted_sum(weights):
    # max and logsumexp: the tangent is a weighted sum over the reduced axes (the weights have
    # the input's shape, so they broadcast against the batch axis).
    def rule(t, ans, x, axis, naxis, keepdims):
        return P.sum(P.multiply(t, weights(ans, x, axis, keepdims)), axis=naxis, keepdims=keepdims)
    return rule


def _softmax_batched(ts, ans, xs, params, batch):
    t = ts[0]
    if t is None:
        return None
    axis = _neg_axis(params.get("axis", -1), len(shape_of(ans)))
    return P.multiply(ans, P.subtract(t, P.sum(P.multiply(t, ans), axis=axis, keepdims=True)))


def _transpose_batched(ts, ans, xs, params, batch):
    nd = len(shape_of(xs[0]))
    axes = params.get("axes")
    axes = range(nd - 1, -1, -1) if axes is None else (a % nd for a in axes)
    return P.transpose(ts[0], axes=(0,) + tuple(a + 1 for a in axes))


def _broadcast_batched(ts, ans, xs, params, batch):
    shape = tuple(params["shape"])
    return P.broadcast_to(_to_rank(ts[0], xs[0], len(shape), batch), shape=(batch,) + shape)


def _batch_index(index):
    """``index`` with a full slice in front for the batch axis, or None when numpy would then move
    the indexed axes to the front (advanced indices that are not next to each other)."""
    parts = index if isinstance(index, tuple) else (index,)
    arrays = [i for i, p in enumerate(parts)
              if not isinstance(p, (slice, type(None), type(Ellipsis), int, np.integer))]
    if arrays:
        # With an array among them, integers count as advanced indices too.
        adv = [i for i, p in enumerate(parts) if not isinstance(p, (slice, type(None), type(Ellipsis)))]
        if adv[-1] - adv[0] + 1 != len(adv):
            return None
    return (slice(None),) + parts


def _getitem_batched(ts, ans, xs, params, batch):
    index = _batch_index(params["index"])
    if index is None:
        return _batched_by_loop(P.getitem.primitive, ts, ans, xs, params, batch)
    return P.getitem(ts[0], index=index)


def _scatter_batched(ts, ans, xs, params, batch):
    index = _batch_index(params["index"])
    if index is None:
        return _batched_by_loop(P.scatter_add.primitive, ts, ans, xs, params, batch)
    return P.scatter_add(ts[0], index=index, shape=(batch,) + tuple(params["shape"]))


def _matmul_batched(ts, ans, primals, params, batch):
    x, y = primals
    tx, ty = ts
    xs, ys = shape_of(x), shape_of(y)
    out_shape = (batch,) + shape_of(ans)
    t = None
    if tx is not None:
        if len(xs) == 1 and len(ys) == 2 and _is_identity(tx):
            c = _fresh(y)  # the basis directions of a Jacobian: I @ y = y, no product needed
        elif len(ys) <= 2:
            # (B, ..., m, k) @ (k, n): the batch and leading axes are rows of one matrix product.
            c = P.matmul(P.reshape(tx, shape=(-1, xs[-1])) if len(xs) != 1 else tx, y)
        else:
            x2 = (1,) + xs if len(xs) == 1 else xs
            nd = max(len(x2), len(ys))
            c = P.matmul(P.reshape(tx, shape=(batch,) + (1,) * (nd - len(x2)) + x2), y)
        t = P.reshape(c, shape=out_shape)
    if ty is not None:
        if len(ys) == 1 and len(xs) == 2 and _is_identity(ty):
            c = _fresh(P.transpose(x, axes=None))  # I @ x^T = x^T: a Jacobian's basis directions
        elif len(ys) == 1 and len(xs) <= 2:
            # x @ v_b for each direction b is one product with the directions as rows: V @ x^T.
            c = P.matmul(ty, x if len(xs) == 1 else P.transpose(x, axes=None))
        elif len(ys) == 2 and ys[1] == 1 and len(xs) <= 2:
            # x @ v_b for column vectors v_b (a matrix-vector vjp): V @ x^T, as above.
            c = P.matmul(P.reshape(ty, shape=(batch, ys[0])), x if len(xs) == 1 else P.transpose(x, axes=None))
        elif len(ys) == 2 and len(xs) <= 2:
            # x @ V_b for all b as one matrix product: (k, B*n) columns side by side.
            k, n = ys
            cols = P.reshape(P.transpose(ty, axes=(1, 0, 2)), shape=(k, batch * n))
            c = P.matmul(x, cols)
            if len(xs) == 2:
                c = P.transpose(P.reshape(c, shape=(xs[0], batch, n)), axes=(1, 0, 2))
        else:
            y2 = ys + (1,) if len(ys) == 1 else ys
            nd = max(len(xs), len(y2))
            c = P.matmul(x, P.reshape(ty, shape=(batch,) + (1,) * (nd - len(y2)) + y2))
        c = P.reshape(c, shape=out_shape)
        t = c if t is None else P.add(t, c)
    return t


def _is_identity(t):
    """Whether a batch of tangents is the identity matrix (as a forward-mode Jacobian's basis
    directions are): O(B^2) to check, against the O(B^2 m) product it saves."""
    return (type(t) is np.ndarray and t.ndim == 2 and t.shape[0] == t.shape[1] and t.shape[0] > 0
            and t[0, 0] == 1 and np.count_nonzero(t) == t.shape[0] and bool(np.all(t.diagonal() == 1)))


def _fresh(x):
    # A tangent must not share memory with a primal (a user may change either in place). The
    # copy keeps x's layout: for a Jacobian's x^T that is a plain copy of x's memory, a third of
    # the time of a transposing one.
    return np.array(x, order="K") if isinstance(x, np.ndarray) else x


def _join_batched(op):
    def rule(ts, ans, xs, params, batch):
        nd = len(shape_of(ans))
        axis = params.get("axis", 0) % nd - nd
        return op(*_join_tangents(ts, xs, (batch,)), axis=axis)
    return rule


_BATCHED = {
    "sum": _reduction(lambda t, ans, x, axis, naxis, keepdims: P.sum(t, axis=naxis, keepdims=keepdims)),
    "mean": _reduction(lambda t, ans, x, axis, naxis, keepdims: P.mean(t, axis=naxis, keepdims=keepdims)),
    "max": _reduction(_weighted_sum(P._max_weights)),
    "logsumexp": _reduction(_weighted_sum(P._lse_weights)),
    "softmax": _softmax_batched,
    "astype": lambda ts, ans, xs, params, batch: P.astype(ts[0], dtype=params["dtype"]),
    "reshape": lambda ts, ans, xs, params, batch: P.reshape(ts[0], shape=(batch,) + shape_of(ans)),
    "transpose": _transpose_batched,
    "broadcast_to": _broadcast_batched,
    "getitem": _getitem_batched,
    "scatter_add": _scatter_batched,
    "matmul": _matmul_batched,
    "concatenate": _join_batched(lambda *ts, axis: P.concatenate(*ts, axis=axis)),
    "stack": _join_batched(lambda *ts, axis: P.stack(*ts, axis=axis)),
}


def register_batching_rule(name, rule):
    """Teach forward mode to push a batch of tangents through primitive ``name`` in one call:
    ``rule(tangents, ans, primals, params, batch)`` returns the output tangent with a leading
    batch axis (``tangents[i]`` is None for an argument without one). Without a rule,
    elementwise primitives still take one call and others one call per direction."""
    _BATCHED[name] = rule


# ---------------------------------------------------------------- chainrule.numpy's primitives
def _einsum_batched(ts, ans, xs, params, batch):
    # a fresh letter for the batch axis, in front of each batched tangent and of the output
    ins, out = params["subscripts"].split("->")
    ins = ins.split(",")
    b = next(c for c in "zyxwvutsrqponmlkjihgfedcbaZYXWVUTSRQPONMLKJIHGFEDCBA" if c not in params["subscripts"])
    t = None
    for i, ti in enumerate(ts):
        if ti is None:
            continue
        spec = ",".join(b + s if j == i else s for j, s in enumerate(ins)) + "->" + b + out
        c = P.einsum(*[ti if j == i else x for j, x in enumerate(xs)], subscripts=spec)
        t = c if t is None else P.add(t, c)
    return t


# cumsum and cumprod take a negative axis: their forward rules broadcast over a leading batch axis.
_BATCHED.update({
    "cumsum": lambda ts, ans, xs, params, batch: P.cumsum(ts[0], axis=params["axis"]),
    "cumprod": lambda ts, ans, xs, params, batch: P.multiply(ans, P.cumsum(P.divide(ts[0], xs[0]), axis=params["axis"])),
    "prod": _reduction(_weighted_sum(P._prod_others)),
    "einsum": _einsum_batched,
})


# numpy.linalg's primitives: their forward rules broadcast over a leading batch axis
from chainrule.core.linalg import BATCHED as _LINALG_BATCHED  # noqa: E402

_BATCHED.update(_LINALG_BATCHED)
