"""Every primitive of the registry: rules present, reverse rule against central differences
(first and second order) on random inputs with broadcasting, keepdims, negative axes and edges."""
import numpy as np
import pytest

import chainrule as cr
from chainrule.core.registry import REGISTRY, PerArg
from chainrule.testing import check_grads

rng = np.random.default_rng(1234)


def r(*shape, low=-2.0, high=2.0):
    return rng.uniform(low, high, size=shape)


def pos(*shape):
    return rng.uniform(0.5, 2.0, size=shape)


# primitive name -> list of (function, args). Each case is checked to order 2 unless marked "1".
CASES = {
    "add": [(cr.add, (r(3, 4), r(4))), (cr.add, (r(2, 1, 3), r(4, 1)))],
    "subtract": [(cr.subtract, (r(3, 1), r(1, 4)))],
    "negative": [(cr.negative, (r(5),))],
    "multiply": [(cr.multiply, (r(3, 4), r(3, 1))), (cr.multiply, (r(), r(2, 3)))],
    "divide": [(cr.divide, (r(3, 4), pos(4))), (cr.divide, (pos(2, 2), pos(2, 2)))],
    "power": [(cr.power, (pos(3, 2), r(2))), (lambda x: x ** 3, (r(4),)), (lambda x: cr.power(2.0, x), (r(3),)),
              # an exponent 0 among others, and x**0 = 1 at x = 0 (derivative 0, not 0 * 0**-1)
              (cr.power, (np.array([0.4, 0.7, 1.3]), np.array([0.0, 0.0, 1.5]))),
              (lambda x: x ** 0, (np.array([0.0, -0.0, 1.5]),))],
    "exp": [(cr.exp, (r(3, 2),))],
    "log": [(cr.log, (pos(4),))],
    "sin": [(cr.sin, (r(3),))],
    "cos": [(cr.cos, (r(3),))],
    "tanh": [(cr.tanh, (r(2, 3),))],
    "sqrt": [(cr.sqrt, (pos(3),))],
    "abs": [(cr.abs, (np.array([-1.5, -0.3, 0.4, 2.0]),))],
    "sign": [(lambda x: cr.sign(x) * x, (np.array([-1.5, 0.4]),))],
    "relu": [(cr.relu, (np.array([-1.5, -0.3, 0.4, 2.0]),))],
    "sigmoid": [(cr.sigmoid, (r(5) * 5,))],
    "softplus": [(cr.softplus, (r(5) * 5,))],
    "maximum": [(cr.maximum, (r(3, 4), r(4)))],
    "minimum": [(cr.minimum, (r(3, 1), r(4)))],
    "binary_cross_entropy": [(cr.core.primitives.binary_cross_entropy, (rng.uniform(0.05, 0.95, (3, 4)), rng.uniform(0, 1, 4)))],
    "where": [(lambda x, y: cr.where(np.array([True, False, True]), x, y), (r(3), r(2, 3)))],
    "equal": [(lambda x: x * cr.equal(x, x), (r(3),))],
    "not_equal": [(lambda x: x * cr.not_equal(x, 0.0), (r(3),))],
    "greater": [(lambda x: x * cr.greater(x, 0.0), (r(4),))],
    "greater_equal": [(lambda x: x * cr.greater_equal(x, 0.0), (r(4),))],
    "less": [(lambda x: x * cr.less(x, 0.0), (r(4),))],
    "less_equal": [(lambda x: x * cr.less_equal(x, 0.0), (r(4),))],
    "astype": [(lambda x: cr.astype(x * x, np.longdouble).astype(np.float64) * x, (r(3),))],
    "sum": [(lambda x: cr.sum(x, axis=-1), (r(3, 4),)), (lambda x: cr.sum(x, axis=(0, 2), keepdims=True), (r(2, 3, 4),)),
            (cr.sum, (r(3, 2),))],
    "mean": [(lambda x: cr.mean(x, axis=0), (r(3, 4),)), (lambda x: cr.mean(x, axis=-2, keepdims=True), (r(2, 3, 4),))],
    "max": [(lambda x: cr.max(x, axis=1), (r(3, 4),)), (lambda x: cr.max(x, axis=-1, keepdims=True), (r(2, 5),)),
            (cr.max, (r(4, 2),)), (lambda x: cr.min(x, axis=0), (r(3, 2),))],
    "logsumexp": [(lambda x: cr.logsumexp(x, axis=-1), (r(3, 4),)), (lambda x: cr.logsumexp(x, axis=0, keepdims=True), (r(3, 2),)),
                  (cr.logsumexp, (r(5),))],
    "softmax": [(lambda x: cr.softmax(x, axis=-1), (r(3, 4),)), (lambda x: cr.softmax(x, axis=0), (r(3, 2),)),
                (lambda x: cr.log_softmax(x, axis=1), (r(2, 4),))],
    "matmul": [(cr.matmul, (r(3, 4), r(4, 2))), (cr.matmul, (r(4), r(4, 3))), (cr.matmul, (r(3, 4), r(4))),
               (cr.matmul, (r(4), r(4))), (cr.matmul, (r(2, 3, 4), r(4, 5))), (cr.matmul, (r(2, 1, 3, 4), r(3, 4, 2))),
               (cr.matmul, (r(3), r(2, 3, 4)))],
    "linear": [(cr.nn.functional.linear, (r(5, 3), r(4, 3), r(4))), (cr.nn.functional.linear, (r(3), r(4, 3), r(4))),
               (cr.nn.functional.linear, (r(2, 5, 3), r(4, 3), r(4)))],
    "reshape": [(lambda x: cr.reshape(x, (2, -1)), (r(3, 4),))],
    "transpose": [(cr.transpose, (r(2, 3, 4),)), (lambda x: cr.transpose(x, (1, 2, 0)), (r(2, 3, 4),)),
                  (lambda x: cr.tensor(0.0) + x.T if isinstance(x, cr.Tensor) else x.T, (r(2, 3),))],
    "broadcast_to": [(lambda x: cr.broadcast_to(x, (2, 3, 4)), (r(3, 1),))],
    "getitem": [(lambda x: cr.tensor(x)[1:, ::2] if not isinstance(x, cr.Tensor) else x[1:, ::2], (r(3, 4),)),
                (lambda x: x[np.arange(3), np.array([0, 2, 0])], (r(3, 4),)),
                (lambda x: x[np.array([0, 0, 1])], (r(3, 2),)),
                (lambda x: x[..., -1], (r(2, 3),))],
    "class_labels": [(lambda x: cr.core.primitives.getitem(
        x, index=(np.arange(3), cr.core.primitives.class_labels(np.array([2.0, 0.0, 2.0]), classes=3))), (r(3, 3),))],
    "scatter_add": [(lambda u: cr.core.primitives.scatter_add(u, index=np.array([0, 2, 0]), shape=(4,)), (r(3),))],
    "concatenate": [(lambda x, y: cr.concatenate([x, y], axis=-1), (r(2, 3), r(2, 2))),
                    (lambda x, y: cr.concatenate([x, y]), (r(1, 3), r(2, 3)))],
    "stack": [(lambda x, y: cr.stack([x, y], axis=1), (r(2, 3), r(2, 3))), (lambda x, y: cr.stack([x, y], axis=-1), (r(3), r(3)))],
    # linear algebra (more cases, batched and edge ones, in test_linalg.py)
    "solve": [(np.linalg.solve, (r(3, 3) + 4 * np.eye(3), r(3))), (np.linalg.solve, (r(2, 3, 3) + 4 * np.eye(3), r(3, 2)))],
    "inv": [(np.linalg.inv, (r(3, 3) + 4 * np.eye(3),))],
    "det": [(np.linalg.det, (r(2, 3, 3) + 4 * np.eye(3),))],
    "slogdet": [(lambda a: np.linalg.slogdet(a)[1], (r(3, 3) + 4 * np.eye(3),))],
    "cholesky": [(np.linalg.cholesky, (r(3, 3) + 4 * np.eye(3),))],
    "eigh": [(lambda a: np.linalg.eigh(a)[1] ** 2 + np.linalg.eigh(a)[0], (r(3, 3),))],
    "svd": [(lambda a: np.linalg.svd(a, full_matrices=False)[0] ** 2 + np.linalg.svd(a, compute_uv=False), (r(3, 2),))],
    "pinv": [(np.linalg.pinv, (r(3, 2),))],
}

