"""Nested transformations: no perturbation confusion in any combination of grad and jvp,
higher derivatives, and transformations of functions that close over traced values."""
import numpy as np
import pytest

import chainrule as cr


def d(f):
    """Derivative by forward mode (a scalar function of a scalar)."""
    return lambda x: cr.jvp(f, (x,), (1.0,))[1]


# The classic test (Siskind and Pearlmutter): at x = 1, d/dx [x * (d/dy (x + y) at y = 1)] is 1;
# a mode that confused the inner perturbation with the outer one would give 2.
def test_grad_of_grad_keeps_perturbations_apart():
    assert cr.grad(lambda x: x * cr.grad(lambda y: x + y)(1.0))(1.0) == pytest.approx(1.0)
    assert cr.grad(lambda x: x * cr.grad(lambda y: x * y)(1.0))(1.0) == pytest.approx(2.0)  # d/dx x^2


def test_jvp_of_jvp_keeps_perturbations_apart():
    assert d(lambda x: x * d(lambda y: x + y)(1.0))(1.0) == pytest.approx(1.0)
    assert d(lambda x: x * d(lambda y: x * y)(1.0))(1.0) == pytest.approx(2.0)


def test_jvp_of_grad_keeps_perturbations_apart():
    assert d(lambda x: x * cr.grad(lambda y: x + y)(1.0))(1.0) == pytest.approx(1.0)
    assert d(lambda x: x * cr.grad(lambda y: x * y)(1.0))(1.0) == pytest.approx(2.0)


def test_grad_of_jvp_keeps_perturbations_apart():
    assert cr.grad(lambda x: x * d(lambda y: x + y)(1.0))(1.0) == pytest.approx(1.0)
    assert cr.grad(lambda x: x * d(lambda y: x * y)(1.0))(1.0) == pytest.approx(2.0)


@pytest.mark.parametrize("outer,middle,inner", [
    (cr.grad, cr.grad, cr.grad), (d, d, d), (d, cr.grad, cr.grad), (cr.grad, d, cr.grad), (cr.grad, cr.grad, d),
    (d, d, cr.grad),
])
def test_third_derivatives_in_every_combination(outer, middle, inner):
    assert outer(middle(inner(cr.sin)))(0.3) == pytest.approx(-np.cos(0.3), rel=1e-12)
    assert outer(middle(inner(lambda x: x ** 4)))(2.0) == pytest.approx(48.0, rel=1e-12)


def test_fourth_derivative_of_exp_times_x():
    f = lambda x: cr.exp(x) * x  # noqa: E731  d^4/dx^4 = (x + 4) e^x
    assert cr.grad(d(cr.grad(d(f))))(0.5) == pytest.approx(4.5 * np.exp(0.5), rel=1e-12)


def test_forward_over_reverse_equals_reverse_over_reverse_hessian():
    a = np.array([[2.0, 1.0, 0.0], [1.0, 3.0, 0.5], [0.0, 0.5, 1.0]])
    f = lambda x: 0.5 * cr.sum(x * (a @ x)) + cr.sum(cr.exp(x) * cr.sin(x))  # noqa: E731
    x = np.array([0.2, -0.4, 0.9])
    H_fwd = cr.hessian(f)(x)
    H_rev = cr.jacobian(cr.grad(f), mode="reverse")(x)
    np.testing.assert_allclose(H_fwd, H_rev, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(H_fwd, a + np.diag(2 * np.exp(x) * np.cos(x)), rtol=1e-12)


def test_gradient_of_a_hessian_entry_sum():
    # d/dx sum(Hessian of sum x^3) = d/dx sum(6 x) = 6: a Jacobian evaluated inside grad.
    g = cr.grad(lambda x: cr.sum(cr.hessian(lambda z: cr.sum(z ** 3))(x)))(np.array([1.0, 2.0]))
    np.testing.assert_allclose(g, [6.0, 6.0])


def test_hvp_is_differentiable_with_respect_to_the_vector():
    # d/dv <v, H v> = 2 H v for a quadratic with symmetric H
    a = np.array([[2.0, 1.0], [1.0, 3.0]])
    f = lambda x: 0.5 * cr.sum(x * (a @ x))  # noqa: E731
    x = np.array([1.0, -1.0])
    g = cr.grad(lambda v: cr.sum(v * cr.hvp(f, (x,), (v,))))(np.array([0.5, 2.0]))
    np.testing.assert_allclose(g, 2 * a @ [0.5, 2.0])


def test_a_closure_over_an_outer_dual_is_a_constant_inside():
    def outer(x):
        inner = cr.jacobian(lambda y: y * x, mode="forward")(np.array([1.0, 2.0]))  # diag(x)
        return cr.sum(inner)

    assert d(outer)(3.0) == pytest.approx(2.0)
    assert cr.grad(outer)(3.0) == pytest.approx(2.0)


def test_eager_tensor_through_nested_transformations():
    x = cr.tensor(0.7, requires_grad=True)
    g2 = cr.grad(cr.grad(cr.sin))(x)  # -sin x, still recorded at the eager level
    assert isinstance(g2, cr.Tensor)
    assert g2.item() == pytest.approx(-np.sin(0.7))
    g2.backward()
    assert x.grad.item() == pytest.approx(-np.cos(0.7))
