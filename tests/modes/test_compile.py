"""cr.compile: traced programs equal eager chainrule, the cache, the passes and the clear limits."""
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import chainrule as cr
from chainrule.core.errors import ConcretizationError
from chainrule.modes import compile as C
from compositions import programs, run

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "core"))
from test_primitives import CASES  # noqa: E402  (the registry's table of test cases, shared)

OVERRIDES = {("getitem", 0): lambda x: x[1:, ::2]}
ALL_CASES = [(name, i, OVERRIDES.get((name, i), fn), args)
             for name, cases in CASES.items() for i, (fn, args) in enumerate(cases)]
IDS = [f"{name}-{i}" for name, i, _, _ in ALL_CASES]


def close(a, b, tol=1e-12):
    la, da = _flatten(a)
    lb, db = _flatten(b)
    assert da == db
    for x, y in zip(la, lb):
        np.testing.assert_allclose(np.asarray(x, dtype=float), np.asarray(y, dtype=float), rtol=tol, atol=tol)


def _flatten(t):
    from chainrule.modes.pytree import flatten
    return flatten(t)


# ---------------------------------------------------------------- every primitive: value, gradient, JVP
@pytest.mark.parametrize("name,i,fn,args", ALL_CASES, ids=IDS)
def test_compiled_value_gradient_and_jvp_equal_eager_on_every_primitive(name, i, fn, args):
    rng = np.random.default_rng(3)
    out = fn(*args)
    w = rng.standard_normal(np.shape(out))

    def loss(*xs):
        return cr.sum(fn(*xs) * w)

    nums = tuple(range(len(args)))
    close(cr.compile(fn)(*args), out)
    close(cr.compile(cr.value_and_grad(loss, argnums=nums))(*args), cr.value_and_grad(loss, argnums=nums)(*args))
    ts = tuple(rng.standard_normal(np.shape(a)) for a in args)

    def tangent(*xs):
        return cr.jvp(fn, xs[:len(args)], xs[len(args):])

    close(cr.compile(tangent)(*args, *ts), tangent(*args, *ts))


# ---------------------------------------------------------------- transformations
rng = np.random.default_rng(0)


def tanh_loss(x, w, b):
    return cr.sum(cr.tanh(x * w + b))


def test_value_and_grad_with_argnums_and_broadcasting():
    x, w, b = rng.standard_normal((5, 3)), rng.standard_normal(3), rng.standard_normal(())
    f = cr.value_and_grad(tanh_loss, argnums=(0, 1, 2))
    close(cr.compile(f)(x, w, b), f(x, w, b))
    g = cr.grad(tanh_loss, argnums=(1, 2))
    close(cr.compile(g)(x, w, b), g(x, w, b))


def test_hessian_and_jvp_of_a_logistic_loss():
    X, y = rng.standard_normal((20, 4)), (rng.random(20) > 0.5).astype(float)

    def nll(w):
        z = X @ w
        return cr.sum(cr.softplus(z) - y * z)

    w = rng.standard_normal(4)
    close(cr.compile(cr.hessian(nll))(w), cr.hessian(nll)(w))
    jv = lambda p, t: cr.jvp(nll, (p,), (t,))  # noqa: E731
    t = rng.standard_normal(4)
    close(cr.compile(jv)(w, t), jv(w, t))


def test_scalars_compute_on_python_floats_and_fall_back_to_numpy_where_python_refuses():
    quiz = cr.grad(lambda x, z: x * z + cr.sin(x * z), argnums=(0, 1))
    f = cr.compile(quiz)
    close(f(2.0, 3.0), quiz(2.0, 3.0))
    assert "cos_f(v1)" in f.source(2.0, 3.0)  # the float program uses math.cos (sin itself is dead code)
    assert all(type(v) is np.float64 for v in f(2.0, 3.0))
    g = cr.compile(lambda x: 1.0 / x + cr.log(x))
    with np.errstate(divide="ignore"):
        assert g(0.0) == -np.inf or np.isnan(g(0.0)) or np.isinf(g(0.0))
        close(g(0.0), (lambda x: np.float64(1.0) / x + np.log(x))(np.float64(0.0)))


