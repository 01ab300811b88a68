"""The functional API: grad, value_and_grad, vjp, jacobian (three ways), hessian, hvp, dtypes,
eager tensors, check_grads' forward mode and second order, and the errors for bad input."""
import numpy as np
import pytest

import chainrule as cr
from chainrule.core import primitives as P
from chainrule.core.registry import Primitive
from chainrule.testing import check_grads

rng = np.random.default_rng(5)


def quiz(x, z):
    xz = x * z
    return cr.exp(xz) + xz / cr.log(x) + cr.sin(cr.log(x)) / xz


def test_grad_of_the_lecture_quiz_with_argnums():
    gx, gz = cr.grad(quiz, argnums=(0, 1))(2.0, 3.0)
    np.testing.assert_allclose([gx, gz], [1208.3812151266, 809.7074792186], rtol=1e-9)
    assert isinstance(gx, np.floating)  # Python numbers in, numpy scalars out
    assert cr.grad(quiz, argnums=1)(2.0, 3.0) == pytest.approx(809.7074792186)
    assert cr.grad(quiz, argnums=-1)(2.0, 3.0) == pytest.approx(809.7074792186)


def test_value_and_grad_and_has_aux():
    v, g = cr.value_and_grad(lambda x: cr.sum(x ** 2))(np.array([1.0, 2.0]))
    assert v == pytest.approx(5.0)
    np.testing.assert_allclose(g, [2.0, 4.0])

    def loss(w, x):
        pred = x @ w
        return cr.mean(pred ** 2), {"pred": pred}

    w, x = np.array([1.0, -1.0]), np.array([[1.0, 2.0], [3.0, 5.0]])
    g, aux = cr.grad(loss, has_aux=True)(w, x)
    np.testing.assert_allclose(aux["pred"], x @ w)
    assert type(aux["pred"]) is np.ndarray  # aux comes back plain, not traced
    np.testing.assert_allclose(g, x.T @ (2 * (x @ w)) / 2)
    (value, aux2), g2 = cr.value_and_grad(loss, has_aux=True)(w, x)
    assert value == pytest.approx(np.mean((x @ w) ** 2))
    np.testing.assert_allclose(g2, g)


def test_grad_over_a_dict_of_parameters():
    def net(params, x):
        h = cr.tanh(x @ params["W1"] + params["b1"])
        return cr.sum((h @ params["W2"]) ** 2)

    params = {"W1": rng.standard_normal((3, 4)), "b1": rng.standard_normal(4), "W2": rng.standard_normal((4, 2))}
    x = rng.standard_normal((5, 3))
    g = cr.grad(net)(params, x)
    assert set(g) == set(params) and all(g[k].shape == params[k].shape for k in params)
    # against central differences, entry by entry of one parameter
    eps = 1e-6
    for idx in [(0, 0), (2, 3)]:
        p1 = {k: v.copy() for k, v in params.items()}
        p2 = {k: v.copy() for k, v in params.items()}
        p1["W1"][idx] += eps
        p2["W1"][idx] -= eps
        assert g["W1"][idx] == pytest.approx((net(p1, x) - net(p2, x)) / (2 * eps), rel=1e-6)


def test_inputs_that_do_not_affect_the_output_get_zeros():
    gx, gy = cr.grad(lambda x, y: cr.sum(x * 2), argnums=(0, 1))(np.ones(2), np.ones((2, 3)))
    np.testing.assert_array_equal(gy, np.zeros((2, 3)))
    g = cr.grad(lambda x: 3.0)(1.0)
    assert g == 0.0 and isinstance(g, np.floating)
    _, vjp_fn = cr.vjp(lambda x, y: x * 2, np.ones(2), np.ones(3))
    np.testing.assert_array_equal(vjp_fn(np.ones(2))[1], np.zeros(3))


def test_vjp_with_several_outputs():
    x = np.array([1.0, 2.0, 3.0])
    out, vjp_fn = cr.vjp(lambda x: (cr.sin(x), {"s": cr.sum(x * x)}), x)
    np.testing.assert_allclose(out[0], np.sin(x))
    (g,) = vjp_fn((np.array([1.0, 0.0, 2.0]), {"s": np.array(3.0)}))
    np.testing.assert_allclose(g, np.cos(x) * [1, 0, 2] + 3 * 2 * x)
    (g2,) = vjp_fn((np.zeros(3), {"s": np.array(1.0)}))  # called again: the graph is kept
    np.testing.assert_allclose(g2, 2 * x)


