"""Sweeps: many runs of `chainrule train` over a grid of options and seeds, on a Dask cluster.

``cr.sweep(grid, data=..., seeds=..., out=...)`` trains one network per (grid point, seed) with
the very function `chainrule train` uses (``chainrule.cli.train.setup``), on Dask's distributed
scheduler: a ``LocalCluster`` of one single-threaded worker process per core by default, or an
existing cluster (``scheduler="tcp://HOST:8786"`` or ``DASK_SCHEDULER_ADDRESS``). Dask is used
through its public client API only: ``Client``, ``scatter``, ``submit``, ``as_completed``.

Nothing is lost: each finished run is appended at once to ``OUT/results.jsonl`` (one JSON line,
flushed and fsync'ed), and a rerun skips the runs already there. A worker that dies mid-run
has its runs retried on another worker by the scheduler.

(The package is ``chainrule.sweeps``, plural: a submodule named ``sweep`` would replace the
function ``cr.sweep`` on the package the moment it is imported.)
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import random
import socket
import sys
import time
from pathlib import Path

from chainrule.core.errors import ChainruleError

RESULTS_FILE, SPEC_FILE = "results.jsonl", "sweep.json"
# A full grid is written out run by run before anything runs: larger ones are sampled instead.
MAX_RUNS = 100_000
# Options of `chainrule train` that are about where output goes, not about the run.
NOT_SWEPT = ("out", "overwrite", "no_progress", "no_figures", "json", "seed", "help")
# Fields of a row that differ between two runs of the same configuration.
TIMING = ("seconds", "examples_per_second", "wall_time", "worker")


class SweepError(ChainruleError, ValueError):
    """A grid, option or value that cannot make a sweep; raised before anything runs."""


# ------------------------------------------------------------------------------ options
def _train_parser():
    from chainrule.cli import train

    parser = argparse.ArgumentParser(prog="chainrule")
    train.register(parser.add_subparsers(dest="command"))
    return parser


def train_options():
    """{name: argparse action} of every option of `chainrule train` a sweep may vary."""
    parser = _train_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices["train"]
    return {a.dest: a for a in sub._actions if a.dest not in NOT_SWEPT}


def _convert(name, action, value):
    """One grid value as `chainrule train` would hold it after parsing its command line."""
    if isinstance(action, argparse._StoreTrueAction):
        if isinstance(value, str) and value.lower() in ("true", "yes", "1", "false", "no", "0"):
            return value.lower() in ("true", "yes", "1")
        if not isinstance(value, bool):
            raise SweepError(f"{name}: {value!r} is not a switch value; valid: true, false")
        return value
    if action.nargs == "*":  # --hidden: "8 8" or [8, 8]; "" or "none" for no hidden layer
        if isinstance(value, str):
            value = [] if value.strip().lower() in ("", "none") else value.replace(",", " ").split()
        try:
            return [int(v) for v in value]
        except (TypeError, ValueError):
            raise SweepError(f"{name}: {value!r} is not a list of widths, e.g. '8 8' or [8, 8]") from None
    if value is None or action.type is None:
        return value
    try:
        out = action.type(value)
    except (TypeError, ValueError):
        raise SweepError(f"{name}: {value!r} is not {'an integer' if action.type is int else 'a number'}") from None
    if action.type is int and isinstance(value, float) and value != out:
        raise SweepError(f"{name}: {value!r} is not an integer")
    return out


def _name(key, valid):
    name = key.lstrip("-").replace("-", "_")
    if name == "seed":
        raise SweepError("seed is not a grid option: pass seeds=N (seeds 0..N-1) or a list of seeds")
    if name not in valid:
        raise SweepError(f"unknown option {key!r}; valid options (those of `chainrule train`): "
                         f"{', '.join(sorted(valid))}")
    return name


def _key(point, seed):
    """A run's identity in the results store: a hash of its options and seed."""
    text = json.dumps({**point, "seed": seed}, sort_keys=True)
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def _namespace(defaults, point, seed):
    return argparse.Namespace(**{**vars(defaults), **point, "seed": seed})


