"""Lecture slide: binary logistic regression is an arithmetic circuit.

The log-likelihood of one example (x, y*) under logistic regression,

    a = theta^T x,   q = sigmoid(a) = 1 / (1 + exp(-a)),   J = y* log q + (1 - y*) log(1 - q),

is traced with cr.trace: the forward table lists every intermediate quantity in order, the
backward table every adjoint g_u = dJ/du with the chain-rule term that produced it. The gradient
the circuit computes is checked against the lecture's closed form dJ/dtheta = (y* - q) x.

    python examples/logistic_regression_circuit.py --out figures/logistic_circuit
"""
import argparse
import os
import sys

import numpy as np

import chainrule as cr


def log_likelihood(theta, x, y_star):
    """The lecture's J, each quantity named as on the slide."""
    a = cr.name(cr.sum(theta * x), "a")
    q = cr.name(1 / (1 + cr.exp(-a)), "q")
    return cr.name(y_star * cr.log(q) + (1 - y_star) * cr.log(1 - q), "J")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join("chainrule-examples", "logistic_regression_circuit"),
                        help="folder for the figure")
    parser.add_argument("--quick", action="store_true", help="the same (the example is instant); for the tests")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    theta, x = np.round(rng.normal(size=3), 2), np.round(rng.normal(size=3), 2)
    y_star = 1.0

    def J(theta):  # x and y* are data: constants of the circuit; theta is the input we differentiate by
        return log_likelihood(theta, x, y_star)

    graph = cr.trace(J, theta)
    print(f"theta = {theta.tolist()}, x = {x.tolist()}, y* = {y_star:g}\n")
    print(graph.forward_table())
    print()
    print(graph.backward_table())
    q = 1 / (1 + np.exp(-theta @ x))
    by_hand = (y_star - q) * x
    traced = np.asarray(graph.adjoint("theta"))
    agree = np.allclose(traced, by_hand, rtol=1e-12, atol=0)
    print(f"\nthe circuit's dJ/dtheta = {np.array2string(traced, precision=6)}")
    print(f"the lecture's (y* - q) x = {np.array2string(by_hand, precision=6)}")
    print(f"finding: the backward pass {'equals' if agree else 'DIFFERS FROM'} the closed form (y* - q) x")

    os.makedirs(args.out, exist_ok=True)
    try:
        graph.draw(os.path.join(args.out, "circuit.png"))
    except cr.viz.GraphvizError:
        print("figures skipped: Graphviz is not installed (apt install graphviz); circuit.dot written")
        return 0 if agree else 1
    print(f"figures written to {args.out}")
    return 0 if agree else 1


if __name__ == "__main__":
    sys.exit(main())
