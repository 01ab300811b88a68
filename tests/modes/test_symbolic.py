"""Symbolic differentiation: the quiz, every primitive with a symbolic form against reverse mode,
the growth of the naive (tree) route against the shared (graph) one, and clear errors."""
import doctest
import sys

import numpy as np
import pytest

import chainrule as cr
import chainrule.numpy as cnp
from chainrule.core.registry import REGISTRY
from chainrule.core import primitives as P
from chainrule.modes import symbolic
from chainrule.modes.symbolic import SymbolicError

sp = pytest.importorskip("sympy")

QUIZ_GRAD = [1208.3812151266, 809.7074792186]


def quiz(x, z):
    xz = x * z
    return cr.exp(xz) + xz / cr.log(x) + cr.sin(cr.log(x)) / xz


def reverse_grad(f, *args):
    return [float(g) for g in cr.grad(f, argnums=tuple(range(len(args))))(*[float(a) for a in args])]


@pytest.mark.parametrize("method", ["shared", "naive"])
def test_quiz(method):
    d = symbolic.derivative(quiz, method=method)
    assert d.wrt == ("x", "z") and d.variables == ("x", "z")
    assert dict(d) == d.expressions and d["z"] is d.expressions["z"] and list(d) == ["x", "z"]
    np.testing.assert_allclose(d.function(2.0, 3.0), QUIZ_GRAD, rtol=1e-10)
    x, z = sp.symbols("x z", real=True)
    by_hand = sp.exp(x * z) + x * z / sp.log(x) + sp.sin(sp.log(x)) / (x * z)
    for name, var in (("x", x), ("z", z)):
        assert sp.simplify(d.expressions[name] - sp.diff(by_hand, var)) == 0
        assert "log(x)" in d.text[name] and "\\log" in d.latex[name]
    assert sp.simplify(symbolic.expression(quiz) - by_hand) == 0


def test_quiz_sizes():
    shared = symbolic.derivative(quiz, method="shared")
    naive = symbolic.derivative(quiz, method="naive")
    # The function: 8 distinct operations (x*z and log(x) are each made once), 11 as a tree.
    assert shared.function_size == {"dag": 8, "tree": 11}
    assert naive.size == naive.tree_size and shared.size == shared.dag_size
    for n in ("x", "z"):
        assert shared.size[n] < naive.size[n]
    assert shared.total_size < naive.total_size
    assert shared.total_size <= shared.dag_size["x"] + shared.dag_size["z"]  # shared parts counted once


def test_wrt_selects_and_orders():
    d = symbolic.derivative(quiz, wrt="z")
    assert d.wrt == ("z",) and list(d.expressions) == ["z"]
    assert d.function(2.0, 3.0)[0] == pytest.approx(QUIZ_GRAD[1], rel=1e-10)
    d = symbolic.derivative(quiz, wrt=("z", "x"), method="naive")
    np.testing.assert_allclose(d.function(2.0, 3.0), QUIZ_GRAD[::-1], rtol=1e-10)


def test_compiled_function_broadcasts():
    d = symbolic.derivative(lambda x, y: x * cr.sin(y))
    gx, gy = d.function(np.array([1.0, 2.0]), 0.5)
    np.testing.assert_allclose(gx, np.sin([0.5, 0.5]))
    np.testing.assert_allclose(gy, np.cos(0.5) * np.array([1.0, 2.0]))


# ---------------------------------------------------------------- every primitive with a symbolic form

def _unary(op):
    return lambda x, y: op(x) * y


def _reduction(op):
    return lambda x, y: op(x * y) * x


