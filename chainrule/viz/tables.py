"""Trace tables: the forward, backward and tangent computations in text, Markdown, LaTeX and HTML."""
from __future__ import annotations

import html
import re

import numpy as np

__all__ = ["Table", "FORMATS", "fmt_value", "forward_table", "backward_table", "tangent_table", "join_tables"]

FORMATS = ("text", "markdown", "latex", "html")
_MAX_ITEMS = 12  # arrays up to this size are shown in full


# ---------------------------------------------------------------- numbers
def _num(x, precision) -> str:
    if type(x) is float:  # the common case first
        return f"{x:.{precision}g}" if x != 0 else "0"
    if isinstance(x, (bool, np.bool_)):
        return str(bool(x))
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    if isinstance(x, complex):
        return f"{x:.{precision}g}"
    x = float(x)
    if x == 0:
        return "0"  # no "-0"
    return f"{x:.{precision}g}"


def _nested(v, precision):
    if isinstance(v, list):
        return "[" + ", ".join(_nested(u, precision) for u in v) + "]"
    return _num(v, precision)


def fmt_value(v, precision=6) -> str:
    """A value as the tables show it: numbers to ``precision`` significant digits, arrays of up
    to 12 entries in full, larger ones by shape and their first and last entries.

    >>> fmt_value(403.428793492735), fmt_value(np.array([0.5, -0.0])), fmt_value(np.zeros((3, 5)))
    ('403.429', '[0.5, 0]', 'array(3x5) [0, 0, 0, ..., 0]')
    """
    if type(v) is float or type(v) is np.float64:  # the common case, formatted directly
        return f"{v:.{precision}g}" if v else "0"
    if isinstance(v, (float, int)) and not isinstance(v, bool):
        return _num(v, precision)
    a = np.asarray(v)
    if a.size == 1:
        return _num(a.reshape(()).item(), precision)
    if a.size <= _MAX_ITEMS:
        return _nested(a.tolist(), precision)
    flat = a.reshape(-1)
    head = ", ".join(_num(u, precision) for u in flat[:3].tolist())
    shape = "x".join(str(s) for s in a.shape)
    return f"array({shape}) [{head}, ..., {_num(flat[-1].item(), precision)}]"


# ---------------------------------------------------------------- how each format writes things
_INFIX = {"add": " + ", "subtract": " - ", "multiply": " * ", "divide": " / ", "power": "**", "matmul": " @ "}
_GREEK = {"alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa", "lambda", "mu",
          "nu", "xi", "pi", "rho", "sigma", "tau", "phi", "chi", "psi", "omega"}


def _fmt_param(v) -> str:
    if isinstance(v, np.ndarray):
        return fmt_value(v) if v.size <= 4 else f"array({'x'.join(map(str, v.shape))})"
    if isinstance(v, slice):
        parts = ["" if p is None else str(p) for p in (v.start, v.stop, v.step)]
        return ":".join(parts[:2] if v.step is None else parts)
    if isinstance(v, tuple):
        return ", ".join(_fmt_param(u) for u in v)
    if isinstance(v, np.dtype):
        return str(v)
    return repr(v)


class _Text:
    """Plain text: names as written, g_u for adjoints, du for tangents."""

    name = "text"
    times = " * "

    def ident(self, label):
        return label

    def adj(self, label):
        return f"g_{label}"

    def tan(self, label):
        return f"d{label}"

    def partial(self, num, den):
        return f"d{num}/d{den}"

    def value(self, v, precision=6):
        return fmt_value(v, precision)

    def definition(self, node):
        if node.prim is None:
            return node.kind
        op = node.prim.name
        args = [a.name for a in node.args]
        if op in _INFIX and len(args) == 2:
            return f"{args[0]}{_INFIX[op]}{args[1]}"
        if op == "negative":
            return f"-{args[0]}"
        if op == "getitem":
            return f"{args[0]}[{_fmt_param(node.params.get('index'))}]"
        extra = [f"{k}={_fmt_param(v)}" for k, v in node.params.items() if not (k == "axis" and v is None)]
        return f"{op}({', '.join(args + extra)})"

    def words(self, s):
        return s


class _Markdown(_Text):
    name = "markdown"

    def cell(self, s):
        return s.replace("|", "\\|")


