"""Lecture slide: backpropagation for a 1-hidden-layer neural network, with the slide's names.

    a_j = sum_i alpha_ji x_i      z_j = 1 / (1 + exp(-a_j))      b = sum_j beta_j z_j
    y = 1 / (1 + exp(-b))         J = y* log y + (1 - y*) log(1 - y)

cr.name gives each quantity its name on the slide, cr.trace records the forward computation,
and reverse mode fills the backward table. Each adjoint is then checked against the slide's
backward formulas, written out by hand:

    dJ/dy = y*/y + (1 - y*)/(y - 1)        dJ/db = dJ/dy y (1 - y)
    dJ/dbeta_j = dJ/db z_j                 dJ/dz_j = dJ/db beta_j
    dJ/da_j = dJ/dz_j z_j (1 - z_j)        dJ/dalpha_ji = dJ/da_j x_i

    python examples/backprop_one_hidden_layer.py --out figures/backprop
"""
import argparse
import os
import sys

import numpy as np

import chainrule as cr


def network(x, y_star):
    """J(alpha, beta) for one example (x, y*), each quantity named as on the slide."""
    def J(alpha, beta):
        a = cr.name(alpha @ x, "a")
        z = cr.name(1 / (1 + cr.exp(-a)), "z")
        b = cr.name(cr.sum(beta * z), "b")
        y = cr.name(1 / (1 + cr.exp(-b)), "y")
        return cr.name(y_star * cr.log(y) + (1 - y_star) * cr.log(1 - y), "J")
    return J


def by_hand(alpha, beta, x, y_star):
    """The slide's forward and backward computation in plain numpy: name -> (value, adjoint)."""
    a = alpha @ x
    z = 1 / (1 + np.exp(-a))
    b = beta @ z
    y = 1 / (1 + np.exp(-b))
    g_y = y_star / y + (1 - y_star) / (y - 1)
    g_b = g_y * y * (1 - y)
    g_beta = g_b * z
    g_z = g_b * beta
    g_a = g_z * z * (1 - z)
    g_alpha = np.outer(g_a, x)
    return {"a": (a, g_a), "z": (z, g_z), "b": (b, g_b), "y": (y, g_y), "beta": (beta, g_beta),
            "alpha": (alpha, g_alpha)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join("chainrule-examples", "backprop_one_hidden_layer"),
                        help="folder for the figure")
    parser.add_argument("--quick", action="store_true", help="the same (the example is instant); for the tests")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--hidden", type=int, default=2, help="hidden units D (default 2)")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    x = np.round(rng.normal(size=3), 2)  # M = 3 inputs
    alpha = np.round(rng.normal(size=(args.hidden, 3)), 2)
    beta = np.round(rng.normal(size=args.hidden), 2)
    y_star = 1.0

    graph = cr.trace(network(x, y_star), alpha, beta)
    print(f"x = {x.tolist()}, y* = {y_star:g}\nalpha = {alpha.tolist()}\nbeta = {beta.tolist()}\n")
    print(graph.forward_table())
    print()
    print(graph.backward_table())
    print()
    hand = by_hand(alpha, beta, x, y_star)
    ok = True
    for label, (value, adjoint) in hand.items():
        same = (np.allclose(np.asarray(graph[label].value), value, rtol=1e-12, atol=0)
                and np.allclose(np.asarray(graph.adjoint(label)), adjoint, rtol=1e-12, atol=1e-15))
        ok = ok and same
        print(f"{label:>5}: value and dJ/d{label} {'agree with' if same else 'DIFFER FROM'} the slide's formula "
              f"(dJ/d{label} = {np.array2string(np.asarray(adjoint), precision=6, separator=', ').replace(chr(10), '')})")
    print("finding: reverse mode reproduces every forward value and adjoint of the slide"
          if ok else "finding: some adjoints differ from the slide")

    os.makedirs(args.out, exist_ok=True)
    try:
        graph.draw(os.path.join(args.out, "network.png"))
    except cr.viz.GraphvizError:
        print("figures skipped: Graphviz is not installed (apt install graphviz); network.dot written")
        return 0 if ok else 1
    print(f"figures written to {args.out}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
