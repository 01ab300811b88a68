"""`chainrule sweep`: train over a grid of `chainrule train` options and seeds, on Dask."""
from __future__ import annotations

import argparse
import sys

EXAMPLE = ('chainrule sweep --data spiral --hidden "8" "8 8" "8 8 8" --activation relu tanh sigmoid '
           "--init zeros xavier_uniform --lr 0.01 0.1 --seeds 5 --epochs 100")


def register(sub):
    from chainrule.sweeps import train_options

    p = sub.add_parser(
        "sweep", help="train over a grid of options and seeds, on Dask (one machine or a cluster)",
        description="Run `chainrule train` once per combination of the values given and per seed, on Dask's "
                    "distributed scheduler: a local cluster of one single-threaded worker process per core, "
                    "or an existing one (--scheduler). Every option of `chainrule train` takes one or more "
                    "values; --hidden takes one quoted list of widths per value (\"8 8\"; \"none\" for no hidden "
                    "layer). Each finished run is appended at once to FOLDER/results.jsonl; running the same "
                    "command again skips the runs stored there (resume). Prints the mean and standard "
                    "deviation over seeds for each configuration and each value of each decision.",
        epilog=f"example: {EXAMPLE}")
    g = p.add_argument_group("options of chainrule train (each takes one or more values)")
    for name, action in train_options().items():
        flag = action.option_strings[0] if action.option_strings else f"--{name}"
        switch = isinstance(action, argparse._StoreTrueAction)
        g.add_argument(*action.option_strings, dest=name, nargs="+", default=None,
                       metavar="true|false" if switch else ("WIDTHS" if action.nargs == "*" else action.metavar or "V"),
                       help=(action.help or "").replace("%", "%%") if flag else None)
    g = p.add_argument_group("sweep")
    g.add_argument("--seeds", type=int, default=3, metavar="N", help="runs per configuration, seeds 0..N-1 (default 3)")
    g.add_argument("--sample", type=int, default=None, metavar="N",
                   help="N configurations drawn at random from the grid instead of all of them")
    g.add_argument("--sample-seed", type=int, default=0, help="seed of --sample's draw (default 0)")
    g.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="an existing Dask scheduler, e.g. tcp://HOST:8786 (default: $DASK_SCHEDULER_ADDRESS, "
                        "else a local cluster); 'serial' runs one after another in this process")
    g.add_argument("--workers", type=int, default=None, help="worker processes of the local cluster (default: "
                   "one per core)")
    g.add_argument("--out", default="chainrule-sweep", metavar="FOLDER",
                   help="folder of the results (default ./chainrule-sweep); the same folder resumes a sweep")
    g.add_argument("--report", action="store_true", help="also write FOLDER/report.html: tables and figures "
                   "on one self-contained page")
    g.add_argument("--no-figures", action="store_true", help="write no figures")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args):
    from chainrule.cli import UsageError
    from chainrule.sweeps import SweepError, sweep, train_options
    from chainrule.sweeps.report import summary, write_figures

    grid, fixed = {}, {}
    for name in train_options():
        values = getattr(args, name)
        if values is None:
            continue
        if len(values) == 1:
            fixed[name] = values[0]
        else:
            grid[name] = values
    if args.seeds < 1:
        raise UsageError(f"--seeds must be a positive number of runs per configuration, got {args.seeds}")
    if args.workers is not None and args.workers < 1:
        raise UsageError(f"--workers must be a positive integer, got {args.workers}")
    try:
        rows = sweep(grid, seeds=args.seeds, out=args.out, scheduler=args.scheduler, workers=args.workers,
                     sample=args.sample, sample_seed=args.sample_seed, progress=not args.no_progress,
                     report=args.report, **fixed)
    except SweepError as err:
        raise UsageError(str(err)) from None
    if not rows:
        print("no run finished", file=sys.stderr)
        return 1
    print(summary(rows))
    written = [] if args.no_figures else write_figures(rows, args.out)
    if args.report:
        written.append("report.html")
    if written:
        print(f"wrote {', '.join(written)} to {args.out}")
    return 1 if rows.failed else 0
