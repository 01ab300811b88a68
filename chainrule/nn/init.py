"""Weight initializers: each draws from an explicit random generator, so runs are reproducible.

Every initializer is ``fn(shape, rng, dtype=np.float64, gain=...)``. Shapes follow the
``(out_features, in_features)`` convention of :class:`chainrule.nn.Linear`, so
``fan_in = shape[1]`` and ``fan_out = shape[0]``. Values are drawn in float64 and then cast, so a
float32 model is the float64 model rounded.

>>> import numpy as np
>>> w = xavier_uniform((3, 4), np.random.default_rng(0))
>>> w.shape, bool(np.all(np.abs(w) <= np.sqrt(6 / 7)))
((3, 4), True)
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["zeros", "uniform", "normal", "xavier_uniform", "xavier_normal", "kaiming_uniform",
           "kaiming_normal", "get", "NAMES", "ALIASES", "fans", "as_rng"]


def as_rng(rng):
    """A ``numpy.random.Generator`` from a Generator, an int seed or None (fresh entropy)."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or (isinstance(rng, (int, np.integer)) and not isinstance(rng, bool)):
        return np.random.default_rng(rng)
    raise TypeError(f"rng must be a numpy.random.Generator, an int seed or None, got {type(rng).__name__}")


def fans(shape) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight of shape (out, in, *receptive field); a vector counts its
    length as both."""
    shape = tuple(shape)
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    field = math.prod(shape[2:])
    return shape[1] * field, shape[0] * field


def _cast(a, dtype):
    return a.astype(dtype, copy=False)


def zeros(shape, rng=None, dtype=np.float64, gain=1.0):
    """All zeros (the course's init flag 2). ``rng`` and ``gain`` are unused."""
    return np.zeros(shape, dtype=dtype)


def uniform(shape, rng, dtype=np.float64, gain=1.0, bound=0.1):
    r"""$U[-0.1, 0.1]$ scaled by ``gain``: the course's "random" initialisation (init flag 1).

    >>> w = uniform((2, 3), np.random.default_rng(0))
    >>> bool(np.all(np.abs(w) <= 0.1))
    True
    """
    b = gain * bound
    return _cast(as_rng(rng).uniform(-b, b, size=shape), dtype)


def normal(shape, rng, dtype=np.float64, gain=1.0, std=0.1):
    r"""$N(0, (0.1\,\mathrm{gain})^2)$: the normal counterpart of :func:`uniform`."""
    return _cast(as_rng(rng).normal(0.0, gain * std, size=shape), dtype)


def xavier_uniform(shape, rng, dtype=np.float64, gain=1.0):
    r"""Glorot & Bengio (2010): $U[-a, a]$ with $a = \mathrm{gain}\sqrt{6 / (\mathrm{fan_{in}} + \mathrm{fan_{out}})}$,
    which keeps the variance of activations and gradients about equal across tanh/sigmoid layers."""
    fan_in, fan_out = fans(shape)
    a = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return _cast(as_rng(rng).uniform(-a, a, size=shape), dtype)


def xavier_normal(shape, rng, dtype=np.float64, gain=1.0):
    r"""$N(0, \sigma^2)$ with $\sigma = \mathrm{gain}\sqrt{2 / (\mathrm{fan_{in}} + \mathrm{fan_{out}})}$."""
    fan_in, fan_out = fans(shape)
    return _cast(as_rng(rng).normal(0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)), size=shape), dtype)


def kaiming_uniform(shape, rng, dtype=np.float64, gain=math.sqrt(2.0)):
    r"""He et al. (2015): $U[-a, a]$ with $a = \mathrm{gain}\sqrt{3 / \mathrm{fan_{in}}}$; the default
    gain $\sqrt 2$ suits ReLU layers (variance $2/\mathrm{fan_{in}}$)."""
    fan_in, _ = fans(shape)
    a = gain * math.sqrt(3.0 / fan_in)
    return _cast(as_rng(rng).uniform(-a, a, size=shape), dtype)


def kaiming_normal(shape, rng, dtype=np.float64, gain=math.sqrt(2.0)):
    r"""$N(0, \sigma^2)$ with $\sigma = \mathrm{gain} / \sqrt{\mathrm{fan_{in}}}$ (He et al., 2015)."""
    fan_in, _ = fans(shape)
    return _cast(as_rng(rng).normal(0.0, gain / math.sqrt(fan_in), size=shape), dtype)


NAMES = {f.__name__: f for f in (zeros, uniform, normal, xavier_uniform, xavier_normal,
                                  kaiming_uniform, kaiming_normal)}
ALIASES = {
    "zero": "zeros", "random": "uniform",
    "glorot": "xavier_uniform", "glorot_uniform": "xavier_uniform", "xavier": "xavier_uniform",
    "glorot_normal": "xavier_normal",
    "he": "kaiming_uniform", "he_uniform": "kaiming_uniform", "kaiming": "kaiming_uniform",
    "he_normal": "kaiming_normal",
}


def canonical(name: str) -> str:
    """The canonical initializer name for ``name`` or an alias (case and dashes ignored)."""
    if not isinstance(name, str):
        raise TypeError(f"initializer name must be a string, got {type(name).__name__}")
    key = name.strip().lower().replace("-", "_")
    key = ALIASES.get(key, key)
    if key not in NAMES:
        raise ValueError(f"unknown initializer {name!r}; valid names: {', '.join(NAMES)} "
                         f"(aliases: {', '.join(ALIASES)})")
    return key


def get(name: str):
    """The initializer function called ``name`` (or an alias such as ``glorot`` or ``he``).

    >>> get("glorot").__name__
    'xavier_uniform'
    """
    return NAMES[canonical(name)]
