"""chainrule: computation graphs, four ways to differentiate them, and neural networks on top.

>>> import chainrule as cr
>>> x = cr.tensor(2.0, requires_grad=True)
>>> y = cr.exp(x) * x
>>> y.backward()
>>> round(float(x.grad), 6)   # (1 + x) e^x
22.167168
"""
from chainrule.core.errors import AnomalyError, ChainruleError, DTypeError, GraphError, ShapeError
from chainrule.core.ops import (
    abs, add, astype, broadcast_to, concatenate, cos, divide, equal, exp, greater, greater_equal,
    less, less_equal, log, log_softmax, logsumexp, matmul, max, maximum, mean, min, minimum,
    multiply, negative, not_equal, power, relu, reshape, sigmoid, sign, sin, softmax, softplus,
    sqrt, square, stack, subtract, sum, swapaxes, tanh, transpose, where,
)
from chainrule.core.registry import REGISTRY
from chainrule.core.tensor import (
    Tensor, detect_anomaly, enable_grad, is_grad_enabled, no_grad, tensor,
)

__version__ = "0.1.0"


def __getattr__(name):
    # Submodules with optional or heavier dependencies load on first use: `import chainrule` stays fast.
    import importlib

    lazy = {"testing": "chainrule.testing", "nn": "chainrule.nn", "data": "chainrule.data",
            "optim": "chainrule.optim", "numeric": "chainrule.modes.numeric",
            "symbolic": "chainrule.modes.symbolic", "viz": "chainrule.viz", "sklearn": "chainrule.sklearn"}
    if name in lazy:
        return importlib.import_module(lazy[name])
    raise AttributeError(f"module 'chainrule' has no attribute {name!r}")
