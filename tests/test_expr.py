"""Tests for chainrule.expr: the safe parser of the command-line expression language."""
from __future__ import annotations

import doctest
import inspect
import math
import operator
import time
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chainrule import expr
from chainrule.expr import (
    DEFAULT_FUNCTIONS,
    MAX_DEPTH,
    MAX_LENGTH,
    Call,
    Const,
    Expression,
    ExpressionError,
    Var,
    missing_variables,
    parse,
    parse_assignments,
)

MATH = {
    "add": operator.add,
    "subtract": operator.sub,
    "multiply": operator.mul,
    "divide": operator.truediv,
    # math.pow, not operator.pow: (-8.0) ** (1/3) would silently turn complex.
    "power": math.pow,
    "negative": operator.neg,
    "exp": math.exp,
    "log": math.log,
    "ln": math.log,
    "sin": math.sin,
    "cos": math.cos,
    "tanh": math.tanh,
    "sqrt": math.sqrt,
    "abs": abs,
    "sigmoid": lambda x: 1.0 / (1.0 + math.exp(-x)),
    "relu": lambda x: max(x, 0.0),
    "softplus": lambda x: math.log1p(math.exp(x)),
    "maximum": max,
    "minimum": min,
}

QUIZ = "exp(x*z) + x*z/ln(x) + sin(ln(x))/(x*z)"


def value(text, **values):
    return parse(text).evaluate(values, MATH)


# --- evaluation: precedence, associativity, unary minus ------------------------------------------

@pytest.mark.parametrize(
    "text, expected",
    [
        ("2", 2.0), ("2.5", 2.5), (".5", 0.5), ("1e-3", 0.001), ("1.5E+2", 150.0), ("1.", 1.0),
        ("1.e2", 100.0), ("1 + 2*3", 7.0), ("(1 + 2)*3", 9.0), ("2*3**2", 18.0), ("2*3^2", 18.0),
        ("12/3*2", 8.0), ("2^3^2", 512.0), ("2**3**2", 512.0), ("(2^3)^2", 64.0), ("8/4/2", 1.0),
        ("2-3-4", -5.0), ("2-(3-4)", 3.0),
        ("-2**2", -4.0), ("-2^2", -4.0), ("(-2)**2", 4.0), ("2**-1", 0.5), ("2^-1", 0.5), ("2**-1**2", 0.5),
        ("-2*3", -6.0), ("--2", 2.0), ("+-+2", -2.0), ("3 - -2", 5.0), ("3 + +2", 5.0), ("-(1 + 2)", -3.0),
        ("2**-2*3", 0.75), ("-2**-2", -0.25), ("4^.5^2", 4.0 ** 0.25),
        ("maximum(1, -2) + minimum(1, -2)", -1.0), ("abs(-3)", 3.0), ("relu(-1) + relu(2)", 2.0),
        ("sqrt(16)", 4.0), ("ln(exp(2))", 2.0), ("log(1)", 0.0), ("tanh(0) + cos(0)", 1.0),
        ("sigmoid(0)", 0.5), ("softplus(0)", math.log(2.0)), (" \t 1 +\n2 ", 3.0),
    ],
)
def test_evaluate_constants(text, expected):
    assert value(text) == pytest.approx(expected, rel=1e-12)


def test_quiz_function():
    expected = math.exp(6) + 6 / math.log(2) + math.sin(math.log(2)) / 6
    assert value(QUIZ, x=2.0, z=3.0) == pytest.approx(expected, rel=1e-12)


def test_unary_minus_binds_looser_than_power_but_tighter_than_times():
    assert value("-x**2", x=3.0) == -9.0
    assert value("-x*y", x=3.0, y=2.0) == -6.0
    assert str(parse("-x**2")) == "-x**2"
    assert parse("-x**2").root.op == "negative"
    assert parse("-x*y").root.op == "multiply"


# --- structure: sharing, order, printing ---------------------------------------------------------

def counting_table():
    calls = Counter()

    def wrap(name, function):
        def counted(*args):
            calls[name] += 1
            return function(*args)
        return counted

    return {name: wrap(name, function) for name, function in MATH.items()}, calls