# chainrule.numpy's primitives, reached through numpy's names (the functions users call)
import chainrule.numpy as cnp  # noqa: E402


def unit(*shape):
    return rng.uniform(-0.9, 0.9, size=shape)


NUMPY_CASES = {
    "tan": [(cnp.tan, (unit(3, 2),))],
    "sinh": [(cnp.sinh, (r(3),))],
    "cosh": [(cnp.cosh, (r(2, 2),))],
    "arcsin": [(cnp.arcsin, (unit(4),))],
    "arccos": [(cnp.arccos, (unit(4),))],
    "arctan": [(cnp.arctan, (r(4),))],
    "arcsinh": [(cnp.arcsinh, (r(4),))],
    "arccosh": [(cnp.arccosh, (pos(4) + 0.7,))],
    "arctanh": [(cnp.arctanh, (unit(4),))],
    "log1p": [(cnp.log1p, (unit(4),)), (cnp.log1p, (np.array([1e-12, -1e-12]),))],
    "expm1": [(cnp.expm1, (r(4),)), (cnp.expm1, (np.array([1e-12, 0.0]),))],
    "log2": [(cnp.log2, (pos(3),))],
    "log10": [(cnp.log10, (pos(3),))],
    "exp2": [(cnp.exp2, (r(3),))],
    "cbrt": [(cnp.cbrt, (pos(3),)), (cnp.cbrt, (-pos(2),))],
    # 0 and tiny x: the Taylor branch; 1.0: sin(pi x) = 0
    "sinc": [(cnp.sinc, (np.array([0.0, 1e-4, 0.3, -1.2, 1.0]),))],
    "floor": [(lambda x: cnp.floor(x) * x, (r(4),))],
    "ceil": [(lambda x: cnp.ceil(x) * x, (r(4),))],
    "trunc": [(lambda x: cnp.trunc(x) * x, (r(4),))],
    "rint": [(lambda x: cnp.round(x, 1) * x, (r(4),)), (lambda x: cnp.rint(x) * x, (r(4),))],
    "arctan2": [(cnp.arctan2, (r(3, 2), pos(2))), (cnp.arctan2, (r(3), -pos(3)))],
    "hypot": [(cnp.hypot, (r(3, 1), pos(2)))],
    "logaddexp": [(cnp.logaddexp, (r(3, 1), r(2))), (cnp.logaddexp, (np.array([1000.0, -1000.0]), np.array([999.0, 0.0])))],
    "logaddexp2": [(cnp.logaddexp2, (r(3), r(3)))],
    "mod": [(cnp.mod, (pos(3) * 3, pos(3))), (lambda x, y: x % y, (r(2, 3) * 3, -pos(3)))],
    "fmod": [(cnp.fmod, (r(3) * 3, pos(3)))],
    "fmax": [(cnp.fmax, (r(3), r(2, 3)))],
    "fmin": [(cnp.fmin, (r(3, 1), r(3)))],
    "cumsum": [(lambda x: cnp.cumsum(x, axis=-1), (r(3, 4),)), (cnp.cumsum, (r(3, 2),)),
               (lambda x: x.cumsum(axis=0), (r(2, 3, 2),))],
    "cumprod": [(lambda x: cnp.cumprod(x, axis=-2), (r(3, 2),)), (cnp.cumprod, (r(4),))],
    "prod": [(cnp.prod, (r(3, 4),)), (lambda x: cnp.prod(x, axis=(0, -1), keepdims=True), (r(2, 3, 2),)),
             (lambda x: x.prod(axis=-1), (r(2, 3),))],
    "einsum": [(lambda a, b: cnp.einsum("ij,jk->ik", a, b), (r(2, 3), r(3, 4))),
               (lambda a: cnp.einsum("ii", a), (r(3, 3),)),                      # trace: a repeated letter
               (lambda a, b: cnp.einsum("ii,ij->ij", a, b), (r(3, 3), r(3, 2))),
               (lambda a, b: cnp.einsum("...ij,...jk", a, b), (r(2, 2, 3), r(3, 4))),  # implicit, ellipsis
               (lambda a, b: cnp.einsum("ij,k->k", a, b), (r(2, 3), r(4))),        # a letter summed alone
               (lambda a, b, c: cnp.einsum("i,ij,j->", a, b, c), (r(3), r(3, 2), r(2)))],
}
CASES.update(NUMPY_CASES)
# derivatives that jump: checked to first order
FIRST_ORDER = {"relu", "abs", "maximum", "minimum", "max", "sign", "fmax", "fmin"}


