"""A value that carries a derivative never silently becomes a plain one: numpy's functions stay
differentiable or are refused, conversions (float, bool, np.asarray, math.*) are refused inside
a transformation, lists of traced values are stacked. The sweep runs every public numpy function
(listed from numpy itself) on every kind of traced value."""
import math
import warnings

import numpy as np
import pytest

import chainrule as cr
from chainrule.core.ops import NUMPY_FUNCTIONS
from chainrule.modes.symbolic import SymbolicError
from chainrule.testing import check_grads

X = np.array([0.3, -1.2, 0.7])
M = np.array([[0.5, -0.2, 0.9], [1.1, 0.4, -0.6]])


# ---------------------------------------------------------------- numpy's functions stay on the graph
DIFFERENTIABLE = {  # each was silently a constant before: its gradient came out zero
    "dot": lambda x: np.dot(x, x),
    "dot matrix": lambda x: np.sum(np.dot(M, x) ** 2),
    "reshape": lambda x: cr.sum(np.reshape(x, (3, 1)) * M.T),
    "ravel": lambda x: cr.sum(np.ravel(np.outer(x, x)) ** 2),
    "transpose": lambda x: cr.sum(np.transpose(np.outer(x, X)) * np.outer(X, X)),
    "swapaxes": lambda x: cr.sum(np.swapaxes(np.outer(x, X), 0, 1) * np.outer(X, X)),
    "concatenate": lambda x: cr.sum(np.concatenate([x, 2 * x]) ** 3),
    "stack": lambda x: cr.sum(np.stack([x, x * x], axis=1) * np.ones((3, 2))),
    "sum of a list": lambda x: np.sum(np.stack([x, 3 * x])) ** 2,
    "mean": lambda x: np.mean(x * x),
    "max": lambda x: np.max(x * X),
    "min": lambda x: np.min(x * X, axis=0),
    "var": lambda x: np.var(x),
    "std": lambda x: np.std(x, ddof=1),
    "clip": lambda x: cr.sum(np.clip(x, -1.0, 0.5) ** 2),
    "where": lambda x: cr.sum(np.where(X > 0, x * x, -x)),
    "broadcast_to": lambda x: cr.sum(np.broadcast_to(x, (2, 3)) * M),
    "linalg.norm": lambda x: np.linalg.norm(x),
    "linalg.norm Frobenius": lambda x: np.linalg.norm(np.outer(x, X)),
    "linalg.norm ord=3": lambda x: np.linalg.norm(x, ord=3),
    "linalg.solve": lambda x: cr.sum(np.linalg.solve(np.outer(x, X) + 3 * np.eye(3), X)),
    "square": lambda x: cr.sum(np.square(x)),
    "tensordot": lambda x: np.tensordot(np.outer(x, x), M.T @ M, axes=2),
    "moveaxis, expand_dims, squeeze": lambda x: cr.sum(np.squeeze(np.moveaxis(np.expand_dims(x, 0), 0, 1)) * X),
    # refused before chainrule.numpy gave them rules
    "einsum": lambda x: np.einsum("i,i", x, x),
    "cumsum": lambda x: cr.sum(np.cumsum(x) ** 2),
    "sort": lambda x: cr.sum(np.sort(x) * X),
}


@pytest.mark.parametrize("name", DIFFERENTIABLE)
def test_numpy_functions_stay_differentiable_in_every_mode(name):
    check_grads(DIFFERENTIABLE[name], X)  # reverse (functional), forward and eager against central differences
    t = cr.tensor(X, requires_grad=True)
    out = DIFFERENTIABLE[name](t)
    assert isinstance(out, cr.Tensor) and out.requires_grad, name


def test_eager_numpy_var_keeps_its_gradient():
    t = cr.tensor(X, requires_grad=True)
    loss = cr.sum(t * t) + np.var(t)
    loss.backward()
    np.testing.assert_allclose(t.grad.numpy(), 2 * X + 2 * (X - X.mean()) / 3, rtol=1e-13)
    d = np.dot(t, t)
    assert isinstance(d, cr.Tensor) and d.requires_grad and float(d) == pytest.approx(X @ X)