# name -> (function of two numbers, sampler of a point away from kinks and outside no domain)
PRIMITIVE_CASES = {
    "add": (lambda x, y: cr.add(x, y) * x, None),
    "subtract": (lambda x, y: cr.subtract(x, y) * x, None),
    "multiply": (cr.multiply, None),
    "divide": (cr.divide, "positive"),
    "power": (cr.power, "positive"),
    "negative": (_unary(cr.negative), None),
    "exp": (_unary(cr.exp), None),
    "log": (_unary(cr.log), "positive"),
    "sin": (_unary(cr.sin), None),
    "cos": (_unary(cr.cos), None),
    "tanh": (_unary(cr.tanh), None),
    "sqrt": (_unary(cr.sqrt), "positive"),
    "abs": (_unary(cr.abs), None),
    "sign": (lambda x, y: cr.sign(x) * x * y, None),
    "relu": (_unary(cr.relu), None),
    "sigmoid": (_unary(cr.sigmoid), None),
    "softplus": (_unary(cr.softplus), None),
    "maximum": (lambda x, y: cr.maximum(x, y) * x, None),
    "minimum": (lambda x, y: cr.minimum(x, y) * y, None),
    "where": (lambda x, y: cr.where(cr.greater(x, y), x * y, x - y), None),
    "equal": (lambda x, y: x * cr.equal(x, y) + y * x, None),
    "not_equal": (lambda x, y: x * cr.not_equal(x, y) + y, None),
    "greater": (lambda x, y: x * cr.greater(x, y) + y * y, None),
    "greater_equal": (lambda x, y: x * cr.greater_equal(x, y) + y, None),
    "less": (lambda x, y: x * y * cr.less(x, y), None),
    "less_equal": (lambda x, y: x * cr.less_equal(x, y) - y, None),
    "astype": (lambda x, y: cr.astype(x * y, np.float64) * x, None),
    "sum": (_reduction(cr.sum), None),
    "mean": (_reduction(cr.mean), None),
    "max": (_reduction(cr.max), None),
    "logsumexp": (_reduction(cr.logsumexp), None),
    "matmul": (lambda x, y: cr.sum(cr.matmul(cr.reshape(x, (1, 1)), cr.reshape(y * x, (1, 1)))), None),
    "linear": (lambda x, y: cr.sum(cr.nn.functional.linear(cr.reshape(x, (1, 1)), cr.reshape(y * x, (1, 1)),
                                                         cr.reshape(y, (1,)))), None),
    "reshape": (lambda x, y: cr.sum(cr.reshape(x * y, (1,))) * y, None),
    "transpose": (lambda x, y: cr.transpose(x * y) * x, None),
    "broadcast_to": (lambda x, y: cr.sum(cr.broadcast_to(x * y, (1, 1))) * x, None),
    "getitem": (lambda x, y: cr.reshape(x * y, (1,))[0] * y, None),
    "scatter_add": (lambda x, y: cr.sum(P.scatter_add(x * y, index=0, shape=(1,))) * x, None),
    "softmax": (lambda x, y: cr.sum(cr.softmax(cr.reshape(x * y, (1,))) * x) * y, None),
    "stack": (lambda x, y: cr.sum(cr.stack([x * y])) * x, None),
    "concatenate": (lambda x, y: cr.sum(cr.concatenate([cr.reshape(x * y, (1,))])) * y, None),
    "binary_cross_entropy": (lambda x, y: P.binary_cross_entropy(cr.sigmoid(x), cr.sigmoid(y)) * x, None),
    # chainrule.numpy's elementwise primitives (inverse functions kept inside their domains)
    "tan": (_unary(cnp.tan), None),
    "sinh": (_unary(cnp.sinh), None),
    "cosh": (_unary(cnp.cosh), None),
    "arcsin": (lambda x, y: cnp.arcsin(x / 3) * y, None),
    "arccos": (lambda x, y: cnp.arccos(y / 3) * x, None),
    "arctan": (_unary(cnp.arctan), None),
    "arcsinh": (_unary(cnp.arcsinh), None),
    "arccosh": (lambda x, y: cnp.arccosh(x + 1.5) * y, "positive"),
    "arctanh": (lambda x, y: cnp.arctanh(x * y / 5), None),
    "log1p": (_unary(cnp.log1p), "positive"),
    "expm1": (_unary(cnp.expm1), None),
    "log2": (_unary(cnp.log2), "positive"),
    "log10": (_unary(cnp.log10), "positive"),
    "exp2": (_unary(cnp.exp2), None),
    "cbrt": (_unary(cnp.cbrt), "positive"),
    "sinc": (_unary(cnp.sinc), "positive"),
    "floor": (lambda x, y: cnp.floor(x) * x * y, None),
    "ceil": (lambda x, y: cnp.ceil(y) * x * y, None),
    "arctan2": (lambda x, y: cnp.arctan2(x, y), None),
    "hypot": (lambda x, y: cnp.hypot(x, y), None),
    "logaddexp": (lambda x, y: cnp.logaddexp(x, y), None),
    "logaddexp2": (lambda x, y: cnp.logaddexp2(x, y), None),
    "mod": (lambda x, y: cnp.mod(x * 3, y), "positive"),
    "fmax": (lambda x, y: cnp.fmax(x, y) * x, None),
    "fmin": (lambda x, y: cnp.fmin(x, y) * y, None),
    "trunc": (lambda x, y: cnp.trunc(x * 3) * x * y, None),
    "rint": (lambda x, y: cnp.rint(y * 3) * x * y, None),
    "fmod": (lambda x, y: cnp.fmod(x * 3, y), "positive"),
    # the array primitives on numbers (one entry): their symbolic forms and rules on scalars
    "cumsum": (lambda x, y: cr.sum(cnp.cumsum(x * y)) * x, None),
    "cumprod": (lambda x, y: cr.sum(cnp.cumprod(x * y)) * y, "positive"),
    "prod": (lambda x, y: cnp.prod(x * y) * x, None),
    "einsum": (lambda x, y: cnp.einsum("i,i", cr.reshape(x, (1,)), cr.reshape(x * y, (1,))), None),
}
WITH_SYM = sorted(n for n, p in REGISTRY.items() if p.sym is not None)
# Primitives without a symbolic form, each with the reason.
_MATRIX = "a function of a matrix: symbolic values are single numbers, so it never meets one"
WITHOUT_SYM = dict.fromkeys(("solve", "inv", "det", "slogdet", "cholesky", "eigh", "svd", "pinv"), _MATRIX)
WITHOUT_SYM["class_labels"] = "integer class labels are data checked at run time, never a symbolic number"


