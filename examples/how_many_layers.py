"""Lecture question: how many layers should we use? Answered empirically, with a sweep.

Networks of 1 to 5 hidden layers, each as wide as keeps the number of weights about the same
(about 5,000 on the bundled digits: 64 inputs, 10 classes), with sigmoid and with ReLU units,
are trained the same way (`chainrule train`'s defaults otherwise) with 5 seeds each, on a
local Dask cluster, and scored on the held-out test digits. The sweep's rows are kept in
OUT/results.jsonl, so a second run only redraws the figure.

    python examples/how_many_layers.py --out figures/layers
    python examples/how_many_layers.py --quick     # 1 seed, 3 epochs, in this process
"""
import argparse
import os
import sys

import chainrule as cr
from chainrule.cli.train import count_parameters
from chainrule.sweeps.report import tables

BUDGET, N_IN, N_OUT = 5000, 64, 10


def width_for(depth, budget=BUDGET):
    """The width of `depth` equal hidden layers whose MLP has the number of weights nearest budget."""
    return min(range(1, 400), key=lambda w: abs(count_parameters(N_IN, [w] * depth, N_OUT) - budget))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join("chainrule-examples", "how_many_layers"),
                        help="folder for the sweep's rows and the figure")
    parser.add_argument("--quick", action="store_true", help="1 seed, 3 epochs, one process (no cluster)")
    parser.add_argument("--scheduler", default=None, help="a Dask scheduler address (default: a local cluster)")
    args = parser.parse_args(argv)
    seeds, epochs = (1, 3) if args.quick else (5, 30)
    hidden = [[width_for(d)] * d for d in range(1, 6)]
    rows = cr.sweep({"hidden": hidden, "activation": ["sigmoid", "relu"]}, data="digits", seeds=seeds,
                    epochs=epochs, out=args.out, scheduler="serial" if args.quick else args.scheduler,
                    progress=not args.quick)
    _, per = tables([{**r, "depth x activation": f"{len(r['hidden'])} {r['activation']}"} for r in rows])
    stats = {tuple(k.split()): (m, s) for k, m, s, _ in per["depth x activation"]}
    best = {}
    for act in ("sigmoid", "relu"):
        for h in hidden:
            m, s = stats[(str(len(h)), act)]
            weights = count_parameters(N_IN, h, N_OUT)
            print(f"{act:<7} depth {len(h)} (width {h[0]:>2}, {weights} weights): test accuracy {m:.3f} ± {s:.3f} "
                  f"over {seeds} seed(s)")
        best[act] = max(range(1, 6), key=lambda d: stats[(str(d), act)][0])
    worst = {a: min(stats[(str(d), a)][0] for d in range(1, 6)) for a in best}
    for act in ("sigmoid", "relu"):
        print(f"finding: with {act} the best depth is {best[act]} ({stats[(str(best[act]), act)][0]:.3f}); "
              f"the worst depth scores {worst[act]:.3f}")
    figure(stats, hidden, os.path.join(args.out, "how_many_layers.png"))
    return 0


def figure(stats, hidden, path):
    try:
        from chainrule.viz.nnplots import _figure, save_figure

        fig = _figure(5.5, 3.6)
    except ImportError:
        print('figures skipped: matplotlib is not installed (pip install "chainrule[viz]")')
        return
    ax = fig.subplots()
    depths = [len(h) for h in hidden]
    for act, color in (("sigmoid", "C0"), ("relu", "C1")):
        m = [stats[(str(d), act)][0] for d in depths]
        s = [stats[(str(d), act)][1] for d in depths]
        ax.errorbar(depths, m, yerr=s, marker="o", capsize=3, color=color, label=act)
    ax.set_xticks(depths, [f"{d}\n(width {h[0]})" for d, h in zip(depths, hidden)])
    ax.set_xlabel(f"hidden layers (about {BUDGET:,} weights each)")
    ax.set_ylabel("test accuracy (mean ± std)")
    ax.set_title("digits: how many layers?")
    ax.grid(alpha=0.3)
    ax.legend(frameon=False)
    save_figure(fig, path)
    print(f"wrote {path}")


if __name__ == "__main__":
    sys.exit(main())
