"""`chainrule exercise`: a random exercise with blank forward and backward tables, or its key."""
from __future__ import annotations


def _bounded(low, high, what):
    import argparse

    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what} must be an integer, got {text!r}") from None
        if not low <= value <= (high if high is not None else value):
            bound = f"between {low} and {high}" if high is not None else f"at least {low}"
            raise argparse.ArgumentTypeError(f"{what} must be {bound}, got {value}")
        return value

    return parse


def register(sub):
    from chainrule.viz.exercise import FORMATS, KINDS

    p = sub.add_parser("exercise", help="print a differentiation exercise (blank tables), or its answers",
                       description="Make a random small function (quiz: like the lecture's differentiation quiz; "
                                   "graph: a random computation graph; network: a small network with given "
                                   "weights and one example) and print it with blank forward and backward "
                                   "tables and a multiple-choice question; --answers fills them in. The same "
                                   "seed gives the same exercise on any machine.")
    p.add_argument("--kind", choices=KINDS, default="quiz", help="what to differentiate (default quiz)")
    p.add_argument("--seed", type=_bounded(0, None, "--seed"), default=0, help="random seed (default 0)")
    p.add_argument("--difficulty", type=_bounded(1, 3, "--difficulty"), default=1,
                   help="1 (small) to 3 (larger, more shared quantities); default 1")
    p.add_argument("--format", choices=FORMATS, default="text",
                   help="text, markdown, latex (a whole document), html (a whole page) or json "
                        "(expression, at and, with --answers, gradient); default text")
    p.add_argument("--answers", action="store_true", help="fill in the tables and give the key")
    p.add_argument("-o", "--output", default=None, metavar="PATH", help="write to PATH instead of printing")
    p.set_defaults(func=run)


def run(args):
    from chainrule.cli.explain import write_output
    from chainrule.viz.exercise import exercise

    ex = exercise(args.kind, seed=args.seed, difficulty=args.difficulty)
    write_output(ex.render(args.format, answers=args.answers), args.output)
    return 0