class _Latex(_Text):
    """LaTeX math: v_{1}, g_{v_{1}}, partial fractions; every cell is one math expression."""

    name = "latex"
    times = " \\cdot "

    def ident(self, label):
        return latex_name(label)

    def adj(self, label):
        return f"g_{{{latex_name(label)}}}"

    def tan(self, label):
        return f"\\dot{{{latex_name(label)}}}"

    def partial(self, num, den):
        return f"\\frac{{\\partial {latex_name(num)}}}{{\\partial {latex_name(den)}}}"

    def value(self, v, precision=6):
        s = fmt_value(v, precision)
        s = re.sub(r"e([+-])0*(\d+)", lambda m: f"\\times 10^{{{'-' if m.group(1) == '-' else ''}{m.group(2)}}}", s)
        s = s.replace("inf", "\\infty").replace("nan", "\\mathrm{NaN}").replace(", ...,", ", \\ldots,")
        s = s.replace("array(", "\\mathrm{array}(").replace(", ", ",\\ ")
        return s

    def definition(self, node):
        if node.prim is None:
            return f"\\text{{{node.kind}}}"
        args = [latex_name(a.name) for a in node.args]
        template = node.prim.latex
        if template and template.count("{") - template.count("{{") * 2 >= 0:
            try:
                if node.prim.name in ("add", "subtract", "multiply", "divide", "power"):
                    return template.format(*args)
                if node.prim.name == "getitem":
                    return f"{args[0]}_{{[{_tex_escape(_fmt_param(node.params.get('index')))}]}}"
                if "{1}" in template or len(args) == 1:
                    return template.format(*args)
            except (IndexError, KeyError):
                pass
        return f"\\operatorname{{{_tex_escape(node.prim.name)}}}\\left({', '.join(args)}\\right)"

    def words(self, s):
        return f"\\text{{{_tex_escape(s)}}}"


class _Html(_Text):
    name = "html"
    times = " \u00b7 "

    def ident(self, label):
        return html.escape(label)

    def adj(self, label):
        return f"g<sub>{html.escape(label)}</sub>"

    def tan(self, label):
        return f"d{html.escape(label)}"

    def partial(self, num, den):
        return f"\u2202{html.escape(num)}/\u2202{html.escape(den)}"

    def value(self, v, precision=6):
        return html.escape(fmt_value(v, precision))

    def definition(self, node):
        return html.escape(_Text.definition(self, node))

    def words(self, s):
        return html.escape(s)


TEXT, MARKDOWN, LATEX, HTML = _Text(), _Markdown(), _Latex(), _Html()
_STYLES = {"text": TEXT, "markdown": MARKDOWN, "latex": LATEX, "html": HTML}

_TEX_SPECIAL = {"\\": "\\textbackslash{}", "&": "\\&", "%": "\\%", "$": "\\$", "#": "\\#", "_": "\\_",
                "{": "\\{", "}": "\\}", "~": "\\textasciitilde{}", "^": "\\textasciicircum{}"}


def _tex_escape(s: str) -> str:
    return "".join(_TEX_SPECIAL.get(c, c) for c in s)


def latex_name(label: str) -> str:
    """A quantity's name in LaTeX: v1 -> v_{1}, alpha -> \\alpha, y_hat -> \\hat{y}, others upright."""
    m = re.fullmatch(r"([A-Za-z]+)_?(\d+)", label)
    if m and (len(m.group(1)) == 1 or m.group(1) in _GREEK):
        base = f"\\{m.group(1)}" if m.group(1) in _GREEK else m.group(1)
        return f"{base}_{{{m.group(2)}}}"
    if re.fullmatch(r"[A-Za-z]", label):
        return label
    if label in _GREEK:
        return f"\\{label}"
    m = re.fullmatch(r"([A-Za-z]|alpha|beta|gamma|theta|sigma)_hat", label)
    if m:
        base = f"\\{m.group(1)}" if m.group(1) in _GREEK else m.group(1)
        return f"\\hat{{{base}}}"
    if re.fullmatch(r"-?\d+(\.\d*)?([eE][+-]?\d+)?", label):
        return label
    return f"\\mathrm{{{_tex_escape(label)}}}"


# ---------------------------------------------------------------- the table object
class Table:
    """A table of a computation that renders in text, Markdown, LaTeX or HTML.

    ``build(style)`` returns (header, rows); a cell is a string or a list of strings (its lines).
    ``str(table)`` is the text form; Jupyter shows the HTML form.
    """

    def __init__(self, title, build, note=""):
        self.title = title
        self.note = note
        self._build = build

    def rows(self, format="text"):
        """(header, rows) in the given format, cells already written in its markup."""
        return self._build(_style(format))

    def render(self, format="text") -> str:
        """The table as text, markdown, latex or html."""
        from chainrule.viz.trace import paused_gc

        style = _style(format)
        with paused_gc():
            header, rows = self._build(style)
            return _RENDER[style.name](self.title, self.note, header, rows)

    def to_text(self):
        return self.render("text")

    def to_markdown(self):
        return self.render("markdown")

    def to_latex(self):
        return self.render("latex")

    def to_html(self):
        return self.render("html")

    def __str__(self):
        return self.render("text")

    def __repr__(self):
        return self.render("text")

    def _repr_html_(self):
        return self.render("html")


