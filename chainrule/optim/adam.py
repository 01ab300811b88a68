"""Adam: per-parameter step sizes from running averages of the gradient and its square."""
from __future__ import annotations

import math

import numpy as np

from chainrule.optim.optimizer import Optimizer, check_number

__all__ = ["Adam"]


class Adam(Optimizer):
    r"""Adam (Kingma & Ba, 2015), as PyTorch computes it. For each parameter, at its step t:

    $g \leftarrow \nabla_\theta L + \lambda\theta$,
    $m \leftarrow \beta_1 m + (1 - \beta_1) g$,
    $v \leftarrow \beta_2 v + (1 - \beta_2) g^2$,
    $\theta \leftarrow \theta - \frac{\eta}{1 - \beta_1^t}\, \frac{m}{\sqrt{v} / \sqrt{1 - \beta_2^t} + \epsilon}$.

    >>> import chainrule as cr
    >>> w = cr.nn.Parameter([1.0])
    >>> opt = Adam([w], lr=0.1)
    >>> (w * w).sum().backward(); opt.step()
    >>> round(w.item(), 6)   # the first step moves each weight by about lr
    0.9
    """

    _hyper = ("betas", "eps", "weight_decay")

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params, lr)
        try:
            b1, b2 = betas
        except (TypeError, ValueError):
            raise ValueError(f"Adam: betas must be a pair (beta1, beta2), got {betas!r}") from None
        self.betas = (check_number(b1, "betas[0]", "Adam", high=1.0),
                      check_number(b2, "betas[1]", "Adam", high=1.0))
        self.eps = check_number(eps, "eps", "Adam")
        self.weight_decay = check_number(weight_decay, "weight_decay", "Adam")
        n = len(self.params)
        self._m, self._v, self._t = [None] * n, [None] * n, [0] * n

    def step(self):
        """One update of every parameter that has a gradient, in place."""
        lr, (b1, b2), eps, wd = self._lr, self.betas, self.eps, self.weight_decay
        ms, vs, ts = self._m, self._v, self._t
        for i, p, d, g, s in self._with_grads():
            if wd:
                g = d * wd + g
            m, v = self._buffer(ms, i), self._buffer(vs, i)
            ts[i] = t = ts[i] + 1
            np.multiply(m, b1, out=m)
            np.multiply(g, 1 - b1, out=s)
            np.add(m, s, out=m)
            np.multiply(v, b2, out=v)
            np.multiply(g, g, out=s)
            np.multiply(s, 1 - b2, out=s)
            np.add(v, s, out=v)
            np.sqrt(v, out=s)
            np.divide(s, math.sqrt(1 - b2 ** t), out=s)
            np.add(s, eps, out=s)
            np.divide(m, s, out=s)
            np.multiply(s, lr / (1 - b1 ** t), out=s)
            np.subtract(d, s, out=d)
            p._version += 1
        self.steps += 1

    def _stores(self):
        return {"exp_avg": self._m, "exp_avg_sq": self._v}

    def _buffers(self):
        out = {f"exp_avg.{i}": m for i, m in enumerate(self._m) if m is not None}
        out.update({f"exp_avg_sq.{i}": v for i, v in enumerate(self._v) if v is not None})
        return out

    def state_dict(self):
        state = super().state_dict()
        state["param_steps"] = list(self._t)
        return state

    def load_state_dict(self, state):
        steps = state.get("param_steps", [0] * len(self.params))
        if len(steps) != len(self.params):
            raise ValueError(f"Adam.load_state_dict: param_steps has {len(steps)} entries for "
                             f"{len(self.params)} parameters")
        super().load_state_dict(state)
        self._t = [int(t) for t in steps]
