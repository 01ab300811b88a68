"""The tape: the functional API's path for float numbers (modes/tape.py). Each result is checked
against the graph of Tensors, which the same call takes when an input is a 1-element array."""
import math
import warnings

import numpy as np
import pytest
from compositions import programs, run
from hypothesis import given, settings
from hypothesis import strategies as st

import chainrule as cr
from chainrule.modes.tape import Traced


def quiz(x, z):
    xz = x * z
    return cr.exp(xz) + xz / cr.log(x) + cr.sin(cr.log(x)) / xz


def _by_graph(f, *xs, argnums=0):
    """The same gradient through the graph of Tensors: the inputs as 1-element arrays."""
    g = cr.grad(lambda *a: cr.sum(f(*a)), argnums=argnums)(*[np.array([x]) for x in xs])
    return np.array([v[0] for v in g]) if isinstance(g, tuple) else g[0]


FUNCTIONS = [
    (quiz, (2.0, 3.0)),
    (lambda x, y: cr.tanh(x * y - 1.5) * cr.sqrt(x) + cr.cos(y) ** 2, (0.7, -1.3)),
    (lambda x, y: cr.abs(x - y) / (1 + cr.sigmoid(x)) - cr.relu(y) * cr.softplus(x), (0.4, 2.5)),
    (lambda x, y: cr.maximum(x, y) * cr.minimum(x, -y) + x ** y, (1.5, 0.5)),
    (lambda x, y: -(x / y) + 2.0 - x * 3 + 1 / y, (3.0, -4.0)),
]


@pytest.mark.parametrize("f, point", FUNCTIONS)
def test_tape_agrees_with_the_graph_of_tensors(f, point):
    got = cr.grad(f, argnums=(0, 1))(*point)
    assert all(type(v) is np.float64 for v in got)
    np.testing.assert_allclose(got, _by_graph(f, *point, argnums=(0, 1)), rtol=1e-13)


def test_the_quiz_to_the_lectures_digits_for_each_kind_of_number():
    for x, z in [(2.0, 3.0), (np.float64(2.0), np.float64(3.0)), (np.array(2.0), np.array(3.0))]:
        np.testing.assert_allclose(cr.grad(quiz, argnums=(0, 1))(x, z), [1208.3812151266, 809.7074792186],
                                   rtol=1e-12)


def test_the_function_sees_traced_tensors_and_the_value_comes_back_as_numpy():
    seen = []

    def f(x):
        seen.append((type(x), x.shape, x.dtype))
        return x * x

    value, g = cr.value_and_grad(f)(3.0)
    assert seen == [(Traced, (), np.float64)]
    assert issubclass(Traced, cr.Tensor)  # isinstance(x, cr.Tensor) holds inside f, as before
    assert type(value) is np.float64 and value == 9.0
    assert type(g) is np.float64 and g == 6.0
    out, tangent = cr.jvp(lambda x: cr.sin(x) * x, (2.0,), (1.0,))  # math inside, numpy scalars out
    assert type(out) is np.float64 and type(tangent) is np.float64


def test_arrays_inside_a_function_of_numbers_are_summed_back():
    w = np.arange(1.0, 4.0)
    assert cr.grad(lambda x: cr.sum(x * w + x))(2.0) == 9.0  # sum(w) + 3: broadcast undone
    assert cr.grad(lambda x: cr.sum(cr.stack([x, x * x])))(2.0) == 5.0
    assert cr.grad(lambda x: cr.mean(x * [1.0, 2.0, 3.0]))(5.0) == 2.0


def test_output_independent_of_an_input_gives_zero():
    gx, gy = cr.grad(lambda x, y: x * 2.0, argnums=(0, 1))(1.0, 5.0)
    assert gx == 2.0 and gy == 0.0 and type(gy) is np.float64
    assert cr.grad(lambda x: 4.0)(1.0) == 0.0
    assert cr.grad(lambda x: x)(1.0) == 1.0


def test_stopping_the_gradient_inside():
    assert cr.grad(lambda x: x * x.detach())(3.0) == 3.0

    def f(x):
        with cr.no_grad():
            c = x * x
        return c * x

    assert cr.grad(f)(3.0) == 9.0


def test_edge_values_give_numpys_inf_not_pythons_errors():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        assert cr.grad(cr.log)(0.0) == np.inf
        assert cr.grad(lambda x: 1.0 / x)(0.0) == -np.inf
        assert cr.grad(cr.exp)(1000.0) == np.inf
        assert math.isnan(cr.grad(cr.sqrt)(-1.0))


def test_nesting_keeps_perturbations_apart():
    # d/dx [x * d/dy (x + y)] at x = y = 1 is 1, not 2
    inner = lambda x: cr.grad(lambda y: x + y)(1.0)  # noqa: E731
    assert cr.grad(lambda x: x * inner(x))(1.0) == 1.0
    assert cr.grad(cr.grad(cr.grad(lambda x: x ** 4)))(2.0) == 48.0
    assert cr.grad(lambda x: cr.jvp(lambda y: x * y * y, (2.0,), (1.0,))[1])(3.0) == 4.0


def test_vjp_and_jacobian_of_several_outputs_at_numbers():
    out, vjp_fn = cr.vjp(lambda x, y: (x * y, x + y, x * y), 2.0, 3.0)
    assert vjp_fn((1.0, 10.0, 100.0)) == (303.0 + 10.0, 202.0 + 10.0)
    assert vjp_fn((0.0, 1.0, 0.0)) == (1.0, 1.0)  # the tape is walked again
    np.testing.assert_allclose(cr.jacobian(lambda x: cr.stack([x * x, cr.sin(x)]), mode="reverse")(0.5),
                               [1.0, np.cos(0.5)])


def test_backward_on_a_traced_value_says_what_to_do():
    def f(x):
        (x * x).backward()
        return x

    with pytest.raises(TypeError, match="return it instead"):
        cr.grad(f)(1.0)


def test_anomaly_mode_takes_the_graph_and_names_the_operation():
    with cr.detect_anomaly(), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.raises(cr.AnomalyError, match="log"):
            cr.grad(lambda x: cr.log(x - 1.0))(1.0)


UNARY = [cr.tanh, cr.sin, cr.cos, cr.sigmoid, cr.abs, cr.relu, lambda v: cr.exp(v * 0.3),
         lambda v: cr.log(v * v + 1), lambda v: cr.sqrt(v * v + 0.5), lambda v: -v, lambda v: v ** 3]
BINARY = [cr.add, cr.subtract, cr.multiply, lambda a, b: a / (b * b + 1), lambda a, b: 2.0 - a * b,
          cr.maximum]


@settings(max_examples=60, deadline=None)
@given(programs(len(UNARY), len(BINARY)), st.floats(-2, 2), st.floats(-2, 2))
def test_random_compositions_on_the_tape_match_the_graph(program, x, y):
    def f(a, b):
        return run(program, a, b, UNARY, BINARY)

    got = cr.grad(f, argnums=(0, 1))(x, y)
    np.testing.assert_allclose(got, _by_graph(f, x, y, argnums=(0, 1)), rtol=1e-12, atol=1e-12)
