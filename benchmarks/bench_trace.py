"""Tracing a 10,000-node graph and writing its tables (issue 4): must take well under a second.

    python benchmarks/bench_trace.py            # best of 5 runs
    python benchmarks/bench_trace.py --runs 10 --nodes 20000

Times, for a computation of about N primitive operations (N = 10,000 by default): cr.trace, the
backward pass over the Graph that keeps every chain-rule term, the forward and backward tables
as text, and (for scale) the same computation's eager forward + backward with Tensors, which is
what plain training pays. An absolute-time benchmark, so it has no cases() for run.py.
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np

import chainrule as cr


def chain(n_ops):
    """x -> n_ops primitive operations: repeated u = sin(u) * 0.5 + u, with x reused (accumulation)."""
    steps = n_ops // 4

    def f(x):
        u = x
        for _ in range(steps):
            u = cr.sin(u) * 0.5 + u * x
        return u

    return f


def best(fn, runs):
    """Best wall-clock and best CPU time (this process only, so a busy machine disturbs it less)."""
    wall, cpu = [], []
    for _ in range(runs):
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - t0)
    return (min(wall), min(cpu)), out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=10_000, help="primitive operations in the graph")
    parser.add_argument("--runs", type=int, default=5, help="repetitions; the best time is reported")
    args = parser.parse_args(argv)
    f = chain(args.nodes)
    x0 = 0.1

    t_trace, graph = best(lambda: cr.trace(f, x0), args.runs)
    t_back, _ = best(lambda: graph.backward(), args.runs)
    t_ftab, ftext = best(lambda: graph.forward_table().to_text(), args.runs)
    t_btab, btext = best(lambda: graph.backward_table().to_text(), args.runs)
    t_ttab, ttext = best(lambda: graph.tangent_table("x").to_text(), args.runs)

    def eager():
        x = cr.tensor(x0, requires_grad=True)
        f(x).backward()
        return x.grad.item()

    t_eager, gx = best(eager, args.runs)
    if not np.isclose(float(graph.adjoint("x")), gx, rtol=1e-12):
        print("the traced adjoint disagrees with reverse mode", file=sys.stderr)
        return 1
    total = tuple(a + b + c + d for a, b, c, d in zip(t_trace, t_back, t_ftab, t_btab))
    n = len(graph.ops)
    print(f"graph: {n:,} operations, {len(graph.nodes):,} nodes; tables {len(ftext.splitlines()):,} + "
          f"{len(btext.splitlines()):,} lines (best of {args.runs} runs, {sys.platform}, numpy {np.__version__})")
    rows = [("trace (cr.trace)", t_trace), ("backward pass, every term kept", t_back),
            ("forward table, text", t_ftab), ("backward table, text", t_btab),
            ("trace + backward + both tables", total), ("tangent table along d/dx, text", t_ttab),
            ("for scale: eager forward + backward", t_eager)]
    print(f"  {'':<38} {'wall':>8}      {'CPU':>8}")
    for label, (wall, cpu) in rows:
        print(f"  {label:<38} {wall * 1e3:8.1f} ms   {cpu * 1e3:8.1f} ms   {cpu / n * 1e6:6.2f} us/op (CPU)")
    print(f"trace + backward + tables = {total[1] / t_eager[1]:.1f}x an eager forward + backward (CPU time)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
