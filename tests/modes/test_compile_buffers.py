"""cr.compile's memory plan: arrays kept between calls, writes in place, and the fused softmax
cross-entropy; results never alias a kept array, arguments are never written, threads never share."""
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

import chainrule as cr
from chainrule.modes import compile as C

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "core"))
from test_primitives import CASES  # noqa: E402  (the registry's table of test cases, shared)

OVERRIDES = {("getitem", 0): lambda x: x[1:, ::2]}  # as in test_compile: the case makes a Tensor of its input
ALL_CASES = [(name, i, OVERRIDES.get((name, i), fn), args)
             for name, cases in CASES.items() for i, (fn, args) in enumerate(cases)]
IDS = [f"{name}-{i}" for name, i, _, _ in ALL_CASES]
rng = np.random.default_rng(7)


def close(a, b, tol=1e-12):
    from chainrule.modes.pytree import flatten

    la, da = flatten(a)
    lb, db = flatten(b)
    assert da == db
    for x, y in zip(la, lb):
        np.testing.assert_allclose(np.asarray(x, dtype=float), np.asarray(y, dtype=float), rtol=tol, atol=tol)


def mlp_sgd(rows, y, lr=0.1):
    """A ReLU network's SGD step with softmax cross-entropy, the parameters in and out as a list."""
    def loss(params, X):
        W1, b1, W2, b2 = params
        h = cr.relu(X @ W1 + b1)
        z = h @ W2 + b2
        return cr.mean(cr.logsumexp(z, axis=1) - z[rows, y])

    def sgd(params, X):
        value, grads = cr.value_and_grad(loss)(params, X)
        return value, [p - lr * g for p, g in zip(params, grads)]
    return sgd


def mlp_data(n=128, d=96, h=128, k=10):
    X = rng.standard_normal((n, d))
    y = rng.integers(0, k, n)
    params = [rng.standard_normal((d, h)) / np.sqrt(d), rng.standard_normal(h) * 0.1,
              rng.standard_normal((h, k)) / np.sqrt(h), rng.standard_normal(k) * 0.1]
    return X, y, params


def _all_arrays(tree):
    from chainrule.modes.pytree import flatten

    return [x for x in flatten(tree)[0] if isinstance(x, np.ndarray)]


# ---------------------------------------------------------------- arrays kept between calls
def test_large_temporaries_are_written_into_arrays_kept_between_calls():
    X, y, params = mlp_data()  # (128, 128) float64 hidden values: 128 KiB, kept
    sgd = mlp_sgd(np.arange(len(y)), y)
    c = cr.compile(sgd)
    assert c.buffers(params, X) == []  # traced, not run yet: no set made
    close(c(params, X), sgd(params, X))
    pool = c.buffers(params, X)
    assert len(pool) == 1 and len(pool[0]) >= 2
    ids = [id(b) for b in pool[0]]
    for _ in range(2):  # the 2nd and 3rd calls write into the same arrays
        close(c(params, X), sgd(params, X))
        assert [id(b) for b in c.buffers(params, X)[0]] == ids
    src = c.source(params, X)
    assert "= _bufs = _take()" in src and "out=_b0" in src and "_pool.append(_bufs)" in src
    # the product X @ W1 (no bias yet: the bias is added into the same array) is in the first one
    kept = c.buffers(params, X)[0]
    assert any(b.shape == (128, 128) for b in kept)


def test_results_never_alias_a_kept_array_and_arguments_are_never_written():
    X, y, params = mlp_data()
    sgd = mlp_sgd(np.arange(len(y)), y)
    c = cr.compile(sgd)
    saved = [p.copy() for p in params], X.copy()
    first = c(params, X)
    first_copy = [a.copy() for a in _all_arrays(first)]
    others = [p + 1.0 for p in params]
    c(others, X * 2)  # a second call with other values: the first results must not change
    for a, b in zip(_all_arrays(first), first_copy):
        np.testing.assert_array_equal(a, b)
    for p, s in zip(params, saved[0]):
        np.testing.assert_array_equal(p, s)
    np.testing.assert_array_equal(X, saved[1])
    kept = [b for s in c.buffers(params, X) for b in s]
    assert kept
    for a in _all_arrays(first) + _all_arrays(c(params, X)):
        assert not any(np.shares_memory(a, b) for b in kept)
        assert not any(np.shares_memory(a, p) for p in params + [X])


