"""Run the benchmarks side by side with the peers and report ratios to hand-written numpy.

    python benchmarks/run.py                 # every group
    python benchmarks/run.py core forward    # some groups
    python benchmarks/run.py core -k tanh    # cases whose name contains "tanh"
    python benchmarks/run.py --quick         # fewer rounds (a smoke run)
    python benchmarks/run.py --threads 1     # only single-threaded BLAS and torch
    python benchmarks/run.py forward -k hessian --fresh   # each case's first calls in a new process
    python benchmarks/run.py --table compile # issue 13's cases, written to results_compile.json
    python benchmarks/run.py --table compile --from benchmarks/results_compile.json  # its table only

Each group is a module ``bench_<group>.py`` beside this file with a ``cases()`` function (see
harness.py). Every case runs once per thread setting (by default at the libraries' default
threads, then with BLAS and torch on one thread), and the table shows the settings side by side.
The results of each setting, with the BLAS kernel and threads that ran and the versions of numpy
and the peers, are written to benchmarks/results.json (atomically).

``--fresh`` runs each case, once per thread setting, in a new Python process (the allocator's
state fresh, nothing imported or compiled before) and times its first calls there: one call per
contender per round, right after the first call (which checks the result, and traces or compiles
a JIT), the ratios to numpy in that process.
``--table compile`` runs the cases of issue 13's table (``cr.compile`` against eager chainrule,
JAX's jit and torch.compile), the Hessian in a fresh process too, and prints that table.
"""
from __future__ import annotations

import argparse
import datetime
import importlib
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import harness  # noqa: E402
import peers  # noqa: E402


def groups() -> list[str]:
    return sorted(p.stem[len("bench_"):] for p in HERE.glob("bench_*.py"))


def blas_info() -> list[dict]:
    """Which BLAS (and OpenMP) libraries are loaded: kernel architecture, version, threads."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return [{"error": "threadpoolctl is not installed"}]
    keep = ("user_api", "internal_api", "version", "architecture", "num_threads", "prefix", "threading_layer")
    return [{k: lib.get(k) for k in keep if k in lib} for lib in threadpool_info()]


def parse_settings(text: str) -> list:
    """'default,1' -> [None, 1]: None is the libraries' own thread count, a number a limit."""
    settings = []
    for part in text.split(","):
        part = part.strip().lower()
        if part == "default":
            settings.append(None)
        elif part.isdigit() and int(part) > 0:
            settings.append(int(part))
        else:
            raise ValueError(f"--threads: {part!r} is neither 'default' nor a positive number of threads")
    return settings


def limit_threads(n):
    """Pin BLAS/OpenMP pools (numpy's and torch's) and torch's intra-op pool to n threads (None:
    the libraries' defaults, as found at start); returns the threadpoolctl limit to undo."""
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(n or _TORCH_DEFAULT)
    peers.limit_xla_threads(n)  # JAX's pool, which threadpoolctl does not reach (and any started later)
    if n is None:
        return None
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        sys.exit("--threads needs threadpoolctl (pip install -r benchmarks/requirements.txt)")
    return threadpool_limits(limits=n)


def label(n) -> str:
    return "default threads" if n is None else f"--threads {n}"


_TORCH_DEFAULT = None


def environment() -> dict:
    env = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "versions": peers.versions(),
        "env": {k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE",
                                               "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")},
    }
    if "torch" in sys.modules:
        env["torch_threads"] = sys.modules["torch"].get_num_threads()
    env["blas"] = blas_info()  # after the peers are imported, so their libraries show too
    return env


def describe_blas(blas) -> str:
    parts = []
    for lib in blas:
        if "error" in lib:
            return lib["error"]
        if lib.get("user_api") == "blas":
            parts.append(f"{lib.get('internal_api')} {lib.get('version')} kernel={lib.get('architecture')} "
                         f"threads={lib.get('num_threads')} ({lib.get('prefix')})")
    return "; ".join(parts) or "no BLAS library reported"