REFUSED = {  # each gave a silently wrong derivative before
    "fft": lambda x: cr.sum(np.real(np.fft.fft(x)) * X),
    "cumulative maximum": lambda x: cr.sum(np.maximum.accumulate(x) * X),
    "array of values": lambda x: cr.sum(np.array([x, x])),
    "sum of a list": lambda x: np.sum([x, 3 * x]),  # numpy converts the list itself: use cr.sum
    "asarray": lambda x: cr.sum(np.asarray(x) * x),
    "partition": lambda x: cr.sum(np.partition(x, 1) * X),
}


@pytest.mark.parametrize("name", REFUSED)
@pytest.mark.parametrize("mode", ["eager", "grad", "grad at a number", "jvp"])
def test_numpy_functions_without_a_rule_are_refused(name, mode):
    f = REFUSED[name]
    with pytest.raises(cr.ConcretizationError,
                       match=r"numpy\.\w+|Tensor that requires grad|has no derivative rule"):
        if mode == "eager":
            f(cr.tensor(X, requires_grad=True))
        elif mode == "grad":
            cr.grad(f)(X)
        elif mode == "grad at a number":
            cr.grad(lambda x: f(x * X))(0.5)
        else:
            cr.jvp(f, (X,), (np.ones(3),))


def test_numpy_functions_run_on_plain_values_without_a_derivative():
    for t in (cr.tensor(X), cr.tensor(X, requires_grad=True).detach()):
        assert np.partition(t, 1)[1] == pytest.approx(np.sort(X)[1])
        np.testing.assert_array_equal(np.maximum.accumulate(t), np.maximum.accumulate(X))
    w = cr.tensor(X, requires_grad=True)
    with cr.no_grad():
        np.testing.assert_array_equal(np.partition(w, 1), np.partition(X, 1))
        np.testing.assert_array_equal(np.asarray(w), X)
    assert np.argmax(w) == 2 and np.shape(w) == (3,)  # no derivative to lose: allowed while recording


# ---------------------------------------------------------------- conversions
CONVERSIONS = {
    "math.sin": math.sin,
    "float": lambda x: float(x) ** 2,
    "math.exp": lambda x: x * math.exp(x),
    "int": lambda x: x * int(x),
    "bool": lambda x: x if x else -x,
    "item": lambda x: x.item() * x,
    "tolist": lambda x: x * x.tolist(),
    "index": lambda x: [1.0, 2.0, 3.0][x] * x,
    "complex": lambda x: complex(x).real * x,
    "asarray": lambda x: np.asarray(x) * x,
}


@pytest.mark.parametrize("name", CONVERSIONS)
def test_conversions_inside_a_transformation_are_refused(name):
    f = CONVERSIONS[name]
    for run in (lambda: cr.grad(f)(1.0),  # the tape of numbers
                lambda: cr.grad(lambda x: f(x[0]))(np.array([1.0])),  # a Tensor of the transformation
                lambda: cr.jvp(f, (1.0,), (1.0,)),  # a Dual
                lambda: cr.hessian(lambda x: f(x))(1.0)):  # nested
        with pytest.raises(cr.ConcretizationError, match=r"x\.detach\(\) or cr\.stop_gradient\(x\)"):
            run()


def test_symbolic_values_refuse_conversions():
    for f in (math.sin, lambda x: float(x), lambda x: np.asarray(x)):
        with pytest.raises(cr.ConcretizationError):
            cr.symbolic.derivative(f)
    with pytest.raises(SymbolicError, match="no float value"):
        cr.symbolic.derivative(lambda x: float(x))


