"""Finite differences: the four methods on the lecture's quiz, steps by dtype, Richardson, the
float32 warning, the complex step exact on analytic primitives and refused on the others."""
import doctest
import warnings

import numpy as np
import pytest

import chainrule as cr
from chainrule.core.registry import REGISTRY
from chainrule.modes import numeric
from chainrule.modes.numeric import NotAnalyticError, NumericError, PrecisionWarning
from chainrule.modes.reverse import grads_of

QUIZ_GRAD = np.array([1208.3812151266, 809.7074792186])


def quiz(x, z):
    xz = x * z
    return cr.exp(xz) + xz / cr.log(x) + cr.sin(cr.log(x)) / xz


def reverse_grad(f, *args):
    leaves = [cr.tensor(np.asarray(a, dtype=np.float64), requires_grad=True) for a in args]
    out = f(*leaves)
    return [np.asarray(g.numpy() if isinstance(g, cr.Tensor) else g) for g in grads_of(out, np.ones(out.shape), leaves)]


@pytest.mark.parametrize("method, rtol", [("central", 1e-8), ("complex", 1e-13), ("forward", 1e-6), ("backward", 1e-6)])
def test_quiz_gradient(method, rtol):
    g = numeric.gradient(quiz, 2.0, 3.0, argnums=(0, 1), method=method)
    np.testing.assert_allclose(g, QUIZ_GRAD, rtol=rtol, atol=0)


def test_complex_step_matches_reverse_mode_to_rounding():
    exact = reverse_grad(quiz, 2.0, 3.0)
    g = numeric.gradient(quiz, 2.0, 3.0, argnums=(0, 1), method="complex")
    np.testing.assert_allclose(g, np.ravel(exact), rtol=2e-15 * 8)


def test_evaluations_are_counted():
    calls = []

    def f(x):
        calls.append(1)
        return cr.sum(cr.sin(x))

    x = np.arange(4.0)
    for method, expected in [("forward", 1 + 4), ("backward", 1 + 4), ("central", 1 + 8), ("complex", 1 + 4)]:
        calls.clear()
        est = numeric.gradient(f, x, method=method, full_output=True)
        assert est.evaluations == expected == len(calls)
        np.testing.assert_allclose(est.value, np.cos(x), rtol=1e-6)
    calls.clear()
    est = numeric.gradient(f, x, richardson=2, full_output=True)
    assert est.evaluations == 1 + 4 * 2 * 4 == len(calls)  # k + 2 steps per entry


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.float16])
def test_default_step_follows_dtype_and_magnitude(dtype):
    eps = float(np.finfo(dtype).eps)
    x = np.array([0.5, 1.0, -300.0], dtype=dtype)
    scale = np.array([1.0, 1.0, 300.0])
    for method, power in [("forward", 1 / 2), ("backward", 1 / 2), ("central", 1 / 3)]:
        h = numeric.default_step(x, method)
        assert h.dtype == dtype
        np.testing.assert_allclose(h, eps ** power * scale, rtol=2e-3)
    np.testing.assert_allclose(numeric.default_step(x, "complex"), (eps ** 2 * scale).astype(dtype), rtol=2e-3)
    # Richardson removes more of the truncation error, so the balance moves to larger steps.
    assert np.all(numeric.default_step(x, "central", richardson=1) > numeric.default_step(x, "central"))


def test_integer_points_are_differentiated_in_float64():
    est = numeric.derivative(lambda x: x ** 3, 2, full_output=True)
    assert est.value == pytest.approx(12.0, rel=1e-9)
    assert est.step.dtype == np.float64


@pytest.mark.parametrize("method", ["forward", "central"])
def test_richardson_improves_the_error(method):
    f = lambda x: cr.exp(x) * cr.sin(3 * x)  # noqa: E731
    x = np.array([0.3, 1.1, -0.7])
    exact = np.exp(x) * (np.sin(3 * x) + 3 * np.cos(3 * x))
    errors = []
    for k in range(3):
        est = numeric.gradient(lambda v: cr.sum(f(v)), x, method=method, richardson=k, full_output=True)
        errors.append(np.max(np.abs(est.value - exact)))
        if k:
            # the estimate is of the right size: not below the true error by much, not absurdly above
            assert np.all(est.error * 100 >= np.abs(est.value - exact))
            assert np.max(est.error) < 1e-5
        else:
            assert est.error is None
    assert errors[1] < errors[0] / 10
    assert errors[2] < errors[0] / 100


def test_float32_warns_and_says_how_to_get_float64():
    with pytest.warns(PrecisionWarning) as record:
        g = numeric.gradient(lambda x: cr.sum(x * x), np.float32([1.0, 2.0]))
    text = str(record[0].message)
    assert "float32" in text and "unreliable" in text and "np.float64" in text
    assert g.dtype == np.float32
    np.testing.assert_allclose(g, [2.0, 4.0], rtol=1e-3)
    with pytest.warns(PrecisionWarning, match="float16"):
        numeric.derivative(cr.sin, np.float16(0.5))