def _grid_point(axes, sizes, index):
    """The grid point number ``index`` in itertools.product's order (the last option fastest)."""
    point = {}
    for (name, values), size in zip(reversed(list(axes.items())), reversed(sizes)):
        index, i = divmod(index, size)
        point[name] = values[i]
    return dict(reversed(list(point.items())))


def plan(grid, seeds=3, sample=None, sample_seed=0, **fixed):
    """The runs of a sweep, checked: a list of (key, point, seed) with point the options of one
    run. ``grid`` maps option names to lists of values (every combination is a point; with
    ``sample`` N, N points drawn at random); ``fixed`` options apply to every run. Raises
    SweepError, naming the valid options or values, before anything runs.

    >>> runs = plan({"activation": ["relu", "tanh"], "hidden": ["8", "8 8"]}, seeds=2, data="xor")
    >>> len(runs), runs[0][1]["hidden"], runs[0][2]
    (8, [8], 0)
    """
    from chainrule.cli import UsageError
    from chainrule.cli import train

    if not isinstance(grid, dict):
        raise SweepError(f"the grid must be a dict of option -> list of values, got {type(grid).__name__}")
    actions = train_options()
    axes = {}
    for key, values in grid.items():
        name = _name(key, actions)
        if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
            raise SweepError(f"grid {key!r}: give a list of values, got {values!r}")
        values = [_convert(name, actions[name], v) for v in values]
        if not values:
            raise SweepError(f"grid {key!r}: no values")
        axes[name] = values
    fixed = {_name(k, actions): v for k, v in fixed.items()}
    fixed = {k: _convert(k, actions[k], v) for k, v in fixed.items()}
    # seeds=N is counted, not listed, until the number of runs is known to be bounded
    n_seeds = seeds if isinstance(seeds, int) else len(seeds := [int(s) for s in seeds])
    if n_seeds < 1:
        raise SweepError("seeds: at least one seed")
    sizes = [len(v) for v in axes.values()]
    total = math.prod(sizes)
    if sample is not None and sample < 1:
        raise SweepError(f"sample must be a positive number of grid points, got {sample}")
    n_points = total if sample is None else min(sample, total)
    if n_points * n_seeds > MAX_RUNS:
        what = f"the grid has {total} points" if sample is None else f"sample={sample} draws {n_points} points"
        raise SweepError(f"{what} x {n_seeds} seeds = {n_points * n_seeds} runs, more than {MAX_RUNS}; "
                         + ("pass sample=N (--sample N) to draw N points from it" if sample is None
                            else "draw fewer points or seeds"))
    seeds = list(range(seeds)) if isinstance(seeds, int) else seeds
    # draw indices into the grid, so a huge grid is sampled without being written out
    picks = range(total) if sample is None else random.Random(sample_seed).sample(range(total), n_points)
    points = [_grid_point(axes, sizes, i) for i in picks] if axes else [{}]
    defaults = _train_parser().parse_args(["train"])
    runs = []
    for point in points:
        point = {**fixed, **point}
        for seed in seeds:
            args = _namespace(defaults, point, seed)
            try:
                train.resolve(args)  # every value, each with its valid choices named
            except UsageError as err:
                where = ", ".join(f"{k}={v!r}" for k, v in point.items() if k in axes)
                raise SweepError(f"{err}" + (f" (grid point {where})" if where else "")) from None
            runs.append((_key(point, seed), point, seed))
    return runs


# ------------------------------------------------------------------------------ one run
def data_key(args):
    """What the data of a run depends on: runs with the same key share one scattered copy."""
    from chainrule.cli.train import TOY

    key = [args.data, args.label, args.n_features, args.test_data]
    if args.data in TOY:  # a generated set is drawn from the run's seed
        key += [args.n_samples, args.noise, args.seed]
    return json.dumps(key)


