"""One playground model: its data, network, optimizer and the frames the browser draws.

A :class:`Session` belongs to one browser connection. It trains with the same per-epoch code
``cr.fit`` runs (``chainrule.nn.training._one_epoch``: forward, loss, backward, optimizer step
per batch) and renders a frame: train/test loss, the output over a 64x64 grid of the input
square, and every unit's output over the same grid, as float32 arrays.

>>> s = Session({"dataset": "xor", "hidden": [4], "n": 100})
>>> s.step(5); f = s.frame()
>>> f["boundary"].shape, f["maps"].shape, f["maps"].dtype.name
((64, 64), (6, 64, 64), 'float32')
"""
from __future__ import annotations

import math

import numpy as np

from chainrule.core.tensor import no_grad
from chainrule.data import toy
from chainrule.nn import functional as F
from chainrule.nn.models import MLP
from chainrule.nn.training import TrainingError, _one_epoch
from chainrule.optim import SGD, Adam

__all__ = ["Session", "ConfigError", "DEFAULTS", "FEATURES", "GRID", "EXTENT", "parse_csv", "MAX_CSV_BYTES"]

GRID = 64  # the boundary and unit maps are GRID x GRID samples of the input square
EXTENT = 1.25  # ... the square [-EXTENT, EXTENT]^2, which holds every toy set with its noise
MAX_CSV_BYTES = 256 * 1024  # an uploaded CSV: at most 256 KiB ...
MAX_CSV_ROWS = 5000  # ... and 5000 points

CLASSIFICATION = ("circle", "xor", "gaussians", "spiral")
MULTICLASS = ("circle", "gaussians", "spiral")  # the sets that take `classes` 3..MAX_CLASSES
MAX_CLASSES = 6  # the page's palette has this many colours
REGRESSION = ("plane", "multi_gaussian")
DATASETS = CLASSIFICATION + REGRESSION + ("custom",)

# Input features: name -> f(x1, x2). Computed on the data's own coordinates.
FEATURES = {
    "x1": lambda a, b: a, "x2": lambda a, b: b, "x1^2": lambda a, b: a * a, "x2^2": lambda a, b: b * b,
    "x1x2": lambda a, b: a * b, "sin_x1": lambda a, b: np.sin(a), "sin_x2": lambda a, b: np.sin(b),
}

ACTIVATIONS = ("tanh", "relu", "sigmoid", "leaky_relu", "identity")
LOSSES = ("quadratic", "bce", "softmax_ce")
INITS = {"zeros": "zeros", "uniform": "uniform", "normal": "normal", "glorot": "xavier_uniform",
         "he": "kaiming_uniform"}
OPTIMIZERS = ("sgd", "momentum", "adam")
REGULARIZATIONS = ("none", "l1", "l2")

# The schema every control message is checked against: name -> (kind, allowed).
# kind "choice": one of the strings; "int"/"float": (low, high) inclusive; "features": a
# non-empty subset of FEATURES; "layers": 0..MAX_LAYERS widths of 1..MAX_WIDTH units.
MAX_LAYERS, MAX_WIDTH = 8, 16
SCHEMA = {
    "dataset": ("choice", DATASETS),
    # circle, gaussians, spiral: 2 (TensorFlow Playground's sets) or up to 6 rings, blobs, arms
    "classes": ("int", (2, MAX_CLASSES)),
    "noise": ("float", (0.0, 1.0)),
    "n": ("int", (10, 2000)),
    "train_ratio": ("float", (0.1, 0.9)),
    "features": ("features", tuple(FEATURES)),
    "hidden": ("layers", (MAX_LAYERS, 1, MAX_WIDTH)),
    "activation": ("choice", ACTIVATIONS),
    # one activation per hidden layer, overriding "activation"; [] (the default): all the same
    "activations": ("activations", (ACTIVATIONS, MAX_LAYERS)),
    "loss": ("choice", LOSSES),
    "init": ("choice", tuple(INITS)),
    "optimizer": ("choice", OPTIMIZERS),
    "learning_rate": ("float", (1e-5, 10.0)),
    "batch_size": ("int", (1, 2000)),
    "regularization": ("choice", REGULARIZATIONS),
    "reg_rate": ("float", (0.0, 10.0)),
    "seed": ("int", (0, 2**31 - 1)),
    "compare_init": ("choice", ("none", *INITS)),
}
DEFAULTS = {
    "dataset": "circle", "classes": 2, "noise": 0.05, "n": 500, "train_ratio": 0.5, "features": ["x1", "x2"],
    "hidden": [4, 2], "activation": "tanh", "loss": "bce", "init": "glorot", "optimizer": "sgd", "activations": [],
    "learning_rate": 0.03, "batch_size": 10, "regularization": "none", "reg_rate": 0.0, "seed": 1,
    "compare_init": "none",
}
# What a change of each setting rebuilds: the data (and so the model), the model, or the optimizer.
_DATA_KEYS = {"dataset", "classes", "noise", "n", "train_ratio", "seed"}
_MODEL_KEYS = {"features", "hidden", "activation", "activations", "loss", "init", "compare_init"}


