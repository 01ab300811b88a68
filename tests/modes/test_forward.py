"""Forward mode: every primitive's forward rule against its reverse rule and central differences,
batched tangents against one direction at a time, the Dual's surface, and bad tangents."""
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import chainrule as cr
from chainrule.core import primitives as P
from chainrule.core.registry import Primitive
from chainrule.modes.forward import Dual
from chainrule.testing import check_grads
from compositions import programs, run

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "core"))
from test_primitives import CASES  # noqa: E402  (the registry's table of test cases, shared)

# Case functions written for Tensors only, with a version that takes any traced value.
OVERRIDES = {("getitem", 0): lambda x: x[1:, ::2]}

ALL_CASES = [(name, i, OVERRIDES.get((name, i), fn), args)
             for name, cases in CASES.items() for i, (fn, args) in enumerate(cases)]
IDS = [f"{name}-{i}" for name, i, _, _ in ALL_CASES]


@pytest.mark.parametrize("name,i,fn,args", ALL_CASES, ids=IDS)
def test_forward_rule_matches_reverse_rule_and_central_differences(name, i, fn, args):
    check_grads(fn, *args, order=1, modes=["forward", "reverse"])


def _one_direction_at_a_time(fn, args, tangents):
    batch = np.shape(tangents[0])[0]
    outs = [cr.jvp(fn, args, tuple(t[b] for t in tangents))[1] for b in range(batch)]
    return np.stack([np.asarray(o) for o in outs])


@pytest.mark.parametrize("name,i,fn,args", ALL_CASES, ids=IDS)
def test_batched_tangents_match_one_direction_at_a_time(name, i, fn, args):
    rng = np.random.default_rng(7)
    tangents = tuple(rng.standard_normal((3,) + np.shape(a)) for a in args)
    out, batched = cr.jvp(fn, args, tangents, batched=True)
    assert np.shape(batched) == (3,) + np.shape(out)
    np.testing.assert_allclose(batched, _one_direction_at_a_time(fn, args, tangents), rtol=1e-12, atol=1e-12)


