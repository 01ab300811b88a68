r"""Training diagnostics tied to the mathematics: per-layer gradient and weight norms, update
ratios, saturated and dead units, and a warning that names the layer where gradients vanish.

Backpropagation multiplies the gradient, layer by layer from the output down, by
$\partial h_l / \partial h_{l-1} = \mathrm{diag}(\phi'(z_l))\, W_l$. A sigmoid's slope is at
most 1/4 (and near 0 where it saturates), so with small weights every sigmoid layer shrinks the
gradient and the first layers of a deep sigmoid network hardly learn; ReLU's slope is 1 where it
is active, and He initialization keeps $\|W_l\|$ at the scale that preserves the gradient's size.
The records make that visible, epoch by epoch and layer by layer.

``cr.fit(..., diagnostics=True)`` adds a :class:`Diagnostics` callback. It costs nothing while
the epoch's batches run: at the end of each epoch it takes one extra forward and backward pass
on a fixed sample of the training set (at most ``sample_size`` rows), walking the layers itself
so it sees each layer's activations. Recomputing on a sample was chosen over a hook on every
training batch: the training loop keeps exactly one forward, one backward and one step per
batch, and all the numbers of one record come from the same weights (the end of the epoch).
"""
from __future__ import annotations

import math
import warnings

import numpy as np

from chainrule.core.tensor import Tensor, enable_grad
from chainrule.nn.training import Callback, TrainingError

__all__ = ["Diagnostics", "TrainingWarning", "VanishingGradientWarning", "ExplodingGradientWarning",
           "layer_records"]


class TrainingWarning(UserWarning):
    """Something in training that deserves a look but does not stop it."""


class VanishingGradientWarning(TrainingWarning):
    """A layer's gradient is a tiny fraction of a layer nearer the output: that layer hardly learns."""


class ExplodingGradientWarning(TrainingWarning):
    """A layer's gradient is many times that of a layer nearer the output: updates blow up."""


_SQUASHING = ("sigmoid", "tanh")  # flat at both ends: slope -> 0
_RECTIFIED = ("relu",)  # flat (exactly 0) for negative inputs: a unit can die


def _flat_ends(kind, h):
    """Which activations ``h`` of a sigmoid or tanh sit within 1% of its range from a flat end,
    where the slope is below about 1/25 of its maximum: sigmoid < 0.01 or > 0.99, |tanh| > 0.98."""
    if kind == "sigmoid":
        return (h < 0.01) | (h > 0.99)
    return np.abs(h) > 0.98


def _layers(model):
    """[(Linear, activation name or None)] in forward order, and a function running the model on
    x that returns (output, [activation outputs or None per layer])."""
    from chainrule.nn.layers import Linear, Sequential

    layers, acts = getattr(model, "layers", None), getattr(model, "activations", None)
    if isinstance(layers, (list, tuple)) and isinstance(acts, (list, tuple)) and all(isinstance(m, Linear) for m in layers):
        names = [getattr(a, "name", None) for a in acts] + [None] * (len(layers) - len(acts))

        def run(x):  # MLP.forward, keeping each hidden layer's output
            outs = []
            for i, layer in enumerate(layers):
                x = layer(x)
                if i < len(acts):
                    x = acts[i](x)
                outs.append(x if i < len(acts) else None)
            return x, outs
        return list(zip(layers, names)), run
    if isinstance(model, Sequential):
        items = list(model)
        pairs = []
        for i, m in enumerate(items):
            if isinstance(m, Linear):
                nxt = items[i + 1] if i + 1 < len(items) else None
                pairs.append((m, getattr(nxt, "name", None) if nxt is not None and not isinstance(nxt, Linear) else None))

        def run(x):
            outs, last_linear = [], False
            for m in items:
                x = m(x)
                if isinstance(m, Linear):
                    outs.append(None)
                    last_linear = True
                elif last_linear:
                    outs[-1], last_linear = x, False
            return x, outs
        return pairs, run
    linears = [m for m in model.modules() if isinstance(m, Linear)]  # no activations to look at
    return [(m, None) for m in linears], lambda x: (model(x), [None] * len(linears))