class ConfigError(ValueError):
    """A setting or message the playground cannot use; the message names it."""


def _check(key, value):
    if key not in SCHEMA:
        raise ConfigError(f"unknown setting {key!r}; valid: {', '.join(SCHEMA)}")
    kind, allowed = SCHEMA[key]
    if kind == "choice":
        if not isinstance(value, str) or value not in allowed:
            raise ConfigError(f"{key} must be one of {', '.join(allowed)}, got {value!r}")
        return value
    if kind in ("int", "float"):
        ok = isinstance(value, int) if kind == "int" else isinstance(value, (int, float))
        if isinstance(value, bool) or not ok or not math.isfinite(value):
            raise ConfigError(f"{key} must be {'an integer' if kind == 'int' else 'a number'}, got {value!r}")
        low, high = allowed
        if not low <= value <= high:
            raise ConfigError(f"{key} must be in [{low:g}, {high:g}], got {value!r}")
        return float(value) if kind == "float" else int(value)
    if kind == "features":
        if (not isinstance(value, list) or not value or len(value) > len(allowed)
                or any(not isinstance(f, str) or f not in allowed for f in value) or len(set(value)) != len(value)):
            raise ConfigError(f"features must be a non-empty list of distinct names from {', '.join(allowed)}, "
                              f"got {value!r}")
        return [f for f in allowed if f in value]  # a fixed order: the diagram's input column
    if kind == "activations":
        names, most = allowed
        if not isinstance(value, list) or len(value) > most or any(not isinstance(a, str) or a not in names for a in value):
            raise ConfigError(f"activations must be a list of at most {most} names from {', '.join(names)} (one per "
                              f"hidden layer), got {value!r}")
        return list(value)
    max_layers, low, high = allowed
    if (not isinstance(value, list) or len(value) > max_layers
            or any(isinstance(h, bool) or not isinstance(h, int) or not low <= h <= high for h in value)):
        raise ConfigError(f"hidden must be a list of at most {max_layers} layer widths, each an integer in "
                          f"[{low}, {high}], got {value!r}")
    return list(value)


def validate(changes) -> dict:
    """Check a (partial) config dict against :data:`SCHEMA`; returns the checked copy."""
    if not isinstance(changes, dict):
        raise ConfigError(f"config must be an object, got {type(changes).__name__}")
    return {k: _check(k, v) for k, v in changes.items()}


