"""cr.compare: all methods on the lecture's quiz, costs counted exactly, non-analytic functions
reported, arrays, and the three output formats."""
import doctest
import json

import numpy as np
import pytest

import chainrule as cr
from chainrule.modes import compare as compare_module
from chainrule.modes.compare import compare

QUIZ_GRAD = np.array([1208.3812151266, 809.7074792186])


def quiz(x, z):
    xz = x * z
    return cr.exp(xz) + xz / cr.log(x) + cr.sin(cr.log(x)) / xz


@pytest.fixture(scope="module")
def report():
    return compare(quiz, 2.0, 3.0, repeat=1)


# method -> relative tolerance against the lecture's numbers
TOLERANCES = {"reverse": 1e-10, "forward": 1e-10, "central": 1e-8, "complex": 1e-13,
              "symbolic-shared": 1e-10, "symbolic-naive": 1e-10}


def test_all_methods_give_the_quiz_gradient(report):
    assert list(report.results) == list(compare_module.METHODS)
    assert report.variables == ["x", "z"]
    assert report.value == pytest.approx(np.exp(6) + 6 / np.log(2) + np.sin(np.log(2)) / 6, rel=1e-14)
    for key, r in report.results.items():
        assert r.note == "" or "not applicable" not in r.note, (key, r.note)
        np.testing.assert_allclose(np.ravel(r.gradient), QUIZ_GRAD, rtol=TOLERANCES[key], err_msg=key)
        assert r.seconds > 0
    reverse = np.ravel(report["reverse"].gradient)
    for key, r in report.results.items():
        diff = np.max(np.abs(np.ravel(r.gradient) - reverse))
        assert r.max_abs_diff == pytest.approx(diff, abs=0)
        assert r.max_rel_diff == pytest.approx(diff / np.max(np.abs(reverse)), rel=1e-12, abs=0)
    assert report["central"].max_rel_diff < 1e-8 and report["complex"].max_rel_diff < 1e-13


def count_primitive_calls(f, *args):
    """The primitives f applies on Tensors, from the recorded graph (each node once)."""
    leaves = [cr.tensor(a, requires_grad=True) for a in args]
    out = f(*leaves)
    seen, stack = set(), [out]
    while stack:
        t = stack.pop()
        if id(t) in seen or not isinstance(t, cr.Tensor) or t._prim is None:
            continue
        seen.add(id(t))
        stack.extend(t._parents)
    return len(seen)


def test_costs(report):
    per_eval = count_primitive_calls(quiz, 2.0, 3.0)
    assert per_eval == 9  # x*z, exp, log(x) twice, /, sin, /, +, +
    assert report["central"].evaluations == 1 + 2 * 2
    assert report["central"].operations == 5 * per_eval
    assert report["complex"].evaluations == 1 + 2
    assert report["complex"].operations == 3 * per_eval
    assert report["forward"].evaluations == 2
    assert report["reverse"].evaluations == 1
    # Reverse mode: the forward pass plus at least one rule per operation, and fewer than
    # forward mode's two passes (each a forward pass plus one rule per operation).
    assert per_eval * 2 <= report["reverse"].operations < report["forward"].operations
    assert report["forward"].operations >= 2 * 2 * per_eval
    shared, naive = report.symbolic["shared"], report.symbolic["naive"]
    assert report["symbolic-shared"].operations == shared.total_size < naive.total_size == report["symbolic-naive"].operations
    assert report["symbolic-shared"].sizes == shared.dag_size


def test_counting_matches_a_hand_count():
    # f = x * y: reverse mode is 1 multiply forward and 2 multiplies backward (g * y, g * x).
    r = compare(lambda x, y: x * y, 3.0, 4.0, methods="reverse", repeat=1)
    assert r["reverse"].operations == 3
    np.testing.assert_allclose(np.ravel(r["reverse"].gradient), [4.0, 3.0])
    # Forward mode, one pass per input: the multiply and the rule of the one argument whose
    # tangent is not zero (jvp takes an argument with an all-zero tangent as a constant, a
    # symbolic zero, so the other argument's rule and the add that would sum them do not run).
    r = compare(lambda x, y: x * y, 3.0, 4.0, methods="forward", repeat=1)
    assert r["forward"].operations == 2 * 2