def layer_records(model, loss_fn, X, y):
    r"""One dict per Linear layer (numbered from 1 at the input) with ``grad_norm``
    $\|\partial J/\partial W_l\|_F$ of the mean loss J over (X, y), ``weight_norm`` $\|W_l\|_F$,
    ``saturated`` (fraction of sigmoid/tanh outputs at a flat end, None for other activations)
    and ``dead`` (fraction of ReLU units that output 0 for every row of X, None otherwise).
    The parameters' ``.grad`` are left as they were.

    >>> import numpy as np, chainrule as cr
    >>> net = cr.nn.MLP(2, [3], 1, activation="relu", rng=0)
    >>> recs = layer_records(net, cr.nn.functional.mse_loss, np.ones((4, 2)), np.zeros(4))
    >>> [r["layer"] for r in recs], recs[1]["dead"] is None
    ([1, 2], True)
    """
    pairs, run = _layers(model)
    params = list(model.parameters())
    kept = [p.grad for p in params]
    try:
        for p in params:
            p.grad = None
        with enable_grad():
            out, acts = run(X)
            loss_fn(out, y).backward()
        records = []
        for l, ((layer, kind), h) in enumerate(zip(pairs, acts), start=1):
            w, g = layer.weight.numpy(), layer.weight.grad
            g = np.zeros_like(w) if g is None else np.asarray(g.numpy() if isinstance(g, Tensor) else g)
            rec = {"layer": l, "activation": kind, "grad_norm": float(np.linalg.norm(g)),
                   "weight_norm": float(np.linalg.norm(w)), "saturated": None, "dead": None}
            if h is not None:
                h = h.numpy()
                if kind in _SQUASHING:
                    rec["saturated"] = float(np.mean(_flat_ends(kind, h)))
                elif kind in _RECTIFIED:
                    rec["dead"] = float(np.mean(np.all(h <= 0, axis=0)))
            records.append(rec)
    finally:
        for p, g in zip(params, kept):
            p.grad = g
    return records


class Diagnostics(Callback):
    r"""A callback of ``fit`` that appends one record per epoch and layer to ``history.diagnostics``:
    ``epoch``, ``layer`` (1 = nearest the input), ``activation``, ``grad_norm``, ``weight_norm``,
    ``update_ratio`` ($\|W_l^{(e)} - W_l^{(e-1)}\| / \|W_l^{(e-1)}\|$: how far the epoch's steps
    moved the layer, relative to its size; about 1e-3 per step is the usual healthy scale),
    ``saturated`` and ``dead`` (see :func:`layer_records`).

    It warns (:class:`VanishingGradientWarning`, :class:`ExplodingGradientWarning`, once per fit)
    when the smallest layer gradient is below ``vanish`` times the largest and lies nearer the
    input (vanishing), or the largest exceeds ``explode`` times the smallest and lies nearer the
    input (exploding). ``sample_size`` rows of the training set (a fixed random sample, drawn
    with ``seed``, never from fit's own generator) give the gradients and activations.

    >>> import chainrule as cr
    >>> X, y = cr.data.xor(n=40, seed=0)
    >>> net = cr.nn.MLP(2, [4], 2, rng=0)
    >>> h = cr.fit(net, "cross_entropy", X, y, optimizer=cr.optim.SGD(net.parameters(), lr=0.1),
    ...            epochs=2, progress=False, diagnostics=True)
    >>> [(r["epoch"], r["layer"]) for r in h.diagnostics]
    [(1, 1), (1, 2), (2, 1), (2, 2)]
    """

    def __init__(self, sample_size=1024, vanish=1e-4, explode=1e4, seed=0):
        if isinstance(sample_size, bool) or not isinstance(sample_size, (int, np.integer)) or sample_size < 1:
            raise ValueError(f"Diagnostics: sample_size must be a positive integer, got {sample_size!r}")
        if not 0 < vanish < 1 < explode:
            raise ValueError(f"Diagnostics: need 0 < vanish < 1 < explode, got vanish={vanish!r}, explode={explode!r}")
        self.sample_size, self.vanish, self.explode, self.seed = int(sample_size), vanish, explode, seed
        self._data = None

    def bind(self, loss_fn, X, y):
        """The loss and training data (fit's, after its checks) that the records are computed on."""
        n = len(X)
        if n > self.sample_size:
            rows = np.sort(np.random.default_rng(self.seed).choice(n, self.sample_size, replace=False))
            X, y = X[rows], y[rows]
        self._data = (loss_fn, X, y)
        return self

    def on_train_begin(self, model, history):
        if self._data is None:
            raise TrainingError("Diagnostics: pass diagnostics=True (or a Diagnostics) to fit, which gives it the "
                               "training data, rather than listing it in callbacks")
        self.model, self.history, self._warned = model, history, False
        self._weights = self._snapshot()

    def _snapshot(self):
        pairs, _ = _layers(self.model)
        return [np.array(layer.weight.numpy(), copy=True) for layer, _ in pairs]

    def on_epoch_end(self, epoch, logs):
        records = layer_records(self.model, *self._data)
        now = self._snapshot()
        for rec, before, after in zip(records, self._weights, now):
            size = np.linalg.norm(before)
            rec["update_ratio"] = float(np.linalg.norm(after - before) / size) if size > 0 else math.inf
            rec["epoch"] = int(epoch)
            self.history.diagnostics.append({k: rec[k] for k in
                                             ("epoch", "layer", "activation", "grad_norm", "weight_norm",
                                              "update_ratio", "saturated", "dead")})
        self._weights = now
        if not self._warned:
            found = check_gradients(records, self.vanish, self.explode)
            if found is not None:
                self._warned = True
                category, message = found
                warnings.warn(f"epoch {epoch}: {message}", category, stacklevel=_outside_level())
        return False

    def on_train_end(self):
        self.model = self.history = self._weights = None