def test_float64_does_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        numeric.gradient(lambda x: cr.sum(x * x), np.array([1.0, 2.0]))


def test_jacobian_shape_and_values():
    a = np.array([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]])
    x = np.array([0.2, -0.4, 0.9])
    for method in numeric.METHODS:
        j = numeric.jacobian(lambda v: cr.tanh(a @ v), x, method=method)
        exact = (1 - np.tanh(a @ x) ** 2)[:, None] * a
        assert j.shape == (2, 3)
        np.testing.assert_allclose(j, exact, rtol=1e-6, atol=1e-8)
    jx, jy = numeric.jacobian(lambda u, v: u * v, np.array([1.0, 2.0]), np.array([3.0, 4.0]), argnums=(0, 1))
    np.testing.assert_allclose(jx, np.diag([3.0, 4.0]), rtol=1e-8)
    np.testing.assert_allclose(jy, np.diag([1.0, 2.0]), rtol=1e-8)


# ---------------------------------------------------------------- the complex step and analyticity

# where each function is real and smooth (default: -1.5 to 2)
DOMAINS = {"log": (0.3, 2.0), "sqrt": (0.3, 2.0), "log2": (0.3, 2.0), "log10": (0.3, 2.0), "log1p": (-0.5, 2.0),
           "arcsin": (-0.9, 0.9), "arccos": (-0.9, 0.9), "arctanh": (-0.9, 0.9), "arccosh": (1.2, 3.0)}


def _unary_case(name):
    return REGISTRY[name].op, DOMAINS.get(name, (-1.5, 2.0))


ANALYTIC_UNARY = sorted(n for n, p in REGISTRY.items()
                        if p.analytic and p.differentiable and p.elementwise and len(p.vjps) == 1)
ANALYTIC_BINARY = sorted(n for n, p in REGISTRY.items()
                         if p.analytic and p.differentiable and p.elementwise and len(p.vjps) == 2)