# Cases where the batch axis meets broadcasting, vectors in matmul, moved axes and indexing.
rng = np.random.default_rng(3)
BATCH_CASES = {
    "vector-against-matrix": (lambda x, y: x * y + x, (rng.standard_normal(4), rng.standard_normal((3, 4)))),
    "scalar-against-matrix": (lambda s, y: cr.sin(s) * y, (0.3, rng.standard_normal((2, 3)))),
    "matmul-matrix-vector": (cr.matmul, (rng.standard_normal((3, 4)), rng.standard_normal(4))),
    "matmul-vector-matrix": (cr.matmul, (rng.standard_normal(4), rng.standard_normal((4, 2)))),
    "matmul-vector-vector": (cr.matmul, (rng.standard_normal(4), rng.standard_normal(4))),
    "matmul-batched-left": (cr.matmul, (rng.standard_normal((2, 3, 4)), rng.standard_normal((4, 5)))),
    "matmul-batched-right": (cr.matmul, (rng.standard_normal((3, 4)), rng.standard_normal((2, 4, 5)))),
    "matmul-vector-batched": (cr.matmul, (rng.standard_normal(4), rng.standard_normal((2, 4, 3)))),
    "matmul-batched-vector": (cr.matmul, (rng.standard_normal((2, 3, 4)), rng.standard_normal(4))),
    "matmul-broadcast-batches": (cr.matmul, (rng.standard_normal((2, 1, 3, 4)), rng.standard_normal((3, 4, 2)))),
    "sum-positive-axis": (lambda x: cr.sum(x, axis=1), (rng.standard_normal((2, 3, 4)),)),
    "sum-axes-keepdims": (lambda x: cr.sum(x, axis=(0, 2), keepdims=True), (rng.standard_normal((2, 3, 4)),)),
    "mean-all": (cr.mean, (rng.standard_normal((2, 3)),)),
    "max-positive-axis": (lambda x: cr.max(x, axis=0), (rng.standard_normal((3, 4)),)),
    "logsumexp-axis-0": (lambda x: cr.logsumexp(x, axis=0), (rng.standard_normal((3, 4)),)),
    "softmax-axis-0": (lambda x: cr.softmax(x, axis=0), (rng.standard_normal((3, 4)),)),
    "transpose-default": (cr.transpose, (rng.standard_normal((2, 3, 4)),)),
    "transpose-negative": (lambda x: cr.transpose(x, (-1, 0, 1)), (rng.standard_normal((2, 3, 4)),)),
    "reshape-minus-one": (lambda x: cr.reshape(x, (-1, 2)), (rng.standard_normal((3, 4)),)),
    "broadcast-rank-up": (lambda x: cr.broadcast_to(x, (2, 3, 4)), (rng.standard_normal(4),)),
    "index-int-slice": (lambda x: x[1, 1:], (rng.standard_normal((3, 4)),)),
    "index-newaxis-ellipsis": (lambda x: x[None, ..., 0], (rng.standard_normal((3, 4)),)),
    "index-advanced-apart": (lambda x: x[np.array([0, 2]), :, np.array([1, 0])], (rng.standard_normal((3, 4, 2)),)),
    "index-int-and-array-apart": (lambda x: x[0, :, np.array([1, 1, 0])], (rng.standard_normal((3, 4, 2)),)),
    "index-mask": (lambda x: x[x > 0], (np.array([[1.0, -1.0], [2.0, 0.5]]),)),
    "scatter-2d": (lambda u: P.scatter_add(u, index=(np.array([0, 2, 0]), slice(None)), shape=(4, 2)),
                   (rng.standard_normal((3, 2)),)),
    "scatter-apart": (lambda u: P.scatter_add(u, index=(np.array([0, 1]), slice(None), np.array([1, 1])),
                                              shape=(2, 3, 2)), (rng.standard_normal((2, 3)),)),
    "concatenate-constant": (lambda x: cr.concatenate([x, np.ones((2, 2))], axis=1), (rng.standard_normal((2, 3)),)),
    "stack-positive-axis": (lambda x, y: cr.stack([x, y], axis=1),
                            (rng.standard_normal((2, 3)), rng.standard_normal((2, 3)))),
    "where-broadcast": (lambda x: cr.where(np.array([True, False, True]), x, 0.0), (rng.standard_normal((2, 3)),)),
    "astype-longdouble": (lambda x: cr.astype(x, np.longdouble) * x, (rng.standard_normal(3),)),
}


@pytest.mark.parametrize("fn,args", list(BATCH_CASES.values()), ids=list(BATCH_CASES))
def test_batched_tangents_through_broadcasting_and_structure(fn, args):
    rng = np.random.default_rng(11)
    tangents = tuple(rng.standard_normal((4,) + np.shape(a)) for a in args)
    out, batched = cr.jvp(fn, args, tangents, batched=True)
    np.testing.assert_allclose(batched, _one_direction_at_a_time(fn, args, tangents), rtol=1e-6, atol=1e-12)
    check_grads(fn, *args, modes=["forward"])  # and one direction at a time is right


def test_a_primitive_without_batching_rule_falls_back_to_one_call_per_direction():
    # Not registered (the registry's table stays as it is): a cumulative sum, neither elementwise
    # nor known to forward mode's batching rules.
    calls = []

    def jvp_rule(t, ans, x):
        calls.append(np.shape(t))
        return cumsum.op(t)

    cumsum = Primitive("cumsum_test", np.cumsum, (lambda g, ans, x: g[::-1].cumsum()[::-1],), (jvp_rule,))
    x = np.array([1.0, 2.0, 3.0])
    v = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]])
    out, t = cr.jvp(lambda x: cumsum.op(x * x), (x,), (v,), batched=True)
    np.testing.assert_allclose(out, np.cumsum(x * x))
    np.testing.assert_allclose(t, np.cumsum(2 * x * v, axis=1))
    assert calls == [(3,), (3,)]


