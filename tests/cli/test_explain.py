"""`chainrule explain` and `chainrule explain-step`: tables on the terminal, errors with exit code 2."""
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

import chainrule as cr
from chainrule.cli import main

QUIZ = "exp(x*z) + x*z/ln(x) + sin(ln(x))/(x*z)"
COURSE = Path(__file__).resolve().parents[2] / ".." / "shared" / "datasets" / "cmu601" / "nn"


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_quiz_shares_x_times_z_as_one_node_with_three_terms(capsys):
    code, out, _ = run(capsys, "explain", QUIZ, "--at", "x=2", "z=3")
    assert code == 0
    forward, backward = out.split("\n\n")[:2]
    assert "v1    x * z        6" in forward
    assert forward.count("x * z") == 1  # one node, used three times
    lines = backward.splitlines()
    i = next(k for k, line in enumerate(lines) if line.startswith("v1 "))
    assert "sum of 3" in lines[i]
    assert lines[i + 1].split()[0] == "+" and lines[i + 2].split()[0] == "+"
    x = cr.tensor(2.0, requires_grad=True)
    z = cr.tensor(3.0, requires_grad=True)
    (cr.exp(x * z) + x * z / cr.log(x) + cr.sin(cr.log(x)) / (x * z)).backward()
    row = {line.split()[0]: line.split()[1] for line in lines if line[:1].isalpha()}
    assert float(row["x"]) == pytest.approx(x.grad.item(), rel=1e-5)
    assert float(row["z"]) == pytest.approx(z.grad.item(), rel=1e-5)


def test_forward_mode_and_formats(capsys, tmp_path):
    code, out, _ = run(capsys, "explain", QUIZ, "--at", "x=2", "z=3", "--forward-mode", "--format", "html",
                       "--precision", "12")
    assert code == 0
    assert out.startswith("<!DOCTYPE html>") and "<style>" in out  # a complete page
    root = ET.fromstring(out)
    assert len(list(root.iter("table"))) == 3
    last = list(root.iter("table"))[2].find("tbody").findall("tr")[-1]
    cells = ["".join(td.itertext()) for td in last.findall("td")]
    x = cr.tensor(2.0, requires_grad=True)
    (cr.exp(x * 3.0) + x * 3.0 / cr.log(x) + cr.sin(cr.log(x)) / (x * 3.0)).backward()
    assert cells[0] == "y" and float(cells[2]) == pytest.approx(x.grad.item(), rel=1e-10)
    path = tmp_path / "quiz.tex"
    code, _, err = run(capsys, "explain", QUIZ, "--at", "x=2,z=3", "--format", "latex", "-o", str(path))
    assert code == 0 and "wrote" in err and path.read_text().count("\\begin{tabular}") == 2
    code, out, _ = run(capsys, "explain", "x**2 + x", "--at", "x=1.5", "--format", "markdown")
    assert code == 0 and "| x | 4 | sum of 2 |" in out


@pytest.mark.parametrize("argv,message", [
    (["exp(x*", "--at", "x=1"], "cannot parse the expression"),
    (["x*z + w", "--at", "x=1"], "no value for w, z: give them with --at w=... z=..."),
    (["x*z", "--at", "x=1", "z=2", "q=3"], "--at gives q, which the expression does not use"),
    (["x*z", "--at", "x=1", "z"], "bad --at value: missing '='"),
    (["ln(x)", "--at", "x=-1"], "not finite at x=-1"),
    (["sqrt(x)", "--at", "x=0"], "not finite"),
    (["2 + 3", "--at", "x=1"], "--at gives x"),
    (["x*z", "--at", "x=1", "z=2", "--forward-mode", "q"], "--forward-mode q: not a variable"),
    (["x", "--at", "x=1", "-o", "/nonexistent-folder/out.txt"], "does not exist"),
    (["x", "--at", "x=1", "--precision", "0"], "--precision"),
])
def test_bad_input_is_a_clear_error_with_exit_code_2(capsys, argv, message):
    code, out, err = run(capsys, "explain", *argv)
    assert code == 2
    assert message in err and "Traceback" not in err
    assert err.startswith("chainrule explain: error: ")


def test_unknown_format_is_refused_by_the_parser(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["explain", "x", "--at", "x=1", "--format", "rtf"])
    assert exc.value.code == 2
    assert "invalid choice: 'rtf'" in capsys.readouterr().err


def _not_writable(folder):
    probe = folder / ".probe"
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except PermissionError:
        return True
    except OSError:
        return False
    os.unlink(probe)
    return False


