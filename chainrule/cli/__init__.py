"""The `chainrule` command: one subcommand per module of this package."""
from __future__ import annotations

import argparse
import importlib
import sys

# Each name is a module of chainrule.cli with `register(subparsers)`; the module is imported
# only when the command line is parsed, so `import chainrule` never pays for the CLI.
COMMANDS = ("demo", "explain", "graph", "explain_step", "train", "predict", "evaluate", "diff", "sweep")


class UsageError(Exception):
    """Bad command-line input: printed as `chainrule: error: ...` with exit code 2, no traceback."""


def build_parser() -> argparse.ArgumentParser:
    from chainrule import __version__

    parser = argparse.ArgumentParser(
        prog="chainrule",
        description="Computation graphs, four ways to differentiate them, and neural networks trained on top.",
    )
    parser.add_argument("--version", action="version", version=f"chainrule {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"chainrule.cli.{name}").register(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return args.func(args) or 0
    except UsageError as err:
        print(f"chainrule {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
