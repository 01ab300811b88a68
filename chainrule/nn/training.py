"""Training by minibatch gradient descent: `fit`, its History, callbacks, early stopping, predict.

One epoch visits every training example once: the rows are shuffled once (one gather per
epoch), cut into consecutive batches, and each batch costs exactly one forward pass, one
backward pass and one optimizer step. Loss and metrics over the whole training and validation
sets are computed once per epoch, with the end-of-epoch weights, without recording a graph.
"""
from __future__ import annotations

import math
import time
import weakref

import numpy as np

from chainrule.core.errors import ChainruleError, ShapeError
from chainrule.core.tensor import Tensor, _new, no_grad
from chainrule.core.threads import for_training

__all__ = [
    "fit", "History", "Callback", "EarlyStopping", "TrainingError",
    "predict", "predict_proba", "evaluate", "hidden_outputs",
]


class TrainingError(ChainruleError, ValueError):
    """Training that cannot start (bad arguments) or cannot go on (the loss became NaN or inf)."""


# ------------------------------------------------------------------------------ History
class History:
    """What happened in each epoch, like Keras: ``history["loss"][i]`` is the training loss after
    epoch ``epochs[i]``; validation entries are prefixed ``val_``.

    >>> h = History()
    >>> h._record(1, {"loss": 0.9, "val_loss": 1.0}); h._record(2, {"loss": 0.4, "val_loss": 0.7})
    >>> h.epochs, h.history["val_loss"], h.best()
    ([1, 2], [1.0, 0.7], (2, 0.7))
    """

    def __init__(self):
        self.epochs: list[int] = []
        self.history: dict[str, list[float]] = {}
        self.params: dict = {}
        self.times: list[float] = []  # seconds per epoch (kept apart: never bit-identical)
        self.stopped_early = None  # the epoch at which early stopping ended training, if it did
        # The shuffling generator's state after the last epoch: a later fit with the same seed
        # (also after a checkpoint round trip) continues the same stream of permutations.
        self.rng_state = None
        # fit(..., diagnostics=True): one dict per epoch and layer (see chainrule.nn.diagnostics).
        self.diagnostics: list[dict] = []

    def _record(self, epoch, logs, seconds=None):
        self.epochs.append(int(epoch))
        for key, value in logs.items():
            self.history.setdefault(key, []).append(float(value))
        if seconds is not None:
            self.times.append(float(seconds))

    def __getitem__(self, key):
        return self.history[key]

    def __contains__(self, key):
        return key in self.history

    def __len__(self):
        return len(self.epochs)

    def last(self, key=None):
        """The final value of ``key``, or a dict of every final value."""
        if key is not None:
            return self.history[key][-1]
        return {k: v[-1] for k, v in self.history.items()}

    def best(self, metric=None, mode="auto"):
        """(epoch, value) of the best epoch by ``metric`` (default: val_loss if present, else loss).

        mode "min" or "max"; "auto" knows that accuracy and r2 grow and everything else shrinks.
        Ties go to the earliest epoch.
        """
        if not self.epochs:
            raise ValueError("History.best: no epochs recorded yet")
        if metric is None:
            metric = "val_loss" if "val_loss" in self.history else "loss"
        if metric not in self.history:
            raise KeyError(f"History.best: no {metric!r}; recorded: {', '.join(self.history)}")
        values = np.asarray(self.history[metric])
        i = int(np.argmax(values) if _better(metric, mode) == "max" else np.argmin(values))
        return self.epochs[i], float(values[i])

    def to_dict(self):
        """Plain lists and numbers, ready for json.dump; from_dict reads it back."""
        return {"epochs": list(self.epochs), "history": {k: list(v) for k, v in self.history.items()},
                "params": dict(self.params), "times": list(self.times), "stopped_early": self.stopped_early,
                "rng_state": self.rng_state, "diagnostics": [dict(r) for r in self.diagnostics]}

    @classmethod
    def from_dict(cls, d):
        h = cls()
        h.epochs = [int(e) for e in d["epochs"]]
        h.history = {k: [float(x) for x in v] for k, v in d["history"].items()}
        h.params = dict(d.get("params", {}))
        h.times = [float(t) for t in d.get("times", [])]
        h.stopped_early = d.get("stopped_early")
        h.rng_state = d.get("rng_state")
        h.diagnostics = [dict(r) for r in d.get("diagnostics", [])]
        return h

    def _repr_html_(self):
        """Jupyter: one row per epoch (the first and last ten of a long run), the best marked."""
        from chainrule.viz.page import html_table

        if not self.epochs:
            return html_table(["epoch"], [], caption="History: no epochs")
        keys = list(self.history)
        best = self.best()[0] if ("val_loss" in self.history or "loss" in self.history) else None
        shown = range(len(self.epochs))
        if len(self.epochs) > 20:
            shown = [*range(10), None, *range(len(self.epochs) - 10, len(self.epochs))]
        rows = []
        for i in shown:
            if i is None:
                rows.append(["..."] + [""] * len(keys))
                continue
            mark = " (best)" if self.epochs[i] == best else ""
            rows.append([f"{self.epochs[i]}{mark}"] + [f"{self.history[k][i]:.4g}" for k in keys])
        caption = f"History: {len(self.epochs)} epochs" + (
            f", stopped early at epoch {self.stopped_early}" if self.stopped_early else "")
        return html_table(["epoch"] + keys, rows, caption=caption, numeric=range(1, len(keys) + 1))

    def __repr__(self):
        if not self.epochs:
            return "History(no epochs)"
        last = ", ".join(f"{k}={v[-1]:.4g}" for k, v in self.history.items())
        return f"History({len(self.epochs)} epochs, last: {last})"