# issue 13's table: (row, group, case, the target for cr.compile); "_fresh" rows come from --fresh
COMPILE_TABLE = [
    ("value+grad of sum(tanh(x*w+b)), 16 float64", "core", "tanh16", "<= 1.5x"),
    ("quiz gradient at scalars (vs numpy on 0-d arrays)", "forward", "grad_quiz", "<= 0.5x"),
    ("2-16-16-1 tanh BCE training step, batch 32, float64", "nn", "small_tanh_bce", "<= 1.2x"),
    ("784-256-256-10 ReLU step, batch 128, float32", "nn", "mlp_step_nn", "<= 0.92x"),
    ("logistic NLL Hessian 1000x100", "forward", "hessian_logreg", "<= 1.8x"),
    ("  the same, a fresh process (first calls)", "forward", "hessian_logreg_fresh", "<= 1.8x"),
    ("first call (trace + generate) of the 784 step, ms", "nn", "first_call_784", "<= 50 ms"),
]
TABLE_COLUMNS = [("eager", "chainrule"), ("compiled", "compiled"), ("JAX jit", "jax"),
                 ("torch.compile", "torch_compile")]
FRESH = "_fresh"
APART = ("jax", "torch")  # contenders (by name's start) timed after the others at the default threads


def _ms(seconds) -> str:
    ms = seconds * 1e3
    return f"{ms:.0f}" if ms >= 100 else f"{ms:.3g}"


def compile_table(runs) -> str:
    """Issue 13's table from a results document's runs: per row and column, the ratio to numpy
    at each thread setting ("default / one thread"); the first-call row in milliseconds."""
    by_label = [(run["label"], {(r["group"], r["name"]): r for r in run["cases"]}) for run in runs]
    labels = " / ".join(lab for lab, _ in by_label)
    width = 22
    lines = [f"cells: ratio to hand-written numpy ({labels}); first call: milliseconds",
             f"{'case':<52}" + "".join(f"{head:>{width}}" for head, _ in TABLE_COLUMNS) + "  target"]
    skips = {}
    for row, group, name, target in COMPILE_TABLE:
        cells = []
        for _, contender in TABLE_COLUMNS:
            parts = []
            for lab, found in by_label:
                rec = found.get((group, name))
                c = rec and rec["contenders"].get(contender)
                if c is None:
                    parts.append("-")
                    if rec and contender in rec["skipped"]:
                        skips.setdefault(rec["skipped"][contender], set()).add(f"{contender} ({name}, {lab})")
                elif name.startswith("first_call"):
                    parts.append(_ms(c["median_s"]))
                else:
                    parts.append(f"{c['ratio']:.2f}")
            cells.append(" / ".join(parts))
        lines.append(f"{row:<52}" + "".join(f"{cell:>{width}}" for cell in cells) + f"  {target}")
        if name.startswith("first_call"):
            steps = [found.get((group, name), {}).get("contenders", {}).get(harness.BASELINE) for _, found in by_label]
            if all(steps):
                lines.append(f"{'  (one step of hand-written numpy, ms)':<52}"
                             + f"{' / '.join(_ms(c['median_s']) for c in steps):>{width}}")
    for why, where in skips.items():
        lines.append(f"skipped: {', '.join(sorted(where))}: {why}")
    return "\n".join(lines)


def run_fresh(cases, settings, calls, sample_s, only=None) -> dict:
    """Each case in a new process per thread setting, timing its first ``calls`` calls; returns
    thread setting -> records (the case renamed ``<name>_fresh``)."""
    out = {n: [] for n in settings}
    for case in cases:
        for n in settings:
            print(f"[{case.group}] {case.name} ({label(n)}): a fresh process, first {calls} calls", flush=True)
            with tempfile.TemporaryDirectory() as tmp:
                path = os.path.join(tmp, "fresh.json")
                cmd = [sys.executable, __file__, case.group, "--case", case.name, "--threads", str(n or "default"),
                       "--rounds", str(calls), "--sample-ms", str(sample_s * 1000), "--out", path]
                if only is not None:
                    cmd += ["--only", ",".join(sorted(only))]
                proc = subprocess.run(cmd, capture_output=True, text=True)
                if proc.returncode != 0:
                    sys.exit(f"the fresh process for {case.group}/{case.name} failed:\n{proc.stderr[-2000:]}")
                with open(path) as f:
                    (record,) = json.load(f)["runs"][0]["cases"]
            record["name"] += FRESH
            record["what"] += f" (a fresh process: its first {calls} calls)"
            out[n].append(record)
    return out


