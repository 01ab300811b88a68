"""cr.vmap: a function of one example mapped over a batch axis of its arguments.

``vmap(f)(xs)`` equals ``stack([f(x) for x in xs])``. The mapped arguments become *batched
values* (:class:`Batched`, one more kind of box, like a Dual): an array with the batch axis in
front that shows the shape of one example, so ``f`` runs once, on the whole batch. Each primitive
applied to them takes the batch axis along: elementwise primitives broadcast it, reductions,
reshapes, transposes, indexing and matmul shift their axes past it (one numpy call for the batch),
and any other primitive is applied example by example and stacked (correct for every primitive;
the linear algebra primitives are batched by numpy already). Rules are written with these same
primitives, so ``vmap(grad(f))`` batches the backward pass as well: per-example gradients in
one pass, and vmap inside grad, jvp or hessian differentiates like any other function.
Where ``f`` needs one example's plain value (a label used as an index, a Python ``if`` on a
mapped value), vmap calls ``f`` example by example instead and stacks the results (slicing and
stacking are primitives too, so that is differentiable in every mode as well).
"""
from __future__ import annotations

import numpy as np

from chainrule.core import primitives as P
from chainrule.core.errors import ConcretizationError, ShapeError
from chainrule.core.ops import ArrayOperators
from chainrule.core.primitives import dtype_of, shape_of
from chainrule.core.registry import Box, new_level
from chainrule.modes.pytree import flatten, unflatten

_object_new = object.__new__


class Batched(Box, ArrayOperators):
    """A batch of values inside :func:`vmap`: ``val`` holds them along axis 0; ``shape``, ``ndim``
    and ``dtype`` are one example's, as ``f`` expects."""

    __slots__ = ("val", "_level")

    shape = property(lambda self: shape_of(self.val)[1:])
    ndim = property(lambda self: len(shape_of(self.val)) - 1)
    dtype = property(lambda self: dtype_of(self.val))
    size = property(lambda self: int(np.prod(shape_of(self.val)[1:])))

    @property
    def data(self):
        # what chainrule.core.ops.concrete asks of a box: a batched value has no single value
        raise ConcretizationError("inside cr.vmap, a mapped value has one value per example, not one plain "
                                  "value; use chainrule's functions (cr.where instead of `if`, ...) on it")

    def __len__(self):
        shape = self.shape
        if not shape:
            raise TypeError("len() of a 0-d value (one example of a vmap)")
        return shape[0]

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def __repr__(self):
        return f"Batched(shape={self.shape}, batch={shape_of(self.val)[0]})"

    def _bind(self, prim, args, params):
        level = self._level
        vals, batched = [], []
        for a in args:
            mine = isinstance(a, Batched) and a._level == level
            vals.append(a.val if mine else a)
            batched.append(mine)
        size = shape_of(self.val)[0]
        rule = _RULES.get(prim.name)
        out = rule(prim, vals, batched, params, size) if rule is not None else None
        if out is None and prim.elementwise and not isinstance(prim.vjps, P.PerArg):
            out = _elementwise(prim, vals, batched, params, size)
        if out is None:
            out = _by_example(prim, vals, batched, params, size)
        return _batched(out, level)


def _batched(val, level):
    b = _object_new(Batched)
    b.val = val
    b._level = level
    return b


# ---------------------------------------------------------------- batching rules
def _rank(v, batched):
    return len(shape_of(v)) - (1 if batched else 0)


def _lift(v, rank):
    """A batched value with size-1 axes after the batch axis up to ``rank`` axes per example, so
    that it broadcasts against unbatched values as one example would."""
    shape = shape_of(v)
    missing = rank - (len(shape) - 1)
    return v if missing <= 0 else P.reshape(v, shape=shape[:1] + (1,) * missing + shape[1:])


def _elementwise(prim, vals, batched, params, size):
    rank = max(_rank(v, b) for v, b in zip(vals, batched))
    vals = [_lift(v, rank) if b else v for v, b in zip(vals, batched)]
    return prim.op(*vals, **params)


def _by_example(prim, vals, batched, params, size):
    # any primitive: applied to each example and stacked (one call per example)
    outs = [prim.op(*[P.getitem(v, index=i) if b else v for v, b in zip(vals, batched)], **params)
            for i in range(size)]
    return P.stack(*outs, axis=0)


