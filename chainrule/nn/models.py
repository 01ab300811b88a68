"""Ready-made models: the multilayer perceptron and the one-layer (convex) models."""
from __future__ import annotations

import numpy as np

from chainrule.nn import activations as _act
from chainrule.nn import init as _init
from chainrule.nn.layers import Linear, as_input, float_dtype, positive_int
from chainrule.nn.module import Module

__all__ = ["MLP", "LinearRegression", "LogisticRegression", "SoftmaxRegression"]


class MLP(Module):
    r"""A feed-forward network: ``Linear -> activation -> ... -> Linear``; it returns the output
    scores (logits for classification), with no activation after the last layer:

    $h_0 = x,\quad h_l = \phi_l(h_{l-1} W_l^\top + b_l),\quad \hat y = h_{L-1} W_L^\top + b_L$.

    ``hidden`` lists the hidden widths (``[]``: a one-layer model); ``activation`` is one name
    (``relu``, ``tanh``, ``sigmoid``, ``leaky_relu``, ``softplus``, ``identity``) or one per
    hidden layer; ``init`` names the weight initializer (biases start at zero); ``rng`` is a
    seed or a ``numpy.random.Generator``; ``dtype`` float64 or float32 (kept end to end).

    >>> import numpy as np
    >>> net = MLP(4, [8, 8], 3, activation="tanh", rng=0)
    >>> net(np.zeros((5, 4))).shape, [n for n, _ in net.named_parameters()][:2]
    ((5, 3), ['layers.0.weight', 'layers.0.bias'])
    """

    default_loss = None  # what cr.fit uses when it is not told (the one-layer models set it)

    def __init__(self, in_features, hidden, out_features, activation="relu", init="xavier_uniform",
                 rng=None, dtype=np.float64):
        who = type(self).__name__
        self.in_features = positive_int(in_features, "in_features", who)
        if isinstance(hidden, (int, np.integer)) and not isinstance(hidden, bool):
            hidden = [hidden]
        if not isinstance(hidden, (list, tuple)):
            raise TypeError(f"{who}: hidden must be a list of layer widths, got {type(hidden).__name__}")
        self.hidden = [positive_int(h, f"hidden width {h!r}", who) for h in hidden]
        self.out_features = positive_int(out_features, "out_features", who)
        if isinstance(activation, (list, tuple)):
            if len(activation) != len(self.hidden):
                raise ValueError(f"{who}: {len(activation)} activations given for {len(self.hidden)} hidden layers")
            acts = [_act.activation(a) for a in activation]
            self.activation = [_spec(a, m) for a, m in zip(activation, acts)]
        else:
            one = _act.activation(activation)
            acts = [one if i == 0 else _act.activation(_spec(activation, one)) for i in range(len(self.hidden))]
            self.activation = _spec(activation, one)
        self.init = _init.canonical(init)
        self.dtype = float_dtype(dtype, who)
        rng = _init.as_rng(rng)
        sizes = [self.in_features, *self.hidden, self.out_features]
        self.layers = [Linear(a, b, init=self.init, rng=rng, dtype=self.dtype) for a, b in zip(sizes, sizes[1:])]
        self.activations = acts
        self._who = who

    def forward(self, x):
        x = as_input(x, self.in_features, self.dtype, self._who)
        acts = self.activations
        for i, layer in enumerate(self.layers):
            x = layer._apply(x)
            if i < len(acts):
                x = acts[i].forward(x)
        return x

    def extra_repr(self):
        act = self.activation if isinstance(self.activation, str) else "[...]"
        dt = f", dtype={self.dtype}" if self.dtype != np.float64 else ""
        return (f"{self.in_features} -> {self.hidden} -> {self.out_features}, activation={act!r}, "
                f"init={self.init!r}{dt}")

    def _repr_children(self):
        out = []
        for i, layer in enumerate(self.layers):
            out.append((f"layers.{i}", layer))
            if i < len(self.activations):
                out.append((f"activations.{i}", self.activations[i]))
        return out

    def config(self):
        return {"class": "MLP", "in_features": self.in_features, "hidden": list(self.hidden),
                "out_features": self.out_features, "activation": _copy(self.activation),
                "init": self.init, "dtype": self.dtype.name}


def _spec(given, module):
    # Names stay names (canonical) so configs read well; modules are stored by their config.
    return _act.canonical(given) if isinstance(given, str) else module.config()


def _copy(spec):
    if isinstance(spec, list):
        return [_copy(s) for s in spec]
    return dict(spec) if isinstance(spec, dict) else spec


class _OneLayer(MLP):
    """An MLP with no hidden layer: a convex model. The one-layer models start at zero."""

    def config(self):
        return {"class": type(self).__name__, "in_features": self.in_features, "init": self.init,
                "dtype": self.dtype.name}

    def extra_repr(self):
        dt = f", dtype={self.dtype}" if self.dtype != np.float64 else ""
        return f"in_features={self.in_features}, out_features={self.out_features}, init={self.init!r}{dt}"


class LinearRegression(_OneLayer):
    r"""$\hat y = x w^\top + b$, one output; fit with the mean squared error.

    >>> import numpy as np
    >>> LinearRegression(3)(np.ones((2, 3))).shape
    (2, 1)
    """

    default_loss = "mse"

    def __init__(self, in_features, init="zeros", rng=None, dtype=np.float64):
        super().__init__(in_features, [], 1, init=init, rng=rng, dtype=dtype)


class LogisticRegression(_OneLayer):
    r"""One logit $z = x w^\top + b$, $P(y = 1 \mid x) = \sigma(z)$; fit with
    ``BCEWithLogitsLoss``.

    >>> import numpy as np
    >>> LogisticRegression(3)(np.ones((2, 3))).shape
    (2, 1)
    """

    default_loss = "bce_logits"

    def __init__(self, in_features, init="zeros", rng=None, dtype=np.float64):
        super().__init__(in_features, [], 1, init=init, rng=rng, dtype=dtype)


class SoftmaxRegression(_OneLayer):
    r"""Multinomial logistic regression: logits $z = x W^\top + b$ for ``n_classes`` classes,
    $P(y = k \mid x) = \mathrm{softmax}(z)_k$; fit with ``CrossEntropyLoss``.

    >>> import numpy as np
    >>> SoftmaxRegression(3, 4)(np.ones((2, 3))).shape
    (2, 4)
    """

    default_loss = "cross_entropy"

    def __init__(self, in_features, n_classes, init="zeros", rng=None, dtype=np.float64):
        n_classes = positive_int(n_classes, "n_classes", "SoftmaxRegression")
        super().__init__(in_features, [], n_classes, init=init, rng=rng, dtype=dtype)

    @property
    def n_classes(self):
        return self.out_features

    def config(self):
        return {"class": "SoftmaxRegression", "in_features": self.in_features, "n_classes": self.out_features,
                "init": self.init, "dtype": self.dtype.name}