def test_quiz_shares_subexpressions():
    expression = parse(QUIZ)
    table, calls = counting_table()
    expression.evaluate({"x": 2.0, "z": 3.0}, table)
    assert calls == Counter(multiply=1, ln=1, exp=1, divide=2, add=2, sin=1)
    products = [n for n in expression.nodes if isinstance(n, Call) and n.op == "multiply"]
    assert len(products) == 1 and [a.name for a in products[0].args] == ["x", "z"]
    assert len(expression.nodes) == 10


def test_nodes_are_topological_unique_and_end_at_root():
    expression = parse("sin(x)*sin(x) + 2*y - 2*y + 2")
    nodes = expression.nodes
    assert len(set(map(id, nodes))) == len(nodes)
    assert nodes[-1] is expression.root
    position = {id(n): i for i, n in enumerate(nodes)}
    for i, node in enumerate(nodes):
        for arg in getattr(node, "args", ()):
            assert position[id(arg)] < i
    assert sum(isinstance(n, Const) and n.value == 2.0 for n in nodes) == 1


def test_hash_consing_is_structural_not_algebraic():
    nodes = parse("x*z + z*x").nodes
    assert sum(isinstance(n, Call) and n.op == "multiply" for n in nodes) == 2
    root = parse("1 + 1.0").root
    assert root.args[0] is root.args[1]


def test_variables_in_order_of_first_appearance():
    assert parse("z + x*y - z").variables == ("z", "x", "y")
    assert parse("exp(1)").variables == ()
    assert parse("_a1 + B").variables == ("_a1", "B")


def test_node_kinds():
    root = parse("-exp(x) + 2").root
    assert isinstance(root, Call) and root.op == "add"
    negative, two = root.args
    assert negative.op == "negative" and negative.args[0].op == "exp"
    assert isinstance(negative.args[0].args[0], Var) and negative.args[0].args[0].name == "x"
    assert isinstance(two, Const) and two.value == 2.0 and type(two.value) is float
    assert repr(two) == "Const(2.0)" and repr(root) == "Call('add', <2 args>)"


@pytest.mark.parametrize(
    "text, canonical",
    [
        (QUIZ, QUIZ),
        ("a-(b-c)", "a - (b - c)"), ("a-b-c", "a - b - c"), ("a+(b+c)", "a + (b + c)"),
        ("a/(b*c)", "a/(b*c)"), ("a/b*c", "a/b*c"), ("(a+b)*c", "(a + b)*c"),
        ("2^3^2", "2**3**2"), ("(2^3)^2", "(2**3)**2"), ("(-x)^2", "(-x)**2"), ("-(x^2)", "-x**2"),
        ("--x", "-(-x)"), ("-(a*b)", "-(a*b)"), ("(-a)*b", "-a*b"), ("2**-x", "2**-x"),
        ("2**(-x*y)", "2**(-x*y)"), ("+x", "x"), ("((x))", "x"), ("1.50", "1.5"), ("1e-3", "0.001"),
        ("1e20", "1e+20"), ("maximum(a,b)", "maximum(a, b)"),
    ],
)
def test_canonical_string(text, canonical):
    assert str(parse(text)) == canonical
    assert str(parse(canonical)) == canonical


def test_custom_function_table():
    functions = {"hypot": 2, "neg": 1}
    expression = parse("hypot(x, neg(y))", functions)
    assert expression.evaluate({"x": 3.0, "y": 4.0}, {"hypot": math.hypot, "neg": operator.neg}) == 5.0
    with pytest.raises(ExpressionError, match="unknown function 'exp'"):
        parse("exp(x)", functions)


def test_evaluate_passes_floats_and_arbitrary_values():
    seen = []
    table = {"add": lambda a, b: seen.append((a, b)) or f"({a} + {b})", "multiply": lambda a, b: f"{a}*{b}"}
    assert parse("2*x + 1").evaluate({"x": "X"}, table) == "(2.0*X + 1.0)"
    assert type(seen[0][1]) is float


