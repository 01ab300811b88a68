"""TensorFlow-Playground-style 2-D toy datasets, reproducible from a seed."""
from __future__ import annotations

import numpy as np

from chainrule.data.loaders import load_digits

__all__ = [
    "circle", "xor", "gaussians", "spiral", "moons", "plane", "multi_gaussian",
    "DATASETS", "load",
]

# Every set lives in roughly the [-1, 1] square so networks train without rescaling.
# For classification sets `noise` is the standard deviation of Gaussian jitter added
# to each coordinate after labelling; for regression sets it jitters the target.


def _start(n, noise, seed):
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    if not np.isfinite(noise) or noise < 0:
        raise ValueError(f"noise must be a finite number >= 0, got {noise!r}")
    return int(n), float(noise), np.random.default_rng(seed)


def _finish(points, labels, noise, rng):
    # Shuffle so that slicing the first k rows does not give a single class.
    order = rng.permutation(len(labels))
    X = points[order] + noise * rng.standard_normal(points.shape)
    return X.astype(np.float64), labels[order].astype(np.int64)


def _halves(n):
    n0 = n // 2
    return n0, n - n0


def circle(n=200, noise=0.1, seed=None):
    """Disc of class 1 inside a ring of class 0.

    >>> X, y = circle(n=100, noise=0.0, seed=0)
    >>> X.shape, y.dtype.name, sorted(set(y.tolist()))
    ((100, 2), 'int64', [0, 1])
    """
    n, noise, rng = _start(n, noise, seed)
    n0, n1 = _halves(n)
    radius = np.concatenate([rng.uniform(0.7, 1.0, n0), rng.uniform(0.0, 0.5, n1)])
    angle = rng.uniform(0.0, 2 * np.pi, n)
    points = np.column_stack([radius * np.cos(angle), radius * np.sin(angle)])
    labels = np.repeat([0, 1], [n0, n1])
    return _finish(points, labels, noise, rng)


def xor(n=200, noise=0.1, seed=None):
    """Four quadrants: class 1 where x0 and x1 share a sign.

    >>> X, y = xor(n=50, noise=0.0, seed=0)
    >>> bool(((X[:, 0] * X[:, 1] > 0) == (y == 1)).all())
    True
    """
    n, noise, rng = _start(n, noise, seed)
    points = rng.uniform(-1.0, 1.0, (n, 2))
    # Push points off the axes (as the Playground does) so the clean set is separable by a margin.
    points += np.where(points > 0, 0.05, -0.05)
    labels = (points[:, 0] * points[:, 1] > 0).astype(np.int64)
    return _finish(points, labels, noise, rng)


def gaussians(n=200, noise=0.1, seed=None):
    """Two Gaussian blobs: class 0 around (-0.5, -0.5), class 1 around (0.5, 0.5).

    >>> X, y = gaussians(n=200, noise=0.0, seed=0)
    >>> bool(X[y == 1].mean() > 0 > X[y == 0].mean())
    True
    """
    n, noise, rng = _start(n, noise, seed)
    n0, n1 = _halves(n)
    labels = np.repeat([0, 1], [n0, n1])
    centers = np.where(labels[:, None] == 1, 0.5, -0.5)
    points = centers + 0.2 * rng.standard_normal((n, 2))
    return _finish(points, labels, noise, rng)


def spiral(n=200, noise=0.1, seed=None):
    """Two interleaved spirals, one per class.

    >>> X, y = spiral(n=100, noise=0.0, seed=0)
    >>> bool(np.abs(X).max() <= 1.0)
    True
    """
    n, noise, rng = _start(n, noise, seed)
    n0, n1 = _halves(n)
    labels = np.repeat([0, 1], [n0, n1])
    t = np.concatenate([np.linspace(0.0, 1.0, n0), np.linspace(0.0, 1.0, n1)])
    angle = 1.75 * 2 * np.pi * t + np.pi * labels
    points = np.column_stack([t * np.sin(angle), t * np.cos(angle)])
    return _finish(points, labels, noise, rng)


def moons(n=200, noise=0.1, seed=None):
    """Two interleaving half circles (class 0 on top, class 1 below).

    >>> X, y = moons(n=100, noise=0.0, seed=0)
    >>> bool(X[y == 0, 1].mean() > X[y == 1, 1].mean())
    True
    """
    n, noise, rng = _start(n, noise, seed)
    n0, n1 = _halves(n)
    labels = np.repeat([0, 1], [n0, n1])
    t = rng.uniform(0.0, np.pi, n)
    top = np.column_stack([np.cos(t), np.sin(t)])
    bottom = np.column_stack([1.0 - np.cos(t), 0.5 - np.sin(t)])
    points = np.where(labels[:, None] == 0, top, bottom) - [0.5, 0.25]
    return _finish(points, labels, noise, rng)


def _regression(points, target, noise, rng):
    X = points.astype(np.float64)
    return X, target + noise * rng.standard_normal(len(target))


def plane(n=200, noise=0.0, seed=None):
    """Regression on a tilted plane: y = (x0 + x1) / 2 plus noise.

    >>> X, y = plane(n=20, seed=0)
    >>> bool(np.allclose(y, X.sum(axis=1) / 2)), y.dtype.name
    (True, 'float64')
    """
    n, noise, rng = _start(n, noise, seed)
    X = rng.uniform(-1.0, 1.0, (n, 2))
    return _regression(X, X.sum(axis=1) / 2, noise, rng)


# Six bumps on a 3x2 grid with alternating signs, like the Playground's "multi gaussian".
_BUMPS = np.array([[-0.67, 0.42, 1], [0, 0.42, -1], [0.67, 0.42, 1],
                   [-0.67, -0.42, -1], [0, -0.42, 1], [0.67, -0.42, -1]])


def multi_gaussian(n=200, noise=0.0, seed=None):
    """Regression on a sum of six Gaussian bumps of alternating sign.

    >>> X, y = multi_gaussian(n=500, seed=0)
    >>> bool(-1.1 < y.min() < 0 < y.max() < 1.1)
    True
    """
    n, noise, rng = _start(n, noise, seed)
    X = rng.uniform(-1.0, 1.0, (n, 2))
    d2 = ((X[:, None, :] - _BUMPS[None, :, :2]) ** 2).sum(axis=2)
    target = (_BUMPS[:, 2] * np.exp(-d2 / (2 * 0.2**2))).sum(axis=1)
    return _regression(X, target, noise, rng)


DATASETS = {
    "circle": (circle, "classification"),
    "xor": (xor, "classification"),
    "gaussians": (gaussians, "classification"),
    "spiral": (spiral, "classification"),
    "moons": (moons, "classification"),
    "plane": (plane, "regression"),
    "multi_gaussian": (multi_gaussian, "regression"),
}


def load(name, **kw):
    """Load a dataset by name: any key of DATASETS, or "digits" (no options).

    >>> X, y = load("xor", n=10, seed=1)
    >>> X.shape
    (10, 2)
    """
    if name == "digits":
        if kw:
            raise ValueError(f"dataset 'digits' takes no options, got {sorted(kw)}")
        return load_digits()
    if name not in DATASETS:
        valid = ", ".join(sorted([*DATASETS, "digits"]))
        raise ValueError(f"unknown dataset {name!r}; valid names: {valid}")
    return DATASETS[name][0](**kw)
