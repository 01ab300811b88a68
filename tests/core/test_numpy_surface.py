"""chainrule.numpy: numpy's results on plain data and on chainrule values, derivatives in every
mode for every differentiable function it exports, cross-checks against HIPS autograd and
PyTorch, the Tensor methods numpy users reach for, and the README's generated coverage table."""
import pathlib
import re

import numpy as np
import pytest

import chainrule as cr
import chainrule.numpy as cnp
from chainrule.testing import check_grads

rng = np.random.default_rng(7)
A = rng.uniform(0.2, 0.9, (3, 4))   # inside every elementwise function's domain
B = rng.uniform(0.2, 0.9, (3, 4))
S = rng.uniform(0.2, 0.9, (3, 3))
V = rng.uniform(0.2, 0.9, 3)
W = rng.uniform(0.2, 0.9, 4)
ABOVE_ONE = {"arccosh", "acosh"}  # domain x >= 1

# name -> (call(f, *args), args): how each non-ufunc function is called (ufuncs: f(A) or f(A, B)).
CALLS = {
    "all": (lambda f, x: f(x > 0.5, axis=0), (A,)),
    "allclose": (lambda f, x, y: f(x, y), (A, B)),
    "amax": (lambda f, x: f(x, axis=-1), (A,)),
    "amin": (lambda f, x: f(x, axis=0, keepdims=True), (A,)),
    "any": (lambda f, x: f(x > 0.8), (A,)),
    "append": (lambda f, x, y: f(x, y, axis=0), (A, B)),
    "argmax": (lambda f, x: f(x, axis=1), (A,)),
    "argmin": (lambda f, x: f(x), (A,)),
    "argsort": (lambda f, x: f(x, axis=0), (A,)),
    "argwhere": (lambda f, x: f(x > 0.5), (A,)),
    "around": (lambda f, x: f(x * 10, 1), (A,)),
    "array": (lambda f, x, y: f([x, y], dtype=np.float32, ndmin=4), (A, B)),
    "array_equal": (lambda f, x: f(x, x), (A,)),
    "array_equiv": (lambda f, x, y: f(x, y), (A, B)),
    "array_split": (lambda f, x: f(x, 3, axis=1), (A,)),
    "asanyarray": (lambda f, x: f(x), (A,)),
    "asarray": (lambda f, x: f(x, np.float32), (A,)),
    "ascontiguousarray": (lambda f, x: f(x), (A,)),
    "astype": (lambda f, x: f(x, np.float32), (A,)),
    "atleast_1d": (lambda f, x: f(x[0, 0]), (A,)),
    "atleast_2d": (lambda f, x: f(x[0]), (A,)),
    "atleast_3d": (lambda f, x: f(x), (A,)),
    "average": (lambda f, x, y: f(x, axis=1, weights=y), (A, B)),
    "broadcast_to": (lambda f, x: f(x[0], (2, 3, 4)), (A,)),
    "can_cast": (lambda f, x: f(x, np.float32), (A,)),
    "clip": (lambda f, x: f(x, 0.3, 0.6), (A,)),
    "column_stack": (lambda f, x, y: f([x[0], y[0]]), (A, B)),
    "concat": (lambda f, x, y: f([x, y], axis=1), (A, B)),
    "concatenate": (lambda f, x, y: f((x, y), axis=None), (A, B)),
    "count_nonzero": (lambda f, x: f(x > 0.5), (A,)),
    "cross": (lambda f, x, y: f(x[:, :3], y[:, 1:]), (A, B)),
    "cumprod": (lambda f, x: f(x, axis=1), (A,)),
    "cumsum": (lambda f, x: f(x), (A,)),
    "diag": (lambda f, x: f(x, -1), (V,)),
    "diagonal": (lambda f, x: f(x, 1), (A,)),
    "diff": (lambda f, x: f(x, 2, axis=0, prepend=0.5), (A,)),
    "digitize": (lambda f, x: f(x, [0.3, 0.6]), (A,)),
    "dot": (lambda f, x, y: f(x, y.T), (A, B)),
    "dsplit": (lambda f, x: f(x.reshape(1, 3, 4), 2)[1], (A,)),
    "dstack": (lambda f, x, y: f([x, y]), (A, B)),
    "einsum": (lambda f, x, y: f("ij,kj", x, y), (A, B)),
    "empty_like": (lambda f, x: f(x).shape, (A,)),
    "expand_dims": (lambda f, x: f(x, (0, -1)), (A,)),
    "fix": (lambda f, x: f(x * 5 - 2), (A,)),
    "flatnonzero": (lambda f, x: f(x > 0.5), (A,)),
    "flip": (lambda f, x: f(x, -1), (A,)),
    "fliplr": (lambda f, x: f(x), (A,)),
    "flipud": (lambda f, x: f(x), (A,)),
    "full": (lambda f, x: f((2, 3), x[0, 1]), (A,)),
    "gradient": (lambda f, x: f(x, 0.5), (A,)),
    "linspace": (lambda f, x, y: f(x[0], y[0], 5, axis=1), (A, B)),
    "rollaxis": (lambda f, x: f(x.reshape(3, 2, 2), 2), (A,)),
    "hsplit": (lambda f, x: f(x, [1, 3])[2], (A,)),
    "hstack": (lambda f, x, y: f((x, y)), (A, B)),
    "inner": (lambda f, x, y: f(x, y), (A, B)),
    "isclose": (lambda f, x, y: f(x, y, atol=0.1), (A, B)),
    "iscomplex": (lambda f, x: f(x), (A,)),
    "iscomplexobj": (lambda f, x: f(x), (A,)),
    "isneginf": (lambda f, x: f(np.log(x - 0.5)), (A,)),
    "isposinf": (lambda f, x: f(x), (A,)),
    "isreal": (lambda f, x: f(x), (A,)),
    "isrealobj": (lambda f, x: f(x), (A,)),
    "kron": (lambda f, x, y: f(x[:2, :2], y), (A, B)),
    "lexsort": (lambda f, x: f(x), (A,)),
    "matrix_transpose": (lambda f, x: f(x), (A,)),
    "matmul": (lambda f, x, y: f(x, y.T), (A, B)),
    "max": (lambda f, x: f(x, axis=(0, 1)), (A,)),
    "may_share_memory": (lambda f, x, y: f(x, y), (A, B)),
    "mean": (lambda f, x: f(x, axis=-1, dtype=np.float64), (A,)),
    "median": (lambda f, x: f(x, axis=0, keepdims=True), (A,)),
    "min": (lambda f, x: f(x, -2), (A,)),
    "min_scalar_type": (lambda f, x: f(x), (A,)),
    "moveaxis": (lambda f, x: f(x.reshape(3, 2, 2), 0, -1), (A,)),
    "nan_to_num": (lambda f, x: f(np.log(x - 0.5), neginf=-7.0), (A,)),
    "ndim": (lambda f, x: f(x), (A,)),
    "nonzero": (lambda f, x: f(x > 0.5), (A,)),
    "ones_like": (lambda f, x: f(x), (A,)),
    "outer": (lambda f, x, y: f(x, y), (V, W)),
    "pad": (lambda f, x: f(x, ((1, 0), (2, 1)), mode="reflect"), (A,)),
    "permute_dims": (lambda f, x: f(x, (1, 0)), (A,)),
    "prod": (lambda f, x: f(x, axis=1, keepdims=True), (A,)),
    "ptp": (lambda f, x: f(x, axis=0), (A,)),
    "ravel": (lambda f, x: f(x), (A,)),
    "real": (lambda f, x: f(x), (A,)),
    "repeat": (lambda f, x: f(x, 2, axis=0), (A,)),
    "reshape": (lambda f, x: f(x, (2, -1)), (A,)),
    "result_type": (lambda f, x: f(x, np.float32), (A,)),
    "roll": (lambda f, x: f(x, (1, -2), axis=(0, 1)), (A,)),
    "rot90": (lambda f, x: f(x, 3), (A,)),
    "round": (lambda f, x: f(x * 100, -1), (A,)),
    "searchsorted": (lambda f, x: f(np.sort(x[0]), 0.5), (A,)),
    "shape": (lambda f, x: f(x), (A,)),
    "shares_memory": (lambda f, x, y: f(x, y), (A, B)),
    "sinc": (lambda f, x: f(x), (A,)),
    "size": (lambda f, x: f(x), (A,)),
    "sort": (lambda f, x: f(x, axis=None), (A,)),
    "split": (lambda f, x: f(x, 2, axis=1)[1], (A,)),
    "squeeze": (lambda f, x: f(x[:1]), (A,)),
    "stack": (lambda f, x, y: f([x, y], axis=-1), (A, B)),
    "std": (lambda f, x: f(x, axis=0, ddof=1), (A,)),
    "sum": (lambda f, x: f(x, axis=(-1,), keepdims=True), (A,)),
    "swapaxes": (lambda f, x: f(x, axis1=0, axis2=1), (A,)),
    "take_along_axis": (lambda f, x: f(x, np.argsort(np.asarray(A), axis=1), axis=1), (A,)),
    "tensordot": (lambda f, x, y: f(x, y, axes=([0], [0])), (A, B)),
    "tile": (lambda f, x: f(x, (2, 1, 2)), (A,)),
    "trace": (lambda f, x: f(x, offset=1), (A,)),
    "transpose": (lambda f, x: f(x), (A,)),
    "tril": (lambda f, x: f(x, -1), (A,)),
    "triu": (lambda f, x: f(x, 1), (A,)),
    "var": (lambda f, x: f(x, axis=1), (A,)),
    "vdot": (lambda f, x, y: f(x, y), (A, B)),
    "vsplit": (lambda f, x: f(x, 3)[0], (A,)),
    "vstack": (lambda f, x, y: f([x, y]), (A, B)),
    "where": (lambda f, x, y: f(x > 0.5, x, y), (A, B)),
    "zeros_like": (lambda f, x: f(x), (A,)),
}