# ---------------------------------------------------------------- the Dual itself
def test_dual_numbers_carry_the_derivative():
    x = Dual(2.0, 1.0)
    y = x * x * x + 2 * x - 1 / x
    assert float(y.primal) == pytest.approx(8 + 4 - 0.5)
    assert float(y.tangent) == pytest.approx(3 * 4 + 2 + 1 / 4)
    z = cr.exp(cr.sin(x)) ** 2
    assert float(z.tangent) == pytest.approx(2 * np.exp(2 * np.sin(2.0)) * np.cos(2.0))


def test_dual_operator_surface_and_numpy_interplay():
    a = np.array([[1.0, 2.0], [3.0, 4.0]])
    x = Dual(a, np.ones((2, 2)))
    assert x.shape == (2, 2) and x.ndim == 2 and x.dtype == np.float64 and x.size == 4 and len(x) == 2
    for y, (p, t) in [(a + x, (2 * a, np.ones((2, 2)))), (a - x, (0 * a, -np.ones((2, 2)))),
                      (a * x, (a * a, a)), (x / 2.0, (a / 2, np.full((2, 2), 0.5))), (-x, (-a, -np.ones((2, 2)))),
                      (x ** 2, (a ** 2, 2 * a)), (2.0 ** x, (2 ** a, 2 ** a * np.log(2))),
                      (x @ a, (a @ a, np.ones((2, 2)) @ a)), (a @ x, (a @ a, a @ np.ones((2, 2)))),
                      (x.T, (a.T, np.ones((2, 2)))), (x[0], (a[0], np.ones(2))), (x.sum(axis=0), (a.sum(0), [2, 2])),
                      (x.mean(), (a.mean(), 1.0)), (x.max(axis=1), (a.max(1), [1, 1])), (x.min(), (1.0, 1.0)),
                      (x.reshape(4), (a.reshape(4), np.ones(4))), (abs(-x), (a, np.ones((2, 2)))),
                      (np.float32(2) * x, (2 * a, 2 * np.ones((2, 2))))]:
        assert isinstance(y, Dual)
        np.testing.assert_allclose(y.primal, p)
        np.testing.assert_allclose(y.tangent, t)
    assert [r.tolist() for r in (x > 2, x == 1.0)] == [[[False, False], [True, True]], [[True, False], [False, False]]]
    assert not isinstance(x > 2, Dual)  # comparisons are plain booleans
    assert [float(r.primal) for r in x[1]] == [3.0, 4.0]
    assert "Dual(primal=[[1., 2.]," in repr(x) and "tangent=" in repr(x)


def test_duals_made_by_hand_do_not_share_a_perturbation():
    # Each hand-made Dual has its own level: their product is a Dual of Duals, and each level's
    # tangent is the derivative along its own input only.
    x, y = Dual(3.0, 1.0), Dual(5.0, 1.0)
    xy = x * y
    inner, outer = (x, y) if x._level > y._level else (y, x)
    assert isinstance(xy.primal, Dual) and xy._level == inner._level
    assert float(xy.primal.tangent) == float(inner.primal)  # d(xy)/d(outer) = inner's value
    assert float(xy.tangent.primal) == float(outer.primal)   # d(xy)/d(inner) = outer's value


def test_constants_do_no_tangent_work_and_results_without_tangent_are_plain():
    x = Dual(np.array([1.0, -2.0]), np.array([1.0, 1.0]))
    assert not isinstance(cr.greater(x, 0.0), Dual)  # not differentiable: the plain value
    assert isinstance(cr.sign(x), Dual)  # piecewise constant: a zero tangent, as PyTorch's sign
    assert isinstance(x * np.array([2.0, 3.0]), Dual)
    out, t = cr.jvp(lambda x: np.array([1.0, 2.0]) * 3.0, (np.ones(2),), (np.ones(2),))
    np.testing.assert_array_equal(t, [0.0, 0.0])


def test_jvp_with_several_arguments_and_pytrees():
    def f(params, x):
        return cr.tanh(x @ params["W"] + params["b"])

    params = {"W": np.array([[1.0, 2.0], [0.5, -1.0]]), "b": np.array([0.1, 0.2])}
    x = np.array([0.3, -0.4])
    dparams = {"W": np.array([[0.1, 0.0], [0.0, 0.2]]), "b": np.array([1.0, -1.0])}
    dx = np.array([0.5, 0.5])
    out, t = cr.jvp(f, (params, x), (dparams, dx))
    z = x @ params["W"] + params["b"]
    dz = dx @ params["W"] + x @ dparams["W"] + dparams["b"]
    np.testing.assert_allclose(out, np.tanh(z))
    np.testing.assert_allclose(t, (1 - np.tanh(z) ** 2) * dz)


