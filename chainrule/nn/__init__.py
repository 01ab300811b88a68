"""Neural networks: modules, layers, activations, losses, initializers, models on disk.

>>> import numpy as np, chainrule as cr
>>> model = cr.nn.MLP(2, [8], 1, activation="tanh", rng=0)
>>> loss = cr.nn.BCEWithLogitsLoss()(model(np.zeros((4, 2))), np.array([0, 1, 1, 0]))
>>> round(loss.item(), 6)   # zero input, zero biases: every logit is 0, loss log 2
0.693147
"""
from chainrule.nn import functional, init
from chainrule.nn.activations import (
    ACTIVATIONS, Identity, LeakyReLU, ReLU, Sigmoid, Softplus, Tanh, activation,
)
from chainrule.nn.layers import Linear, Sequential
from chainrule.nn.losses import (
    LOSSES, BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, MSELoss, NLLLoss, loss,
)
from chainrule.nn.models import MLP, LinearRegression, LogisticRegression, SoftmaxRegression
from chainrule.nn.module import Module, Parameter, functional_call

__all__ = [
    "Module", "Parameter", "functional_call", "Linear", "Sequential",
    "Sigmoid", "Tanh", "ReLU", "LeakyReLU", "Softplus", "Identity", "activation", "ACTIVATIONS",
    "MLP", "LinearRegression", "LogisticRegression", "SoftmaxRegression",
    "MSELoss", "BCELoss", "BCEWithLogitsLoss", "CrossEntropyLoss", "NLLLoss", "loss", "LOSSES",
    "functional", "init", "save", "load", "load_metadata", "from_config", "save_checkpoint",
    "load_checkpoint",
]

_IO = ("save", "load", "load_metadata", "from_config", "save_checkpoint", "load_checkpoint")


def __getattr__(name):
    # Files (and json) load on first use.
    if name in _IO:
        from chainrule.nn import io

        return getattr(io, name)
    raise AttributeError(f"module 'chainrule.nn' has no attribute {name!r}")
