"""The optimizer base class: parameter bookkeeping, validation and state dicts of plain arrays."""
from __future__ import annotations

import math

import numpy as np

from chainrule.core.registry import Box
from chainrule.core.tensor import Tensor

__all__ = ["Optimizer", "as_params"]


def as_params(params, who):
    """A list of distinct leaf Tensors that require a gradient, from a list, a generator, a
    single Tensor or a Module."""
    from chainrule.nn.module import Module

    if isinstance(params, Module):
        params = params.parameters()
    elif isinstance(params, Tensor):
        params = [params]
    params = list(params)
    if not params:
        raise ValueError(f"{who}: got an empty parameter list (did the model build any layers?)")
    seen = set()
    for i, p in enumerate(params):
        if not isinstance(p, Tensor):
            raise TypeError(f"{who}: parameter {i} is a {type(p).__name__}, not a Tensor")
        if not p.requires_grad or p._prim is not None:
            raise ValueError(f"{who}: parameter {i} (shape {p.shape}) must be a leaf tensor with "
                             "requires_grad=True")
        if isinstance(p.data, Box) or not np.issubdtype(p.dtype, np.floating):
            raise TypeError(f"{who}: parameter {i} must hold a floating-point numpy array")
        if id(p) in seen:
            raise ValueError(f"{who}: parameter {i} appears more than once")
        seen.add(id(p))
    return params


