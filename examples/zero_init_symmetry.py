"""Lecture question: why not start every weight at zero?

With all weights zero, every hidden unit computes the same function and receives the same
gradient, so after any amount of training the units are still identical: the layer behaves like
a single unit. Random initialization breaks the symmetry. Both start points train the same
sigmoid network on XOR with the same SGD; the hidden units' outputs over the plane are drawn.

    python examples/zero_init_symmetry.py --out figures/init
"""
import argparse
import os
import sys

import numpy as np

import chainrule as cr
from chainrule.nn.training import hidden_outputs


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join("chainrule-examples", "zero_init_symmetry"),
                        help="folder for the figures")
    parser.add_argument("--quick", action="store_true", help="fewer epochs (a smoke run)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    epochs = 30 if args.quick else 100

    X, y = cr.data.xor(n=200, seed=args.seed)
    results = {}
    for init in ("zeros", "xavier_uniform"):
        model = cr.nn.MLP(2, [8], 2, activation="sigmoid", init=init, rng=args.seed)
        opt = cr.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
        h = cr.fit(model, "cross_entropy", X, y, optimizer=opt, epochs=epochs, batch_size=16, seed=args.seed,
                   progress=False)
        outputs = hidden_outputs(model, X)[0]  # (examples, units)
        gap = np.ptp(outputs, axis=1).max()  # the largest difference between two units on any example
        moved = np.abs(model.layers[0].weight.numpy()).max()
        results[init] = (model, h)
        print(f"{init} init: training accuracy {h.history['accuracy'][-1]:.3f} after {epochs} epochs; "
              f"hidden units identical: {'yes' if gap == 0 else 'no'} (largest difference between two units' "
              f"outputs {gap:.3g}); largest first-layer weight {moved:.3g}")
    zeros, rand = (results[k][1].history["accuracy"][-1] for k in ("zeros", "xavier_uniform"))
    print(f"finding: zero initialization keeps all 8 hidden units identical (one unit's worth of features, "
          f"accuracy {zeros:.3f}); random initialization reaches {rand:.3f}")

    try:
        import matplotlib  # noqa: F401

        from chainrule.viz import nnplots
    except ImportError:
        print('figures skipped: matplotlib is not installed (pip install "chainrule[viz]")')
        return 0
    os.makedirs(args.out, exist_ok=True)
    for init, (model, h) in results.items():
        nnplots.plot_hidden_units(lambda P, m=model: hidden_outputs(m, P), X, y,
                                  path=os.path.join(args.out, f"hidden_units_{init}.png"),
                                  title=f"{init} initialization: each hidden unit over the plane")
    nnplots.plot_curves({init: h.history["loss"] for init, (_, h) in results.items()}, ylabel="training loss",
                        title="XOR, sigmoid network", path=os.path.join(args.out, "training_loss.png"))
    print(f"figures written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
