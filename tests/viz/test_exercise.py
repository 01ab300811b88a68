"""Exercises: the key equals reverse mode and central differences, the blank tables hide every
answer cell and keep the layout, the distractors are distinct and wrong, the same seed gives the
same exercise, the LaTeX compiles where a LaTeX engine is installed, the HTML is a whole page."""
import json
import re
import shutil
import subprocess

import numpy as np
import pytest

import chainrule as cr
from chainrule.expr import parse
from chainrule.modes.numeric import gradient as numeric_gradient
from chainrule.viz.exercise import KINDS, _functions, _shown

CASES = [(kind, seed, difficulty) for kind in KINDS for difficulty in (1, 2, 3) for seed in (0, 1, 2)]


def _function(ex):
    f = parse(ex.expression).to_function(_functions())
    return lambda *args: f(**dict(zip(ex.variables, args)))


@pytest.mark.parametrize("kind,seed,difficulty", CASES)
def test_answers_are_reverse_mode_and_central_differences(kind, seed, difficulty):
    ex = cr.exercise(kind, seed=seed, difficulty=difficulty)
    point = [ex.at[v] for v in ex.variables]
    f = _function(ex)
    # Reverse mode by cr.grad, independently of the trace that filled the tables.
    reverse = cr.grad(f, argnums=tuple(range(len(point))))(*point)
    central = numeric_gradient(f, *point, argnums=tuple(range(len(point))))
    for v, r, c in zip(ex.variables, reverse, central):
        assert ex.gradient[v] == pytest.approx(float(r), rel=1e-12, abs=1e-12)
        assert ex.gradient[v] == pytest.approx(float(c), rel=1e-6, abs=1e-8)
    right = [value for value, why in ex.options if why == "right"]
    assert len(right) == 1 and right[0] == ex.gradient[ex.wrt]
    assert ex.options["ABCD".index(ex.answer)][1] == "right"


@pytest.mark.parametrize("kind,seed,difficulty", CASES)
def test_distractors_are_distinct_and_wrong(kind, seed, difficulty):
    ex = cr.exercise(kind, seed=seed, difficulty=difficulty)
    shown = [_shown(v) for v, _ in ex.options]
    assert len(ex.options) == 4 and len(set(shown)) == 4, ex.options
    right = ex.gradient[ex.wrt]
    for value, why in ex.options:
        if why != "right":
            assert not np.isclose(value, right, rtol=1e-3, atol=0), (value, why)


def test_distractors_come_from_the_named_mistakes():
    # A quiz where a shared quantity collects several terms, so forgetting one is a real mistake.
    ex = cr.exercise("quiz", seed=7, difficulty=2)
    mistakes = {why.split(":")[0] for _, why in ex.options}
    assert {"right", "sign error", "swapped", "missing accumulation term"} <= mistakes
    by = {why.split(":")[0]: value for value, why in ex.options}
    assert by["sign error"] == -ex.gradient["x"]
    assert by["swapped"] == ex.gradient["z"]
    # Here x is used once, by v2 = x + z (dv2/dx = 1), and g_v2 sums three terms: forgetting
    # all but the first (in the table's order) leaves that term as dy/dx.
    assert [c.name for c, _ in ex.graph["x"].consumers] == ["v2"]
    assert "g_v2 kept only its first term" in next(why for _, why in ex.options if why.startswith("missing"))
    assert len(ex.graph.terms("v2")) == 3
    first = min(ex.graph.terms("v2"), key=lambda t: (t[0].index, t[1]))
    assert by["missing accumulation term"] == pytest.approx(float(first[2]), rel=1e-12)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("fmt", ["text", "markdown", "latex", "html"])
