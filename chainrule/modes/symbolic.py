"""Symbolic differentiation with SymPy, by two routes: a CAS's naive tree and reverse mode's shared graph.

A function is traced through the registry's primitives on :class:`SymbolicValue` boxes, one per
parameter, which builds its graph: each node is one primitive applied to earlier nodes (equal
nodes are made once, so a repeated subexpression such as ``x*z`` is one node) and carries its
SymPy expression, built by the primitive's ``sym`` form. The derivative then takes one of the two
routes the lecture contrasts:

* ``naive``: the rules applied recursively down the expression *tree*, as a computer algebra
  system does: ``d(u v) = du v + u dv`` with ``u`` and ``v`` written out in full wherever they
  occur. A subexpression used k times is differentiated k times, and the result, counted as a
  tree, grows much faster than the function (quadratically for a chain of n functions or a
  product of n factors, exponentially when subexpressions are reused at every level).
* ``shared``: the registry's reverse rules (``vjps``) run on symbolic values over the graph,
  each node once, intermediate values kept as shared nodes: the size of the result, counted as
  a graph (distinct operations), is linear in the size of the function. This is reverse-mode
  automatic differentiation, written out.

Both give the same derivative; only its size differs. SymPy is an optional dependency
(``pip install "chainrule[symbolic]"``), imported when first needed.

The graph is chainrule's own (nodes made once each, iteratively), and the compiled derivative
evaluates it node by node, so the work is bounded by the graph's size. SymPy expressions are
built on demand, for the text, the LaTeX and ``expressions``, and only up to
:data:`SYMPY_LIMIT` operations written out as a tree: every SymPy traversal (printing, lambdify,
cse) walks the tree, which can be exponentially larger than the graph (``tanh`` nested 50
deep is 199 operations as a graph and 10^17 as a tree).
"""
from __future__ import annotations

import contextlib
import functools
import inspect
import itertools
from collections.abc import Mapping
from heapq import heappop, heappush

import numpy as np

from chainrule.core import primitives as P
from chainrule.core.errors import ChainruleError, ConcretizationError
from chainrule.core.ops import ArrayOperators
from chainrule.core.registry import Box, new_level

__all__ = ["SymbolicDerivative", "SymbolicError", "SymbolicTooLarge", "SymbolicValue", "derivative", "expression", "MAX_TREE",
           "PRINT_LIMIT", "SYMPY_LIMIT"]

# The naive route visits every path of the graph once per variable; beyond this many operations
# as a tree (times the variables) it is refused rather than left to run for hours.
MAX_TREE = 30_000
# Derivatives longer than this many operations written out are not printed (str, to_dict).
PRINT_LIMIT = 2_000
# SymPy expressions are built only while the work stays under this many operations: the tree
# sizes of all the nodes SymPy builds, added up. SymPy's constructors and printers walk trees,
# and flatten as they go (a sum of n terms is rebuilt n times: n^2/2), about 10 us each.
SYMPY_LIMIT = 10_000

# Reverse rules that need array shapes (transposes, scatters): on the scalars of symbolic mode the
# Jacobian is 1 x 1, so the forward rule with the cotangent in place of the tangent is the same.
_SCALAR_RULE_FROM_JVP = frozenset({"matmul", "linear", "getitem", "stack", "concatenate", "cumsum", "cumprod",
                                   "prod", "einsum"})


class SymbolicError(ChainruleError, ValueError):
    """A function that cannot be traced symbolically (arrays, primitives without a symbolic form)."""


class SymbolicTooLarge(SymbolicError):
    """A derivative that the chosen route would take too long to build: ``size`` operations, over ``limit``."""

    def __init__(self, message, size, limit):
        super().__init__(message)
        self.size, self.limit = size, limit


def _sympy():
    try:
        import sympy
    except ImportError:  # pragma: no cover - sympy is installed with the dev extras
        raise ImportError('symbolic differentiation needs SymPy: pip install "chainrule[symbolic]"') from None
    return sympy


# ---------------------------------------------------------------- the graph of symbolic values