def test_every_primitive_has_a_symbolic_form_or_a_reason():
    assert sorted(n for n, p in REGISTRY.items() if p.sym is None) == sorted(WITHOUT_SYM)


def test_every_primitive_with_a_symbolic_form_is_in_the_table():
    assert sorted(PRIMITIVE_CASES) == WITH_SYM


JOINED = {  # functions of numbers that join several numbers into an array along the way
    "stack, square, sum": lambda x, y: cr.sum(cr.stack([x, y]) ** 2),
    "concatenate with a constant, matmul, tanh": lambda x, y: cr.sum(cr.tanh(cr.concatenate(
        [cr.reshape(x, (1,)), cr.reshape(x * y, (1,)), np.array([0.5])]) @ np.array([[1., 2.], [3., 4.], [5., 6.]]))),
    "mean times a number, an entry": lambda x, y: cr.mean(cr.stack([x, y, x * y]) * x) + cr.stack([x, y])[1],
    "exp of the array, an entry": lambda x, y: cr.exp(cr.stack([x, y]))[0] * y,
}


@pytest.mark.parametrize("name", sorted(JOINED))
def test_several_numbers_joined_into_an_array_are_differentiated(name):
    """The array's entries stay nodes of the symbolic graph (numpy's object arrays), so symbolic
    mode and cr.compare work on functions of numbers that build arrays inside."""
    f = JOINED[name]
    d = symbolic.derivative(f)
    for x, y in ((0.7, 1.3), (-1.1, 0.4)):
        np.testing.assert_allclose(d.function(x, y), cr.grad(f, argnums=(0, 1))(x, y), rtol=1e-12)
    assert "symbolic, shared" in str(cr.compare(f, 0.7, 1.3))
    assert cr.compare(f, 0.7, 1.3)["symbolic-shared"].max_rel_diff < 1e-12


@pytest.mark.parametrize("name", WITH_SYM)
def test_symbolic_derivative_equals_reverse_mode(name):
    f, domain = PRIMITIVE_CASES[name]
    rng = np.random.default_rng(sorted(REGISTRY).index(name))
    shared = symbolic.derivative(f, method="shared")
    naive = symbolic.derivative(f, method="naive")
    assert any(n.prim is not None and n.prim.name == name for n in symbolic._topological(_traced(f)))
    for _ in range(4):
        low = 0.2 if domain == "positive" else -2.0
        x, y = rng.uniform(low, 2.0, size=2)
        want = reverse_grad(f, x, y)
        np.testing.assert_allclose(shared.function(x, y), want, rtol=1e-10, atol=1e-12, err_msg=f"{name} shared")
        np.testing.assert_allclose(naive.function(x, y), want, rtol=1e-10, atol=1e-12, err_msg=f"{name} naive")


def _traced(f):
    return symbolic._trace(f, "test")[3]


def test_ties_follow_reverse_mode():
    for f in (lambda x, y: cr.maximum(x, y) * x, lambda x, y: cr.relu(x) * y, lambda x, y: cr.abs(x) + y):
        d = symbolic.derivative(f)
        for point in [(1.0, 1.0), (0.0, 2.0)]:
            np.testing.assert_allclose(d.function(*point), reverse_grad(f, *point), atol=1e-15)


def test_random_compositions_agree_with_reverse_mode():
    ops = [cr.sin, cr.tanh, cr.exp, cr.sigmoid, lambda u: u * u, lambda u: cr.sqrt(u * u + 1), cr.softplus]
    rng = np.random.default_rng(7)
    for trial in range(4):
        chosen = rng.integers(0, len(ops), size=3)

        def f(x, y, chosen=chosen):
            u, v = x, y
            for k in chosen:
                u, v = ops[k](u) * v + x, u - ops[k](v) * 0.5
            return u + v

        x, y = rng.uniform(-1.0, 1.0, size=2)
        want = reverse_grad(f, x, y)
        for method in ("shared", "naive"):
            got = symbolic.derivative(f, method=method).function(x, y)
            np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


