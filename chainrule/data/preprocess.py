"""Splitting, scaling, one-hot encoding, mini-batching and sanity checks for (X, y) arrays."""
from __future__ import annotations

import math

import numpy as np

from chainrule.data.loaders import DataError

__all__ = ["train_test_split", "Standardizer", "one_hot", "batches", "check_dataset"]


def check_dataset(X, y, where="data"):
    """Raise DataError unless X is 2-D, non-empty, finite and as long as y; return both as arrays.

    >>> X, y = check_dataset([[0.0, 1.0]], [1])
    >>> X.shape, y.shape
    ((1, 2), (1,))
    """
    X, y = np.asarray(X), np.asarray(y)
    if X.ndim != 2:
        raise DataError(f"{where}: X must be 2-D (examples x features), got shape {X.shape}")
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise DataError(f"{where}: X is empty (shape {X.shape})")
    if y.ndim == 0 or len(y) != len(X):
        raise DataError(f"{where}: X has {len(X)} rows but y has shape {y.shape}")
    for name, a in (("X", X), ("y", y)):
        if not np.issubdtype(a.dtype, np.number) and a.dtype != bool:
            raise DataError(f"{where}: {name} must be numeric, got dtype {a.dtype}")
        bad = np.argwhere(~np.isfinite(a.reshape(len(a), -1)))
        if len(bad):
            row, col = bad[0]
            value = a.reshape(len(a), -1)[row, col]
            cell = f"row {row}, column {col}" if name == "X" or a.ndim > 1 else f"row {row}"
            raise DataError(f"{where}: {name} has {value} at {cell} (NaN/inf not allowed)")
    return X, y


def train_test_split(X, y, test_size=0.2, seed=None, stratify=False):
    """Shuffle and split into (X_train, X_test, y_train, y_test); stratify keeps class ratios.

    test_size is a fraction in (0, 1) or a number of examples.

    >>> X, y = np.arange(20.0).reshape(10, 2), np.arange(10) % 2
    >>> X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.2, seed=0, stratify=True)
    >>> X_tr.shape, X_te.shape, sorted(y_te.tolist())
    ((8, 2), (2, 2), [0, 1])
    """
    X, y = np.asarray(X), np.asarray(y)
    if len(X) != len(y):
        raise ValueError(f"X has {len(X)} rows but y has {len(y)}")
    n = len(X)
    if isinstance(test_size, (float, np.floating)):
        if not 0 < test_size < 1:
            raise ValueError(f"a fractional test_size must be in (0, 1), got {test_size}")
        n_test = math.ceil(test_size * n)
    else:
        n_test = int(test_size)
    if not 0 < n_test < n:
        raise ValueError(f"test_size={test_size} leaves {n_test} test and {n - n_test} "
                         f"training examples of {n}; both must be at least 1")
    rng = np.random.default_rng(seed)
    if stratify:
        test = []
        for cls in np.unique(y):
            members = rng.permutation(np.flatnonzero(y == cls))
            test.append(members[: int(round(len(members) * n_test / n))])
        test = np.concatenate(test)
        if not 0 < len(test) < n:
            raise ValueError(f"stratified split of {n} examples gives {len(test)} test examples")
        train = np.setdiff1d(np.arange(n), test)
        test, train = rng.permutation(test), rng.permutation(train)
    else:
        order = rng.permutation(n)
        test, train = order[:n_test], order[n_test:]
    return X[train], X[test], y[train], y[test]


class Standardizer:
    """Scale each column to mean 0 and std 1; constant columns are only centred.

    >>> s = Standardizer().fit([[1.0, 5.0], [3.0, 5.0]])
    >>> s.transform([[2.0, 5.0], [3.0, 5.0]]).tolist()
    [[0.0, 0.0], [1.0, 0.0]]
    >>> Standardizer.from_dict(s.to_dict()).inverse_transform([[1.0, 0.0]]).tolist()
    [[3.0, 5.0]]
    """

    def __init__(self, mean=None, std=None):
        self.mean = None if mean is None else np.asarray(mean, dtype=np.float64)
        self.std = None if std is None else np.asarray(std, dtype=np.float64)

    def fit(self, X):
        X, _ = check_dataset(X, np.zeros(len(np.asarray(X))), where="Standardizer.fit")
        self.mean = X.mean(axis=0, dtype=np.float64)
        self.std = X.std(axis=0, dtype=np.float64)
        return self

    def _scale(self):
        if self.mean is None:
            raise RuntimeError("Standardizer is not fitted; call fit(X) first")
        # Rounding makes a constant column's std tiny but nonzero; treat that as zero too.
        return np.where(self.std > 1e-12 * np.maximum(1.0, np.abs(self.mean)), self.std, 1.0)

    def _columns(self, X):
        X = np.asarray(X, dtype=np.float64)
        if X.shape[-1:] != self.mean.shape:
            raise ValueError(f"expected {len(self.mean)} columns, got shape {X.shape}")
        return X

    def transform(self, X):
        scale = self._scale()
        return (self._columns(X) - self.mean) / scale

    def fit_transform(self, X):
        return self.fit(X).transform(X)

    def inverse_transform(self, Z):
        scale = self._scale()
        return self._columns(Z) * scale + self.mean

    def to_dict(self):
        """Plain lists, ready for json.dump."""
        self._scale()
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_dict(cls, d):
        if set(d) != {"mean", "std"} or len(d["mean"]) != len(d["std"]):
            raise ValueError("Standardizer dict needs 'mean' and 'std' lists of equal length")
        return cls(d["mean"], d["std"])

    def __repr__(self):
        fitted = "unfitted" if self.mean is None else f"{len(self.mean)} columns"
        return f"Standardizer({fitted})"


def one_hot(y, n_classes=None):
    """Integer labels (n,) -> float64 indicator matrix (n, n_classes).

    >>> one_hot([0, 2], n_classes=3).tolist()
    [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]
    """
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"labels must be 1-D, got shape {y.shape}")
    if y.dtype.kind not in "iub":
        if y.dtype.kind != "f" or not np.all(y == np.round(y)):
            raise ValueError(f"labels must be whole numbers, got dtype {y.dtype}")
    y = y.astype(np.int64)
    if n_classes is None:
        n_classes = int(y.max()) + 1 if len(y) else 0
    if len(y) and (y.min() < 0 or y.max() >= n_classes):
        raise ValueError(f"labels must be in 0..{n_classes - 1}, got {y.min()}..{y.max()}")
    out = np.zeros((len(y), n_classes))
    out[np.arange(len(y)), y] = 1.0
    return out


def batches(n, batch_size, shuffle=True, rng=None):
    """Yield index arrays covering range(n) in chunks of batch_size (the last may be smaller).

    rng is a numpy Generator or a seed.

    >>> [b.tolist() for b in batches(5, 2, shuffle=False)]
    [[0, 1], [2, 3], [4]]
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    order = np.random.default_rng(rng).permutation(n) if shuffle else np.arange(n)
    for start in range(0, n, batch_size):
        yield order[start:start + batch_size]
