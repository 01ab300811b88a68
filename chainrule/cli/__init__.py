"""The `chainrule` command: one subcommand per module of this package."""
from __future__ import annotations

import argparse
import importlib
import os
import sys

# Each name is a module of chainrule.cli with `register(subparsers)`; the module is imported
# only when the command line is parsed, so `import chainrule` never pays for the CLI.
COMMANDS = ("demo", "explain", "graph", "explain_step", "train", "predict", "evaluate", "diff", "exercise", "sweep",
            "playground")


class UsageError(Exception):
    """Bad command-line input: printed as `chainrule: error: ...` with exit code 2, no traceback."""


def _threads(text):
    from chainrule.core.threads import parse_threads

    try:
        return parse_threads(text, "N")
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


THREADS_HELP = ("BLAS threads: 'auto' (default: one, and for training one unless the largest layer's "
                "batch x fan_in x fan_out reaches 5e7 multiply-adds), 0 for the libraries' own choice, or a "
                "number; the environment variable CHAINRULE_THREADS sets the default")


def build_parser() -> argparse.ArgumentParser:
    from chainrule import __version__

    parser = argparse.ArgumentParser(
        prog="chainrule",
        description="Computation graphs, four ways to differentiate them, and neural networks trained on top.",
    )
    parser.add_argument("--version", action="version", version=f"chainrule {__version__}")
    parser.add_argument("--threads", type=_threads, default=None, metavar="N", help=THREADS_HELP)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"chainrule.cli.{name}").register(sub)
    # `chainrule COMMAND --threads N` as well; SUPPRESS: a command's default must not hide the
    # global option's value.
    for command in {id(p): p for p in sub.choices.values()}.values():
        command.add_argument("--threads", type=_threads, default=argparse.SUPPRESS, metavar="N", help=THREADS_HELP)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    from chainrule.core.threads import ENV, blas_threads, parse_threads

    try:
        threads = args.threads if args.threads is not None else parse_threads(os.environ.get(ENV), ENV)
    except ValueError as err:
        print(f"chainrule: error: {err}", file=sys.stderr)
        return 2
    try:
        # Every command runs under the thread policy: one BLAS thread (the sizes are not known
        # yet), and `fit` inside `train` decides again from its network (chainrule.core.threads).
        with blas_threads(threads=threads):
            return args.func(args) or 0
    except UsageError as err:
        print(f"chainrule {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`chainrule explain ... | head`): stop quietly, as Unix tools do.
        # stdout is pointed at devnull so the interpreter's final flush cannot raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
