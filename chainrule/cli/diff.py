"""`chainrule diff`: differentiate an expression by every method and compare them."""
from __future__ import annotations

CHOICES = ("all", "reverse", "forward", "numeric", "symbolic")


def register(sub):
    from chainrule.cli.explain import add_expression_arguments

    p = sub.add_parser("diff", help="differentiate an expression four ways and compare the results",
                       description="Differentiate EXPRESSION at the given values by reverse mode, forward mode, "
                                   "finite differences (central and complex step) and symbolic differentiation "
                                   "(naive and shared), and print each gradient, its difference from reverse "
                                   "mode and its cost, then the symbolic derivatives.")
    add_expression_arguments(p)
    p.add_argument("--method", choices=CHOICES, default="all",
                   help="which methods to run (default all; reverse mode always runs as the reference)")
    p.add_argument("--json", action="store_true",
                   help="print JSON: per method the gradient as a list in the order of the variables")
    p.add_argument("--markdown", action="store_true", help="print a Markdown table instead of text")
    p.set_defaults(func=run)


def run(args):
    import json

    import numpy as np

    from chainrule.cli import UsageError
    from chainrule.cli.explain import expression_function
    from chainrule.core.errors import ChainruleError
    from chainrule.modes.compare import compare

    if args.json and args.markdown:
        raise UsageError("choose one of --json and --markdown")
    expression, values, f = expression_function(args.expression, args.at, constant_first=True)
    point = [values[v] for v in expression.variables]
    with np.errstate(all="ignore"):  # a value outside the domain is reported below, once
        try:
            report = compare(f, *point, methods=args.method, name="f")
        except ChainruleError as err:
            at = ", ".join(f"{v}={values[v]:g}" for v in expression.variables)
            raise UsageError(f"cannot differentiate {expression} at {at}: {err}") from None
    if args.json:
        data = report.to_dict()
        data["expression"] = str(expression)
        print(json.dumps(data, indent=2))
    elif args.markdown:
        print(f"f({', '.join(expression.variables)}) = {expression}\n")
        print(report.to_markdown())
    else:
        print(f"f({', '.join(expression.variables)}) = {expression}")
        print(report.to_text())
    return 0