def run_one(point, seed, data=None):
    """Train one configuration, as `chainrule train` would with these options, and return its row:
    the options, the seed, train/validation/test metrics, the loss curves, wall time and worker.
    A run that cannot go on (a loss that became NaN) is a row with its ``error``."""
    from chainrule import metrics as M
    from chainrule.cli import UsageError, train
    from chainrule.nn.training import predict

    began = time.perf_counter()
    args = _namespace(_train_parser().parse_args(["train"]), point, seed)
    job = train.setup(args, data)
    row = {"run": _key(point, seed), **point, "seed": seed}
    try:
        history = job.fit(progress=False)
    except UsageError as err:
        return {**row, "error": str(err), "wall_time": time.perf_counter() - began, "worker": _worker()}
    results = job.evaluate()
    if job.classification:
        results = {"train_accuracy": M.accuracy(job.ytr, predict(job.model, job.Xtr, job.loss)), **results}
    curves = {f"{k}_curve": list(v) for k, v in history.history.items()}
    options = {k: v for k, v in vars(args).items() if k not in NOT_SWEPT + ("func", "command")}
    return {**row, "train_loss": history.history["loss"][-1], **results, **curves, "options": options,
            "wall_time": time.perf_counter() - began, "worker": _worker()}


def _worker():
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):
        return f"{socket.gethostname()}:{os.getpid()}"


# ------------------------------------------------------------------------------ the store
class Store:
    """The append-only results file: one JSON line per finished run. The rows that arrive together
    are written with one write() and one fsync before the next rows are taken, so a crash loses at
    most the lines being written (a cut last line is cut off at the next open; its run reruns)."""

    def __init__(self, folder):
        self.path = Path(folder) / RESULTS_FILE
        self.rows = {}
        if self.path.exists():
            data = self.path.read_bytes()
            end = data.rfind(b"\n") + 1
            if end < len(data):  # a line cut by a crash: drop it, it will run again
                with open(self.path, "r+b") as f:
                    f.truncate(end)
            for number, line in enumerate(data[:end].splitlines(), 1):
                try:
                    row = json.loads(line)
                    self.rows.setdefault(row["run"], row)
                except (ValueError, KeyError, TypeError) as err:
                    raise SweepError(f"{self.path}: line {number} is not a result row ({err}); move the file "
                                     "away to start afresh") from None

    def append(self, *rows):
        from chainrule.serialization import _json_default

        if not rows:
            return
        lines = [json.dumps(row, default=_json_default) + "\n" for row in rows]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "ab") as f:
            f.write("".join(lines).encode())
            f.flush()
            os.fsync(f.fileno())
        for line in lines:
            row = json.loads(line)  # what a later read gives (tuples as lists, numpy as numbers)
            self.rows[row["run"]] = row


# ------------------------------------------------------------------------------ results
class SweepResult(list):
    """The rows of a sweep (a list of dicts, in grid order) with ``frame()`` (a pandas
    DataFrame), ``summary()`` (the table of means over seeds) and ``out`` (the folder)."""

    out = None
    failed = 0

    def frame(self):
        try:
            import pandas as pd
        except ImportError:
            raise ImportError("SweepResult.frame needs pandas (pip install pandas); the rows are plain dicts")
        return pd.DataFrame(list(self))

    def summary(self, metric=None):
        from chainrule.sweeps.report import summary

        return summary(self, metric)


MAX_LOCAL_WORKERS = 256  # processes of one machine's cluster; more only share the same cores


def _local_workers(workers, runs):
    """Worker processes of a local cluster: ``workers`` (at most ``MAX_LOCAL_WORKERS``) or one per
    core, and never more than the runs to do (each process costs its memory and start-up, so
    --workers 100000 for four runs starts four)."""
    n = workers or (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count())
    n = max(1, min(n, runs))
    if n > MAX_LOCAL_WORKERS:
        raise SweepError(f"workers={workers}: a local cluster runs at most {MAX_LOCAL_WORKERS} worker processes "
                         "(they share this machine's cores); for more, start a Dask cluster and pass --scheduler")
    return n