def test_jvp_dtype_float32_stays_float32():
    x = np.array([0.5, 1.5], dtype=np.float32)
    w = np.array([[1.0, 2.0], [3.0, 4.0]], dtype=np.float32)
    for tangent in (np.ones(2, np.float32), np.ones(2)):  # a float64 tangent is cast to the primal's dtype
        out, t = cr.jvp(lambda x: cr.sum(cr.softmax(cr.tanh(x @ w) ** 2 / 3.0) * cr.sqrt(x)), (x,), (tangent,))
        assert out.dtype == np.float32 and t.dtype == np.float32
    out, t = cr.jvp(lambda x: cr.sigmoid(x) * 2, (x,), (np.eye(2),), batched=True)
    assert t.dtype == np.float32 and t.shape == (2, 2)


def test_jvp_through_eager_tensors_gives_tensors_to_backward_through():
    w = cr.tensor([1.0, 2.0], requires_grad=True)
    out, t = cr.jvp(lambda w: cr.sum(w ** 3), (w,), (np.array([1.0, 1.0]),))
    assert isinstance(t, cr.Tensor)
    assert t.item() == pytest.approx(3 * 1 + 3 * 4)
    t.backward()  # d/dw of sum(3 w^2) = 6 w
    np.testing.assert_allclose(w.grad.numpy(), [6.0, 12.0])


# ---------------------------------------------------------------- bad input
def test_tangent_shape_must_match_primal():
    with pytest.raises(cr.ShapeError,
                       match=r"jvp: the tangent of argument 0 \(x\) has shape \(3,\) but the primal has shape \(2,\)"):
        cr.jvp(lambda x: x * 2, (np.ones(2),), (np.ones(3),))
    with pytest.raises(cr.ShapeError, match="pass batched=True"):
        cr.jvp(lambda x: x * 2, (np.ones(2),), (np.ones((4, 2)),))
    with pytest.raises(cr.ShapeError, match=r"batched tangent of argument 0 \(x\) has shape \(2,\)"):
        cr.jvp(lambda x: x * 2, (np.ones(2),), (np.ones(2),), batched=True)
    with pytest.raises(cr.ShapeError, match=r"argument 1 \(y\) has 3 directions but an earlier one has 4"):
        cr.jvp(lambda x, y: x * y, (np.ones(2), np.ones(2)), (np.ones((4, 2)), np.ones((3, 2))), batched=True)
    with pytest.raises(cr.ShapeError, match=r"tangent of argument 0 \(p\) is a dict with keys \['a'\] "
                                            r"but the primal is a dict with keys \['a', 'b'\]"):
        cr.jvp(lambda p: p["a"], ({"a": 1.0, "b": 2.0},), ({"a": 1.0},))
    with pytest.raises(cr.ShapeError, match=r"argument 0 \(p\) at \['b'\] has shape \(3,\)"):
        cr.jvp(lambda p: p["a"], ({"a": 1.0, "b": np.ones(2)},), ({"a": 1.0, "b": np.ones(3)},))


