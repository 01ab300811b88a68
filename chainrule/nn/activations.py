"""Activation layers (Sigmoid, Tanh, ReLU, LeakyReLU, Softplus, Identity) and lookup by name."""
from __future__ import annotations

from chainrule.core import primitives as P
from chainrule.nn.module import Module

__all__ = ["Sigmoid", "Tanh", "ReLU", "LeakyReLU", "Softplus", "Identity", "activation", "ACTIVATIONS"]


class _Elementwise(Module):
    """An activation that is one primitive applied elementwise."""

    fn = None
    name = ""

    def forward(self, x):
        return type(self).fn(x)

    def config(self):
        return {"class": type(self).__name__}


class Sigmoid(_Elementwise):
    r"""$\sigma(x) = 1 / (1 + e^{-x})$, stable for any x."""

    fn, name = staticmethod(P.sigmoid), "sigmoid"


class Tanh(_Elementwise):
    r"""$\tanh x$."""

    fn, name = staticmethod(P.tanh), "tanh"


class ReLU(_Elementwise):
    r"""$\max(x, 0)$ (derivative 0 at 0, as PyTorch)."""

    fn, name = staticmethod(P.relu), "relu"


class Softplus(_Elementwise):
    r"""$\log(1 + e^x)$, computed without overflow."""

    fn, name = staticmethod(P.softplus), "softplus"


class Identity(Module):
    """Returns its input unchanged (a linear output, or "no activation")."""

    name = "identity"

    def forward(self, x):
        return x

    def config(self):
        return {"class": "Identity"}


class LeakyReLU(Module):
    r"""$x$ for $x > 0$, $\alpha x$ otherwise ($\alpha$ = ``negative_slope``; derivative $\alpha$ at 0).

    >>> import chainrule as cr
    >>> LeakyReLU(0.1)(cr.tensor([-2.0, 3.0])).tolist()
    [-0.2, 3.0]
    """

    name = "leaky_relu"

    def __init__(self, negative_slope=0.01):
        negative_slope = float(negative_slope)
        if not negative_slope >= 0:
            raise ValueError(f"LeakyReLU: negative_slope must be >= 0, got {negative_slope}")
        self.negative_slope = negative_slope

    def forward(self, x):
        # where(), not maximum(x, a x): maximum would split the derivative at the tie x = 0.
        return P.where(P.greater(x, 0), x, P.multiply(x, self.negative_slope))

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}"

    def config(self):
        return {"class": "LeakyReLU", "negative_slope": self.negative_slope}


ACTIVATIONS = {"sigmoid": Sigmoid, "tanh": Tanh, "relu": ReLU, "leaky_relu": LeakyReLU,
               "softplus": Softplus, "identity": Identity}
_BY_CLASS = {cls.__name__: cls for cls in ACTIVATIONS.values()}
_ALIASES = {"logistic": "sigmoid", "leakyrelu": "leaky_relu", "lrelu": "leaky_relu",
            "linear": "identity", "none": "identity"}


def canonical(name: str) -> str:
    """The canonical activation name for ``name`` or an alias (case and dashes ignored)."""
    if not isinstance(name, str):
        raise TypeError(f"activation name must be a string, got {type(name).__name__}")
    key = name.strip().lower().replace("-", "_")
    key = _ALIASES.get(key, key)
    if key not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; valid names: {', '.join(ACTIVATIONS)} "
                         f"(aliases: {', '.join(_ALIASES)})")
    return key


def activation(spec, **kwargs) -> Module:
    """An activation layer from a name (``"relu"``, ``"leaky_relu"``, ...), a config dict, or
    an activation module (returned as is).

    >>> activation("tanh")
    Tanh()
    >>> activation("leaky_relu", negative_slope=0.2)
    LeakyReLU(negative_slope=0.2)
    """
    if isinstance(spec, Module):
        return spec
    if isinstance(spec, dict):
        spec = dict(spec)
        cls = spec.pop("class", None)
        if cls not in _BY_CLASS:
            raise ValueError(f"unknown activation class {cls!r}; valid: {', '.join(_BY_CLASS)}")
        return _BY_CLASS[cls](**spec)
    return ACTIVATIONS[canonical(spec)](**kwargs)
