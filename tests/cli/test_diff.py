"""`chainrule diff`: the comparison table and symbolic derivatives of an expression, as text, Markdown
and JSON, in-process and as a real subprocess; every bad input exits 2 with a message, no traceback."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from chainrule.cli import main

QUIZ = "exp(x*z) + x*z/ln(x) + sin(ln(x))/(x*z)"
QUIZ_GRAD = [1208.3812151266, 809.7074792186]
METHOD_KEYS = ["reverse", "forward", "central", "complex", "symbolic-shared", "symbolic-naive"]


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_text(capsys):
    code, out, err = run(capsys, "diff", QUIZ, "--at", "x=2", "z=3")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == f"f(x, z) = {QUIZ}"
    assert lines[1].startswith("f(x, z) at x = 2, z = 3:  f = 412.19145728")
    for label in ("reverse mode", "forward mode", "central differences", "complex step", "symbolic, shared",
                  "symbolic, naive"):
        row = next(line for line in lines if line.startswith(label))
        cells = row.split()
        assert "1208.381215" in row and "809.707479" in row, row
        assert cells[-1] in ("us", "ms", "s")
    assert "Symbolic derivatives" in out
    assert any(line.strip().startswith("df/dx = ") and "exp(x*z)" in line for line in lines)
    assert any(line.strip().startswith("df/dz = ") for line in lines)


def test_json(capsys):
    code, out, _ = run(capsys, "diff", QUIZ, "--at", "x=2,z=3", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["expression"] == QUIZ and data["variables"] == ["x", "z"]
    assert list(data["methods"]) == METHOD_KEYS
    tolerance = {"central": 1e-8, "complex": 1e-13}
    for key, m in data["methods"].items():
        assert isinstance(m["gradient"], list) and len(m["gradient"]) == 2
        np.testing.assert_allclose(m["gradient"], QUIZ_GRAD, rtol=tolerance.get(key, 1e-10), err_msg=key)
        assert m["evaluations"] >= 1 and m["operations"] >= 1
    assert data["methods"]["central"]["evaluations"] == 5
    sym = data["symbolic"]
    assert sym["shared"]["total_size"] < sym["naive"]["total_size"]
    assert "exp(x*z)" in sym["shared"]["derivatives"]["x"]["text"]


@pytest.mark.parametrize("method, keys", [
    ("reverse", ["reverse"]), ("forward", ["reverse", "forward"]), ("numeric", ["reverse", "central", "complex"]),
    ("symbolic", ["reverse", "symbolic-shared", "symbolic-naive"]), ("all", METHOD_KEYS)])
def test_method_choice(capsys, method, keys):
    code, out, _ = run(capsys, "diff", "x*sin(y) + y", "--at", "x=1.5", "y=0.5", "--method", method, "--json")
    assert code == 0
    data = json.loads(out)
    assert list(data["methods"]) == keys
    for m in data["methods"].values():
        np.testing.assert_allclose(m["gradient"], [np.sin(0.5), 1.5 * np.cos(0.5) + 1], rtol=1e-8)


def test_non_analytic_expression_and_markdown(capsys):
    code, out, _ = run(capsys, "diff", "abs(x) * y + relu(y)", "--at", "x=-1.5", "y=2", "--markdown")
    assert code == 0
    assert "| complex step [" in out and "n/a" in out and "not analytic" in out
    assert "$\\frac{\\partial f}{\\partial x}" in out
    code, out, _ = run(capsys, "diff", "abs(x) * y", "--at", "x=-1.5", "y=2", "--json", "--method", "numeric")
    data = json.loads(out)
    assert data["methods"]["complex"]["gradient"] is None
    assert "abs" in data["methods"]["complex"]["note"]
    np.testing.assert_allclose(data["methods"]["central"]["gradient"], [-2.0, 1.5], rtol=1e-8)


@pytest.mark.parametrize("argv, message", [
    (["x*(", "--at", "x=1"], "cannot parse the expression"),
    (["exp(x", "--at", "x=1"], "unclosed '('"),
    (["foo(x)", "--at", "x=1"], "unknown function 'foo'"),
    (["x + y*z", "--at", "y=1"], "no value for x, z"),
    (["x + y", "--at", "x=1", "y=2", "w=3"], "--at gives w, which the expression does not use"),
    (["x + 1", "--at", "x=two"], "bad --at value"),
    (["2 + 3", "--at", "x=1"], "nothing to differentiate"),
    (["ln(x)", "--at", "x=-1"], "not finite"),
    (["x", "--at", "x=1", "--json", "--markdown"], "choose one of --json and --markdown"),
])
def test_bad_input_exits_2_with_a_message(capsys, argv, message):
    code, out, err = run(capsys, "diff", *argv)
    assert code == 2
    assert message in err and "Traceback" not in err + out
    assert err.startswith("chainrule diff: error: ")


def test_parse_error_points_at_the_column(capsys):
    code, _, err = run(capsys, "diff", "x + * y", "--at", "x=1", "y=2")
    assert code == 2
    lines = err.splitlines()
    caret = next(line for line in lines if line.strip() == "^")
    assert caret.index("^") == lines[lines.index(caret) - 1].index("*")


def test_unknown_method_exits_2(capsys):
    with pytest.raises(SystemExit) as info:
        main(["diff", "x", "--at", "x=1", "--method", "fast"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'fast'" in err and "Traceback" not in err


def _cli(*argv):
    env = dict(os.environ, PYTHONWARNINGS="error::RuntimeWarning")
    return subprocess.run([sys.executable, "-m", "chainrule", "diff", *argv], capture_output=True, text=True,
                          timeout=120, env=env)


def test_subprocess_end_to_end():
    done = _cli(QUIZ, "--at", "x=2", "z=3", "--json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    np.testing.assert_allclose(data["methods"]["reverse"]["gradient"], QUIZ_GRAD, rtol=1e-10)
    np.testing.assert_allclose(data["methods"]["complex"]["gradient"], QUIZ_GRAD, rtol=1e-13)
    bad = _cli("sqrt(x", "--at", "x=1")
    assert bad.returncode == 2 and "unclosed '('" in bad.stderr and "Traceback" not in bad.stderr
    bad = _cli("x", "--at", "x=1", "--method", "fast")
    assert bad.returncode == 2 and "invalid choice" in bad.stderr and "Traceback" not in bad.stderr


# -- hostile expressions: every method has a budget, so each answers in seconds ------------------

@pytest.fixture
def deadline():
    """Fail a test that runs longer than `seconds` (a signal, not a measured time: today's main
    runs these for minutes)."""
    import signal

    def expire(signum, frame):
        raise TimeoutError("no answer within the deadline")

    old = signal.signal(signal.SIGALRM, expire)
    yield lambda seconds: signal.alarm(seconds)
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


def test_deeply_nested_tanh_is_differentiated_by_every_method(capsys, deadline):
    # Written out as a tree the derivative has 10^17 operations; as a graph, 199.
    deadline(60)
    code, out, err = run(capsys, "diff", "tanh(" * 50 + "x" + ")" * 50, "--at", "x=0.5", "--json")
    assert code == 0, err
    data = json.loads(out)
    reference = data["methods"]["reverse"]["gradient"][0]
    for key in METHOD_KEYS:
        assert data["methods"][key]["gradient"][0] == pytest.approx(reference, rel=1e-9), key
    assert data["symbolic"]["shared"]["derivatives"]["x"]["tree_size"] > 10**15
    assert data["symbolic"]["shared"]["derivatives"]["x"]["text"] is None  # too long to print


def test_power_tower_of_140_operators_gives_no_recursion_error(capsys, deadline):
    deadline(60)
    code, out, err = run(capsys, "diff", "**".join(["x"] * 141), "--at", "x=1.01")
    assert code == 0, err
    assert "too long to print" in out


def test_complex_infinity_in_a_derivative_is_printed_not_a_traceback(capsys, deadline):
    deadline(60)
    code, out, err = run(capsys, "diff", "z/0**y", "--at", "z=1", "y=0")
    assert code in (0, 2), err
    assert "Traceback" not in out + err


def test_methods_over_their_budget_are_skipped_with_their_size(capsys, deadline):
    from chainrule.modes.compare import MAX_OPERATIONS

    deadline(60)
    n = 1000
    code, out, err = run(capsys, "diff", "+".join(f"x{i}" for i in range(n)), "--at",
                         *[f"x{i}=1" for i in range(n)], "--json")
    assert code == 0, err
    methods = json.loads(out)["methods"]
    assert methods["reverse"]["gradient"] == [1.0] * n
    assert methods["symbolic-shared"]["gradient"] == [1.0] * n
    # One forward pass per input, each of the n - 1 additions.
    assert methods["forward"]["note"] == (f"skipped: too large for forward mode ({n * (n - 1)} operations; "
                                          f"limit {MAX_OPERATIONS})")
    assert methods["central"]["note"].startswith("skipped: too large for central differences")
    assert methods["forward"]["gradient"] is None


def test_symbolic_derivative_of_an_exponential_tree_is_compiled_from_its_graph():
    import chainrule as cr
    from chainrule.modes import symbolic

    def f(x):
        for _ in range(60):
            x = cr.tanh(x)
        return x

    d = symbolic.derivative(f)
    assert d.tree_size["x"] > 10**17 and d.dag_size["x"] < 300
    assert d.function(0.5)[0] == pytest.approx(float(cr.grad(f)(0.5)), rel=1e-12)
    assert d.text["x"] is None and "operations written out" in str(d)
    with pytest.raises(symbolic.SymbolicTooLarge, match="limit"):
        d["x"]


def test_sympy_printing_has_one_budget_for_all_derivatives():
    from chainrule.modes import symbolic

    names = [f"x{i}" for i in range(100)]
    f = eval(f"lambda {', '.join(names)}: {' * '.join(names)}")
    d = symbolic.derivative(f)
    printed = [n for n in names if d.text[n] is not None]
    assert 0 < len(printed) < len(names)
    assert sum(d.tree_size[n] for n in printed) <= symbolic.PRINT_LIMIT
