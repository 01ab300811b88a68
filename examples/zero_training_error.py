"""Lecture poll: for which of these datasets does a one-hidden-layer network reach zero training error?

Circle, XOR, two Gaussians and the two spirals, as in the TensorFlow Playground (noise 0).
For each set, networks with one hidden layer of growing width are trained until the training
error reaches the lowest value possible for that set (zero, unless one input point carries both
labels); the smallest width that gets there is reported and its decision boundary saved.

    python examples/zero_training_error.py --out figures/poll
"""
import argparse
import os
import sys

import numpy as np

import chainrule as cr
from chainrule.nn.training import predict


def fewest_possible_mistakes(X, y):
    """Training mistakes no classifier can avoid: identical inputs with different labels."""
    # + 0.0 turns -0.0 into 0.0: np.unique compares rows by their bytes, the network by value.
    _, group = np.unique(X + 0.0, axis=0, return_inverse=True)
    group = group.ravel()
    counts = np.zeros((group.max() + 1, y.max() + 1), dtype=int)
    np.add.at(counts, (group, y), 1)
    return int((counts.sum(1) - counts.max(1)).sum())


def smallest_width(X, y, widths, epochs, seed):
    """(width, epochs, mistakes, model, floor) for the first width whose number of training
    mistakes reaches the floor (counted in examples: no rounding of fractions)."""
    floor = fewest_possible_mistakes(X, y)
    best = None
    for width in widths:
        model = cr.nn.MLP(2, [width], 2, activation="relu", rng=seed)
        opt = cr.optim.Adam(model.parameters(), lr=0.02)
        # Stop as soon as the error is as low as it can be (a callback returning True stops fit).
        done = lambda epoch, logs: round((1 - logs["accuracy"]) * len(y)) <= floor  # noqa: E731
        h = cr.fit(model, "cross_entropy", X, y, optimizer=opt, epochs=epochs, batch_size=len(X), seed=seed,
                   callbacks=[done], progress=False)
        mistakes = round((1 - h.history["accuracy"][-1]) * len(y))
        if best is None or mistakes < best[2]:
            best = (width, len(h), mistakes, model)
        if mistakes <= floor:
            break
    return (*best, floor)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join("chainrule-examples", "zero_training_error"),
                        help="folder for the figures")
    parser.add_argument("--quick", action="store_true", help="fewer widths and epochs (a smoke run)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    widths = [4, 64] if args.quick else [2, 4, 8, 16, 32, 64, 128]
    epochs = 300 if args.quick else 3000
    try:
        from chainrule.viz import nnplots
        import matplotlib  # noqa: F401
    except ImportError:
        nnplots = None
        print('figures skipped: matplotlib is not installed (pip install "chainrule[viz]")')
    os.makedirs(args.out, exist_ok=True)

    reached = []
    for name in ("circle", "xor", "gaussians", "spiral"):
        X, y = cr.data.load(name, n=200, noise=0.0, seed=args.seed)
        width, n_epochs, mistakes, model, floor = smallest_width(X, y, widths, epochs, args.seed)
        at_floor, error = mistakes <= floor, mistakes / len(y)
        if at_floor and floor == 0:
            line = f"{name}: zero training error with {width} hidden units (epoch {n_epochs})"
        elif at_floor:
            line = (f"{name}: training error {error:.3f} with {width} hidden units (epoch {n_epochs}), the lowest "
                    f"possible: {floor} point(s) sit exactly on a point of the other class")
        else:
            line = f"{name}: not reached: training error {error:.3f} at best ({width} hidden units, {n_epochs} epochs)"
        print(line)
        reached.append(at_floor)
        if nnplots is not None:
            nnplots.plot_decision_boundary(lambda P, m=model: predict(m, P), X, y,
                                           path=os.path.join(args.out, f"{name}.png"),
                                           title=f"{name}: {width} hidden units, error {error:.3f}")
    sets = sum(reached)
    print(f"answer: one hidden layer reached the lowest possible training error on {sets} of 4 sets"
          + (" (all of them: with enough hidden units it can fit any labelling of distinct points)" if sets == 4
             else "; run without --quick for wider networks and longer training"))
    if nnplots is not None:
        print(f"decision boundaries written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
