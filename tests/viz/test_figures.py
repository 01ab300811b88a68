"""Cost figures: forward/reverse crossover and symbolic expression growth, written atomically."""
import os
import xml.etree.ElementTree as ET

import pytest

pytest.importorskip("matplotlib")
pytest.importorskip("sympy")

import chainrule as cr  # noqa: E402


def test_crossover_figure_writes_png(tmp_path):
    data = cr.viz.measure_crossover(inputs=(1, 4), outputs=(1, 4), fixed=2, repeat=1)
    assert [row[0] for row in data["inputs"]] == [1, 4] and [row[0] for row in data["outputs"]] == [1, 4]
    assert all(t > 0 for row in data["inputs"] + data["outputs"] for t in row[1:])
    path = tmp_path / "crossover.png"
    fig = cr.viz.crossover_figure(path, data=data)
    assert path.read_bytes()[:4] == b"\x89PNG"
    assert [len(ax.lines) for ax in fig.axes] == [2, 3]  # forward, reverse (+ the m = n marker)
    assert fig.axes[1].get_xlabel() == "outputs m (2 inputs)"
    assert os.listdir(tmp_path) == ["crossover.png"]


def test_symbolic_growth_figure_writes_svg(tmp_path):
    rows = cr.viz.measure_symbolic_growth(depths=(1, 2, 3))
    # The naive tree outgrows the shared graph, which grows by a constant per level.
    assert [r["naive"] > r["shared"] for r in rows] == [True, True, True]
    steps = [b["shared"] - a["shared"] for a, b in zip(rows, rows[1:])]
    assert steps[0] == steps[1]
    path = tmp_path / "growth.svg"
    cr.viz.symbolic_growth_figure(path, data=rows)
    assert ET.parse(path).getroot().tag.endswith("svg")


def test_figure_into_a_missing_folder_fails_cleanly(tmp_path):
    rows = [{"depth": 1, "naive": 9, "shared": 6, "function_tree": 4, "function_dag": 3}]
    with pytest.raises(FileNotFoundError, match="does not exist"):
        cr.viz.symbolic_growth_figure(tmp_path / "nope" / "g.png", data=rows)
