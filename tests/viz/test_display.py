"""What a student sees in a notebook: every report, model, history and exercise shows itself as an
HTML table (well-formed, escaped, with its numbers); documents are complete styled pages."""
import xml.etree.ElementTree as ET

import numpy as np
import pytest

import chainrule as cr


def cells(fragment):
    root = ET.fromstring(fragment)  # well-formed: every tag closed, text escaped
    return root, ["".join(td.itertext()) for td in root.iter("td")]


def test_compare_report():
    report = cr.compare(lambda x, z: cr.exp(x * z) + x * z, 1.0, 2.0, methods=["reverse", "central"])
    root, texts = cells(report._repr_html_())
    assert root.find("table").find("caption").text.startswith("f(x, z) at x = 1, z = 2")
    want = 2 * np.exp(2.0) + 2
    assert float(texts[texts.index("reverse mode") + 1]) == pytest.approx(want, rel=1e-12)
    assert "central differences" in texts


def test_symbolic_derivative():
    pytest.importorskip("sympy")
    d = cr.symbolic.derivative(lambda x, z: cr.exp(x * z) + x * z)
    root, texts = cells(d._repr_html_())
    assert texts[:2] == ["df/dx", str(d.expressions["x"])] and texts[3:5] == ["df/dz", str(d.expressions["z"])]
    assert texts[2] == str(d.size["x"])


def test_module():
    model = cr.nn.MLP(3, [4], 2, activation="tanh", rng=0)
    root, texts = cells(model._repr_html_())
    assert "MLP: 26 parameters" in "".join(root.find("table").find("caption").itertext())
    assert texts[:3] == ["layers.0.weight", "4 x 3", "12"]
    assert "(activations.0): Tanh()" in root.find("pre").text and "3 -> [4] -> 2" in root.find("pre").text


def test_history():
    h = cr.History()
    for epoch in range(1, 31):
        h._record(epoch, {"loss": 1.0 / epoch, "val_loss": abs(epoch - 25) + 0.5})
    root, texts = cells(h._repr_html_())
    assert "History: 30 epochs" == root.find("caption").text
    assert "25 (best)" in texts and "..." in texts and "1" in texts and "30" in texts
    assert "15" not in texts  # the middle of a long run is elided
    assert cells(cr.History()._repr_html_())[0].find("caption").text == "History: no epochs"


def test_exercise_and_trace_fragments_and_pages():
    ex = cr.exercise("quiz", seed=2)
    root, _ = cells("<div>" + ex._repr_html_() + "</div>")
    assert len(list(root.iter("table"))) == 2
    g = cr.trace(lambda x: cr.sin(x) * x, 1.0)
    for page in (g.explain("html"), ex.render("html"), ex.render("html", answers=True)):
        assert page.startswith("<!DOCTYPE html>")
        root = ET.fromstring(page)
        assert root.tag == "html" and root.find("head/style").text.strip() and root.find("head/title").text
        assert root.find("body") is not None