def test_values_without_a_derivative_convert_freely():
    # comparisons, detached values and stopped gradients are plain numbers on purpose
    def f(x):
        assert float(cr.stop_gradient(x)) == 2.0 and float(x.detach()) == 2.0
        return x * x if x > 0 else -x

    assert cr.grad(f)(2.0) == 4.0
    np.testing.assert_allclose(cr.grad(lambda x: cr.sum(x * x) if x[0] > 0 else 0.0)(1 - X), 2 * (1 - X))
    assert cr.jvp(f, (2.0,), (1.0,))[1] == 4.0


def test_eager_tensors_convert_as_in_pytorch():
    t = cr.tensor(X, requires_grad=True)
    loss = cr.sum(t * t)
    assert float(loss) == loss.item() == pytest.approx(X @ X) and bool(loss > 0) and int(loss) == 2
    assert loss.tolist() == pytest.approx(X @ X)
    with pytest.raises(cr.ConcretizationError, match=r"t\.detach\(\)\.numpy\(\)"):
        np.asarray(t)
    with pytest.raises(cr.ConcretizationError):
        np.array([t[0], t[1]])
    np.testing.assert_array_equal(t.numpy(), X)  # the explicit escape hatch
    np.testing.assert_array_equal(np.asarray(t.detach()), X)
    loss.backward()
    assert float(loss) == pytest.approx(X @ X)


@pytest.mark.parametrize("kind", ["number", "array"])
def test_stop_gradient_in_every_mode(kind):
    x0 = 3.0 if kind == "number" else np.array([3.0])

    def f(x):
        return cr.sum(x * cr.stop_gradient(x))  # d/dx (x c) with c = x: c

    np.testing.assert_allclose(cr.grad(f)(x0), 3.0)
    np.testing.assert_allclose(cr.jvp(f, (x0,), (np.ones_like(x0),))[1], 3.0)
    np.testing.assert_allclose(cr.hessian(f)(x0), np.zeros((1, 1)) if kind == "array" else 0.0)
    t = cr.tensor(x0, requires_grad=True)
    f(t).backward()
    np.testing.assert_allclose(t.grad.numpy(), 3.0)
    assert not cr.stop_gradient(t).requires_grad


# ---------------------------------------------------------------- chainrule's functions given lists
LISTS = {
    "sum": (cr.sum, lambda x: 4.0),
    "mean": (cr.mean, lambda x: 2.0),
    "max": (cr.max, lambda x: 3.0),
    "min": (cr.min, lambda x: 1.0),
    "logsumexp": (cr.logsumexp, lambda x: (math.exp(x) + 3 * math.exp(3 * x)) / (math.exp(x) + math.exp(3 * x))),
}


@pytest.mark.parametrize("name", LISTS)
def test_lists_of_traced_values_are_stacked(name):
    fn, want = LISTS[name]
    assert cr.grad(lambda x: fn([x, 3 * x]))(1.0) == pytest.approx(want(1.0), rel=1e-13)
    assert cr.grad(lambda x: fn((x, 3 * x)))(np.float64(1.0)) == pytest.approx(want(1.0), rel=1e-13)
    assert cr.jvp(lambda x: fn([x, 3 * x]), (1.0,), (1.0,))[1] == pytest.approx(want(1.0), rel=1e-13)
    t = cr.tensor(1.0, requires_grad=True)
    fn([t, 3 * t]).backward()
    assert float(t.grad) == pytest.approx(want(1.0), rel=1e-13)
    assert float(fn([1.0, 3.0])) == pytest.approx(float(fn(np.array([1.0, 3.0]))))  # plain lists as before


def test_a_list_of_rows_is_stacked():
    g = cr.grad(lambda x: cr.sum(cr.matmul([[x, 1.0], [2.0, x]], np.array([1.0, 2.0]))))(1.5)
    assert g == pytest.approx(3.0)


