"""Lecture slide: feature engineering vs learned features.

On the circle (class 1 inside a ring of class 0) a linear classifier on the raw inputs (x1, x2)
can do no better than guessing: no straight line separates a disc from its ring. Three ways:

1. logistic regression on the raw inputs: a linear boundary, about chance;
2. logistic regression on hand-made features (x1, x2, x1^2, x2^2, x1 x2): the boundary
   w3 x1^2 + w4 x2^2 + ... = c is a conic, so a circle is within reach; someone had to know that;
3. a network with one hidden layer on the raw inputs: the hidden units learn the features
   themselves, and the output layer is logistic regression on them.

    python examples/feature_engineering.py --out figures/features
"""
import argparse
import os
import sys

import numpy as np

import chainrule as cr
from chainrule.nn.training import predict


def quadratic_features(X):
    """The hand-made features: the raw inputs, their squares and their product."""
    x1, x2 = X[:, 0], X[:, 1]
    return np.column_stack([x1, x2, x1 ** 2, x2 ** 2, x1 * x2])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join("chainrule-examples", "feature_engineering"),
                        help="folder for the figures")
    parser.add_argument("--quick", action="store_true", help="a smaller data set and fewer epochs")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    n, epochs = (200, 60) if args.quick else (600, 200)
    X, y = cr.data.circle(n=n, noise=0.05, seed=args.seed)
    Xt, yt = cr.data.circle(n=n, noise=0.05, seed=args.seed + 100)

    setups = [
        ("logistic regression, raw inputs", lambda: cr.nn.LogisticRegression(2), lambda A: A),
        ("logistic regression, hand-made features", lambda: cr.nn.LogisticRegression(5), quadratic_features),
        ("one hidden layer (8 tanh units), raw inputs",
         lambda: cr.nn.MLP(2, [8], 1, activation="tanh", rng=args.seed), lambda A: A),
    ]
    results = []
    for name, make, features in setups:
        model = make()
        opt = cr.optim.Adam(model.parameters(), lr=0.05)
        h = cr.fit(model, "bce_logits", features(X), y, optimizer=opt, epochs=epochs, batch_size=32, seed=args.seed,
                   validation=(features(Xt), yt), progress=False)
        train_acc, test_acc = h.history["accuracy"][-1], h.history["val_accuracy"][-1]
        results.append((name, model, features, train_acc, test_acc))
        print(f"{name}: training accuracy {train_acc:.3f}, test accuracy {test_acc:.3f}")
    raw, hand, learned = (r[4] for r in results)
    print(f"finding: raw inputs {raw:.3f}, hand-made features {hand:.3f}, learned features {learned:.3f}: "
          + ("both beat the raw inputs by far: the hidden layer learns, unaided, features about as good as the "
             "hand-made ones"
             if min(hand, learned) > raw + 0.2 else "no clear winner at this setting"))

    try:
        from matplotlib.figure import Figure

        from chainrule.viz import nnplots
    except ImportError:
        print('figures skipped: matplotlib is not installed (pip install "chainrule[viz]")')
        return 0
    os.makedirs(args.out, exist_ok=True)
    fig = Figure(figsize=(12.0, 4.0), layout="constrained")
    for ax, (name, model, features, _, test_acc) in zip(fig.subplots(1, 3), results):
        nnplots.plot_decision_boundary(lambda P, m=model, f=features: predict(m, f(P)), Xt, yt, ax=ax,
                                       title=f"{name}\ntest accuracy {test_acc:.3f}")
    nnplots.save_figure(fig, os.path.join(args.out, "decision_boundaries.png"))
    print(f"figures written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
