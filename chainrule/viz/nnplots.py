"""Figures of training: loss curves, decision boundaries, hidden units over the plane, confusion matrices.

Every function returns a matplotlib Figure and, given ``path``, also writes it there atomically.
Figures are made without pyplot (no global figure registry, no GUI backend), so they are safe
in scripts, tests and servers; matplotlib is imported on first use.
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np

__all__ = [
    "plot_history", "plot_curves", "plot_decision_boundary", "plot_hidden_units",
    "plot_confusion_matrix", "save_figure", "plane_grid",
]

_CLASS_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                 "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")


def _figure(width, height):
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError('figures need matplotlib: pip install "chainrule[viz]"') from None
    return Figure(figsize=(width, height), layout="constrained")


def save_figure(fig, path, dpi=110):
    """Write ``fig`` to ``path`` (format from the suffix, PNG by default) atomically.

    >>> import os, tempfile
    >>> fig = plot_curves({"a": [3.0, 2.0, 1.0]}, ylabel="loss")
    >>> path = os.path.join(tempfile.mkdtemp(), "a.png")
    >>> save_figure(fig, path); open(path, "rb").read(4) == b"\\x89PNG"
    True
    """
    from chainrule.serialization import atomic_write

    path = Path(path)
    fmt = path.suffix.lstrip(".").lower() or "png"
    buffer = io.BytesIO()
    # Rendering into memory first: a failed render never leaves a half-written file behind.
    fig.savefig(buffer, format=fmt, dpi=dpi)
    atomic_write(path, buffer.getvalue())


def _done(fig, path):
    if path is not None:
        save_figure(fig, path)
    return fig


def plot_curves(curves, ylabel="loss", xlabel="epoch", title=None, path=None, logy=False, ax=None):
    """One line per entry of ``curves`` (label -> values per epoch), on one axis.

    >>> fig = plot_curves({"train": [1.0, 0.5], "validation": [1.1, 0.7]}, title="loss")
    >>> len(fig.axes[0].lines)
    2
    """
    fig = None
    if ax is None:
        fig = _figure(5.0, 3.4)
        ax = fig.add_subplot()
    for label, values in curves.items():
        values = np.asarray(values, dtype=np.float64)
        ax.plot(np.arange(1, len(values) + 1), values, label=str(label), marker="o" if len(values) < 15 else None,
                markersize=3)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if logy:
        ax.set_yscale("log")
    if title:
        ax.set_title(title)
    if len(curves) > 1:
        ax.legend(frameon=False)
    ax.grid(alpha=0.3)
    return _done(fig, path) if fig is not None else ax.figure


def plot_history(history, path=None, title=None):
    """Loss and every metric of a training History, training against validation, one panel each.

    >>> from chainrule.nn.training import History
    >>> h = History()
    >>> for e, (l, v) in enumerate([(1.0, 1.2), (0.5, 0.8)], 1):
    ...     h._record(e, {"loss": l, "val_loss": v, "accuracy": 0.5 + e / 10})
    >>> len(plot_history(h).axes)
    2
    """
    logs = history.history
    names = [k for k in logs if not k.startswith("val_")]
    fig = _figure(4.2 * len(names), 3.4)
    axes = fig.subplots(1, len(names), squeeze=False)[0]
    epochs = history.epochs
    for ax, name in zip(axes, names):
        for key, label in ((name, "training"), ("val_" + name, "validation")):
            if key in logs:
                ax.plot(epochs, logs[key], label=label, marker="o" if len(epochs) < 15 else None, markersize=3)
        ax.set_xlabel("epoch")
        ax.set_ylabel(name.replace("_", " "))
        ax.grid(alpha=0.3)
        if "val_" + name in logs:
            ax.legend(frameon=False)
    if title:
        fig.suptitle(title)
    return _done(fig, path)


def plane_grid(X, resolution=200, margin=0.15):
    """A (resolution^2, 2) grid covering the 2-D points X with a margin, and its two axes.

    >>> points, xs, ys = plane_grid(np.array([[0.0, 0.0], [1.0, 2.0]]), resolution=3, margin=0.0)
    >>> points.shape, xs.tolist(), ys.tolist()
    ((9, 2), [0.0, 0.5, 1.0], [0.0, 1.0, 2.0])
    """
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] != 2:
        raise ValueError(f"plots over the plane need 2-D points, got X of shape {X.shape}")
    low, high = X.min(axis=0), X.max(axis=0)
    pad = margin * np.maximum(high - low, 1e-9)
    xs = np.linspace(low[0] - pad[0], high[0] + pad[0], resolution)
    ys = np.linspace(low[1] - pad[1], high[1] + pad[1], resolution)
    gx, gy = np.meshgrid(xs, ys)
    return np.column_stack([gx.ravel(), gy.ravel()]), xs, ys


def _scatter(ax, X, y, classification):
    if classification:
        y = np.asarray(y).astype(np.int64)
        for k in np.unique(y):
            ax.scatter(*X[y == k].T, s=12, color=_CLASS_COLORS[k % len(_CLASS_COLORS)],
                       edgecolors="white", linewidths=0.4, label=f"class {k}")
    else:
        ax.scatter(*X.T, s=12, c=y, cmap="coolwarm", edgecolors="black", linewidths=0.3)


def plot_decision_boundary(predict, X, y, path=None, title=None, classification=True, resolution=200, ax=None):
    """The regions a classifier assigns to each class over the plane, with the data on top.

    ``predict`` maps an (m, 2) array of points to m labels (or, with classification=False, to
    m real values, drawn as a colour map).

    >>> X = np.array([[-1.0, 0.0], [1.0, 0.0]]); y = np.array([0, 1])
    >>> fig = plot_decision_boundary(lambda P: (P[:, 0] > 0).astype(int), X, y)
    >>> fig.axes[0].get_title()
    ''
    """
    X = np.asarray(X, dtype=np.float64)
    points, xs, ys = plane_grid(X, resolution)
    values = np.asarray(predict(points)).reshape(len(ys), len(xs))
    fig = None
    if ax is None:
        fig = _figure(4.2, 4.0)
        ax = fig.add_subplot()
    if classification:
        from matplotlib.colors import ListedColormap

        k = int(max(values.max(), np.max(y))) + 1
        cmap = ListedColormap(_CLASS_COLORS[:k] if k <= len(_CLASS_COLORS) else _CLASS_COLORS)
        ax.contourf(xs, ys, values, levels=np.arange(k + 1) - 0.5, cmap=cmap, alpha=0.25)
        ax.contour(xs, ys, values, levels=np.arange(k) + 0.5, colors="black", linewidths=0.8)
    else:
        shade = ax.contourf(xs, ys, values, levels=20, cmap="coolwarm", alpha=0.6)
        ax.figure.colorbar(shade, ax=ax, shrink=0.8)
    _scatter(ax, X, y, classification)
    ax.set_xlim(xs[0], xs[-1])
    ax.set_ylim(ys[0], ys[-1])
    ax.set_aspect("equal")
    if title:
        ax.set_title(title)
    return _done(fig, path) if fig is not None else ax.figure


def plot_hidden_units(layer_outputs, X, y=None, path=None, title=None, resolution=60, max_units=16, per_row=8):
    """Each hidden unit's output over the plane: small panels, each layer starting a new row.

    ``layer_outputs`` maps an (m, 2) array of points to a list with one (m, width) array per
    hidden layer (after its activation). Each panel shows what one unit computes from the
    input: the features the next layer builds on. At most ``max_units`` per layer are drawn,
    ``per_row`` panels to a row.

    >>> X = np.array([[-1.0, 0.0], [1.0, 1.0]])
    >>> fig = plot_hidden_units(lambda P: [np.tanh(P @ np.eye(2))], X, [0, 1])
    >>> len(fig.axes)
    2
    """
    X = np.asarray(X, dtype=np.float64)
    points, xs, ys = plane_grid(X, resolution)
    layers = [np.asarray(a) for a in layer_outputs(points)]
    if not layers:
        raise ValueError("plot_hidden_units: the network has no hidden layer")
    shown = [min(a.shape[1], max_units) for a in layers]
    cols = min(max(shown), per_row)
    rows = [-(-k // cols) for k in shown]  # rows of panels each layer needs
    fig = _figure(1.5 * cols + 0.4, 1.55 * sum(rows) + (0.4 if title else 0.1))
    grid = fig.subplots(sum(rows), cols, squeeze=False)
    row0 = 0
    for layer, (out, k) in enumerate(zip(layers, shown)):
        for slot in range(rows[layer] * cols):
            ax = grid[row0 + slot // cols, slot % cols]
            ax.set_xticks([])
            ax.set_yticks([])
            if slot >= k:
                ax.set_axis_off()
                continue
            ax.contourf(xs, ys, out[:, slot].reshape(len(ys), len(xs)), levels=12, cmap="viridis")
            if y is not None:
                _scatter_small(ax, X, y)
            ax.set_title(f"layer {layer + 1}, unit {slot + 1}", fontsize=7)
            ax.set_aspect("equal")
        row0 += rows[layer]
    widest = max(a.shape[1] for a in layers)
    if widest > max_units:
        title = f"{title or 'hidden units'} (the first {max_units} of up to {widest} units per layer)"
    if title:
        fig.suptitle(title)
    return _done(fig, path)


def _scatter_small(ax, X, y):
    y = np.asarray(y)
    if y.dtype.kind in "iub":
        ax.scatter(*X.T, s=1.5, c=[_CLASS_COLORS[k % len(_CLASS_COLORS)] for k in y], linewidths=0)


def plot_confusion_matrix(cm, labels=None, path=None, title=None):
    """A confusion matrix (rows: true class, columns: predicted class) with the counts written in.

    >>> fig = plot_confusion_matrix(np.array([[5, 1], [0, 4]]), labels=["no", "yes"])
    >>> fig.axes[0].get_xlabel()
    'predicted'
    """
    cm = np.asarray(cm)
    k = len(cm)
    labels = [str(v) for v in (labels if labels is not None else range(k))]
    fig = _figure(1.0 + 0.42 * k + 1.2, 0.8 + 0.42 * k + 0.6)
    ax = fig.add_subplot()
    image = ax.imshow(cm, cmap="Blues")
    fig.colorbar(image, ax=ax, shrink=0.8)
    ax.set_xticks(range(k), labels)
    ax.set_yticks(range(k), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    threshold = cm.max() / 2 if cm.size else 0
    for i in range(k):
        for j in range(k):
            ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=8,
                    color="white" if cm[i, j] > threshold else "black")
    if title:
        ax.set_title(title)
    return _done(fig, path)
