"""The functional API: grad, value_and_grad, vjp, jvp, jacobian, hessian and hvp.

Everything is built on two core functions: :func:`vjp` (reverse mode: record ``f`` at a fresh
level, then walk the graph back from an output cotangent; at float numbers the record is a tape,
see :mod:`chainrule.modes.tape`) and :func:`jvp` (forward mode: push Duals of a fresh level
through ``f``). Fresh levels are what make nesting safe: ``grad`` of
``grad``, ``jvp`` of ``grad`` (a Hessian by forward over reverse) or ``grad`` of ``jvp`` never
confuse the perturbation of one transformation with another's.

Functions may take and return Python numbers, numpy arrays, eager Tensors, and nested tuples,
lists and dicts of them (pytrees, see :mod:`chainrule.modes.pytree`). Derivatives come back in
the form the inputs had: plain arrays of the input's dtype for plain inputs (float32 stays
float32), numpy scalars for Python numbers, Tensors for Tensors (so that ``.backward()`` can go
on through them).
"""
from __future__ import annotations

import numpy as np

from chainrule.core import primitives as P
from chainrule.core.errors import DTypeError, ShapeError
from chainrule.core.primitives import dtype_of, shape_of
from chainrule.core.registry import Box, anomaly_enabled, grad_enabled, new_level
from chainrule.core.tensor import Tensor, _new, enable_grad
from chainrule.modes import tape as T
from chainrule.modes.forward import COMPLEX_REFUSAL, Dual, _as_tangent, check_primal, check_tangent, make_dual
from chainrule.modes.pytree import LEAF, describe, flatten, leaf_paths, unflatten
from chainrule.modes.reverse import grads_of

__all__ = ["grad", "value_and_grad", "vjp", "jvp", "jacobian", "hessian", "hvp"]


# ---------------------------------------------------------------- arguments and their names
def _argname(f, i):
    """``'argument i (name)'`` using f's signature where it has one (only built for errors)."""
    try:
        import inspect

        params = [p for p in inspect.signature(f).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)]
        if params and i < len(params) and params[i].kind != params[i].VAR_POSITIONAL:
            return f"argument {i} ({params[i].name})"
    except (TypeError, ValueError):
        pass
    return f"argument {i}"


class _Where:
    """'argument i (name) at [path]' for error messages, looked up only when one is formatted
    (inspecting f's signature costs more than a whole small gradient)."""

    __slots__ = ("f", "i", "treedef", "k")

    def __init__(self, f, i, treedef=LEAF, k=0):
        self.f, self.i, self.treedef, self.k = f, i, treedef, k

    def __str__(self):
        where = _argname(self.f, self.i)
        return where if self.treedef is LEAF else f"{where} at {leaf_paths(self.treedef)[self.k]}"


def _check_leaf(name, f, i, treedef, k, x):
    t = type(x)
    if t is float or (t is np.ndarray and x.dtype.kind == "f"):
        return  # the common case: nothing to build
    check_primal(name, _Where(f, i, treedef, k), x)


def _argnums(name, argnums):
    """``(nums, single, need)`` for an int or a sequence of ints: ``need`` is how many arguments a
    call must have for ``nums`` to be used as they are (None: negative or repeated, so each call
    resolves them). Raises for anything else."""
    if isinstance(argnums, (int, np.integer)) and not isinstance(argnums, bool):
        nums, single = (int(argnums),), True
    elif isinstance(argnums, (tuple, list)) and argnums and all(
            isinstance(a, (int, np.integer)) and not isinstance(a, bool) for a in argnums):
        nums, single = tuple(int(a) for a in argnums), False
    else:
        raise TypeError(f"{name}: argnums must be an int or a non-empty tuple of ints, got {argnums!r}")
    simple = min(nums) >= 0 and len(set(nums)) == len(nums)
    return nums, single, (max(nums) + 1 if simple else None)


def _positions(name, nums, nargs):
    out = []
    for a in nums:
        if not -nargs <= a < nargs:
            raise ValueError(f"{name}: argnums={a} is out of range for a call with {nargs} positional "
                             f"argument{'s' if nargs != 1 else ''} (valid: 0 to {nargs - 1}, or negative from the end)")
        out.append(a % nargs)
    if len(set(out)) != len(out):
        raise ValueError(f"{name}: argnums {nums} names an argument twice")
    return out