def _style(format):
    try:
        return _STYLES[format]
    except (KeyError, TypeError):
        raise ValueError(f"unknown table format {format!r}; choose one of {', '.join(FORMATS)}") from None


def _lines(cell):
    return cell if isinstance(cell, list) else [cell]


def _render_text(title, note, header, rows):
    last = len(header) - 1
    widths = [len(h) for h in header]
    for row in rows:
        for j, c in enumerate(row):
            w = len(c) if type(c) is str else max(map(len, c))
            if w > widths[j]:
                widths[j] = w
    pads = widths[:last]

    def line_of(parts):
        return "  ".join([p.ljust(w) for p, w in zip(parts, pads)] + [parts[last]]).rstrip()

    out = [title] if title else []
    if note:
        out.append(note)
    out.append(line_of(list(header)))
    out.append("  ".join("-" * w for w in widths))
    for row in rows:
        if all(type(c) is str for c in row):
            out.append(line_of(row))
            continue
        cells = [_lines(c) for c in row]
        for k in range(max(len(c) for c in cells)):
            out.append(line_of([c[k] if k < len(c) else "" for c in cells]))
    return "\n".join(out)


def _render_markdown(title, note, header, rows):
    def cell(c):
        return "<br>".join(MARKDOWN.cell(line) for line in _lines(c))

    out = []
    if title:
        out += [f"**{MARKDOWN.cell(title)}**", ""]
    if note:
        out += [MARKDOWN.cell(note), ""]
    out.append("| " + " | ".join(cell(h) for h in header) + " |")
    out.append("|" + "|".join("---" for _ in header) + "|")
    for row in rows:
        out.append("| " + " | ".join(cell(c) for c in row) + " |")
    return "\n".join(out)


def _render_latex(title, note, header, rows):
    # Header cells are words; body cells are math. A multi-line cell continues on extra rows.
    out = []
    if title:
        out.append(f"% {title}")
    out.append("\\begin{tabular}{" + "l" * len(header) + "}")
    out.append("\\hline")
    out.append(" & ".join(f"\\textbf{{{_tex_escape(h)}}}" for h in header) + " \\\\")
    out.append("\\hline")
    for row in rows:
        cells = [_lines(c) for c in row]
        height = max(len(c) for c in cells)
        for k in range(height):
            parts = [f"${c[k]}$" if k < len(c) and c[k] else "" for c in cells]
            out.append(" & ".join(parts) + " \\\\")
    out.append("\\hline")
    out.append("\\end{tabular}")
    if note:
        out.append(f"% {note}")
    return "\n".join(out)


def _render_html(title, note, header, rows):
    out = ['<table class="chainrule-trace">']
    if title:
        caption = html.escape(title) + (f"<br/><small>{html.escape(note)}</small>" if note else "")
        out.append(f"<caption>{caption}</caption>")
    out.append("<thead><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr></thead>")
    out.append("<tbody>")
    for row in rows:
        out.append("<tr>" + "".join(f"<td>{'<br/>'.join(_lines(c))}</td>" for c in row) + "</tr>")
    out.append("</tbody></table>")
    return "\n".join(out)


_RENDER = {"text": _render_text, "markdown": _render_markdown, "latex": _render_latex, "html": _render_html}


def join_tables(tables, format="text") -> str:
    """Several tables as one document (HTML inside one <div>, so it has a single root)."""
    parts = [t.render(format) for t in tables]
    if format == "html":
        return '<div class="chainrule">\n' + "\n".join(parts) + "\n</div>"
    if format == "latex":
        return "\n\n\\bigskip\n\n".join(parts)
    return "\n\n".join(parts)


# ---------------------------------------------------------------- the three tables
def _signature(graph):
    ins = ", ".join(n.name for n in graph.inputs)
    return f"{graph.output.name} = f({ins})"


def forward_table(graph, precision=6) -> Table:
    """One row per quantity in evaluation order: name, how it is computed, value."""

    def build(s):
        rows = []
        for n in graph.nodes:
            if n.kind == "constant" and n.scalar:
                continue  # shown by value where it is used
            mark = " (output)" if n is graph.output else ""
            rows.append([s.ident(n.name), s.definition(n), s.value(n.value, precision) + (s.words(mark) if mark else "")])
        return ["name", "computed as", "value"], rows

    return Table(f"Forward pass: {_signature(graph)}", build)