def case(name):
    fn = getattr(np, name)
    if name in CALLS:
        return CALLS[name]
    if isinstance(fn, np.ufunc):
        x = A + 1.0 if name in ABOVE_ONE else A
        return (lambda f, x: f(x), (x,)) if fn.nin == 1 else (lambda f, x, y: f(x, y), (x, B))
    raise AssertionError(f"no test call for chainrule.numpy.{name}")


def _plain(out):
    """numpy's form of a result: chainrule values as their arrays, lists and tuples item by item."""
    if isinstance(out, (list, tuple)):
        return type(out)(_plain(o) for o in out)
    return out.numpy() if isinstance(out, cr.Tensor) else out


def _same(got, want, name):
    if isinstance(want, (list, tuple)):
        assert len(got) == len(want), name
        for g, w in zip(got, want):
            _same(g, w, name)
        return
    if isinstance(want, (np.dtype, type)) or want is None:
        assert got == want, name
        return
    w = np.asarray(want)
    g = np.asarray(got)
    assert g.shape == w.shape, f"{name}: shape {g.shape} vs numpy's {w.shape}"
    assert g.dtype == w.dtype, f"{name}: dtype {g.dtype} vs numpy's {w.dtype}"
    np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-14, err_msg=name)


def test_every_export_has_a_test_call():
    missing = [n for n in cnp.__all__ if n not in CALLS and not isinstance(getattr(np, n), np.ufunc)]
    assert not missing, f"chainrule.numpy functions without a test call: {missing}"


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("name", cnp.__all__)
def test_matches_numpy_on_plain_data_and_on_chainrule_values(name):
    call, args = case(name)
    want = call(getattr(np, name), *args)
    with np.errstate(all="ignore"):
        _same(call(getattr(cnp, name), *args), want, name)  # plain arrays: numpy's own result
        # chainrule values (Tensors without a gradient): computed from the registry's primitives
        _same(_plain(call(getattr(cnp, name), *[cr.tensor(a) for a in args])), want, name)


