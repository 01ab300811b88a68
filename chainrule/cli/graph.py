"""`chainrule graph`: draw the computation graph of an expression (SVG, PNG or DOT)."""
from __future__ import annotations

import sys


def register(sub):
    from chainrule.cli.explain import add_expression_arguments

    p = sub.add_parser("graph", help="draw the computation graph of an expression",
                       description="Trace EXPRESSION at the given values and draw its graph: one node per "
                                   "quantity with its operation, value and gradient. The format follows "
                                   "the extension of --output: .svg and .png need Graphviz's `dot`, .dot is "
                                   "the Graphviz source.")
    add_expression_arguments(p)
    p.add_argument("-o", "--output", required=True, metavar="PATH", help="graph.svg, graph.png or graph.dot")
    p.add_argument("--format", default=None, metavar="FORMAT",
                   help="svg, png or dot (default: from the extension of --output)")
    p.add_argument("--max-nodes", type=int, default=None, metavar="N",
                   help="refuse to render graphs larger than this (default 2000)")
    p.set_defaults(func=run)


def run(args):
    from pathlib import Path

    from chainrule.cli import UsageError
    from chainrule.cli.explain import expression_graph
    from chainrule.viz.dot import DRAW_FORMATS, GraphTooLargeError, GraphvizError, _format_of

    path = Path(args.output)
    if args.format is not None and args.format not in DRAW_FORMATS:
        raise UsageError(f"unknown format {args.format!r}; choose one of {', '.join(DRAW_FORMATS)}")
    try:
        _format_of(path, args.format)
    except ValueError as err:
        raise UsageError(str(err)) from None
    if not path.parent.is_dir():
        raise UsageError(f"cannot write {path}: folder {path.parent} does not exist")
    graph = expression_graph(args.expression, args.at)
    try:
        graph.draw(path, format=args.format, max_nodes=args.max_nodes)
    except (GraphTooLargeError, OSError) as err:
        raise UsageError(str(err)) from None
    except GraphvizError as err:
        print(f"chainrule graph: error: {err}", file=sys.stderr)
        return 1
    print(f"wrote {path} ({len(graph.nodes)} nodes)", file=sys.stderr)
    return 0
