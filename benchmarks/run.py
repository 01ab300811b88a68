"""Run the benchmarks side by side with the peers and report ratios to hand-written numpy.

    python benchmarks/run.py                 # every group
    python benchmarks/run.py core forward    # some groups
    python benchmarks/run.py core -k tanh    # cases whose name contains "tanh"
    python benchmarks/run.py --quick         # fewer rounds (a smoke run)
    python benchmarks/run.py --threads 1     # only single-threaded BLAS and torch

Each group is a module ``bench_<group>.py`` beside this file with a ``cases()`` function (see
harness.py). Every case runs once per thread setting (by default at the libraries' default
threads, then with BLAS and torch on one thread), and the table shows the settings side by side.
The results of each setting, with the BLAS kernel and threads that ran and the versions of numpy
and the peers, are written to benchmarks/results.json (atomically).
"""
from __future__ import annotations

import argparse
import datetime
import importlib
import os
import platform
import sys
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
    parser.add_argument("--out", default=str(HERE / "results.json"), help="where to write the JSON results")
    args = parser.parse_args(argv)
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

    cases = []
    for group in chosen:
        module = importlib.import_module(f"bench_{group}")
        if not hasattr(module, "cases"):
            print(f"[{group}] bench_{group}.py has no cases() function: skipped", flush=True)
            continue
        cases += [case for case in module.cases() if not args.keyword or args.keyword in case.name]
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
        # before the first one, 50 ms after), so torch is timed after every other contender of
        # every case, against their baseline's median (unpaired). At one thread nothing waits,
        # and all contenders run in the same rounds.
        apart = {"torch"} if n is None else set()
        for case in cases:
            print(f"[{case.group}] {case.name} ({label(n)}): {case.what}", flush=True)
            records.append(harness.run_case(case, rounds=rounds, sample_s=sample,
                                            only=set(case.contenders) - apart))
        for case, record in zip(cases, records):
            if apart & set(case.contenders):
                print(f"[{case.group}] {case.name} ({label(n)}): {', '.join(sorted(apart))} after the others",
                      flush=True)
                later = harness.run_case(case, rounds=rounds, sample_s=sample, only=apart, against=record)
                record["contenders"].update(later["contenders"])
                record["skipped"].update(later["skipped"])
        torch = sys.modules.get("torch")
        runs.append({"threads": n, "label": label(n), "blas": blas_info(),
                     "torch_threads": torch.get_num_threads() if torch is not None else None, "cases": records})
        if limit is not None:
            limit.restore_original_limits()
        limit_threads(None)

    env = environment()
    print()
    print(harness.table({run["label"]: run["cases"] for run in runs}))
    print()
    for run in runs:
        print(f"BLAS at {run['label']}: {describe_blas(run['blas'])}"
              + (f"; torch threads {run['torch_threads']}" if run["torch_threads"] else ""))
    print("versions: " + ", ".join(f"{k} {v}" for k, v in env["versions"].items() if v))
    print("OPENBLAS_CORETYPE=%s OPENBLAS_L2_SIZE=%s" % (env["env"]["OPENBLAS_CORETYPE"], env["env"]["OPENBLAS_L2_SIZE"]))

    from chainrule.serialization import save_json_atomic

    save_json_atomic(args.out, {"environment": env, "runs": runs})
    print(f"results written to {os.path.relpath(args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
