"""Graph drawings: DOT source, SVG and PNG rendered by Graphviz, and the errors around them."""
import os
import shutil
import xml.etree.ElementTree as ET

import numpy as np
import pytest

import chainrule as cr
from chainrule.viz.dot import GraphTooLargeError, GraphvizError, node_label

SVG = "{http://www.w3.org/2000/svg}"
needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz `dot` is not installed")


def quiz_shared(x, z):
    xz = x * z
    lx = cr.log(x)
    return cr.exp(xz) + xz / lx + cr.sin(lx) / xz


def svg_nodes(path):
    """{node id: [text lines]} and the set of edges (tail, head) read back from an SVG."""
    root = ET.parse(path).getroot()
    nodes, edges, clusters = {}, set(), []
    for g in root.iter(f"{SVG}g"):
        kind = g.get("class")
        title = g.find(f"{SVG}title").text if g.find(f"{SVG}title") is not None else None
        texts = [t.text for t in g.findall(f"{SVG}text")]
        if kind == "node":
            nodes[title] = texts
        elif kind == "edge":
            edges.add(tuple(title.split("->")))
        elif kind == "cluster":
            clusters.append(texts[0])
    return nodes, edges, clusters


@needs_dot
def test_svg_has_the_graphs_nodes_labels_and_edges(tmp_path):
    g = cr.trace(quiz_shared, 2.0, 3.0)
    path = g.draw(tmp_path / "quiz.svg")
    nodes, edges, _ = svg_nodes(path)
    assert set(nodes) == {f"n{n.index}" for n in g.nodes}
    for n in g.nodes:
        assert nodes[f"n{n.index}"] == node_label(g, n)
    xz = g.nodes[2]
    assert nodes[f"n{xz.index}"] == ["v1 = x * z", "value 6", "grad 404.9"]
    expected = {(f"n{a.index}", f"n{n.index}") for n in g.nodes for a in n.args}
    assert edges == expected
    assert sum(1 for t, h in edges if t == f"n{xz.index}") == 3  # x*z feeds three quantities
    assert not [p for p in os.listdir(tmp_path) if p != "quiz.svg"]  # no temporary files left


@needs_dot
def test_png_and_clusters(tmp_path):
    def f(x):
        with cr.viz.group("hidden layer"):
            h = cr.tanh(x * 2.0)
        return cr.sum(h * h)

    g = cr.trace(f, np.array([0.5, -0.5]))
    png = g.draw(tmp_path / "g.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    nodes, _, clusters = svg_nodes(g.draw(tmp_path / "g.svg"))
    assert clusters == ["hidden layer"]
    assert len(nodes) == len(g.nodes)


def test_dot_source_styles_kinds_apart(tmp_path):
    w = cr.tensor([1.0, 2.0], requires_grad=True, name="w")
    g = cr.trace(lambda x: cr.sum(w * x + 1.0), np.ones(2))
    src = (g.draw(tmp_path / "g.dot")).read_text()
    line = {n.name: next(ln for ln in src.splitlines() if ln.strip().startswith(f"n{n.index} ")) for n in g.nodes}
    assert "rounded,filled" in line["x"] and "#d6e6ff" in line["x"]
    assert "#ffe3bf" in line["w"]
    assert "plaintext" in line["1"]
    assert "peripheries=2" in line[g.output.name]
    assert "grad [1, 2]" in line["x"]


def test_missing_dot_writes_the_source_and_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    g = cr.trace(quiz_shared, 2.0, 3.0)
    with pytest.raises(GraphvizError, match="apt-get install graphviz.*brew install graphviz"):
        g.draw(tmp_path / "quiz.svg")
    assert not (tmp_path / "quiz.svg").exists()
    assert (tmp_path / "quiz.dot").read_text().startswith("digraph chainrule {")
    assert g._repr_svg_() is None  # Jupyter falls back to the HTML tables
    assert g._repr_html_().startswith("<div")


def test_too_large_graph_is_refused_quickly(tmp_path):
    def f(x):
        for _ in range(1200):
            x = cr.sin(x) + x
        return x

    g = cr.trace(f, 0.1)
    with pytest.raises(GraphTooLargeError, match="2,401 nodes.*subgraph.*text"):
        g.draw(tmp_path / "big.svg")
    assert not (tmp_path / "big.svg").exists()
    g.draw(tmp_path / "big.dot")  # the source has no such limit
    with pytest.raises(GraphTooLargeError):
        g.draw(tmp_path / "big.png", max_nodes=100)


def test_bad_paths_and_formats(tmp_path):
    g = cr.trace(lambda x: x * x, 2.0)
    with pytest.raises(ValueError, match="unknown drawing extension '.jpg'"):
        g.draw(tmp_path / "g.jpg")
    with pytest.raises(ValueError, match="unknown drawing format 'pdf'"):
        g.draw(tmp_path / "g.svg", format="pdf")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        g.draw(tmp_path / "missing" / "g.dot")
