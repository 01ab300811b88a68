"""`chainrule explain`: the forward and backward computation of an expression, as tables."""
from __future__ import annotations

import argparse
import sys

from chainrule.expr import MAX_DEPTH, MAX_LENGTH

FORMATS = ("text", "markdown", "latex", "html")


def _functions():
    import chainrule as cr
    from chainrule.expr import DEFAULT_FUNCTIONS

    table = {name: getattr(cr, name) for name in ("add", "subtract", "multiply", "divide", "power", "negative")}
    for name in DEFAULT_FUNCTIONS:
        table[name] = cr.log if name == "ln" else getattr(cr, name)
    return table


class _ExpressionParser(argparse.ArgumentParser):
    """A subcommand parser that reads an argument starting with '-' as the expression ("-x**2")
    unless it is one of the subcommand's own options."""

    def _parse_optional(self, arg_string):
        found = super()._parse_optional(arg_string)
        # Python 3.12 returns a list of candidate options, 3.11 one tuple; the action is None
        # when no option of this parser matches.
        candidates = found if isinstance(found, list) else [found]
        if (found is not None and arg_string.startswith("-") and not arg_string.startswith("--")
                and all(c[0] is None for c in candidates)):
            return None
        return found


class _AtAction(argparse.Action):
    """`--at NAME=VALUE ...`: an item without '=' is the expression when none was given before,
    since `--at x=2 z=3 'x*z'` would otherwise swallow it."""

    def __call__(self, parser, namespace, values, option_string=None):
        items = list(getattr(namespace, self.dest) or [])
        for value in values:
            if "=" not in value and getattr(namespace, "expression", None) is None:
                namespace.expression = value
            else:
                items.append(value)
        setattr(namespace, self.dest, items)


class _ExpressionAction(argparse.Action):
    """The positional EXPRESSION: argparse matches an absent optional positional (with None) at
    every gap between options, which must not undo an expression that --at took."""

    def __call__(self, parser, namespace, values, option_string=None):
        if values is not None or getattr(namespace, self.dest, None) is None:
            setattr(namespace, self.dest, values)


def add_expression_arguments(p):
    p.__class__ = _ExpressionParser  # made by the subparsers action as a plain ArgumentParser
    p.add_argument("expression", nargs="?", default=None, action=_ExpressionAction,
                   help="e.g. 'exp(x*z) + x*z/ln(x) + sin(ln(x))/(x*z)' (+ - * / ** ^, exp log ln sin cos tanh "
                        "sqrt abs sigmoid relu softplus maximum minimum); at most "
                        f"{MAX_LENGTH} characters and {MAX_DEPTH} levels of nesting")
    p.add_argument("--at", nargs="+", action=_AtAction, default=[], metavar="NAME=VALUE",
                   help="the value of every variable, e.g. --at x=2 z=3")


_NOTHING_TO_DIFFERENTIATE = "the expression has no variables, so there is nothing to differentiate"


def expression_function(text, at, *, constant_first=False):
    """Parse ``text`` and the --at values, check that they fit, and return (expression, values,
    function of the variables built from chainrule operations); UsageError on any problem."""
    from chainrule.cli import UsageError
    from chainrule.expr import ExpressionError, missing_variables, parse, parse_assignments

    if text is None:
        raise UsageError("give the expression, e.g. 'x*z' --at x=2 z=3")
    try:
        expression = parse(text)
    except ExpressionError as err:
        raise UsageError(f"cannot parse the expression: {err}") from None
    try:
        values = parse_assignments(at)
    except ExpressionError as err:
        raise UsageError(f"bad --at value: {err}") from None
    if constant_first and not expression.variables:  # diff: say this before judging --at
        raise UsageError(_NOTHING_TO_DIFFERENTIATE)
    missing = missing_variables(expression, values)
    if missing:
        example = " ".join(f"{v}=..." for v in missing)
        raise UsageError(f"no value for {', '.join(missing)}: give {'it' if len(missing) == 1 else 'them'} "
                         f"with --at {example}")
    extra = [name for name in values if name not in expression.variables]
    if extra:
        raise UsageError(f"--at gives {', '.join(extra)}, which the expression does not use "
                         f"(its variables: {', '.join(expression.variables) or 'none'})")
    if not expression.variables:
        raise UsageError(_NOTHING_TO_DIFFERENTIATE)
    return expression, values, expression.to_function(_functions())


