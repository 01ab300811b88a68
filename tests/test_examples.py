"""Each example in examples/ runs with --quick and prints the findings its lecture question expects."""
import importlib.util
import re
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


pytestmark = pytest.mark.usefixtures("one_blas_thread")


def run_example(name, tmp_path, capsys):
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--quick", "--out", str(tmp_path)]) == 0
    return capsys.readouterr().out


def figures(tmp_path, out, *names):
    if "figures skipped" in out:
        return
    for name in names:
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG", name


def test_zero_training_error(tmp_path, capsys):
    out = run_example("zero_training_error", tmp_path, capsys)
    for name in ("circle", "xor", "gaussians"):
        assert re.search(rf"^{name}: zero training error with \d+ hidden units", out, re.M), out
    # Two spiral points coincide (the centre) with different labels: 1 of 200 is the floor.
    assert re.search(r"^spiral: training error 0\.005 with \d+ hidden units .*the lowest possible: 1 point", out, re.M)
    assert "reached the lowest possible training error on 4 of 4 sets" in out
    figures(tmp_path, out, "circle.png", "xor.png", "gaussians.png", "spiral.png")


def test_cross_entropy_vs_quadratic(tmp_path, capsys):
    out = run_example("cross_entropy_vs_quadratic", tmp_path, capsys)
    ce, quad = map(float, re.search(r"^epoch 1: training error cross-entropy ([\d.]+), quadratic ([\d.]+)",
                                    out, re.M).groups())
    assert ce < quad
    assert "after one epoch from the same start, cross-entropy has the lower training error" in out
    figures(tmp_path, out, "training_error.png", "cost_surfaces.png")


def test_zero_init_symmetry(tmp_path, capsys):
    out = run_example("zero_init_symmetry", tmp_path, capsys)
    zeros = re.search(r"^zeros init: training accuracy ([\d.]+) .*hidden units identical: (\w+)", out, re.M)
    rand = re.search(r"^xavier_uniform init: training accuracy ([\d.]+) .*hidden units identical: (\w+)", out, re.M)
    assert zeros.group(2) == "yes" and rand.group(2) == "no"
    assert float(zeros.group(1)) < float(rand.group(1))
    figures(tmp_path, out, "hidden_units_zeros.png", "hidden_units_xavier_uniform.png", "training_loss.png")


def test_depth_vs_width(tmp_path, capsys):
    out = run_example("depth_vs_width", tmp_path, capsys)
    rows = dict(re.findall(r"^hidden (\[[\d, ]+\])\s+\d+ weights: .*test accuracy ([\d.]+)", out, re.M))
    assert set(rows) == {"[50]", "[8, 8, 8, 8]"}
    finding = re.search(r"^finding: .* the (deep|wide) network (\[[\d, ]+\]) scores higher", out, re.M)
    kind, winner = finding.groups()
    assert float(rows[winner]) == max(map(float, rows.values()))  # the finding says what the numbers say
    assert (kind == "deep") == (winner == "[8, 8, 8, 8]")
    figures(tmp_path, out, "decision_boundaries.png", "training_loss.png")


def test_how_many_layers(tmp_path, capsys):
    out = run_example("how_many_layers", tmp_path, capsys)
    rows = re.findall(r"^(sigmoid|relu)\s+depth (\d) \(width (\d+), (\d+) weights\): test accuracy ([\d.]+)", out, re.M)
    assert len(rows) == 10 and all(abs(int(w) - 5000) < 150 for *_, w, _ in rows)  # about equal weights
    for act in ("sigmoid", "relu"):
        scores = {int(d): float(a) for name, d, _, _, a in rows if name == act}
        best = int(re.search(rf"^finding: with {act} the best depth is (\d)", out, re.M).group(1))
        assert scores[best] == max(scores.values())  # the finding says what the numbers say
    assert len((tmp_path / "results.jsonl").read_text().splitlines()) == 10
    figures(tmp_path, out, "how_many_layers.png")


def test_how_many_layers_figures_in_the_readme_are_the_recorded_runs():
    # the README's means and spreads are those of the 50 full runs recorded beside the benchmarks
    import json

    from chainrule.sweeps.report import tables

    rows = [json.loads(line) for line in (EXAMPLES.parent / "benchmarks" / "runs" / "how_many_layers.jsonl")
            .read_text().splitlines()]
    assert len(rows) == 50 and {r["epochs"] for r in rows} == {30}
    _, per = tables([{**r, "depth x activation": f"{len(r['hidden'])} {r['activation']}"} for r in rows])
    stats = {k: f"{m:.3f} ± {s:.3f}" for k, m, s, _ in per["depth x activation"]}
    readme = (EXAMPLES.parent / "README.md").read_text()
    claim = re.search(r"With ReLU, depth barely matters at this size \((\S+ ± \S+) with one layer, (\S+ ± \S+) "
                      r"with five\).*?five\s+layers do not learn at all in 30 epochs \((\S+), chance\)", readme, re.S)
    assert claim.group(1) == stats["1 relu"] and claim.group(2) == stats["5 relu"]
    assert claim.group(3) == stats["5 sigmoid"].split(" ±")[0]


def test_how_many_layers_without_matplotlib_says_so_where_the_findings_are(tmp_path, capsys, monkeypatch):
    # the message on stdout, beside the findings, as every example prints it (and `figures` reads it)
    for mod in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, mod)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib raises ImportError
    out = run_example("how_many_layers", tmp_path, capsys)
    assert 'figures skipped: matplotlib is not installed (pip install "chainrule[viz]")' in out
    assert not (tmp_path / "how_many_layers.png").exists()


@pytest.mark.parametrize("name", ["zero_training_error", "cross_entropy_vs_quadratic", "zero_init_symmetry",
                                  "depth_vs_width", "how_many_layers"])
def test_example_is_documented(name):
    text = (EXAMPLES / f"{name}.py").read_text()
    assert text.startswith('"""') and "--out" in text and "--quick" in text