def test_every_primitive_has_every_rule():
    for name, prim in REGISTRY.items():
        assert callable(prim.impl), name
        assert prim.display and prim.latex, f"{name} lacks display or LaTeX"
        assert prim.doc, f"{name} lacks a docstring"
        if not prim.differentiable:
            continue
        for kind, rules in (("reverse", prim.vjps), ("forward", prim.jvps)):
            if isinstance(rules, PerArg):
                assert callable(rules.rule), f"{name} lacks a {kind} rule"
            else:
                assert len(rules) >= 1 and any(callable(rule) for rule in rules), f"{name} lacks a {kind} rule"


def test_every_primitive_is_in_the_table():
    missing = sorted(set(REGISTRY) - set(CASES))
    assert not missing, f"primitives without a gradient check: {missing}"


@pytest.mark.parametrize("name,case", [(n, c) for n, cs in CASES.items() for c in cs],
                         ids=[f"{n}-{i}" for n, cs in CASES.items() for i in range(len(cs))])
def test_reverse_rule_matches_central_differences(name, case):
    fn, args = case
    order = 1 if name in FIRST_ORDER else 2
    check_grads(fn, *args, order=order, modes=["reverse"])


@pytest.mark.parametrize("name,case", [(n, c) for n, cs in NUMPY_CASES.items() for c in cs],
                         ids=[f"{n}-{i}" for n, cs in NUMPY_CASES.items() for i in range(len(cs))])
