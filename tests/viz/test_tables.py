"""Trace tables: values and adjoints in the tables are the modes' results; every format parses."""
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

import numpy as np
import pytest

import chainrule as cr
from chainrule.viz.tables import FORMATS, fmt_value, latex_name


def quiz_shared(x, z):
    xz = cr.name(x * z, "xz")
    lx = cr.log(x)
    return cr.exp(xz) + xz / lx + cr.sin(lx) / xz


@pytest.fixture
def graph():
    return cr.trace(quiz_shared, 2.0, 3.0)


def parse_text_rows(text):
    """{name: [cells]} from a text table: columns are separated by two or more spaces."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if set(line.replace(" ", "")) == {"-"})
    rows = {}
    for line in lines[start + 1:]:
        if line.startswith(" "):
            continue  # a continuation line of a multi-line cell
        cells = re.split(r"\s{2,}", line.strip())
        rows[cells[0]] = cells[1:]
    return rows


def test_forward_table_values_are_the_traced_values(graph):
    rows = parse_text_rows(graph.forward_table(precision=12).to_text())
    assert rows["xz"] == ["x * z", "6"]
    assert rows["x"] == ["input", "2"]
    for n in graph.nodes:
        if n.kind != "constant":
            assert float(rows[n.name][-1].replace(" (output)", "")) == pytest.approx(float(n.value), rel=1e-11)


def test_backward_table_adjoints_equal_reverse_mode(graph):
    x = cr.tensor(2.0, requires_grad=True)
    z = cr.tensor(3.0, requires_grad=True)
    quiz_shared(x, z).backward()
    text = graph.backward_table(precision=12).to_text()
    rows = parse_text_rows(text)
    assert float(rows["x"][0]) == pytest.approx(x.grad.item(), rel=1e-11)
    assert float(rows["z"][0]) == pytest.approx(z.grad.item(), rel=1e-11)
    # xz feeds three quantities: its row says so and lists three terms
    assert rows["xz"][1] == "sum of 3"
    block = text[text.index("\nxz "):].splitlines()[1:4]
    assert [line.split()[0] for line in block[1:]] == ["+", "+"]
    assert "g_v2 * dv2/dxz" in block[0]
    assert float(rows["y"][0] if "y" in rows else rows[graph.output.name][0]) == 1.0


def test_tangent_table_equals_directional_derivative(graph):
    text = graph.tangent_table("x", precision=12).to_text()
    rows = parse_text_rows(text)
    out = rows[graph.output.name]
    assert float(out[1]) == pytest.approx(float(graph.adjoint("x")), rel=1e-10)
    assert rows["z"][1] == "0" and rows["x"][1] == "1"
    assert "dxz/dx * dx = 3 * 1 = 3" in text


def test_every_term_value_is_the_product_of_its_factors(graph):
    # "g_c * dc/du = a * b = t": t must equal a * b for scalar graphs.
    text = graph.backward_table(precision=15).to_text()
    found = re.findall(r"= (\S+) \* (\S+) = (\S+)$", text, flags=re.M)
    assert len(found) >= 10
    for a, b, t in found:
        assert float(a) * float(b) == pytest.approx(float(t), rel=1e-12, abs=1e-300)


def test_html_is_well_formed(graph):
    html = graph.explain("html", forward_mode="x")
    assert html.startswith("<!DOCTYPE html>")  # a complete page, styled
    root = ET.fromstring(html)  # XML-parsable, so every tag is closed
    assert root.tag == "html" and root.find("head").find("style") is not None
    tables = list(root.iter("table"))
    assert len(tables) == 3
    rows = tables[1].find("tbody").findall("tr")
    names = ["".join(r.find("td").itertext()) for r in rows]
    assert "xz" in names and names[0] == graph.output.name

    class Check(HTMLParser):
        def __init__(self):
            super().__init__()
            self.stack = []

        def handle_starttag(self, tag, attrs):
            self.stack.append(tag)

        def handle_startendtag(self, tag, attrs):
            pass  # <br/>

        def handle_endtag(self, tag):
            assert self.stack.pop() == tag

    checker = Check()
    checker.feed(html)
    assert checker.stack == []


def test_markdown_tables_have_one_cell_per_column(graph):
    md = graph.backward_table().to_markdown()
    lines = [line for line in md.splitlines() if line.startswith("|")]
    widths = {line.replace("\\|", "").count("|") for line in lines}
    assert widths == {5}  # 4 columns
    assert lines[1] == "|---|---|---|---|"
    assert any("<br>+ g_" in line for line in lines)


def _balanced(tex):
    depth = 0
    for i, c in enumerate(tex):
        if c == "{" and (i == 0 or tex[i - 1] != "\\"):
            depth += 1
        elif c == "}" and (i == 0 or tex[i - 1] != "\\"):
            depth -= 1
            if depth < 0:
                return False
    return depth == 0


def test_latex_balances_and_compiles_where_latex_is_installed(graph, tmp_path):
    tex = graph.explain("latex", forward_mode="x")
    assert _balanced(tex)
    assert tex.count("\\begin{tabular}") == tex.count("\\end{tabular}") == 3
    for line in tex.splitlines():
        if line.endswith("\\\\") and not line.startswith("\\textbf"):
            assert line.count("$") % 2 == 0
    assert "x_{}" not in tex and "g_{\\mathrm{xz}}" in tex
    engine = shutil.which("pdflatex") or shutil.which("lualatex") or shutil.which("xelatex")
    if engine is None:
        return  # braces and math delimiters checked above; no engine to compile with
    doc = tmp_path / "t.tex"
    doc.write_text("\\documentclass{article}\\usepackage{amsmath}\\begin{document}\n" + tex + "\n\\end{document}\n")
    done = subprocess.run([engine, "-interaction=nonstopmode", "-halt-on-error", doc.name], cwd=tmp_path,
                          capture_output=True, timeout=120)
    assert done.returncode == 0, done.stdout.decode(errors="replace")[-2000:]


def test_unknown_format_is_a_clear_error(graph):
    with pytest.raises(ValueError, match="unknown table format 'rtf'.*text, markdown, latex, html"):
        graph.forward_table().render("rtf")
    assert set(FORMATS) == {"text", "markdown", "latex", "html"}


def test_jupyter_reprs(graph):
    assert graph.forward_table()._repr_html_().startswith("<table")
    html = graph._repr_html_()
    assert html.lstrip().startswith("<svg") or html.startswith("<div")


def test_value_formatting():
    assert fmt_value(np.float64(-0.0)) == "0"
    assert fmt_value(np.array([[1.0, 2.0], [3.0, 4.5]])) == "[[1, 2], [3, 4.5]]"
    assert fmt_value(np.arange(20.0)) == "array(20) [0, 1, 2, ..., 19]"
    assert fmt_value(np.int64(3)) == "3" and fmt_value(True) == "True"
    assert fmt_value(1 / 3, precision=3) == "0.333"


def test_latex_names():
    assert latex_name("v12") == "v_{12}"
    assert latex_name("alpha") == "\\alpha"
    assert latex_name("y_hat") == "\\hat{y}"
    assert latex_name("layers.0.weight") == "\\mathrm{layers.0.weight}"
    assert latex_name("a_b") == "\\mathrm{a\\_b}"


def test_array_graph_tables_show_array_terms():
    w = np.array([[1.0, 2.0], [0.5, -1.0]])
    g = cr.trace(lambda x: cr.sum(cr.tanh(cr.matmul(w, x)) * x), np.array([0.3, -0.2]))
    text = g.backward_table().to_text()
    assert "sum of 2" in text  # x feeds matmul and multiply
    rows = parse_text_rows(text)
    gx = [float(v) for v in rows["x"][0].strip("[]").split(",")]
    x = cr.tensor([0.3, -0.2], requires_grad=True)
    cr.sum(cr.tanh(cr.matmul(w, x)) * x).backward()
    assert np.allclose(gx, x.grad.numpy(), rtol=1e-5)
