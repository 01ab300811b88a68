"""Figures of cost: forward versus reverse mode as inputs and outputs grow, symbolic expression growth."""
from __future__ import annotations

import time

import numpy as np

# One way to make and write figures in this package: pyplot-free Figures, atomic writes.
from chainrule.viz.nnplots import _figure, save_figure

__all__ = ["measure_crossover", "crossover_figure", "measure_symbolic_growth", "symbolic_growth_figure"]


def _layer(n, m, seed=0):
    """f: R^n -> R^m, y = tanh(A x) * (A x) + sin(A x): a few operations on every entry."""
    import chainrule as cr

    A = np.random.default_rng(seed).standard_normal((m, n)) / np.sqrt(n)

    def f(x):
        h = cr.matmul(A, x)
        return cr.tanh(h) * h + cr.sin(h)

    return f


def _best_time(fn, repeat):
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _jacobian_times(n, m, repeat):
    """Seconds for the full Jacobian of f: R^n -> R^m by forward mode (one jvp per input
    direction) and by reverse mode (one forward pass, then one vjp per output)."""
    import chainrule as cr

    f = _layer(n, m)
    x = np.linspace(-1.0, 1.0, n)
    eye_n, eye_m = np.eye(n), np.eye(m)

    def forward():
        return np.stack([np.asarray(cr.jvp(f, (x,), (eye_n[i],))[1]) for i in range(n)], axis=1)

    def reverse():
        _, pull = cr.vjp(f, x)
        return np.stack([np.asarray(pull(eye_m[j])[0]) for j in range(m)], axis=0)

    jf, jr = forward(), reverse()  # also the warm-up
    if not np.allclose(jf, jr, rtol=1e-10, atol=1e-12):  # the two timings must compute the same thing
        raise AssertionError(f"forward and reverse Jacobians differ for n={n}, m={m}")
    return _best_time(forward, repeat), _best_time(reverse, repeat)


def measure_crossover(inputs=(1, 2, 4, 8, 16, 32, 64), outputs=(1, 2, 4, 8, 16, 32, 64), fixed=16, repeat=3):
    """Measured seconds of the Jacobian by forward and reverse mode: ``"inputs"`` for
    f: R^n -> R (n in ``inputs``), ``"outputs"`` for f: R^fixed -> R^m (m in ``outputs``)."""
    many_in = [(n, *_jacobian_times(n, 1, repeat)) for n in inputs]
    many_out = [(m, *_jacobian_times(fixed, m, repeat)) for m in outputs]
    return {"inputs": many_in, "outputs": many_out, "fixed": fixed}


def crossover_figure(path=None, inputs=(1, 2, 4, 8, 16, 32, 64), outputs=(1, 2, 4, 8, 16, 32, 64), fixed=16,
                     repeat=3, data=None):
    """Measured time of a full Jacobian by forward and reverse mode. Left: f: R^n -> R, where
    forward mode needs n passes and reverse mode one. Right: f: R^16 -> R^m, where reverse mode
    needs m passes and forward mode 16, so the lines cross near m = 16. Returns the matplotlib
    Figure and writes it to ``path`` (PNG, SVG or PDF by extension) when given.

    >>> import os, tempfile
    >>> fig = crossover_figure(os.path.join(tempfile.mkdtemp(), "c.png"), inputs=(1, 4), outputs=(1, 4), fixed=2, repeat=1)
    >>> [ax.get_xlabel() for ax in fig.axes]
    ['inputs n (one output)', 'outputs m (2 inputs)']
    """
    data = data or measure_crossover(inputs, outputs, fixed, repeat)
    fig = _figure(9.5, 3.8)
    left, right = fig.subplots(1, 2)
    for ax, key, xlabel, title in (
            (left, "inputs", "inputs n (one output)", "many inputs: forward mode pays n passes"),
            (right, "outputs", "outputs m (16 inputs)", "many outputs: reverse mode pays m passes")):
        rows = np.array(data[key], dtype=float)
        ax.plot(rows[:, 0], rows[:, 1] * 1e3, "o-", color="#1f77b4", label="forward mode (jvp per input)")
        ax.plot(rows[:, 0], rows[:, 2] * 1e3, "s-", color="#d62728", label="reverse mode (vjp per output)")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("time of the full Jacobian (ms)")
        ax.set_title(title, fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
    right.axvline(data["fixed"], color="#777777", linestyle=":", label=f"m = n = {data['fixed']}")
    right.set_xlabel(f"outputs m ({data['fixed']} inputs)")
    left.legend(fontsize=8)
    right.legend(fontsize=8)
    if path is not None:
        save_figure(fig, path)
    return fig


def _nested(depth):
    """f(x, z) with u_0 = x z and u_{k+1} = sin(u_k) u_k: every level uses the one below twice."""
    import chainrule as cr

    def f(x, z):
        u = x * z
        for _ in range(depth):
            u = cr.sin(u) * u
        return u

    return f


def measure_symbolic_growth(depths=range(1, 7)):
    """Size (operations) of df/dx by the naive route (a tree, as a CAS writes it) and the shared
    route (reverse mode, a graph), with the function's own tree and graph sizes, per depth."""
    from chainrule.modes import symbolic

    rows = []
    for d in depths:
        f = _nested(d)
        shared = symbolic.derivative(f, wrt="x", method="shared")
        try:
            naive = symbolic.derivative(f, wrt="x", method="naive").size["x"]
        except symbolic.SymbolicError:
            naive = None  # beyond the naive route's limit
        rows.append({"depth": d, "naive": naive, "shared": shared.size["x"],
                     "function_tree": shared.function_size["tree"], "function_dag": shared.function_size["dag"]})
    return rows


def symbolic_growth_figure(path=None, depths=range(1, 7), data=None):
    """Size of the symbolic derivative against the depth of u_{k+1} = sin(u_k) u_k: the naive
    (tree) route grows exponentially, the shared (reverse-mode) route linearly. Returns the
    matplotlib Figure and writes it to ``path`` when given."""
    rows = data or measure_symbolic_growth(depths)
    fig = _figure(5.5, 3.8)
    ax = fig.subplots()
    d = [r["depth"] for r in rows]
    naive = [(r["depth"], r["naive"]) for r in rows if r["naive"] is not None]
    ax.plot([p[0] for p in naive], [p[1] for p in naive], "o-", color="#d62728", label="derivative, naive (tree)")
    ax.plot(d, [r["shared"] for r in rows], "s-", color="#2ca02c", label="derivative, shared (reverse mode)")
    ax.plot(d, [r["function_tree"] for r in rows], ":", color="#777777", label="the function as a tree")
    ax.plot(d, [r["function_dag"] for r in rows], "--", color="#777777", label="the function as a graph")
    ax.set_yscale("log")
    ax.set_xlabel(r"depth $k$ of $u_k = \sin(u_{k-1})\, u_{k-1}$")
    ax.set_ylabel("size (operations)")
    ax.set_title("Symbolic derivatives: expression swell", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    if path is not None:
        save_figure(fig, path)
    return fig
