"""Stochastic gradient descent, with momentum, Nesterov momentum and weight decay."""
from __future__ import annotations

import numpy as np

from chainrule.optim.optimizer import Optimizer, check_number, subtract_scaled

__all__ = ["SGD"]


class SGD(Optimizer):
    r"""Stochastic gradient descent (PyTorch's update rule):

    $g \leftarrow \nabla_\theta L + \lambda\theta$ (weight decay $\lambda$);
    with momentum $\mu$: $b \leftarrow \mu b + g$ and $g \leftarrow b$
    (Nesterov: $g \leftarrow g + \mu b$); then $\theta \leftarrow \theta - \eta g$.

    Parameters without a gradient (``.grad`` None) are left alone.

    >>> import chainrule as cr
    >>> w = cr.nn.Parameter([1.0, -2.0])
    >>> opt = SGD([w], lr=0.1)
    >>> (w * w).sum().backward(); opt.step()
    >>> w.tolist()
    [0.8, -1.6]
    """

    _hyper = ("momentum", "nesterov", "weight_decay")

    def __init__(self, params, lr, momentum=0.0, nesterov=False, weight_decay=0.0):
        super().__init__(params, lr)
        self.momentum = check_number(momentum, "momentum", "SGD")
        self.weight_decay = check_number(weight_decay, "weight_decay", "SGD")
        self.nesterov = bool(nesterov)
        if self.nesterov and self.momentum == 0:
            raise ValueError("SGD: nesterov=True needs a positive momentum")
        self._momentum = [None] * len(self.params)

    def step(self):
        """One update of every parameter that has a gradient, in place."""
        lr, mu, wd, nesterov = self._lr, self.momentum, self.weight_decay, self.nesterov
        for i, p, d, g, s in self._with_grads():
            if wd:
                np.multiply(d, wd, out=s)
                g = np.add(s, g, out=s)
            if mu:
                buf = self._buffer(self._momentum, i)
                np.multiply(buf, mu, out=buf)
                np.add(buf, g, out=buf)
                if nesterov:
                    g = np.add(g, buf * mu, out=s)
                else:
                    g = buf
            subtract_scaled(d, g, lr, s)
            p._version += 1
        self.steps += 1

    def _stores(self):
        return {"momentum_buffer": self._momentum}

    def _buffers(self):
        return {f"momentum_buffer.{i}": b for i, b in enumerate(self._momentum) if b is not None}
