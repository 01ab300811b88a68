"""numpy.linalg's functions, differentiable on chainrule values in every mode (numpy's results on
plain arrays): ``import chainrule.numpy as np; np.linalg.solve(a, b)``. The primitives and their
rules are in :mod:`chainrule.core.linalg`; ``numpy.linalg.NAME`` called on a chainrule value
reaches the same functions."""
from chainrule.core.linalg import (
    linalg_cholesky as cholesky, linalg_det as det, linalg_eigh as eigh, linalg_eigvalsh as eigvalsh,
    linalg_inv as inv, linalg_lstsq as lstsq, linalg_matrix_norm as matrix_norm, linalg_matrix_power as matrix_power,
    linalg_multi_dot as multi_dot, linalg_norm as norm, linalg_pinv as pinv, linalg_slogdet as slogdet,
    linalg_solve as solve, linalg_svd as svd, linalg_svdvals as svdvals, linalg_tensorinv as tensorinv,
    linalg_tensorsolve as tensorsolve, linalg_vector_norm as vector_norm,
)
from numpy.linalg import LinAlgError  # noqa: F401

__all__ = ["cholesky", "det", "eigh", "eigvalsh", "inv", "lstsq", "matrix_norm", "matrix_power", "multi_dot", "norm",
           "pinv", "slogdet", "solve", "svd", "svdvals", "tensorinv", "tensorsolve", "vector_norm", "LinAlgError"]
