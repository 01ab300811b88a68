"""Layers: Linear (an affine map with PyTorch's weight layout) and Sequential."""
from __future__ import annotations

import numpy as np

from chainrule.core import primitives as P
from chainrule.core.errors import DTypeError, ShapeError
from chainrule.nn import init as _init
from chainrule.nn.functional import as_dtype
from chainrule.nn.module import Module, Parameter

__all__ = ["Linear", "Sequential", "as_input", "float_dtype", "positive_int"]


def float_dtype(dtype, who) -> np.dtype:
    """``dtype`` as a numpy floating dtype, or a DTypeError naming ``who``."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise DTypeError(f"{who}: dtype {dtype!r} is not a numpy dtype") from None
    if dt not in (np.float32, np.float64):
        raise DTypeError(f"{who}: dtype must be float32 or float64, got {dt}")
    return dt


def positive_int(value, what, who) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{who}: {what} must be a positive integer, got {value!r}")
    return int(value)


def as_input(x, n_in, dtype, who):
    """A batch ``x`` (array, list or Tensor) checked to have ``n_in`` columns and cast to the
    model's dtype (a float32 model stays float32 whatever it is fed)."""
    x, shape = as_dtype(x, dtype, who, " expects numeric input, got X of")
    if not shape or shape[-1] != n_in:
        got = f"X of shape {shape}" if len(shape) != 2 else f"X with {shape[-1]} columns"
        raise ShapeError(f"{who} expects {n_in} input features, got {got}")
    return x


class Linear(Module):
    r"""$y = x W^\top + b$ with ``weight`` of shape (out_features, in_features) as in PyTorch
    (so saved weights load into ``torch.nn.Linear``); the bias starts at zero.

    ``init`` names an initializer of :mod:`chainrule.nn.init`; ``rng`` is a seed or a
    ``numpy.random.Generator``.

    >>> import numpy as np
    >>> lin = Linear(3, 2, rng=0)
    >>> lin.weight.shape, lin(np.ones((5, 3))).shape
    ((2, 3), (5, 2))
    """

    def __init__(self, in_features, out_features, bias=True, init="xavier_uniform", rng=None,
                 dtype=np.float64):
        self.in_features = positive_int(in_features, "in_features", "Linear")
        self.out_features = positive_int(out_features, "out_features", "Linear")
        self.init = _init.canonical(init)
        self.dtype = float_dtype(dtype, "Linear")
        w = _init.NAMES[self.init]((self.out_features, self.in_features), _init.as_rng(rng), dtype=self.dtype)
        # Stored column-major: reverse mode delivers the weight's gradient as the transpose of
        # x^T g (a column-major array), and an update whose operands share a layout runs at
        # memory speed, where mixing layouts is ten times slower for a 256 x 784 matrix.
        self.weight = Parameter(np.asfortranarray(w))
        self.bias = Parameter(np.zeros(self.out_features, dtype=self.dtype)) if bias else None

    def _apply(self, x):
        # The hot path: one graph node (see the linear primitive).
        b = self.bias
        return P.matmul(x, P.transpose(self.weight, axes=None)) if b is None else P.linear(x, self.weight, b)

    def forward(self, x):
        return self._apply(as_input(x, self.in_features, self.dtype, f"Linear({self.in_features}, {self.out_features})"))

    def extra_repr(self):
        extra = "" if self.bias is not None else ", bias=False"
        if self.dtype != np.float64:
            extra += f", dtype={self.dtype}"
        return f"in_features={self.in_features}, out_features={self.out_features}{extra}"

    def config(self):
        return {"class": "Linear", "in_features": self.in_features, "out_features": self.out_features,
                "bias": self.bias is not None, "init": self.init, "dtype": self.dtype.name}


class Sequential(Module):
    """Modules applied one after another; parameters are named ``layers.0.weight``, ...

    >>> import numpy as np
    >>> from chainrule.nn import Linear, ReLU
    >>> net = Sequential(Linear(2, 4, rng=0), ReLU(), Linear(4, 1, rng=0))
    >>> net(np.ones((3, 2))).shape, len(net)
    ((3, 1), 3)
    """

    def __init__(self, *layers):
        if len(layers) == 1 and isinstance(layers[0], (list, tuple)):
            layers = layers[0]
        for i, m in enumerate(layers):
            if not isinstance(m, Module):
                raise TypeError(f"Sequential: item {i} is a {type(m).__name__}, not a Module")
        self.layers = list(layers)

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x

    def append(self, module):
        if not isinstance(module, Module):
            raise TypeError(f"Sequential.append: expected a Module, got {type(module).__name__}")
        self.layers.append(module)
        return self

    def __getitem__(self, i):
        return self.layers[i]

    def __len__(self):
        return len(self.layers)

    def __iter__(self):
        return iter(self.layers)

    def config(self):
        return {"class": "Sequential", "layers": [m.config() for m in self.layers]}

    @classmethod
    def from_config(cls, config):
        from chainrule.nn.io import from_config

        return cls(*[from_config(c) for c in config["layers"]])
