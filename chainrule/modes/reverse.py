"""Reverse mode (backpropagation): walk the recorded graph from the output to the leaves.

The walk is iterative: each node is processed once all the nodes that consume it have passed
their cotangents down (nodes in decreasing creation order), so a chain of a million operations
needs no recursion. Cotangents of a node that feeds several others are summed:
``g_x = sum_k g_{u_k} du_k/dx``.
"""
from __future__ import annotations

from heapq import heappop, heappush

import numpy as np

from chainrule.core.errors import AnomalyError, GraphError
from chainrule.core import primitives as P
from chainrule.core.primitives import add, shape_of, unbroadcast
from chainrule.core.registry import _GRAD_ENABLED, Box, anomaly_enabled
from chainrule.core.tensor import Tensor, _new


def backward(root: Tensor, gradient=None, *, retain_graph=None, create_graph=False):
    """``root.backward()``: accumulate into the ``.grad`` of every leaf that requires one.
    ``retain_graph`` defaults to ``create_graph`` (the recorded backward pass refers to the
    forward graph), as in PyTorch."""
    if retain_graph is None:
        retain_graph = create_graph
    if not root.requires_grad:
        raise GraphError("backward: this tensor does not require a gradient (no input had "
                         "requires_grad=True, or it was computed under no_grad)")
    data = root.data
    if gradient is None:
        if getattr(data, "shape", None) == () and not isinstance(data, Box):
            gradient = data.dtype.type(1)  # d root / d root for the usual scalar loss (immutable)
        else:
            gradient = _seed(data)
    else:
        gradient = gradient.data if isinstance(gradient, Tensor) and not create_graph else gradient
        if not isinstance(gradient, Box):  # a list or a number: an array of the output's dtype
            gradient = np.asarray(gradient, dtype=getattr(data, "dtype", None))
        if shape_of(gradient) != shape_of(data):
            raise GraphError(f"backward: gradient has shape {shape_of(gradient)} but the output has shape {root.shape}")
    _walk_recording(root, gradient, None, retain_graph, create_graph)


def _walk_recording(root, gradient, found, retain_graph, create_graph):
    """Run the walk with gradient recording on exactly when the backward pass is to be recorded."""
    if create_graph and not isinstance(gradient, Tensor):
        gradient = _new(gradient, root._level)
    if not (create_graph or root._level):
        # An eager graph (level 0) saves plain arrays, on which the rules record nothing in any
        # mode: no switch needed (setting a ContextVar costs more than a small graph's rules).
        _walk(root, gradient, found, retain_graph, create_graph)
        return
    # Grad mode is per thread and per asyncio task: this switches recording for this walk alone,
    # never for another thread's forward pass.
    token = _GRAD_ENABLED.set(create_graph)
    try:
        _walk(root, gradient, found, retain_graph, create_graph)
    finally:
        _GRAD_ENABLED.reset(token)


def _seed(data):
    """The cotangent 1 of a one-element output (d out / d out)."""
    shape = shape_of(data)
    if shape != () and int(np.prod(shape)) != 1:
        raise GraphError(f"backward: the output has shape {shape}; pass `gradient=` (its cotangent, "
                         "same shape) or reduce it to a scalar first, e.g. y.sum().backward()")
    return np.ones_like(data)


def grads_of(root: Tensor, gradient, inputs, *, retain_graph=True, create_graph=False):
    """Cotangents of ``inputs`` (leaves of root's level) for the output cotangent ``gradient``,
    returned instead of accumulated (None where an input does not affect root): the reverse-mode
    core of the functional API. With ``create_graph`` they are Tensors that can be
    differentiated again."""
    found = dict.fromkeys(inputs)  # Tensors hash by identity
    if root.requires_grad:
        _walk_recording(root, gradient, found, retain_graph, create_graph)
    return [found[t] for t in inputs]