def parse_csv(text) -> tuple[np.ndarray, np.ndarray, int | None]:
    """Points from CSV text: rows ``x1,x2,label`` (an optional header row of names first);
    returns (X, y, number of classes, or None for a regression set).

    Class labels are the whole numbers 0..K-1 (2 <= K <= 6, every class with a point). A header
    that names the third column ``label`` or ``class`` says the set is classification, and a label
    outside 0..5 is refused; ``target`` says regression; without either, labels that are class
    labels make a classification set and any other values a regression set.
    Coordinates are rescaled by their largest magnitude into [-1, 1], the playground's square.

    >>> X, y, k = parse_csv("x1,x2,label\\n0,0,1\\n2,1,0\\n-2,0,2\\n0,-1,1\\n")
    >>> X.tolist(), y.tolist(), k
    ([[0.0, 0.0], [1.0, 0.5], [-1.0, 0.0], [0.0, -0.5]], [1.0, 0.0, 2.0, 1.0], 3)
    """
    if not isinstance(text, str):
        raise ConfigError(f"csv must be a string, got {type(text).__name__}")
    if len(text.encode("utf-8")) > MAX_CSV_BYTES:
        raise ConfigError(f"csv is larger than the limit of {MAX_CSV_BYTES // 1024} KiB")
    rows = [line.strip() for line in text.splitlines() if line.strip()]
    column = None  # the header's name of the third column
    if rows and any(c.isalpha() for c in rows[0].replace("e", "").replace("E", "")):
        names = rows[0].split(",")
        column = names[2].strip().strip('"').lower() if len(names) == 3 else None
        rows = rows[1:]  # a header
    if len(rows) < 4:
        raise ConfigError(f"csv needs at least 4 data rows of x1,x2,label, got {len(rows)}")
    if len(rows) > MAX_CSV_ROWS:
        raise ConfigError(f"csv has {len(rows)} rows; the limit is {MAX_CSV_ROWS}")
    data = np.empty((len(rows), 3))
    for i, line in enumerate(rows):
        cells = line.split(",")
        if len(cells) != 3:
            raise ConfigError(f"csv row {i + 1}: expected 3 values x1,x2,label, got {len(cells)}: {line[:60]!r}")
        try:
            data[i] = [float(c) for c in cells]  # float() parses numbers only: nothing is evaluated
        except ValueError:
            raise ConfigError(f"csv row {i + 1}: not a number in {line[:60]!r}") from None
    if not np.isfinite(data).all():
        raise ConfigError(f"csv row {int(np.flatnonzero(~np.isfinite(data).all(axis=1))[0]) + 1}: values must be finite")
    X, y = data[:, :2], data[:, 2]
    scale = np.abs(X).max()
    return (X / scale if scale > 0 else X), y, _classes(y, column)


def _classes(y, column):
    """The number of classes of labels ``y`` (None: a regression target); see :func:`parse_csv`."""
    if column == "target":
        return None
    bad = np.flatnonzero((y != np.round(y)) | (y < 0) | (y > MAX_CLASSES - 1))
    k = int(y.max()) + 1 if not len(bad) else 0
    missing = sorted(set(range(k)) - set(y.astype(int).tolist())) if k else []
    if column not in ("label", "class"):
        return k if k >= 2 and not missing else None
    if len(bad):
        raise ConfigError(f"csv row {int(bad[0]) + 1}: label {y[bad[0]]:g} is out of range: class labels are whole "
                          f"numbers 0..{MAX_CLASSES - 1} (at most {MAX_CLASSES} classes); for a regression set "
                          "name the third column 'target'")
    if k < 2 or missing:
        raise ConfigError(f"csv labels: class {missing[0] if missing else 1} has no points; the labels of K classes "
                          "are 0..K-1, each with at least one point")
    return k


