"""Learning-rate schedules: each sets ``optimizer.lr`` from the epoch count at every ``step()``."""
from __future__ import annotations

import math

from chainrule.optim.optimizer import check_number

__all__ = ["LRScheduler", "StepLR", "ExponentialLR", "CosineAnnealingLR"]


class LRScheduler:
    """Base class: ``lr_at(epoch)`` is the learning rate after ``epoch`` calls of ``step()``
    (a closed form of the base rate, so no rounding drifts in over many epochs)."""

    _hyper: tuple = ()

    def __init__(self, optimizer):
        self.optimizer = optimizer
        self.base_lr = optimizer.lr
        self.last_epoch = 0

    def lr_at(self, epoch) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    def step(self):
        """Advance one epoch and set the optimizer's learning rate."""
        self.last_epoch += 1
        self.optimizer._lr = self.lr_at(self.last_epoch)

    def get_last_lr(self) -> float:
        """The learning rate set by the latest step (the base rate before any)."""
        return self.optimizer.lr

    def state_dict(self) -> dict:
        return {"class": type(self).__name__, "base_lr": self.base_lr, "last_epoch": self.last_epoch,
                **{k: getattr(self, k) for k in self._hyper}}

    def load_state_dict(self, state):
        if state.get("class") != type(self).__name__:
            raise ValueError(f"{type(self).__name__}.load_state_dict: the state is of a {state.get('class')!r}")
        self.base_lr = float(state["base_lr"])
        self.last_epoch = int(state["last_epoch"])
        for k in self._hyper:
            setattr(self, k, state[k])
        self.optimizer._lr = self.lr_at(self.last_epoch) if self.last_epoch else self.base_lr

    def __repr__(self):
        hyper = ", ".join(f"{k}={getattr(self, k)!r}" for k in self._hyper)
        return f"{type(self).__name__}({hyper}, epoch={self.last_epoch})"


def _positive_int(value, what, who):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{who}: {what} must be a positive integer, got {value!r}")
    return value


class StepLR(LRScheduler):
    r"""$\eta_e = \eta_0\, \gamma^{\lfloor e / \mathrm{step\_size} \rfloor}$: decay by ``gamma`` every ``step_size`` epochs.

    >>> import chainrule as cr
    >>> opt = cr.optim.SGD([cr.nn.Parameter([0.0])], lr=1.0)
    >>> sched = StepLR(opt, step_size=2, gamma=0.5)
    >>> [(sched.step(), opt.lr)[1] for _ in range(4)]
    [1.0, 0.5, 0.5, 0.25]
    """

    _hyper = ("step_size", "gamma")

    def __init__(self, optimizer, step_size, gamma=0.1):
        super().__init__(optimizer)
        self.step_size = _positive_int(step_size, "step_size", "StepLR")
        self.gamma = check_number(gamma, "gamma", "StepLR", low_ok=False)

    def lr_at(self, epoch):
        return self.base_lr * self.gamma ** (epoch // self.step_size)


class ExponentialLR(LRScheduler):
    r"""$\eta_e = \eta_0\, \gamma^e$."""

    _hyper = ("gamma",)

    def __init__(self, optimizer, gamma):
        super().__init__(optimizer)
        self.gamma = check_number(gamma, "gamma", "ExponentialLR", low_ok=False)

    def lr_at(self, epoch):
        return self.base_lr * self.gamma ** epoch


class CosineAnnealingLR(LRScheduler):
    r"""$\eta_e = \eta_{\min} + \frac12(\eta_0 - \eta_{\min})(1 + \cos(\pi e / T_{\max}))$:
    from the base rate down to ``eta_min`` over ``T_max`` epochs (and back up after, as PyTorch)."""

    _hyper = ("T_max", "eta_min")

    def __init__(self, optimizer, T_max, eta_min=0.0):
        super().__init__(optimizer)
        self.T_max = _positive_int(T_max, "T_max", "CosineAnnealingLR")
        self.eta_min = check_number(eta_min, "eta_min", "CosineAnnealingLR")

    def lr_at(self, epoch):
        return self.eta_min + 0.5 * (self.base_lr - self.eta_min) * (1 + math.cos(math.pi * epoch / self.T_max))