def test_pytree_arguments_and_results():
    def f(params, x):
        return {"out": cr.tanh(x @ params["W"] + params["b"]), "n": 2}

    p = {"W": rng.standard_normal((3, 2)), "b": rng.standard_normal(2)}
    x = rng.standard_normal((4, 3))
    out = cr.compile(f)(p, x)
    assert out["n"] == 2
    close(out["out"], f(p, x)["out"])
    src = cr.compile(f).source(p, x)
    assert "def f(params_W, params_b, x):" in src


def test_keyword_arguments_are_traced_as_positional_ones():
    def f(x, *, scale, opts):
        return cr.sum(x * scale * opts["w"]) + opts["n"]

    c = cr.compile(f)
    x, w = rng.standard_normal(3), rng.standard_normal(3)
    for scale, n in ((2.0, 1), (3.0, 1), (3.0, 2)):  # a new float: the same program; a new int: traced again
        close(c(x, scale=scale, opts={"w": w, "n": n}), f(x, scale=scale, opts={"w": w, "n": n}))
    assert c.cache_info().misses == 2
    assert "def f(x, opts_w, scale):" in c.source(x, scale=2.0, opts={"w": w, "n": 1})


def test_a_keyword_named_tree_has_a_signature_of_its_own():
    def f(x, y=1.0, *, tree=0.0):
        return x * y + tree

    c = cr.compile(f)
    x = np.ones(2)
    close(c(x, np.float64(2.0)), f(x, np.float64(2.0)))
    close(c(x, tree=np.float64(5.0)), f(x, tree=np.float64(5.0)))  # not the program of the call before
    assert c.cache_info().misses == 2


def test_keyword_arguments_in_any_order_reach_their_parameters():
    def f(x, *, b, a):
        return x * a - b

    c = cr.compile(f)
    x, a, b = np.ones(2), np.full(2, 3.0), np.full(2, 10.0)
    close(c(x, b=b, a=a), f(x, b=b, a=a))  # traced with b given first
    close(c(x, a=a, b=b), f(x, a=a, b=b))  # the same program, the other order
    assert c.cache_info().misses == 1


# ---------------------------------------------------------------- cache
def test_cache_hits_misses_and_retrace_on_new_shapes_dtypes_and_static_values():
    calls = []

    def f(x, n):
        calls.append(1)  # a side effect: runs only while tracing
        return x * n

    c = cr.compile(f, static_argnums=1, maxsize=3)
    x = np.ones(3)
    c(x, 2), c(x, 2)
    assert c.cache_info() == C.CacheInfo(1, 1, 3, 1) and len(calls) == 1
    np.testing.assert_array_equal(c(x, 3), 3 * x)  # a new static value: traced again
    c(np.ones(4), 2)  # a new shape
    c(np.ones(3, dtype=np.float32), 2)  # a new dtype
    assert c(np.ones(3, dtype=np.float32), 2).dtype == np.float32
    info = c.cache_info()
    assert info.misses == 4 and info.currsize == 3  # bounded: the oldest dropped
    c(x, 2)  # dropped, so traced again
    assert c.cache_info().misses == 5
    assert len(calls) == 5


def test_a_cache_hit_whose_entry_another_thread_drops_meanwhile_still_runs():
    # the interleaving of two threads on one compiled function with a full cache: this call finds
    # its program, then (before it marks it recently used) the other thread's new signature
    # drops it; the call must still run the program it found
    class DroppedAfterLookup(type(C.Compiled(abs)._cache)):
        def get(self, key, default=None):
            entry = super().get(key, default)
            self.pop(key, None)
            return entry

    c = cr.compile(lambda x: x * 2.0, maxsize=3)
    x = np.ones(3)
    c(x), c(np.ones(4)), c(np.ones(5))
    c._cache = DroppedAfterLookup(c._cache)
    np.testing.assert_array_equal(c(x), 2 * x)


