"""`cr.compare`: the four ways to differentiate, side by side on one function at one point.

This is the lecture's "approaches to differentiation" slide, run on the user's own function:
reverse mode (the reference), forward mode, finite differences (central and complex step) and
symbolic differentiation (the naive tree route and the shared graph route), each with its
gradient, its distance from reverse mode and its cost: evaluations of the function, primitive
operations, and wall time.

Operations are counted exactly: every method runs once more on values wrapped in a counting
box of a lower level than the method's own boxes, so each primitive that the method applies,
in the forward pass and in the derivative rules alike, passes through the counter once.
Finite differences evaluate the function many times, so their count is the evaluations times
the operations of one evaluation. For symbolic differentiation the count is the size of the
compiled derivative (all partial derivatives together; shared parts once on the shared route).

Every method has a budget of :data:`MAX_OPERATIONS` primitive operations, predicted before it
runs from the operations of one evaluation (forward mode: one pass per input entry; finite
differences: their evaluations). The symbolic routes have theirs in
:mod:`chainrule.modes.symbolic` (``MAX_TREE``, ``SYMPY_LIMIT``, ``PRINT_LIMIT``). A method over its budget is reported as skipped, with its count, so a
comparison answers in seconds whatever the function. Runs over :data:`REPEAT_LIMIT` operations
are timed once instead of best of ``repeat``.
"""
from __future__ import annotations

import inspect
import json
import math
import time
import warnings
from dataclasses import dataclass, field

import numpy as np

from chainrule.core.errors import DTypeError, ShapeError
from chainrule.core.primitives import dtype_of, shape_of
from chainrule.core.registry import Box, new_level
from chainrule.core.tensor import Tensor, _new

__all__ = ["Comparison", "MethodResult", "compare", "METHODS", "GROUPS", "MAX_OPERATIONS"]

# Deterministic budgets, in primitive operations (about 10 us each on these scalar graphs).
MAX_OPERATIONS = 30_000
REPEAT_LIMIT = 2_000

# key -> label, in the order of the table.
METHODS = {
    "reverse": "reverse mode",
    "forward": "forward mode",
    "central": "central differences",
    "complex": "complex step",
    "symbolic-shared": "symbolic, shared",
    "symbolic-naive": "symbolic, naive",
}
GROUPS = {
    "all": tuple(METHODS),
    "reverse": ("reverse",),
    "forward": ("forward",),
    "numeric": ("central", "complex"),
    "symbolic": ("symbolic-shared", "symbolic-naive"),
}


@dataclass
class MethodResult:
    """One row of the comparison. ``gradient`` holds one array per argument (None when the method
    does not apply, with the reason in ``note``); differences are from reverse mode, the relative
    one divided by the largest entry of the reverse-mode gradient."""

    method: str
    label: str
    gradient: list | None = None
    max_abs_diff: float | None = None
    max_rel_diff: float | None = None
    evaluations: int | None = None
    operations: int | None = None
    seconds: float | None = None
    note: str = ""
    sizes: dict | None = None  # symbolic: operations per partial derivative

    def to_dict(self):
        return {"label": self.label,
                "gradient": None if self.gradient is None else [_plain(g) for g in self.gradient],
                "max_abs_diff": _number(self.max_abs_diff), "max_rel_diff": _number(self.max_rel_diff),
                "evaluations": self.evaluations, "operations": self.operations,
                "seconds": _number(self.seconds), "note": self.note or None, "sizes": self.sizes}