def multiclass(name, n, k, noise, seed):
    """``k`` classes of 2-D points (labels 0..k-1, shuffled): ``circle`` k rings around a disc,
    ``gaussians`` k blobs on a circle of radius 0.65, ``spiral`` k interleaved arms. ``noise``
    jitters each coordinate, as in :mod:`chainrule.data.toy` (whose sets are the ``k = 2`` ones).

    >>> X, y = multiclass("spiral", 90, 3, 0.0, seed=0)
    >>> X.shape, np.bincount(y).tolist(), bool(np.abs(X).max() <= 1)
    ((90, 2), [30, 30, 30], True)
    """
    rng = np.random.default_rng(seed)
    labels = np.arange(n) * k // n  # as even as n allows
    if name == "circle":  # class c: radii in the c-th of k bands, a gap between bands
        radius = (labels + rng.uniform(0.15, 0.85, n)) / k
        angle = rng.uniform(0.0, 2 * np.pi, n)
    elif name == "gaussians":
        angle = 2 * np.pi * labels / k + np.pi / 4
        centres = 0.65 * np.column_stack([np.cos(angle), np.sin(angle)])
        points = centres + 0.12 * rng.standard_normal((n, 2))
    else:  # spiral: arm c turned by 2 pi c / k, as toy.spiral's two arms are by pi
        t = np.empty(n)
        for c in range(k):
            t[labels == c] = np.linspace(0.0, 1.0, int(np.sum(labels == c)))
        radius, angle = t, 1.75 * 2 * np.pi * t + 2 * np.pi * labels / k
    if name != "gaussians":
        points = np.column_stack([radius * np.sin(angle), radius * np.cos(angle)])
    order = rng.permutation(n)
    return points[order] + noise * rng.standard_normal((n, 2)), labels[order].astype(np.int64)