def _unbox(x, level):
    """The value of ``x`` one level down: a Tensor or Dual of ``level`` gives its primal value, a
    Python float (the tape's values, math's results) as a numpy scalar, as numpy's own gives."""
    if isinstance(x, Tensor) and x._level == level:
        x = x.data
    elif type(x) is Dual and x._level == level:
        x = x.primal
    else:
        return x
    return _F64(x) if type(x) is float else x


def _records_below(v):
    """True when ``v`` holds a Tensor of an enclosing reverse-mode transformation: the backward
    pass must then be recorded (create_graph) so that the enclosing one can differentiate it.
    Duals need no recording: their rules run on their own."""
    while isinstance(v, Box):
        if isinstance(v, Tensor):
            return True
        if type(v) is not Dual:
            return True  # a kind of box this module does not know: record, which is always correct
        if _records_below(v.tangent):
            return True
        v = v.primal
    return False


def _zeros_like(x, lead=()):
    return np.zeros(lead + shape_of(x), dtype=_float_dtype(x))


_F64 = np.float64


def _like_input(c, p):
    """A cotangent or Jacobian block in the form the input ``p`` was given: the input's dtype
    (float32 stays float32); a numpy scalar for a Python number or a 0-d input (as numpy's own
    arithmetic gives); boxes of enclosing transformations as they are."""
    tp = type(p)
    tc = type(c)
    if tp is np.ndarray:
        if tc is np.ndarray or isinstance(c, np.generic):
            return c if c.dtype == p.dtype else c.astype(p.dtype)
        return c if isinstance(c, Box) else np.asarray(c, dtype=p.dtype)
    if tp is float:
        return c[()] if tc is np.ndarray and c.ndim == 0 else c
    if isinstance(p, np.generic) and (tc is np.ndarray or isinstance(c, np.generic)):
        return c.astype(p.dtype)[()] if c.dtype != p.dtype or tc is np.ndarray else c
    return c


