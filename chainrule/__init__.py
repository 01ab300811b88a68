"""chainrule: computation graphs, four ways to differentiate them, and neural networks on top.

>>> import chainrule as cr
>>> x = cr.tensor(2.0, requires_grad=True)
>>> y = cr.exp(x) * x
>>> y.backward()
>>> round(float(x.grad), 6)   # (1 + x) e^x
22.167168
"""
from chainrule.core.errors import (
    AnomalyError, ChainruleError, ConcretizationError, DTypeError, GraphError, LabelError, ModelFileError, ShapeError,
)
from chainrule.core.ops import (
    abs, add, astype, broadcast_to, concatenate, cos, divide, equal, exp, greater, greater_equal,
    less, less_equal, log, log_softmax, logsumexp, matmul, max, maximum, mean, min, minimum,
    multiply, negative, not_equal, power, relu, reshape, sigmoid, sign, sin, softmax, softplus,
    sqrt, square, stack, stop_gradient, subtract, sum, swapaxes, tanh, transpose, where,
)
from chainrule.core import linalg as _linalg  # noqa: F401  (registers numpy.linalg's primitives)
from chainrule.core.registry import REGISTRY
from chainrule.core.tensor import (
    Tensor, detect_anomaly, enable_grad, is_grad_enabled, no_grad, tensor,
)

__version__ = "0.1.0"


# Submodules and functions that load on first use, so `import chainrule` stays fast:
# public name -> module (a submodule itself, or the module that defines the name).
_LAZY_MODULES = {
    "testing": "chainrule.testing", "nn": "chainrule.nn", "data": "chainrule.data",
    "optim": "chainrule.optim", "numeric": "chainrule.modes.numeric", "symbolic": "chainrule.modes.symbolic",
    "viz": "chainrule.viz", "sklearn": "chainrule.sklearn", "expr": "chainrule.expr",
}
_LAZY_NAMES = {
    **dict.fromkeys(("grad", "value_and_grad", "vjp", "jvp", "jacobian", "hessian", "hvp"), "chainrule.modes.api"),
    "Dual": "chainrule.modes.forward",
    "compare": "chainrule.modes.compare",
    "primitive": "chainrule.core.custom",
    "vmap": "chainrule.modes.vmap",
    **dict.fromkeys(("trace", "name", "Graph"), "chainrule.viz.trace"),
    "cost": "chainrule.viz.cost",
    "exercise": "chainrule.viz.exercise",
    **dict.fromkeys(("fit", "History"), "chainrule.nn.training"),
    **dict.fromkeys(("TrainingWarning", "VanishingGradientWarning", "ExplodingGradientWarning"), "chainrule.nn.diagnostics"),
    "sweep": "chainrule.sweeps",
    "compile": "chainrule.modes.compile",
}


def __getattr__(name):
    import importlib

    if name in _LAZY_MODULES:
        return importlib.import_module(_LAZY_MODULES[name])
    if name in _LAZY_NAMES:
        return getattr(importlib.import_module(_LAZY_NAMES[name]), name)
    if name == "numpy" or not name.startswith("_"):  # numpy's functions: cr.cumsum, cr.einsum, ...
        numpy = importlib.import_module("chainrule.numpy")
        if name == "numpy":
            return numpy
        if name in numpy.__all__:
            return getattr(numpy, name)
    raise AttributeError(f"module 'chainrule' has no attribute {name!r}")
