"""Reverse mode on a tape: the functional API's lean path for work on numbers.

``grad(f)(2.0, 3.0)`` at float numbers records each operation of ``f`` as one entry of a list,
the tape (the lecture's list of intermediate quantities, in the order they were computed), and
walks that list backwards: an entry is reached after every entry that consumes it, because it
was recorded before them. There is no ordering heap, no version counter (nothing outside the
call holds these values to change them in place) and no graph to release, and the values stay
Python floats, whose arithmetic and ``math`` functions cost a fraction of numpy's on a number.
The rules are the registry's, as in every mode, so the values may be anything a rule accepts:
an operation with an array makes an array, and a value of an enclosing transformation (a Dual,
a Tensor) is simply computed with, which records the backward pass for that transformation.
"""
from __future__ import annotations

import numpy as np

from chainrule.core.primitives import shape_of, unbroadcast
from chainrule.core.registry import _FLOAT_ERRORS, _NO_PARAMS, REGISTRY, Box, bind, grad_enabled
from chainrule.core.tensor import _SAVED_AS_IS, Tensor, _frozen, _frozen_params, _new, _object_new


class Traced(Tensor):
    """A value of a function that the functional API differentiates at float numbers: a Tensor
    whose every operation appends an entry ``(primitive, parent indices, argument values,
    result, parameters)`` to its tape. ``_index`` is its own entry."""

    requires_grad = True

    def _binary(self, prim, a, b):
        """``prim(a, b)`` with self among them, for operands other than a number or a value of
        this tape (the operators below take those themselves)."""
        level = self._level
        for v in (a, b):
            if isinstance(v, Box) and v._level > level:  # an inner transformation's value
                return bind(prim, (a, b), _NO_PARAMS)
        return self._bind(prim, (a, b), _NO_PARAMS)

    def _bind_unary(self, prim, params):
        x = self.data
        scalar = prim.scalar
        if type(x) is float and scalar is not None and not params:
            try:  # the registry's unary op would do the same, one call later
                data = scalar(x)
            except _FLOAT_ERRORS:
                data = prim.impl(x)
        else:
            data = prim.op(x, **params) if params else prim.op(x)
        if not (prim.differentiable and grad_enabled()):
            return data
        return self._record(prim, (self._index,), (x,), data, _frozen_params(params) if params else params)

    def _bind(self, prim, args, params):
        """Any primitive: values of this tape are unboxed, anything else is a constant here."""
        level = self._level
        vals = []
        parents = []
        for a in args:
            if isinstance(a, Tensor) and a._level == level:  # a Traced, or a detached value
                vals.append(a.data)
                parents.append(a._index if type(a) is Traced else None)
            else:
                vals.append(a)
                parents.append(None)
        data = prim.op(*vals, **params)
        if not (prim.differentiable and grad_enabled()) or parents.count(None) == len(parents):
            return data
        # constants that may change before the pullback runs are kept as copies (see Tensor)
        vals = tuple(_frozen(v) if p is None and type(v) not in _SAVED_AS_IS else v for p, v in zip(parents, vals))
        return self._record(prim, tuple(parents), vals, data, _frozen_params(params) if params else params)

    def _record(self, prim, parents, vals, data, params):
        """A new value of this tape, the result of one more entry."""
        tape = self._tape
        out = _object_new(Traced)
        out.data = data
        out._level = self._level
        out._tape = tape
        out._index = len(tape)
        tape.append((prim, parents, vals, data, params))
        return out

    def detach(self):
        # An eager constant: a Tensor of this level would record on its own, out of the tape's sight.
        return _new(self.data)

    def backward(self, gradient=None, retain_graph=None, create_graph=False):
        raise TypeError("backward: this value is traced by grad/vjp, which differentiates it when the "
                        "function returns; return it instead of calling .backward() on it")