def _is_object_array(a):
    return type(a) is np.ndarray and a.dtype == object


def _as_object(a, ndmin=0):
    """A symbolic number as an object array of one entry with ``ndmin`` axes (numpy then computes
    with it entry by entry); other values as they are."""
    if isinstance(a, SymbolicValue):
        o = np.empty((1,) * ndmin, dtype=object)
        o[(0,) * ndmin] = a
        return o
    return a


def _as_array(out):
    """A result of numpy's object arithmetic: a symbolic number stays one, an array of them an
    object array (a 0-d one unwrapped)."""
    if _is_object_array(out) and out.ndim == 0:
        return out[()]
    return out


class SymbolicValue(Box, ArrayOperators):
    """A node of a symbolic graph: a parameter, a constant, or a primitive applied to nodes.

    ``expr`` is its SymPy expression (built on first use). Arithmetic on it records new nodes,
    like a Tensor's.
    """

    __slots__ = ("_expr", "prim", "args", "params", "const", "name", "_level", "_graph", "_seq")
    shape = ()
    ndim = 0
    size = 1
    dtype = np.dtype(np.float64)  # what the rules ask of a scalar value

    def _bind(self, prim, args, params):
        shape = params.get("shape")
        if shape is not None and int(np.prod([abs(n) for n in np.atleast_1d(shape)])) != 1:  # -1: "the rest"
            # The symbolic forms of the shape primitives are those of numbers: an array here
            # would be differentiated as one number, wrongly.
            raise SymbolicError(f"symbolic: {prim.name} to shape {tuple(shape)}: symbolic differentiation works on "
                                "functions of numbers (scalars), not arrays")
        if (prim.name in ("stack", "concatenate") and len(args) > 1) or any(_is_object_array(a) for a in args):
            # Several numbers joined into an array, and what is computed from it: an array whose
            # entries are the symbolic numbers (numpy's object arrays), so that numpy applies each
            # operation entry by entry and every entry stays a node of this graph (a sum of the
            # entries is the nodes' additions). Nothing array-shaped ever becomes a node.
            try:
                # a number reshaped to (1,) is still a number here: concatenate joins one-entry pieces
                ndmin = 1 if prim.name == "concatenate" else 0
                return _as_array(prim.impl(*[_as_object(a, ndmin) for a in args], **params))
            except (TypeError, ValueError, AttributeError) as err:
                raise SymbolicError(f"symbolic: {prim.name} on an array of symbolic numbers is not supported ({err}); "
                                    "write it with numbers (x * y + ...) or use another method") from None
        graph = self._graph
        level = self._level
        nodes = []
        for a in args:
            if isinstance(a, SymbolicValue) and a._level == level:
                nodes.append(a)
            elif isinstance(a, Box):
                raise SymbolicError(f"symbolic: {prim.name} mixes a symbolic value with a {type(a).__name__} of "
                                    "another transformation; symbolic tracing works on plain functions")
            else:
                nodes.append(graph.constant(a))
        return graph.apply(prim, nodes, params)

    @property
    def is_leaf(self):
        return self.prim is None

    @property
    def expr(self):
        """The SymPy expression of this node, built bottom-up over the nodes that lack one
        (iteratively; SymbolicError beyond SYMPY_LIMIT operations written out)."""
        if self._expr is None:
            _build_sympy(self, SYMPY_LIMIT)
        return self._expr

    def __repr__(self):
        return f"SymbolicValue({self.expr if tree_size(self) <= PRINT_LIMIT else '...'})"


    # float(), bool(), np.asarray(), ... refuse (ArrayOperators): a symbolic value has no number.
    def __bool__(self):
        raise _SymbolicConcretization("symbolic: the truth value of a symbolic value is unknown; branch with cr.where "
                            "instead of `if`")

    def __float__(self):
        raise _SymbolicConcretization("symbolic: a symbolic value has no float value; keep it symbolic "
                            "(use chainrule operations, not float() or numpy functions)")


class _SymbolicConcretization(SymbolicError, ConcretizationError):
    """A symbolic value asked for a number (both kinds of error: symbolic, and a conversion)."""