def _scalar_of(out):
    """A number that depends on every float entry of a result (for gradient checks)."""
    if isinstance(out, (list, tuple)):
        return sum(_scalar_of(o) for o in out)
    w = np.cos(np.arange(int(np.prod(np.shape(out))))).reshape(np.shape(out)) + 1.5
    return cr.sum(cr.multiply(out, w))


DIFFERENTIABLE = [n for n in cnp.__all__ if cnp.kind(n) in ("primitive", "composition")
                  and n not in ("astype",)]  # astype to float32: checked to first order below


@pytest.mark.parametrize("name", DIFFERENTIABLE)
def test_derivatives_in_every_mode(name):
    """Every differentiable export: reverse (eager and functional) and forward mode against central
    differences, and second derivatives (forward over reverse)."""
    call, args = case(name)
    if name in ("array", "asarray"):  # float32 by request: differences in float64 only
        call = {"array": lambda f, x, y: f([x, y], ndmin=4), "asarray": lambda f, x: f(x)}[name]
    f = getattr(cnp, name)
    smooth = name not in {"abs", "absolute", "fabs", "amax", "amin", "max", "min", "ptp", "clip", "maximum",
                          "minimum", "fmax", "fmin", "sign", "median", "sort", "round", "around", "rint",
                          "floor", "ceil", "trunc", "fix", "floor_divide", "mod", "remainder", "fmod"}
    with np.errstate(all="ignore"):
        check_grads(lambda *xs: _scalar_of(call(f, *xs)), *args, order=2 if smooth else 1)