def test_blank_tables_hide_every_answer_and_keep_the_layout(kind, fmt):
    ex = cr.exercise(kind, seed=4, difficulty=2)
    out = ex.graph.output
    for blank, full, columns, is_answer in (
            (ex.forward_table(), ex.forward_table(answers=True), (2,), lambda n: n.kind == "op"),
            (ex.backward_table(), ex.backward_table(answers=True), (1, 2, 3), lambda n: n is not out)):
        bh, brows = blank.rows(fmt)
        fh, frows = full.rows(fmt)
        assert bh == fh and len(brows) == len(frows) and blank.title == full.title
        hidden = 0
        for b, f in zip(brows, frows):
            assert len(b) == len(f) and b[0] == f[0]
            name = re.sub(r"<[^>]+>|[{}\\_]", "", b[0])
            node = next(n for n in ex.graph.nodes if re.sub(r"[_]", "", n.name) == name)
            for j, (bc, fc) in enumerate(zip(b, f)):
                if j in columns and is_answer(node):
                    assert bc == "", (name, j, bc)
                    hidden += fc != ""
                else:
                    assert bc == fc
        assert hidden > 0
    # The rendered blank exercise shows no value of an operation and no adjoint.
    text = ex.render(fmt)
    for n in ex.graph.ops:
        for value in (n.value, ex.graph.adjoint(n.name)):
            shown = cr.viz.fmt_value(value)
            if len(shown) >= 5:  # long enough not to be a weight, an input or a constant
                assert shown not in text, (n.name, shown)
    assert f"{ex.gradient[ex.wrt]:.6g}" not in text
    assert f"{ex.gradient[ex.wrt]:.6g}" in ex.render(fmt, answers=True)


@pytest.mark.parametrize("kind", KINDS)
def test_same_seed_same_exercise_other_seed_other_exercise(kind):
    a = cr.exercise(kind, seed=11, difficulty=2)
    b = cr.exercise(kind, seed=11, difficulty=2)
    for fmt in ("text", "json", "latex", "html", "markdown"):
        assert a.render(fmt, answers=True) == b.render(fmt, answers=True)
    others = {cr.exercise(kind, seed=s, difficulty=2).expression for s in range(12, 20)}
    assert len(others | {a.expression}) > 3


def test_same_seed_same_exercise_in_a_fresh_interpreter_with_other_hash_seed(tmp_path):
    code = "import chainrule as cr; print(cr.exercise('graph', seed=5, difficulty=3).render('json', answers=True))"
    outs = []
    for hash_seed in ("1", "2"):
        env = dict(__import__("os").environ, PYTHONHASHSEED=hash_seed)
        outs.append(subprocess.run([__import__("sys").executable, "-c", code], env=env, capture_output=True,
                                   text=True, timeout=120, check=True).stdout)
    assert outs[0] == outs[1] == cr.exercise("graph", seed=5, difficulty=3).render("json", answers=True) + "\n"


def test_json_has_expression_point_and_gradient():
    ex = cr.exercise("quiz", seed=3, difficulty=3)
    plain = json.loads(ex.render("json"))
    assert "gradient" not in plain and "answer" not in plain
    data = json.loads(ex.render("json", answers=True))
    assert data["expression"] == ex.expression and data["at"] == ex.at
    assert set(data["gradient"]) == set(data["at"]) == set(parse(data["expression"]).variables)
    assert data["options"][data["answer"]] == data["gradient"][data["wrt"]]


def test_html_is_a_complete_page():
    ex = cr.exercise("network", seed=2, difficulty=2)
    page = ex.render("html", answers=True)
    assert page.startswith("<!DOCTYPE html>") and "<head>" in page and "<style>" in page
    assert "<title>" in page and page.rstrip().endswith("</html>")
    assert page.count("<table") == 2 and "Key" in page
    assert "<!DOCTYPE" not in ex._repr_html_() and "<table" in ex._repr_html_()


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="kind"):
        cr.exercise("essay")
    with pytest.raises(ValueError, match="difficulty"):
        cr.exercise(difficulty=4)
    with pytest.raises(ValueError, match="seed"):
        cr.exercise(seed=-1)
    with pytest.raises(ValueError, match="format"):
        cr.exercise().render("pdf")


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="no LaTeX engine (Debian: texlive-latex-base)")
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("answers", [False, True])
def test_latex_compiles(tmp_path, kind, answers):
    ex = cr.exercise(kind, seed=6, difficulty=3)
    (tmp_path / "ex.tex").write_text(ex.render("latex", answers=answers))
    done = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "ex.tex"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-3000:]
    assert (tmp_path / "ex.pdf").stat().st_size > 1000


def test_doctests():
    import doctest

    from chainrule.viz import exercise as module, page

    assert doctest.testmod(module).failed == 0 and doctest.testmod(page).failed == 0