def test_jvp_rejects_non_differentiable_inputs_naming_them():
    with pytest.raises(cr.DTypeError, match=r"jvp: argument 0 \(x\) has dtype int64"):
        cr.jvp(lambda x: x * 2, (np.array([1, 2]),), (np.ones(2),))
    with pytest.raises(cr.DTypeError, match=r"jvp: argument 1 \(y\) is the integer 3"):
        cr.jvp(lambda x, y: x * y, (1.0, 3), (1.0, 1.0))
    with pytest.raises(cr.DTypeError, match=r"jvp: argument 0 \(x\) has type str"):
        cr.jvp(lambda x: x, ("abc",), (1.0,))
    with pytest.raises(cr.DTypeError, match=r"jvp: argument 0 \(x\) is None"):
        cr.jvp(lambda x: x, (None,), (1.0,))
    with pytest.raises(cr.DTypeError, match=r"tangent of argument 0 \(x\) is None"):
        cr.jvp(lambda x: x, (1.0,), (None,))
    with pytest.raises(cr.DTypeError, match=r"tangent of argument 0 \(x\) has type str"):
        cr.jvp(lambda x: x, (1.0,), ("a",))
    with pytest.raises(TypeError, match=r"primals must be a tuple .* jvp\(f, \(x,\), \(v,\)\); got ndarray"):
        cr.jvp(lambda x: x, np.ones(2), (np.ones(2),))
    with pytest.raises(ValueError, match="2 primals but 1 tangents"):
        cr.jvp(lambda x, y: x, (1.0, 2.0), (1.0,))
    with pytest.raises(cr.ShapeError, match=r"Dual: the tangent of the primal has shape \(3,\)"):
        Dual(np.ones(2), np.ones(3))


# ---------------------------------------------------------------- random compositions
UNARY = [cr.tanh, cr.sin, cr.cos, cr.sigmoid, cr.softplus, cr.relu, lambda v: cr.exp(v * 0.3),
         lambda v: cr.log(v * v + 1), lambda v: cr.sqrt(v * v + 0.5), lambda v: v * v,
         lambda v: cr.softmax(v, axis=-1), lambda v: v - cr.logsumexp(v, axis=0, keepdims=True),
         lambda v: cr.transpose(v) @ v if cr.core.primitives.ndim_of(v) == 2 else v @ v]
BINARY = [cr.add, cr.subtract, cr.multiply, lambda a, b: a / (b * b + 1), cr.maximum]


@settings(max_examples=30, deadline=None)
@given(programs(len(UNARY), len(BINARY)), st.integers(0, 2 ** 32 - 1))
def test_random_compositions_forward_matches_reverse(program, seed):
    rng = np.random.default_rng(seed)
    x0 = rng.uniform(-1.5, 1.5, size=(3, 3))
    y0 = rng.uniform(-1.5, 1.5, size=(3,))

    def f(x, y):
        return run(program, x, y, UNARY, BINARY) * 2.0

    out = f(x0, y0)
    u = rng.standard_normal(np.shape(out))
    vx, vy = rng.standard_normal(x0.shape), rng.standard_normal(y0.shape)
    _, t = cr.jvp(f, (x0, y0), (vx, vy))
    _, vjp_fn = cr.vjp(f, x0, y0)
    gx, gy = vjp_fn(u)
    assert np.vdot(u, t) == pytest.approx(np.vdot(gx, vx) + np.vdot(gy, vy), rel=1e-9, abs=1e-9)
    # and a batch of directions at once equals them one by one
    _, tb = cr.jvp(f, (x0, y0), (np.stack([vx, -vx]), np.stack([vy, 2 * vy])), batched=True)
    np.testing.assert_allclose(tb[0], t, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(tb[1], cr.jvp(f, (x0, y0), (-vx, 2 * vy))[1], rtol=1e-9, atol=1e-9)


def test_identity_tangents_through_matmul_skip_the_product_and_stay_correct():
    X = rng.standard_normal((4, 3))
    Y = rng.standard_normal((3, 5))
    w = rng.standard_normal(3)
    J = cr.jacobian(lambda w: X @ w, mode="forward")(w)
    np.testing.assert_array_equal(J, X)
    assert not np.shares_memory(J, X)  # the Jacobian is the user's to change, X is not
    J2 = cr.jacobian(lambda v: v @ Y, mode="forward")(w)
    np.testing.assert_array_equal(J2, Y.T)
    assert not np.shares_memory(J2, Y)
    almost = np.eye(3)
    almost[0, 2] = 0.5  # not the identity: the product must be taken
    _, t = cr.jvp(lambda w: X @ w, (w,), (almost,), batched=True)
    np.testing.assert_allclose(t, almost @ X.T)
    _, t = cr.jvp(lambda w: w @ Y, (w,), (almost,), batched=True)
    np.testing.assert_allclose(t, almost @ Y)