def _shift(axis, nd):
    """Axes of one example (None: all) as axes of the batch."""
    if axis is None:
        return tuple(range(1, nd + 1))
    if isinstance(axis, tuple):
        return tuple(a % nd + 1 for a in axis)
    return axis % nd + 1


def _reduction(default):
    def rule(prim, vals, batched, params, size):
        if len(vals) != 1:
            return None
        params = dict(params)
        params["axis"] = _shift(params.get("axis", default), _rank(vals[0], True))
        return prim.op(vals[0], **params)
    return rule


def _only_first(fn):
    def rule(prim, vals, batched, params, size):
        if not batched[0] or any(batched[1:]):
            return None
        return fn(prim, vals, params, size)
    return rule


def _transpose(prim, vals, params, size):
    nd = _rank(vals[0], True)
    axes = params.get("axes")
    axes = range(nd - 1, -1, -1) if axes is None else (a % nd for a in axes)
    return P.transpose(vals[0], axes=(0,) + tuple(a + 1 for a in axes))


def _broadcast(prim, vals, params, size):
    shape = tuple(params["shape"])
    return P.broadcast_to(_lift(vals[0], len(shape)), shape=(size,) + shape)


def _index(prim, vals, params, size):
    from chainrule.modes.forward import _batch_index  # the same shift as for a batch of tangents

    index = _batch_index(params["index"])
    if index is None:
        return None
    if prim.name == "getitem":
        return P.getitem(vals[0], index=index)
    return P.scatter_add(vals[0], index=index, shape=(size,) + tuple(params["shape"]))


def _matmul(prim, vals, batched, params, size):
    x, y = vals
    bx, by = batched
    rx, ry = _rank(x, bx), _rank(y, by)
    if bx and not by and ry == 2:
        return P.matmul(x, y)  # (B, ..., k) @ (k, n): the batch is one more leading axis
    if rx < 2 or ry < 2:
        return None  # vectors: example by example (their promotion rules do not batch as is)
    rank = max(rx, ry)
    return P.matmul(_lift(x, rank) if bx else x, _lift(y, rank) if by else y)


def _linear(prim, vals, params, size):
    return prim.op(*vals, **params)  # x W^T + b for rows x: the batch is one more leading axis


_RULES = {
    "sum": _reduction(None), "mean": _reduction(None), "max": _reduction(None),
    "logsumexp": _reduction(None), "softmax": _reduction(-1),
    "reshape": _only_first(lambda prim, vals, params, size: P.reshape(vals[0], shape=(size,) + tuple(params["shape"]))),
    "transpose": _only_first(_transpose),
    "broadcast_to": _only_first(_broadcast),
    "astype": _only_first(lambda prim, vals, params, size: P.astype(vals[0], **params)),
    "getitem": _only_first(_index),
    "scatter_add": _only_first(_index),
    "matmul": _matmul,
    "linear": _only_first(_linear),
}


def _axis_for(name, axis, nd, what):
    if axis is None:
        return None
    if not isinstance(axis, (int, np.integer)) or isinstance(axis, bool):
        raise TypeError(f"vmap: {name} must hold ints or None, got {axis!r} for {what}")
    if not -nd <= axis < nd:
        raise ShapeError(f"vmap: {name}={axis} is out of range for {what} of rank {nd}")
    return int(axis) % nd


def _on_the_batch(f, flat, kwargs, size):
    """f called once on batched values; its results' leaves with the batch axis in front."""
    level = new_level()
    example = [unflatten(treedef, [_batched(v, level) if mapped else v for v, mapped in front])
               for treedef, front in flat]
    leaves, out_def = flatten(f(*example, **kwargs))
    out = []
    for v in leaves:
        if isinstance(v, Batched) and v._level == level:
            out.append(v.val)
        else:  # the same for every example
            out.append(P.broadcast_to(v, shape=(size,) + shape_of(v)))
    return out, out_def


def _example_by_example(f, flat, kwargs, size):
    """f called on each example (sliced with the registry's indexing), the results stacked."""
    columns, out_def = [], None
    for i in range(size):
        example = [unflatten(treedef, [P.getitem(v, index=i) if mapped else v for v, mapped in front])
                   for treedef, front in flat]
        leaves, out_def = flatten(f(*example, **kwargs))
        columns.append(leaves)
    return [P.stack(*[c[j] for c in columns], axis=0) for j in range(len(columns[0]))], out_def