# ---------------------------------------------------------------- expression growth

def product(n):
    """(x + 1)(x + 2)...(x + n)."""
    def f(x):
        y = x + 1
        for k in range(2, n + 1):
            y = y * (x + k)
        return y
    return f


def nested(n):
    """sin(sin(...sin(x))) with n functions."""
    def f(x):
        for _ in range(n):
            x = cr.sin(x)
        return x
    return f


def reused(n):
    """u_{k+1} = sin(u_k) u_k: every level uses the one below twice."""
    def f(x):
        for _ in range(n):
            x = cr.sin(x) * x
        return x
    return f


def sizes(make):
    naive = [symbolic.derivative(make(n), method="naive").size["x"] for n in range(2, 11)]
    shared = [symbolic.derivative(make(n), method="shared").size["x"] for n in range(2, 11)]
    return np.array(naive), np.array(shared)


@pytest.mark.parametrize("make", [product, nested, reused])
def test_naive_grows_much_faster_than_shared_which_grows_linearly(make):
    naive, shared = sizes(make)
    steps = np.diff(shared)
    assert len(set(steps[1:].tolist())) == 1 and steps[-1] > 0, f"shared sizes {shared} are not linear in n"
    assert np.all(np.diff(naive, 2) > 0), f"naive sizes {naive} do not grow faster than linearly"
    ratio = naive / shared
    assert np.all(np.diff(ratio) > 0) and ratio[-1] > 2 * ratio[0]
    # Both routes compute the same derivative.
    f = make(6)
    a, b = symbolic.derivative(f, method="naive"), symbolic.derivative(f, method="shared")
    assert a.function(0.7)[0] == pytest.approx(b.function(0.7)[0], rel=1e-12)


def test_reused_subexpressions_grow_exponentially_on_the_naive_route():
    naive, shared = sizes(reused)
    assert np.all(naive[1:] >= 2 * naive[:-1])
    assert shared[-1] < 10 * 10


def test_large_expressions_are_not_printed_by_default():
    d = symbolic.derivative(reused(12), method="shared")
    assert d.size["x"] < 100 and d.tree_size["x"] > symbolic.PRINT_LIMIT
    assert not d.printable("x")
    assert "operations written out" in str(d)
    assert d.to_dict()["derivatives"]["x"]["text"] is None


def test_naive_route_refuses_huge_trees(monkeypatch):
    monkeypatch.setattr(symbolic, "MAX_TREE", 100)
    with pytest.raises(SymbolicError, match="use method='shared'"):
        symbolic.derivative(reused(8), method="naive")
    assert symbolic.derivative(reused(8), method="shared").size["x"] > 0


# ---------------------------------------------------------------- the expression parser and errors

def test_expression_from_the_command_line_parser():
    from chainrule.cli.explain import _functions
    from chainrule.expr import parse

    f = parse("exp(x*z) + x*z/ln(x) + sin(ln(x))/(x*z)").to_function(_functions())
    d = symbolic.derivative(f)
    np.testing.assert_allclose(d.function(2.0, 3.0), QUIZ_GRAD, rtol=1e-10)
    assert d.function_size["dag"] == 8  # the parser shares x*z and ln(x)


def test_constants_and_parameters_with_defaults():
    d = symbolic.derivative(lambda x, a=3.0: a * x ** 2 + np.float64(0.5))
    assert d.variables == ("x",)
    assert d.expressions["x"] == 6 * sp.Symbol("x", real=True)


@pytest.mark.parametrize("f, match", [
    (lambda x: cr.stack([x, x * 2]), "array"),
    (lambda x: x * np.array([1.0, 2.0]), r"shape \(2,\)"),
    (lambda x: cr.sum(cr.broadcast_to(x, (3,))), "not arrays"),
    (lambda *xs: xs[0], r"takes \*xs"),
    (lambda x: x if x > 0 else -x, "truth value"),
    (lambda x: float(x) * 2, "no float value"),
    (lambda x: "text", "cannot use a str"),
])
def test_errors(f, match):
    with pytest.raises(SymbolicError, match=match):
        symbolic.derivative(f)


def test_wrt_errors():
    with pytest.raises(SymbolicError, match="'y' is not a parameter of quiz; its parameters: x, z"):
        symbolic.derivative(quiz, wrt="y")
    with pytest.raises(ValueError, match="unknown method"):
        symbolic.derivative(quiz, method="fast")


def test_missing_sympy_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "sympy", None)
    with pytest.raises(ImportError, match=r'pip install "chainrule\[symbolic\]"'):
        symbolic.derivative(quiz)


def test_doctests():
    assert doctest.testmod(symbolic).failed == 0