# ---------------------------------------------------------------- reverse mode: vjp
class _Recording:
    """``f`` evaluated once at a fresh level on Tensors for the differentiated arguments, or on
    the Traced values of a tape when every one is a float64 number."""

    __slots__ = ("level", "inputs", "flat", "tensors", "tape", "out_leaves", "out_def", "out", "aux")

    def __init__(self, name, f, args, kwargs, positions, has_aux):
        level = self.level = new_level()
        args = list(args)
        inputs = []  # per position: (leaves, treedef)
        tensors = []  # the Tensors of every differentiated leaf, in order
        flat = True  # every differentiated argument is one leaf
        # The lean path for work on numbers: Python floats on a tape. Anomaly mode checks values
        # as the graph of Tensors records them, so it takes that path.
        traced = None if anomaly_enabled() else T.trace(args, positions, level)
        self.tape = None
        if traced is not None:
            self.tape, tensors = traced
            for i, t in zip(positions, tensors):
                inputs.append(((args[i],), LEAF))
                args[i] = t
            positions = ()
        for i in positions:
            x = args[i]
            tx = type(x)
            if tx is float or (tx is np.ndarray and x.dtype.kind == "f"):
                # The common case, one float number or array: no tree to walk. A Python number
                # or a 0-d array becomes a numpy scalar, so that Tensor data always has a shape
                # and a dtype, and scalar arithmetic runs at numpy's scalar speed (several times
                # that of 0-d arrays).
                t = _new(np.float64(x) if tx is float else x[()] if x.ndim == 0 else x, level)
                t.requires_grad = True
                tensors.append(t)
                inputs.append(((x,), LEAF))
                args[i] = t
                continue
            leaves, treedef = flatten(x)
            if treedef is not LEAF:
                flat = False
            boxed = []
            for k, p in enumerate(leaves):
                _check_leaf(name, f, i, treedef, k, p)
                t = _new(np.float64(p) if type(p) is float else p, level)
                t.requires_grad = True
                boxed.append(t)
            tensors.extend(boxed)
            inputs.append((leaves, treedef))
            args[i] = boxed[0] if treedef is LEAF else unflatten(treedef, boxed)
        self.inputs = inputs
        self.flat = flat
        self.tensors = tensors
        if grad_enabled():
            out = f(*args, **kwargs)
        else:  # the functional API differentiates even inside no_grad (as torch.func does)
            with enable_grad():
                out = f(*args, **kwargs)
        self.aux = None
        if has_aux:
            if not isinstance(out, (tuple, list)) or len(out) != 2:
                raise TypeError(f"{name}: with has_aux=True the function must return a pair (output, aux), "
                                f"got {_kind(out)}")
            out, aux = out
            self.aux = _unbox_tree(aux, level)
        self.out_leaves, self.out_def = ((out,), LEAF) if isinstance(out, Tensor) else flatten(out)
        self.out = out

    def pull(self, cotangents, retain_graph):
        """The cotangent of every differentiated leaf (None where unreached), given one cotangent
        (or None: zero) per output leaf."""
        level = self.level
        if self.tape is not None:
            seeds = []  # a loop, not a comprehension: this runs once per gradient of a few numbers
            for o, g in zip(self.out_leaves, cotangents):
                if g is not None and type(o) is T.Traced and o._level == level:
                    seeds.append((o._index, g))
            return T.pull(self.tape, len(self.tensors), seeds)
        if len(cotangents) == 1:  # one output (grad): no sums
            o, g = self.out_leaves[0], cotangents[0]
            if g is None or not (isinstance(o, Tensor) and o._level == level):
                return [None] * len(self.tensors)
            create = (isinstance(o.data, Box) and _records_below(o.data)) or (isinstance(g, Box) and _records_below(g))
            return grads_of(o, g, self.tensors, retain_graph=retain_graph or create, create_graph=create)
        total = None
        for o, g in zip(self.out_leaves, cotangents):
            if g is None or not (isinstance(o, Tensor) and o._level == level):
                continue  # the output does not depend on the inputs at this level
            create = _records_below(o.data) or _records_below(g)
            got = grads_of(o, g, self.tensors, retain_graph=retain_graph or create, create_graph=create)
            if total is None:
                total = got
            else:
                total = [a if b is None else b if a is None else a + b for a, b in zip(total, got)]
        return total if total is not None else [None] * len(self.tensors)

    def unpack(self, cots, single):
        """Cotangents of the leaves, reassembled into the arguments' structures."""
        level = self.level
        if self.tape is not None:  # numbers: a Python float becomes a numpy scalar, as numpy gives
            results = []
            for c, ((p,), _) in zip(cots, self.inputs):
                if type(c) is not float:
                    c = _like_input(_zeros_like(p) if c is None else c, p)
                results.append(_F64(c) if type(c) is float else c)
            return results[0] if single else tuple(results)
        if self.flat:  # every argument is one leaf: no trees to rebuild
            results = []
            for c, (leaves, _) in zip(cots, self.inputs):
                p = leaves[0]
                tc = type(c)
                if tc is Tensor and c._level == level:
                    c = c.data
                    tc = type(c)
                if tc is not _F64 or type(p) is not float:  # else: already a numpy scalar for a number
                    c = _like_input(_zeros_like(p) if c is None else c, p)
                results.append(c)
            return results[0] if single else tuple(results)
        results = []
        k = 0
        for leaves, treedef in self.inputs:
            vals = []
            for p in leaves:
                c = cots[k]
                k += 1
                if c is None:
                    c = _zeros_like(p)
                elif isinstance(c, Tensor) and c._level == level:
                    c = c.data
                vals.append(_like_input(c, p))
            results.append(vals[0] if treedef is LEAF else unflatten(treedef, vals))
        return results[0] if single else tuple(results)

    def value(self):
        return _unbox_tree(self.out, self.level)


def _kind(x):
    if isinstance(x, (tuple, list)):
        return f"{type(x).__name__} of {len(x)}"
    if isinstance(x, (Box, np.ndarray, np.generic, float, int)):
        return "a single value"
    return type(x).__name__


def _unbox_tree(tree, level):
    leaves, treedef = flatten(tree)
    if treedef is LEAF:
        return _unbox(tree, level)
    return unflatten(treedef, [_unbox(x, level) for x in leaves])