def test_a_list_beside_a_traced_argument_is_stacked_too():
    # concatenate gets x itself and a list of x's entries: the list's entries are inputs as well
    # (their derivative was dropped: d/dx sum = [1, 1] instead of [2, 3], in every mode but forward)
    f = lambda x: cr.sum(cr.concatenate([x, [x[0], 2 * x[1]]]))
    x = np.array([1.0, 2.0])
    np.testing.assert_allclose(cr.grad(f)(x), [2.0, 3.0], rtol=1e-13)
    t = cr.tensor(x, requires_grad=True)
    f(t).backward()
    np.testing.assert_allclose(t.grad.numpy(), [2.0, 3.0], rtol=1e-13)
    assert cr.grad(lambda s: cr.sum(cr.concatenate([cr.reshape(s, (1,)), [s, 2 * s]])))(1.0) == pytest.approx(4.0)
    check_grads(lambda x: cr.concatenate([x * x, [x[0] * x[1], 3.0]]), x, order=2)


# ---------------------------------------------------------------- the sweep: every numpy function
def _public_numpy_functions():
    """Every ufunc and every function numpy dispatches through __array_function__, in np and
    np.linalg, listed from numpy itself."""
    found = {}
    for module, prefix in ((np, "np."), (np.linalg, "np.linalg.")):
        for name in dir(module):
            if name.startswith("_"):
                continue
            obj = getattr(module, name)
            if isinstance(obj, np.ufunc) or hasattr(obj, "_implementation"):
                found.setdefault(obj, prefix + name)  # aliases (np.amax, np.max) once
    return {name: obj for obj, name in found.items()}


FUNCTIONS = _public_numpy_functions()
# Functions that write files or read them: a call with numbers for a file name would write to a
# file descriptor. They take no derivative either way.
FILES = {"np.save", "np.savez", "np.savez_compressed", "np.savetxt", "np.tofile", "np.fromfile", "np.load",
         "np.loadtxt", "np.genfromtxt", "np.fromregex", "np.memmap"}
CONVENTIONS = (lambda f, x: f(x), lambda f, x: f(x, x), lambda f, x: f(x, 1), lambda f, x: f(x, 0),
               lambda f, x: f([x, x]), lambda f, x: f(x, 0, 1), lambda f, x: f(x, x, x),
               lambda f, x: f(x, np.float64), lambda f, x: f("...", x))
H = 1e-6


def _weights(k, shape):
    return np.random.default_rng(k).uniform(0.5, 1.5, shape)


def _scalar(out):
    """A scalar that depends on every number in ``out`` (nested tuples of values): a fixed
    random weighting of each, computed with chainrule's functions (so it stays traced)."""
    total, k = 0.0, 0
    stack = [out]
    while stack:
        v = stack.pop()
        if isinstance(v, (list, tuple)):
            stack.extend(v)
            continue
        if isinstance(v, cr.Tensor) or type(v).__name__ == "Dual":
            dtype = v.dtype
        elif isinstance(v, (np.ndarray, np.generic, float, int)) and not isinstance(v, bool):
            v = np.asarray(v)
            dtype = v.dtype
        else:
            continue  # None, strings, dtypes, shapes' entries that are not numbers
        if dtype.kind not in "fiu":
            if dtype.kind == "c" and isinstance(v, np.ndarray):
                stack.extend([v.real, v.imag])
            elif dtype.kind == "b" and isinstance(v, np.ndarray):
                stack.append(v.astype(float))
            continue
        k += 1
        total = total + cr.sum(cr.multiply(_weights(k, np.shape(v)), v))
    return total


def _plain(f, conv, x0):
    with np.errstate(all="ignore"):
        return _scalar(conv(f, np.array(x0, copy=True)))


def _expected(f, conv, x0, v):
    """The value and the central-difference directional derivative of f at x0 along v."""
    y = _plain(f, conv, x0)
    d = (_plain(f, conv, x0 + H * v) - _plain(f, conv, x0 - H * v)) / (2 * H)
    return float(y), float(d)