class _Graph:
    """One trace: its level, its nodes (made once each), and the constants and parameters."""

    def __init__(self, sp):
        self.sp = sp
        self.level = new_level()
        self.interned = {}
        self.seq = itertools.count()

    def _node(self, expr, prim=None, args=(), params=None, const=None, name=None):
        node = SymbolicValue.__new__(SymbolicValue)
        node._expr, node.prim, node.args, node.params = expr, prim, tuple(args), params or {}
        node.const, node.name = const, name
        node._level, node._graph, node._seq = self.level, self, next(self.seq)
        return node

    def symbol(self, name):
        return self._node(self.sp.Symbol(name, real=True), name=name)

    def constant(self, value):
        if isinstance(value, np.ndarray):
            if value.shape != ():
                raise SymbolicError(f"symbolic: a constant of shape {value.shape} appears in the function; symbolic "
                                    "differentiation works on functions of numbers (scalars)")
            value = value.item()
        elif isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, bool):
            key = ("const", "bool", value)
        elif isinstance(value, (int, float)):
            value = float(value)
            key = ("const", value)
        else:
            raise SymbolicError(f"symbolic: cannot use a {type(value).__name__} as a constant; "
                                "pass numbers, or the function's own parameters")
        node = self.interned.get(key)
        if node is None:
            sp = self.sp
            expr = sp.true if value is True else sp.false if value is False else (
                sp.Integer(int(value)) if value.is_integer() else sp.Float(value))
            node = self.interned[key] = self._node(expr, const=value)
        return node

    def apply(self, prim, args, params):
        simpler = _simplify(self, prim, args)
        if simpler is not None:
            return simpler
        if all(a.const is not None for a in args):  # fold constants, as a CAS does
            value = np.asarray(prim.impl(*[a.const for a in args], **params))
            return self.constant(value.reshape(()) if value.size == 1 else value)  # (1, 1) is one number here
        try:
            key = (prim.name, tuple(map(id, args)), tuple(sorted(params.items())))
            hash(key)
        except TypeError:  # unhashable parameters (index arrays): not shared, still correct
            key = None
        node = self.interned.get(key) if key is not None else None
        if node is None:
            if prim.sym is None:
                raise SymbolicError(f"symbolic: {prim.name} has no symbolic form; the primitives that have one: "
                                    f"{', '.join(_with_sym())}")
            node = self._node(None, prim, args, params)  # its SymPy expression is built on demand
            if key is not None:
                self.interned[key] = node
        return node


def _build_sympy(root, budget):
    """Build the SymPy expressions of ``root`` and the nodes under it that lack one, bottom-up;
    returns the work done (see SYMPY_LIMIT), or raises SymbolicTooLarge if it would exceed ``budget``."""
    order = [n for n in _topological(root) if n._expr is None]
    sizes = _tree_sizes([root])
    work = sum(sizes[id(n)] for n in order)
    if work > budget:
        raise SymbolicTooLarge(f"symbolic: the expression has {sizes[id(root)]} operations written out as a "
                               f"tree; SymPy would build {work} (limit {budget}): use its graph or the compiled "
                               "function", work, budget)
    sp = root._graph.sp
    try:
        for node in order:
            node._expr = _sym(sp, node.prim, node.args, node.params)
    except RecursionError:  # SymPy's constructors recurse through deeply nested arguments
        raise SymbolicError("symbolic: the expression is nested too deeply for SymPy") from None
    return work


def _with_sym():
    from chainrule.core.registry import REGISTRY

    return sorted(n for n, p in REGISTRY.items() if p.sym is not None)


def _sym(sp, prim, args, params):
    # numpy counts True as 1 and reads a number as a condition where it is not 0; SymPy keeps
    # booleans and numbers apart, so each is converted where the other is expected.
    # (Not sympy's Boolean class: a Symbol is one too.)
    boolean = (sp.core.relational.Relational, sp.logic.boolalg.BooleanAtom, sp.logic.boolalg.BooleanFunction)
    exprs = []
    for i, a in enumerate(args):
        e = a.expr
        if prim.name == "where" and i == 0:
            e = e if isinstance(e, boolean) else sp.Ne(e, 0)
        elif isinstance(e, boolean):
            e = sp.Piecewise((sp.Integer(1), e), (sp.Integer(0), True))
        exprs.append(e)
    return prim.sym(sp, *exprs, **params)


