"""Lecture poll, question 2: for which of these regression data sets does a network with one
hidden layer reach (near) zero training MSE?

The TensorFlow Playground's two regression sets, noise 0: the tilted plane y = (x0 + x1) / 2 and
the six Gaussian bumps of alternating sign. For each set, one hidden layer of growing width is
trained by full-batch Adam until the training MSE falls below 1% of the targets' variance
(R^2 >= 0.99, "near zero"); the smallest width that gets there is reported and its prediction
saved. The plane needs a single unit (a ReLU whose kink lies outside the data is linear on it);
the bumps need enough units to build six of them.

    python examples/zero_mse_regression.py --out figures/poll2
"""
import argparse
import os
import sys

import numpy as np

import chainrule as cr
from chainrule.nn.training import predict

NEAR_ZERO = 0.01  # training MSE below this fraction of var(y) counts as near zero


def smallest_width(X, y, widths, epochs, seed):
    """(width, epochs run, training MSE, model) for the first width that gets near zero, else the best."""
    goal = NEAR_ZERO * float(np.var(y))
    best = None
    for width in widths:
        model = cr.nn.MLP(2, [width], 1, activation="relu", init="kaiming_uniform", rng=seed)
        opt = cr.optim.Adam(model.parameters(), lr=0.02)
        done = lambda epoch, logs: logs["loss"] < goal  # noqa: E731  (a callback returning True stops fit)
        h = cr.fit(model, "mse", X, y, optimizer=opt, epochs=epochs, batch_size=len(X), seed=seed,
                   callbacks=[done], progress=False)
        mse = h.history["loss"][-1]
        if best is None or mse < best[2]:
            best = (width, len(h), mse, model)
        if mse < goal:
            break
    return best


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join("chainrule-examples", "zero_mse_regression"),
                        help="folder for the figures")
    parser.add_argument("--quick", action="store_true", help="fewer widths and epochs (a smoke run)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    widths = [1, 64] if args.quick else [1, 2, 4, 8, 16, 32, 64, 128]
    epochs = 1000 if args.quick else 5000
    try:
        import matplotlib  # noqa: F401

        from chainrule.viz import nnplots
    except ImportError:
        nnplots = None
        print('figures skipped: matplotlib is not installed (pip install "chainrule[viz]")')
    os.makedirs(args.out, exist_ok=True)

    reached = []
    for name in ("plane", "multi_gaussian"):
        X, y = cr.data.load(name, n=200, noise=0.0, seed=args.seed)
        width, n_epochs, mse, model = smallest_width(X, y, widths, epochs, args.seed)
        near = mse < NEAR_ZERO * np.var(y)
        reached.append(near)
        print(f"{name}: {'near-zero' if near else 'not near-zero'} training MSE {mse:.2e} "
              f"({mse / np.var(y):.1%} of the targets' variance) with {width} hidden unit{'s' if width > 1 else ''} "
              f"(epoch {n_epochs})")
        if nnplots is not None:
            nnplots.plot_decision_boundary(lambda P, m=model: predict(m, P).ravel(), X, y,
                                           path=os.path.join(args.out, f"{name}.png"), classification=False,
                                           title=f"{name}: {width} hidden units, MSE {mse:.1e}")
    print(f"answer: one hidden layer reached near-zero training MSE on {sum(reached)} of 2 sets"
          + (" (both: with enough hidden units it can fit any smooth function of distinct inputs)"
             if all(reached) else "; run without --quick for wider networks and longer training"))
    if nnplots is not None:
        print(f"figures written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