def _to_front(axis, nd):
    return (axis,) + tuple(i for i in range(nd) if i != axis)


def _from_front(axis, nd):
    order = list(range(1, nd))
    order.insert(axis, 0)
    return tuple(order)


def vmap(f, in_axes=0, out_axes=0):
    """``f`` mapped over an axis of its positional arguments: ``vmap(f)(xs)[i] == f(xs[i])``.

    ``in_axes`` is one int (every argument mapped along that axis), None (not mapped), or one
    entry per positional argument, each an int or None (an argument that is a tuple, list or
    dict of arrays has every leaf mapped along that axis). ``out_axes`` is where the batch axis
    goes in each result (an int, or one per entry of a tuple of results). Every mapped argument
    must have the same size along its axis; keyword arguments are passed unmapped.

    Per-example gradients, the case users ask for:

    >>> import numpy as np, chainrule as cr
    >>> loss = lambda w, x, y: (cr.sum(w * x) - y) ** 2
    >>> w, X, y = np.array([1.0, 2.0]), np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]), np.array([0.0, 1.0, 2.0])
    >>> cr.vmap(cr.grad(loss), in_axes=(None, 0, 0))(w, X, y)
    array([[2., 0.],
           [0., 2.],
           [2., 2.]])
    """
    if not callable(f):
        raise TypeError(f"vmap: f must be a function, got {type(f).__name__}")

    def mapped(*args, **kwargs):
        axes = in_axes if isinstance(in_axes, (tuple, list)) else (in_axes,) * len(args)
        if len(axes) != len(args):
            raise TypeError(f"vmap: in_axes has {len(axes)} entries but the function got {len(args)} positional "
                            "arguments; give one int or None per argument")
        size, source = None, None
        flat = []  # per argument: its treedef and leaves, a mapped leaf with its batch axis in front
        for k, (arg, axis) in enumerate(zip(args, axes)):
            leaves, treedef = flatten(arg)
            front = []
            for v in leaves:
                a = _axis_for("in_axes", axis, len(shape_of(v)) if axis is not None else 0, f"argument {k}")
                if a is None:
                    front.append((v, False))
                    continue
                n = shape_of(v)[a]
                if size is None:
                    size, source = n, k
                elif n != size:
                    raise ShapeError(f"vmap: argument {k} has {n} entries along axis {a} but argument {source} "
                                     f"has {size}; mapped arguments need the same batch size")
                if not isinstance(v, (Box, np.ndarray)):
                    v = np.asarray(v)
                front.append((P.transpose(v, axes=_to_front(a, len(shape_of(v)))) if a else v, True))
            flat.append((treedef, front))
        if size is None:
            raise ValueError("vmap: no argument is mapped (every in_axes entry is None); map at least one")
        if size == 0:
            raise ShapeError("vmap: the batch axis is empty; there is no example to map f over")
        try:
            out_leaves, out_def = _on_the_batch(f, flat, kwargs, size)
        except ConcretizationError:
            # f asked for one example's plain value (an index or a label taken from a mapped
            # argument, a Python `if` on one): call it example by example instead, where such
            # values are plain; an error of that run is the one to report
            out_leaves, out_def = _example_by_example(f, flat, kwargs, size)
        oaxes = out_axes if isinstance(out_axes, (tuple, list)) else (out_axes,) * len(out_leaves)
        if len(oaxes) != len(out_leaves):
            raise TypeError(f"vmap: out_axes has {len(oaxes)} entries but f returns {len(out_leaves)} values")
        results = []
        for j, (v, axis) in enumerate(zip(out_leaves, oaxes)):
            if axis is None:
                raise TypeError("vmap: out_axes must be ints (each result gets a batch axis)")
            nd = len(shape_of(v))
            a = _axis_for("out_axes", axis, nd, f"result {j}")
            results.append(P.transpose(v, axes=_from_front(a, nd)) if a else v)
        return unflatten(out_def, results)

    mapped.__name__ = f"vmap({getattr(f, '__name__', 'f')})"
    mapped.__doc__ = f.__doc__
    return mapped
