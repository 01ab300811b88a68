"""cr.compile at the edge points of every elementwise primitive: 0, -0.0, ties and the points where
a value is inf or NaN give the eager partials, on Python floats (the float program), on 0-d
arrays and on arrays (the numpy program), in the gradient, the JVP and the second derivative."""
import sys
from pathlib import Path

import numpy as np
import pytest

import chainrule as cr
from chainrule.core.registry import REGISTRY

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "core"))
from test_primitives import EDGE_POINTS, ELEMENTWISE  # noqa: E402  (the registry's edge points, shared)


def same(got, want, what):
    got = np.asarray(got, dtype=float)
    want = np.asarray(want, dtype=float)
    np.testing.assert_array_equal(got, want, err_msg=what)  # NaN where NaN, inf where inf; -0.0 == 0.0


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("name", ELEMENTWISE)
def test_compiled_partials_at_edge_points_equal_eager(name):
    op = REGISTRY[name].op
    for point in EDGE_POINTS[len(REGISTRY[name].vjps)]:
        n = len(point)
        nums = tuple(range(n))
        grad = cr.grad(op, argnums=nums)
        for kind, args in (("floats", point), ("0-d arrays", tuple(np.float64(a) for a in point)),
                           ("arrays", tuple(np.full(3, a) for a in point))):
            what = f"{name} at {point} on {kind}"
            if kind == "arrays":
                def f(*xs):
                    return cr.sum(op(*xs))
                g = cr.grad(f, argnums=nums)
            else:
                f, g = op, grad
            want = g(*args)
            got = cr.compile(g)(*args)
            for a, b in zip(got, want):
                same(a, b, "gradient " + what)
            for i in range(n):
                tangent = tuple(np.ones_like(np.asarray(a)) * float(i == j) for j, a in enumerate(args))
                tangent = tangent if kind == "arrays" else tuple(float(t) for t in tangent)

                def jvp(*xs, i=i):
                    return cr.jvp(op, xs, tangent)[1]
                same(cr.compile(jvp)(*args), jvp(*args), f"JVP {i} {what}")


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("name", ELEMENTWISE)
def test_compiled_second_derivative_at_edge_points_equals_eager(name):
    op = REGISTRY[name].op
    for point in EDGE_POINTS[len(REGISTRY[name].vjps)]:
        h = cr.hessian(lambda *xs: op(*xs), argnums=tuple(range(len(point))))
        try:
            want = h(*point)
        except Exception as err:  # no second derivative eagerly either
            pytest.skip(f"eager hessian: {type(err).__name__}")
        got = cr.compile(h)(*point)
        for row_got, row_want in zip(got, want):
            for a, b in zip(row_got, row_want):
                same(a, b, f"second derivative of {name} at {point}")
