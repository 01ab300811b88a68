"""Tracing a computation into a Graph of named nodes, with their values, adjoints and tangents."""
from __future__ import annotations

import gc
import inspect
from contextlib import contextmanager
from contextvars import ContextVar
from operator import attrgetter

import numpy as np

from chainrule.core import tensor as _tensor
from chainrule.core.errors import GraphError, ShapeError
from chainrule.core.primitives import unbroadcast
from chainrule.core.registry import Box
from chainrule.core.tensor import Tensor, enable_grad

__all__ = ["trace", "name", "group", "Graph", "Node"]

INPUT, PARAM, CONST, OP = "input", "parameter", "constant", "op"


def name(x, label: str):
    """Give the quantity ``x`` a name for traces, tables and drawings; returns ``x``.

    Values that are not traced (plain arrays, numbers) are returned unchanged, so a function that
    names its intermediate quantities runs the same outside a trace.

    >>> import chainrule as cr
    >>> g = cr.trace(lambda x: cr.name(x * x, "sq") + 1, 3.0)
    >>> float(g["sq"].value)
    9.0
    """
    if not isinstance(label, str) or not label:
        raise TypeError(f"name: the name must be a non-empty str, got {label!r}")
    if isinstance(x, Tensor):
        x.name = label
    return x


# The `group` blocks of the trace being taken in this thread or asyncio task (None outside a
# trace): [name, first creation number, last or None]. A ContextVar, so that traces taken in
# several threads at once keep their groups apart.
_GROUPS: ContextVar = ContextVar("chainrule.trace_groups", default=None)


@contextmanager
def group(label: str):
    """Operations recorded inside this block belong to ``label`` (a layer, say): drawings put
    them in one box. Costs two counter reads per block; nothing on the per-operation path.

    >>> import chainrule as cr
    >>> def f(x):
    ...     with cr.viz.group("layer 1"):
    ...         h = cr.tanh(2 * x)
    ...     return h * h
    >>> [n.name for n in cr.trace(f, 0.5).nodes if n.group == "layer 1"]
    ['v1', 'v2']
    """
    # Creation numbers only grow, so a block owns the operations numbered between its two reads.
    entry = [label, next(_tensor._sequence), None]
    groups = _GROUPS.get()
    if groups is not None:  # outside a trace a group has nothing to label
        groups.append(entry)
    try:
        yield
    finally:
        entry[2] = next(_tensor._sequence)


class Node:
    """One quantity of a traced computation: an input, a parameter, a constant or the result of
    one primitive (``prim``) applied to ``args`` (Nodes) with keyword ``params``."""

    __slots__ = ("index", "name", "kind", "prim", "args", "params", "value", "group", "consumers", "seq",
                 "differentiable", "scalar")

    def __init__(self, kind, value, name=None, prim=None, args=(), params=None, seq=0):
        self.index = -1
        self.kind = kind
        self.value = value
        self.name = name
        self.prim = prim
        self.args = args
        self.params = params or {}
        self.group = None
        self.consumers = []  # (node, argument position) for every use
        self.seq = seq
        # Read for every edge of every pass: computed once here.
        self.differentiable = kind != CONST and _inexact(value)
        self.scalar = _size(value) == 1

    @property
    def op(self) -> str:
        """The primitive's name, or the kind (input, parameter, constant) of a leaf."""
        return self.prim.name if self.prim is not None else self.kind

    @property
    def shape(self) -> tuple:
        return np.shape(self.value)

    def __repr__(self):
        from chainrule.viz.tables import TEXT, fmt_value

        what = TEXT.definition(self) if self.kind == OP else self.kind
        return f"<Node {self.name} = {what} = {fmt_value(self.value)}>"