def _kinds(f, conv, x0, v):
    """(what it gave, directional derivative) per kind of traced value; None where it raised."""
    g = lambda x: _scalar(conv(f, x))  # noqa: E731
    out = {}
    t = cr.tensor(x0, requires_grad=True)
    out["eager"] = _run(lambda: _eager(g, t, v))
    out["grad"] = _run(lambda: float(np.sum(cr.grad(g)(x0) * v)))
    if x0.shape == ():
        out["tape"] = _run(lambda: float(cr.grad(g)(float(x0)) * v))
    out["dual"] = _run(lambda: float(cr.jvp(g, (x0,), (v,))[1]))
    return out


def _eager(g, t, v):
    s = g(t)
    if isinstance(s, cr.Tensor) and s.requires_grad:
        s.backward()
        return float(np.sum(t.grad.numpy() * v)) if t.grad is not None else 0.0
    return 0.0  # a plain result: its derivative is taken to be zero, which the differences must confirm


class _Raised(Exception):
    pass


def _run(fn):
    try:
        with np.errstate(all="ignore"):
            return fn()
    except (TypeError, ValueError, cr.ChainruleError, ArithmeticError, IndexError, AttributeError,
            NotImplementedError, np.linalg.LinAlgError, RuntimeError):
        return _Raised


def _sweep():
    """Per function, the outcomes over the kinds of traced values ("differentiable", "raised",
    "constant"); and the failures: a derivative that differs from central differences."""
    rng = np.random.default_rng(0)
    outcomes = {}
    failures = []
    for name, f in sorted(FUNCTIONS.items()):
        if name in FILES or name in UNINITIALISED:
            continue
        for x0 in (np.float64(rng.uniform(0.2, 0.9)), rng.uniform(0.2, 0.9, 4), rng.uniform(0.2, 0.9, (3, 3))):
            for conv in CONVENTIONS:
                v = rng.uniform(-1, 1, np.shape(x0))
                try:
                    y, d = _expected(f, conv, x0, v)
                except Exception:
                    continue  # not a way to call this function on plain values
                if not (np.isfinite(y) and np.isfinite(d)):
                    continue
                for kind, got in _kinds(f, conv, x0, v).items():
                    if got is _Raised:
                        outcome = "raised"
                    elif abs(got - d) <= 1e-5 * (1 + abs(d)):
                        outcome = "constant" if got == 0.0 and abs(d) <= 1e-6 else "differentiable"
                    elif np.isnan(got) and (name, np.shape(x0)) in NOT_DIFFERENTIABLE_HERE:
                        outcome = "raised"  # NaN, not a number: a point where no derivative exists
                    else:
                        failures.append(f"{name} ({kind}, x of shape {np.shape(x0)}): derivative {got} but "
                                        f"central differences give {d}")
                        continue
                    outcomes.setdefault(name, set()).add(outcome)
                break  # the first convention numpy accepts
    return outcomes, failures


# np.std of one number is sqrt(0): its derivative is 0/0, as in PyTorch and JAX.
NOT_DIFFERENTIABLE_HERE = {("np.std", ())}
UNINITIALISED = {"np.empty_like"}  # its values are whatever memory held: nothing to compare


def test_every_numpy_function_is_differentiable_or_refused():
    with warnings.catch_warnings():  # numpy's own warnings about odd calls (cov of one row, ...)
        warnings.simplefilter("ignore")
        outcomes, failures = _sweep()
    assert not failures, "\n".join(failures)
    counts = {k: sum(1 for o in outcomes.values() if k in o) for k in ("differentiable", "raised", "constant")}
    print(f"numpy sweep: {len(outcomes)} of {len(FUNCTIONS)} functions called; with some kind of traced "
          f"value: {counts}")
    assert len(outcomes) > 250 and counts["differentiable"] > 40 and counts["raised"] > 100


def test_the_table_is_one_dict_of_numpy_callables():
    assert np.dot in NUMPY_FUNCTIONS and np.square in NUMPY_FUNCTIONS and np.einsum in NUMPY_FUNCTIONS
    assert np.partition not in NUMPY_FUNCTIONS
    assert all(callable(k) and callable(v) for k, v in NUMPY_FUNCTIONS.items())