def test_non_analytic_function_is_a_note_not_a_number():
    r = compare(lambda x, y: cr.abs(x) * y + cr.relu(y), 1.5, -2.0, repeat=1)
    c = r["complex"]
    assert c.gradient is None and c.max_abs_diff is None
    assert "not applicable" in c.note and "abs" in c.note and "not analytic" in c.note
    np.testing.assert_allclose(np.ravel(r["central"].gradient), [-2.0, 1.5], rtol=1e-8)
    np.testing.assert_allclose(np.ravel(r["symbolic-shared"].gradient), [-2.0, 1.5])
    text = r.to_text()
    assert "complex step [" in text and "n/a" in text and "not analytic" in text
    assert json.loads(r.to_json())["methods"]["complex"]["gradient"] is None


def test_arrays_skip_symbolic_with_a_reason():
    x = np.array([0.5, -1.0, 2.0])
    r = compare(lambda x: cr.sum(cr.tanh(x) * x), x, repeat=1)
    want = np.tanh(x) + x * (1 - np.tanh(x) ** 2)
    for key in ("reverse", "forward", "central", "complex"):
        np.testing.assert_allclose(r[key].gradient[0], want, rtol=1e-8)
    assert r["forward"].evaluations == 3
    assert r["symbolic-shared"].gradient is None and "array" in r["symbolic-shared"].note
    data = json.loads(r.to_json())
    assert len(data["methods"]["reverse"]["gradient"][0]) == 3


def test_method_groups():
    r = compare(quiz, 2.0, 3.0, methods="numeric", repeat=1)
    assert list(r.results) == ["reverse", "central", "complex"]
    r = compare(quiz, 2.0, 3.0, methods=["forward", "symbolic-naive"], repeat=1)
    assert list(r.results) == ["reverse", "forward", "symbolic-naive"]
    assert set(r.symbolic) == {"naive"}
    with pytest.raises(ValueError, match="unknown method 'fast'"):
        compare(quiz, 2.0, 3.0, methods="fast")


def test_formats(report):
    text = str(report)
    assert text == report.to_text()
    lines = text.splitlines()
    assert lines[0] == "quiz(x, z) at x = 2, z = 3:  f = " + f"{report.value:.13g}"
    for label in ("reverse mode", "forward mode", "central differences", "complex step", "symbolic, shared",
                  "symbolic, naive"):
        assert any(line.startswith(label) for line in lines), label
    assert "1208.381215127" in text and "df/dx = " in text and "(reference)" in text
    md = report.to_markdown()
    assert md.count("\n| ") >= 6 and "| --- |" in md and "$\\frac{\\partial f}{\\partial x}" in md
    data = json.loads(report.to_json())
    assert data["variables"] == ["x", "z"] and data["point"] == {"x": 2.0, "z": 3.0}
    for key in compare_module.METHODS:
        np.testing.assert_allclose(data["methods"][key]["gradient"], QUIZ_GRAD, rtol=1e-8)
    assert data["symbolic"]["shared"]["derivatives"]["x"]["text"] == report.symbolic["shared"].text["x"]


def test_errors():
    with pytest.raises(cr.ShapeError, match="one number"):
        compare(lambda x: x * 2, np.array([1.0, 2.0]))
    with pytest.raises(cr.numeric.NumericError, match="not finite"), np.errstate(invalid="ignore"):
        compare(cr.log, -1.0)
    with pytest.raises(cr.DTypeError, match="argument 0"):
        compare(cr.sin, "two")
    with pytest.raises(TypeError, match="give the point"):
        compare(cr.sin)


def test_lazy_name_and_doctests():
    assert cr.compare is compare
    assert doctest.testmod(compare_module).failed == 0


def test_python_numbers_in_f_work_in_every_method():
    """jvp hands an input whose tangent is zero to f as it is; the counted run must still give
    it the operators (x * 3) that f's code uses."""
    report = cr.compare(lambda x, y: x * 3 + y * y / 2, 1.3, 0.7)
    for key, r in report.results.items():  # every method applies to this analytic f of numbers
        assert r.gradient is not None, (key, r.note)
        np.testing.assert_allclose(np.ravel(r.gradient), [3.0, 0.7], rtol=1e-8, err_msg=key)