def _scalar_cotangent(name, rec):
    """d out / d out = 1 for a one-element output (None when it does not depend on the inputs)."""
    out = rec.out
    if isinstance(out, Tensor) and out._level == rec.level:
        data = out.data
        if type(data) is float:
            return 1.0  # a value of the tape
        dtype = getattr(data, "dtype", None)
        if getattr(data, "shape", None) == () and dtype is not None and dtype.kind == "f":
            return dtype.type(1)  # the common case, checked first (a numpy scalar is cheapest)
    if rec.out_def is not LEAF:
        hint = ("; with has_aux=True return (value, aux)" if isinstance(rec.out, (tuple, list)) else "")
        raise TypeError(f"{name}: the function must return a scalar, got {_kind(rec.out)}{hint}")
    if not isinstance(out, (Box, np.ndarray, np.generic, float, int)):
        raise TypeError(f"{name}: the function must return a scalar, got {type(out).__name__}")
    shape = shape_of(out)
    if shape != () and int(np.prod(shape)) != 1:
        raise ShapeError(f"{name}: the function must return a scalar, but it returned shape {shape}; "
                         "reduce it first (e.g. cr.sum(...)), or use cr.jacobian / cr.vjp for vector outputs")
    if isinstance(out, Tensor) and out._level == rec.level:
        return np.ones(shape, dtype=_float_dtype(out.data))
    return None


def vjp(f, *primals, has_aux=False):
    r"""Evaluate ``f(*primals)`` and return ``(out, vjp_fn)``, where ``vjp_fn(g)`` gives the
    vector-Jacobian products $g^\top \partial f / \partial x_i$: a tuple with one cotangent per
    primal, shaped like it. ``g`` has the structure and shapes of ``out``. ``vjp_fn`` can be
    called many times (the graph is kept). With ``has_aux``, ``f`` returns ``(out, aux)`` and
    vjp returns ``(out, vjp_fn, aux)``.

    >>> import numpy as np
    >>> out, vjp_fn = vjp(lambda x, y: x * y, np.array([1.0, 2.0]), np.array([3.0, 4.0]))
    >>> vjp_fn(np.array([1.0, 10.0]))
    (array([ 3., 40.]), array([ 1., 20.]))
    """
    rec = _Recording("vjp", f, primals, {}, range(len(primals)), has_aux)
    out_leaves, out_def = rec.out_leaves, rec.out_def

    def vjp_fn(g):
        g_leaves, g_def = flatten(g)
        if g_def != out_def:
            raise ShapeError(f"vjp: the cotangent is {describe(g_def)} but the output is {describe(out_def)}")
        cots = []
        for k, (o, gk) in enumerate(zip(out_leaves, g_leaves)):
            where = "" if out_def is LEAF else f" at {leaf_paths(out_def)[k]}"
            if gk is None or isinstance(gk, str):
                raise DTypeError(f"vjp: the cotangent{where} is {gk!r}; pass an array shaped like the output "
                                 f"({shape_of(o)})")
            if not isinstance(gk, Box):
                if np.iscomplexobj(gk):
                    raise DTypeError(f"vjp: the cotangent{where} is complex; {COMPLEX_REFUSAL}")
                gk = np.asarray(gk, dtype=_float_dtype(o))
            if shape_of(gk) != shape_of(o):
                raise ShapeError(f"vjp: the cotangent{where} has shape {shape_of(gk)} but the output has "
                                 f"shape {shape_of(o)}")
            cots.append(gk)
        return rec.unpack(rec.pull(cots, retain_graph=True), single=False)

    if has_aux:
        return rec.value(), vjp_fn, rec.aux
    return rec.value(), vjp_fn


def _float_dtype(x):
    dtype = np.dtype(dtype_of(x))
    return dtype if dtype.kind in "fc" else np.dtype(np.float64)


def _value_and_grad(name, f, argnums, has_aux, args, kwargs):
    nums, single, need = argnums
    positions = nums if need is not None and len(args) >= need else _positions(name, nums, len(args))
    rec = _Recording(name, f, args, kwargs, positions, has_aux)
    seed = _scalar_cotangent(name, rec)
    cots = rec.pull((seed,), retain_graph=False) if seed is not None else [None] * len(rec.tensors)
    return rec, rec.unpack(cots, single)


def grad(f, argnums=0, has_aux=False):
    r"""The gradient of a scalar function: ``grad(f)(x)`` is $\nabla f(x)$, shaped like ``x``.

    ``argnums`` (an int or a tuple of ints) picks the arguments to differentiate; a tuple gives a
    tuple of gradients. With ``has_aux=True``, ``f`` returns ``(value, aux)`` and the result is
    ``(gradient, aux)``. Works to any order: ``grad(grad(f))`` is the second derivative.

    >>> import chainrule as cr
    >>> float(grad(lambda x: x ** 3)(2.0))          # 3 x^2
    12.0
    >>> float(grad(grad(cr.sin))(0.0))              # -sin 0
    -0.0
    """
    nums = _argnums("grad", argnums)

    def grad_f(*args, **kwargs):
        rec, g = _value_and_grad("grad", f, nums, has_aux, args, kwargs)
        return (g, rec.aux) if has_aux else g

    _name(grad_f, "grad", f)
    return grad_f


