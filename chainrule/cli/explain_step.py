"""`chainrule explain-step`: one SGD step of a network on one example, traced like a course handout."""
from __future__ import annotations

# The course's tiny data set (CMU 10-601 HW5 tinyTrain.csv): label first, then 5 features.
TINY = "7,0,1,1,1,0\n9,0,0,0,1,0\n"


def register(sub):
    from chainrule.cli.explain import FORMATS

    p = sub.add_parser("explain-step", help="trace one training step of a network on one example",
                       description="Build an MLP (one hidden layer by default, softmax output, cross-entropy "
                                   "loss), take SGD steps on examples of a data set in file order and print, for "
                                   "each, the forward pass (pre-activations, activations, scores, prediction, "
                                   "loss), the backward pass (d loss / d each of these and each parameter) and "
                                   "the updated parameters.")
    p.add_argument("--data", default="tiny", metavar="tiny|digits|PATH",
                   help="tiny: the course's 2-example set (5 features, 10 classes); digits: the bundled 8x8 "
                        "digits scaled to [0, 1]; or a CSV / sparse file with the label first (default tiny)")
    p.add_argument("--index", type=int, default=0, help="the example to start at (0-based, default 0)")
    p.add_argument("--steps", type=int, default=1, help="how many consecutive examples to step through (default 1)")
    p.add_argument("--hidden", type=int, nargs="+", default=[4], metavar="UNITS",
                   help="hidden layer widths (default 4)")
    p.add_argument("--activation", default="sigmoid", help="hidden activation (default sigmoid)")
    p.add_argument("--lr", type=float, default=0.1, help="learning rate (default 0.1)")
    p.add_argument("--init", default="zeros", help="weight initializer: zeros, uniform (U[-0.1, 0.1]), "
                                                   "xavier_uniform, ... (biases start at 0; default zeros)")
    p.add_argument("--seed", type=int, default=0, help="random seed of the initializer (default 0)")
    p.add_argument("--classes", type=int, default=None,
                   help="number of classes (default: largest label + 1, at least 10 for the tiny set)")
    p.add_argument("--format", choices=FORMATS, default="text", help="output format (default text)")
    p.add_argument("--precision", type=int, default=6, help="significant digits (default 6)")
    p.add_argument("-o", "--output", default=None, metavar="PATH", help="write the tables to PATH")
    p.add_argument("--graph", default=None, metavar="PATH",
                   help="also draw the first step's computation graph (.svg, .png or .dot)")
    p.set_defaults(func=run)


def _load(spec):
    import numpy as np

    from chainrule.cli import UsageError
    from chainrule.data import DataError, load_digits, load_file

    if spec == "tiny":
        rows = np.array([[float(v) for v in line.split(",")] for line in TINY.split()])
        return rows[:, 1:], rows[:, 0].astype(np.int64), 10
    if spec == "digits":
        X, y = load_digits()
        return X / 16.0, y, 10
    try:
        X, y = load_file(spec)
    except DataError as err:
        raise UsageError(str(err)) from None
    if y.dtype.kind not in "iu":
        raise UsageError(f"{spec}: the labels (first column) must be class numbers 0, 1, 2, ...; got non-integers")
    if y.min() < 0:
        raise UsageError(f"{spec}: class labels must be 0 or more, found {y.min()}")
    return X, y, None


def run(args):
    import numpy as np

    import chainrule as cr
    from chainrule.cli import UsageError
    from chainrule.cli.explain import write_output
    from chainrule.viz.step import explain_step
    from chainrule.viz.tables import join_tables

    if not 1 <= args.precision <= 17:
        raise UsageError(f"--precision must be between 1 and 17, got {args.precision}")
    if not np.isfinite(args.lr) or args.lr <= 0:
        raise UsageError(f"--lr must be a positive number, got {args.lr}")
    if args.steps < 1:
        raise UsageError(f"--steps must be at least 1, got {args.steps}")
    if any(h < 1 for h in args.hidden):
        raise UsageError(f"--hidden widths must be positive, got {args.hidden}")
    X, y, k_min = _load(args.data)
    n = len(y)
    if not 0 <= args.index < n:
        raise UsageError(f"--index {args.index} is out of range: the data has {n} examples (0..{n - 1})")
    if args.index + args.steps > n:
        raise UsageError(f"--index {args.index} with --steps {args.steps} runs past the last example "
                         f"({n} examples)")
    k = max(int(y.max()) + 1, k_min or 2)
    if args.classes is not None:
        if args.classes <= int(y.max()):
            raise UsageError(f"--classes {args.classes} is too few: the data has label {int(y.max())}")
        k = args.classes
    try:
        model = cr.nn.MLP(X.shape[1], args.hidden, k, activation=args.activation, init=args.init, rng=args.seed)
    except (ValueError, TypeError) as err:
        raise UsageError(str(err)) from None
    parts = []
    graph = None
    for i in range(args.index, args.index + args.steps):
        step = explain_step(model, X[i], y[i], lr=args.lr)
        graph = graph or step.graph
        head = f"Step on example {i} (label {y[i]}): loss {cr.viz.fmt_value(step.loss, args.precision)}"
        tables = step.tables(args.precision)
        tables[0].title = f"{head}\n{tables[0].title}" if args.format == "text" else f"{head}: {tables[0].title}"
        parts.append(join_tables(tables, args.format))
    sep = {"html": "\n", "latex": "\n\n\\bigskip\n\n"}.get(args.format, "\n\n")
    text = sep.join(parts)
    if args.format == "html":
        from chainrule.viz.page import html_page

        text = html_page("chainrule explain-step", text)
    write_output(text, args.output)
    if args.graph is not None:
        from chainrule.viz.dot import GraphTooLargeError, GraphvizError

        try:
            graph.draw(args.graph, rows=True)  # one row per layer, not one long strip
        except (ValueError, GraphTooLargeError, OSError) as err:
            raise UsageError(str(err)) from None
        except GraphvizError as err:
            print(f"chainrule explain-step: error: {err}", file=__import__("sys").stderr)
            return 1
    return 0
