"""Lecture question: why train a classifier with cross-entropy rather than the quadratic loss?

The same sigmoid network, the same initial weights, the same SGD, trained on the digits once with
softmax cross-entropy and once with the quadratic loss sum_k (softmax_k - onehot_k)^2, as in
Glorot & Bengio (2010). The training curves show cross-entropy learning much faster; the two
costs drawn over two weights (one in each layer) show why: the quadratic cost has plateaus
where the softmax saturates, so its gradient there is nearly zero.

    python examples/cross_entropy_vs_quadratic.py --out figures/losses
"""
import argparse
import os
import sys

import numpy as np

import chainrule as cr
from chainrule.data import Standardizer, one_hot


def quadratic(outputs, labels):
    r"""$\frac1n \sum_i \sum_k (\mathrm{softmax}(z_i)_k - [y_i = k])^2$: the quadratic loss on the outputs."""
    target = one_hot(np.asarray(labels).astype(np.int64), 10)
    return cr.sum(cr.square(cr.softmax(outputs) - target)) / len(target)


def train(loss, X, y, epochs, seed):
    model = cr.nn.MLP(64, [64], 10, activation="sigmoid", init="xavier_uniform", rng=seed)
    opt = cr.optim.SGD(model.parameters(), lr=0.1)
    h = cr.fit(model, loss, X, y, optimizer=opt, epochs=epochs, batch_size=32, seed=seed,
               metrics=("error_rate",), progress=False)
    return model, h


def surface(loss, model, X, y, span=6.0, points=31):
    """The loss as a function of two weights, one in each layer, the others held fixed."""
    w1, w2 = model.layers[0].weight.data, model.layers[1].weight.data
    i1, i2 = (0, int(np.abs(w1[0]).argmax())), (int(y[0]), 0)  # a first-layer and a last-layer weight
    keep = w1[i1], w2[i2]
    values = np.linspace(-span, span, points)
    grid = np.empty((points, points))
    with cr.no_grad():
        for a, u in enumerate(values):
            for b, v in enumerate(values):
                w1[i1], w2[i2] = u, v
                grid[b, a] = float(loss(model(X), y))
    w1[i1], w2[i2] = keep
    return values, grid


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join("chainrule-examples", "cross_entropy_vs_quadratic"),
                        help="folder for the figures")
    parser.add_argument("--quick", action="store_true", help="fewer epochs (a smoke run)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=None, help="epochs (default 20, 4 with --quick)")
    args = parser.parse_args(argv)
    epochs = args.epochs or (4 if args.quick else 20)

    X, y = cr.data.load_digits()
    X = Standardizer().fit_transform(X)
    runs = {"cross-entropy": train("cross_entropy", X, y, epochs, args.seed),
            "quadratic": train(quadratic, X, y, epochs, args.seed)}
    errors = {name: h.history["error_rate"] for name, (_, h) in runs.items()}
    for epoch in sorted({1, 2, max(1, epochs // 2), epochs}):
        print(f"epoch {epoch}: training error cross-entropy {errors['cross-entropy'][epoch - 1]:.3f}, "
              f"quadratic {errors['quadratic'][epoch - 1]:.3f}")
    for name, errs in errors.items():
        below = [e for e, v in enumerate(errs, 1) if v < 0.1]
        print(f"{name}: training error below 10% " + (f"from epoch {below[0]}" if below else f"not within {epochs} epochs"))
    faster = "cross-entropy" if errors["cross-entropy"][0] < errors["quadratic"][0] else "quadratic"
    print(f"finding: after one epoch from the same start, {faster} has the lower training error")

    try:
        from matplotlib.figure import Figure

        from chainrule.viz import nnplots
    except ImportError:
        print('figures skipped: matplotlib is not installed (pip install "chainrule[viz]")')
        return 0
    os.makedirs(args.out, exist_ok=True)
    nnplots.plot_curves(errors, ylabel="training error", title="same network, same start, two losses",
                        path=os.path.join(args.out, "training_error.png"))
    # The surfaces at the starting weights, over a subset of the data (2 x 31^2 forward passes).
    start = cr.nn.MLP(64, [64], 10, activation="sigmoid", init="xavier_uniform", rng=args.seed)
    fig = Figure(figsize=(9.0, 4.0), layout="constrained")
    for ax, (name, loss) in zip(fig.subplots(1, 2), (("cross-entropy", "cross_entropy"), ("quadratic", quadratic))):
        values, grid = surface(cr.nn.loss(loss) if isinstance(loss, str) else loss, start, X[:300], y[:300],
                               points=13 if args.quick else 31)
        shade = ax.contourf(values, values, grid, levels=20, cmap="viridis")
        fig.colorbar(shade, ax=ax)
        ax.set_title(name)
        ax.set_xlabel("a weight of layer 1")
        ax.set_ylabel("a weight of layer 2")
    nnplots.save_figure(fig, os.path.join(args.out, "cost_surfaces.png"))
    print(f"figures written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