@pytest.mark.parametrize("maxsize", [None, -1, 2.5, "8"])
def test_a_cache_size_that_is_not_a_whole_number_is_refused_when_compiling(maxsize):
    with pytest.raises(ValueError, match="maxsize must be a whole number"):
        cr.compile(lambda x: x * 2.0, maxsize=maxsize)


def test_the_program_reads_new_values_on_each_call():
    c = cr.compile(cr.grad(lambda x: cr.sum(cr.exp(x))))
    for _ in range(3):
        x = rng.standard_normal(4)
        close(c(x), np.exp(x))
    assert c.cache_info().misses == 1


def test_grad_of_a_compiled_function_runs_it_eagerly():
    c = cr.compile(lambda x: cr.sum(cr.sin(x)))
    x = rng.standard_normal(3)
    close(cr.grad(c)(x), np.cos(x))


# ---------------------------------------------------------------- source
def test_source_is_readable_one_line_per_equation():
    f = cr.compile(cr.value_and_grad(tanh_loss, argnums=(0, 1, 2)))
    x, w, b = rng.standard_normal((3, 16))
    src = f.source(x, w, b)
    prog = f.program(x, w, b)
    body = [l for l in src.splitlines() if l.startswith("    ") and not l.strip().startswith("return")]
    assert len(body) == len(prog.eqns)
    assert src.splitlines()[0] == "def value_and_grad_tanh_loss(x, w, b):"
    assert "v1 = x * w" in src and "tanh(v2)" in src
    assert any(l.strip().startswith("g") for l in body)  # the backward pass, named g...
    assert str(prog).count("\n") == len(prog.eqns) + 1


# ---------------------------------------------------------------- passes
def test_dce_removes_unused_work():
    def f(x):
        unused = cr.exp(x) * 3.0  # noqa: F841
        return cr.sin(x)

    x = rng.standard_normal(3)
    assert len(cr.compile(f, passes=()).program(x)) == 3
    c = cr.compile(f, passes=("dce",))
    assert len(c.program(x)) == 1
    close(c(x), np.sin(x))


def test_cse_merges_repeated_work():
    def f(x):
        return cr.sin(x) * cr.sin(x) + cr.sin(x)

    x = rng.standard_normal(3)
    assert cr.compile(f, passes=()).program(x).counts()["sin"] == 3
    c = cr.compile(f, passes=("cse",))
    assert c.program(x).counts()["sin"] == 1
    close(c(x), f(x))


def test_constant_folding_computes_equations_of_constants():
    from chainrule.core.registry import REGISTRY

    a = C.Var("a", (3,), np.dtype(float))
    t = C.Var("v1", (3,), np.dtype(float))
    u = C.Var("v2", (3,), np.dtype(float))
    prog = C.Program("p", [a], [C.Eqn(REGISTRY["exp"], [C.Lit(np.zeros(3))], {}, t),
                                C.Eqn(REGISTRY["multiply"], [a, t], {}, u)], [u], None)
    folded = C.fold_constants(prog)
    assert len(folded) == 1 and type(folded.eqns[0].ins[1]) is C.Lit
    _, fn = C.generate(folded)
    close(fn(np.arange(3.0)), np.arange(3.0))


def test_simplify_removes_noop_reshapes_broadcasts_and_unit_arithmetic():
    def f(x):
        y = cr.reshape(x, (3,)) * 1.0 + 0.0
        return cr.broadcast_to(y, (3,)) * np.ones(3)

    x = rng.standard_normal(3)
    assert len(cr.compile(f, passes=()).program(x)) == 5
    c = cr.compile(f, passes=("simplify",))
    assert len(c.program(x)) == 0
    close(c(x), x)
    # x * 1 that changes the dtype is kept
    c32 = cr.compile(lambda x: x * np.float64(1.0), passes=("simplify",))
    assert c32(np.ones(2, np.float32)).dtype == np.float64