def _simplify(graph, prim, args):
    """The identities every CAS applies as it builds: x*1, x*0, x+0, x-0, x/1, x**1, --c."""
    name = prim.name
    if name not in ("multiply", "add", "subtract", "divide", "power", "negative"):
        return None
    c = [a.const if a.const is not None and not isinstance(a.const, bool) else None for a in args]
    if name == "multiply":
        for i in (0, 1):
            if c[i] == 0:
                return graph.constant(0.0)
            if c[i] == 1:
                return args[1 - i]
    elif name == "add":
        for i in (0, 1):
            if c[i] == 0:
                return args[1 - i]
    elif name == "subtract":
        if c[1] == 0:
            return args[0]
        if c[0] == 0:
            return P.negative(args[1])
    elif name == "divide":
        if c[1] == 1:
            return args[0]
        if c[0] == 0:
            return graph.constant(0.0)
    elif name == "power":
        if c[1] == 1:
            return args[0]
        if c[1] == 0:
            return graph.constant(1.0)
    return None


# ---------------------------------------------------------------- tracing


def _parameters(f, what):
    try:
        sig = inspect.signature(f)
    except (TypeError, ValueError):
        raise SymbolicError(f"symbolic.{what}: cannot read the parameters of {f!r}; pass a Python function") from None
    names = []
    for p in sig.parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            raise SymbolicError(f"symbolic.{what}: {getattr(f, '__name__', 'f')} takes *{p.name}; symbolic "
                                "differentiation needs named parameters, one per variable, e.g. def f(x, z)")
        if p.default is p.empty and p.kind != p.KEYWORD_ONLY:
            names.append(p.name)
    if not names:
        raise SymbolicError(f"symbolic.{what}: {getattr(f, '__name__', 'f')} has no parameters without a default "
                            "value to become symbols")
    return names


def _trace(f, what):
    sp = _sympy()
    names = _parameters(f, what)
    graph = _Graph(sp)
    inputs = [graph.symbol(n) for n in names]
    try:
        out = f(*inputs)
    except (SymbolicError, ImportError, ConcretizationError):
        raise
    except (TypeError, AttributeError, ValueError) as err:
        raise SymbolicError(f"symbolic.{what}: tracing {getattr(f, '__name__', 'f')} on symbols failed ({err}); "
                            "write it with chainrule operations (cr.exp, +, *, ...) on numbers") from err
    if not isinstance(out, SymbolicValue):
        if isinstance(out, Box):
            raise SymbolicError(f"symbolic.{what}: the function returned a {type(out).__name__}, not a symbolic value")
        if _is_object_array(out):
            raise SymbolicError(f"symbolic.{what}: the function returned an array of shape {out.shape}; symbolic "
                                "differentiation needs one number (return cr.sum(...) or one entry)")
        out = graph.constant(out)
    return graph, names, inputs, out


def expression(f):
    """The SymPy expression of ``f``, traced through chainrule's primitives, with one real symbol
    per parameter without a default value (named after it).

    >>> import chainrule as cr
    >>> expression(lambda x, z: cr.exp(x * z) + cr.sin(x))
    exp(x*z) + sin(x)
    """
    return _trace(f, "expression")[3].expr


# ---------------------------------------------------------------- the two routes


def _topological(root):
    """Nodes reachable from root, each once, in creation order (arguments before their users)."""
    return _topological_all([root])


def _topological_all(roots):
    seen, stack, out = set(), list(roots), []
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        out.append(node)
        stack.extend(node.args)
    out.sort(key=lambda n: n._seq)
    return out