class Session:
    """One model and its data, driven by control messages; see the module docstring."""

    def __init__(self, config=None):
        self.config = {k: list(v) if isinstance(v, list) else v for k, v in DEFAULTS.items()}
        self.custom = None  # (X, y) of an uploaded CSV
        axis = np.linspace(-EXTENT, EXTENT, GRID)
        gx, gy = np.meshgrid(axis, -axis)  # row 0 is the top of the picture: largest x2
        self._grid = (gx.ravel(), gy.ravel())
        self.config.update(validate(config or {}))
        self._check_across(self.config)
        self._make_data()

    # ------------------------------------------------------------------ building
    @property
    def task(self) -> str:
        if self.config["dataset"] == "custom":
            return "regression" if self.custom[2] is None else "classification"
        return "classification" if self.config["dataset"] in CLASSIFICATION else "regression"

    @property
    def classes(self) -> int | None:
        """The number of classes (None for a regression set)."""
        c = self.config
        if c["dataset"] == "custom":
            return self.custom[2]
        if c["dataset"] in REGRESSION:
            return None
        return c["classes"]

    def _features(self, a, b):
        return np.column_stack([FEATURES[f](a, b) for f in self.config["features"]])

    def _make_data(self):
        c = self.config
        if c["dataset"] == "custom":
            if self.custom is None:
                raise ConfigError("dataset 'custom' needs an uploaded CSV first")
            X, y = self.custom[0], self.custom[1]
            order = np.random.default_rng(c["seed"]).permutation(len(X))
            X, y = X[order], y[order]
        elif c["classes"] > 2 and c["dataset"] in MULTICLASS:
            X, y = multiclass(c["dataset"], c["n"], c["classes"], c["noise"], c["seed"])
        else:
            X, y = toy.load(c["dataset"], n=c["n"], noise=c["noise"], seed=c["seed"])
        k = min(max(1, round(len(X) * c["train_ratio"])), len(X) - 1)
        self.points = (X[:k], y[:k].astype(np.float64), X[k:], y[k:].astype(np.float64))
        self._make_model()

    def _make_model(self):
        c = self.config
        if self.task == "regression" and c["loss"] != "quadratic":
            c["loss"] = "quadratic"  # the only loss for real-valued targets
        loss = c["loss"]
        out = (self.classes or 2) if loss == "softmax_ce" else 1
        # float32: what the browser draws, and numpy's tanh and exp run several times faster on it
        # than on float64, which keeps a frame within its 10 ms.
        self.model = MLP(len(c["features"]), c["hidden"], out, activation=c["activations"] or c["activation"],
                         init=INITS[c["init"]], rng=c["seed"], dtype=np.float32)
        # The quadratic loss on classes uses targets -1 and +1 (as TensorFlow Playground does),
        # so the output is read on the same [-1, 1] scale as the other heads.
        base = {"quadratic": F.mse_loss, "bce": F.binary_cross_entropy_with_logits,
                "softmax_ce": F.cross_entropy}[loss]
        Xtr, ytr, Xte, yte = self.points
        self._data = [(self._features(X[:, 0], X[:, 1]).astype(np.float32), self._target(y))
                      for X, y in ((Xtr, ytr), (Xte, yte))]
        self._grid_features = self._features(*self._grid).astype(np.float32)
        self._base_loss = base
        self._weights = [layer.weight for layer in self.model.layers]
        self.steps = 0
        self.seen = 0
        self._order = np.random.default_rng(c["seed"] + 1)
        self._queue = np.empty(0, dtype=np.int64)
        self._make_optimizer()
        # Side by side: a second network on the same data, the same batches in the same order,
        # differing only in its initialization (compare zeros with Glorot: the symmetry trap).
        self.twin = None
        if c["compare_init"] != "none":
            twin = Session.__new__(Session)
            twin.config = dict(c, init=c["compare_init"], compare_init="none")
            twin.custom, twin._grid, twin.points = self.custom, self._grid, self.points
            twin._make_model()
            self.twin = twin

    def _target(self, y):
        loss = self.config["loss"]
        if loss == "softmax_ce":
            return y.astype(np.int64)
        if loss == "quadratic" and self.task == "classification":
            return (2.0 * y - 1.0).astype(np.float32)
        return y.astype(np.float32)

    def _make_optimizer(self):
        c = self.config
        params = list(self.model.parameters())
        if c["optimizer"] == "adam":
            self.optimizer = Adam(params, lr=c["learning_rate"])
        else:
            self.optimizer = SGD(params, lr=c["learning_rate"], momentum=0.9 if c["optimizer"] == "momentum" else 0.0)

    def _loss_fn(self, out, y):
        """The training loss: the data loss plus the L1 or L2 penalty on the weights (not biases):
        $\\lambda\\sum|w|$ or $\\frac{\\lambda}{2}\\sum w^2$."""
        value = self._base_loss(out, y)
        c = self.config
        if c["regularization"] != "none" and c["reg_rate"] > 0:
            if c["regularization"] == "l1":
                penalty = sum(abs(w).sum() for w in self._weights)
            else:
                penalty = sum((w * w).sum() for w in self._weights) * 0.5
            value = value + c["reg_rate"] * penalty
        return value

    # ------------------------------------------------------------------ controls
    def _check_across(self, c):
        """The checks that involve several settings, before anything is built."""
        if c["activations"] and len(c["activations"]) != len(c["hidden"]):
            raise ConfigError(f"activations: {len(c['activations'])} given for {len(c['hidden'])} hidden "
                              "layers (one per layer, or [] for the same everywhere)")
        if c["dataset"] == "custom" and self.custom is None:
            raise ConfigError("dataset 'custom' needs an uploaded CSV first")
        if c["dataset"] == "xor" and c["classes"] != 2:
            raise ConfigError(f"classes: xor has 2 classes; {c['classes']} classes are drawn for "
                              f"{', '.join(MULTICLASS)}")
        k = self.custom[2] if c["dataset"] == "custom" else c["classes"] if c["dataset"] in CLASSIFICATION else None
        if k is not None and k > 2 and c["loss"] != "softmax_ce":
            raise ConfigError(f"loss: {c['loss']} scores two classes; {k} classes need softmax_ce "
                              "(softmax cross-entropy, one output per class)")

    def configure(self, changes) -> bool:
        """Apply checked setting changes; returns True when the data were drawn anew."""
        changes = validate(changes)
        self._check_across({**self.config, **changes})
        old = dict(self.config)
        self.config.update(changes)
        changed = {k for k in changes if changes[k] != old[k]}
        try:
            if changed & _DATA_KEYS:
                self._make_data()
                return True
            if changed & _MODEL_KEYS:
                self._make_model()
            elif changed & {"optimizer"}:
                self._make_optimizer()
            elif "learning_rate" in changed:
                self.optimizer.lr = self.config["learning_rate"]
            if self.twin is not None and not changed & _MODEL_KEYS:
                self.twin.configure({k: changes[k] for k in changed})
        except Exception:
            self.config = old
            raise
        return False

    def upload(self, text):
        """Use the points of a CSV (see :func:`parse_csv`) as the data set ``custom``."""
        X, y, k = parse_csv(text)
        self.custom = (X, y, k)
        self.config["dataset"] = "custom"
        if k is not None and k > 2:
            self.config["loss"] = "softmax_ce"  # the loss for more than two classes
        self._make_data()

    def reset(self):
        """Fresh weights (same seed), same data."""
        self._make_model()

    def regenerate(self):
        """New data (the next seed) and fresh weights."""
        self.config["seed"] = (self.config["seed"] + 1) % (2**31)
        self._make_data()

    def set_weight(self, layer, to, frm, value):
        """Set one weight: layer ``layer``'s link from unit ``frm`` to unit ``to``."""
        if isinstance(layer, bool) or not isinstance(layer, int) or not 0 <= layer < len(self._weights):
            raise ConfigError(f"layer must be an integer in [0, {len(self._weights) - 1}], got {layer!r}")
        w = self._weights[layer]
        for name, v, size in (("to", to, w.shape[0]), ("from", frm, w.shape[1])):
            if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < size:
                raise ConfigError(f"{name} must be an integer in [0, {size - 1}] for layer {layer}, got {v!r}")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or abs(value) > 100:
            raise ConfigError(f"value must be a finite number in [-100, 100], got {value!r}")
        w.data[to, frm] = value
        w._version += 1

    def step(self, n=1):
        """Train ``n`` mini-batch steps, each batch drawn from a shuffled pass over the training
        set; the loop is ``cr.fit``'s own (one forward, backward and optimizer step a batch)."""
        X, y = self._data[0]
        bs = min(self.config["batch_size"], len(X))
        need = n * bs
        if len(self._queue) < need:  # whole epochs of shuffled indices, as fit draws them
            # joined once: a step message of up to 1000 batches needs up to 1000 epochs
            epochs = -(-(need - len(self._queue)) // len(X))
            self._queue = np.concatenate([self._queue, *(self._order.permutation(len(X)) for _ in range(epochs))])
        take, self._queue = self._queue[:need], self._queue[need:]
        _one_epoch(self.model, self._loss_fn, self.optimizer, X[take], y[take], bs, None, self.steps, None)
        self.steps += n
        self.seen += need
        if self.twin is not None:
            self.twin.step(n)

    # ------------------------------------------------------------------ views
    def _forward(self, X):
        """Every hidden layer's output and the model's output on rows X (numpy, no graph)."""
        m = self.model
        hidden = []
        with no_grad():
            h = X.astype(m.dtype)
            for i, layer in enumerate(m.layers):
                h = layer._apply(h)
                if i < len(m.activations):
                    h = m.activations[i].forward(h)
                    hidden.append(np.asarray(h.data if hasattr(h, "data") else h))
        out = np.asarray(h.data if hasattr(h, "data") else h)
        return hidden, out

    def _score(self, out):
        """Model outputs -> the value drawn: in [-1, 1] for a classifier (2p - 1, p the
        probability of class 1), the prediction itself for regression."""
        loss = self.config["loss"]
        if loss == "bce":
            return np.tanh(0.5 * out[:, 0])  # 2 sigmoid(z) - 1
        if loss == "softmax_ce":
            return np.tanh(0.5 * (out[:, 1] - out[:, 0]))
        return out[:, 0]

    def _predict(self, out):
        """Model outputs -> predicted classes: the largest score (softmax), else the sign."""
        if self.config["loss"] == "softmax_ce":
            return np.argmax(out, axis=1)
        return (self._score(out) > 0).astype(np.int64)

    def _output_maps(self, out, prefix=""):
        """The output over the grid as the page paints it: ``boundary`` GRID x GRID, and for more
        than two classes the predicted class (argmax) in ``boundary`` and its softmax probability
        in ``confidence`` (the colour's intensity)."""
        shape = (GRID, GRID)
        if (self.classes or 0) > 2:
            scores = np.ascontiguousarray(out.T)  # one row per class: reductions run along long rows (2x faster)
            # the largest probability is 1 / sum_k exp(s_k - max s): its own term is exp(0) = 1
            confidence = 1.0 / np.exp(scores - scores.max(axis=0)).sum(axis=0)
            return {prefix + "boundary": scores.argmax(axis=0).astype(np.float32).reshape(shape),
                    prefix + "confidence": confidence.astype(np.float32, copy=False).reshape(shape)}
        return {prefix + "boundary": np.ascontiguousarray(self._score(out), dtype=np.float32).reshape(shape)}

    def losses(self):
        """(train loss, test loss): the data loss without the penalty, over each whole set."""
        return [loss for loss, _ in self._scores()]

    def _scores(self):
        """(loss, classification error or None) on the training and the test set."""
        out = []
        for X, y in self._data:
            with no_grad():
                z = self.model(X)
                v = self._base_loss(z, y)
            loss = float(np.asarray(v.data if hasattr(v, "data") else v))
            error = None
            if self.task == "classification":
                labels = self.points[1] if X is self._data[0][0] else self.points[3]
                error = float(np.mean(self._predict(np.asarray(z.data)) != labels))
            out.append((loss, error))
        return out

    def diagnostics(self):
        """Per layer: the gradient's and the weights' norms, and the fraction of saturated
        (sigmoid, tanh) or dead (ReLU) units, on the training set (``cr.nn`` diagnostics)."""
        from chainrule.nn.diagnostics import layer_records

        X, y = self._data[0]
        return layer_records(self.model, self._base_loss, X, y)

    @property
    def epoch(self) -> float:
        return self.seen / len(self._data[0][0])

    def frame(self) -> dict:
        """The state to draw: losses, epoch, the output map (GRID x GRID) and one map per unit
        (input features first, then each hidden unit), as float32."""
        hidden, out = self._forward(self._grid_features)
        # One float32 block, unit by unit: the feature maps, then each layer's outputs transposed.
        maps = np.empty((self._grid_features.shape[1] + sum(h.shape[1] for h in hidden), GRID * GRID), np.float32)
        row = 0
        for h in (self._grid_features, *hidden):
            maps[row:row + h.shape[1]] = h.T
            row += h.shape[1]
        (train, train_error), (test, test_error) = self._scores()
        return {
            "step": self.steps, "epoch": round(self.epoch, 3), "train_loss": train, "test_loss": test,
            "train_error": train_error, "test_error": test_error,
            "classes": self.classes, **self._output_maps(out),
            "maps": maps.reshape(-1, GRID, GRID),
            "weights": [np.asarray(l.weight.data).tolist() for l in self.model.layers],
            "biases": [np.asarray(l.bias.data).tolist() for l in self.model.layers],
            **(self._twin_frame() if self.twin is not None else {}),
        }

    def _twin_frame(self):
        (train, train_error), (test, test_error) = self.twin._scores()
        _, out = self.twin._forward(self.twin._grid_features)
        return {"twin": {"init": self.twin.config["init"], "train_loss": train, "test_loss": test,
                         "train_error": train_error, "test_error": test_error},
                **self.twin._output_maps(out, "twin_")}

    def data_message(self) -> dict:
        """The points (train and test) and the task, sent when the data change."""
        Xtr, ytr, Xte, yte = self.points
        r = lambda a: np.round(a, 5).tolist()
        return {"type": "data", "task": self.task, "classes": self.classes, "extent": EXTENT, "grid": GRID,
                "train": r(np.column_stack([Xtr, ytr])), "test": r(np.column_stack([Xte, yte]))}
