"""cr.vmap: a function of one example mapped over a batch axis of its arguments.

``vmap(f)(xs)`` is ``stack([f(x) for x in xs])``, computed as exactly that: the arguments are
sliced along their batch axis with chainrule's indexing and the results joined with its stack,
both primitives of the registry, so the mapped function is differentiable in every mode (vmap
inside grad, grad inside vmap, jvp, hessian) and its results are the Python loop's, bit for bit.
It costs one call of ``f`` per example: the point is the code it saves (per-example gradients
in one line), not speed.
"""
from __future__ import annotations

import numpy as np

from chainrule.core.errors import ShapeError
from chainrule.core.ops import stack
from chainrule.core.primitives import shape_of
from chainrule.modes.pytree import flatten, unflatten


def _axis_for(name, axis, nd, what):
    if axis is None:
        return None
    if not isinstance(axis, (int, np.integer)) or isinstance(axis, bool):
        raise TypeError(f"vmap: {name} must hold ints or None, got {axis!r} for {what}")
    if not -nd <= axis < nd:
        raise ShapeError(f"vmap: {name}={axis} is out of range for {what} of rank {nd}")
    return int(axis) % nd


def _take(x, axis, i):
    return x[(slice(None),) * axis + (i,)]


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
        flat = []  # per argument: (leaves, treedef, axes of the leaves)
        size, source = None, None
        for k, (arg, axis) in enumerate(zip(args, axes)):
            leaves, treedef = flatten(arg)
            leaf_axes = []
            for v in leaves:
                nd = len(shape_of(v))
                a = _axis_for("in_axes", axis, nd if axis is not None else 0, f"argument {k}")
                if a is not None:
                    n = shape_of(v)[a]
                    if size is None:
                        size, source = n, k
                    elif n != size:
                        raise ShapeError(f"vmap: argument {k} has {n} entries along axis {a} but argument {source} "
                                         f"has {size}; mapped arguments need the same batch size")
                leaf_axes.append(a)
            flat.append((leaves, treedef, leaf_axes))
        if size is None:
            raise ValueError("vmap: no argument is mapped (every in_axes entry is None); map at least one")
        if size == 0:
            raise ShapeError("vmap: the batch axis is empty; there is no example to map f over")
        results = []
        for i in range(size):
            example = [unflatten(treedef, [v if a is None else _take(v, a, i) for v, a in zip(leaves, la)])
                       for leaves, treedef, la in flat]
            results.append(f(*example, **kwargs))
        out_leaves, out_def = flatten(results[0])
        columns = [flatten(r)[0] for r in results]
        oaxes = out_axes if isinstance(out_axes, (tuple, list)) else (out_axes,) * len(out_leaves)
        if len(oaxes) != len(out_leaves):
            raise TypeError(f"vmap: out_axes has {len(oaxes)} entries but f returns {len(out_leaves)} values")
        stacked = []
        for j, axis in enumerate(oaxes):
            if axis is None:
                raise TypeError("vmap: out_axes must be ints (each result gets a batch axis)")
            nd = len(shape_of(out_leaves[j])) + 1
            stacked.append(stack([c[j] for c in columns], axis=_axis_for("out_axes", axis, nd, f"result {j}")))
        return unflatten(out_def, stacked)

    mapped.__name__ = f"vmap({getattr(f, '__name__', 'f')})"
    mapped.__doc__ = f.__doc__
    return mapped