def _client(scheduler, workers):
    """(client, owned, cluster or None) for a scheduler address, a Client (not owned: left open),
    or None (a LocalCluster of ``workers`` processes)."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise ImportError('sweeps run on Dask: pip install "chainrule[sweep]" (or pip install distributed)') from None
    if scheduler is not None and not isinstance(scheduler, str):
        return scheduler, False, None  # a Client the caller made
    scheduler = scheduler or os.environ.get("DASK_SCHEDULER_ADDRESS")
    if scheduler:
        try:
            return Client(scheduler, timeout="20s"), True, None
        except (OSError, TimeoutError) as err:
            raise SweepError(f"cannot reach the Dask scheduler at {scheduler} ({err})") from None
    if sys.modules["__main__"].__name__ == "__mp_main__":
        # A worker process being started imports the user's script again, which calls sweep again.
        raise SweepError(MAIN_GUARD)
    # One process per core with one thread each: training holds the GIL, so threads would queue.
    try:
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               dashboard_address="127.0.0.1:0", host="127.0.0.1")
    except RuntimeError as err:
        raise SweepError(f"the local Dask cluster did not start ({err}); {MAIN_GUARD}") from None
    return Client(cluster), True, cluster


MAIN_GUARD = ("in a script, call cr.sweep under `if __name__ == \"__main__\":` (each worker process imports the "
              "script again, as multiprocessing does)")


def sweep(grid, data=None, seeds=3, out="chainrule-sweep", scheduler=None, workers=None, sample=None,
          sample_seed=0, progress=True, report=False, **train_options):
    """Train one network per (grid point, seed) on Dask and return the rows (a SweepResult).

    ``grid``: option of `chainrule train` -> values, e.g. ``{"hidden": [[8], [8, 8]],
    "activation": ["relu", "tanh"]}``; ``seeds``: N (seeds 0..N-1) or a list; ``train_options``:
    options every run shares (``epochs=20``); ``scheduler``: None (a LocalCluster with
    ``workers`` single-threaded processes, default one per core; or DASK_SCHEDULER_ADDRESS), an
    address ``"tcp://HOST:8786"``, a ``distributed.Client``, or ``"serial"`` (one after another
    in this process, no Dask). Rows already in ``out/results.jsonl`` are not run again.

    Each row holds the swept options, ``seed``, ``train_accuracy``, ``val_accuracy``,
    ``test_accuracy`` (``*_mse``, ``*_r2`` for regression), ``loss_curve``, ``wall_time``, ``worker``
    and every resolved option under ``options``. ``report=True`` also writes out/report.html.
    """
    if data is not None:
        train_options["data"] = data
    runs = plan(grid, seeds=seeds, sample=sample, sample_seed=sample_seed, **train_options)
    out = Path(out)
    store = Store(out)
    todo = [r for r in runs if r[0] not in store.rows]
    loaded = _load_and_check(todo)
    from chainrule.serialization import save_json_atomic

    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise SweepError(f"cannot create the output folder {out} ({err.strerror or err})") from None
    save_json_atomic(out / SPEC_FILE, {"grid": {k: list(v) for k, v in grid.items()}, "seeds": seeds,
                                       "sample": sample, "options": train_options, "runs": len(runs)})
    bar = Progress(len(runs), len(runs) - len(todo), enabled=progress)
    failed = 0
    if todo and scheduler == "serial":
        defaults = _train_parser().parse_args(["train"])
        for key, point, seed in todo:
            store.append(run_one(point, seed, loaded[data_key(_namespace(defaults, point, seed))]))
            bar.update(done=1, running=0)
    elif todo:
        failed = _distributed(todo, loaded, store, bar, scheduler, workers)
    bar.close()
    rows = SweepResult(store.rows[k] for k, _, _ in runs if k in store.rows)
    rows.out, rows.failed = out, failed
    if progress:
        print(f"{len(rows)} of {len(runs)} runs stored in {out / RESULTS_FILE}"
              + (f"; {failed} failed (rerun the same sweep to retry them)" if failed else ""), file=sys.stderr)
    if report:
        from chainrule.sweeps.report import write_report

        write_report(rows, out)
    return rows


def _load_and_check(todo):
    """{data key: data} of the runs to do, each data set read once; then every check that needs
    the data (a loss that fits the labels, the size of the network, the split) made once per
    distinct setting with `chainrule train`'s own setup, so a bad grid fails before Dask starts."""
    from chainrule.cli import UsageError, train

    defaults = _train_parser().parse_args(["train"])
    loaded, checked = {}, set()
    for _, point, seed in todo:
        args = _namespace(defaults, point, seed)
        dk = data_key(args)
        try:
            if dk not in loaded:
                loaded[dk] = train.load_inputs(args)
            what = json.dumps([dk, {k: v for k, v in point.items() if k in DATA_CHECKED}], sort_keys=True)
            if what not in checked:
                checked.add(what)
                train.setup(args, loaded[dk])
        except UsageError as err:
            raise SweepError(f"{err} (options {point}, seed {seed})") from None
    return loaded