def _shared(graph, root, wrt):
    """Reverse mode over the graph with the registry's vjps on symbolic values: each node once."""
    order = _topological(root)
    depends = {id(w) for w in wrt}
    for node in order:
        if node.prim is not None and node.prim.differentiable and any(id(a) in depends for a in node.args):
            depends.add(id(node))
    found = {id(w): None for w in wrt}
    if id(root) not in depends:
        return [None] * len(wrt)
    cots = {id(root): graph.constant(1.0)}
    heap = [(-root._seq, id(root), root)]
    while heap:
        node = heappop(heap)[2]
        g = cots.pop(id(node))
        if node.prim is None:
            found[id(node)] = g
            continue
        prim = node.prim
        scalar_jvp = prim.name in _SCALAR_RULE_FROM_JVP
        for i, a in enumerate(node.args):
            if id(a) not in depends:
                continue
            rule = (prim.jvps if scalar_jvp else prim.vjps)[i]
            if rule is None:
                continue
            gi = rule(g, node, *node.args, **node.params)
            gi = gi if isinstance(gi, SymbolicValue) else graph.constant(gi)
            k = id(a)
            if k in cots:
                cots[k] = P.add(cots[k], gi)
            else:
                cots[k] = gi
                heappush(heap, (-a._seq, k, a))
    return [found[id(w)] for w in wrt]


def _naive(graph, root, var):
    """Forward rules (jvps) applied down the expression tree without remembering anything, as a
    computer algebra system differentiates: a node reached along k paths is differentiated k
    times. Iterative, so a deep expression cannot hit the recursion limit."""
    stack = [(root, False)]
    results = []  # derivative of each finished subtree; None is zero
    while stack:
        node, ready = stack.pop()
        if node.prim is None:
            results.append(graph.constant(1.0) if node is var else None)
            continue
        if not ready:
            stack.append((node, True))
            stack.extend((a, False) for a in reversed(node.args))
            continue
        n = len(node.args)
        tangents = results[len(results) - n:]
        del results[len(results) - n:]
        total = None
        if node.prim.differentiable:
            for i, t in enumerate(tangents):
                rule = node.prim.jvps[i]
                if t is None or rule is None:
                    continue
                term = rule(t, node, *node.args, **node.params)
                term = term if isinstance(term, SymbolicValue) else graph.constant(term)
                total = term if total is None else P.add(total, term)
        results.append(total)
    return results[0]


def tree_size(node):
    """Operations in ``node`` written out as a tree: a shared subexpression counts every time."""
    return _tree_sizes([node])[id(node)]


def _tree_sizes(roots):
    """{id(node): tree size} for every node reachable from ``roots``, in one pass."""
    sizes = {}
    for n in _topological_all(roots):
        sizes[id(n)] = 0 if n.prim is None else 1 + sum(sizes[id(a)] for a in n.args)
    return sizes


def dag_size(*nodes):
    """Distinct operations reachable from ``nodes``: their size as a graph, shared parts once."""
    seen, stack, count = set(), list(nodes), 0
    while stack:
        n = stack.pop()
        if id(n) in seen:
            continue
        seen.add(id(n))
        if n.prim is not None:
            count += 1
            stack.extend(n.args)
    return count


# ---------------------------------------------------------------- the result