def test_astype_keeps_its_gradient():
    check_grads(lambda x: cr.sum(cnp.astype(x * x, np.longdouble).astype(np.float64) * x), A)


# ---------------------------------------------------------------- what the issue asked for, by name
def test_building_arrays_from_differentiable_values():
    g = cr.grad(lambda x: cnp.sum(cnp.array([[x, 2 * x], [x * x, 1.0]]) ** 2))(1.5)
    assert g == pytest.approx(2 * 1.5 + 8 * 1.5 + 4 * 1.5 ** 3)
    g = cr.grad(lambda x: cnp.sum(cnp.vstack([x, x ** 2])[1]) + cnp.sum(cnp.hstack([x, x])))(V)
    np.testing.assert_allclose(g, 2 * V + 2)
    parts = cnp.split(cr.tensor(A, requires_grad=True), [1, 3], axis=1)
    assert [p.shape for p in parts] == [(3, 1), (3, 2), (3, 1)] and all(p.requires_grad for p in parts)
    assert cnp.append(cr.tensor(V), 1.0).shape == (4,)


def test_swapaxes_takes_numpys_keywords_and_where_one_argument():
    t = cr.tensor(A)
    assert cnp.swapaxes(t, axis1=0, axis2=1).shape == (4, 3)
    assert cr.swapaxes(t, axis1=1, axis2=0).shape == (4, 3)
    np.testing.assert_array_equal(cnp.where(t > 0.5)[0], np.where(A > 0.5)[0])


def test_tensor_methods():
    t = cr.tensor(A)
    for method, args in {"ravel": (), "flatten": (), "squeeze": (), "clip": (0.3, 0.6), "prod": (), "var": (),
                         "std": (), "cumsum": (), "cumprod": (1,), "dot": (B.T,), "diagonal": (), "trace": (),
                         "repeat": (2,), "round": (1,), "swapaxes": (0, 1)}.items():
        np.testing.assert_allclose(getattr(t, method)(*args).numpy(), getattr(A, method)(*args), rtol=1e-12,
                                   err_msg=method)
    assert cr.tensor(A[:1]).squeeze().shape == (4,)
    assert t.astype(np.float32).dtype == np.float32
    assert cr.tensor(2.5).item() == 2.5 and t.tolist() == A.tolist()
    # differentiable: d/dx var(x) = 2 (x - mean) / n
    x = cr.tensor(V, requires_grad=True)
    (x.var() + x.std() * 0 + x.prod() + x.cumsum().sum() + x.dot(x)).backward()
    want = 2 * (V - V.mean()) / 3 + np.prod(V) / V + np.arange(3, 0, -1) + 2 * V
    np.testing.assert_allclose(x.grad.numpy(), want, rtol=1e-12)
    check_grads(lambda v: v.std(ddof=1) + v.clip(0.3, 0.6).sum() + v.ravel().prod(), V)