def test_forward_rule_matches_central_differences(name, case):
    fn, args = case
    check_grads(fn, *args, order=1 if name in FIRST_ORDER else 2, modes=["forward"])


def test_prod_is_exact_where_an_entry_is_zero():
    # the product of the others, not ans / x (which is 0 / 0 there)
    x = np.array([[0.0, 2.0, 3.0], [0.0, 0.0, 5.0]])
    check_grads(lambda v: cnp.prod(v, axis=-1), x, order=1)
    np.testing.assert_array_equal(cr.grad(lambda v: cr.sum(cnp.prod(v, axis=-1)))(x), [[6.0, 0, 0], [0, 0, 0]])


def test_forward_batching_rules_give_the_hessian():
    """Hessians (forward over reverse, tangents batched through the structural primitives' rules)
    against central differences of the gradient."""
    from chainrule.modes.forward import _BATCHED
    x = pos(2, 3)
    for name, f in {"cumsum": lambda v: cr.sum(cnp.cumsum(v, axis=0) ** 3),
                    "cumprod": lambda v: cr.sum(cnp.cumprod(v, axis=1) ** 2),
                    "prod": lambda v: cr.sum(cnp.prod(v, axis=0) ** 2) + cnp.prod(v),
                    "einsum": lambda v: cr.sum(cnp.einsum("ij,kj->ik", v, v) ** 2)}.items():
        assert name in _BATCHED
        H = np.asarray(cr.hessian(f)(x)).reshape(6, 6)
        g = lambda v: np.asarray(cr.grad(f)(v)).ravel()  # noqa: E731
        h = 1e-5
        num = np.stack([(g(x + h * e.reshape(x.shape)) - g(x - h * e.reshape(x.shape))) / (2 * h)
                        for e in np.eye(6)], axis=1)
        np.testing.assert_allclose(H, num, rtol=1e-5, atol=1e-6, err_msg=name)