# ---------------------------------------------------------------- clear limits
def test_python_control_flow_on_a_traced_value_names_the_line():
    def f(x):
        if cr.sum(x) > 0:
            return x
        return -x

    with pytest.raises(ConcretizationError, match=r"cr.compile: bool\(\).*test_compile.py:\d+.*cr.where.*static_argnums"):
        cr.compile(f)(np.ones(2))
    with pytest.raises(ConcretizationError, match="cr.compile"):
        cr.compile(cr.grad(lambda x: x * 2 if x > 0 else x))(1.0)


def test_float_of_a_traced_value_and_in_place_changes_raise():
    with pytest.raises(ConcretizationError, match=r"cr.compile: float\(\)"):
        cr.compile(lambda x: float(cr.sum(x)))(np.ones(2))

    def assign(x):
        x[0] = 1.0
        return x

    def add_in_place(x):
        x += 1.0
        return x

    for f in (assign, add_in_place):
        with pytest.raises(ConcretizationError, match="cr.compile: in-place change.*test_compile.py"):
            cr.compile(f)(np.zeros(2))


def test_static_argument_allows_control_flow():
    c = cr.compile(lambda x, flag: cr.exp(x) if flag else x, static_argnums=(1,))
    x = rng.standard_normal(2)
    close(c(x, True), np.exp(x))
    close(c(x, False), x)


# ---------------------------------------------------------------- random compositions
UNARY = [cr.tanh, cr.sin, cr.cos, cr.sigmoid, cr.softplus, cr.relu, lambda v: cr.exp(v * 0.3),
         lambda v: cr.log(v * v + 1), lambda v: cr.softmax(v, axis=-1),
         lambda v: v - cr.logsumexp(v, axis=0, keepdims=True)]
BINARY = [cr.add, cr.subtract, cr.multiply, lambda a, b: a / (b * b + 1), cr.maximum]


@settings(max_examples=25, deadline=None)
@given(programs(len(UNARY), len(BINARY)), st.integers(0, 2 ** 32 - 1))
def test_random_compositions_compiled_equal_eager(program, seed):
    r = np.random.default_rng(seed)
    x0, y0 = r.uniform(-1.5, 1.5, size=(3, 3)), r.uniform(-1.5, 1.5, size=(3,))

    def f(x, y):
        return cr.sum(run(program, x, y, UNARY, BINARY) * 2.0)

    vg = cr.value_and_grad(f, argnums=(0, 1))
    close(cr.compile(vg)(x0, y0), vg(x0, y0), tol=1e-10)


