"""Scores of predictions: accuracy, error rate, confusion matrix, mean squared error and R^2."""
from __future__ import annotations

import numpy as np

from chainrule.core.errors import ShapeError
from chainrule.core.ops import stop_gradient

__all__ = [
    "accuracy", "error_rate", "confusion_matrix", "mean_squared_error", "mean_absolute_error",
    "r2_score", "METRICS", "get",
]


def _pair(name, y_true, y_pred):
    # a score is not differentiated: the values of predictions that require grad are taken on purpose
    y_true, y_pred = np.asarray(stop_gradient(y_true)), np.asarray(stop_gradient(y_pred))
    if len(y_true.shape) == 0 or len(y_pred.shape) == 0:
        raise ShapeError(f"{name}: y_true and y_pred must be arrays of examples, got shapes "
                         f"{y_true.shape} and {y_pred.shape}")
    if len(y_true) != len(y_pred):
        raise ShapeError(f"{name}: y_true has {len(y_true)} examples but y_pred has {len(y_pred)}")
    if len(y_true) == 0:
        raise ShapeError(f"{name}: no examples to score")
    return y_true, y_pred


def _labels(name, y_true, y_pred):
    y_true, y_pred = _pair(name, y_true, y_pred)
    if y_pred.ndim == 2 and y_pred.shape[1] > 1 and y_true.ndim == 1:
        y_pred = y_pred.argmax(axis=1)  # class scores: the predicted label is the top one
    if y_true.shape != y_pred.shape:
        raise ShapeError(f"{name}: y_true has shape {y_true.shape} but y_pred has shape {y_pred.shape}")
    return y_true, y_pred


def accuracy(y_true, y_pred) -> float:
    r"""Fraction of examples whose predicted label equals the true one: $\frac1n\sum_i [\hat y_i = y_i]$.

    y_pred may be labels, or class scores of shape (n, k) whose argmax is the label.

    >>> accuracy([0, 1, 2, 1], [0, 1, 1, 1])
    0.75
    >>> accuracy([1, 0], [[0.2, 0.8], [0.9, 0.1]])
    1.0
    """
    y_true, y_pred = _labels("accuracy", y_true, y_pred)
    return float(np.mean(y_true == y_pred))


def error_rate(y_true, y_pred) -> float:
    """Fraction misclassified: 1 - accuracy.

    >>> error_rate([0, 1, 2, 1], [0, 1, 1, 1])
    0.25
    """
    y_true, y_pred = _labels("error_rate", y_true, y_pred)
    return float(np.mean(y_true != y_pred))


def confusion_matrix(y_true, y_pred, n_classes=None) -> np.ndarray:
    """Counts C[i, j] of examples of true class i predicted as class j (int64, n_classes square).

    Labels are integers 0..n_classes-1; n_classes defaults to one more than the largest label.

    >>> confusion_matrix([0, 1, 1, 2], [0, 1, 2, 2]).tolist()
    [[1, 0, 0], [0, 1, 1], [0, 0, 1]]
    """
    y_true, y_pred = _labels("confusion_matrix", y_true, y_pred)
    if y_true.ndim != 1:
        raise ShapeError(f"confusion_matrix: labels must be 1-D, got shape {y_true.shape}")
    for which, a in (("y_true", y_true), ("y_pred", y_pred)):
        if a.dtype.kind not in "iub" and not (a.dtype.kind == "f" and np.all(a == np.round(a))):
            raise ValueError(f"confusion_matrix: {which} must hold integer class labels, got dtype {a.dtype}")
    y_true, y_pred = y_true.astype(np.int64), y_pred.astype(np.int64)
    top = int(max(y_true.max(), y_pred.max())) + 1
    if n_classes is None:
        n_classes = top
    low = int(min(y_true.min(), y_pred.min()))
    if low < 0 or top > n_classes:
        raise ValueError(f"confusion_matrix: labels must be in 0..{n_classes - 1}, got {low}..{top - 1}")
    # One bincount over the flattened (true, predicted) cell index counts every pair at once.
    counts = np.bincount(y_true * n_classes + y_pred, minlength=n_classes * n_classes)
    return counts.reshape(n_classes, n_classes)


