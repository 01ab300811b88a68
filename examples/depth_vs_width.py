"""Lecture question: with the same number of weights, is it better to go deep or wide?

Pairs of ReLU networks with about the same number of weights, one with a single wide hidden
layer and one with several narrow ones, are trained the same way on the two spirals and scored
on a second spiral sample. Each layer of a deep network builds features from the previous
layer's features, so depth can buy more than the same weights spent on width.

    python examples/depth_vs_width.py --out figures/depth
"""
import argparse
import os
import sys

import numpy as np

import chainrule as cr
from chainrule.nn.training import predict

# (wide, deep) pairs with about the same number of weights on 2 inputs and 2 classes.
PAIRS = [([50], [8, 8, 8, 8]), ([125], [16, 16, 16])]


def train(hidden, X, y, test, epochs, seed):
    model = cr.nn.MLP(2, hidden, 2, activation="relu", rng=seed)
    opt = cr.optim.Adam(model.parameters(), lr=0.01)
    h = cr.fit(model, "cross_entropy", X, y, optimizer=opt, epochs=epochs, batch_size=32, seed=seed,
               validation=test, progress=False)
    return model, h


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join("chainrule-examples", "depth_vs_width"),
                        help="folder for the figures")
    parser.add_argument("--quick", action="store_true", help="one weight budget, one seed, fewer epochs")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    pairs = PAIRS[:1] if args.quick else PAIRS
    epochs = 40 if args.quick else 150
    seeds = [args.seed] if args.quick else [args.seed, args.seed + 1, args.seed + 2]

    X, y = cr.data.spiral(n=400, noise=0.05, seed=args.seed)
    test = cr.data.spiral(n=400, noise=0.05, seed=args.seed + 100)
    runs = {}
    for wide, deep in pairs:
        scores = {}
        for hidden in (wide, deep):
            fits = [train(hidden, X, y, test, epochs, s) for s in seeds]
            runs[str(hidden)] = fits[0]
            n_weights = fits[0][0].num_parameters()
            train_acc = np.mean([h.history["accuracy"][-1] for _, h in fits])
            test_acc = np.mean([h.history["val_accuracy"][-1] for _, h in fits])
            scores[str(hidden)] = test_acc
            print(f"hidden {str(hidden):<14} {n_weights:>4} weights: training accuracy {train_acc:.3f}, "
                  f"test accuracy {test_acc:.3f} (mean of {len(seeds)} seed(s), {epochs} epochs)")
        better = max(scores, key=scores.get)
        kind = "deep" if better == str(deep) else "wide"
        print(f"finding: at about {fits[0][0].num_parameters()} weights the {kind} network {better} scores higher "
              f"on the test spirals ({scores[str(deep)]:.3f} deep vs {scores[str(wide)]:.3f} wide)")

    try:
        from matplotlib.figure import Figure

        from chainrule.viz import nnplots
    except ImportError:
        print('figures skipped: matplotlib is not installed (pip install "chainrule[viz]")')
        return 0
    os.makedirs(args.out, exist_ok=True)
    fig = Figure(figsize=(4.0 * len(runs), 4.0), layout="constrained")
    for ax, (name, (model, h)) in zip(fig.subplots(1, len(runs)), runs.items()):
        nnplots.plot_decision_boundary(lambda P, m=model: predict(m, P), X, y, ax=ax,
                                       title=f"hidden {name}: {model.num_parameters()} weights")
    nnplots.save_figure(fig, os.path.join(args.out, "decision_boundaries.png"))
    nnplots.plot_curves({name: h.history["loss"] for name, (_, h) in runs.items()}, ylabel="training loss",
                        title="two spirals", logy=True, path=os.path.join(args.out, "training_loss.png"))
    print(f"figures written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