def _better(metric, mode="auto"):
    if mode in ("min", "max"):
        return mode
    if mode != "auto":
        raise ValueError(f"mode must be 'min', 'max' or 'auto', got {mode!r}")
    from chainrule import metrics

    name = metric[4:] if metric.startswith("val_") else metric
    entry = metrics.METRICS.get(metrics._ALIASES.get(name, name))
    return entry[2] if entry else "min"


# ------------------------------------------------------------------------------ callbacks
class Callback:
    """Hooks called by ``fit``. Return True from ``on_epoch_end`` to stop training.

    A plain function ``fn(epoch, logs)`` works as a callback too (called after each epoch).
    """

    def on_train_begin(self, model, history):
        """Called once before the first epoch of a fit call."""

    def on_epoch_end(self, epoch, logs):
        """Called after each epoch with its logs (loss, metrics, val_*); True stops training."""

    def on_train_end(self):
        """Called once after the last epoch (also after an early stop)."""


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by more than ``min_delta`` for ``patience`` epochs,
    and (by default) put back the weights of the best epoch.

    monitor defaults to val_loss when there is validation data, else loss.

    >>> stop = EarlyStopping(patience=2)
    >>> stop.monitor is None, stop.patience
    (True, 2)
    """

    def __init__(self, monitor=None, patience=5, min_delta=0.0, mode="auto", restore_best_weights=True):
        if isinstance(patience, bool) or not isinstance(patience, (int, np.integer)) or patience < 0:
            raise TrainingError(f"EarlyStopping: patience must be an integer >= 0, got {patience!r}")
        if not min_delta >= 0:
            raise TrainingError(f"EarlyStopping: min_delta must be >= 0, got {min_delta!r}")
        _better("loss", mode)
        self.monitor, self.patience, self.min_delta = monitor, int(patience), float(min_delta)
        self.mode, self.restore_best_weights = mode, restore_best_weights
        self.best = self.best_epoch = self.stopped_epoch = None

    def on_train_begin(self, model, history):
        self.model = model
        self._monitor = self.monitor or ("val_loss" if history.params.get("n_val") else "loss")
        self._sign = 1.0 if _better(self._monitor, self.mode) == "min" else -1.0
        self.best = self.best_epoch = self.stopped_epoch = self._weights = None
        self._wait = 0

    def on_epoch_end(self, epoch, logs):
        if self._monitor not in logs:
            raise TrainingError(f"EarlyStopping: cannot monitor {self._monitor!r}; the logs have "
                                f"{', '.join(logs)}")
        value = self._sign * logs[self._monitor]
        if self.best is None or value < self._sign * self.best - self.min_delta:
            self.best, self.best_epoch, self._wait = logs[self._monitor], epoch, 0
            if self.restore_best_weights:
                self._weights = {k: np.array(_raw(v), copy=True) for k, v in self.model.state_dict().items()}
            return False
        self._wait += 1
        if self._wait >= self.patience:
            self.stopped_epoch = epoch
            return True
        return False

    def on_train_end(self):
        if self.restore_best_weights and self._weights is not None and self.stopped_epoch is not None:
            self.model.load_state_dict(self._weights)
        self.model = self._weights = None


def _raw(v):
    return v.numpy() if isinstance(v, Tensor) else v


# ------------------------------------------------------------------------------ heads
# How a model's outputs are read, decided by the loss it was trained with:
#   logits: (n, k) class scores, softmax gives probabilities    (cross-entropy)
#   log_probs: (n, k) log-probabilities                          (negative log-likelihood)
#   binary_logits: (n, 1) score of class 1                       (BCE with logits)
#   binary_probs: (n, 1) probability of class 1                  (BCE)
#   values: regression outputs                                   (MSE and anything unknown)
_HEADS = {"cross_entropy": "logits", "nll": "log_probs", "bce_logits": "binary_logits",
          "binary_cross_entropy": "binary_probs", "mse": "values"}
_CLASSIFIER_HEADS = ("logits", "log_probs", "binary_logits", "binary_probs")
# The loss each model was last fitted with: lets predict() read outputs without being told.
_FITTED_HEAD = weakref.WeakKeyDictionary()


def _loss_name(loss):
    """The name of a loss module (its ``name``) or function (its ``__name__``)."""
    name = getattr(loss, "name", None)
    if isinstance(name, str) and name:
        return name
    return getattr(loss, "__name__", type(loss).__name__)


def _head_of(loss):
    """The head of a chainrule loss module or function; None for a loss of the user's own (its
    outputs are then read by their shape), whatever it is called."""
    from chainrule.nn import functional as F
    from chainrule.nn import losses

    if isinstance(loss, tuple(losses.LOSSES.values())):
        return _HEADS.get(losses.canonical(loss.name))
    known = {F.cross_entropy: "logits", F.nll_loss: "log_probs", F.binary_cross_entropy: "binary_probs",
             F.binary_cross_entropy_with_logits: "binary_logits", F.mse_loss: "values"}
    return known.get(loss)


def resolve_loss(loss):
    """A loss given as a name, a loss module or a function -> (callable, head)."""
    if isinstance(loss, str):
        import chainrule.nn as nn

        loss = nn.loss(loss)
    if not callable(loss):
        raise TrainingError(f"loss must be a name, a loss module or a function, got {type(loss).__name__}")
    return loss, _head_of(loss)


def _decide(out, head):
    """Model outputs (numpy) -> predictions: labels for a classifier, values otherwise."""
    if head in ("logits", "log_probs") or (head is None and out.ndim == 2 and out.shape[1] > 1):
        return out.argmax(axis=1)
    if head == "binary_logits":
        return (out.reshape(len(out)) > 0).astype(np.int64)
    if head == "binary_probs":
        return (out.reshape(len(out)) > 0.5).astype(np.int64)
    return out


def _proba(out, head):
    if head in ("logits", None) and out.ndim == 2 and out.shape[1] > 1:
        z = np.exp(out - out.max(axis=1, keepdims=True))
        return z / z.sum(axis=1, keepdims=True)
    if head == "log_probs":
        return np.exp(out)
    if head in ("binary_logits", "binary_probs"):
        p = out.reshape(len(out))
        if head == "binary_logits":
            p = 0.5 * (1.0 + np.tanh(0.5 * p))  # sigmoid without overflow warnings
        return np.column_stack([1.0 - p, p])
    raise TrainingError(f"predict_proba: a model trained with a {head or 'regression'} output gives no "
                        "class probabilities")


# ------------------------------------------------------------------------------ inference
_CHUNK = 8192  # rows per forward pass at inference: bounds memory on large sets


def _dtype_of(model):
    for p in model.parameters():
        return p.dtype
    return np.dtype(np.float64)


def _outputs(model, X):
    """Model outputs on every row of X as one numpy array, in eval mode, recording nothing."""
    was_training = getattr(model, "training", None)
    if hasattr(model, "eval"):
        model.eval()
    try:
        with no_grad():
            parts = [_raw(model(X[s:s + _CHUNK])) for s in range(0, len(X), _CHUNK)]
    finally:
        if was_training:
            model.train()
    out = parts[0] if len(parts) == 1 else np.concatenate(parts)
    return np.asarray(out)


def _inputs(model, X, where):
    X = np.asarray(_raw(X))
    if X.ndim == 1:
        X = X[None, :]
    if X.ndim != 2 or len(X) == 0:
        raise ShapeError(f"{where}: X must be a non-empty 2-D array (examples x features), got shape {X.shape}")
    return np.ascontiguousarray(X, dtype=_dtype_of(model))


def predict(model, X, loss=None):
    """Predictions of a model for each row of X: class labels for a classifier, outputs otherwise.

    How outputs are read follows the loss (argmax of logits for cross-entropy, a threshold for
    binary cross-entropy, the outputs themselves for MSE): ``loss`` if given, else the loss the
    model was last fitted with, else argmax when there are several outputs.

    >>> import chainrule as cr
    >>> model = cr.nn.MLP(2, [], 3, rng=0)
    >>> predict(model, [[0.5, -1.0], [1.0, 2.0]]).shape
    (2,)
    """
    head = _model_head(model, loss)
    return _decide(_outputs(model, _inputs(model, X, "predict")), head)


def predict_proba(model, X, loss=None):
    """Class probabilities (n, k) of a classifier: softmax of logits, or [1 - p, p] for one output.

    >>> import chainrule as cr
    >>> model = cr.nn.MLP(2, [4], 3, rng=0)
    >>> p = predict_proba(model, [[0.5, -1.0]])
    >>> p.shape, round(float(p.sum()), 12)
    ((1, 3), 1.0)
    """
    head = _model_head(model, loss)
    return _proba(_outputs(model, _inputs(model, X, "predict_proba")), head)


def hidden_outputs(model, X):
    """The output of every hidden layer (after its activation) for each row of X: a list of
    (n, width) arrays, the features each layer has learned. Works for an MLP (its ``layers``
    and ``activations``).

    >>> import chainrule as cr
    >>> model = cr.nn.MLP(2, [5, 3], 2, rng=0)
    >>> [a.shape for a in hidden_outputs(model, [[0.0, 1.0]])]
    [(1, 5), (1, 3)]
    """
    layers, acts = getattr(model, "layers", None), getattr(model, "activations", None)
    if layers is None or acts is None:
        raise TrainingError(f"hidden_outputs: {type(model).__name__} has no `layers` and `activations` "
                            "to walk through (an MLP has)")
    h = _inputs(model, X, "hidden_outputs")
    outs = []
    with no_grad():
        for layer, act in zip(layers, acts):
            h = act(layer(h))
            outs.append(np.asarray(_raw(h)))
    return outs


def _model_head(model, loss):
    """How to read the model's outputs: from ``loss``, else the loss of its last fit, else
    its default loss; None (read by shape) when nothing says."""
    if loss is not None:
        return _head_of(resolve_loss(loss)[0])
    if model in _FITTED_HEAD:
        return _FITTED_HEAD[model]
    default = getattr(model, "default_loss", None)
    return _head_of(resolve_loss(default)[0]) if default is not None else None


def evaluate(model, loss, X, y, metrics=None):
    """Loss and metrics of a model over a whole data set: a dict like ``{"loss": ..., "accuracy": ...}``.

    metrics defaults to accuracy for a classification loss and none for regression.

    >>> import chainrule as cr
    >>> X, y = cr.data.xor(n=40, seed=0)
    >>> model = cr.nn.MLP(2, [8], 2, rng=0)
    >>> sorted(evaluate(model, "cross_entropy", X, y))
    ['accuracy', 'loss']
    """
    loss_fn, head = resolve_loss(loss)
    X = _inputs(model, X, "evaluate")
    y = np.asarray(_raw(y))
    if len(y) != len(X):
        raise ShapeError(f"evaluate: X has {len(X)} rows but y has {len(y)}")
    scorers = _metric_list(metrics, head)
    y = _targets(y, head, _dtype_of(model))
    return _scores(model, loss_fn, head, X, y, scorers)


def _metric_list(metrics, head):
    from chainrule import metrics as M

    if metrics is None:
        metrics = ("accuracy",) if head in _CLASSIFIER_HEADS else ()
    elif isinstance(metrics, str) or callable(metrics):
        metrics = (metrics,)
    scorers = []
    for m in metrics:
        if callable(m):
            scorers.append((getattr(m, "__name__", "metric"), m, "labels"))
        else:
            fn, kind, _ = M.get(m)
            scorers.append((M.canonical(m), fn, kind))
    return scorers


def _scores(model, loss_fn, head, X, y, scorers):
    out = _outputs(model, X)
    with no_grad():
        total = 0.0
        for s in range(0, len(X), _CHUNK):
            value = _raw(loss_fn(out[s:s + _CHUNK], y[s:s + _CHUNK]))
            total += float(value) * len(out[s:s + _CHUNK])
    logs = {"loss": total / len(X)}
    if scorers:
        decided = _decide(out, head)
        for name, fn, kind in scorers:
            logs[name] = fn(y, decided if kind == "labels" else out)
    return logs


# ------------------------------------------------------------------------------ checks
def _targets(y, head, dtype):
    """Targets in the form the loss takes: int labels for class scores, else the model's float
    dtype (the losses match (n,) targets to (n, 1) outputs themselves)."""
    if head in ("logits", "log_probs"):
        return y.astype(np.int64)
    return y.astype(dtype)


def _check_targets(y, head, n_out, where):
    if head in _CLASSIFIER_HEADS:
        if y.ndim != 1:
            raise TrainingError(f"{where}: class labels must be 1-D, got shape {y.shape}")
        if not np.all(y == np.round(y)):
            raise TrainingError(f"{where}: a classification loss needs integer class labels, got "
                                f"non-integer values such as {y[y != np.round(y)][0]}")
        top = 2 if head.startswith("binary") else n_out
        bad = np.flatnonzero((y < 0) | (y >= top))
        if len(bad):
            raise TrainingError(f"{where}: label {y[bad[0]]:g} at row {bad[0]} is out of range: the model "
                                f"has {'one output (binary: labels 0 or 1)' if top == 2 else f'{n_out} outputs'}"
                                f", so labels must be in 0..{top - 1}")
    elif head == "values":  # a loss of the user's own may take targets of any form
        width = 1 if y.ndim == 1 else math.prod(y.shape[1:])
        if width != n_out:
            raise TrainingError(f"{where}: targets have {width} column(s) but the model has {n_out} output(s)")


def _probe(model, X, where):
    """Run one example through the model, so a wrong feature count fails with a clear message."""
    try:
        out = _outputs(model, X[:1])
    except ShapeError as err:
        expected = _in_features(model)
        said = f"the model expects {expected}" if expected is not None else "the model does not accept that"
        raise ShapeError(f"{where}: X has {X.shape[1]} features but {said} ({err})") from None
    return out


def _in_features(model):
    try:
        config = model.config()
    except Exception:  # a model without config() just gives a vaguer message
        return None
    return config.get("in_features") if isinstance(config, dict) else None


def _check_optimizer(optimizer):
    if optimizer is None or not hasattr(optimizer, "step") or not hasattr(optimizer, "zero_grad"):
        raise TrainingError("fit: optimizer must be an optimizer such as cr.optim.SGD(model.parameters(), lr=0.1)")
    groups = getattr(optimizer, "param_groups", None) or [{"lr": getattr(optimizer, "lr", None)}]
    for g in groups:
        lr = g.get("lr") if isinstance(g, dict) else None
        if lr is not None and not (np.isfinite(lr) and lr > 0):
            raise TrainingError(f"fit: the learning rate must be a positive number, got {lr!r}")


def _positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise TrainingError(f"fit: {name} must be a positive integer, got {value!r}")
    return int(value)


# ------------------------------------------------------------------------------ fit
@for_training  # BLAS threads: one for small networks (chainrule.core.threads), or ``threads``
def fit(model, loss, X, y, *, optimizer, epochs, batch_size=32, shuffle=True, seed=None, validation=None,
        validation_split=None, metrics=None, early_stopping=None, callbacks=(), progress=True, history=None,
        threads=None, diagnostics=False, compile="auto"):
    r"""Train ``model`` to minimise ``loss`` on (X, y) by minibatch gradient descent; return a History.

    Each epoch shuffles the rows (``shuffle``), and for each batch of ``batch_size`` rows takes one
    step $\theta \leftarrow \mathrm{step}(\theta, \nabla_\theta \frac1{|B|}\sum_{i\in B} \ell(f_\theta(x_i), y_i))$
    of ``optimizer``. ``batch_size=1, shuffle=False`` is plain stochastic gradient descent in file
    order. Calling fit again continues from the current weights and optimizer state; pass the
    previous ``history`` to append to it.

    loss: a name ("cross_entropy", "mse", ...), a loss module, a function ``loss(outputs, y)``, or
    None for the model's ``default_loss``.
    validation: (X_val, y_val), or validation_split: a fraction of (X, y) held out at random.
    metrics: names ("accuracy", "error_rate", "mse", "mae", "r2") or functions ``m(y, predictions)``;
    default accuracy for classification losses. early_stopping: an EarlyStopping or a patience.
    diagnostics: True (or a ``chainrule.nn.diagnostics.Diagnostics``) records per epoch and layer the
    gradient and weight norms, the update/weight ratio and the saturated and dead units in
    ``history.diagnostics``, and warns (``cr.VanishingGradientWarning``) naming the layer where
    gradients vanish or explode; off, it costs nothing.
    callbacks: Callback objects or functions ``fn(epoch, logs)`` (returning True stops).
    seed: the same seed (and the same initial weights) gives bit-identical training; fit again
    with the returned history and the same seed continues the same shuffling stream, so 10 + 10
    epochs equal 20 bit for bit (the history keeps the generator's state; keep
    ``history.to_dict()`` in a checkpoint's extra to resume from a file).
    threads: BLAS threads; by default one when the largest layer's batch x fan_in x fan_out is below
    5e7 multiply-adds, else the libraries' own (``chainrule.core.threads``); 0: the libraries' own.
    compile: True computes each batch's loss and gradients with one ``cr.compile``d program of
    the model's forward and backward pass (traced on the first batch, and once more for a
    shorter last batch), then the optimizer steps as usual: the same numbers as the eager step
    to rounding. The model's ``forward`` must then be a function of its parameters and input
    (no Python decisions on values; see ``cr.compile``). "auto" (the default): compiled for
    models and losses made only of chainrule's own modules and losses, eager for your own code
    and under ``detect_anomaly``. False: eager (a graph recorded and walked per batch).

    >>> import chainrule as cr
    >>> X, y = cr.data.gaussians(n=100, seed=0)
    >>> model = cr.nn.MLP(2, [8], 2, rng=0)
    >>> opt = cr.optim.SGD(model.parameters(), lr=0.1)
    >>> h = cr.fit(model, "cross_entropy", X, y, optimizer=opt, epochs=5, seed=0, progress=False)
    >>> h.epochs, h.history["accuracy"][-1] > 0.9
    ([1, 2, 3, 4, 5], True)
    """
    from chainrule.data import check_dataset
    from chainrule.data import train_test_split

    epochs = _positive_int("epochs", epochs)
    batch_size = _positive_int("batch_size", batch_size)
    _check_optimizer(optimizer)
    if loss is None:
        loss = getattr(model, "default_loss", None)
        if loss is None:
            raise TrainingError(f"fit: no loss given, and {type(model).__name__} has no default_loss; "
                                "pass e.g. 'cross_entropy' or 'mse'")
    loss_fn, head = resolve_loss(loss)
    X, y = check_dataset(_raw(X), _raw(y), where="fit: training data")
    dtype = _dtype_of(model)
    rng = np.random.default_rng(seed)
    resume = _resumable(history, seed)
    if validation is not None and validation_split is not None:
        raise TrainingError("fit: pass validation=(X_val, y_val) or validation_split, not both")
    if validation_split is not None:
        if not 0 < validation_split < 1:
            raise TrainingError(f"fit: validation_split must be a fraction in (0, 1), got {validation_split!r}")
        try:
            # A resumed run splits as its first call did: from a fresh generator of the same seed.
            X, Xv, y, yv = train_test_split(X, y, test_size=float(validation_split),
                                            seed=np.random.default_rng(seed) if resume else rng,
                                            stratify=head in _CLASSIFIER_HEADS)
        except ValueError as err:
            raise TrainingError(f"fit: validation_split={validation_split}: {err}") from None
        validation = (Xv, yv)
    if validation is not None:
        if not isinstance(validation, (tuple, list)) or len(validation) != 2:
            raise TrainingError("fit: validation must be a pair (X_val, y_val)")
        Xv, yv = check_dataset(_raw(validation[0]), _raw(validation[1]), where="fit: validation data")
        if Xv.shape[1] != X.shape[1]:
            raise ShapeError(f"fit: validation X has {Xv.shape[1]} features but training X has {X.shape[1]}")
    X = np.ascontiguousarray(X, dtype=dtype)
    n_out = math.prod(_probe(model, X, "fit").shape[1:])
    _check_targets(y, head, n_out, "fit: training data")
    y = _targets(y, head, dtype)
    if validation is not None:
        _check_targets(yv, head, n_out, "fit: validation data")
        validation = (np.ascontiguousarray(Xv, dtype=dtype), _targets(yv, head, dtype))
    scorers = _metric_list(metrics, head)

    if resume:
        rng.bit_generator.state = history.rng_state
    if history is None:
        history = History()
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
        history.params["seed"] = int(seed)
    start = history.epochs[-1] if history.epochs else 0
    n = len(X)
    history.params.update(epochs=start + epochs, batch_size=batch_size, n_train=n,
                          n_val=0 if validation is None else len(validation[0]),
                          steps_per_epoch=-(-n // batch_size), loss=_loss_name(loss_fn))
    hooks = list(callbacks)
    if diagnostics is not None and diagnostics is not False:
        from chainrule.nn.diagnostics import Diagnostics

        if diagnostics is True:
            diagnostics = Diagnostics()
        elif not isinstance(diagnostics, Diagnostics):
            raise TrainingError(f"fit: diagnostics must be True, False or a Diagnostics, got {diagnostics!r}")
        hooks.append(diagnostics.bind(loss_fn, X, y))
    if early_stopping is not None:
        if not isinstance(early_stopping, EarlyStopping):
            early_stopping = EarlyStopping(patience=early_stopping)
        hooks.append(early_stopping)
    for hook in hooks:
        if isinstance(hook, Callback):
            hook.on_train_begin(model, history)
        elif not callable(hook):
            raise TrainingError(f"fit: a callback must be a Callback or a function, got {type(hook).__name__}")
    _FITTED_HEAD[model] = head
    if compile == "auto":
        compile = _compiled_by_default(model, loss_fn)
    elif compile is not True and compile is not False:
        raise TrainingError(f"fit: compile must be True, False or 'auto', got {compile!r}")
    step = compiled_step(model, loss_fn) if compile else None

    bar = _progress_bar(progress, epochs * n, f"epoch {start + 1}/{start + epochs}")
    try:
        for epoch in range(start + 1, start + epochs + 1):
            began = time.perf_counter()
            if bar is not None:
                bar.set_description_str(f"epoch {epoch}/{start + epochs}", refresh=False)
            _one_epoch(model, loss_fn, optimizer, X, y, batch_size,
                       rng.permutation(n) if shuffle else None, epoch, bar, step)
            logs = _scores(model, loss_fn, head, X, y, scorers)
            if validation is not None:
                logs.update({"val_" + k: v for k, v in
                             _scores(model, loss_fn, head, *validation, scorers).items()})
            history._record(epoch, logs, time.perf_counter() - began)
            history.rng_state = rng.bit_generator.state
            if bar is not None:
                bar.set_postfix_str(f"loss={logs['loss']:.4g}", refresh=False)
            stop = False
            for hook in hooks:
                result = hook.on_epoch_end(epoch, logs) if isinstance(hook, Callback) else hook(epoch, logs)
                stop = stop or bool(result)
            if stop:
                history.stopped_early = epoch
                break
    finally:
        if bar is not None:
            bar.close()
    for hook in hooks:
        if isinstance(hook, Callback):
            hook.on_train_end()
    return history


def _resumable(history, seed):
    """Does this fit continue ``history``'s shuffling stream? Yes when the history kept a state
    and the seed is the one it started with (or None); a different seed starts afresh."""
    if history is None or history.rng_state is None:
        return False
    return seed is None or (isinstance(seed, (int, np.integer)) and history.params.get("seed") == int(seed))


def _one_epoch(model, loss_fn, optimizer, X, y, batch_size, order, epoch, bar, step=None):
    """One pass over the data: forward, backward and an optimizer step per batch, nothing else
    (the forward and backward pass as one compiled program where ``step`` is given)."""
    if order is not None:
        X, y = X[order], y[order]  # one gather per epoch; batches below are cheap slices
        # Read-only: a graph keeps such a batch as it is, with no copy to guard it against change.
        X.flags.writeable = y.flags.writeable = False
    if hasattr(model, "train"):
        model.train()
    n = len(X)
    total = 0.0
    for b, s in enumerate(range(0, n, batch_size)):
        xb, yb = X[s:s + batch_size], y[s:s + batch_size]
        optimizer.zero_grad()
        if step is None:
            value = loss_fn(model(xb), yb)
            v = float(value.data)
        else:
            v = step(xb, yb)
        if not math.isfinite(v):
            raise TrainingError(
                f"fit: the loss became {v} in epoch {epoch}, batch {b + 1} (examples {s}..{s + len(xb) - 1} of "
                f"this epoch's order); training diverged. Try a smaller learning rate, standardized "
                "features, or gradient clipping")
        if step is None:
            value.backward()
        optimizer.step()
        if bar is not None:
            total += v * len(xb)
            # tqdm says when it redraws; the running loss shows at the next redraw.
            if bar.update(len(xb)):
                bar.set_postfix_str(f"loss={total / (s + len(xb)):.4g}", refresh=False)


def _compiled_by_default(model, loss_fn):
    """``compile="auto"``: the compiled step for a model and loss made only of chainrule's own
    modules and losses (each a function of the parameters and the input, so one program per batch
    shape computes exactly what they do), the eager step for anything of the user's (its Python
    may decide on values) and while anomaly detection checks every operation."""
    from chainrule.core.registry import anomaly_enabled
    from chainrule.nn.module import Module

    def ours(obj):
        return (getattr(obj, "__module__", None) or "").startswith("chainrule.nn.")

    return (isinstance(model, Module) and not anomaly_enabled() and ours(loss_fn)
            and all(ours(type(m)) for m in model.modules()))


# The compiled step of each model, kept between fit calls (an epoch at a time costs no new trace)
_STEPS = weakref.WeakKeyDictionary()


def compiled_step(model, loss_fn):
    """The :class:`CompiledStep` of ``model`` and ``loss_fn``, reused while both are as they were:
    the same modules (each module's type, settings and parameter objects, which parameters are
    trainable) and the same loss (one of chainrule's loss modules by its class and reduction, all
    it computes with; any other loss, a subclass of the user's included, by identity). Anything
    else traces a new one."""
    from chainrule.nn.losses import _Loss

    ours = isinstance(loss_fn, _Loss) and type(loss_fn).__module__ == _Loss.__module__
    loss_key = (type(loss_fn), loss_fn.reduction) if ours else loss_fn
    modules = model.modules() if hasattr(model, "modules") else [model]
    key = (loss_key, tuple((id(m), type(m), m.extra_repr()) for m in modules),
           tuple((id(p), p.requires_grad) for _, p in model.named_parameters()))
    kept = _STEPS.get(model)
    if kept is not None and kept[0] == key:
        return kept[1]
    step = CompiledStep(model, loss_fn)
    # Kept with loss modules and chainrule's loss functions, not with a function of the user's: a
    # closure may hold the model (weight decay over model.parameters()), and the kept step would
    # then keep alive the model it is filed under
    if isinstance(loss_fn, _Loss) or (getattr(loss_fn, "__module__", None) or "").startswith("chainrule."):
        _STEPS[model] = (key, step)
    else:
        _STEPS.pop(model, None)
    return step


class CompiledStep:
    """The loss of a batch and its gradient with respect to the model's trainable parameters, as
    one ``cr.compile``d program of ``value_and_grad``: ``step(xb, yb)`` returns the loss as a
    float and leaves each gradient in its parameter's ``.grad``, where the optimizer reads it (as
    after ``loss.backward()``). The parameters go in as arrays (``functional_call``), read anew
    on each call, so the optimizer's in-place updates and a ``load_state_dict`` are seen; frozen
    parameters (``requires_grad=False``) go in too, undifferentiated."""

    def __init__(self, model, loss_fn):
        from chainrule.modes.api import value_and_grad
        from chainrule.modes.compile import compile as compile_fn
        from chainrule.nn.module import functional_call

        named = list(model.named_parameters()) if hasattr(model, "named_parameters") else []
        if not named:
            raise TrainingError(f"fit(compile=True): {type(model).__name__} has no parameters to pass to the "
                                "compiled step; compile works on cr.nn Modules")
        self.trainable = [(name, p) for name, p in named if p.requires_grad]
        self.frozen = [(name, p) for name, p in named if not p.requires_grad]

        model_ref = weakref.ref(model)  # kept steps (compiled_step) must not keep their model alive

        def batch_loss(trainable, frozen, xb, yb):
            return loss_fn(functional_call(model_ref(), {**trainable, **frozen}, xb), yb)

        batch_loss.__name__ = "batch_loss"
        self.program = compile_fn(value_and_grad(batch_loss), maxsize=4)

    def __call__(self, xb, yb):
        value, grads = self.program({name: p.data for name, p in self.trainable},
                                    {name: p.data for name, p in self.frozen}, xb, yb)
        for name, p in self.trainable:
            p.grad = _new(grads[name])
        return float(value)

    def source(self, xb, yb):
        """The generated program for batches like ``(xb, yb)``: the forward and backward pass."""
        return self.program.source({name: p.data for name, p in self.trainable},
                                   {name: p.data for name, p in self.frozen}, xb, yb)


def _progress_bar(progress, total, desc):
    if not progress:
        return None
    try:
        from tqdm import tqdm
    except ImportError:  # progress is a nicety: train silently without tqdm
        return None
    # The bar gets what the text leaves of the line, so the text stays short (about 46 columns):
    # with every metric in the postfix it was 1 to 5 characters wide in 80 and 120 columns.
    # The per-epoch metrics are in the History; the bar shows progress, time left and the loss.
    return tqdm(total=total, desc=desc, unit="ex", unit_scale=True, leave=True, dynamic_ncols=True,
                mininterval=0.25, bar_format="{desc} {bar} {percentage:3.0f}% [{elapsed}<{remaining}{postfix}]")
