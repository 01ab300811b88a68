"""Graph drawings: Graphviz DOT source of a traced Graph, rendered to SVG or PNG by `dot`."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from chainrule.core.errors import ChainruleError
from chainrule.serialization import atomic_write
from chainrule.viz.tables import TEXT, fmt_value
from chainrule.viz.trace import CONST, INPUT, OP, PARAM

__all__ = ["to_dot", "render", "draw", "GraphvizError", "GraphTooLargeError", "MAX_NODES", "DRAW_FORMATS"]

MAX_NODES = 2000  # dot's layout grows faster than linearly; past this it runs for minutes
DRAW_FORMATS = ("svg", "png", "dot")
_TIMEOUT_S = 120
_INSTALL = "install Graphviz: `apt-get install graphviz` (Debian/Ubuntu), `brew install graphviz` (macOS) " \
           "or `conda install graphviz`"

_STYLE = {
    INPUT: 'shape=box, style="rounded,filled", fillcolor="#d6e6ff", color="#2f5f9e"',
    PARAM: 'shape=box, style="filled", fillcolor="#ffe3bf", color="#b86e00"',
    CONST: 'shape=plaintext, fontcolor="#666666"',
    OP: 'shape=ellipse, style="filled", fillcolor="#f4f4f4", color="#555555"',
}


class GraphvizError(ChainruleError, RuntimeError):
    """The `dot` program is missing or failed."""


class GraphTooLargeError(ChainruleError, ValueError):
    """A graph with more nodes than a drawing can lay out in reasonable time."""


def _quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def node_label(graph, node, values=True, grads=True, precision=4) -> list:
    """The lines drawn in a node: name (= definition), value, gradient."""
    if node.kind == CONST:
        return [node.name if node.scalar else f"{node.name} = {fmt_value(node.value, precision)}"]
    head = f"{node.name} = {TEXT.definition(node)}" if node.kind == OP else f"{node.name} ({node.kind})"
    lines = [head]
    if values and node.kind != CONST:
        lines.append(f"value {fmt_value(node.value, precision)}")
    if grads and graph._adjoints is not None and node.differentiable:
        g = graph._adjoints[node.index]
        lines.append(f"grad {fmt_value(0.0 if g is None else g, precision)}")
    return lines


def to_dot(graph, values=True, grads=True, precision=4, rankdir="LR", title=None, rows=False) -> str:
    """Graphviz DOT source: one node per quantity labelled with its operation, value and gradient
    (d output / d quantity); inputs, parameters and constants styled apart; nodes of one
    ``group`` (a layer) in one cluster; the output drawn with a double border. With ``rows=True``
    each group's operations form one row, left to right, and the rows stack downwards: a deep
    network reads like a page instead of one long strip.

    >>> import chainrule as cr
    >>> src = cr.trace(lambda x: cr.exp(x) * x, 1.0).to_dot()
    >>> src.splitlines()[0], "v1 = exp(x)" in src
    ('digraph chainrule {', True)
    """
    if grads and graph._adjoints is None and graph.output.scalar:
        graph._ensure_backward()
    if rows:
        rankdir = "TB"
    out = ["digraph chainrule {", f"  rankdir={rankdir};", *(["  newrank=true;"] if rows else []),
           '  node [fontname="Helvetica", fontsize=10];',
           '  edge [color="#666666", arrowsize=0.6];']
    if title:
        out.append(f"  labelloc=t; label={_quote(title)};")
    clusters = {}
    for n in graph.nodes:
        line = f"  n{n.index} [label={_quote(chr(10).join(node_label(graph, n, values, grads, precision)))}, " \
               f"{_STYLE[n.kind]}{', peripheries=2' if n is graph.output else ''}];"
        if n.group is None:
            out.append(line)
        else:
            clusters.setdefault(n.group, []).append(line)
    row_of = {}
    if rows:
        for n in graph.nodes:
            if n.kind == OP and n.group is not None:
                row_of.setdefault(n.group, []).append(f"n{n.index}")
    for k, (label, lines) in enumerate(clusters.items()):
        out.append(f"  subgraph cluster_{k} {{")
        out.append(f'    label={_quote(str(label))}; style="rounded,dashed"; color="#8a8a8a"; fontname="Helvetica";')
        out.extend("  " + line for line in lines)
        if label in row_of:
            out.append(f"    {{ rank=same; {'; '.join(row_of[label])}; }}")
        out.append("  }")
    row = {n.index: n.group for n in graph.nodes if rows and n.kind == OP and n.group in row_of}
    for n in graph.nodes:
        for a in n.args:
            # An edge from one row to the next leaves the layout alone, so every row starts at the left.
            loose = a.index in row and n.index in row and row[a.index] != row[n.index]
            out.append(f"  n{a.index} -> n{n.index}{' [constraint=false]' if loose else ''};")
    firsts = [names[0] for names in row_of.values()]
    for a, b in zip(firsts, firsts[1:]):  # the rows stacked, first node above first node
        out.append(f"  {a} -> {b} [style=invis, weight=10, minlen=2];")  # a row of its inputs between
    out.append("}")
    return "\n".join(out) + "\n"


def render(source: str, format="svg") -> bytes:
    """Run `dot -T<format>` on DOT source and return the picture's bytes."""
    exe = shutil.which("dot")
    if exe is None:
        raise GraphvizError(f"cannot render {format.upper()}: the Graphviz program `dot` is not installed; {_INSTALL}")
    try:
        done = subprocess.run([exe, f"-T{format}"], input=source.encode("utf-8"), capture_output=True,
                              timeout=_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        raise GraphvizError(f"dot did not finish within {_TIMEOUT_S} s; draw a smaller part "
                            "(graph.subgraph([...])) or print the tables instead") from None
    if done.returncode != 0:
        raise GraphvizError(f"dot failed (exit code {done.returncode}): {done.stderr.decode(errors='replace').strip()}")
    return done.stdout


def _format_of(path: Path, format):
    fmt = format if format is not None else path.suffix.lower().lstrip(".")
    fmt = {"gv": "dot"}.get(fmt, fmt)
    if fmt not in DRAW_FORMATS:
        what = f"format {format!r}" if format is not None else f"extension {path.suffix or '(none)'!r} of {path}"
        raise ValueError(f"unknown drawing {what}; use .svg, .png or .dot")
    return fmt


def draw(graph, path, format=None, max_nodes=None, **options) -> Path:
    """Write ``graph``'s drawing to ``path`` (atomically): .svg and .png are rendered by Graphviz,
    .dot is the source. Without `dot` installed the source is still written next to ``path``
    (same name, .dot) and GraphvizError says how to install Graphviz. Graphs above ``max_nodes``
    (default 2000) raise GraphTooLargeError instead of running dot for minutes.

    >>> import os, tempfile, chainrule as cr
    >>> path = os.path.join(tempfile.mkdtemp(), "g.dot")
    >>> cr.trace(lambda x: x * x, 3.0).draw(path).name
    'g.dot'
    """
    path = Path(path)
    fmt = _format_of(path, format)
    limit = MAX_NODES if max_nodes is None else max_nodes
    if fmt != "dot" and len(graph.nodes) > limit:
        raise GraphTooLargeError(
            f"the graph has {len(graph.nodes):,} nodes, more than the {limit:,} a drawing can lay out in "
            "reasonable time; draw a part of it (graph.subgraph([...names])), write .dot source instead, "
            "or print the tables (text output)")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"cannot write {path}: folder {path.parent} does not exist")
    source = to_dot(graph, **options)
    if fmt == "dot":
        atomic_write(path, source.encode("utf-8"))
        return path
    if shutil.which("dot") is None:
        dot_path = path.with_suffix(".dot")
        atomic_write(dot_path, source.encode("utf-8"))
        raise GraphvizError(f"cannot render {path}: the Graphviz program `dot` is not installed; {_INSTALL}. "
                            f"The DOT source was written to {dot_path}")
    atomic_write(path, render(source, fmt))
    return path


def render_svg_or_none(graph):
    """SVG text for Jupyter, or None where Graphviz is missing or the graph is too large."""
    if len(graph.nodes) > MAX_NODES or shutil.which("dot") is None:
        return None
    try:
        return render(to_dot(graph), "svg").decode("utf-8")
    except GraphvizError:
        return None
