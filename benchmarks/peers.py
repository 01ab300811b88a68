"""The optional peers (PyTorch and torch.compile, JAX's jit, HIPS autograd, micrograd), imported on
demand; Skip when absent."""
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
    for dist in ("numpy", "chainrule", "torch", "jax", "jaxlib", "autograd", "micrograd", "threadpoolctl"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out


def jax():
    """``(jax, jax.numpy)`` with float64 enabled (the cases compare with float64 numpy; a float32
    case passes float32 arrays), or Skip. XLA's intra-op pool follows the current thread limit."""
    try:
        import jax as _jax
    except ImportError:
        raise Skip("jax is not installed (pip install -r benchmarks/requirements.txt)") from None
    _jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    if not _XLA_POOL_STARTED:
        # XLA starts its Eigen pool at the first computation; start it now so the limit can reach it
        _jax.jit(lambda a: a @ a)(jnp.ones((2, 2))).block_until_ready()
        _started()
    return _jax, jnp


# threadpoolctl does not reach XLA's intra-op (Eigen) pool, which has one thread per CPU; a thread
# limit of n pins that pool's threads to n CPUs, so that JAX's "one thread" runs on one core.
_XLA_POOL = "tf_XLAEigen"  # the name XLA gives its intra-op threads (/proc/self/task/*/comm)
_XLA_POOL_STARTED = False
_CPU_LIMIT = None


def _started():
    global _XLA_POOL_STARTED
    _XLA_POOL_STARTED = True
    limit_xla_threads(_CPU_LIMIT)


def limit_xla_threads(n):
    """Pin XLA's intra-op threads to the first ``n`` CPUs this process may use (None: all of them);
    returns how many threads were pinned. Linux only (elsewhere JAX keeps its own threads)."""
    global _CPU_LIMIT
    _CPU_LIMIT = n
    import glob
    import os

    if not _XLA_POOL_STARTED or not hasattr(os, "sched_setaffinity"):
        return 0
    allowed = sorted(os.sched_getaffinity(0))
    cpus = set(allowed if n is None else allowed[:n])
    pinned = 0
    for comm in glob.glob("/proc/self/task/*/comm"):
        try:
            with open(comm) as f:
                if f.read().strip() != _XLA_POOL:
                    continue
            os.sched_setaffinity(int(comm.split("/")[-2]), cpus)
            pinned += 1
        except OSError:  # the thread ended meanwhile
            continue
    return pinned


def torch_compile(fn, **options):
    """``torch.compile(fn)`` with dynamo's caches reset first (each contender compiles its own
    code; the benchmark builds the same closures more than once), or Skip without torch."""
    torch_ = torch()
    torch_._dynamo.reset()
    return torch_.compile(fn, **options)
