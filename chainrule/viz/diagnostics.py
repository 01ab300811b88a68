"""The figure of training diagnostics: per-layer gradient norms, weight norms, update ratios and
saturated or dead units over the epochs (records of ``cr.fit(..., diagnostics=True)``).

Like the other figures it is made without pyplot and imports matplotlib on first use.
"""
from __future__ import annotations

import numpy as np

from chainrule.viz.nnplots import _done, _figure

__all__ = ["plot_diagnostics"]


def _by_layer(records, key):
    """layer -> (epochs, values) for the records where ``key`` has a value."""
    out = {}
    for r in records:
        v = r.get(key)
        if v is not None:
            epochs, values = out.setdefault(r["layer"], ([], []))
            epochs.append(r["epoch"])
            values.append(float(v))
    return out


def plot_diagnostics(history, path=None, title=None):
    r"""Four panels, one line per layer (1 = nearest the input): the gradient norm
    $\|\partial J/\partial W_l\|$ and the update/weight ratio on log scales, the weight norm
    $\|W_l\|$, and the fraction of saturated sigmoid/tanh outputs (solid) or dead ReLU units
    (dashed). ``history`` is a History of a fit with ``diagnostics=True`` or its list of records.

    When the lines of the first panel fan out by orders of magnitude, the first layers get almost
    no gradient: the picture of vanishing gradients.

    >>> from chainrule.nn.training import History
    >>> h = History()
    >>> h.diagnostics = [{"epoch": e, "layer": l, "grad_norm": 10.0 ** (l - 3), "weight_norm": 1.0,
    ...                   "update_ratio": 1e-3, "saturated": 0.1 * l if l < 2 else None, "dead": None}
    ...                  for e in (1, 2) for l in (1, 2)]
    >>> len(plot_diagnostics(h).axes)
    4
    """
    records = getattr(history, "diagnostics", history)
    if not records:
        raise ValueError("plot_diagnostics: no diagnostics recorded; train with cr.fit(..., diagnostics=True)")
    layers = sorted({r["layer"] for r in records})
    fig = _figure(10.0, 6.4)
    axes = fig.subplots(2, 2).ravel()
    try:
        from matplotlib import colormaps

        cmap = colormaps["viridis"]
    except (ImportError, KeyError):  # an old matplotlib: default colours
        cmap = None

    def color(layer):
        if cmap is None:
            return None
        return cmap(0.9 * (layer - layers[0]) / max(1, layers[-1] - layers[0]))

    panels = (("grad_norm", "gradient norm ‖∂J/∂W‖", True), ("weight_norm", "weight norm ‖W‖", False),
              ("update_ratio", "update / weight ratio per epoch", True))
    for ax, (key, label, log) in zip(axes, panels):
        for layer, (epochs, values) in sorted(_by_layer(records, key).items()):
            values = np.asarray(values)
            if log:
                values = np.where(values > 0, values, np.nan)  # a zero has no place on a log axis
            ax.plot(epochs, values, color=color(layer), label=f"layer {layer}", marker="o" if len(epochs) < 15 else None,
                    markersize=3)
        if log:
            ax.set_yscale("log")
        ax.set_title(label, fontsize=10)
    ax = axes[3]
    drawn = False
    for key, style, what in (("saturated", "-", "saturated"), ("dead", "--", "dead")):
        for layer, (epochs, values) in sorted(_by_layer(records, key).items()):
            ax.plot(epochs, values, style, color=color(layer), label=f"layer {layer} {what}")
            drawn = True
    ax.set_ylim(-0.03, 1.03)
    ax.set_title("saturated sigmoid/tanh outputs, dead ReLU units", fontsize=10)
    if not drawn:
        ax.text(0.5, 0.5, "no sigmoid, tanh or ReLU layer", ha="center", va="center", transform=ax.transAxes)
    from matplotlib.ticker import MaxNLocator

    for ax in axes:
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    # One legend beside the panels (the layers' colours are the same in all four).
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside right upper", frameon=False, fontsize=8)
    if title:
        fig.suptitle(title)
    return _done(fig, path)
