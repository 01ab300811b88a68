"""The optional peers (PyTorch, HIPS autograd, micrograd), imported on demand; Skip when absent."""
from __future__ import annotations

import math

from harness import Skip


def torch():
    try:
        import torch as _torch
    except ImportError:
        raise Skip("torch is not installed (pip install -r benchmarks/requirements.txt)") from None
    return _torch


def autograd():
    try:
        import autograd as _autograd
    except ImportError:
        raise Skip("HIPS autograd is not installed (pip install -r benchmarks/requirements.txt)") from None
    return _autograd


def micrograd_value():
    """micrograd's ``Value`` with the tanh, exp, log and sin that the lecture adds in the same
    style (the PyPI package ships only +, *, ** and relu)."""
    try:
        from micrograd.engine import Value
    except ImportError:
        raise Skip("micrograd is not installed (pip install -r benchmarks/requirements.txt)") from None
    if not hasattr(Value, "_chainrule_bench"):
        def unary(name, f, df):
            def method(self):
                out = Value(f(self.data), (self,), name)

                def _backward():
                    self.grad += df(self.data, out.data) * out.grad
                out._backward = _backward
                return out
            method.__name__ = name
            setattr(Value, name, method)

        unary("tanh", math.tanh, lambda x, t: 1 - t * t)
        unary("exp", math.exp, lambda x, e: e)
        unary("log", math.log, lambda x, _: 1 / x)
        unary("sin", math.sin, lambda x, _: math.cos(x))
        Value._chainrule_bench = True
    return Value


def versions() -> dict:
    """Versions of numpy and of every peer that is installed."""
    from importlib import metadata

    out = {}
    for dist in ("numpy", "chainrule", "torch", "autograd", "micrograd", "threadpoolctl"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out


def jax():
    """``(jax, jax.numpy)`` in float64 (the cases compare with float64 numpy), or Skip."""
    try:
        import jax as _jax
    except ImportError:
        raise Skip("jax is not installed (pip install jax)") from None
    _jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    return _jax, jnp
