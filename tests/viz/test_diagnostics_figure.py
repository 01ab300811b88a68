"""The diagnostics figure: one line per layer in each panel, log scales where norms span decades."""
import pytest

import chainrule as cr
from chainrule.nn.training import History

pytest.importorskip("matplotlib")
from chainrule.viz.diagnostics import plot_diagnostics  # noqa: E402


def test_figure_of_a_fit_with_diagnostics(tmp_path):
    X, y = cr.data.circle(n=60, seed=0)
    net = cr.nn.MLP(2, [4, 4], 2, activation="relu", rng=0)
    h = cr.fit(net, "cross_entropy", X, y, optimizer=cr.optim.SGD(net.parameters(), lr=0.1), epochs=3,
               progress=False, diagnostics=True)
    fig = plot_diagnostics(h, tmp_path / "d.png", title="circle")
    grads, weights, ratios, units = fig.axes
    assert len(grads.lines) == len(weights.lines) == len(ratios.lines) == 3  # one per layer
    assert grads.get_yscale() == ratios.get_yscale() == "log"
    assert len(units.lines) == 2  # dead fractions of the two ReLU layers; the output layer has none
    assert [list(line.get_xdata()) for line in grads.lines] == [[1, 2, 3]] * 3
    assert (tmp_path / "d.png").read_bytes()[:4] == b"\x89PNG"


def test_no_records_is_a_clear_error():
    with pytest.raises(ValueError, match="diagnostics=True"):
        plot_diagnostics(History())


def test_doctests():
    import doctest

    from chainrule.viz import diagnostics

    result = doctest.testmod(diagnostics)
    assert result.failed == 0 and result.attempted > 0