def test_evaluate_reports_missing_values_and_operations():
    expression = parse("a + b*c")
    with pytest.raises(ExpressionError, match=r"no value for variables 'a', 'c' at column 1"):
        expression.evaluate({"b": 1.0}, MATH)
    with pytest.raises(ExpressionError, match=r"no implementation for 'multiply' at column 6"):
        expression.evaluate({"a": 1.0, "b": 1.0, "c": 1.0}, {"add": operator.add})


def test_missing_variables():
    assert missing_variables(parse("x + y*z"), {"y": 1.0}) == ["x", "z"]
    assert missing_variables(parse("x"), {"x": 0.0, "w": 1.0}) == []


def test_to_function():
    f = parse(QUIZ).to_function(MATH)
    assert list(inspect.signature(f).parameters) == ["x", "z"]
    assert f(2.0, 3.0) == f(x=2.0, z=3.0) == value(QUIZ, x=2.0, z=3.0)
    assert f.__name__.isidentifier() and f.__name__.startswith("exp_x_times_z_plus")
    with pytest.raises(TypeError):
        f(2.0)
    constant = parse("2 + 3").to_function(MATH)
    assert constant() == 5.0 and constant.__name__ == "f_2_plus_3"


# --- refusals ------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "text, column, words",
    [
        ("open(x)", 1, "unknown function 'open'"),
        ("x + eval(x)", 5, "unknown function 'eval'"),
        ("exp", 1, "must be called"),
        ("2*exp + 1", 3, "must be called"),
        ("exp(x, z)", 1, "takes 1 argument, got 2"),
        ("maximum(x)", 1, "takes 2 arguments, got 1"),
        ("1 + exp()", 5, "takes 1 argument, got 0"),
        ("x(2)", 1, "unknown function 'x'"),
        ("x.real", 2, "attribute access"),
        ("(x).real", 4, "attribute access"),
        ("x + 'a'", 5, "strings"),
        ('"x"', 1, "strings"),
        ("lambda x: x", 1, "keyword"),
        ("import os", 1, "keyword"),
        ("x if x else z", 3, "keyword"),
        ("True + 1", 1, "keyword"),
        ("__import__('os')", 1, "'__'"),
        ("x + __class__", 5, "'__'"),
        ("[x]", 1, "brackets"),
        ("x[0]", 2, "brackets"),
        ("{x}", 1, "braces"),
        ("x, z", 2, "','"),
        ("(x, z)", 3, "','"),
        ("exp(,x)", 5, "unexpected ','"),
        ("x = 2", 3, "'='"),
        ("x == 2", 3, "comparisons"),
        ("x < 2", 3, "comparisons"),
        ("x @ z", 3, "'@'"),
        ("x % 2", 3, "'%'"),
        ("x // 2", 3, "'//'"),
        ("x z", 3, "unexpected 'z'"),
        ("2 3", 3, "unexpected '3'"),
        ("(x)(z)", 4, "unexpected '('"),
        ("x +", 4, "end of expression"),
        ("x ** * 2", 6, "unexpected '*'"),
        ("", 1, "empty"),
        ("   ", 1, "empty"),
        ("()", 2, "unexpected ')'"),
        ("(x", 1, "unclosed '('"),
        ("((x)", 1, "unclosed '('"),
        ("exp(x", 4, "unclosed '('"),
        ("x)", 2, "unmatched ')'"),
        ("1.2.3", 4, "malformed number '1.2.3'"),
        ("1..2", 3, "malformed number"),
        ("2x", 2, "malformed number '2x'"),
        ("1e", 2, "malformed number '1e'"),
        ("1e999", 1, "too large"),
        (".x", 1, "attribute access"),
        ("x;", 2, "unexpected character ';'"),
        ("x # comment", 3, "unexpected character '#'"),
        ("xé", 2, "ASCII"),
        ("x\x00", 2, "unexpected character"),
        ("x ! y", 3, "unexpected character '!'"),
    ],
)
def test_refused(text, column, words):
    with pytest.raises(ExpressionError) as caught:
        parse(text)
    error = caught.value
    assert isinstance(error, ValueError)
    assert error.text == text and error.column == column
    assert words in str(error) and f"at column {column}" in str(error)
    shown, caret = str(error).splitlines()[-2:]
    assert caret == "  " + " " * (column - 1) + "^"


