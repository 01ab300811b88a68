"""Cost accounting: what a function's forward pass records, and what each method of differentiation costs."""
from __future__ import annotations

from collections import Counter

import numpy as np

from chainrule.core import tensor as _tensor
from chainrule.core.primitives import unbroadcast
from chainrule.core.tensor import Tensor, enable_grad
from chainrule.viz.tables import Table, fmt_value
from chainrule.viz.trace import CONST, OP, trace

__all__ = ["cost", "Cost"]


def _nbytes(v) -> int:
    return int(getattr(v, "nbytes", 8))


def _count_ops(run) -> int:
    """Primitive operations that ``run()`` applies to recorded Tensors: each one takes exactly one
    creation number, so the count is the difference of two counter reads."""
    before = next(_tensor._sequence)
    with enable_grad():
        run()
    return next(_tensor._sequence) - before - 1


def _boxed(graph):
    # Every value as a Tensor that requires a gradient, so that every rule operation is recorded.
    return [Tensor(np.asarray(n.value, dtype=np.float64) if n.differentiable else n.value,
                   requires_grad=n.differentiable) if n.kind != CONST else n.value for n in graph.nodes]


def _reverse_ops(graph) -> int:
    """Operations of one backward pass over ``graph`` (the vjp rules, unbroadcasting, the sums)."""
    vals = _boxed(graph)
    out = graph.output

    def run():
        adj = [None] * len(graph.nodes)
        adj[out.index] = Tensor(np.ones(out.shape), requires_grad=True)
        for node in reversed(graph.nodes):
            g = adj[node.index]
            if node.kind != OP or g is None:
                continue
            args = [vals[a.index] for a in node.args]
            for i, a in enumerate(node.args):
                rule = node.prim.vjps[i]
                if rule is None or not a.differentiable:
                    continue
                gi = rule(g, vals[node.index], *args, **node.params)
                if node.prim.elementwise:
                    gi = unbroadcast(gi, a.shape)
                adj[a.index] = gi if adj[a.index] is None else adj[a.index] + gi

    return _count_ops(run)


def _tangent_ops(graph) -> int:
    """Operations of the tangent rules in one forward-mode pass along one direction (all inputs)."""
    vals = _boxed(graph)

    def run():
        tan = [None] * len(graph.nodes)
        for n in graph.inputs:
            if n.differentiable:
                tan[n.index] = Tensor(np.ones(n.shape), requires_grad=True)
        for node in graph.nodes:
            if node.kind != OP:
                continue
            args = [vals[a.index] for a in node.args]
            total = None
            for i, a in enumerate(node.args):
                t = tan[a.index]
                rule = node.prim.jvps[i]
                if t is None or rule is None:
                    continue
                ti = rule(t, vals[node.index], *args, **node.params)
                total = ti if total is None else total + ti
            tan[node.index] = total

    return _count_ops(run)


