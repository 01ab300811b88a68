"""`chainrule graph`: the picture of an expression's graph, and its errors."""
import shutil
import xml.etree.ElementTree as ET

import pytest

from chainrule.cli import main

QUIZ = "exp(x*z) + x*z/ln(x) + sin(ln(x))/(x*z)"
SVG = "{http://www.w3.org/2000/svg}"


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz `dot` is not installed")
def test_svg_of_the_quiz(capsys, tmp_path):
    path = tmp_path / "quiz.svg"
    code, _, err = run(capsys, "graph", QUIZ, "--at", "x=2", "z=3", "-o", str(path))
    assert code == 0 and "wrote" in err
    root = ET.parse(path).getroot()
    labels = {}
    for g in root.iter(f"{SVG}g"):
        if g.get("class") == "node":
            texts = [t.text for t in g.findall(f"{SVG}text")]
            labels[texts[0]] = texts[1:]
    # x*z and ln(x) appear once each: the expression's shared subexpressions are one node
    assert labels["v1 = x * z"] == ["value 6", "grad 404.9"]
    assert sum(1 for k in labels if k.endswith("log(x)")) == 1
    assert labels["x (input)"] == ["value 2", "grad 1208"]
    assert set(labels) >= {"x (input)", "z (input)", "y = v5 + v7"}
    png = tmp_path / "quiz.png"
    assert run(capsys, "graph", QUIZ, "--at", "x=2", "z=3", "-o", str(png))[0] == 0
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_dot_output_needs_no_graphviz(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    path = tmp_path / "g.dot"
    code, _, _ = run(capsys, "graph", "x*x + 1", "--at", "x=3", "-o", str(path))
    assert code == 0 and path.read_text().startswith("digraph")
    code, _, err = run(capsys, "graph", "x*x + 1", "--at", "x=3", "-o", str(tmp_path / "g.svg"))
    assert code == 1 and "apt-get install graphviz" in err and "Traceback" not in err
    assert (tmp_path / "g.dot").exists() and not (tmp_path / "g.svg").exists()


@pytest.mark.parametrize("argv,message", [
    (["x", "--at", "x=1", "-o", "g.jpg"], "unknown drawing extension '.jpg'"),
    (["x", "--at", "x=1", "-o", "g.svg", "--format", "gif"], "unknown format 'gif'"),
    (["x", "--at", "x=1", "-o", "/nonexistent-folder/g.svg"], "folder /nonexistent-folder does not exist"),
    (["x +", "--at", "x=1", "-o", "g.svg"], "cannot parse the expression"),
    (["x * y", "--at", "x=1", "-o", "g.svg"], "no value for y"),
    (["+".join(["x"] * 1200), "--at", "x=1", "-o", "g.svg"], "1,200 nodes, more than the 1,000"),
])
def test_bad_input(capsys, tmp_path, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    if "1,000" in message:
        argv = argv + ["--max-nodes", "1000"]
    code, _, err = run(capsys, "graph", *argv)
    assert code == 2 and message in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_default_node_limit(capsys, tmp_path):
    expr = "+".join(f"sin(x*{i})" for i in range(700))  # 2,100 operations
    code, _, err = run(capsys, "graph", expr, "--at", "x=1", "-o", str(tmp_path / "g.svg"))
    assert code == 2 and "more than the 2,000" in err and "subgraph" in err