def test_dtype_float32_in_float32_out():
    x = np.array([0.5, -1.0, 2.0], dtype=np.float32)
    w = rng.standard_normal((3, 2)).astype(np.float32)
    g = cr.grad(lambda x: cr.sum(cr.log_softmax(cr.tanh(x @ w) * 2.0)))(x)
    assert g.dtype == np.float32
    J = cr.jacobian(lambda x: cr.sigmoid(x @ w), mode="forward")(x)
    assert J.dtype == np.float32 and J.shape == (2, 3)
    J = cr.jacobian(lambda x: cr.sigmoid(x @ w), mode="reverse")(x)
    assert J.dtype == np.float32
    assert cr.hessian(lambda x: cr.sum(x ** 3))(x).dtype == np.float32


# ---------------------------------------------------------------- Jacobians
def _numeric_jacobian(f, x, eps=1e-6):
    cols = []
    for j in range(x.size):
        e = np.zeros_like(x)
        e.flat[j] = eps
        cols.append(((np.asarray(f(x + e)) - np.asarray(f(x - e))) / (2 * eps)).ravel())
    return np.stack(cols, axis=-1).reshape(np.shape(f(x)) + x.shape)


@pytest.mark.parametrize("f,x", [
    (lambda x: cr.stack([x[0] * x[1], cr.sin(x[2]), cr.exp(x[0]), x[1] / x[2], cr.sum(x ** 2)]),
     rng.standard_normal(3)),
    (lambda x: cr.softmax(x @ np.arange(12.0).reshape(4, 3) / 10, axis=-1), rng.standard_normal((2, 4))),
    (lambda x: cr.sum(cr.tanh(x), axis=0), rng.standard_normal((5, 2))),
])
def test_jacobian_forward_equals_reverse_equals_numeric(f, x):
    Jf = cr.jacobian(f, mode="forward")(x)
    Jr = cr.jacobian(f, mode="reverse")(x)
    Ja = cr.jacobian(f)(x)
    Jn = _numeric_jacobian(f, x)
    assert Jf.shape == Jr.shape == np.shape(f(x)) + x.shape
    np.testing.assert_allclose(Jf, Jr, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(Ja, Jr, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(Jf, Jn, rtol=1e-6, atol=1e-8)


def test_jacobian_auto_mode_explains_its_choice():
    tall = lambda x: cr.concatenate([x, x ** 2, cr.sin(x)])  # noqa: E731
    J, why = cr.jacobian(tall, explain=True)(np.ones(2))
    assert J.shape == (6, 2) and why.startswith("forward mode: 2 inputs < 6 outputs")
    J, why = cr.jacobian(lambda x: x[:2] * 3, explain=True)(np.ones(5))
    assert J.shape == (2, 5) and why.startswith("reverse mode: 2 outputs <= 5 inputs")
    _, why = cr.jacobian(tall, mode="reverse", explain=True)(np.ones(2))
    assert why.startswith("reverse mode (asked)")


def test_jacobian_with_several_arguments_and_pytree_output():
    def f(x, y):
        return {"p": x * y, "q": cr.sum(x) * y[0]}

    x, y = rng.standard_normal(2), rng.standard_normal(2)
    for mode in ("forward", "reverse"):
        J = cr.jacobian(f, argnums=(0, 1), mode=mode)(x, y)
        np.testing.assert_allclose(J["p"][0], np.diag(y))
        np.testing.assert_allclose(J["p"][1], np.diag(x))
        np.testing.assert_allclose(J["q"][0], [y[0], y[0]])
        np.testing.assert_allclose(J["q"][1], [x.sum(), 0.0])


# ---------------------------------------------------------------- Hessians
def _logistic_problem(n=40, d=5, seed=0):
    r = np.random.default_rng(seed)
    X = r.standard_normal((n, d))
    y = (r.uniform(size=n) < 0.5).astype(float)
    w = r.standard_normal(d) * 0.5
    return X, y, w


def nll(w, X, y):
    z = X @ w
    return cr.sum(cr.softplus(z) - y * z)


def test_hessian_of_logistic_regression_matches_the_closed_form():
    X, y, w = _logistic_problem()
    H = cr.hessian(nll)(w, X, y)
    p = 1 / (1 + np.exp(-X @ w))
    expected = X.T @ (X * (p * (1 - p))[:, None])
    np.testing.assert_allclose(H, H.T, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(H, expected, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(cr.grad(nll)(w, X, y), X.T @ (p - y), rtol=1e-10)


def test_hvp_equals_hessian_times_vector():
    X, y, w = _logistic_problem(seed=1)
    v = np.random.default_rng(2).standard_normal(w.shape)
    H = cr.hessian(nll)(w, X, y)
    Hv = cr.hvp(lambda w: nll(w, X, y), (w,), (v,))
    np.testing.assert_allclose(Hv, H @ v, rtol=1e-10, atol=1e-12)


def test_hessian_of_several_arguments_is_a_nested_tuple():
    f = lambda x, y: cr.sum(x * x * y) + cr.sum(cr.sin(y))  # noqa: E731
    x, y = np.array([1.0, 2.0]), np.array([0.5, -1.0])
    (Hxx, Hxy), (Hyx, Hyy) = cr.hessian(f, argnums=(0, 1))(x, y)
    np.testing.assert_allclose(Hxx, np.diag(2 * y))
    np.testing.assert_allclose(Hxy, np.diag(2 * x))
    np.testing.assert_allclose(Hyx, Hxy.T)
    np.testing.assert_allclose(Hyy, np.diag(-np.sin(y)))


# ---------------------------------------------------------------- eager tensors
def test_grad_of_eager_tensors_can_be_backpropagated_further():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    g = cr.grad(lambda x: cr.sum(x ** 3))(x)
    assert isinstance(g, cr.Tensor) and g.requires_grad
    np.testing.assert_allclose(g.numpy(), [3.0, 12.0])
    cr.sum(g).backward()  # d/dx sum(3 x^2) = 6 x
    np.testing.assert_allclose(x.grad.numpy(), [6.0, 12.0])


def test_grad_works_inside_no_grad():
    with cr.no_grad():
        assert cr.grad(lambda x: x * x)(3.0) == pytest.approx(6.0)


# ---------------------------------------------------------------- check_grads with forward mode
def _primitive_with(jvp_rule=None, vjp_rule=None):
    square_vjp = vjp_rule or (lambda g, ans, x: P.multiply(g, P.multiply(2.0, x)))
    square_jvp = jvp_rule or (lambda t, ans, x: P.multiply(t, P.multiply(2.0, x)))
    return Primitive("square_test", np.square, (square_vjp,), (square_jvp,), elementwise=True)


def test_check_grads_runs_forward_mode_and_catches_a_wrong_forward_rule():
    x = np.array([0.5, -1.2, 2.0])
    assert "forward" in cr.testing.MODES
    good = _primitive_with()
    check_grads(lambda x: good.op(x) * 3.0, x, order=2)
    bad = _primitive_with(jvp_rule=lambda t, ans, x: P.multiply(t, x))  # forgets the factor 2
    with pytest.raises(AssertionError, match="forward mode disagrees"):
        check_grads(lambda x: bad.op(x), x, modes=["forward"])
    check_grads(lambda x: bad.op(x), x, modes=["reverse"])  # the reverse rule alone is right


def test_check_grads_second_order_catches_a_rule_that_is_right_only_at_first_order():
    def strip(v):  # the value without any tracing: right value, lost derivative
        while isinstance(v, cr.core.registry.Box):
            v = v.primal if hasattr(v, "primal") else v.data
        return v

    opaque = _primitive_with(vjp_rule=lambda g, ans, x: P.multiply(g, 2.0 * strip(x)))
    x = np.array([0.5, -1.2, 2.0])
    check_grads(lambda x: opaque.op(x), x, order=1, modes=["reverse"])
    with pytest.raises(AssertionError, match="forward mode disagrees"):
        check_grads(lambda x: opaque.op(x), x, order=2, modes=["reverse"])


# ---------------------------------------------------------------- bad input
def test_grad_rejects_non_differentiable_arguments_naming_them():
    with pytest.raises(cr.DTypeError, match=r"grad: argument 0 \(x\) has dtype int64; derivatives need floating"):
        cr.grad(lambda x: cr.sum(x))(np.array([1, 2]))
    with pytest.raises(cr.DTypeError, match=r"grad: argument 0 \(x\) is the integer 2 .* 2.0 instead of 2"):
        cr.grad(lambda x: x * x)(2)
    with pytest.raises(cr.DTypeError, match=r"grad: argument 1 \(b\) is None"):
        cr.grad(lambda w, b: w * 2, argnums=1)(1.0, None)
    with pytest.raises(cr.DTypeError, match=r"grad: argument 0 \(s\) has type str"):
        cr.grad(lambda s: s)("abc")
    with pytest.raises(cr.DTypeError, match=r"grad: argument 0 \(params\) at \['b'\] has dtype int64"):
        cr.grad(lambda params: cr.sum(params["W"]))({"W": np.ones(2), "b": np.array([1, 2])})


def test_argnums_out_of_range_or_malformed():
    with pytest.raises(ValueError, match=r"grad: argnums=2 is out of range for a call with 2 positional arguments"):
        cr.grad(quiz, argnums=2)(2.0, 3.0)
    with pytest.raises(ValueError, match="out of range"):
        cr.jacobian(lambda x: x, argnums=1)(np.ones(2))
    with pytest.raises(TypeError, match="argnums must be an int or a non-empty tuple of ints"):
        cr.grad(quiz, argnums="x")
    with pytest.raises(ValueError, match="names an argument twice"):
        cr.grad(quiz, argnums=(0, -2))(2.0, 3.0)


def test_grad_needs_a_scalar_output():
    with pytest.raises(cr.ShapeError,
                       match=r"grad: the function must return a scalar, but it returned shape \(3,\).*cr.sum"):
        cr.grad(lambda x: x * 2)(np.ones(3))
    with pytest.raises(TypeError, match=r"grad: the function must return a scalar, got tuple of 2; with has_aux=True"):
        cr.grad(lambda x: (cr.sum(x), 1))(np.ones(3))
    with pytest.raises(TypeError, match=r"must return a scalar, got str"):
        cr.grad(lambda x: "loss")(1.0)


def test_has_aux_needs_a_pair():
    with pytest.raises(TypeError,
                       match=r"grad: with has_aux=True the function must return a pair \(output, aux\), got a single value"):
        cr.grad(lambda x: x * 2, has_aux=True)(np.array(1.0))
    with pytest.raises(TypeError, match=r"got tuple of 3"):
        cr.value_and_grad(lambda x: (x, 1, 2), has_aux=True)(1.0)


def test_vjp_cotangent_must_match_the_output():
    _, vjp_fn = cr.vjp(lambda x: x * 2, np.ones(3))
    with pytest.raises(cr.ShapeError, match=r"vjp: the cotangent has shape \(2,\) but the output has shape \(3,\)"):
        vjp_fn(np.ones(2))
    _, vjp_fn = cr.vjp(lambda x: (x, x), np.ones(3))
    with pytest.raises(cr.ShapeError, match=r"vjp: the cotangent is a leaf .* but the output is a tuple of 2"):
        vjp_fn(np.ones(3))
    with pytest.raises(cr.DTypeError,
                       match=r"vjp: the cotangent at \[1\] is None; pass an array shaped like the output"):
        vjp_fn((np.ones(3), None))


def test_jacobian_mode_must_be_known():
    with pytest.raises(ValueError, match=r"jacobian: mode must be 'auto', 'forward' or 'reverse', got 'sideways'"):
        cr.jacobian(lambda x: x, mode="sideways")


def test_a_one_leaf_pytree_keeps_its_structure():
    g = cr.grad(lambda p: cr.sum(p["w"] ** 2))({"w": np.array([1.0, 2.0])})
    assert isinstance(g, dict) and list(g) == ["w"]
    np.testing.assert_allclose(g["w"], [2.0, 4.0])
    (gl,) = cr.vjp(lambda p: p[0] * 3, [np.array(1.0)])[1](np.array(1.0))
    assert isinstance(gl, list) and gl == [3.0]


def test_the_examples_in_the_docstrings_run():
    import doctest

    from chainrule.modes import api, forward, pytree

    for module in (api, forward, pytree):
        result = doctest.testmod(module)
        assert result.attempted > 0 and result.failed == 0, module.__name__