def check_number(value, what, who, low=0.0, low_ok=True, high=None, high_ok=False):
    """``value`` as a float in the given range, or a ValueError naming it."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{who}: {what} must be a number, got {value!r}") from None
    ok = math.isfinite(v) and (v >= low if low_ok else v > low)
    if ok and high is not None:
        ok = v <= high if high_ok else v < high
    if not ok:
        rng = f"{'[' if low_ok else '('}{low}, {high if high is not None else 'inf'}{']' if high_ok else ')'}"
        raise ValueError(f"{who}: {what} must be in {rng}, got {value!r}")
    return v


def subtract_scaled(d, g, alpha, scratch):
    """``d -= alpha * g`` in place, ``g`` unchanged, through ``scratch`` (an array like ``d``): two
    numpy passes and no temporary.

    numpy's own BLAS offers no axpy to Python, and SciPy's axpy loads a second BLAS library whose
    threads spin against numpy's: at the default threads on a 2-core machine a 784-256-256-10
    training step (float32, batch 128) took 8.0 ms with it against 1.4 ms without (its update
    2.4 ms against 0.13 ms), and 130 to 170 ms against 10 to 80 ms while other processes kept the
    machine busy. With every pool on one thread, axpy saved 0.05 ms of that step's 0.15 ms update
    but nothing measurable of the 2.4 ms step (per-round ratio 0.97 to 0.98, inside the spread).
    """
    np.multiply(g, alpha, out=scratch)
    return np.subtract(d, scratch, out=d)


class Optimizer:
    """Holds the parameters and the learning rate; subclasses define ``step``.

    Updates happen in place on ``p.data`` (no graph is recorded; numpy does the work). Each
    update bumps the parameter's version, so a graph recorded *before* the step refuses to be
    walked again, while graphs recorded after it are unaffected.
    """

    _hyper: tuple = ()  # names of the numeric hyperparameters saved in state_dict

    def __init__(self, params, lr):
        who = type(self).__name__
        self.params = as_params(params, who)
        self._lr = check_number(lr, "lr (learning rate)", who, low=0.0, low_ok=False)
        self.steps = 0
        self._scratch = [None] * len(self.params)

    @property
    def lr(self) -> float:
        """The learning rate (schedules change it between steps)."""
        return self._lr

    @lr.setter
    def lr(self, value):
        self._lr = check_number(value, "lr (learning rate)", type(self).__name__)

    def zero_grad(self):
        """Forget the gradients (sets every ``.grad`` to None, so nothing is written)."""
        for p in self.params:
            p.grad = None

    def step(self):  # pragma: no cover - abstract
        raise NotImplementedError

    def _buffer(self, store, i):
        buf = store[i]
        if buf is None:
            buf = store[i] = np.zeros_like(self.params[i].data)
        return buf

    def _with_grads(self):
        """(index, parameter, its data, its gradient array, a scratch array of its shape) for each
        parameter that has a gradient: the loop every ``step`` runs."""
        scratch = self._scratch
        i = -1
        for p in self.params:
            i += 1
            grad = p.grad
            if grad is None:
                continue
            g = grad.data
            d = p.data
            if type(g) is not np.ndarray or g.shape != d.shape:
                g = self._grad(p, i, type(self).__name__)
            yield i, p, d, g, scratch[i] if scratch[i] is not None else self._scratch_for(i)

    def _scratch_for(self, i):
        """A work array shaped like parameter i, made on first use and kept."""
        self._scratch[i] = np.empty_like(self.params[i].data)
        return self._scratch[i]

    @staticmethod
    def _grad(p, i, who):
        """The gradient of parameter i as a numpy array (the slow path of a step)."""
        g = p.grad.data
        if isinstance(g, Tensor):  # backward(create_graph=True) leaves Tensors of Tensors
            g = g.numpy()
        if isinstance(g, Box):
            raise TypeError(f"{who}: the gradient of parameter {i} is a traced value, not an array")
        g = np.asarray(g)
        if g.shape != p.shape:
            raise ValueError(f"{who}: the gradient of parameter {i} has shape {g.shape}, "
                             f"but the parameter has shape {p.shape}")
        return g

    # -- state --------------------------------------------------------------
    def _buffers(self) -> dict:
        return {}

    def state_dict(self) -> dict:
        """Hyperparameters (numbers), the step count and the buffers ({name: array} copies)."""
        state = {"class": type(self).__name__, "lr": self._lr, "steps": self.steps}
        for name in self._hyper:
            value = getattr(self, name)
            state[name] = list(value) if isinstance(value, tuple) else value
        state["buffers"] = {k: np.array(v, copy=True) for k, v in self._buffers().items()}
        return state

    def load_state_dict(self, state):
        """Restore what :meth:`state_dict` returned (checked: class, buffer names and shapes)."""
        who = f"{type(self).__name__}.load_state_dict"
        if state.get("class") != type(self).__name__:
            raise ValueError(f"{who}: the state is of a {state.get('class')!r} optimizer")
        buffers = state.get("buffers", {})
        stores = self._stores()
        parsed = []
        for key, value in buffers.items():
            kind, _, index = key.rpartition(".")
            if kind not in stores or not index.isdigit() or int(index) >= len(self.params):
                raise ValueError(f"{who}: unexpected buffer {key!r} for {len(self.params)} parameters "
                                 f"(buffers are named {', '.join(k + '.<i>' for k in stores)})")
            i, p, a = int(index), self.params[int(index)], np.asarray(value)
            if a.shape != p.shape or a.dtype != p.dtype:
                raise ValueError(f"{who}: buffer {key!r} has shape {a.shape} and dtype {a.dtype}, "
                                 f"but parameter {i} has shape {p.shape} and dtype {p.dtype}")
            parsed.append((stores[kind], i, np.array(a, copy=True)))
        lr = check_number(state.get("lr"), "lr", who)
        self._load_hyper(state, who)
        for store in stores.values():
            store[:] = [None] * len(self.params)
        for store, i, a in parsed:
            store[i] = a
        self._lr = lr
        self.steps = int(state.get("steps", 0))

    def _stores(self) -> dict:
        return {}

    def _load_hyper(self, state, who):
        for name in self._hyper:
            if name in state:
                value = state[name]
                setattr(self, name, tuple(value) if isinstance(value, list) else value)

    def __repr__(self):
        hyper = "".join(f", {k}={getattr(self, k)!r}" for k in self._hyper)
        return f"{type(self).__name__}({len(self.params)} parameters, lr={self._lr!r}{hyper})"
