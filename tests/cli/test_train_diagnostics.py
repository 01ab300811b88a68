"""`chainrule train --diagnostics`: records in metrics.json, the figure, and the warning naming the layer."""
import json
import warnings

import numpy as np
import pytest

import chainrule as cr
from chainrule.cli import main


def train(tmp_path, capsys, *extra):
    # Three features (the circle and a noise column): no 2-D plane figures, which take long to draw.
    X, y = cr.data.circle(n=200, seed=0)
    data = tmp_path / "circle3.csv"
    np.savetxt(data, np.column_stack([X, np.random.default_rng(0).normal(size=len(X)), y]), delimiter=",",
               header="a,b,c,label", comments="", fmt="%.6g")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code = main(["train", "--data", str(data), "--hidden", "16", "16", "16", "16", "16",
                     "--epochs", "2", "--no-progress", "--out", str(tmp_path / "run"), *extra])
    capsys.readouterr()
    assert code == 0
    return json.loads((tmp_path / "run" / "metrics.json").read_text())["history"], \
        [w for w in caught if issubclass(w.category, cr.TrainingWarning)]


def test_diagnostics_flag_records_draws_and_warns(tmp_path, capsys):
    history, caught = train(tmp_path, capsys, "--diagnostics", "--activation", "sigmoid", "--init", "uniform")
    assert [(r["epoch"], r["layer"]) for r in history["diagnostics"]] == [(e, l) for e in (1, 2) for l in range(1, 7)]
    assert len(caught) == 1 and "layer 1's gradient is" in str(caught[0].message)
    pytest.importorskip("matplotlib")
    assert (tmp_path / "run" / "diagnostics.png").read_bytes()[:4] == b"\x89PNG"


def test_without_the_flag_nothing_is_recorded(tmp_path, capsys):
    history, caught = train(tmp_path, capsys, "--activation", "sigmoid", "--init", "uniform", "--no-figures")
    assert history["diagnostics"] == [] and caught == []
    assert not (tmp_path / "run" / "diagnostics.png").exists()