def test_modulo_operator_and_numpys_own_function_agree():
    x = cr.tensor(A * 5, requires_grad=True)
    y = x % 0.7
    np.testing.assert_allclose(y.numpy(), (A * 5) % 0.7)
    cr.sum(y).backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.ones_like(A))
    # np.X on chainrule values and chainrule.numpy.X: one table, one answer
    for name in ("cumsum", "tan", "kron", "sort", "einsum"):
        call, args = case(name)
        ts = [cr.tensor(a) for a in args]
        np.testing.assert_array_equal(_plain(call(getattr(np, name), *ts)), _plain(call(getattr(cnp, name), *ts)))


def test_fmax_ignores_nan_and_its_derivative_goes_to_the_number():
    x = cr.tensor([np.nan, 1.0, 2.0], requires_grad=True)
    y = cr.tensor([1.0, np.nan, 2.0], requires_grad=True)
    cr.sum(cnp.fmax(x, y)).backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 1.0, 0.5])
    np.testing.assert_array_equal(y.grad.numpy(), [1.0, 0.0, 0.5])


def test_what_chainrule_cannot_differentiate_is_refused_and_works_on_plain_data():
    x = cr.tensor(V, requires_grad=True)
    with pytest.raises(cr.ConcretizationError, match=r"numpy\.partition has no derivative rule"):
        cnp.partition(x, 1)
    with pytest.raises(cr.ConcretizationError, match="numpy.partition"):
        cr.grad(lambda v: cr.sum(cnp.partition(v, 1)))(V)
    np.testing.assert_array_equal(cnp.partition(V, 1), np.partition(V, 1))
    with pytest.raises(TypeError, match="mode='maximum' is not supported"):
        cnp.pad(x, 1, mode="maximum")
    np.testing.assert_array_equal(cnp.pad(V, 1, mode="maximum"), np.pad(V, 1, mode="maximum"))
    assert cnp.pi == np.pi and cnp.float32 is np.float32 and cnp.newaxis is None
    with pytest.raises(AttributeError, match="no attribute 'not_a_numpy_name'"):
        cnp.not_a_numpy_name  # noqa: B018


def test_reachable_as_cr_names():
    assert cr.cumsum is cnp.cumsum and cr.einsum is cnp.einsum and cr.numpy is cnp
    np.testing.assert_allclose(cr.grad(lambda x: cr.sum(cr.log1p(x) * cr.arctan(x)))(V),
                               np.arctan(V) / (1 + V) + np.log1p(V) / (1 + V * V), rtol=1e-12)


def test_symbolic_forms_of_the_elementwise_primitives():
    sp = pytest.importorskip("sympy")
    x, y = sp.symbols("x y")
    for name in ("tan", "sinh", "arcsin", "log1p", "expm1", "log10", "arctan2", "hypot", "logaddexp"):
        prim = cr.REGISTRY[name]
        args = (x,) if len(prim.vjps) == 1 else (y, x)
        expr = prim.sym(sp, *args)
        vals = (0.3,) if len(args) == 1 else (0.4, 0.7)
        got = float(expr.subs(dict(zip(args, vals))))
        assert got == pytest.approx(float(prim.impl(*vals)), rel=1e-12), name