def expression_graph(text, at):
    """Parse ``text``, check the --at values and trace the expression into a Graph (UsageError on
    any problem). Shared subexpressions are one node: the parser builds a DAG."""
    import numpy as np

    import chainrule as cr
    from chainrule.cli import UsageError

    expression, values, f = expression_function(text, at)

    def named(*args):
        out = f(*args)
        if "y" not in expression.variables and not any(out is a for a in args):
            out = cr.name(out, "y")
        return out

    named.__signature__ = f.__signature__
    with np.errstate(all="ignore"):
        graph = cr.trace(named, *[values[v] for v in expression.variables])
        graph.backward()
    at_text = ", ".join(f"{v}={values[v]:g}" for v in expression.variables)
    for node in graph.nodes:
        if not np.all(np.isfinite(node.value)):
            raise UsageError(f"the expression is not finite at {at_text}: {node.name} = "
                             f"{cr.viz.tables.TEXT.definition(node)} = {cr.viz.fmt_value(node.value)}")
    for node in graph.inputs:
        if not np.all(np.isfinite(graph.adjoint(node.name))):
            raise UsageError(f"the derivative with respect to {node.name} is not finite at {at_text}")
    return graph


def write_output(text, path):
    """Print ``text``, or write it atomically to ``path`` (UsageError for a bad path)."""
    from chainrule.cli import UsageError
    from chainrule.serialization import atomic_write

    if path is None or path == "-":
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        return
    try:
        atomic_write(path, (text if text.endswith("\n") else text + "\n").encode("utf-8"))
    except OSError as err:
        raise UsageError(str(err)) from None
    print(f"wrote {path}", file=sys.stderr)


def register(sub):
    p = sub.add_parser("explain", help="print the forward and backward computation of an expression",
                       description="Trace EXPRESSION at the given values and print the forward table "
                                   "(each intermediate quantity and its value) and the backward table (each "
                                   "adjoint g_u = sum of g_c * dc/du, every chain-rule term shown).")
    add_expression_arguments(p)
    p.add_argument("--forward-mode", nargs="?", const="", default=None, metavar="VAR",
                   help="also print forward-mode tangents along d/dVAR (default: the first variable)")
    p.add_argument("--code", action="store_true",
                   help="print the compiled program instead (cr.compile): the forward and backward computation "
                        "as straight-line Python, one line per primitive")
    p.add_argument("--format", choices=FORMATS, default="text", help="output format (default text)")
    p.add_argument("--precision", type=int, default=6, help="significant digits (default 6)")
    p.add_argument("-o", "--output", default=None, metavar="PATH", help="write to PATH instead of printing")
    p.set_defaults(func=run)


def run(args):
    from chainrule.cli import UsageError

    if not 1 <= args.precision <= 17:
        raise UsageError(f"--precision must be between 1 and 17, got {args.precision}")
    graph = expression_graph(args.expression, args.at)  # checks the expression and its values
    if args.code:
        write_output(compiled_source(args.expression, args.at), args.output)
        return 0
    direction = args.forward_mode
    if direction == "":
        direction = graph.inputs[0].name
    if direction is not None and direction not in [n.name for n in graph.inputs]:
        raise UsageError(f"--forward-mode {direction}: not a variable of the expression "
                         f"(its variables: {', '.join(n.name for n in graph.inputs)})")
    write_output(graph.explain(args.format, forward_mode=direction, precision=args.precision), args.output)
    return 0


def compiled_source(text, at):
    """The source of the compiled value and gradient of the expression (every variable), as
    ``cr.compile`` generates it for these values."""
    import numpy as np

    import chainrule as cr

    expression, values, f = expression_function(text, at)
    names = expression.variables
    vg = cr.value_and_grad(f, argnums=tuple(range(len(names))))
    vg.__name__ = "value_and_gradient"
    return cr.compile(vg, floats=False).source(*[np.float64(values[v]) for v in names])
