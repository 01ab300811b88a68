"""Edge values, dtypes and modes: the conventions the README states under "Conventions at edge
points", each pinned here in every mode (the graph of Tensors, the tape of grad at numbers,
forward mode, symbolic where it applies), and compared with PyTorch where it is installed."""
import math
import warnings

import numpy as np
import pytest

import chainrule as cr
from chainrule.modes import symbolic

nan, inf = math.nan, math.inf


# ---------------------------------------------------------------- the partials of f in every mode
def _reverse(f, args):
    """Each partial by Tensor.backward (the graph of Tensors)."""
    leaves = [cr.tensor(a, requires_grad=True) for a in args]
    f(*leaves).backward()
    return tuple(float(t.grad) for t in leaves)


def _tape(f, args):
    """Each partial by grad at float numbers (the tape)."""
    g = cr.grad(f, argnums=tuple(range(len(args))))(*[float(a) for a in args])
    return tuple(float(v) for v in g)


def _graph(f, args):
    """Each partial by grad at 1-element arrays (the functional API on the graph of Tensors)."""
    g = cr.grad(lambda *xs: cr.sum(f(*xs)), argnums=tuple(range(len(args))))(*[np.array([a]) for a in args])
    return tuple(float(v[0]) for v in g)


def _forward(f, args):
    """Each partial by jvp along a one-hot tangent."""
    out = []
    for i in range(len(args)):
        tangents = tuple(1.0 if j == i else 0.0 for j in range(len(args)))
        out.append(float(cr.jvp(f, tuple(float(a) for a in args), tangents)[1]))
    return tuple(out)


MODES = {"reverse": _reverse, "tape": _tape, "graph": _graph, "forward": _forward}


def partials(f, args, mode):
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        return MODES[mode](f, args)


# id -> (chainrule function, torch function name or lambda, point, chainrule's partials, PyTorch's
# partials where they deliberately differ (README: "Conventions at edge points"), else None)
def _torch(name):
    return lambda *xs: getattr(__import__("torch"), name)(*xs)


CONVENTIONS = {
    "abs at 0": (cr.abs, _torch("abs"), (0.0,), (0.0,), None),
    "abs at -0.0": (cr.abs, _torch("abs"), (-0.0,), (0.0,), None),
    "relu at 0": (cr.relu, _torch("relu"), (0.0,), (0.0,), None),
    "sign at 0": (cr.sign, _torch("sign"), (0.0,), (0.0,), None),
    "sign at -2": (cr.sign, _torch("sign"), (-2.0,), (0.0,), None),
    "maximum tie": (cr.maximum, _torch("maximum"), (1.0, 1.0), (0.5, 0.5), None),
    "minimum tie": (cr.minimum, _torch("minimum"), (1.0, 1.0), (0.5, 0.5), None),
    "maximum NaN left": (cr.maximum, _torch("maximum"), (nan, 1.0), (1.0, 1.0), None),
    "maximum NaN right": (cr.maximum, _torch("maximum"), (1.0, nan), (1.0, 1.0), None),
    "minimum NaN": (cr.minimum, _torch("minimum"), (nan, -1.0), (1.0, 1.0), None),
    "sqrt at 0": (cr.sqrt, _torch("sqrt"), (0.0,), (inf,), None),
    "sqrt at -0.0": (cr.sqrt, _torch("sqrt"), (-0.0,), (-inf,), None),
    "log at 0": (cr.log, _torch("log"), (0.0,), (inf,), None),
    "tanh at inf": (cr.tanh, _torch("tanh"), (inf,), (0.0,), None),
    "sigmoid at -inf": (cr.sigmoid, _torch("sigmoid"), (-inf,), (0.0,), None),
    "x**0 at 0": (lambda x: x ** 0.0, lambda x: x ** 0.0, (0.0,), (0.0,), None),
    "x**0.5 at 0": (lambda x: x ** 0.5, lambda x: x ** 0.5, (0.0,), (inf,), None),
    "x**1 at 0": (lambda x: x ** 1.0, lambda x: x ** 1.0, (0.0,), (1.0,), None),
    "x**y at 0, 0": (cr.power, _torch("pow"), (0.0, 0.0), (0.0, 0.0), None),
    "x**y at 0, 2": (cr.power, _torch("pow"), (0.0, 2.0), (0.0, 0.0), None),
    "x**y at -0.5, 2": (cr.power, _torch("pow"), (-0.5, 2.0), (-1.0, nan), None),
    "2**x at 0": (lambda x: 2.0 ** x, lambda x: 2.0 ** x, (0.0,), (math.log(2),), None),
    # a zero cotangent times an infinite local derivative: NaN in reverse mode, as in PyTorch
    "0 * sqrt(x) at 0": (lambda x: 0.0 * cr.sqrt(x), lambda x: 0.0 * x.sqrt(), (0.0,), (nan,), None),
    # deliberate differences, stated in the README
    "relu at NaN": (cr.relu, _torch("relu"), (nan,), (0.0,), (1.0,)),
    "abs at NaN": (cr.abs, _torch("abs"), (nan,), (nan,), (0.0,)),
    "x**y at 0, -1": (cr.power, _torch("pow"), (0.0, -1.0), (-inf, nan), (-inf, -inf)),
}