class SymbolicDerivative(Mapping):
    """Partial derivatives of a function as SymPy expressions, with their sizes and a compiled
    numpy function. As a mapping it is ``expressions``: ``d["x"]`` is the derivative by x.

    ``expressions``, ``text``, ``latex``, ``size``: dicts from each variable of ``wrt`` to its
    derivative's SymPy expression, printed form, LaTeX, and size in operations (as a tree for the
    naive route, as a graph for the shared one; ``tree_size`` and ``dag_size`` hold both).
    ``function(*values)`` evaluates the derivatives (a tuple in the order of ``wrt``) at values
    of all the parameters ``variables``, each operation of the graph once; ``function_size`` is
    the size of the function itself. Expressions, text and LaTeX are made on first use, and only
    up to :data:`SYMPY_LIMIT` operations written out (SymbolicError beyond): written out as a
    tree, an expression can be exponentially larger than its graph (see ``tree_size``).
    """

    def __init__(self, method, variables, wrt, nodes, function_node, symbols):
        self.method = method
        self.variables = tuple(variables)
        self.wrt = tuple(wrt)
        self._nodes = dict(zip(wrt, nodes))
        self._function_node = function_node
        sizes = _tree_sizes(nodes)
        self.tree_size = {n: sizes[id(node)] for n, node in zip(wrt, nodes)}
        self.dag_size = {n: dag_size(node) for n, node in zip(wrt, nodes)}
        self.size = self.tree_size if method == "naive" else self.dag_size
        # All derivatives together, shared parts once (the cost of evaluating the gradient).
        self.total_size = sum(self.tree_size.values()) if method == "naive" else dag_size(*nodes)
        self.function_size = {"tree": tree_size(function_node), "dag": dag_size(function_node)}
        self._symbols = symbols  # the parameters' nodes, in order

    @functools.cached_property
    def expressions(self):
        return {n: node.expr for n, node in self._nodes.items()}

    @functools.cached_property
    def function_expression(self):
        return self._function_node.expr

    def __getitem__(self, name):
        return self._nodes[name].expr

    def __iter__(self):
        return iter(self.wrt)

    def __len__(self):
        return len(self.wrt)

    def _printed(self, show):
        # One budget for all the derivatives together: n partial derivatives of n operations
        # each would otherwise cost SymPy n^2.
        out, budget, work = {}, PRINT_LIMIT, SYMPY_LIMIT
        for n, node in self._nodes.items():
            out[n] = None
            if self.tree_size[n] > budget or work <= 0:
                continue
            budget -= self.tree_size[n]
            # SymPy's printers recurse once per level of nesting: a deep one is not printed.
            with contextlib.suppress(RecursionError, SymbolicError):
                if node._expr is None:
                    work -= _build_sympy(node, work)
                out[n] = show(node._expr)
        return out

    @functools.cached_property
    def text(self):
        """Each derivative printed by SymPy, in the order of ``wrt`` while they fit in PRINT_LIMIT
        operations together; None for the rest and for any too deeply nested for SymPy."""
        return self._printed(str)

    @functools.cached_property
    def latex(self):
        return self._printed(_sympy().latex)

    @functools.cached_property
    def function(self):
        # The derivative's own graph, each operation once in creation order (arguments first):
        # what SymPy's lambdify with common subexpressions would compile, without writing out
        # the tree that it walks first.
        order = _topological_all(list(self._nodes.values()))
        outputs = [id(self._nodes[n]) for n in self.wrt]
        index = {id(node): i for i, node in enumerate(self._symbols)}
        variables = self.variables

        def function(*values):
            vals = [np.asarray(v, dtype=np.float64) for v in values]
            if len(vals) != len(variables):
                raise TypeError(f"the derivative takes {len(variables)} values ({', '.join(variables)}), "
                                f"got {len(vals)}")
            shape = np.broadcast_shapes(*[v.shape for v in vals])
            results = {}
            for node in order:
                if node.prim is not None:
                    args = [results[id(a)] for a in node.args]
                    # Symbolic values are numbers: the shape primitives (reshape, sum, matmul, ...)
                    # act as their symbolic forms say, which use no SymPy (hence None for it).
                    prim = node.prim
                    out = prim.impl(*args, **node.params) if prim.elementwise else prim.sym(None, *args, **node.params)
                elif node.const is not None:
                    out = np.asarray(node.const)
                else:
                    out = vals[index[id(node)]]
                results[id(node)] = out
            return tuple(np.broadcast_to(np.asarray(results[k], dtype=np.float64), shape)[()] for k in outputs)

        function.__name__ = "d_" + "_".join(self.wrt)
        function.__doc__ = f"Partial derivatives d/d({', '.join(self.wrt)}) at values of ({', '.join(variables)})."
        return function

    def printable(self, name, limit=None):
        """Whether the derivative by ``name`` is short enough to print (its tree size <= limit)."""
        return self.tree_size[name] <= (PRINT_LIMIT if limit is None else limit)

    def __repr__(self):
        return f"<SymbolicDerivative {self.method} d/d({', '.join(self.wrt)}), sizes {self.size}>"

    def __str__(self):
        kind = "as a tree" if self.method == "naive" else "as a graph"
        lines = []
        for n in self.wrt:
            shown = self.text[n] or f"<{self.tree_size[n]} operations written out>"
            lines.append(f"df/d{n} = {shown}    [{self.size[n]} operations {kind}]")
        return "\n".join(lines)

    def _repr_html_(self):
        """Jupyter: one row per variable, its derivative (or its size when too long) and size."""
        from chainrule.viz.page import html_table

        kind = "as a tree" if self.method == "naive" else "as a graph"
        rows = [[f"df/d{n}", self.text[n] if self.printable(n) else f"<{self.tree_size[n]} operations written out>",
                 str(self.size[n])] for n in self.wrt]
        return html_table(["derivative", "expression", f"operations {kind}"], rows,
                          caption=f"Symbolic derivatives ({self.method} route)", numeric=(2,))

    def to_dict(self):
        """Plain data for JSON: per variable, the text and LaTeX (None when too long to print) and sizes."""
        return {"method": self.method, "variables": list(self.variables),
                "derivatives": {n: {"text": self.text[n], "latex": self.latex[n],
                                    "size": self.size[n], "tree_size": self.tree_size[n],
                                    "dag_size": self.dag_size[n]}
                                for n in self.wrt},
                "total_size": self.total_size, "function_size": self.function_size}