def _walk(root, gradient, found, retain_graph, create_graph):
    anomaly = anomaly_enabled()
    # A node is made after everything it consumes, so popping nodes in decreasing creation order
    # (a max-heap on `_seq`, unique per node) reaches each one only after all its consumers have
    # sent their cotangents: a reverse topological order in one pass, without recursion.
    # Cotangents are kept per node and per leaf (Tensors hash by identity); each leaf gets its
    # sum once, at the end.
    cots = {}
    leaves = {}
    heap = []
    push, pop, cot_of, leaf_cot_of = heappush, heappop, cots.get, leaves.get
    node, g = root, gradient
    if root._prim is None:  # the output is itself a leaf
        leaves[root] = g
        heap = None
    while heap is not None:
        parents = node._parents
        if parents is None:
            raise GraphError(f"backward: the graph through {node._prim.name} was already released by an earlier "
                             "backward; pass retain_graph=True to the first backward to walk it twice")
        if node._retain:
            _deliver(node, g, None, create_graph)
        prim = node._prim
        params = node._params
        if create_graph:
            args, ans = parents, node
        else:
            args, ans = node._saved, node.data
        broadcasts = prim.broadcasts
        rules = prim.vjps
        if type(rules) is not tuple:
            rules = rules.rules(len(parents))
        for p, version, rule in zip(parents, node._versions, rules):
            if version < 0:
                continue  # a constant
            if p._version != version:  # any saved input, differentiated or not, feeds the rules
                _version_error(node, p)
            if not p.requires_grad:
                continue
            gi = rule(g, ans, *args, **params) if params else rule(g, ans, *args)
            if broadcasts:
                try:
                    shape = p.data.shape
                    same = gi.shape == shape
                except AttributeError:  # a Python number
                    shape = shape_of(p.data)
                    same = shape_of(gi) == shape
                if not same:
                    gi = unbroadcast(gi, shape)
            if anomaly:
                _check_cotangent(node, p, gi)
            if p._prim is None:
                prev = leaf_cot_of(p)
                leaves[p] = gi if prev is None else add(prev, gi)
            else:
                prev = cot_of(p)
                if prev is None:
                    cots[p] = gi
                    push(heap, (-p._seq, p))
                else:
                    cots[p] = add(prev, gi)
        if not retain_graph:
            node._parents = None  # release the saved inputs; the node stays a (spent) graph node
            node._saved = None
        if not heap:
            break
        node = pop(heap)[1]
        g = cots.pop(node)
    if found is not None or create_graph:
        for leaf, g in leaves.items():
            _deliver(leaf, g, found, create_graph)
        return
    for leaf, g in leaves.items():  # backward(): _deliver's last lines, written out for each leaf
        level = leaf._level
        if type(g) is Tensor and g._level == level:
            g = g.data
        if not _same_dtype(g, leaf):
            g = _leaf_dtype(g, leaf)
        grad = leaf.grad
        leaf.grad = _new(g if grad is None else grad.data + g, level)


def _deliver(leaf, g, found, create_graph):
    if found is not None:
        if leaf in found:
            found[leaf] = g  # each leaf is delivered once, with the sum of its cotangents
        return
    level = leaf._level
    if not _same_dtype(g, leaf):
        g = _leaf_dtype(g, leaf)
    if create_graph:
        if not isinstance(g, Tensor):
            g = _new(g, level)
        leaf.grad = g if leaf.grad is None else leaf.grad + g
        return
    if isinstance(g, Tensor) and g._level == level:
        g = g.data
    leaf.grad = _new(g if leaf.grad is None else leaf.grad.data + g, level)


def _same_dtype(g, leaf):
    """Whether the cotangent already has the leaf's dtype (numpy's dtypes of one kind are one
    object, so `is` settles the common case; a Python number has none)."""
    try:
        return g.dtype is leaf.data.dtype or g.dtype == leaf.data.dtype
    except AttributeError:
        return False


def _leaf_dtype(g, leaf):
    """The cotangent ``g`` in the dtype of the tensor it is delivered to, as PyTorch does: a
    float32 leaf that met a float64 array or numpy scalar (``x * np.log(2.0)``) still gets a
    float32 ``.grad``. A complex cotangent of a real tensor gives its real part (the gradient of
    a real function of real inputs; HIPS autograd's convention)."""
    dtype = getattr(leaf.data, "dtype", None)
    if dtype is None or getattr(g, "dtype", None) is None:
        return g
    if isinstance(g, Box):  # a recorded backward (create_graph) or a nested transformation
        return P.astype(g, dtype=dtype)
    if g.dtype.kind == "c" and dtype.kind != "c":
        g = g.real
    return g.astype(dtype)


def _index_of(node, p):
    return next(i for i, q in enumerate(node._parents) if q is p)


def _version_error(node, p):
    i = _index_of(node, p)
    raise GraphError(
        f"backward: input {i} of {node._prim.name} (shape {p.shape}) was changed in place after the "
        f"operation saved it (version {node._versions[i]} -> {p._version}); its gradient would be wrong. "
        "Compute with a copy, or change it only after backward")


def _check_cotangent(node, p, g):
    i = _index_of(node, p)
    data = g.numpy() if isinstance(g, Tensor) else np.asarray(g)
    if not np.all(np.isfinite(data)):
        raise AnomalyError(f"backward: the cotangent that {node._prim.name} sends to its input {i} "
                           "became non-finite (NaN or inf); "
                           f"the operation was built at {node._where or '<anomaly mode was off when it was built>'}")