def test_edge_values_finite_and_correct():
    x = np.array([-1000.0, -30.0, 0.0, 30.0, 1000.0])
    for dtype in (np.float32, np.float64):
        t = cr.tensor(x, dtype=dtype, requires_grad=True)
        outs = [cr.sigmoid(t), cr.softplus(t), cr.tanh(t), cr.softmax(t), cr.log_softmax(t), cr.logsumexp(t)]
        for out in outs:
            assert out.dtype == dtype
            assert np.all(np.isfinite(out.numpy()))
            t.grad = None
            cr.sum(out * np.linspace(0.1, 1, out.size).reshape(out.shape).astype(dtype)).backward()
            assert np.all(np.isfinite(t.grad.numpy())) and t.grad.dtype == dtype
    np.testing.assert_allclose(cr.sigmoid(np.array([-1000.0, 1000.0])), [0.0, 1.0])
    np.testing.assert_allclose(cr.logsumexp(np.array([1000.0, 1000.0])), 1000 + np.log(2))
    np.testing.assert_allclose(cr.log_softmax(np.array([1000.0, 0.0])), [0.0, -1000.0])


def test_relu_subgradient_and_tie_rules():
    x = cr.tensor([-1.0, 0.0, 2.0], requires_grad=True)
    cr.sum(cr.relu(x)).backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 0.0, 1.0])
    a = cr.tensor([1.0, 2.0], requires_grad=True)
    b = cr.tensor([1.0, 3.0], requires_grad=True)
    cr.sum(cr.maximum(a, b)).backward()
    np.testing.assert_array_equal(a.grad.numpy(), [0.5, 0.0])
    np.testing.assert_array_equal(b.grad.numpy(), [0.5, 1.0])
    m = cr.tensor([[3.0, 3.0, 1.0]], requires_grad=True)
    cr.max(m).backward()
    np.testing.assert_array_equal(m.grad.numpy(), [[0.5, 0.5, 0.0]])


def test_float32_stays_float32():
    w = cr.tensor(r(4, 3), dtype=np.float32, requires_grad=True)
    x = r(5, 4).astype(np.float32)
    y = cr.sum(cr.log_softmax(cr.tanh(x @ w * 2.0 + 1) ** 2 / 3.0 - cr.sqrt(cr.abs(x @ w) + 1e-3)))
    assert y.dtype == np.float32
    y.backward()
    assert w.grad.dtype == np.float32


def test_comparisons_are_boolean_and_not_differentiable():
    x = cr.tensor([1.0, -1.0], requires_grad=True)
    for out in (x > 0, x >= 0, x < 0, x <= 0, x == 1, x != 1):
        assert out.dtype == bool and not out.requires_grad


# ---------------------------------------------------------------- edge values: the modes agree
EDGE_POINTS = {1: [(0.0,), (-0.0,), (1.0,), (-1.0,)],
               2: [(0.0, 0.0), (-0.0, 0.0), (0.0, -0.0), (1.0, 1.0), (0.0, 1.0), (1.0, 0.0), (-1.0, 2.0), (2.0, -1.0)]}
ELEMENTWISE = sorted(n for n, p in REGISTRY.items()
                     if p.elementwise and p.differentiable and isinstance(p.vjps, tuple) and len(p.vjps) in EDGE_POINTS)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("name", ELEMENTWISE)
def test_modes_agree_at_zero_signed_zero_and_ties(name):
    """At 0, -0.0 and ties, the graph of Tensors, the tape of grad at numbers and forward mode give
    the same partials, NaN and inf included (they read the same rules, but on different values:
    numpy scalars, Python floats, Duals)."""
    op = REGISTRY[name].op
    for point in EDGE_POINTS[len(REGISTRY[name].vjps)]:
        n = len(point)
        leaves = [cr.tensor(a, requires_grad=True) for a in point]
        op(*leaves).backward()
        graph = [float(t.grad) for t in leaves]
        tape = [float(g) for g in cr.grad(op, argnums=tuple(range(n)))(*point)]
        forward = [float(cr.jvp(op, point, tuple(float(i == j) for j in range(n)))[1]) for i in range(n)]
        np.testing.assert_array_equal(tape, graph, err_msg=f"{name} at {point}: tape vs graph")
        np.testing.assert_array_equal(forward, graph, err_msg=f"{name} at {point}: forward vs graph")
