"""Run the benchmarks side by side with the peers and report ratios to hand-written numpy.

    python benchmarks/run.py                 # every group
    python benchmarks/run.py core forward    # some groups
    python benchmarks/run.py core -k tanh    # cases whose name contains "tanh"
    python benchmarks/run.py --quick         # fewer rounds (a smoke run)

Each group is a module ``bench_<group>.py`` beside this file with a ``cases()`` function (see
harness.py). The table is printed and the results, with the BLAS kernel that ran and the
versions of numpy and the peers, are written to benchmarks/results.json (atomically).
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


def limit_threads(n: int):
    """Pin BLAS/OpenMP pools (numpy's and torch's) and torch's intra-op pool to n threads."""
    try:
        import torch
        torch.set_num_threads(n)
    except ImportError:
        pass
    try:  # load SciPy's BLAS (the optimizers' axpy) now, so that the limit covers it too
        import scipy.linalg.blas  # noqa: F401
    except ImportError:
        pass
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        sys.exit("--threads needs threadpoolctl (pip install -r benchmarks/requirements.txt)")
    global _limits, _threads
    _limits = threadpool_limits(limits=n)  # kept alive for the whole run
    _threads = n


_limits = _threads = None


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
    env["threads_limit"] = _threads  # what --threads asked for (None: the libraries' default)
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
    parser.add_argument("--threads", type=int, default=None,
                        help="limit BLAS (and torch) to this many threads; on a busy machine 1 gives "
                             "steadier numbers (default: the libraries' own choice)")
    parser.add_argument("--out", default=str(HERE / "results.json"), help="where to write the JSON results")
    args = parser.parse_args(argv)
    if args.threads is not None:
        limit_threads(args.threads)
    known = groups()
    chosen = args.groups or known
    unknown = [g for g in chosen if g not in known]
    if unknown:
        parser.error(f"unknown group(s) {unknown}; available: {known}")
    rounds, sample = (5, 0.002) if args.quick else (args.rounds, args.sample_ms / 1000)

    records = []
    for group in chosen:
        module = importlib.import_module(f"bench_{group}")
        if not hasattr(module, "cases"):
            print(f"[{group}] bench_{group}.py has no cases() function: skipped", flush=True)
            continue
        for case in module.cases():
            if args.keyword and args.keyword not in case.name:
                continue
            print(f"[{group}] {case.name}: {case.what}", flush=True)
            records.append(harness.run_case(case, rounds=rounds, sample_s=sample))

    env = environment()
    print()
    print(harness.table(records))
    print()
    print(f"BLAS: {describe_blas(env['blas'])}" + (f" (--threads {_threads})" if _threads else ""))
    print("versions: " + ", ".join(f"{k} {v}" for k, v in env["versions"].items() if v))
    print("OPENBLAS_CORETYPE=%s OPENBLAS_L2_SIZE=%s" % (env["env"]["OPENBLAS_CORETYPE"], env["env"]["OPENBLAS_L2_SIZE"]))

    from chainrule.serialization import save_json_atomic

    save_json_atomic(args.out, {"environment": env, "cases": records})
    print(f"results written to {os.path.relpath(args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
