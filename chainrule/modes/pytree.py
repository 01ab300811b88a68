"""Pytrees: nested tuples, lists and dicts of arrays, flattened to a list of leaves and back.

A network's parameters are a dict of arrays, a function of two vectors takes a tuple: the
functional API (``grad``, ``jvp``, ...) accepts and returns any such nesting. ``flatten`` turns a
tree into its leaves (in a fixed order) and a *treedef* describing the nesting; ``unflatten``
rebuilds a tree of the same shape from new leaves. Dict keys are visited in sorted order, so two
dicts with the same keys flatten alike whatever order they were built in (as in JAX). Anything
that is not a tuple, list or dict (arrays, numbers, None, boxes) is a leaf.

>>> leaves, treedef = flatten({"W": 1.0, "b": (2.0, 3.0)})
>>> leaves
[1.0, 2.0, 3.0]
>>> unflatten(treedef, [10.0, 20.0, 30.0])
{'W': 10.0, 'b': (20.0, 30.0)}
"""
from __future__ import annotations

# A treedef is None for a single leaf, else a tuple (kind, keys, children): kind is the container
# type, keys the sorted dict keys (None for sequences), children the treedefs of the entries.
# Plain tuples compare by value, so two trees have the same structure iff their treedefs are ==.
LEAF = None


def flatten(tree):
    """``(leaves, treedef)`` of a tree; a leaf alone flattens to ``([tree], None)``."""
    kind = type(tree)
    if kind is not tuple and kind is not list and kind is not dict and not isinstance(tree, (tuple, list, dict)):
        return [tree], LEAF  # the common case (one array or number) costs two type checks
    leaves = []
    return leaves, _flatten(tree, leaves)


def _flatten(node, leaves):
    if isinstance(node, dict):
        keys = _sorted_keys(node)
        return (type(node), keys, tuple(_flatten(node[k], leaves) for k in keys))
    if isinstance(node, (tuple, list)):
        return (type(node), None, tuple(_flatten(c, leaves) for c in node))
    leaves.append(node)
    return LEAF


def _sorted_keys(d):
    try:
        return tuple(sorted(d))
    except TypeError:  # keys of mixed types: keep insertion order
        return tuple(d)


def unflatten(treedef, leaves):
    """The tree of structure ``treedef`` whose leaves are ``leaves`` (in flatten's order)."""
    if treedef is LEAF:
        return leaves[0]
    it = iter(leaves)
    return _build(treedef, it)


def _build(treedef, it):
    if treedef is LEAF:
        return next(it)
    kind, keys, children = treedef
    if keys is not None:
        values = {k: _build(c, it) for k, c in zip(keys, children)}
        return values if kind is dict else kind(values)
    items = [_build(c, it) for c in children]
    if kind is list:
        return items
    if kind is tuple:
        return tuple(items)
    if hasattr(kind, "_fields"):  # a namedtuple takes its fields as arguments
        return kind(*items)
    return kind(items)


def num_leaves(treedef) -> int:
    """How many leaves a tree of structure ``treedef`` has."""
    if treedef is LEAF:
        return 1
    return sum(num_leaves(c) for c in treedef[2])


def tree_map(fn, tree, *rest):
    """``fn`` applied leaf by leaf to ``tree`` (and to the matching leaves of ``rest``).

    >>> tree_map(lambda a, b: a + b, {"x": 1, "y": [2]}, {"x": 10, "y": [20]})
    {'x': 11, 'y': [22]}
    """
    leaves, treedef = flatten(tree)
    others = []
    for i, r in enumerate(rest):
        rl, rdef = flatten(r)
        if rdef != treedef:
            raise ValueError(f"tree_map: tree {i + 1} is {describe(rdef)} but tree 0 is {describe(treedef)}")
        others.append(rl)
    return unflatten(treedef, [fn(*args) for args in zip(leaves, *others)])


def leaf_paths(treedef) -> list:
    """A readable path for each leaf, in flatten's order: ``''``, ``'[0]'``, ``"['W'][1]"``."""
    out = []
    _paths(treedef, "", out)
    return out


def _paths(treedef, prefix, out):
    if treedef is LEAF:
        out.append(prefix)
        return
    kind, keys, children = treedef
    names = keys if keys is not None else range(len(children))
    for k, c in zip(names, children):
        _paths(c, f"{prefix}[{k!r}]", out)


def describe(treedef) -> str:
    """A short description of a structure, for error messages: ``'a leaf'``,
    ``"a dict with keys ['W', 'b']"``, ``'a tuple of 2'``."""
    if treedef is LEAF:
        return "a leaf (one array or number)"
    kind, keys, children = treedef
    if keys is not None:
        return f"a {kind.__name__} with keys {list(keys)}"
    return f"a {kind.__name__} of {len(children)}"