@pytest.mark.parametrize("mode", sorted(MODES))
@pytest.mark.parametrize("case", sorted(CONVENTIONS))
def test_convention_in_every_mode(case, mode):
    f, _, point, want, _ = CONVENTIONS[case]
    np.testing.assert_array_equal(partials(f, point, mode), want, err_msg=f"{case} ({mode})")


@pytest.mark.parametrize("case", sorted(CONVENTIONS))
def test_conventions_against_pytorch(case):
    torch = pytest.importorskip("torch")
    _, tf, point, want, theirs = CONVENTIONS[case]
    xs = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in point]
    grads = torch.autograd.grad(tf(*xs), xs, allow_unused=True)
    got = tuple(0.0 if g is None else g.item() for g in grads)
    np.testing.assert_array_equal(got, want if theirs is None else theirs, err_msg=case)


def test_max_reduction_ties_and_nan_follow_pytorch():
    for x, want in [([3.0, 3.0, 1.0], [0.5, 0.5, 0.0]), ([1.0, nan, 0.0], [nan, nan, nan])]:
        t = cr.tensor(x, requires_grad=True)
        with np.errstate(invalid="ignore"):
            cr.max(t).backward()
        np.testing.assert_array_equal(t.grad.numpy(), want)
        torch = _maybe_torch()
        if torch is not None:
            tt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
            torch.amax(tt).backward()
            np.testing.assert_array_equal(tt.grad.numpy(), want)


def _maybe_torch():
    try:
        import torch
    except ImportError:
        return None
    return torch


# ---------------------------------------------------------------- power at 0, to second order
def test_power_with_exponent_zero_has_derivative_zero_to_second_order():
    # d/dx x**0 = 0 and d2/dx2 x**0 = 0 at x = 0 (0 * 0**-1 gave NaN), in every mode
    f = lambda x: x ** 0.0  # noqa: E731
    assert float(cr.grad(f)(0.0)) == 0.0
    assert float(cr.grad(cr.grad(f))(0.0)) == 0.0
    assert float(cr.jvp(f, (0.0,), (1.0,))[1]) == 0.0
    x = np.zeros(3)
    np.testing.assert_array_equal(cr.hessian(lambda x: cr.sum(x ** 0))(x), np.zeros((3, 3)))
    y = np.array([0.0, 1.0, 2.0])  # an array exponent: x**0, x**1, x**2 at x = 0
    np.testing.assert_array_equal(cr.grad(lambda x: cr.sum(x ** y))(x), [0.0, 1.0, 0.0])
    np.testing.assert_array_equal(cr.hessian(lambda x: cr.sum(x ** y))(x), np.diag([0.0, 0.0, 2.0]))
    t = cr.tensor(0.0, requires_grad=True)
    (t ** 0.0).backward(create_graph=True)
    assert float(t.grad) == 0.0


def test_power_at_zero_in_symbolic_mode():
    pytest.importorskip("sympy")
    d = symbolic.derivative(lambda x, y: x ** y)
    with np.errstate(divide="ignore"):  # the unmasked branch of the compiled Piecewise
        at0 = np.ravel(d.function(0.0, 0.0)).astype(float)
    np.testing.assert_array_equal(at0, [0.0, 0.0])
    np.testing.assert_array_equal(np.ravel(d.function(0.0, 2.0)).astype(float), [0.0, 0.0])
    np.testing.assert_allclose(np.ravel(d.function(1.5, 2.0)).astype(float), [3.0, 2.25 * math.log(1.5)])


# ---------------------------------------------------------------- forward mode and zero tangents
def test_zero_tangent_contributes_nothing_where_the_local_derivative_is_infinite():
    # d/dy (y + sqrt x) = 1 at x = 0; the tangent of x is zero, so sqrt's infinite slope must not enter
    out, t = cr.jvp(lambda x, y: y + cr.sqrt(x), (0.0, 2.0), (0.0, 1.0))
    assert float(out) == 2.0 and float(t) == 1.0
    with np.errstate(divide="ignore"):
        _, t = cr.jvp(lambda x, y: y * cr.log(x), (np.zeros(2), np.ones(2)), (np.zeros(2), np.ones(2)))
    np.testing.assert_array_equal(t, [-inf, -inf])  # log 0, the true partial along y
    # batched: the x directions are all zero
    _, t = cr.jvp(lambda x, y: y + cr.sqrt(x), (np.zeros(2), np.ones(2)), (np.zeros((2, 2)), np.eye(2)),
                  batched=True)
    np.testing.assert_array_equal(t, np.eye(2))
    # inside an array an entry's zero tangent is not a symbolic zero: NaN, as PyTorch and JAX (README)
    with np.errstate(divide="ignore", invalid="ignore"):
        _, t = cr.jvp(cr.sqrt, (np.array([0.0, 1.0]),), (np.array([0.0, 1.0]),))
    np.testing.assert_array_equal(t, [nan, 0.5])
    # and a forward-mode Jacobian with respect to y alone
    J = cr.jacobian(lambda x, y: y + cr.sqrt(x), argnums=1, mode="forward")(np.zeros(2), np.ones(2))
    np.testing.assert_array_equal(J, np.eye(2))