class Cost:
    """What differentiating a function costs; see :func:`cost`. ``str()`` prints the report,
    ``table()`` gives the per-method table in any format, ``to_dict()`` the numbers."""

    def __init__(self, graph):
        self.graph = graph
        ops = graph.ops
        self.ops = len(ops)
        self.op_counts = dict(Counter(n.op for n in ops).most_common())
        saved = {}
        for n in ops:  # each recorded operation keeps its arguments and its output for the rules
            for v in [a.value for a in n.args] + [n.value]:
                saved[id(v)] = v
        self.saved_arrays = len(saved)
        self.saved_bytes = sum(_nbytes(v) for v in saved.values())
        self.n_inputs = int(sum(np.size(n.value) for n in graph.inputs if n.differentiable))
        self.n_outputs = int(np.size(graph.output.value))
        self.backward_ops = _reverse_ops(graph)
        self.tangent_ops = _tangent_ops(graph)

    def methods(self) -> list:
        """Per method: passes and primitive operations for one gradient row and for the Jacobian."""
        n, m, F = self.n_inputs, self.n_outputs, self.ops
        B, T = self.backward_ops, self.tangent_ops
        return [
            {"method": "finite differences (forward)", "unit": "evaluations of f",
             "gradient_passes": n + 1, "jacobian_passes": n + 1,
             "gradient_ops": (n + 1) * F, "jacobian_ops": (n + 1) * F},
            {"method": "finite differences (central)", "unit": "evaluations of f",
             "gradient_passes": 2 * n, "jacobian_passes": 2 * n,
             "gradient_ops": 2 * n * F, "jacobian_ops": 2 * n * F},
            {"method": "forward mode", "unit": "passes, one per input direction",
             "gradient_passes": n, "jacobian_passes": n,
             "gradient_ops": n * (F + T), "jacobian_ops": n * (F + T)},
            {"method": "reverse mode", "unit": "1 forward + backward passes, one per output",
             "gradient_passes": 1, "jacobian_passes": m,
             "gradient_ops": F + B, "jacobian_ops": F + m * B},
        ]

    def table(self) -> Table:
        """The per-method costs as a Table (text, markdown, latex, html)."""
        n, m = self.n_inputs, self.n_outputs

        def build(s):
            rows = []
            for r in self.methods():
                rows.append([s.words(r["method"]), s.words(r["unit"]),
                             s.value(r["gradient_passes"]), s.value(r["gradient_ops"]),
                             s.value(r["jacobian_passes"]), s.value(r["jacobian_ops"])])
            return ["method", "counted in", "gradient: passes", "gradient: operations",
                    f"Jacobian ({m}x{n}): passes", "Jacobian: operations"], rows

        note = (f"n = {n} inputs, m = {m} outputs; one forward pass = {self.ops} primitive operations, "
                f"one backward pass = {self.backward_ops}, one tangent pass = {self.tangent_ops} on top of the forward")
        return Table("Cost of differentiating f", build, note)

    def to_dict(self) -> dict:
        return {"ops": self.ops, "op_counts": self.op_counts, "saved_arrays": self.saved_arrays,
                "saved_bytes": self.saved_bytes, "n_inputs": self.n_inputs, "n_outputs": self.n_outputs,
                "backward_ops": self.backward_ops, "tangent_ops": self.tangent_ops, "methods": self.methods()}

    def render(self, format="text") -> str:
        counts = ", ".join(f"{k} {v}" for k, v in self.op_counts.items())
        head = [f"forward pass: {self.ops} primitive operations ({counts})",
                f"saved for the backward pass: {self.saved_arrays} arrays, {_human(self.saved_bytes)}",
                f"one backward pass: {self.backward_ops} operations "
                f"({fmt_value(self.backward_ops / max(self.ops, 1), 3)}x the forward pass)"]
        if format == "html":
            import html

            return "<div>" + "".join(f"<p>{html.escape(h)}</p>" for h in head) + self.table().render("html") + "</div>"
        if format == "markdown":
            return "\n".join(f"- {h}" for h in head) + "\n\n" + self.table().render("markdown")
        if format == "latex":
            return "\n".join(f"% {h}" for h in head) + "\n" + self.table().render("latex")
        return "\n".join(head) + "\n\n" + self.table().render(format)

    def __str__(self):
        return self.render("text")

    def __repr__(self):
        return (f"<Cost: {self.ops} operations, {self.saved_arrays} saved arrays ({_human(self.saved_bytes)}), "
                f"n={self.n_inputs}, m={self.n_outputs}>")

    def _repr_html_(self):
        return self.render("html")


def _human(nbytes) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if nbytes < 1024 or unit == "GiB":
            return f"{nbytes} {unit}" if unit == "bytes" else f"{nbytes:.1f} {unit}"
        nbytes /= 1024


def cost(f, *args) -> Cost:
    r"""Account for the cost of differentiating ``f`` at ``args``: the primitive operations of
    one forward pass (by kind), the arrays and bytes it saves for the backward pass, and for each
    method what a gradient and the full $m \times n$ Jacobian cost: finite differences $n + 1$
    (forward) or $2n$ (central) evaluations, forward mode one pass per input direction, reverse
    mode one backward pass per output. Operation counts of the rules are measured by running
    them, not estimated.

    >>> import chainrule as cr, numpy as np
    >>> c = cr.cost(lambda x: cr.sum(cr.tanh(x) * x), np.ones(100))
    >>> c.ops, c.n_inputs, c.n_outputs, [r["jacobian_passes"] for r in c.methods()]
    (3, 100, 1, [101, 200, 100, 1])
    """
    return Cost(trace(f, *args))
