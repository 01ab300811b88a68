"""numpy's functions on traced values: ufuncs that are primitives stay differentiable in every
mode, others run on plain values or are refused while a derivative is traced (never a silently
detached result), and np.sum / np.mean / np.max / np.min call the tensor's own reductions."""
import numpy as np
import pytest

import chainrule as cr

rng = np.random.default_rng(7)


@pytest.mark.parametrize("np_fn, cr_fn", [
    (np.exp, cr.exp), (np.sin, cr.sin), (np.tanh, cr.tanh), (np.sqrt, cr.sqrt), (np.abs, cr.abs),
    (lambda x: np.maximum(x, 0.3), lambda x: cr.maximum(x, 0.3)),
    (lambda x: np.multiply(np.array([2.0, -1.0, 0.5]), x), lambda x: cr.multiply(np.array([2.0, -1.0, 0.5]), x)),
    (lambda x: np.array([1.0, 2.0, 3.0]) - x, lambda x: cr.subtract(np.array([1.0, 2.0, 3.0]), x)),
    (lambda x: np.ones((2, 3)) @ x, lambda x: cr.matmul(np.ones((2, 3)), x)),
])
def test_numpy_ufuncs_that_are_primitives_stay_differentiable(np_fn, cr_fn):
    x0 = rng.uniform(0.5, 2.0, size=3)
    x = cr.tensor(x0, requires_grad=True)
    y = np_fn(x)
    assert isinstance(y, cr.Tensor) and y.requires_grad
    cr.sum(y).backward()
    want = cr.grad(lambda v: cr.sum(cr_fn(v)))(x0)
    np.testing.assert_allclose(x.grad.numpy(), want, rtol=1e-12)
    # the functional API and forward mode see the same primitive
    np.testing.assert_allclose(cr.grad(lambda v: cr.sum(np_fn(v)))(x0), want, rtol=1e-12)
    _, t = cr.jvp(np_fn, (x0,), (np.ones(3),))
    _, t_want = cr.jvp(cr_fn, (x0,), (np.ones(3),))
    np.testing.assert_allclose(t, t_want, rtol=1e-12)


def test_a_ufunc_without_a_rule_is_refused_while_differentiating():
    x = cr.tensor([1.5, -0.5], requires_grad=True)
    with pytest.raises(TypeError, match=r"numpy.frexp has no derivative rule"):
        np.frexp(x)
    with pytest.raises(TypeError, match=r"numpy.add.reduce has no derivative rule"):
        np.add.reduce(x)


def test_a_ufunc_without_a_rule_runs_on_plain_values_otherwise():
    x = cr.tensor([1.5, -0.5, np.inf])
    np.testing.assert_array_equal(np.floor(x), [1.0, -1.0, np.inf])
    np.testing.assert_array_equal(np.isfinite(x), [True, True, False])
    w = cr.tensor([1.5, -0.5], requires_grad=True)
    with cr.no_grad():
        np.testing.assert_array_equal(np.floor(w), [1.0, -1.0])


def test_numpy_reductions_call_the_tensor_methods():
    x0 = np.array([[1.0, 4.0], [3.0, 2.0]])
    x = cr.tensor(x0, requires_grad=True)
    for np_fn in (np.sum, np.mean, np.max, np.min):
        y = np_fn(x)
        assert isinstance(y, cr.Tensor) and float(y) == np_fn(x0)
    np.testing.assert_allclose(np.sum(x, axis=0).numpy(), [4.0, 6.0])
    assert np.sum(x, dtype=np.float32).dtype == np.float32
    np.sum(x).backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.ones((2, 2)))
    with pytest.raises(TypeError, match="out= is not supported"):
        x.sum(out=np.empty(()))
