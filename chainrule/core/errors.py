"""The exceptions chainrule raises: each names what was wrong and where."""

# Why a complex value is refused, wherever one enters (tensor(), requires_grad_, grad, jvp, vjp):
# complex numbers are refused at the door rather than half supported inside.
COMPLEX_REFUSAL = ("chainrule differentiates real functions of real inputs (complex inputs are not supported); "
                   "pass the real and imaginary parts as two real arguments")


class ChainruleError(Exception):
    """Base class of every error chainrule raises on purpose."""


class ShapeError(ChainruleError, ValueError):
    """Shapes that do not fit an operation (raised where the operation was built)."""


class DTypeError(ChainruleError, TypeError):
    """A dtype that cannot do what was asked (for example a gradient of integer data)."""


class LabelError(ChainruleError, ValueError):
    """Class labels that name no class: outside 0..K-1 for K classes, or not whole numbers."""


class GraphError(ChainruleError, RuntimeError):
    """A backward pass that cannot run: released graph, in-place change, non-scalar output."""


class AnomalyError(ChainruleError, FloatingPointError):
    """A value or cotangent became NaN or inf while `detect_anomaly()` was on."""


class ConcretizationError(ChainruleError, TypeError):
    """A value that carries a derivative asked to become a plain number or array (``float(x)``,
    ``np.asarray(x)``, ``math.sin(x)``, a numpy function without a derivative rule): its
    derivative would be lost without a word."""


class ModelFileError(ChainruleError, ValueError):
    """A model or checkpoint file that cannot be read: not a regular file, over a size limit,
    malformed, corrupted (its checksum does not match) or inconsistent with itself. The message
    names the file and what is wrong."""
