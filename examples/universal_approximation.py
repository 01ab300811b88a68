"""Lecture question: can a network with one hidden layer fit any function? (universal approximation)

A one-hidden-layer network of sigmoid units, y = sum_j beta_j sigmoid(alpha_j x + c_j) + d, is
trained by least squares on a 1-D function. Each sigmoid is a smoothed step; with more of them
the network can place more steps, so the fit gets better as the hidden layer grows, which is
what the universal approximation theorem promises in the limit.

    python examples/universal_approximation.py --out figures/universal
"""
import argparse
import os
import sys

import numpy as np

import chainrule as cr
from chainrule.nn.training import predict


def target(x):
    return np.sin(3 * x) + 0.5 * x


def train(width, X, y, epochs, seeds):
    """The best fit (lowest training MSE) of a network of ``width`` hidden units over the seeds:
    the question is what the width can represent, and a single start can get stuck."""
    best = None
    for seed in seeds:
        model = cr.nn.MLP(1, [width], 1, activation="sigmoid", rng=seed)
        opt = cr.optim.Adam(model.parameters(), lr=0.05)
        schedule = cr.optim.CosineAnnealingLR(opt, T_max=epochs)  # a decaying step settles into the minimum
        h = cr.fit(model, "mse", X, y, optimizer=opt, epochs=epochs, batch_size=len(X), seed=seed, progress=False,
                   callbacks=[lambda epoch, logs: schedule.step()])
        if best is None or h.history["loss"][-1] < best[1].history["loss"][-1]:
            best = (model, h)
    return best


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join("chainrule-examples", "universal_approximation"),
                        help="folder for the figures")
    parser.add_argument("--quick", action="store_true", help="three widths, fewer epochs")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    widths = [1, 3, 12] if args.quick else [1, 2, 3, 4, 6, 8]
    epochs = 500 if args.quick else 2500
    seeds = [args.seed] if args.quick else [args.seed, args.seed + 1, args.seed + 2]
    X = np.linspace(-2, 2, 100)[:, None]
    y = target(X[:, 0])

    fits, mses = {}, {}
    for width in widths:
        model, h = train(width, X, y, epochs, seeds)
        fits[width] = model
        mses[width] = h.history["loss"][-1]
        print(f"{width:>3} hidden sigmoid units: training MSE {mses[width]:.5f}")
    falls = all(mses[a] > mses[b] for a, b in zip(widths, widths[1:]))
    print(f"finding: the training MSE {'falls' if falls else 'does not always fall'} as the hidden layer grows, "
          f"from {mses[widths[0]]:.4f} with {widths[0]} unit to {mses[widths[-1]]:.5f} with {widths[-1]}")

    try:
        from matplotlib.figure import Figure

        from chainrule.viz import nnplots
    except ImportError:
        print('figures skipped: matplotlib is not installed (pip install "chainrule[viz]")')
        return 0
    os.makedirs(args.out, exist_ok=True)
    fig = Figure(figsize=(9.0, 3.8), layout="constrained")
    ax, ax2 = fig.subplots(1, 2)
    grid = np.linspace(-2, 2, 400)[:, None]
    ax.plot(grid[:, 0], target(grid[:, 0]), color="black", linewidth=2.5, label="sin(3x) + x/2")
    for width, model in fits.items():
        ax.plot(grid[:, 0], predict(model, grid).ravel(), label=f"{width} hidden units")
    ax.set_xlabel("x")
    ax.legend(frameon=False, fontsize=8)
    ax.set_title("one hidden layer of sigmoids")
    ax2.plot(widths, [mses[w] for w in widths], marker="o")
    ax2.set_xscale("log")
    ax2.set_yscale("log")
    ax2.set_xlabel("hidden units")
    ax2.set_ylabel("training MSE")
    ax2.grid(alpha=0.3)
    nnplots.save_figure(fig, os.path.join(args.out, "universal_approximation.png"))
    print(f"figures written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