@contextmanager
def paused_gc():
    """Pause the cyclic garbage collector while a large graph or table is built: every Node is a
    new long-lived object, and each collection would rescan all of them (it more than doubled
    the time for 10,000 nodes). Plain reference counting goes on; the collector resumes after."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _inexact(v) -> bool:
    dt = getattr(v, "dtype", None)
    return dt.kind in "fc" if dt is not None else isinstance(v, (float, complex))


def _size(v) -> int:
    size = getattr(v, "size", None)
    return size if type(size) is int else np.size(v)


def _plain(v):
    """The numpy value of a traced or plain value."""
    while isinstance(v, Box):
        v = v.numpy() if isinstance(v, Tensor) else getattr(v, "primal", v)
    return v


def _arg_names(f, n):
    try:
        params = list(inspect.signature(f).parameters.values())
    except (TypeError, ValueError):
        params = []
    names = []
    for p in params:
        if p.kind == p.VAR_POSITIONAL:
            break
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            names.append(p.name)
    names = names[:n]
    return names + [f"x{i}" for i in range(len(names), n)]


def _leaf(arg, label):
    data = arg.numpy() if isinstance(arg, Tensor) else np.asarray(arg)
    if data.dtype == object:
        raise TypeError(f"trace: argument {label!r} is not numeric ({type(arg).__name__})")
    if data.dtype.kind in "iub" and not isinstance(arg, Tensor):
        # Python and numpy integers are read as real numbers (x=2 means 2.0); integer *arrays*
        # such as labels stay integers and are treated as data, not differentiated.
        data = data.astype(np.float64) if data.ndim == 0 and data.dtype.kind != "b" else data
    floating = np.issubdtype(data.dtype, np.inexact)
    leaf = Tensor(data, requires_grad=floating)
    leaf.name = label
    return leaf


def trace(f, *args, params=None) -> "Graph":
    """Run ``f(*args)`` once and return its computation Graph.

    Each argument becomes an input named after ``f``'s parameter; each primitive application is a
    node named ``v1, v2, ...`` in creation order unless the function named it with
    :func:`name`. Tensors that require a gradient and are not arguments (a model's weights) are
    parameters, named by ``params`` (a mapping or pairs name -> Tensor) or by their ``name``.

    >>> import chainrule as cr
    >>> g = cr.trace(lambda x, z: cr.exp(x * z) + x * z, 2.0, 3.0)
    >>> [n.name for n in g.nodes]
    ['x', 'z', 'v1', 'v2', 'v3', 'v4']
    >>> round(float(g.adjoint("x")), 4)   # z e^{xz} + z
    1213.2864
    """
    labels = _arg_names(f, len(args))
    leaves = [_leaf(a, label) for a, label in zip(args, labels)]
    names = {}
    if params is not None:
        items = params.items() if hasattr(params, "items") else params
        names = {id(p): label for label, p in items}
    opened = []
    token = _GROUPS.set(opened)
    try:
        with enable_grad():
            out = f(*leaves)
        groups = [tuple(g) for g in opened if g[2] is not None]
    finally:
        _GROUPS.reset(token)
    if isinstance(out, (tuple, list)):
        raise TypeError(f"trace: f returned a {type(out).__name__}; trace one output at a time, "
                        "e.g. trace(lambda *a: f(*a)[0], ...)")
    with paused_gc():
        return Graph._from_tensors(out, leaves, groups, names)


class Graph:
    """A traced computation: ``nodes`` in topological order (leaves, then operations in creation
    order), ``inputs`` in argument order and the ``output`` node.

    ``adjoint(name)`` is d(output)/d(quantity) by reverse mode, each edge's chain-rule term kept
    (``terms(name)``); ``tangents(direction)`` is forward mode along an input direction.
    ``forward_table()``, ``backward_table()``, ``tangent_table(...)`` print the whiteboard
    layout in text, Markdown, LaTeX or HTML; ``draw(path)`` writes a Graphviz picture.
    """

    def __init__(self, nodes, output, inputs=(), linked=False):
        self.nodes = list(nodes)
        for i, n in enumerate(self.nodes):
            n.index = i
        self.output = output
        self.inputs = list(inputs)
        if not linked:
            self._link()
        self._by_name = {}
        for n in reversed(self.nodes):
            self._by_name[n.name] = n  # the first node of a repeated name (a constant's value) wins
        self._seed = None
        self._adjoints = None
        self._terms = None

    # -- building ------------------------------------------------------------
    @classmethod
    def _from_tensors(cls, out, leaves, groups=(), names=None):
        if not isinstance(out, Tensor):
            out = Tensor(_plain(out))
        found = {id(out): out}  # every tensor that the output depends on
        stack = [out]
        while stack:
            t = stack.pop()
            if t._prim is None:
                continue
            if t._parents is None:
                raise GraphError(f"trace: the graph through {t._prim.name} was released by a backward() "
                                 "inside the traced function; pass retain_graph=True there")
            for p, version in zip(t._parents, t._versions):
                if version >= 0 and id(p) not in found:
                    found[id(p)] = p
                    stack.append(p)
        ops = sorted([t for t in found.values() if t._prim is not None], key=attrgetter("_seq"))
        inputs = [Node(INPUT, leaf.data, leaf.name) for leaf in leaves]
        by_id = {id(leaf): node for leaf, node in zip(leaves, inputs)}
        params, consts, op_nodes = [], [], []
        const_ids = {}  # id(value) -> Node: one node per constant object

        def leaf(t):  # a Tensor leaf that is not an argument: a parameter or a constant tensor
            label = names.get(id(t), t.name) if names else t.name
            node = by_id[id(t)] = Node(PARAM if t.requires_grad else CONST, _plain(t.data), label)
            (params if t.requires_grad else consts).append(node)
            return node

        # Leaves appear in order of first use, operations in creation order; each node learns its
        # consumers as they are made. Ids are stable: the recorded graph keeps every value alive.
        for t in ops:
            args = []
            for p, saved, version in zip(t._parents, t._saved, t._versions):
                if version < 0:
                    a = const_ids.get(id(saved))
                    if a is None:
                        a = const_ids[id(saved)] = Node(CONST, _plain(saved))
                        consts.append(a)
                else:
                    a = by_id.get(id(p)) or leaf(p)
                args.append(a)
            node = Node(OP, _plain(t.data), t.name, t._prim, tuple(args), t._params, t._seq)
            for i, a in enumerate(args):
                a.consumers.append((node, i))
            by_id[id(t)] = node
            op_nodes.append(node)
        if id(out) not in by_id:  # the output is a leaf that is not an input
            leaf(out)
        graph = cls(inputs + params + consts + op_nodes, by_id[id(out)], inputs, linked=True)
        graph._name_nodes()
        if groups:
            graph._assign_groups(groups)
        return graph

    def _link(self):
        for n in self.nodes:
            n.consumers = []
        for n in self.nodes:
            for i, a in enumerate(n.args):
                a.consumers.append((n, i))

    def _name_nodes(self):
        # Given names are kept (a repeated one gets a suffix); the rest are numbered in creation
        # order, v1, v2, ... for operations, p1, ... for parameters, c1, ... for array constants,
        # skipping numbers a given name already uses. One-element constants show their value.
        taken = {n.name for n in self.nodes if n.name is not None}
        seen = {}
        counters = {INPUT: 0, OP: 0, PARAM: 0, CONST: 0}
        prefix = {INPUT: "x", OP: "v", PARAM: "p", CONST: "c"}
        for n in self.nodes:
            if n.name is not None:
                k = seen[n.name] = seen.get(n.name, 0) + 1
                if k > 1:
                    while f"{n.name}_{k}" in taken:
                        k += 1
                    n.name = f"{n.name}_{k}"
                    taken.add(n.name)
                continue
            if n.kind == CONST and n.scalar:
                n.name = _short(n.value)
                continue
            while True:
                counters[n.kind] += 1
                new = f"{prefix[n.kind]}{counters[n.kind]}"
                if new not in taken:
                    break
            taken.add(new)
            n.name = new
        self._by_name = {}
        for n in reversed(self.nodes):
            self._by_name[n.name] = n

    def _assign_groups(self, groups):
        # Innermost block wins: sort widest first so narrower ones overwrite.
        for label, start, end in sorted(groups, key=lambda g: g[1] - g[2]):
            for n in self.nodes:
                if n.kind == OP and start < n.seq < end:
                    n.group = label

    # -- looking up ----------------------------------------------------------
    def __len__(self):
        return len(self.nodes)

    def __iter__(self):
        return iter(self.nodes)

    def __contains__(self, label):
        return label in self._by_name

    def __getitem__(self, label) -> Node:
        if isinstance(label, Node):
            return label
        try:
            return self._by_name[label]
        except KeyError:
            shown = ", ".join(n.name for n in self.nodes[:20] if n.kind != CONST)
            more = ", ..." if len(self.nodes) > 20 else ""
            raise KeyError(f"graph has no quantity named {label!r}; it has {shown}{more}") from None

    @property
    def value(self):
        """The output's value."""
        return self.output.value

    @property
    def ops(self) -> list:
        return [n for n in self.nodes if n.kind == OP]

    def __repr__(self):
        counts = {k: 0 for k in (INPUT, PARAM, CONST, OP)}
        for n in self.nodes:
            counts[n.kind] += 1
        return (f"<Graph of {len(self.nodes)} nodes: {counts[INPUT]} inputs, {counts[PARAM]} parameters, "
                f"{counts[CONST]} constants, {counts[OP]} operations; output {self.output.name}>")

    # -- reverse mode --------------------------------------------------------
    def backward(self, seed=None):
        """Compute every node's adjoint g_u = d<seed, output>/du by the chain rule, keeping each
        edge's term g_c * dc/du (one vjp rule per edge). ``seed`` defaults to 1 for a one-element
        output. Returns {name: adjoint} of the inputs and parameters."""
        out = self.output
        if seed is None:
            if not out.scalar:
                raise GraphError(f"backward: the output {out.name} has shape {out.shape}; pass seed= "
                                 "(the output's cotangent, same shape) or reduce it to a scalar")
            seed = np.ones_like(np.asarray(out.value, dtype=np.result_type(out.value, np.float64)))
        else:
            seed = np.asarray(seed, dtype=np.result_type(out.value, np.float64))
            if seed.shape != out.shape:
                raise ShapeError(f"backward: seed has shape {seed.shape} but the output {out.name} has shape {out.shape}")
        with paused_gc():
            adj, terms = self._backward(seed)
        self._seed, self._adjoints, self._terms = seed, adj, terms
        return {n.name: adj[n.index] for n in self.nodes if n.kind in (INPUT, PARAM)}

    def _backward(self, seed):
        out = self.output
        adj = [None] * len(self.nodes)
        terms = [[] for _ in self.nodes]
        adj[out.index] = seed
        for node in reversed(self.nodes):
            if node.kind != OP:
                continue
            g = adj[node.index]
            if g is None:
                continue
            prim = node.prim
            vals = [a.value for a in node.args]
            for i, a in enumerate(node.args):
                rule = prim.vjps[i]
                if rule is None or not a.differentiable:
                    continue
                gi = rule(g, node.value, *vals, **node.params)
                if prim.elementwise:
                    gi = unbroadcast(gi, np.shape(a.value))
                terms[a.index].append((node, i, gi))
                prev = adj[a.index]
                adj[a.index] = gi if prev is None else prev + gi
        return adj, terms

    def _ensure_backward(self):
        if self._adjoints is None:
            self.backward()

    def adjoint(self, label):
        """d(output)/d(quantity): the adjoint g_u of one node (zeros if it does not reach the output)."""
        self._ensure_backward()
        n = self[label]
        g = self._adjoints[n.index]
        return np.zeros_like(np.asarray(n.value, dtype=np.float64)) if g is None else g

    grad = adjoint

    def terms(self, label) -> list:
        """The chain-rule terms of a node's adjoint: [(consumer node, argument position, g_c * dc/du)]."""
        self._ensure_backward()
        return list(self._terms[self[label].index])

    # -- forward mode --------------------------------------------------------
    def tangents(self, direction):
        """Forward mode: every node's tangent along ``direction`` ({input name: tangent}, or the
        name of a one-element input for d/d(that input)), each term dc/du * du kept.
        Returns (tangents, terms), lists indexed like ``nodes`` (None: zero)."""
        if isinstance(direction, str):
            n = self[direction]
            if not n.scalar:
                raise ShapeError(f"tangents: {direction} has shape {n.shape}; give a direction of that shape, "
                                 f"e.g. {{{direction!r}: v}}")
            direction = {direction: np.ones_like(np.asarray(n.value, dtype=np.float64))}
        tan = [None] * len(self.nodes)
        terms = [[] for _ in self.nodes]
        for label, v in direction.items():
            n = self[label]
            if n.kind not in (INPUT, PARAM):
                raise ValueError(f"tangents: {label} is a {n.kind}; directions are given for inputs and parameters")
            v = np.asarray(v, dtype=np.result_type(n.value, np.float64))
            if v.shape != n.shape:
                raise ShapeError(f"tangents: the direction for {label} has shape {v.shape}, but {label} has shape {n.shape}")
            tan[n.index] = v
        for node in self.nodes:
            if node.kind != OP:
                continue
            prim = node.prim
            vals = None
            total = None
            for i, a in enumerate(node.args):
                t = tan[a.index]
                if t is None:
                    continue
                rule = prim.jvps[i]
                if rule is None:
                    continue
                if vals is None:
                    vals = [b.value for b in node.args]
                ti = rule(t, node.value, *vals, **node.params)
                if prim.elementwise and np.shape(ti) != node.shape:
                    ti = np.broadcast_to(ti, node.shape)
                terms[node.index].append((a, i, ti))
                total = ti if total is None else total + ti
            tan[node.index] = total
        return tan, terms

    def tangent(self, label, direction):
        """d(quantity) along ``direction`` by forward mode (see :meth:`tangents`)."""
        tan, _ = self.tangents(direction)
        n = self[label]
        t = tan[n.index]
        return np.zeros_like(np.asarray(n.value, dtype=np.float64)) if t is None else t

    # -- views -----------------------------------------------------------------
    def forward_table(self, precision=6):
        """The forward computation, one row per quantity: name = definition = value."""
        from chainrule.viz.tables import forward_table

        return forward_table(self, precision=precision)

    def backward_table(self, seed=None, precision=6):
        """The backward computation: each adjoint with every chain-rule term shown."""
        from chainrule.viz.tables import backward_table

        if seed is not None or self._adjoints is None:
            self.backward(seed)
        return backward_table(self, precision=precision)

    def tangent_table(self, direction, precision=6):
        """Forward mode: each tangent along ``direction``, with its terms."""
        from chainrule.viz.tables import tangent_table

        return tangent_table(self, direction, precision=precision)

    def _tables(self, forward_mode=None, precision=6):
        tables = [self.forward_table(precision)]
        if self.output.scalar or self._adjoints is not None:
            tables.append(self.backward_table(precision=precision))
        if forward_mode is not None:
            tables.append(self.tangent_table(forward_mode, precision))
        return tables

    def explain(self, format="text", forward_mode=None, precision=6) -> str:
        """The forward and backward tables (and the tangent table along ``forward_mode``) as one
        document in ``format``: text, markdown, latex or html (a complete page, styled)."""
        from chainrule.viz.tables import join_tables

        text = join_tables(self._tables(forward_mode, precision), format)
        if format == "html":
            from chainrule.viz.page import html_page

            ins = ", ".join(n.name for n in self.inputs)
            text = html_page(f"Trace of {self.output.name} = f({ins})", text)
        return text

    def _repr_html_(self):
        # Jupyter: the drawing when Graphviz is there, else the tables (a fragment of the page).
        from chainrule.viz.tables import join_tables

        svg = self._repr_svg_()
        if svg is not None:
            return svg[svg.find("<svg"):] if "<svg" in svg else svg
        return join_tables(self._tables(), "html")

    def _repr_svg_(self):
        from chainrule.viz.dot import render_svg_or_none

        return render_svg_or_none(self)

    def to_dot(self, **options) -> str:
        """Graphviz DOT source of the graph (see :func:`chainrule.viz.dot.to_dot`)."""
        from chainrule.viz.dot import to_dot

        return to_dot(self, **options)

    def draw(self, path, format=None, max_nodes=None, **options):
        """Write the drawing to ``path``: .svg, .png or .dot by extension (or ``format``)."""
        from chainrule.viz.dot import draw

        return draw(self, path, format=format, max_nodes=max_nodes, **options)

    def subgraph(self, labels) -> "Graph":
        """The named quantities and the nodes that feed them directly, as a Graph to draw or print.

        Values, adjoints and groups are kept; an operation outside the selection that feeds it
        appears as an input (its value known, its computation cut off).

        >>> import chainrule as cr
        >>> g = cr.trace(lambda x: cr.sin(cr.exp(x)) * 2, 1.0)
        >>> [n.name for n in g.subgraph(["v2"]).nodes]
        ['v1', 'v2']
        """
        keep = {self[label].index for label in labels}
        wanted = set(keep)
        for i in keep:
            wanted.update(a.index for a in self.nodes[i].args)
        clones = {}
        for i in sorted(wanted):
            n = self.nodes[i]
            if i in keep or n.kind != OP:
                c = Node(n.kind, n.value, n.name, n.prim, (), n.params, n.seq)
            else:
                c = Node(INPUT, n.value, n.name)
            c.group = n.group
            clones[i] = c
        for i in keep:
            clones[i].args = tuple(clones[a.index] for a in self.nodes[i].args)
        order = sorted(clones, key=lambda i: (clones[i].kind == OP, i))
        nodes = [clones[i] for i in order]
        out = clones[self.output.index] if self.output.index in clones else clones[max(keep)]
        sub = Graph(nodes, out, [c for c in nodes if c.kind == INPUT])
        if self._adjoints is not None:
            sub._adjoints = [self._adjoints[i] for i in order]
            sub._terms = [[] for _ in nodes]
            sub._seed = self._seed
        return sub


def _short(v) -> str:
    from chainrule.viz.tables import fmt_value

    return fmt_value(v)