# The options whose validity depends on the data (setup checks them against it).
DATA_CHECKED = ("hidden", "loss", "test_size", "validation_split", "test_data", "batch_size")


def _distributed(todo, loaded, store, bar, scheduler, workers):
    """Run ``todo`` on Dask; store each row as it arrives; return the number of failed runs."""
    from distributed import as_completed

    defaults = _train_parser().parse_args(["train"])
    client, owned, cluster = _client(scheduler, _local_workers(workers, len(todo)))
    try:
        if bar.enabled and _has_dashboard():
            print(f"Dask dashboard: {client.dashboard_link}", file=sys.stderr)
        # Each data set goes to every worker once (broadcast: a replica survives a lost worker).
        # (In a list: a scattered dict would be scattered value by value under its own keys.)
        shipped = {dk: client.scatter([d], broadcast=True, hash=False)[0] for dk, d in loaded.items()}
        futures = [client.submit(run_one, point, seed, shipped[data_key(_namespace(defaults, point, seed))],
                                 pure=False, key=f"chainrule-run-{key}-{os.urandom(4).hex()}")
                   for key, point, seed in todo]
        slots = sum(client.nthreads().values()) or 1
        failed, pending = 0, len(futures)
        bar.update(running=min(slots, pending))
        # Rows that finish while the last ones are being stored come as one batch: one fsync for
        # them all, so the client keeps up with many workers.
        for batch in as_completed(futures, with_results=True, raise_errors=False).batches():
            rows = []
            for future, result in batch:
                if future.status == "error":
                    print(f"run failed: {result!r}", file=sys.stderr)
                else:
                    rows.append(result)
                future.release()
            store.append(*rows)
            pending -= len(batch)
            failed += len(batch) - len(rows)
            bar.update(done=len(rows), failed=len(batch) - len(rows), running=min(slots, pending))
        return failed
    finally:
        if owned:
            client.close()
        if cluster is not None:
            cluster.close()


def _has_dashboard():
    import importlib.util

    return importlib.util.find_spec("bokeh") is not None


class Progress:
    """One line on stderr: done / running / failed / remaining and the time left, redrawn in
    place on a terminal, printed at each tenth of the runs otherwise."""

    def __init__(self, total, done=0, enabled=True, file=None):
        self.total, self.done, self.stored, self.running, self.failed = total, done, done, 0, 0
        self.enabled, self.file = enabled, file or sys.stderr
        self.tty = self.file.isatty()
        self.began, self.step, self.drawn = time.perf_counter(), max(1, total // 10), done
        if enabled and done:
            print(f"{done} of {total} runs already stored: resuming", file=self.file)

    def update(self, done=0, failed=0, running=None):
        self.done += done
        self.failed += failed
        if running is not None:
            self.running = running
        count = self.done + self.failed
        if self.enabled and (self.tty or count >= self.drawn + self.step or count == self.total or not done + failed):
            self.drawn = count
            self.draw()

    def line(self):
        new = self.done - self.stored
        left = self.total - self.done - self.failed
        rate = new / (time.perf_counter() - self.began) if new else 0
        eta = f"{left / rate:.0f} s left" if rate else "time left unknown"
        width = 24
        filled = int(width * self.done / max(self.total, 1))
        return (f"[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} done, {self.running} running, "
                f"{self.failed} failed, {left} remaining, {eta}")

    def draw(self):
        print(("\r" if self.tty else "") + self.line(), end="" if self.tty else "\n", file=self.file, flush=True)

    def close(self):
        if self.enabled and self.tty:
            print(file=self.file)