# ---------------------------------------------------------------- cross-checks against the peers
GRAD_CASES = {
    "cumsum": lambda m: m.sum(m.cumsum(m.sin(X0) + 1.5, axis=1) ** 2),  # autograd has no cumprod rule
    "prod": lambda m: m.prod(X0 * 2, axis=0).sum(),
    "var_std": lambda m: m.var(X0, axis=1).sum() + m.std(X0),
    "einsum": lambda m: m.einsum("ij,kj->ik", X0, X0).sum(),
    "kron": lambda m: (m.kron(X0, X0) ** 2).sum(),
    "arctan2_hypot": lambda m: (m.arctan2(X0, X0 + 1) * m.hypot(X0, 2.0)).sum(),
    "logaddexp_log1p": lambda m: (m.logaddexp(X0, -X0) + m.log1p(X0 ** 2) + m.expm1(X0)).sum(),
    "tile_roll_pad": lambda m: (m.tile(X0, (2, 1)) ** 3).sum() + (m.roll(X0, 1, axis=1) * X0).sum()
    + (m.pad(X0, 1, mode="constant") ** 2).sum(),
    "trace_diag_tril": lambda m: m.trace(X0[:, :3]) + (m.diag(X0[:, 0]) ** 2).sum() + (m.tril(X0[:, :3]) ** 3).sum(),
    "sort_diff": lambda m: (m.diff(m.sort(X0[0] * X0[1])) ** 2).sum(),
    "cross": lambda m: (m.cross(X0[:, :3], X0[:, 1:]) ** 2).sum(),
}
X0 = None  # the argument, bound per call below


def _grad_with(module, grad, fn, x):
    global X0
    def f(v):
        global X0
        X0 = v
        return fn(module)
    try:
        return np.asarray(grad(f)(x))
    finally:
        X0 = None


@pytest.mark.parametrize("name", GRAD_CASES)
def test_gradients_agree_with_hips_autograd(name):
    autograd = pytest.importorskip("autograd")
    import autograd.numpy as anp
    want = _grad_with(anp, autograd.grad, GRAD_CASES[name], A)
    got = _grad_with(cnp, cr.grad, GRAD_CASES[name], A)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


TORCH_CASES = {
    "tan": ("tan", "tan"), "sinh": ("sinh", "sinh"), "arcsin": ("arcsin", "asin"), "arctanh": ("arctanh", "atanh"),
    "log1p": ("log1p", "log1p"), "expm1": ("expm1", "expm1"), "log10": ("log10", "log10"), "exp2": ("exp2", "exp2"),
    "sinc": ("sinc", "sinc"), "cumsum": ("cumsum", "cumsum"), "cumprod": ("cumprod", "cumprod"), "prod": ("prod", "prod"),
}


@pytest.mark.parametrize("name", TORCH_CASES)
def test_gradients_agree_with_pytorch(name):
    torch = pytest.importorskip("torch")
    ours, theirs = TORCH_CASES[name]
    # sinc at 0; a zero in prod (cumprod divides by x: see its docstring)
    x = np.concatenate([A.ravel()[:5], [0.0 if ours != "cumprod" else 0.5]])
    extra = {"axis": 0} if ours in ("cumsum", "cumprod", "prod") else {}
    got = cr.grad(lambda v: cr.sum(getattr(cnp, ours)(v, **extra) ** 2))(x)
    t = torch.tensor(x, requires_grad=True)
    f = getattr(torch, theirs)
    ((f(t, dim=0) if extra else f(t)) ** 2).sum().backward()
    np.testing.assert_allclose(got, t.grad.numpy(), rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------- the README's table
def test_readme_coverage_table_is_the_generated_one():
    readme = (pathlib.Path(__file__).parents[2] / "README.md").read_text()
    found = re.search(r"<!-- coverage:begin -->\n(.*?)\n<!-- coverage:end -->", readme, re.S)
    assert found, "README.md lacks the chainrule.numpy coverage table"
    assert found.group(1) == cnp.coverage_table(), ("README's coverage table is out of date: regenerate it with "
                                                    "`python -m chainrule.numpy`")