@pytest.mark.parametrize("name", ANALYTIC_UNARY)
def test_complex_step_is_exact_on_every_analytic_elementwise_primitive(name):
    op, (low, high) = _unary_case(name)
    x = np.random.default_rng(0).uniform(low, high, size=5) * (4 if name in ("sigmoid", "softplus") else 1)
    g = numeric.gradient(lambda v: cr.sum(op(v)), x, method="complex")
    np.testing.assert_allclose(g, reverse_grad(lambda v: cr.sum(op(v)), x)[0], rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("name", ANALYTIC_BINARY)
def test_complex_step_is_exact_on_analytic_binary_primitives(name):
    op = REGISTRY[name].op
    rng = np.random.default_rng(1)
    x, y = rng.uniform(0.5, 2.0, size=4), rng.uniform(0.5, 2.0, size=4)
    f = lambda u, v: cr.sum(op(u, v))  # noqa: E731
    g = numeric.gradient(f, x, y, argnums=(0, 1), method="complex")
    for got, want in zip(g, reverse_grad(f, x, y)):
        np.testing.assert_allclose(got, want, rtol=1e-13)


def test_complex_step_through_reductions_and_casts():
    x = np.array([0.3, -1.2, 2.0])
    for f in [lambda v: cr.logsumexp(v), lambda v: cr.sum(cr.softmax(v) * v), lambda v: cr.mean(v * v),
              lambda v: cr.sum(cr.astype(v, np.float64) ** 3)]:
        g = numeric.gradient(f, x, method="complex")
        np.testing.assert_allclose(g, reverse_grad(f, x)[0], rtol=1e-13, atol=1e-16)


@pytest.mark.parametrize("f, names", [
    (lambda x: cr.abs(x) * x, ["abs"]),
    (lambda x: cr.relu(x) + x, ["relu"]),
    (lambda x: cr.maximum(x, 2 * x), ["maximum"]),
    (lambda x: cr.where(x > 0, x, -x), ["greater", "where"]),
    (lambda x: cr.relu(cr.abs(x)), ["abs", "relu"]),
])
def test_complex_step_is_refused_on_non_analytic_primitives(f, names):
    with pytest.raises(NotAnalyticError) as info:
        numeric.derivative(f, 1.5, method="complex")
    assert list(info.value.primitives) == names
    assert all(n in str(info.value) for n in names) and "method='central'" in str(info.value)
    # The other methods are fine on the same functions away from the kink.
    assert np.isfinite(numeric.derivative(f, 1.5))


def test_complex_step_sees_numpy_functions_only_partly():
    with pytest.raises(NumericError, match="lost the imaginary part"):
        numeric.derivative(lambda x: np.real(np.asarray(x)) * 2, 1.0, method="complex")
    with pytest.warns(UserWarning, match="cannot watch"):
        d = numeric.derivative(lambda x: np.sin(np.asarray(x)), 0.5, method="complex")
    assert d == pytest.approx(np.cos(0.5), rel=1e-14)


# ---------------------------------------------------------------- errors

def test_errors_name_what_and_where():
    with pytest.raises(ValueError, match="unknown method 'midpoint'"):
        numeric.gradient(cr.sin, 1.0, method="midpoint")
    with pytest.raises(cr.ShapeError, match="one number"):
        numeric.gradient(lambda x: x * 2, np.array([1.0, 2.0]))
    with pytest.raises(cr.ShapeError, match="single number"):
        numeric.derivative(cr.sin, np.array([1.0, 2.0]))
    with pytest.raises(NumericError, match="not finite at the given point"), np.errstate(invalid="ignore"):
        numeric.derivative(cr.log, -1.0)
    with pytest.raises(NumericError, match=r"argument 0 entry \(1,\) is shifted"):
        with np.errstate(all="ignore"):
            numeric.gradient(lambda x: cr.sum(cr.log(x)), np.array([1.0, 1e-12]))
    with pytest.raises(cr.DTypeError, match="argument 0 has dtype bool"):
        numeric.derivative(cr.sin, True)
    with pytest.raises(cr.DTypeError, match="complex"):
        numeric.derivative(cr.sin, 1j)
    with pytest.raises(ValueError, match="richardson"):
        numeric.derivative(cr.sin, 1.0, richardson=-1)
    with pytest.raises(ValueError, match="complex step needs no Richardson"):
        numeric.derivative(cr.sin, 1.0, method="complex", richardson=1)
    with pytest.raises(ValueError, match="argnums"):
        numeric.gradient(lambda x, y: x * y, 1.0, 2.0, argnums=2)
    with pytest.raises(ValueError, match="step must be positive"):
        numeric.derivative(cr.sin, 1.0, step=0.0)


def test_one_sided_methods_work_at_the_edge_of_the_domain():
    # sqrt at 1e-7: a central step of 6e-6 would leave the domain; a small explicit step works.
    d = numeric.derivative(cr.sqrt, 1e-7, method="forward", step=1e-13)
    assert d == pytest.approx(0.5 / np.sqrt(1e-7), rel=1e-5)


def test_doctests():
    assert doctest.testmod(numeric).failed == 0


def test_complex_step_refuses_a_power_with_a_negative_base():
    # (-0.5)**x is not real around a real x: Im f(x + ih)/h was -6.2e14 at x = 2
    with pytest.raises(NotAnalyticError, match="power with a negative base"):
        numeric.gradient(lambda x, y: y ** x, 2.0, -0.5, argnums=(0, 1), method="complex")
    with pytest.raises(NotAnalyticError, match="negative base"):
        numeric.gradient(lambda x: cr.sum(cr.power(np.array([-0.5, 2.0]), x)), 2.0, method="complex")
    # a negative base with a constant exponent is analytic in the base: still exact
    assert numeric.derivative(lambda y: y ** 3, -0.5, method="complex") == pytest.approx(0.75, rel=1e-15)
    assert numeric.derivative(lambda x: 2.0 ** x, 2.0, method="complex") == pytest.approx(4 * np.log(2), rel=1e-14)


def test_complex_step_gives_zero_for_an_argument_f_does_not_use():
    gx, gy = numeric.gradient(lambda x, y: x * 2.0, 1.0, np.array([2.0, 3.0]), argnums=(0, 1), method="complex")
    assert gx == 2.0
    np.testing.assert_array_equal(gy, [0.0, 0.0])
    J = numeric.jacobian(lambda x, y: x * 2.0, np.ones(2), 5.0, argnums=1, method="complex")
    np.testing.assert_array_equal(J, [0.0, 0.0])
    # an argument that is read but turned real is still refused
    with pytest.raises(NumericError, match="lost the imaginary part"):
        numeric.gradient(lambda x, y: x + float(np.real(np.asarray(y))), 1.0, 2.0, argnums=(0, 1), method="complex")


@pytest.mark.parametrize("read", [lambda x: x.data, lambda x: np.asarray(x.tolist())])
def test_complex_step_sees_every_way_of_reading_the_values(read):
    """Reading the probe's values outside chainrule's operations (then dropping the imaginary part)
    is refused, never taken for an argument f does not use (a derivative of 0)."""
    with pytest.raises(NumericError, match="lost the imaginary part"):
        numeric.gradient(lambda x: np.real(read(x)).sum() ** 2, np.array([1.0, 2.0]), method="complex")