def _operator(prim, reflected):
    """The method of ``Traced`` for the operator of ``prim`` (``reflected``: ``other op self``):
    the hot path of scalar code, so the float case is computed here, without further calls."""
    fast = prim.operator

    def method(self, other):
        level = self._level
        if type(other) is Traced and other._level == level:
            y, j = other.data, other._index
        elif isinstance(other, Box):
            return self._binary(prim, other, self) if reflected else self._binary(prim, self, other)
        else:
            y, j = other, None  # a constant
        x = self.data
        if reflected:
            x, y, parents = y, x, (j, self._index)
        else:
            parents = (self._index, j)
        if fast is not None and type(x) is float and type(y) is float:
            try:
                data = fast(x, y)
            except _FLOAT_ERRORS:  # 1.0 / 0.0: numpy's inf
                data = prim.impl(x, y)
        else:
            data = prim.op(x, y)
            if j is None and type(other) not in _SAVED_AS_IS and grad_enabled():
                # an array or list constant: a copy, as vjp's pullback may run after it changed
                if reflected:
                    x = _frozen(x)
                else:
                    y = _frozen(y)
        if not grad_enabled():
            return data
        tape = self._tape
        out = _object_new(Traced)
        out.data = data
        out._level = level
        out._tape = tape
        out._index = len(tape)
        tape.append((prim, parents, (x, y), data, _NO_PARAMS))
        return out

    method.__name__ = f"__{'r' if reflected else ''}{_DUNDER[prim.name]}__"
    return method


_DUNDER = {"add": "add", "subtract": "sub", "multiply": "mul", "divide": "truediv", "power": "pow",
           "matmul": "matmul"}
for _name in _DUNDER:
    for _reflected in (False, True):
        _method = _operator(REGISTRY[_name], _reflected)
        setattr(Traced, _method.__name__, _method)


def trace(args, positions, level):
    """``(tape, inputs)``: a tape and a Traced input at ``level`` for each argument at
    ``positions``, when every one is a float64 number (a Python float, a numpy float64 or a 0-d
    float64 array); None otherwise."""
    tape = [None] * len(positions)  # the inputs' entries: nothing to walk past
    inputs = []
    for k, i in enumerate(positions):
        x = args[i]
        tx = type(x)
        if tx is not float:
            if not (tx is _F64 or (tx is np.ndarray and x.dtype is _F64_DTYPE and not x.shape)):
                return None
            x = float(x)
        t = _object_new(Traced)
        t.data = x
        t._level = level
        t._tape = tape
        t._index = k
        inputs.append(t)
    return tape, inputs


_F64 = np.float64
_F64_DTYPE = np.dtype(np.float64)


def pull(tape, n_inputs, seeds):
    """The cotangents of the tape's first ``n_inputs`` values (None where unreached), given
    ``(index, cotangent)`` seeds of its outputs: ``g_x = sum_k g_{u_k} du_k/dx`` entry by entry,
    from the last one back."""
    cots = [None] * len(tape)
    top = -1
    for i, g in seeds:
        prev = cots[i]
        cots[i] = g if prev is None else prev + g
        if i > top:
            top = i
    for i in range(top, n_inputs - 1, -1):
        g = cots[i]
        if g is None:
            continue  # the output does not depend on this value
        cots[i] = None  # done with it: a large cotangent is freed as the walk goes
        prim, parents, vals, ans, params = tape[i]
        rules = prim.vjps
        n = len(parents)
        if n == 1 and not params:  # unary: one rule, nothing broadcast
            p = parents[0]
            gi = rules[0](g, ans, vals[0])
            prev = cots[p]
            cots[p] = gi if prev is None else prev + gi
        elif n == 2 and not params and type(rules) is tuple:  # binary, written out: no packing
            x, y = vals
            a, b = parents
            if a is not None:
                gi = rules[0](g, ans, x, y)
                if type(gi) is not float and prim.broadcasts:  # a float has every input's shape
                    gi = _fit(gi, x)
                prev = cots[a]
                cots[a] = gi if prev is None else prev + gi
            if b is not None:
                gi = rules[1](g, ans, x, y)
                if type(gi) is not float and prim.broadcasts:
                    gi = _fit(gi, y)
                prev = cots[b]
                cots[b] = gi if prev is None else prev + gi
        else:
            if type(rules) is not tuple:
                rules = rules.rules(n)
            for p, rule, v in zip(parents, rules, vals):
                if p is not None:
                    gi = rule(g, ans, *vals, **params)
                    if prim.broadcasts:
                        gi = _fit(gi, v)
                    prev = cots[p]
                    cots[p] = gi if prev is None else prev + gi
    return cots[:n_inputs]


def _fit(g, v):
    """The cotangent ``g`` of an elementwise primitive's argument ``v``, summed back to v's shape
    where the argument was broadcast."""
    shape = shape_of(v)
    return g if shape_of(g) == shape else unbroadcast(g, shape)
