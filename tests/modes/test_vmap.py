"""cr.vmap: mapped functions equal the Python loop (to rounding), in every mode, f traced once on
the whole batch, with clear errors."""
import numpy as np
import pytest

import chainrule as cr
from chainrule.testing import check_grads

rng = np.random.default_rng(3)
X = rng.standard_normal((6, 4))
Y = rng.standard_normal(6)
PARAMS = {"W": rng.standard_normal((4, 3)), "b": rng.standard_normal(3), "v": rng.standard_normal(3)}


def loss(params, x, y):
    h = cr.tanh(x @ params["W"] + params["b"])
    return (cr.sum(h * params["v"]) - y) ** 2


def test_per_example_gradients_match_a_python_loop():
    got = cr.vmap(cr.grad(loss), in_axes=(None, 0, 0))(PARAMS, X, Y)
    loop = [cr.grad(loss)(PARAMS, x, y) for x, y in zip(X, Y)]
    assert sorted(got) == ["W", "b", "v"]
    for k in got:
        assert got[k].shape == (6,) + PARAMS[k].shape
        np.testing.assert_allclose(got[k], np.stack([g[k] for g in loop]), rtol=1e-13, atol=1e-15)
    # their mean is the gradient of the mean loss
    mean_grad = cr.grad(lambda p: cr.mean(cr.vmap(loss, in_axes=(None, 0, 0))(p, X, Y)))(PARAMS)
    for k in got:
        np.testing.assert_allclose(got[k].mean(axis=0), mean_grad[k], rtol=1e-12)


def test_f_runs_once_on_the_whole_batch():
    calls = []

    def f(params, x, y):
        calls.append(x.shape)  # one example's shape
        return loss(params, x, y)

    cr.vmap(cr.grad(f), in_axes=(None, 0, 0))(PARAMS, X, Y)
    assert calls == [(4,)]
    out = cr.vmap(lambda x: cr.softmax(cr.reshape(x, (2, 2)).T @ np.ones((2, 3)), axis=0)[1:, ::2])(X)
    np.testing.assert_allclose(out, np.stack([cr.softmax(x.reshape(2, 2).T @ np.ones((2, 3)), axis=0)[1:, ::2]
                                              for x in X]), rtol=1e-14)


def test_plain_values_of_one_example_fall_back_to_one_call_per_example():
    # a label used as an index and a Python `if` need one example's plain value
    f = lambda x, y: cr.log_softmax(x)[y] if float(cr.sum(x)) > 0 else -cr.sum(x)  # noqa: E731
    labels = np.array([0, 3, 1, 2, 2, 0])
    np.testing.assert_allclose(cr.vmap(f)(X, labels), [f(x, y) for x, y in zip(X, labels)], rtol=1e-15)
    nll = lambda x, y: -cr.log_softmax(x)[y]  # noqa: E731
    g = cr.vmap(cr.grad(nll))(X, labels)
    np.testing.assert_allclose(g, [cr.grad(nll)(x, y) for x, y in zip(X, labels)], rtol=1e-15)
    # a conversion that drops a derivative stays an error (grad inside the mapped function)
    with pytest.raises(cr.ConcretizationError):
        cr.vmap(cr.grad(lambda x: x if float(cr.sum(x)) > 0 else -x))(X)


def test_axes_pytrees_and_several_results():
    f = lambda a, b: (a * b, cr.sum(a))  # noqa: E731
    A, B = rng.standard_normal((3, 5)), rng.standard_normal(3)
    prod, total = cr.vmap(f, in_axes=(1, None), out_axes=(1, 0))(A, B)
    np.testing.assert_array_equal(prod, np.stack([A[:, i] * B for i in range(5)], axis=1))
    np.testing.assert_array_equal(total, A.sum(axis=0))
    d = cr.vmap(lambda t: t["x"] + t["y"][0], in_axes=0)({"x": A, "y": [A * 2]})
    np.testing.assert_array_equal(d, 3 * A)
    np.testing.assert_array_equal(cr.vmap(cr.sum, in_axes=-1)(A), A.sum(axis=0))
    with pytest.raises(cr.ShapeError, match="rank 0"):  # a list is a pytree: its numbers have no axis
        cr.vmap(lambda x: x * 2)([1.0, 2.0])


def test_every_mode_differentiates_through_vmap():
    f = cr.vmap(lambda w, x: cr.sin(cr.sum(w * x)) * cr.sum(w), in_axes=(None, 0))
    w = rng.standard_normal(4)
    check_grads(lambda w: f(w, X), w, order=2)  # reverse, forward, forward over reverse
    h = cr.hessian(lambda w: cr.sum(f(w, X)))(w)
    loop = sum(cr.hessian(lambda w: cr.sin(cr.sum(w * x)) * cr.sum(w))(w) for x in X)
    np.testing.assert_allclose(h, loop, rtol=1e-12, atol=1e-12)
    jac = cr.vmap(cr.jacobian(lambda x: cr.tanh(x) * x))(X)  # per-example Jacobians
    np.testing.assert_allclose(jac[2], cr.jacobian(lambda x: cr.tanh(x) * x)(X[2]), rtol=1e-14)
    _, t = cr.jvp(lambda w: f(w, X), (w,), (np.ones(4),))
    assert t.shape == (6,)
    wt = cr.tensor(w, requires_grad=True)  # eager: the graph goes through the slices and the stack
    cr.sum(f(wt, X)).backward()
    np.testing.assert_allclose(wt.grad.numpy(), cr.grad(lambda w: cr.sum(f(w, X)))(w), rtol=1e-14)


def test_linear_algebra_per_example():
    A = rng.standard_normal((3, 4, 4)) + 4 * np.eye(4)
    b = rng.standard_normal((3, 4))
    got = cr.vmap(cr.grad(lambda a, b: np.linalg.slogdet(a)[1] + cr.sum(np.linalg.solve(a, b))))(A, b)
    np.testing.assert_allclose(got, [cr.grad(lambda a: np.linalg.slogdet(a)[1] + cr.sum(np.linalg.solve(a, v)))(m)
                                     for m, v in zip(A, b)], rtol=1e-13)
    w, v = cr.vmap(np.linalg.eigh)(A + np.swapaxes(A, 1, 2))
    np.testing.assert_allclose(w, np.linalg.eigvalsh(A + np.swapaxes(A, 1, 2)), rtol=1e-13)


def test_clear_errors():
    with pytest.raises(cr.ShapeError, match="argument 1 has 5 entries.*argument 0 has 6"):
        cr.vmap(lambda a, b: a)(X, np.ones(5))
    with pytest.raises(TypeError, match="in_axes has 1 entries"):
        cr.vmap(lambda a, b: a, in_axes=(0,))(X, Y)
    with pytest.raises(ValueError, match="no argument is mapped"):
        cr.vmap(lambda a: a, in_axes=None)(X)
    with pytest.raises(cr.ShapeError, match="in_axes=2 is out of range"):
        cr.vmap(lambda a: a, in_axes=2)(X)
    with pytest.raises(TypeError, match="must be a function"):
        cr.vmap(3)