def _repeats(c, n) -> bool:
    """Whether ``n`` is more than one argument of ``c`` (x * x): its terms are then told apart."""
    first = True
    for a in c.args:
        if a is n:
            if not first:
                return True
            first = False
    return False


def backward_table(graph, precision=6) -> Table:
    """Reverse mode from the output back: each quantity's adjoint g_u = sum over its consumers c
    of g_c * dc/du, every term with its value; rows that sum several terms are marked."""
    graph._ensure_backward()
    adj, terms, out = graph._adjoints, graph._terms, graph.output

    def build(s):
        rows = []
        shown = {}  # node index -> its adjoint as written (each is used by every term it feeds)
        value, times = s.value, s.times
        for n in reversed(graph.nodes):
            if n.kind == "constant" or not n.differentiable and n is not out:
                continue
            g = adj[n.index]
            g_text = shown[n.index] = value(g, precision) if g is not None else "0"
            if n is out:
                how = f"{s.words('seed')}: {s.adj(n.name)} = {g_text}"
                mark = ""
            elif g is None:
                how = s.words("does not reach the output")
                mark = ""
            else:
                ts = terms[n.index]
                if len(ts) > 1:  # in the order the consumers were computed, as on the whiteboard
                    ts = sorted(ts, key=lambda term: (term[0].index, term[1]))
                how = []
                for c, i, term_value in ts:
                    term = f"{s.adj(c.name)}{times}{s.partial(c.name, n.name)}"
                    if len(c.args) > 1 and _repeats(c, n):
                        term += s.words(f" (argument {i + 1})")
                    if n.scalar and c.scalar:
                        term += f" = {shown[c.index]}{times}{value(_partial_value(c, i), precision)}"
                    term = f"{term} = {value(term_value, precision)}"
                    how.append(f"+ {term}" if how else term)
                mark = s.words(f"sum of {len(ts)}") if len(ts) > 1 else ""
                if len(how) == 1:
                    how = how[0]
            rows.append([s.ident(n.name), g_text, mark, how])
        return ["name", "adjoint", "accumulates", "chain rule"], rows

    note = "g_u = d(output)/du = sum over the quantities c that use u of g_c * dc/du"
    return Table(f"Backward pass: adjoints of {out.name}", build, note)


def _partial_value(c, i):
    """dc/du for one-element c and u: the vjp rule applied to a unit cotangent."""
    vals = [a.value for a in c.args]
    return c.prim.vjps[i](1.0, c.value, *vals, **c.params)


def _tangent_partial(c, i):
    vals = [a.value for a in c.args]
    return c.prim.jvps[i](1.0, c.value, *vals, **c.params)


def tangent_table(graph, direction, precision=6) -> Table:
    """Forward mode along ``direction``: each quantity's tangent du = sum over its arguments a of
    du/da * da, every term with its value (jvp rules of the registry)."""
    tan, terms = graph.tangents(direction)
    if isinstance(direction, str):
        along = f"d/d{direction}"
        seeds = {direction}
    else:
        along = "direction " + ", ".join(f"d{k} = {fmt_value(v, precision)}" for k, v in direction.items())
        seeds = set(direction)

    def build(s):
        rows = []
        shown = {}  # node index -> its tangent as written (used by every term it feeds)
        value, times = s.value, s.times
        for n in graph.nodes:
            if n.kind == "constant":
                continue
            t = tan[n.index]
            t_text = shown[n.index] = value(0.0 if t is None else t, precision)
            if n.kind != "op":
                how = s.words("seed" if n.name in seeds else "not in the direction")
            elif not terms[n.index]:
                how = s.words("does not depend on the direction")
            else:
                how = []
                for a, i, term_value in terms[n.index]:
                    term = f"{s.partial(n.name, a.name)}{times}{s.tan(a.name)}"
                    if n.scalar and a.scalar:
                        term += f" = {value(_tangent_partial(n, i), precision)}{times}{shown[a.index]}"
                    term = f"{term} = {value(term_value, precision)}"
                    how.append(f"+ {term}" if how else term)
                if len(how) == 1:
                    how = how[0]
            rows.append([s.ident(n.name), value(n.value, precision), t_text, how])
        return ["name", "value", "tangent", "chain rule"], rows

    note = "du = sum over the arguments a of u of du/da * da"
    return Table(f"Forward mode along {along}: tangents of {_signature(graph)}", build, note)