# ---------------------------------------------------------------- chainrule explain --code
def test_explain_code_prints_the_compiled_forward_and_backward_program(capsys):
    from chainrule.cli import main

    assert main(["explain", "exp(x*z) + x*z/ln(x) + sin(ln(x))/(x*z)", "--at", "x=2", "z=3", "--code"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == "def value_and_gradient(x, z):"
    assert "    v1 = x * z" in lines and "    v2 = exp(v1)" in lines
    assert any(l.startswith("    g") for l in lines) and lines[-1].startswith("    return (v")
    # the printed program computes what eager chainrule computes
    ns = {}
    exec(out, {"exp": np.exp, "log": np.log, "sin": np.sin, "cos": np.cos}, ns)  # noqa: S102 - our own output
    f = lambda x, z: cr.exp(x * z) + x * z / cr.log(x) + cr.sin(cr.log(x)) / (x * z)  # noqa: E731
    close(ns["value_and_gradient"](np.float64(2.0), np.float64(3.0)),
          cr.value_and_grad(f, argnums=(0, 1))(2.0, 3.0))


def test_docstring_examples():
    import doctest

    assert doctest.testmod(C).failed == 0


def test_buffers_of_dead_temporaries_are_reused_and_arguments_never_written():
    def step(W, X):
        def loss(W):
            h = cr.tanh(X @ W)
            return cr.sum(h * h)
        value, g = cr.value_and_grad(loss)(W)
        return value, W - 0.1 * g

    W, X = rng.standard_normal((120, 100)), rng.standard_normal((100, 120))  # 80 KB values: worth reusing
    W0, X0 = W.copy(), X.copy()
    c = cr.compile(step)
    src = c.source(W, X)
    assert "out=" in src and "out=W" not in src and "out=X" not in src
    assert "out=" not in cr.compile(step, inplace=False).source(W, X)
    for _ in range(3):
        close(c(W, X), step(W, X))
    np.testing.assert_array_equal(W, W0)
    np.testing.assert_array_equal(X, X0)


@pytest.mark.parametrize("name,i,fn,args", ALL_CASES, ids=IDS)
def test_compiled_hessian_equals_eager_on_every_primitive(name, i, fn, args):
    rng = np.random.default_rng(5)
    w = rng.standard_normal(np.shape(fn(*args)))

    def loss(*xs):
        return cr.sum(fn(*xs) * w)

    h = cr.hessian(loss, argnums=tuple(range(len(args))))
    try:
        want = h(*args)
    except Exception as err:  # no second derivative eagerly either: nothing to compare
        pytest.skip(f"eager hessian: {type(err).__name__}")
    close(cr.compile(h)(*args), want)


def test_memory_stays_flat_over_many_compiled_calls():
    import tracemalloc

    W, X = rng.standard_normal((64, 32)), rng.standard_normal((50, 64))
    step = cr.compile(cr.value_and_grad(lambda W, X: cr.sum(cr.tanh(X @ W) ** 2)))
    for _ in range(50):
        step(W, X)
    tracemalloc.start()
    try:
        for _ in range(200):
            step(W, X)
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(2000):
            step(W, X)
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert after - before < 50_000  # no buffer or cache entry per call
    assert step.cache_info().currsize == 1


def test_keyword_arguments_are_part_of_the_signature():
    c = cr.compile(lambda x, *, scale: x * scale)
    x = rng.standard_normal(3)
    close(c(x, scale=2.0), 2 * x)
    close(c(x, scale=np.ones(3)), x)
    assert c.cache_info().misses == 2


@pytest.mark.parametrize("dtypes", [(np.float64, np.float64, np.float64), (np.float32, np.float32, np.float64),
                                    (np.float32, np.float32, np.float32)])
@pytest.mark.parametrize("shapes", [((5, 3), (4, 3), (4,)), ((3,), (4, 3), ()), ((2, 5, 3), (4, 3), (1,)),
                                    ((2, 3), (1, 3), (2, 1))])
def test_linear_and_mean_written_out_equal_their_impls(shapes, dtypes):
    xs = [rng.standard_normal(s).astype(d) for s, d in zip(shapes, dtypes)]
    f = lambda x, w, b: cr.mean(cr.nn.functional.linear(x, w, b), axis=0)  # noqa: E731
    got, want = cr.compile(f)(*xs), f(*xs)
    assert got.dtype == want.dtype and got.shape == want.shape
    close(got, want, tol=1e-6)


def test_relu_mask_reads_the_relu_output_and_relu_reuses_its_dead_input():
    X = rng.standard_normal((128, 200))
    W = rng.standard_normal((200, 100))
    X[0, :] = np.nan  # the mask of NaN is the same either way

    def loss(W):
        return cr.sum(cr.relu(X @ W) * 0.5)

    c = cr.compile(cr.grad(loss))
    prog = c.program(W)
    relu = next(e for e in prog.eqns if e.prim.name == "relu")
    mask = next(e for e in prog.eqns if e.prim.name == "greater")
    assert mask.ins[0] is relu.out
    assert "maximum(" in c.source(W) and "out=" in c.source(W)
    with np.errstate(invalid="ignore"):
        close(c(W), cr.grad(loss)(W))
    raw = cr.compile(cr.grad(loss), passes=()).program(W)  # as traced: the mask reads the pre-activation
    relu_outs = {e.out for e in raw.eqns if e.prim.name == "relu"}
    assert all(e.ins[0] not in relu_outs for e in raw.eqns if e.prim.name == "greater")
