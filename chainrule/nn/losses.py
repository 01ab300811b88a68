"""Loss modules (wrappers of chainrule.nn.functional) and lookup of a loss by name."""
from __future__ import annotations

from chainrule.nn import functional as F
from chainrule.nn.module import Module

__all__ = ["MSELoss", "BCELoss", "BCEWithLogitsLoss", "CrossEntropyLoss", "NLLLoss", "loss", "LOSSES"]


class _Loss(Module):
    fn = None
    name = ""

    def __init__(self, reduction="mean"):
        F._check_reduction(reduction, type(self).__name__)
        self.reduction = reduction

    def forward(self, input, target):
        return type(self).fn(input, target, reduction=self.reduction)

    def extra_repr(self):
        return "" if self.reduction == "mean" else f"reduction={self.reduction!r}"

    def config(self):
        return {"class": type(self).__name__, "reduction": self.reduction}


class MSELoss(_Loss):
    r"""Mean squared error $\frac1N\sum (\hat y - y)^2$ (the quadratic loss); see :func:`~chainrule.nn.functional.mse_loss`."""

    fn, name = staticmethod(F.mse_loss), "mse"


class BCELoss(_Loss):
    """Binary cross-entropy of probabilities; see :func:`~chainrule.nn.functional.binary_cross_entropy`."""

    fn, name = staticmethod(F.binary_cross_entropy), "binary_cross_entropy"


class BCEWithLogitsLoss(_Loss):
    r"""Binary cross-entropy of logits, $\mathrm{softplus}(z) - yz$ (stable);
    see :func:`~chainrule.nn.functional.binary_cross_entropy_with_logits`."""

    fn, name = staticmethod(F.binary_cross_entropy_with_logits), "bce_logits"


class CrossEntropyLoss(_Loss):
    """Softmax cross-entropy of logits and class labels (or probability rows);
    see :func:`~chainrule.nn.functional.cross_entropy`.

    >>> import numpy as np
    >>> round(float(CrossEntropyLoss()(np.array([[2.0, 0.0]]), np.array([0]))), 6)
    0.126928
    """

    fn, name = staticmethod(F.cross_entropy), "cross_entropy"


class NLLLoss(_Loss):
    """Negative log-likelihood of log-probabilities; see :func:`~chainrule.nn.functional.nll_loss`."""

    fn, name = staticmethod(F.nll_loss), "nll"


LOSSES = {"mse": MSELoss, "binary_cross_entropy": BCELoss, "bce_logits": BCEWithLogitsLoss,
          "cross_entropy": CrossEntropyLoss, "nll": NLLLoss}
ALIASES = {
    "mse_loss": "mse", "quadratic": "mse", "squared_error": "mse", "l2": "mse",
    "bce": "binary_cross_entropy", "bce_loss": "binary_cross_entropy",
    "bce_with_logits": "bce_logits", "binary_cross_entropy_with_logits": "bce_logits",
    "logistic": "bce_logits",
    "ce": "cross_entropy", "softmax_cross_entropy": "cross_entropy", "crossentropy": "cross_entropy",
    "nll_loss": "nll", "negative_log_likelihood": "nll",
}


def canonical(name: str) -> str:
    """The canonical loss name for ``name`` or an alias (case and dashes ignored)."""
    if not isinstance(name, str):
        raise TypeError(f"loss name must be a string, got {type(name).__name__}")
    key = name.strip().lower().replace("-", "_")
    key = ALIASES.get(key, key)
    if key not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; valid names: {', '.join(LOSSES)} "
                         f"(aliases: {', '.join(ALIASES)})")
    return key


def loss(name, reduction="mean") -> Module:
    """A loss module by name: ``mse`` (``quadratic``), ``bce``, ``bce_logits``,
    ``cross_entropy`` (``ce``), ``nll``; a loss module is returned as is.

    >>> loss("ce")
    CrossEntropyLoss()
    """
    if isinstance(name, _Loss):
        return name
    return LOSSES[canonical(name)](reduction=reduction)