def value_and_grad(f, argnums=0, has_aux=False):
    """Like :func:`grad`, returning ``(value, gradient)`` (``((value, aux), gradient)`` with
    has_aux) from one evaluation.

    >>> v, g = value_and_grad(lambda x: x * x)(3.0)
    >>> float(v), float(g)
    (9.0, 6.0)
    """
    nums = _argnums("value_and_grad", argnums)

    def value_and_grad_f(*args, **kwargs):
        rec, g = _value_and_grad("value_and_grad", f, nums, has_aux, args, kwargs)
        value = rec.value()
        return ((value, rec.aux), g) if has_aux else (value, g)

    _name(value_and_grad_f, "value_and_grad", f)
    return value_and_grad_f


def _name(fn, what, f):
    fn.__name__ = fn.__qualname__ = f"{what}({getattr(f, '__name__', 'f')})"
    fn.__wrapped__ = f


# ---------------------------------------------------------------- forward mode: jvp
def jvp(f, primals, tangents, *, batched=False):
    r"""Evaluate ``f(*primals)`` and its derivative along ``tangents`` in one forward pass:
    returns ``(out, out_tangent)`` with $\dot y = \sum_i \partial f / \partial x_i \, \dot x_i$.

    ``primals`` and ``tangents`` are tuples (one entry per argument of ``f``, each a pytree) of
    the same structure and shapes. With ``batched=True`` every tangent has one more leading axis
    of B directions, and ``out_tangent`` has it too: B Jacobian-vector products in one pass.

    >>> import numpy as np
    >>> jvp(lambda x: x ** 2, (3.0,), (1.0,))
    (np.float64(9.0), np.float64(6.0))
    >>> y, ydot = jvp(lambda x: x ** 2, (np.array([1.0, 2.0]),), (np.eye(2),), batched=True)
    >>> ydot                       # one row per direction: the Jacobian diag(2x), transposed
    array([[2., 0.],
           [0., 4.]])
    """
    if not isinstance(primals, (tuple, list)) or not isinstance(tangents, (tuple, list)):
        bad = "primals" if not isinstance(primals, (tuple, list)) else "tangents"
        raise TypeError(f"jvp: {bad} must be a tuple with one entry per argument of f, e.g. "
                        f"jvp(f, (x,), (v,)); got {type(primals if bad == 'primals' else tangents).__name__}")
    if len(primals) != len(tangents):
        raise ValueError(f"jvp: {len(primals)} primals but {len(tangents)} tangents; pass one tangent per argument")
    level = new_level()
    batch = None
    args = []
    for i, (p, t) in enumerate(zip(primals, tangents)):
        p_leaves, p_def = flatten(p)
        t_leaves, t_def = flatten(t)
        if p_def != t_def:
            raise ShapeError(f"jvp: the tangent of {_argname(f, i)} is {describe(t_def)} but the primal is "
                             f"{describe(p_def)}")
        duals = []
        for k, (pk, tk) in enumerate(zip(p_leaves, t_leaves)):
            _check_leaf("jvp", f, i, p_def, k, pk)
            if _fits(tk, pk, batched, batch):
                batch = tk.shape[0] if batched else None  # the common case: an array that fits as it is
            else:
                check_tangent("jvp", _Where(f, i, p_def, k), pk, tk, batched, batch)
                tk = _as_tangent(tk, pk)
                if batched:
                    batch = shape_of(tk)[0]
            # A tangent that is exactly zero is a symbolic zero (JAX's word): the argument enters
            # as a constant, so that it contributes nothing even where its local derivative is
            # infinite (d/dx sqrt(x) at 0 times a zero tangent would be NaN, not 0). Its first
            # entry decides for most tangents without a pass over them.
            zero = type(tk) is np.ndarray and tk.size and tk.item(0) == 0 and not tk.any()
            duals.append(pk if zero else make_dual(pk, tk, level, batch))
        args.append(duals[0] if p_def is LEAF else unflatten(p_def, duals))
    out = f(*args)
    out_leaves, out_def = flatten(out)
    po, to = [], []
    lead = (batch,) if batched else ()
    for o in out_leaves:
        if type(o) is Dual and o._level == level:
            po.append(_unbox(o, level))
            t = o.tangent
        else:  # does not depend on the inputs (or only on zero tangents): a zero tangent
            numeric = isinstance(o, (Box, np.ndarray, np.generic, float, int, complex))
            po.append(_F64(o) if type(o) is float else o)  # as a Dual's value would come back
            t = _zeros_like(o, lead) if numeric else None
        to.append(t[()] if type(t) is np.ndarray and not t.shape else t)  # a number as a numpy scalar
    if out_def is LEAF:
        return po[0], to[0]
    return unflatten(out_def, po), unflatten(out_def, to)