def test_two_threads_calling_one_compiled_function_never_share_arrays():
    X, y, params = mlp_data(n=128, d=32, h=128)
    sgd = mlp_sgd(np.arange(len(y)), y)
    c = cr.compile(sgd)
    inputs = [([p * s for p in params], X * s) for s in (1.0, -0.5)]
    want = [sgd(*a) for a in inputs]
    c(*inputs[0])
    errors = []
    start = threading.Barrier(2)

    def work(k):
        start.wait()
        for _ in range(100):
            got = c(*inputs[k])
            try:
                close(got, want[k], tol=1e-10)
            except AssertionError as err:
                errors.append(err)
                return

    threads = [threading.Thread(target=work, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]
    assert 1 <= len(c.buffers(*inputs[0])) <= 2  # one set per call that ran at once, given back


def test_a_call_while_the_set_is_in_use_makes_its_own_and_both_are_kept():
    W = rng.standard_normal((128, 128))
    f = cr.compile(cr.grad(lambda W: cr.sum(cr.tanh(W @ W) ** 2)))
    want = cr.grad(lambda W: cr.sum(cr.tanh(W @ W) ** 2))(W)
    close(f(W), want)
    pool = f.buffers(W)
    held = pool.pop()  # as if a call (another thread, a call inside this one) held the set
    close(f(W), want)
    assert len(pool) == 1 and all(a is not b for a, b in zip(pool[0], held))
    pool.append(held)
    close(f(W), want)
    assert len(pool) == 2


def test_inplace_false_keeps_no_arrays_and_writes_nothing_in_place():
    X, y, params = mlp_data()
    sgd = mlp_sgd(np.arange(len(y)), y)
    c = cr.compile(sgd, inplace=False)
    close(c(params, X), sgd(params, X))
    assert c.buffers(params, X) == []
    assert "out=" not in c.source(params, X) and "_take" not in c.source(params, X)


def test_small_programs_keep_no_arrays():
    f = cr.compile(cr.value_and_grad(lambda x: cr.sum(cr.tanh(x))))
    x = rng.standard_normal(16)
    f(x)
    assert f.buffers(x) == [] and "_take" not in f.source(x)


def test_memory_stays_flat_over_many_calls_with_kept_arrays():
    import tracemalloc

    X, y, params = mlp_data(n=128, d=16, h=128)
    c = cr.compile(mlp_sgd(np.arange(len(y)), y))
    state = params
    for _ in range(20):
        _, state = c(state, X)
    assert len(c.buffers(state, X)) == 1  # the kept arrays are in use: this measures them
    tracemalloc.start()
    try:
        for _ in range(50):
            _, state = c(state, X)
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(10_000):
            _, state = c(state, X)
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert after - before < 50_000  # no array, set or cache entry per call, over the 10,000 calls the issue names
    assert len(c.buffers(state, X)) == 1


# ---------------------------------------------------------------- every primitive, every array kept
@pytest.mark.parametrize("name,i,fn,args", ALL_CASES, ids=IDS)
def test_every_primitive_equals_eager_with_every_array_kept_and_written_in_place(monkeypatch, name, i, fn, args):
    """The table of the rule tests, with the size limit of kept arrays and in-place writes at one
    byte: every value the generator can write with out= is, on two calls in a row."""
    monkeypatch.setattr(C, "_REUSE_BYTES", 1)
    monkeypatch.setattr(C, "_KEEP_BYTES", 1)
    w = np.random.default_rng(3).standard_normal(np.shape(fn(*args)))

    def loss(*xs):
        return cr.sum(fn(*xs) * w)

    nums = tuple(range(len(args)))
    saved = [np.copy(a) for a in args]
    for f in (fn, cr.value_and_grad(loss, argnums=nums)):
        c = cr.compile(f)
        want = f(*args)
        first = c(*args)
        close(first, want)
        close(c(*args), want)
        close(first, want)  # the second call changed nothing the first returned
        assert isinstance(c.buffers(*args), list)
    for a, s in zip(args, saved):
        np.testing.assert_array_equal(a, s)


def test_the_table_exercises_kept_arrays(monkeypatch):
    monkeypatch.setattr(C, "_REUSE_BYTES", 1)
    monkeypatch.setattr(C, "_KEEP_BYTES", 1)
    kept = 0
    for name, i, fn, args in ALL_CASES:
        w = np.random.default_rng(3).standard_normal(np.shape(fn(*args)))
        c = cr.compile(cr.value_and_grad(lambda *xs: cr.sum(fn(*xs) * w), argnums=tuple(range(len(args)))))
        c(*args)
        kept += bool(c.buffers(*args))
    assert kept >= len(ALL_CASES) // 2


# ---------------------------------------------------------------- fusions
@pytest.mark.parametrize("axis,keepdims", [(1, False), (-1, True), (0, False), (None, False)])
def test_softmax_cross_entropy_is_fused_and_equals_eager(axis, keepdims):
    z = rng.standard_normal((64, 10)) * 3
    t = rng.standard_normal(np.shape(cr.logsumexp(z, axis=axis, keepdims=keepdims)))

    def f(z):
        return cr.sum(cr.logsumexp(z, axis=axis, keepdims=keepdims) * t) - cr.sum(z[:, 3])

    c = cr.compile(cr.value_and_grad(f))
    prog = c.program(z)
    assert prog.counts().get("logsumexp_softmax") == 1
    assert "logsumexp" not in prog.counts() and "exp" not in prog.counts()
    src = c.source(z)
    assert "# fused: logsumexp and the softmax" in src and "= logsumexp_softmax(z" in src
    close(c(z), cr.value_and_grad(f)(z))
    raw = cr.compile(cr.value_and_grad(f), passes=("simplify", "fold", "cse", "dce")).program(z)
    assert "logsumexp_softmax" not in raw.counts() and "exp" in raw.counts()


def test_fused_softmax_keeps_eager_values_at_infinities():
    z = rng.standard_normal((5, 4))
    z[1] = -np.inf
    z[2, 0] = np.inf
    z[3, 1] = np.nan
    f = cr.value_and_grad(lambda z: cr.sum(cr.logsumexp(z, axis=1)))
    with np.errstate(all="ignore"):
        got, want = cr.compile(f)(z), f(z)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_allclose(got[1], want[1], rtol=1e-12, atol=1e-12)  # NaN where eager has NaN


def test_fused_softmax_cross_entropy_is_updated_in_place_in_the_source():
    X, y, params = mlp_data()
    sgd = mlp_sgd(np.arange(len(y)), y)
    src = cr.compile(sgd).source(params, X)
    lines = src.splitlines()
    fused = next(i for i, line in enumerate(lines) if "logsumexp_softmax(" in line)
    soft = lines[fused].split("=")[0].split(",")[1].strip()
    after = "\n".join(lines[fused + 1:])
    assert f"out={soft})" in after  # the softmax's cotangent written over it: softmax/n - onehot/n


def test_bias_add_is_written_into_the_products_array():
    X, y, params = mlp_data()
    sgd = mlp_sgd(np.arange(len(y)), y)
    c = cr.compile(sgd)
    src = c.source(params, X)
    product = next(line for line in src.splitlines() if "matmul(X, params_0, out=_b" in line)
    name = product.split("=")[0].strip()
    assert f"add({name}, params_1, out={name})  # the bias added into the product's array" in src
    close(c(params, X), sgd(params, X))


def test_linear_written_into_a_kept_array_equals_its_impl():
    x, w, b = rng.standard_normal((128, 64)), rng.standard_normal((96, 64)), rng.standard_normal(96)
    f = lambda x, w, b: cr.sum(cr.tanh(cr.nn.functional.linear(x, w, b)))  # noqa: E731
    c = cr.compile(cr.value_and_grad(f, argnums=(0, 1, 2)))
    assert "out=_b" in c.source(x, w, b) and "the bias added into the product's array" in c.source(x, w, b)
    for _ in range(2):
        close(c(x, w, b), cr.value_and_grad(f, argnums=(0, 1, 2))(x, w, b))


@pytest.mark.timeout(30)
def test_argument_names_with_underscores_are_renamed():
    c = cr.compile(lambda _x, __y: _x * __y)
    close(c(np.ones(3), np.full(3, 2.0)), np.full(3, 2.0))
    assert "def " in c.source(np.ones(3), np.full(3, 2.0))


# ---------------------------------------------------------------- rewrites of products
def test_a_number_times_a_product_scales_the_smaller_operand():
    X, y, params = mlp_data(n=32, d=160, h=128)  # W1's gradient X.T @ g: (160, 128), g (32, 128), X.T (160, 32)
    sgd = mlp_sgd(np.arange(len(y)), y, lr=0.1)
    c = cr.compile(sgd)
    prog = c.program(params, X)
    scaled = [e for e in prog.eqns if e.prim.name == "multiply"
              and any(type(v) is C.Lit and type(v.value) is float and v.value == 0.1 for v in e.ins)]
    assert all(e.out.shape != (160, 128) for e in scaled) and any(e.out.shape == (32, 128) for e in scaled)
    raw = cr.compile(sgd, passes=("simplify", "fold", "cse", "dce")).program(params, X)
    assert any(e.prim.name == "multiply" and e.out.shape == (160, 128) for e in raw.eqns)
    close(c(params, X), sgd(params, X))


def test_a_transposed_product_is_computed_in_the_transposed_layout():
    x = rng.standard_normal((64, 96))
    w, b = rng.standard_normal((128, 96)) / 10, rng.standard_normal(128)

    def step(w, b):  # cr.nn's (out, in) layout: the gradient of w is (x.T @ g).T
        value, (gw, gb) = cr.value_and_grad(lambda w, b: cr.sum(cr.tanh(cr.nn.functional.linear(x, w, b)) ** 2),
                                            argnums=(0, 1))(w, b)
        return value, w - 0.5 * gw, b - 0.5 * gb

    c = cr.compile(step)
    prog = c.program(w, b)
    new_w = prog.eqns[[e.out for e in prog.eqns].index(prog.outs[1])]
    assert new_w.prim.name == "subtract"
    made = {e.out: e for e in prog.eqns}
    assert made[new_w.ins[1]].prim.name == "matmul"  # not a transposed view of one
    close(c(w, b), step(w, b))


def test_column_sums_are_a_product_with_ones_and_equal_eager():
    X = rng.standard_normal((50, 3))
    X[4, 1] = np.inf
    X[7, 2] = np.nan
    f = cr.grad(lambda b: cr.sum(cr.sin(X + b) * X))
    c = cr.compile(f)
    with np.errstate(invalid="ignore"):
        assert "# column sums: ones @" in c.source(np.zeros(3))
        close(c(np.zeros(3)), f(np.zeros(3)))
        close(c(np.ones(3)), f(np.ones(3)))


def test_reshapes_of_reshapes_and_slices_of_the_whole_array_are_removed():
    x = rng.standard_normal((2, 3))

    def f(x):
        return cr.sin(x.reshape(6, 1).reshape(2, 3)[0:2, :]) + x.reshape(3, 2).reshape(1, 6)[..., :3]

    c = cr.compile(f)
    assert c.program(x).counts() == {"sin": 1, "reshape": 1, "getitem": 1, "add": 1}
    raw = cr.compile(f, passes=()).program(x).counts()
    assert raw["reshape"] == 4 and raw["getitem"] == 2
    close(c(x), f(x))
    close(cr.compile(cr.grad(lambda x: cr.sum(f(x) ** 2)))(x), cr.grad(lambda x: cr.sum(f(x) ** 2))(x))


def test_a_number_times_column_sums_is_one_product_with_a_row_of_that_number():
    X, y, params = mlp_data(n=32, d=16, h=24)
    sgd = mlp_sgd(np.arange(len(y)), y, lr=0.25)
    c = cr.compile(sgd)
    prog = c.program(params, X)
    assert "sum" not in prog.counts()  # every bias gradient: 0.25 * sum(g, axis=0) as a row of 0.25 @ g
    assert "0.25 * column sums of" in c.source(params, X)
    close(c(params, X), sgd(params, X))


def test_a_square_product_is_never_written_into_its_own_operand():
    # numpy computes matmul(a, b, out=a) through a copy of a: a product gets an array of its own
    a, b = rng.standard_normal((96, 96)), rng.standard_normal((96, 96))
    f = lambda a, b: cr.sum(cr.tanh((a * 0.01) @ b) * a)  # noqa: E731
    c = cr.compile(f)
    src = c.source(a, b)
    assert "matmul(v1, b, out=v1)" not in src and "matmul(v1, b, out=_b" in src
    close(c(a, b), f(a, b))


@pytest.mark.parametrize("floats", [True, False])
def test_a_constant_result_is_a_new_array_on_each_call_read_when_traced(floats):
    table = np.arange(3.0)

    def f(x):
        return cr.sum(x * x), table, cr.exp(np.zeros(2))  # captured, and computed from constants

    c = cr.compile(f, floats=floats)
    x = np.float64(2.0)
    first = c(x)
    table[:] = -1.0  # after tracing: a constant of the program keeps the value it had
    first[1][:] = 7.0  # the caller writes a result: the next call's result is not that array
    first[2][:] = 7.0
    _, t, e = c(x)
    np.testing.assert_array_equal(t, np.arange(3.0))
    np.testing.assert_array_equal(e, np.ones(2))
    assert t is not first[1] and e is not first[2]