@dataclass
class Comparison:
    """The report of :func:`compare`: ``results`` maps each method to its :class:`MethodResult`;
    ``symbolic`` maps "shared" and "naive" to their :class:`~chainrule.modes.symbolic.SymbolicDerivative`
    (when symbolic differentiation applied). Print it, or export with ``to_text``,
    ``to_markdown``, ``to_json``."""

    name: str
    variables: list
    point: list
    value: float
    results: dict
    symbolic: dict = field(default_factory=dict)

    def __getitem__(self, method):
        return self.results[method]

    def __str__(self):
        return self.to_text()

    # -- plain data ----------------------------------------------------------
    def to_dict(self):
        """Everything as plain data: per method, the gradient as a list in the order of the variables."""
        sym = {k: d.to_dict() for k, d in self.symbolic.items()}
        return {"function": self.name, "variables": list(self.variables),
                "point": {n: _plain(p) for n, p in zip(self.variables, self.point)},
                "value": _number(self.value), "reference": "reverse",
                "methods": {k: r.to_dict() for k, r in self.results.items()}, "symbolic": sym}

    def to_json(self, indent=2):
        return json.dumps(self.to_dict(), indent=indent)

    # -- tables ----------------------------------------------------------------
    def _rows(self):
        head = ["method"] + [f"d/d{n}" for n in self.variables] + [
            "max abs diff", "max rel diff", "f evals", "operations", "time"]
        rows = []
        notes = []
        for key, r in self.results.items():
            label = r.label
            if r.note:
                notes.append(f"{r.label}: {r.note}")
                label += f" [{len(notes)}]"
            if r.gradient is None:
                cells = ["n/a"] * len(self.variables)
            else:
                cells = [_format_value(g) for g in r.gradient]
            if key == "reverse":
                diffs = ["(reference)", ""]
            else:
                diffs = [_format_diff(r.max_abs_diff), _format_diff(r.max_rel_diff)]
            rows.append([label] + cells + diffs + [
                "" if r.evaluations is None else str(r.evaluations),
                "" if r.operations is None else str(r.operations),
                _format_time(r.seconds)])
        return head, rows, notes

    def _header(self):
        at = ", ".join(f"{n} = {_format_value(p)}" for n, p in zip(self.variables, self.point))
        return f"{self.name}({', '.join(self.variables)}) at {at}:  f = {_format_value(self.value)}"

    def to_text(self):
        """A plain-text table, one row per method, then notes and the symbolic derivatives."""
        head, rows, notes = self._rows()
        widths = [max(len(row[i]) for row in [head] + rows) for i in range(len(head))]
        right = set(range(1, len(head)))

        def line(cells):
            return "  ".join(c.rjust(w) if i in right else c.ljust(w)
                             for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

        out = [self._header(), "", line(head), line(["-" * w for w in widths])]
        out += [line(r) for r in rows]
        if notes:
            out.append("")
            out += [f"[{i}] {n}" for i, n in enumerate(notes, 1)]
        out += self._symbolic_lines(latex=False)
        return "\n".join(out)

    def to_markdown(self):
        """A Markdown table, notes as a list, and the symbolic derivatives in LaTeX."""
        head, rows, notes = self._rows()

        def line(cells):
            return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

        out = [f"**{self._header()}**", "", line(head),
               "|" + "|".join([" --- "] + [" ---: "] * (len(head) - 1)) + "|"]
        out += [line(r) for r in rows]
        if notes:
            out.append("")
            out += [f"{i}. {n}" for i, n in enumerate(notes, 1)]
        out += self._symbolic_lines(latex=True)
        return "\n".join(out)

    def _repr_html_(self):
        """Jupyter: the table, its notes and the symbolic derivatives."""
        import html

        from chainrule.viz.page import html_table

        head, rows, notes = self._rows()
        out = [html_table(head, rows, caption=self._header(), numeric=range(1, len(head)))]
        if notes:
            out.append("<ol>" + "".join(f"<li>{html.escape(n)}</li>" for n in notes) + "</ol>")
        sym = self._symbolic_lines(latex=False)
        if sym:
            out.append(f"<pre>{html.escape(chr(10).join(sym[1:]))}</pre>")
        return '<div class="chainrule">' + "".join(out) + "</div>"

    def _symbolic_lines(self, latex):
        shared, naive = self.symbolic.get("shared"), self.symbolic.get("naive")
        d = shared or naive
        if d is None:
            return []
        sizes = []
        if shared is not None:
            sizes.append(f"shared route {shared.total_size} operations as a graph")
        if naive is not None:
            sizes.append(f"naive route {naive.total_size} as a tree")
        out = ["", f"Symbolic derivatives ({'; '.join(sizes)}):"]
        routes = [r for r in (shared, naive) if r is not None]
        for n in d.wrt:
            # Either route's expression is the derivative: print the first that is short enough.
            text = next((t for t in ((r.latex if latex else r.text)[n] for r in routes) if t is not None), None)
            if text is None:
                shown = f"({min(r.tree_size[n] for r in routes)} operations written out: too long to print)"
            elif latex:
                shown = f"$\\frac{{\\partial f}}{{\\partial {n}}} = {text}$"
            else:
                shown = text
            out.append(f"- {shown}" if latex else f"  df/d{n} = {shown}")
        return out


# ---------------------------------------------------------------- formatting


def _plain(a):
    a = np.asarray(a)
    if a.ndim == 0:
        return _number(a.item())
    return [_plain(x) for x in a]


def _number(x):
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def _format_value(a):
    a = np.asarray(a)
    if a.ndim == 0:
        return f"{a.item():.13g}"
    return np.array2string(a, precision=6, threshold=6, edgeitems=2, max_line_width=10_000, separator=", ")


def _format_diff(x):
    if x is None:
        return ""
    return "0" if x == 0 else f"{x:.1e}"


def _format_time(s):
    if s is None:
        return ""
    if s < 1e-3:
        return f"{s * 1e6:.0f} us"
    if s < 1:
        return f"{s * 1e3:.2f} ms"
    return f"{s:.2f} s"


# ---------------------------------------------------------------- counting operations


class _Counted(Box):
    """A value that counts every primitive applied to it: the innermost box of a counted run."""

    __slots__ = ("value", "_level", "_tally")

    def __init__(self, value, level, tally):
        self.value, self._level, self._tally = value, level, tally

    shape = property(lambda self: shape_of(self.value))
    ndim = property(lambda self: len(shape_of(self.value)))
    dtype = property(lambda self: dtype_of(self.value))
    size = property(lambda self: int(np.prod(shape_of(self.value))))

    def _bind(self, prim, args, params):
        level = self._level
        self._tally[0] += 1
        vals = [a.value if isinstance(a, _Counted) and a._level == level else a for a in args]
        return _Counted(prim.op(*vals, **params), level, self._tally)


def _count(run, args):
    """Primitive operations that ``run(*counted_args)`` applies."""
    tally = [0]
    level = new_level()
    run(*[_Counted(a, level, tally) for a in args])
    return tally[0]


def _count_evaluation(f, args):
    # Tensors around the counters give f's code the operators (x * z) it expects.
    level = new_level()
    tally = [0]
    inner = new_level()
    f(*[_new(_Counted(a, inner, tally), level) for a in args])
    return tally[0]


def _timed(fn, repeat):
    best = math.inf
    out = None
    for _ in range(max(1, repeat)):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return out, best


# ---------------------------------------------------------------- the methods


def _reverse(f, args, repeat):
    from chainrule.modes.api import grad

    g = grad(f, argnums=tuple(range(len(args))))
    grads, seconds = _timed(lambda: g(*args), repeat)
    ops = _count(g, args)
    return MethodResult("reverse", METHODS["reverse"], [np.asarray(x, dtype=np.float64) for x in grads],
                        0.0, 0.0, 1, ops, seconds)


def _skipped(key, what, operations):
    return MethodResult(key, METHODS[key], operations=operations,
                        note=f"skipped: too large for {what} ({operations} operations; limit {MAX_OPERATIONS})")


def _forward(f, args, repeat, per_evaluation):
    from chainrule.modes.api import jvp

    n = sum(a.size for a in args)
    if n * per_evaluation > MAX_OPERATIONS:
        return _skipped("forward", "forward mode", n * per_evaluation)
    if n * per_evaluation > REPEAT_LIMIT:
        repeat = 1

    def run(*xs):
        out = []
        for i, x in enumerate(args):
            g = np.empty(x.shape)
            for j in range(x.size):
                tangents = [np.zeros_like(a) for a in args]
                tangents[i].flat[j] = 1.0
                t = jvp(f, tuple(xs), tuple(tangents))[1]
                g.flat[j] = float(np.asarray(t.value if isinstance(t, _Counted) else t))
            out.append(g)
        return out

    grads, seconds = _timed(lambda: run(*args), repeat)
    ops = _count(run, args)
    return MethodResult("forward", METHODS["forward"], grads, evaluations=n, operations=ops, seconds=seconds,
                        note=f"{n} pass{'es' if n != 1 else ''}, one per input entry" if n > 1 else "")


def _numeric(f, args, method, repeat, per_evaluation):
    from chainrule.modes import numeric

    key = method
    nums = tuple(range(len(args)))
    n = sum(a.size for a in args)
    # Central differences: two evaluations per entry; the complex step: one (plus the value).
    predicted = (2 * n if method == "central" else n + 1) * per_evaluation
    if predicted > MAX_OPERATIONS:
        return _skipped(key, METHODS[key], predicted)
    if predicted > REPEAT_LIMIT:
        repeat = 1
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            est, seconds = _timed(lambda: numeric.gradient(f, *args, argnums=nums, method=method,
                                                           full_output=True), repeat)
        except numeric.NotAnalyticError as err:
            names = ", ".join(err.primitives)
            return MethodResult(key, METHODS[key], note=f"not applicable: f uses {names}, which "
                                f"{'is' if len(err.primitives) == 1 else 'are'} not analytic, so the complex "
                                "step would give a wrong number")
        except numeric.NumericError as err:
            return MethodResult(key, METHODS[key], note=f"failed: {err}")
    note = "; ".join(dict.fromkeys(str(w.message) for w in caught))
    grads = [np.asarray(v, dtype=np.float64) for v in est.value]
    return MethodResult(key, METHODS[key], grads, evaluations=est.evaluations,
                        operations=est.evaluations * per_evaluation, seconds=seconds, note=note)


def _symbolic(f, args, names, route, store):
    key = f"symbolic-{route}"
    if any(np.ndim(a) for a in args):
        return MethodResult(key, METHODS[key], note="not applicable: symbolic differentiation here works on "
                                                    "functions of numbers, and an argument is an array")
    try:
        from chainrule.modes import symbolic

        sp = symbolic._sympy()
        # SymPy imports its printers on the first lambdify (about a second): pay that before the
        # clock starts, so the timing is of the work and not of the imports.
        sp.lambdify([sp.Symbol("x")], sp.Symbol("x"), modules="numpy", cse=True)
        params = symbolic._parameters(f, "derivative")
    except ImportError as err:
        return MethodResult(key, METHODS[key], note=f"not available: {err}")
    except symbolic.SymbolicError as err:
        return MethodResult(key, METHODS[key], note=f"not applicable: {err}")
    if len(params) != len(args):
        return MethodResult(key, METHODS[key], note=f"not applicable: f has {len(params)} parameters without "
                                                    f"defaults but {len(args)} values were given")
    t0 = time.perf_counter()
    try:
        d = symbolic.derivative(f, method=route)
        grads = d.function(*args)
    except symbolic.SymbolicTooLarge as err:
        return _skipped(key, f"symbolic, {route}", err.size)
    except symbolic.SymbolicError as err:
        return MethodResult(key, METHODS[key], note=f"not applicable: {err}")
    seconds = time.perf_counter() - t0
    store[route] = d
    kind = "graph" if route == "shared" else "tree"
    return MethodResult(key, METHODS[key], [np.asarray(g, dtype=np.float64) for g in grads], evaluations=1,
                        operations=d.total_size, seconds=seconds, sizes=dict(d.size),
                        note=f"derivation + compilation + evaluation; expression of {d.total_size} operations "
                             f"as a {kind}")


# ---------------------------------------------------------------- compare


def compare(f, *args, methods="all", name=None, repeat=3):
    r"""Differentiate the scalar function ``f`` at ``args`` by every method and compare them.

    Returns a :class:`Comparison`: per method the gradient (one array per argument), its largest
    absolute and relative difference from reverse mode, the function evaluations, primitive
    operations and wall time (best of ``repeat`` runs; symbolic: one run, derivation included).
    ``methods`` is "all", a group ("reverse", "forward", "numeric", "symbolic") or a sequence of
    those or of the keys of :data:`METHODS`. Arguments are converted to float64. The complex
    step on a function that is not analytic (abs, relu, ...) is reported as such, not run.

    >>> import chainrule as cr
    >>> report = compare(lambda x, z: cr.exp(x * z) + x * z / cr.log(x) + cr.sin(cr.log(x)) / (x * z), 2.0, 3.0)
    >>> [round(float(g), 10) for g in report["forward"].gradient]
    [1208.3812151266, 809.7074792186]
    >>> report["complex"].max_rel_diff < 1e-13
    True
    """
    keys = _method_keys(methods)
    if not args:
        raise TypeError("compare: give the point, e.g. compare(f, 2.0, 3.0)")
    args = [_as_float64(a, i) for i, a in enumerate(args)]
    names = _variable_names(f, len(args))
    name = name or getattr(f, "__name__", "f")
    if name == "<lambda>":
        name = "f"
    value = _scalar_value(f, args)
    per_evaluation = _count_evaluation(f, args)
    results = {"reverse": _reverse(f, args, repeat)}
    symbolic = {}
    for key in keys:
        if key == "forward":
            results[key] = _forward(f, args, repeat, per_evaluation)
        elif key in ("central", "complex"):
            results[key] = _numeric(f, args, key, repeat, per_evaluation)
        elif key.startswith("symbolic-"):
            results[key] = _symbolic(f, args, names, key.split("-", 1)[1], symbolic)
    reference = results["reverse"].gradient
    scale = max((float(np.max(np.abs(g), initial=0.0)) for g in reference), default=0.0)
    for key, r in results.items():
        if key == "reverse" or r.gradient is None:
            continue
        diff = max(float(np.max(np.abs(g - ref), initial=0.0)) for g, ref in zip(r.gradient, reference))
        r.max_abs_diff = diff
        r.max_rel_diff = diff / scale if scale > 0 else (0.0 if diff == 0 else None)
    if "reverse" not in keys:
        results = {"reverse": results["reverse"], **{k: results[k] for k in keys}}
    return Comparison(name, names, args, value, {k: results[k] for k in _ordered(results)}, symbolic)


def _ordered(results):
    return [k for k in METHODS if k in results]


def _method_keys(methods):
    if isinstance(methods, str):
        methods = (methods,)
    keys = []
    for m in methods:
        if m in GROUPS:
            keys += GROUPS[m]
        elif m in METHODS:
            keys.append(m)
        else:
            raise ValueError(f"compare: unknown method {m!r}; choose from {', '.join(GROUPS)} "
                             f"or {', '.join(k for k in METHODS if k not in GROUPS)}")
    return list(dict.fromkeys(keys))


def _as_float64(a, i):
    if isinstance(a, Tensor):
        a = a.numpy()
    a = np.asarray(a)
    if a.dtype == bool or not np.issubdtype(a.dtype, np.number) or np.issubdtype(a.dtype, np.complexfloating):
        raise DTypeError(f"compare: argument {i} has dtype {a.dtype}; pass real numbers")
    return a.astype(np.float64)


def _variable_names(f, n):
    try:
        params = [p for p in inspect.signature(f).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        params = []
    if len(params) >= n:
        return [p.name for p in params[:n]]
    return [f"x{i}" for i in range(n)]


def _scalar_value(f, args):
    from chainrule.modes.numeric import NumericError

    out = f(*args)
    out = np.asarray(out.numpy() if isinstance(out, Tensor) else out)
    if out.size != 1:
        raise ShapeError(f"compare: f must return one number (its gradient is compared), got shape {out.shape}; "
                         "reduce it first, e.g. cr.sum(...)")
    value = float(out.reshape(()))
    if not math.isfinite(value):
        raise NumericError(f"compare: f is not finite at the given point (f = {value}); "
                           "choose a point inside its domain")
    return value