def derivative(f, wrt=None, method="shared"):
    r"""The partial derivatives of ``f`` as SymPy expressions, by the ``"shared"`` route (reverse
    mode on symbolic values, a graph linear in the size of f) or the ``"naive"`` one (a CAS's
    recursive rules on the expression tree); see the module docstring. The result, a
    :class:`SymbolicDerivative`, maps each name to its derivative and holds text, LaTeX, sizes
    and a compiled function.

    ``wrt`` names the parameters to differentiate by (a name or a sequence; default: all
    parameters without a default value, which become real symbols).

    >>> import chainrule as cr
    >>> d = derivative(lambda x, z: cr.exp(x * z) + cr.sin(x), wrt="x")
    >>> d.expressions["x"]
    z*exp(x*z) + cos(x)
    >>> [round(float(v), 6) for v in d.function(0.0, 2.0)]
    [3.0]
    """
    if method not in ("shared", "naive"):
        raise ValueError(f"symbolic.derivative: unknown method {method!r}; choose 'shared' or 'naive'")
    graph, names, inputs, out = _trace(f, "derivative")
    if wrt is None:
        wrt = tuple(names)
    elif isinstance(wrt, str):
        wrt = (wrt,)
    else:
        wrt = tuple(wrt)
    unknown = [w for w in wrt if w not in names]
    if unknown:
        raise SymbolicError(f"symbolic.derivative: {', '.join(map(repr, unknown))} "
                            f"{'is not a parameter' if len(unknown) == 1 else 'are not parameters'} "
                            f"of {getattr(f, '__name__', 'f')}; its parameters: {', '.join(names)}")
    if len(set(wrt)) != len(wrt):
        raise SymbolicError(f"symbolic.derivative: wrt names a variable twice: {wrt}")
    symbols = {n: node for n, node in zip(names, inputs)}
    if method == "shared":
        nodes = _shared(graph, out, [symbols[w] for w in wrt])
    else:
        size = tree_size(out) * len(wrt)
        if size > MAX_TREE:
            raise SymbolicTooLarge(f"symbolic.derivative: written out as a tree the function has {tree_size(out)} "
                                   f"operations, to differentiate by {len(wrt)} variable(s): {size} (limit "
                                   f"{MAX_TREE}); the naive route would differentiate each of them: use method='shared'",
                                   size, MAX_TREE)
        nodes = [_naive(graph, out, symbols[w]) for w in wrt]
    nodes = [n if n is not None else graph.constant(0.0) for n in nodes]
    return SymbolicDerivative(method, names, wrt, nodes, out, [symbols[n] for n in names])
