"""chainrule.numpy: numpy's functions, differentiable on chainrule values (``import chainrule.numpy as np``)."""
from chainrule.numpy import linalg  # noqa: F401