def test_jvp_results_keep_their_form_with_zero_tangents():
    out, t = cr.jvp(lambda x: x * 1.0, (1.0,), (0.0,))
    assert type(out) is np.float64 and type(t) is np.float64 and t == 0.0
    out, t = cr.jvp(lambda x: x * 2.0, (np.ones(2, np.float32),), (np.zeros(2, np.float32),))
    assert t.dtype == np.float32 and t.shape == (2,) and not t.any()


# ---------------------------------------------------------------- dtypes
F32 = np.array([0.5, 2.0], dtype=np.float32)


@pytest.mark.parametrize("f", [
    lambda x: 2.0 ** x,
    lambda x: x * np.array([1.0, 3.0]),          # a float64 array joins
    lambda x: x * np.log(2.0),                    # a numpy float64 scalar (strongly typed, NEP 50)
    lambda x: x ** np.float64(2.0),
    lambda x: cr.power(np.array([2.0, 3.0]), x),
], ids=["2**x", "x*f64 array", "x*np.log(2)", "x**np.float64", "f64 array**x"])
def test_float32_leaves_get_float32_gradients(f):
    x = cr.tensor(F32, requires_grad=True)
    cr.sum(f(x)).backward()
    assert x.grad.dtype == np.float32
    want = cr.grad(lambda v: cr.sum(f(v)))(F32.astype(np.float64))
    np.testing.assert_allclose(x.grad.numpy(), want, rtol=1e-6)
    assert cr.grad(lambda v: cr.sum(f(v)))(F32).dtype == np.float32  # the functional API, as before
    x.grad = None
    cr.sum(f(x)).backward(create_graph=True)  # a recorded backward casts too
    assert x.grad.dtype == np.float32


def test_python_numbers_keep_float32_inside_the_graph():
    x = cr.tensor(F32, requires_grad=True)
    y = 2.0 ** x
    y.retain_grad()
    (y * x).sum().backward()
    assert y.grad.dtype == np.float32 and x.grad.dtype == np.float32
    _, t = cr.jvp(lambda v: 2.0 ** v, (F32,), (np.ones(2, np.float32),))
    assert t.dtype == np.float32


# ---------------------------------------------------------------- piecewise-constant primitives
def test_sign_has_a_zero_derivative_not_an_error():
    x = cr.tensor([1.5, -2.0, 0.0], requires_grad=True)
    out = cr.sum(cr.sign(x))
    assert out.requires_grad
    out.backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 0.0, 0.0])
    np.testing.assert_array_equal(cr.grad(lambda v: cr.sum(cr.sign(v) * v))(np.array([1.5, -2.0])), [1.0, -1.0])
    assert float(cr.grad(cr.sign)(3.0)) == 0.0
    assert float(cr.jvp(cr.sign, (3.0,), (1.0,))[1]) == 0.0
    assert float(cr.grad(cr.grad(lambda v: cr.sign(v) * v * v))(3.0)) == 2.0


# ---------------------------------------------------------------- complex inputs are refused
@pytest.mark.parametrize("call", [
    lambda: cr.tensor([1 + 2j], requires_grad=True),
    lambda: cr.tensor([1 + 2j]).requires_grad_(),
    lambda: cr.grad(lambda x: x * x)(1 + 2j),
    lambda: cr.grad(lambda x: cr.sum(x * x))(np.ones(2, np.complex64)),
    lambda: cr.value_and_grad(lambda p: p["w"] * 2)({"w": np.complex128(1)}),
    lambda: cr.vjp(lambda x: x, np.ones(2, complex)),
    lambda: cr.vjp(lambda x: x, np.ones(2))[1](np.ones(2, complex)),
    lambda: cr.jvp(lambda x: x, (1 + 1j,), (1.0,)),
    lambda: cr.jvp(lambda x: x, (1.0,), (1j,)),
    lambda: cr.Dual(np.ones(2, complex), np.ones(2)),
    lambda: cr.numeric.gradient(lambda x: x, 1j),
], ids=["tensor", "requires_grad_", "grad number", "grad array", "pytree", "vjp", "vjp cotangent", "jvp",
        "jvp tangent", "Dual", "numeric"])
def test_complex_inputs_are_refused_with_a_clear_error(call):
    with pytest.raises(cr.DTypeError, match="complex"):
        call()


def test_a_real_input_through_complex_arithmetic_gets_a_real_gradient():
    # HIPS autograd's convention where complex values appear inside: the real part
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cr.sum(x * np.array([1.0 + 0j, 1.0 + 0j])).backward()
    assert x.grad.dtype == np.float64
    np.testing.assert_array_equal(x.grad.numpy(), [1.0, 1.0])