def _fits(t, p, batched, batch):
    """Whether tangent ``t`` can be used as it is: an array of p's dtype and shape (after a
    leading axis of ``batch`` directions when batched)."""
    if type(t) is not np.ndarray or t.dtype != dtype_of(p):
        return False
    if not batched:
        return t.shape == shape_of(p)
    return t.ndim > 0 and t.shape[1:] == shape_of(p) and (batch is None or t.shape[0] == batch)


# ---------------------------------------------------------------- Jacobians and Hessians
def jacobian(f, argnums=0, mode="auto", explain=False):
    r"""The Jacobian $\partial f_i / \partial x_j$, shaped ``out.shape + x.shape``.

    ``mode="forward"`` pushes one batch of tangents (one per input entry) through ``f`` in a
    single forward pass; ``mode="reverse"`` runs one backward pass per output entry;
    ``mode="auto"`` (default) takes forward mode when the inputs have fewer entries than the
    outputs, reverse mode otherwise. With ``explain=True`` the returned function gives
    ``(J, reason)``, where reason says which mode ran and why.

    With several ``argnums`` the result is a tuple (one Jacobian per argument); for pytree
    outputs, a pytree of them (as in JAX).

    >>> import numpy as np
    >>> J, why = jacobian(lambda x: x[:2] * x[1:], explain=True)(np.array([1.0, 2.0, 3.0]))
    >>> J
    array([[2., 1., 0.],
           [0., 3., 2.]])
    >>> why
    'reverse mode: 2 outputs <= 3 inputs, so 2 backward passes'
    """
    if mode not in ("auto", "forward", "reverse"):
        raise ValueError(f"jacobian: mode must be 'auto', 'forward' or 'reverse', got {mode!r}")
    nums, single, _ = _argnums("jacobian", argnums)

    def jacobian_f(*args):
        positions = _positions("jacobian", nums, len(args))
        n_in = sum(_size(p) for i in positions for p in flatten(args[i])[0])
        if mode == "forward":
            J = _jacobian_forward(f, args, positions, single)
            reason = f"forward mode (asked): one pass with {n_in} tangent directions"
        else:
            # Recording f also tells how many outputs there are; auto mode decides from that.
            rec = _Recording("jacobian", f, args, {}, positions, False)
            n_out = sum(_size(o) for o in rec.out_leaves)
            if mode == "auto" and n_in < n_out:
                J = _jacobian_forward(f, args, positions, single)
                reason = f"forward mode: {n_in} inputs < {n_out} outputs, so one pass with {n_in} tangent directions"
            else:
                J = _jacobian_reverse(rec, single)
                reason = (f"reverse mode: {n_out} outputs <= {n_in} inputs, so {n_out} backward passes"
                          if mode == "auto" else f"reverse mode (asked): {n_out} backward passes")
        return (J, reason) if explain else J

    _name(jacobian_f, "jacobian", f)
    return jacobian_f


def _assemble(out_leaves, out_def, inputs, blocks, single):
    """blocks[o][k] (out leaf o, in leaf k) into the out tree of (tuples of) input trees."""
    per_out = []
    for o in range(len(out_leaves)):
        trees = []
        k = 0
        for leaves, treedef in inputs:
            vals = blocks[o][k:k + len(leaves)]
            k += len(leaves)
            trees.append(vals[0] if treedef is LEAF else unflatten(treedef, vals))
        per_out.append(trees[0] if single else tuple(trees))
    return per_out[0] if out_def is LEAF else unflatten(out_def, per_out)


def _size(x) -> int:
    n = 1
    for d in shape_of(x):
        n *= d
    return n