def test_error_message_shape():
    with pytest.raises(ExpressionError) as caught:
        parse("open(x)")
    assert str(caught.value).splitlines() == [
        "unknown function 'open' at column 1; known functions: " + ", ".join(sorted(DEFAULT_FUNCTIONS)),
        "  open(x)",
        "  ^",
    ]


def test_too_long():
    text = "x+" * (MAX_LENGTH // 2) + "x"
    with pytest.raises(ExpressionError, match="too long") as caught:
        parse(text)
    error = caught.value
    assert error.column == MAX_LENGTH + 1
    shown, caret = str(error).splitlines()[-2:]
    # The message shows a window of the text, with the caret still under the right character.
    assert len(shown) < 100 and shown[len(caret) - 1] == text[MAX_LENGTH]


def test_longest_allowed_input_is_fast():
    text = "x*y+" * (MAX_LENGTH // 4 - 1) + "1"
    start = time.perf_counter()
    expression = parse(text)
    assert str(expression).replace(" ", "") == text
    assert expression.evaluate({"x": 1.0, "y": 2.0}, MATH) > 0
    assert time.perf_counter() - start < 2.0


@pytest.mark.parametrize(
    "opening, closing",
    [("(", ")"), ("-", ""), ("+", ""), ("2^", ""), ("exp(", ")"), ("maximum(1, ", ")"), ("-(", ")")],
)
def test_deep_nesting_is_refused_without_recursion_error(opening, closing):
    ok = opening * (MAX_DEPTH // 2 - 1) + "x" + closing * (MAX_DEPTH // 2 - 1)
    assert parse(ok).variables == ("x",)
    for count in (MAX_DEPTH + 1, 4_000):
        text = opening * count + "x" + closing * count
        if len(text) > MAX_LENGTH:
            continue
        with pytest.raises(ExpressionError, match="nested too deeply") as caught:
            parse(text)
        assert 1 <= caught.value.column <= len(text)


def test_nesting_limit_counts_parentheses():
    assert str(parse("(" * (MAX_DEPTH - 1) + "x" + ")" * (MAX_DEPTH - 1))) == "x"
    with pytest.raises(ExpressionError) as caught:
        parse("(" * MAX_DEPTH + "x" + ")" * MAX_DEPTH)
    assert caught.value.column == MAX_DEPTH + 1  # the "x": top level plus MAX_DEPTH parentheses


def test_long_flat_chains_are_fine():
    for op in "+-*/":
        text = op.join(["x"] * 4000)
        expression = parse(text)
        assert str(expression) == text.replace("+", " + ").replace("-", " - ")
        assert expression.evaluate({"x": 1.0}, MATH) in (4000.0, -3998.0, 1.0)


def test_non_string_input():
    with pytest.raises(TypeError):
        parse(2.0)


# --- --at assignments ----------------------------------------------------------------------------

def test_parse_assignments():
    assert parse_assignments(["x=2", "z=3"]) == {"x": 2.0, "z": 3.0}
    assert parse_assignments(["x=2,z=3"]) == {"x": 2.0, "z": 3.0}
    assert parse_assignments([" x = -1.5e-3 , _y=+4 "]) == {"x": -0.0015, "_y": 4.0}
    assert parse_assignments("a=1") == {"a": 1.0}
    assert parse_assignments([]) == {}


@pytest.mark.parametrize(
    "items, column, words",
    [
        (["x"], 2, "missing '='"),
        (["x="], 3, "missing value for 'x'"),
        (["=2"], 1, "missing variable name"),
        (["x=abc"], 3, "not a number"),
        (["x=2", "x=3"], 1, "given twice"),
        (["x=2,y=1,x=3"], 9, "given twice"),
        (["x=inf"], 3, "finite"),
        (["x=nan"], 3, "finite"),
        (["x=1e999"], 3, "finite"),
        (["x=1, y= zz"], 9, "not a number"),
        (["x=1,,y=2"], 5, "empty assignment"),
        ([""], 1, "empty assignment"),
        (["2x=1"], 1, "not a valid variable name"),
        (["lambda=1"], 1, "not a valid variable name"),
        (["__x=1"], 1, "not a valid variable name"),
    ],
)
def test_parse_assignments_refused(items, column, words):
    with pytest.raises(ExpressionError) as caught:
        parse_assignments(items)
    assert caught.value.column == column and words in str(caught.value)


# --- fuzzing -------------------------------------------------------------------------------------

TOKENS = [
    "x", "z", "y1", "_", "2", "0", "2.5", ".5", "1e-3", "1.5E+2", "1e400", "9" * 30,
    "exp", "ln", "log", "sqrt", "maximum", "minimum", "abs", "relu",
    "+", "-", "*", "/", "**", "^", "(", ")", "(", ")", ",", " ", " ",
    # junk
    "@", "'", '"', "[", "]", "{", "}", "=", "==", "%", "//", ".", "..", "x.real", "__class__", "__import__",
    "lambda", "import", "if", "None", ":", ";", "#", "\\", "!", "<", "~", "é", "π", "\x00", "\n", "\t",
    "1.2.3", "1e", "e", "E", "open", "eval",
]
ATOMS = ["x", "z", "y1", "2", "0", "2.5", ".5", "1e-3", "1.5E+2", "3"]
BINARY = ["+", "-", "*", "/", "**", "^", " + ", " ** ", " - "]
WRAPS = ["({})", "-{}", "+{}", "- {}"] + [f"{name}({{}})" for name, n in DEFAULT_FUNCTIONS.items() if n == 1]


def grammatical(data: bytes) -> str:
    """A string the grammar accepts (barring the size limits), built from bytes by a tiny stack machine.

    Hypothesis draws one byte string per example, which is far cheaper than a recursive strategy
    and still shrinks well.
    """
    stack = []
    for byte in data:
        action, pick = byte % 4, byte // 4
        if action == 1 and len(stack) >= 2:
            right, left = stack.pop(), stack.pop()
            stack.append(left + BINARY[pick % len(BINARY)] + right)
        elif action == 2 and stack:
            stack.append(WRAPS[pick % len(WRAPS)].format(stack.pop()))
        elif action == 3 and len(stack) >= 2:
            right, left = stack.pop(), stack.pop()
            stack.append(f"{('maximum', 'minimum')[pick % 2]}({left}, {right})")
        else:
            stack.append(ATOMS[pick % len(ATOMS)])
    return " + ".join(stack) or "x"


def soup(data: bytes) -> str:
    return "".join(TOKENS[byte % len(TOKENS)] for byte in data)


def grammatical_with_junk(data: bytes) -> str:
    text = grammatical(data[2:])
    cut = len(text) * data[1] // 256 if len(data) > 1 else 0
    return text[:cut] + TOKENS[data[0] % len(TOKENS)] + text[cut:] if data else text


FUZZ = st.one_of(
    st.text(max_size=40),
    st.binary(max_size=30).map(soup),
    st.binary(max_size=40).map(grammatical),
    st.binary(max_size=40).map(grammatical_with_junk),
)
VALUES = (2.0, 0.5, -1.5, 3.0)


def check(text):
    try:
        expression = parse(text)
    except ExpressionError as error:
        assert 1 <= error.column <= len(text) + 1 and error.text == text
        return None
    assert isinstance(expression, Expression)
    canonical = str(expression)
    assert str(parse(canonical)) == canonical
    values = {name: VALUES[i % len(VALUES)] for i, name in enumerate(expression.variables)}
    try:
        result = expression.evaluate(values, MATH)
    except (ArithmeticError, ValueError):
        return expression
    assert isinstance(result, float)
    return expression


@settings(max_examples=10_000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(FUZZ)
def test_fuzz_parse_only_returns_expression_or_expression_error(text):
    check(text)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=60).map(grammatical))
def test_grammar_strings_parse(text):
    assert check(text) is not None


# --- source guards -------------------------------------------------------------------------------

def test_source_has_no_eval_exec_or_compile():
    source = Path(expr.__file__).read_text(encoding="utf-8")
    for word in ("eval(", "exec(", "compile(", "__import__"):
        assert word not in source


def test_docstring_examples():
    assert doctest.testmod(expr).failed == 0