def _outside_level():
    """The stacklevel of the first caller outside chainrule's training machinery (fit, its
    decorators and callbacks), so that a warning points at the user's fit call."""
    import sys

    frame, level = sys._getframe(2), 2  # 1: warnings.warn's caller (on_epoch_end)
    while frame is not None and frame.f_globals.get("__name__", "").startswith(("chainrule.nn.", "chainrule.core.")):
        frame, level = frame.f_back, level + 1
    return level


def check_gradients(records, vanish=1e-4, explode=1e4):
    """(warning class, message) when the gradient norms of one epoch's ``records`` vanish or
    explode from the output towards the input; None when they are healthy."""
    g = np.array([r["grad_norm"] for r in records])
    if len(g) < 2 or not np.all(np.isfinite(g)) or g.max() == 0:
        return None
    lo, hi = int(np.argmin(g)), int(np.argmax(g))
    ratio = g[lo] / g[hi]
    if ratio < vanish and lo < hi:
        between = records[lo:hi]
        return VanishingGradientWarning, (f"layer {lo + 1}'s gradient is {ratio:.1g} of layer {hi + 1}'s "
                                          f"({g[lo]:.2g} vs {g[hi]:.2g}): {_why_vanishing(between)}")
    if ratio < 1 / explode and hi < lo:
        return ExplodingGradientWarning, (f"layer {hi + 1}'s gradient is {1 / ratio:.1g} times layer {lo + 1}'s "
                                          f"({g[hi]:.2g} vs {g[lo]:.2g}): gradients grow from the output towards "
                                          "the input; the weights are too large for this depth. Try a smaller "
                                          "initialization (Xavier for sigmoid/tanh, He for ReLU), a smaller "
                                          "learning rate or gradient clipping")
    return None


def _why_vanishing(records):
    """The reason the records show, in the lecture's terms, and the remedy."""
    kinds = {r["activation"] for r in records}
    saturated = [r["saturated"] for r in records if r["saturated"] is not None]
    dead = [r["dead"] for r in records if r["dead"] is not None]
    if saturated:
        name = "/".join(sorted(kinds & set(_SQUASHING)))
        share = float(np.mean(saturated))
        if share >= 0.2:
            why = f"{name} units saturate ({share:.0%} of their outputs at a flat end, where the slope is near 0)"
        else:
            why = (f"{name} units pass on at most {'1/4' if name == 'sigmoid' else '1'} of the gradient (their "
                   "largest slope), so with these weights it shrinks at every layer")
        return why + "; try ReLU with He initialization (activation='relu', init='kaiming_uniform')"
    if dead and float(np.mean(dead)) >= 0.2:
        return (f"{float(np.mean(dead)):.0%} of the ReLU units are dead (0 for every example, so no gradient "
                "passes); try He initialization, a smaller learning rate or leaky_relu")
    return "each layer scales the gradient down; check the initialization's scale (He for ReLU, Xavier for tanh)"
