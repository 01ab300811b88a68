"""User-defined primitives (cr.primitive): every mode uses their rules, check_grads checks them,
a missing forward rule is a clear error, names are guarded."""
import numpy as np
import pytest

import chainrule as cr
from chainrule.core.registry import REGISTRY
from chainrule.testing import check_grads


@pytest.fixture
def declared():
    """Names declared by a test, taken out of the registry after it (the registry-wide tables of
    other tests must not see them)."""
    names = []
    yield names
    for name in names:
        if name in REGISTRY:
            cr.primitive.remove(name)


def _log1pexp(declared, **extra):
    declared.append("log1pexp")
    return cr.primitive(lambda x: np.logaddexp(0.0, x), name="log1pexp",
                        vjp=lambda g, ans, x: g * cr.sigmoid(x), **extra)


def test_every_mode_uses_the_rules_and_check_grads_checks_them(declared):
    f = _log1pexp(declared, jvp=lambda t, ans, x: t * cr.sigmoid(x), sym=lambda sp, x: sp.log(1 + sp.exp(x)),
                  elementwise=True)
    x = np.array([-800.0, -3.0, 0.0, 2.5, 800.0])
    np.testing.assert_array_equal(f(x), np.logaddexp(0.0, x))  # stable where log(1 + exp(x)) overflows
    np.testing.assert_allclose(cr.grad(lambda v: cr.sum(f(v)))(x), 0.5 * (1 + np.tanh(x / 2)))
    check_grads(lambda v: f(v) * v, np.array([0.3, -1.2, 2.0]), order=2)  # reverse, forward, forward over reverse
    np.testing.assert_allclose(cr.hessian(lambda v: cr.sum(f(v)))(x[1:4]),
                               np.diag(np.exp(-x[1:4]) / (1 + np.exp(-x[1:4])) ** 2), rtol=1e-12)
    t = cr.tensor([0.5], requires_grad=True)
    cr.sum(f(t) * 2).backward()
    np.testing.assert_allclose(t.grad.numpy(), 2 / (1 + np.exp(-0.5)))
    assert REGISTRY["log1pexp"].op is f and f(t)._prim.name == "log1pexp"  # one node in the graph


def test_symbolic_mode_uses_the_symbolic_form(declared):
    pytest.importorskip("sympy")
    f = _log1pexp(declared, jvp=lambda t, ans, x: t * cr.sigmoid(x), sym=lambda sp, x: sp.log(1 + sp.exp(x)),
                  elementwise=True)
    d = cr.symbolic.derivative(lambda x: f(x) * x)
    assert "log" in str(cr.symbolic.expression(lambda x: f(x) * x)).lower()
    np.testing.assert_allclose(float(d.function(0.7)[0]), np.log1p(np.exp(0.7)) + 0.7 / (1 + np.exp(-0.7)))


def test_without_a_forward_rule_forward_mode_names_the_primitive(declared):
    f = _log1pexp(declared)
    check_grads(f, np.array([0.3, -1.0]), modes=["reverse"])
    with pytest.raises(cr.primitive.MissingRuleError, match="'log1pexp' has no forward rule"):
        cr.jvp(f, (np.array([0.3]),), (np.array([1.0]),))
    with pytest.raises(cr.primitive.MissingRuleError, match="log1pexp"):
        check_grads(f, np.array([0.3, -1.0]))


def test_several_arguments_parameters_and_decorator(declared):
    declared.append("scaled_hypot")

    @cr.primitive(vjp=(lambda g, ans, x, y, scale=1.0: g * scale * scale * x / ans,
                       lambda g, ans, x, y, scale=1.0: g * scale * scale * y / ans),
                  jvp=(lambda t, ans, x, y, scale=1.0: t * scale * scale * x / ans,
                       lambda t, ans, x, y, scale=1.0: t * scale * scale * y / ans), elementwise=True)
    def scaled_hypot(x, y, scale=1.0):
        """scale * sqrt(x^2 + y^2), stable for huge x and y."""
        return scale * np.hypot(x, y) if scale != 1.0 else np.hypot(x, y)

    assert "stable" in REGISTRY["scaled_hypot"].doc
    x, y = np.array([1e200, 3.0]), np.array([1e200, 4.0])
    np.testing.assert_allclose(scaled_hypot(x, y)[1], 5.0)
    check_grads(lambda a, b: scaled_hypot(a, b, scale=2.0), np.array([3.0, -1.0]), np.array([[4.0, 2.0]]), order=2)


def test_names_are_guarded_and_can_be_declared_again(declared):
    with pytest.raises(ValueError, match="chainrule's own"):
        cr.primitive(np.exp, name="exp", vjp=lambda g, ans, x: g * ans)
    with pytest.raises(ValueError, match="name"):
        cr.primitive(lambda x: x, vjp=lambda g, ans, x: g)
    first = _log1pexp(declared)
    second = cr.primitive(lambda x: np.logaddexp(0.0, x), name="log1pexp", vjp=lambda g, ans, x: 2 * g * cr.sigmoid(x))
    assert float(cr.grad(second)(0.0)) == 1.0 and REGISTRY["log1pexp"].op is second and first is not second