def _block(t, oshape, p, forward):
    """A Jacobian block of shape oshape + p's shape, in the form p was given, from the tangents
    (forward: shape (size of p,) + oshape) or the cotangents (reverse: (size of out,) + p's
    shape). Chainrule operations, so that traced values work too."""
    nd = len(shape_of(t))
    if forward and nd > 1:
        t = P.transpose(t, axes=tuple(range(1, nd)) + (0,))
    block = P.reshape(t, shape=oshape + shape_of(p))
    if oshape == () or type(p) is np.ndarray:
        return _like_input(block, p)
    return block


def _jacobian_forward(f, args, positions, single):
    inputs = [flatten(args[i]) for i in positions]
    leaves = [p for ls, _ in inputs for p in ls]
    for (ls, treedef), i in zip(inputs, positions):
        for k, p in enumerate(ls):
            _check_leaf("jacobian", f, i, treedef, k, p)
    sizes = [_size(p) for p in leaves]
    n = sum(sizes)
    eye = np.eye(n)
    tangents = iter([eye[:, off - size:off].reshape((n,) + shape_of(p)).astype(_float_dtype(p))
                     for p, size, off in zip(leaves, sizes, np.cumsum(sizes))])
    t_args = []
    for ls, treedef in inputs:
        vals = [next(tangents) for _ in ls]
        t_args.append(vals[0] if treedef is LEAF else unflatten(treedef, vals))
    call_args = list(args)

    def restricted(*xs):
        for i, x in zip(positions, xs):
            call_args[i] = x
        return f(*call_args)

    out, out_t = jvp(restricted, tuple(args[i] for i in positions), tuple(t_args), batched=True)
    out_leaves, out_def = flatten(out)
    t_leaves = [out_t] if out_def is LEAF else flatten(out_t)[0]
    blocks = []
    for o, t in zip(out_leaves, t_leaves):
        oshape = shape_of(o)
        row = []
        off = 0
        for p, size in zip(leaves, sizes):
            row.append(_block(P.getitem(t, index=slice(off, off + size)), oshape, p, True))
            off += size
        blocks.append(row)
    return _assemble(out_leaves, out_def, inputs, blocks, single)


def _jacobian_reverse(rec, single):
    leaves = [p for ls, _ in rec.inputs for p in ls]
    level = rec.level
    blocks = []
    n_out = len(rec.out_leaves)
    for o_index, o in enumerate(rec.out_leaves):
        oshape = shape_of(o)
        m = _size(o)
        rows = [[] for _ in leaves]
        eye = np.eye(m, dtype=_float_dtype(_unbox(o, level)))
        for j in range(m):
            cots = [None] * n_out
            cots[o_index] = eye[j].reshape(oshape)
            got = rec.pull(cots, retain_graph=True)
            for k, (c, p) in enumerate(zip(got, leaves)):
                if c is None:
                    c = _zeros_like(p)
                elif isinstance(c, Tensor) and c._level == level:
                    c = c.data
                rows[k].append(c)
        blocks.append([_block(P.stack(*r, axis=0) if r else _zeros_like(p, (0,)), oshape, p, False)
                       for r, p in zip(rows, leaves)])
    return _assemble(rec.out_leaves, rec.out_def, rec.inputs, blocks, single)


def hessian(f, argnums=0):
    r"""The Hessian $\partial^2 f / \partial x_i \partial x_j$ of a scalar function, shaped
    ``x.shape + x.shape``, by forward over reverse: the forward-mode Jacobian of ``grad(f)``,
    with all tangent directions in one batched pass.

    >>> import numpy as np, chainrule as cr
    >>> hessian(lambda x: cr.sum(x ** 3))(np.array([1.0, 2.0]))
    array([[ 6.,  0.],
           [ 0., 12.]])
    """
    h = jacobian(grad(f, argnums), argnums, mode="forward")
    _name(h, "hessian", f)
    return h


def hvp(f, primals, tangents):
    r"""The Hessian-vector product $\nabla^2 f(x)\, v$ of a scalar function, without forming
    the Hessian: the derivative of ``grad(f)`` (with respect to the first argument) along
    ``tangents``, by forward over reverse. ``primals`` and ``tangents`` are tuples as for
    :func:`jvp`.

    >>> import numpy as np, chainrule as cr
    >>> hvp(lambda x: cr.sum(x ** 3), (np.array([1.0, 2.0]),), (np.array([1.0, 1.0]),))
    array([ 6., 12.])
    """
    return jvp(grad(f), primals, tangents)[1]
