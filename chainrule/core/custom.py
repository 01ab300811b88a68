"""User-defined primitives: one call adds a function with its own rules to the registry.

A primitive declared here is the same kind of object as chainrule's own (see
:mod:`chainrule.core.registry`): every mode reads it, so reverse mode, ``cr.grad``, forward mode
(when it has a forward rule), Hessians, the graph views, ``cr.vmap`` and symbolic mode (when it
has a symbolic form) all use it, and :func:`chainrule.testing.check_grads` checks its rules.
"""
from __future__ import annotations

import inspect

from chainrule.core.errors import ChainruleError
from chainrule.core.registry import REGISTRY, defprim, general_op

_USER: set = set()  # names declared through primitive(): these may be declared again


class MissingRuleError(ChainruleError, NotImplementedError):
    """A mode needs a rule that a user-defined primitive was declared without."""


def _missing_jvp(name, i):
    def rule(t, ans, *args, **params):
        raise MissingRuleError(
            f"primitive {name!r} has no forward rule (jvp) for argument {i}, so forward mode (cr.jvp, "
            f"cr.hessian, jacobian(mode='forward'), check_grads' forward check) cannot differentiate it; "
            f"declare it with cr.primitive(..., jvp=lambda t, ans, *args: ...)")
    return rule


def _rules(rules, arity, what):
    if callable(rules):
        rules = (rules,)
    rules = tuple(rules)
    if arity is not None and len(rules) != arity:
        raise ValueError(f"cr.primitive: {what} has {len(rules)} rules but vjp has {arity}; give one per argument "
                         "(None for an argument without a derivative)")
    for r in rules:
        if r is not None and not callable(r):
            raise TypeError(f"cr.primitive: each {what} rule must be a function or None, got {type(r).__name__}")
    return rules


def primitive(impl=None, *, vjp, jvp=None, name=None, sym=None, latex=None, display=None, elementwise=False,
              doc=None):
    r"""Declare a primitive: ``impl`` computes it on numpy arrays, ``vjp`` is its reverse rule,
    ``jvp`` its forward rule and ``sym`` its symbolic form. Returns the function users call (on
    arrays it is ``impl`` itself; on Tensors, Duals and symbolic values it is traced).

    * ``vjp(g, ans, x, **params)`` returns the cotangent of ``x`` given the output cotangent ``g``
      and the output ``ans``; for several arguments pass one rule per argument, a tuple
      (``None`` for one without a derivative), each called as ``rule(g, ans, *args, **params)``.
    * ``jvp(t, ans, x, **params)`` returns the output tangent for the tangent ``t`` of ``x``
      (a tuple for several arguments, as ``vjp``). Without it, forward mode raises
      :class:`MissingRuleError` naming the primitive (it is not derived from ``vjp``).
    * Rules written with chainrule's functions (``cr.exp``, ``cr.sigmoid``, ...) are themselves
      differentiable: second derivatives (``check_grads(order=2)``, ``cr.hessian``) work.
    * ``sym(sp, x, **params)`` builds the SymPy expression (``sp`` is the sympy module; symbolic
      mode works on numbers, so declare a function of numbers ``elementwise=True`` too);
      ``latex`` is a format string such as ``"\\operatorname{{f}}\\left({0}\\right)"``.
    * ``elementwise=True``: the function broadcasts its arguments; rules may then return
      cotangents of the broadcast shape (chainrule sums them back).
    * Parameters (keyword arguments of the call) are passed to ``impl`` and every rule.

    Used as a decorator, ``impl`` is the decorated function and ``name`` defaults to its name.
    Declaring a name again replaces an earlier user primitive (a re-run notebook cell); a name
    of chainrule's own primitives is refused.

    >>> import numpy as np, chainrule as cr
    >>> @cr.primitive(vjp=lambda g, ans, x: g * cr.sigmoid(x), jvp=lambda t, ans, x: t * cr.sigmoid(x))
    ... def log1pexp(x):
    ...     return np.logaddexp(0.0, x)
    >>> float(cr.grad(log1pexp)(0.0))
    0.5
    """
    if impl is None:
        return lambda fn: primitive(fn, vjp=vjp, jvp=jvp, name=name, sym=sym, latex=latex, display=display,
                                    elementwise=elementwise, doc=doc)
    if not callable(impl):
        raise TypeError(f"cr.primitive: impl must be a function of numpy arrays, got {type(impl).__name__}")
    name = name or getattr(impl, "__name__", None)
    if not name or name == "<lambda>":
        raise ValueError("cr.primitive: give the primitive a name (name='...'): it names it in graphs and errors")
    vjps = _rules(vjp, None, "vjp")
    if all(r is None for r in vjps):
        raise ValueError(f"cr.primitive: {name!r} needs a reverse rule (vjp) for at least one argument")
    jvps = (tuple(_missing_jvp(name, i) if r is not None else None for i, r in enumerate(vjps)) if jvp is None
            else _rules(jvp, len(vjps), "jvp"))
    if name in REGISTRY:
        if name not in _USER:
            raise ValueError(f"cr.primitive: {name!r} is one of chainrule's own primitives; choose another name")
        del REGISTRY[name]  # declared again: the new rules replace the old ones
    op = defprim(name, impl, vjps, jvps, sym=sym, latex=latex or f"\\operatorname{{{{{name}}}}}\\left({{0}}\\right)",
                 display=display or name, elementwise=elementwise,
                 doc=doc or getattr(impl, "__doc__", None) or f"{name} (a user-defined primitive).")
    if len(vjps) > 1:
        op = _with_parameters(REGISTRY[name])
    try:  # the function's own parameter names (symbolic mode names its variables after them)
        op.__signature__ = inspect.signature(impl)
    except (TypeError, ValueError):  # a ufunc or builtin without one
        pass
    _USER.add(name)
    return op


def _with_parameters(prim):
    # The registry's operation for two arguments is specialised to chainrule's own binary
    # primitives, which take no parameters; a user's may, so it gets the general dispatch.
    prim.op = general_op(prim)
    return prim.op


def remove(name):
    """Take a user-defined primitive out of the registry (the function its declaration returned
    keeps working: it holds its primitive); its name is free again."""
    if name not in _USER:
        raise ValueError(f"cr.primitive: {name!r} is not a user-defined primitive")
    _USER.discard(name)
    del REGISTRY[name]


primitive.remove = remove
primitive.MissingRuleError = MissingRuleError