def xla_pinning(n) -> str | None:
    """How JAX's threads ran at thread setting ``n`` (None when JAX did not run)."""
    if not peers._XLA_POOL_STARTED:
        return None
    if n is None:
        return "XLA's own pool (one thread per CPU)"
    return f"XLA's pool pinned to {n} CPU(s) ({peers.limit_xla_threads(n)} threads)"


def print_environment(runs, env):
    for run in runs:
        print(f"BLAS at {run['label']}: {describe_blas(run['blas'])}"
              + (f"; torch threads {run['torch_threads']}" if run.get("torch_threads") else "")
              + (f"; JAX: {run['xla_threads_pinned']}" if run.get("xla_threads_pinned") else ""))
    if env:
        print("versions: " + ", ".join(f"{k} {v}" for k, v in env["versions"].items() if v))
        print("OPENBLAS_CORETYPE=%s OPENBLAS_L2_SIZE=%s" % (env["env"]["OPENBLAS_CORETYPE"],
                                                           env["env"]["OPENBLAS_L2_SIZE"]))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("groups", nargs="*", help=f"groups to run (default: all of {', '.join(groups())})")
    parser.add_argument("-k", dest="keyword", default=None, help="only cases whose name contains this")
    parser.add_argument("--rounds", type=int, default=30, help="interleaved rounds per case (default 30)")
    parser.add_argument("--sample-ms", type=float, default=4.0, help="length of one timed sample (default 4 ms)")
    parser.add_argument("--quick", action="store_true", help="5 rounds of 2 ms samples: a smoke run")
    parser.add_argument("--threads", default="default,1",
                        help="thread settings, comma-separated, each a full run: 'default' (the libraries' "
                             "own choice) or a number of BLAS and torch threads (default: default,1; a "
                             "busy machine gives steadier numbers at 1)")
    parser.add_argument("--out", default=None,
                        help="where to write the JSON results (default benchmarks/results.json; with --table "
                             "compile, benchmarks/results_compile.json)")
    parser.add_argument("--fresh", action="store_true",
                        help="run each case in a new process per thread setting and time its first calls "
                             "(--fresh-calls of them) there")
    parser.add_argument("--fresh-calls", type=int, default=20, help="calls timed in a fresh process (default 20)")
    parser.add_argument("--table", choices=["compile"], default=None,
                        help="compile: run issue 13's cases (the Hessian in a fresh process too) and print its table")
    parser.add_argument("--from", dest="source", default=None,
                        help="with --table: print the table from this results JSON, running nothing")
    parser.add_argument("--only", default=None,
                        help="contenders to time, comma-separated (numpy always runs), e.g. chainrule,compiled")
    parser.add_argument("--case", default=None, help=argparse.SUPPRESS)  # one case by exact name (--fresh)
    args = parser.parse_args(argv)
    if args.source is not None:
        if args.table is None:
            parser.error("--from needs --table compile")
        try:
            with open(args.source) as f:
                doc = json.load(f)
            runs = doc["runs"]
        except (OSError, ValueError, KeyError, TypeError) as err:
            parser.error(f"--from {args.source}: not a results JSON of run.py ({err})")
        print(compile_table(runs))
        print_environment(runs, doc.get("environment", {}))
        return 0
    if args.out is None:
        args.out = str(HERE / ("results_compile.json" if args.table == "compile" else "results.json"))
    try:
        settings = parse_settings(args.threads)
    except ValueError as err:
        parser.error(str(err))
    known = groups()
    chosen = args.groups or known
    unknown = [g for g in chosen if g not in known]
    if unknown:
        parser.error(f"unknown group(s) {unknown}; available: {known}")
    rounds, sample = (5, 0.002) if args.quick else (args.rounds, args.sample_ms / 1000)
    fresh_calls = 3 if args.quick else args.fresh_calls
    if args.table == "compile":
        wanted = {(group, name) for _, group, name, _ in COMPILE_TABLE}
        chosen = sorted({group for group, _ in wanted})
    else:
        wanted = None

    cases = []
    for group in chosen:
        module = importlib.import_module(f"bench_{group}")
        if not hasattr(module, "cases"):
            print(f"[{group}] bench_{group}.py has no cases() function: skipped", flush=True)
            continue
        cases += [case for case in module.cases() if (not args.keyword or args.keyword in case.name)
                  and (args.case is None or case.name == args.case)]
    only = None if args.only is None else {name.strip() for name in args.only.split(",") if name.strip()}
    if only is None and args.table == "compile":
        only = {contender for _, contender in TABLE_COLUMNS}
    if only is not None:
        known_names = {name for case in cases for name in case.contenders}
        if only - known_names:
            parser.error(f"--only: no contender named {sorted(only - known_names)} in the chosen cases; "
                         f"they have {sorted(known_names)}")
    fresh_cases = []
    if args.table == "compile":
        fresh_cases = [case for case in cases if (case.group, case.name + FRESH) in wanted]
        cases = [case for case in cases if (case.group, case.name) in wanted]
    elif args.fresh:
        fresh_cases, cases = cases, []
    try:
        import torch
        global _TORCH_DEFAULT
        _TORCH_DEFAULT = torch.get_num_threads()
    except ImportError:
        pass

    runs = []
    for n in settings:
        limit = limit_threads(n)
        records = []
        # At the default threads, torch's idle OpenMP threads slow every multithreaded BLAS call
        # that follows a torch operation in the process (numpy's 784-256-256-10 step: 1.4 ms
        # before the first one, 50 ms after), and XLA's pool, busy right after each JAX call,
        # slows the numpy call that follows it; so JAX, then torch, are timed after every other
        # contender of every case, against their baseline's median (unpaired). At one thread
        # nothing waits, and all contenders run in the same rounds.
        timed = [set(case.contenders) if only is None else only & set(case.contenders) for case in cases]
        later = [{name for names in timed for name in names if n is None and name.startswith(peer)}
                 for peer in APART]
        for case, names in zip(cases, timed):
            print(f"[{case.group}] {case.name} ({label(n)}): {case.what}", flush=True)
            records.append(harness.run_case(case, rounds=rounds, sample_s=sample, only=names.difference(*later)))
        for group in later:
            for case, names, record in zip(cases, timed, records):
                if group & names:
                    print(f"[{case.group}] {case.name} ({label(n)}): {', '.join(sorted(group & names))} "
                          "after the others", flush=True)
                    apart = harness.run_case(case, rounds=rounds, sample_s=sample, only=group & names,
                                             against=record)
                    record["contenders"].update(apart["contenders"])
                    record["skipped"].update(apart["skipped"])
        torch = sys.modules.get("torch")
        runs.append({"threads": n, "label": label(n), "blas": blas_info(),
                     "torch_threads": torch.get_num_threads() if torch is not None else None,
                     "xla_threads_pinned": xla_pinning(n), "cases": records})
        if limit is not None:
            limit.restore_original_limits()
        limit_threads(None)
    if fresh_cases:
        fresh = run_fresh(fresh_cases, settings, fresh_calls, sample_s=0.0, only=only)
        for run in runs:
            run["cases"] += fresh[run["threads"]]

    env = environment()
    print()
    print(harness.table({run["label"]: run["cases"] for run in runs}))
    if args.table == "compile":
        print()
        print(compile_table(runs))
    print()
    print_environment(runs, env)

    from chainrule.serialization import save_json_atomic

    save_json_atomic(args.out, {"environment": env, "runs": runs})
    print(f"results written to {os.path.relpath(args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