def _values(name, y_true, y_pred):
    y_true, y_pred = _pair(name, y_true, y_pred)
    y_true, y_pred = y_true.astype(np.float64), y_pred.astype(np.float64)
    # A single-output model gives (n, 1) where targets are often (n,): compare them as columns.
    if y_true.ndim == 1:
        y_true = y_true[:, None]
    if y_pred.ndim == 1:
        y_pred = y_pred[:, None]
    if y_true.shape != y_pred.shape:
        raise ShapeError(f"{name}: y_true has shape {y_true.shape} but y_pred has shape {y_pred.shape}")
    return y_true, y_pred


def mean_squared_error(y_true, y_pred) -> float:
    r"""$\frac1{n}\sum_i \|y_i - \hat y_i\|^2 / k$: the mean of the squared errors over every entry.

    >>> mean_squared_error([1.0, 2.0, 3.0], [1.0, 2.0, 5.0])
    1.3333333333333333
    """
    y_true, y_pred = _values("mean_squared_error", y_true, y_pred)
    return float(np.mean((y_true - y_pred) ** 2))


def mean_absolute_error(y_true, y_pred) -> float:
    r"""$\frac1{nk}\sum_{i,j} |y_{ij} - \hat y_{ij}|$.

    >>> mean_absolute_error([1.0, 2.0], [2.0, 0.0])
    1.5
    """
    y_true, y_pred = _values("mean_absolute_error", y_true, y_pred)
    return float(np.mean(np.abs(y_true - y_pred)))


def r2_score(y_true, y_pred) -> float:
    r"""Coefficient of determination $R^2 = 1 - \sum_i (y_i - \hat y_i)^2 / \sum_i (y_i - \bar y)^2$.

    1 is perfect, 0 is as good as predicting the mean, negative is worse. Several outputs are
    averaged with equal weight (as scikit-learn does); a constant target scores 1 if predicted
    exactly, else 0.

    >>> r2_score([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    1.0
    >>> r2_score([1.0, 2.0, 3.0], [2.0, 2.0, 2.0])
    0.0
    """
    y_true, y_pred = _values("r2_score", y_true, y_pred)
    residual = ((y_true - y_pred) ** 2).sum(axis=0)
    total = ((y_true - y_true.mean(axis=0)) ** 2).sum(axis=0)
    safe = total > 0
    score = np.where(safe, 1 - residual / np.where(safe, total, 1.0), np.where(residual == 0, 1.0, 0.0))
    return float(score.mean())


# name -> (function, kind, better): kind "labels" scores predicted classes, "values" scores
# regression outputs; better says which direction improves (early stopping, History.best).
METRICS = {
    "accuracy": (accuracy, "labels", "max"),
    "error_rate": (error_rate, "labels", "min"),
    "mse": (mean_squared_error, "values", "min"),
    "mae": (mean_absolute_error, "values", "min"),
    "r2": (r2_score, "values", "max"),
}
_ALIASES = {"acc": "accuracy", "error": "error_rate", "mean_squared_error": "mse",
            "mean_absolute_error": "mae", "r2_score": "r2"}


def get(name):
    """The (function, kind, better) entry of a metric by name (or alias), with a clear error.

    >>> get("acc")[0]([1, 0], [1, 1])
    0.5
    """
    key = _ALIASES.get(name, name)
    if key not in METRICS:
        raise ValueError(f"unknown metric {name!r}; valid names: {', '.join(METRICS)}")
    return METRICS[key]


def canonical(name) -> str:
    """The name a metric is stored under in a History ('acc' -> 'accuracy')."""
    get(name)
    return _ALIASES.get(name, name)