def test_read_only_folder(capsys, tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        # Root writes anywhere it may chmod; /sys refuses even root where it is mounted read-only.
        target = next((f for f in (folder, Path("/sys")) if f.is_dir() and _not_writable(f)), None)
        if target is None:
            pytest.skip("no folder here refuses writes to this user")
        code, _, err = run(capsys, "explain", "x", "--at", "x=1", "-o", str(target / "t.txt"))
        assert code == 2 and "is not writable" in err and "Traceback" not in err
    finally:
        folder.chmod(0o700)


def test_command_line_entry_point_prints_no_traceback():
    done = subprocess.run([sys.executable, "-m", "chainrule", "explain", "x/", "--at", "x=1"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr and "column 3" in done.stderr


# ---------------------------------------------------------------- explain-step
def test_explain_step_on_the_tiny_set(capsys):
    code, out, _ = run(capsys, "explain-step", "--data", "tiny", "--steps", "2", "--precision", "10")
    assert code == 0
    first, second = out.split("Step on example 1")
    assert "Step on example 0 (label 7): loss 2.302585093" in first
    # the traced gradients are those of the library's model, one SGD step per example in order
    model = cr.nn.MLP(5, [4], 10, activation="sigmoid", init="zeros")
    X = np.array([[0, 1, 1, 1, 0], [0, 0, 0, 1, 0]], dtype=float)
    for x, y, text in ((X[0], 7, first), (X[1], 9, second)):
        loss = cr.nn.functional.cross_entropy(model(x[None, :]), np.array([y]))
        model.zero_grad()
        loss.backward()
        gb1 = model.layers[0].bias.grad.numpy()
        line = next(ln for ln in text.splitlines() if ln.startswith("dJ/db1"))
        shown = [float(v) for v in line.split("[")[1].rstrip("]").split(",")]
        assert np.allclose(shown, gb1, rtol=1e-8, atol=1e-15)
        with cr.no_grad():
            for p in model.parameters():
                p.copy_(p.numpy() - 0.1 * p.grad.numpy())


def test_explain_step_matches_the_course_file(capsys):
    path = COURSE / "tinyTrain.csv"
    if not path.is_file():
        pytest.skip("course data not available")
    code, from_file, _ = run(capsys, "explain-step", "--data", str(path), "--steps", "2")
    assert code == 0
    code, bundled, _ = run(capsys, "explain-step", "--data", "tiny", "--steps", "2")
    assert from_file == bundled


def test_explain_step_digits_html_and_graph(capsys, tmp_path):
    graph = tmp_path / "step.dot"
    code, out, _ = run(capsys, "explain-step", "--data", "digits", "--index", "3", "--hidden", "5",
                       "--init", "uniform", "--activation", "tanh", "--format", "html", "--graph", str(graph))
    assert code == 0
    assert out.startswith("<!DOCTYPE html>") and "<title>" in out
    assert len(list(ET.fromstring(out).iter("table"))) == 3
    src = graph.read_text()
    assert 'subgraph cluster_' in src and 'label="layer 1"' in src and 'label="output layer"' in src


@pytest.mark.parametrize("argv,message", [
    (["--index", "5"], "--index 5 is out of range: the data has 2 examples"),
    (["--steps", "3"], "runs past the last example"),
    (["--lr", "-1"], "--lr must be a positive number"),
    (["--init", "bogus"], "unknown initializer 'bogus'"),
    (["--activation", "bogus"], "bogus"),
    (["--hidden", "0"], "--hidden widths must be positive"),
    (["--classes", "5"], "--classes 5 is too few"),
    (["--data", "/nonexistent/file.csv"], "no such file"),
    (["--graph", "/nonexistent-folder/g.svg"], "does not exist"),
])
def test_explain_step_bad_input(capsys, argv, message):
    code, _, err = run(capsys, "explain-step", *argv)
    assert code == 2 and message in err and "Traceback" not in err


def test_explain_step_regression_data_is_refused(capsys, tmp_path):
    path = tmp_path / "reg.csv"
    path.write_text("0.5,1,2\n1.5,3,4\n")
    code, _, err = run(capsys, "explain-step", "--data", str(path))
    assert code == 2 and "class numbers" in err


@pytest.mark.parametrize("argv", [
    ["explain", "--at", "x=2", "z=3", "x*z"],
    ["explain", "--at", "x=2", "z=3", "x*z", "--precision", "4"],
    ["explain", "--precision", "4", "--at", "x=2", "z=3", "x*z"],
])
def test_at_before_the_expression_does_not_swallow_it(capsys, argv):
    code, out, err = run(capsys, *argv)
    assert code == 0, err
    assert "x*z" in out or "x * z" in out


def test_an_expression_starting_with_minus_is_not_an_option(capsys, tmp_path):
    code, out, err = run(capsys, "diff", "-x**2", "--at", "x=1", "--json")
    assert code == 0, err
    assert json.loads(out)["methods"]["reverse"]["gradient"] == [-2.0]
    code, out, err = run(capsys, "explain", "-x*z", "--at", "x=2", "z=3")
    assert code == 0, err
    code, out, err = run(capsys, "graph", "--at", "x=2", "-x*x", "-o", str(tmp_path / "g.dot"))
    assert code == 0, err
    assert (tmp_path / "g.dot").exists()


def test_missing_expression_is_a_usage_error(capsys):
    code, out, err = run(capsys, "diff", "--at", "x=1")
    assert code == 2 and "give the expression" in err
    code, out, err = run(capsys, "explain", "x*z", "--at", "x=1", "z")
    assert code == 2 and "missing '='" in err
