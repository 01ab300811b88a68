"""The first compile of the 784-256-256-10 SGD step in a new Python process (issue 13's first-call row
measures a new ``cr.compile`` in a warm process): each process imports chainrule, traces, generates
and runs the step once, then compiles it once more for comparison.

    python benchmarks/first_compile.py                       # 5 processes, with Python's bytecode cache
    python benchmarks/first_compile.py --no-bytecode-cache   # each process compiles chainrule from source

Without a bytecode cache (``PYTHONDONTWRITEBYTECODE=1`` on a fresh checkout, as in some sandboxes)
Python compiles chainrule's modules from source in every process, and the first compile pays for
the modes it imports. ``--no-bytecode-cache`` gives each process an empty cache folder.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent

CHILD = """
import sys, time
sys.path.insert(0, {here!r})
from bench_core import mlp_compiled_step, mlp_data
from chainrule.core.threads import blas_threads
X, y, arrays = mlp_data()
with blas_threads(threads=1):
    t0 = time.perf_counter(); step = mlp_compiled_step(X, y, arrays); step(arrays, X); t1 = time.perf_counter()
    again = mlp_compiled_step(X, y, arrays); again(arrays, X); t2 = time.perf_counter()
print((t1 - t0) * 1e3, (t2 - t1) * 1e3)
"""


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--processes", type=int, default=5, help="new processes to time (default 5)")
    p.add_argument("--no-bytecode-cache", action="store_true", help="each process starts with an empty bytecode cache")
    p.add_argument("--out", default=None, help="write the times to this JSON file")
    args = p.parse_args(argv)
    if not 1 <= args.processes <= 100:
        p.error(f"--processes must be in 1..100, got {args.processes}")
    first, second = [], []
    for _ in range(args.processes):
        with tempfile.TemporaryDirectory() as empty:
            env = dict(os.environ, PYTHONPYCACHEPREFIX=empty) if args.no_bytecode_cache else None
            done = subprocess.run([sys.executable, "-c", CHILD.format(here=str(HERE))], capture_output=True,
                                  text=True, check=True, timeout=300, env=env)
        a, b = map(float, done.stdout.split())
        first.append(round(a, 1))
        second.append(round(b, 1))
    cache = "off (an empty cache per process)" if args.no_bytecode_cache else "on"
    print(f"first compile in a new process: {min(first):.1f} to {max(first):.1f} ms; the next compile in the same "
          f"process: {min(second):.1f} to {max(second):.1f} ms (bytecode cache {cache}, one BLAS thread)")
    if args.out:
        record = {"command": "python benchmarks/first_compile.py" + (" --no-bytecode-cache" if args.no_bytecode_cache
                                                                     else ""), "bytecode_cache": cache, "first_ms": first,
                  "next_ms": second}
        tmp = Path(args.out).with_suffix(".tmp")
        tmp.write_text(json.dumps(record, indent=1) + "\n")
        os.replace(tmp, args.out)


if __name__ == "__main__":
    main()
