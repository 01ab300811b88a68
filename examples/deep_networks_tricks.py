"""Lecture slide: deep networks need the right tricks.

Six hidden sigmoid layers with a small uniform initialization (U[-0.1, 0.1], the course's
"random" init) stall: the training loss stays at chance. The same network with ReLU units and
He initialization trains. The diagnostics of fit show why: backpropagation multiplies the
gradient at every layer by sigmoid's slope (at most 1/4) and the small weights, so the first
layer's gradient is millions of times smaller than the last layer's, and chainrule warns
(VanishingGradientWarning) naming the layer; ReLU passes the gradient on with slope 1 and He
initialization keeps its size, so every layer's gradient is of the same order and no warning comes.

    python examples/deep_networks_tricks.py --out figures/deep
"""
import argparse
import os
import sys
import warnings

import chainrule as cr

SETUPS = [("sigmoid", "uniform"), ("relu", "kaiming_uniform")]


def train(activation, init, X, y, epochs, seed):
    """Train a 6-hidden-layer network with diagnostics; return its History and the warnings raised."""
    model = cr.nn.MLP(2, [32] * 6, 2, activation=activation, init=init, rng=seed)
    opt = cr.optim.SGD(model.parameters(), lr=0.1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", cr.TrainingWarning)
        h = cr.fit(model, "cross_entropy", X, y, optimizer=opt, epochs=epochs, batch_size=16, seed=seed,
                   progress=False, diagnostics=True)
    return h, [w for w in caught if issubclass(w.category, cr.TrainingWarning)]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join("chainrule-examples", "deep_networks_tricks"),
                        help="folder for the figures")
    parser.add_argument("--quick", action="store_true", help="a smaller data set and fewer epochs")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    n, epochs = (200, 15) if args.quick else (600, 40)
    X, y = cr.data.circle(n=n, noise=0.05, seed=args.seed)

    runs = {}
    for activation, init in SETUPS:
        h, caught = train(activation, init, X, y, epochs, args.seed)
        name = f"{activation} + {init}"
        runs[name] = h
        first = {r["layer"]: r["grad_norm"] for r in h.diagnostics if r["epoch"] == 1}
        print(f"{name}: training accuracy {h.history['accuracy'][-1]:.3f} after {epochs} epochs; "
              f"epoch 1 gradient norm of layer 1 {first[1]:.1e}, of layer {max(first)} {first[max(first)]:.1e}")
        for w in caught:
            print(f"  warning {w.category.__name__}: {w.message}")
        if not caught:
            print("  no warning: every layer's gradient is within a factor 1e4 of the others")
    sig, relu = (runs[f"{a} + {i}"] for a, i in SETUPS)
    print(f"finding: the deep sigmoid network {'stalls' if sig.history['accuracy'][-1] < 0.7 else 'trains'} "
          f"(accuracy {sig.history['accuracy'][-1]:.3f}); ReLU with He initialization "
          f"{'trains' if relu.history['accuracy'][-1] > 0.9 else 'stalls'} (accuracy {relu.history['accuracy'][-1]:.3f})")

    try:
        from chainrule.viz import nnplots
        from chainrule.viz.diagnostics import plot_diagnostics
    except ImportError:
        print('figures skipped: matplotlib is not installed (pip install "chainrule[viz]")')
        return 0
    os.makedirs(args.out, exist_ok=True)
    for (activation, _), (name, h) in zip(SETUPS, runs.items()):
        plot_diagnostics(h, os.path.join(args.out, f"diagnostics_{activation}.png"), title=f"6 hidden layers, {name}")
    nnplots.plot_curves({name: h.history["loss"] for name, h in runs.items()}, ylabel="training loss",
                        title="6 hidden layers on the circle", path=os.path.join(args.out, "training_loss.png"))
    print(f"figures written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
