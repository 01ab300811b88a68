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

from chainrule.core.primitives import shape_of, unbroadcast
from chainrule.core.registry import _NO_PARAMS, STATE, Box, bind
from chainrule.core.tensor import Tensor, _new, _object_new


class Traced(Tensor):
    """A value of a function that the functional API differentiates at float numbers: a Tensor
    whose every operation appends an entry ``(primitive, parent indices, argument values,
    result, parameters)`` to its tape. ``_index`` is its own entry."""

    requires_grad = True

    def _binary(self, prim, a, b):
        # Tensor's operators land here; the common case (one value of this tape and a number,
        # or two values) is written out, anything else goes through the general _bind.
        level = self._level
        if type(a) is Traced and a._level == level:
            av, ia = a.data, a._index
        elif isinstance(a, Box):
            return self._bind(prim, (a, b), _NO_PARAMS) if a._level <= level else bind(prim, (a, b), _NO_PARAMS)
        else:
            av, ia = a, None
        if type(b) is Traced and b._level == level:
            bv, ib = b.data, b._index
        elif isinstance(b, Box):
            return self._bind(prim, (a, b), _NO_PARAMS) if b._level <= level else bind(prim, (a, b), _NO_PARAMS)
        else:
            bv, ib = b, None
        data = prim.op(av, bv)
        if not (prim.differentiable and STATE.grad_enabled):
            return data
        tape = self._tape  # _record, written out: this is the hot path of scalar code
        out = _object_new(Traced)
        out.data = data
        out._level = level
        out._tape = tape
        out._index = len(tape)
        tape.append((prim, (ia, ib), (av, bv), data, _NO_PARAMS))
        return out

    def _bind_unary(self, prim, params):
        x = self.data
        data = prim.op(x, **params) if params else prim.op(x)
        if not (prim.differentiable and STATE.grad_enabled):
            return data
        return self._record(prim, (self._index,), (x,), data, params)

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
        if not (prim.differentiable and STATE.grad_enabled) or parents.count(None) == len(parents):
            return data
        return self._record(prim, tuple(parents), tuple(vals), data, params)

    def _record(self, prim, parents, vals, data, params):
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


def trace(values, level):
    """A tape and one Traced input per value, made at ``level``."""
    tape = [None] * len(values)  # the inputs' entries: nothing to walk past
    inputs = []
    for i, v in enumerate(values):
        t = _object_new(Traced)
        t.data = v
        t._level = level
        t._tape = tape
        t._index = i
        inputs.append(t)
    return tape, inputs


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
        if type(rules) is not tuple:
            rules = rules.rules(len(parents))
        broadcasts = prim.broadcasts
        for p, rule, v in zip(parents, rules, vals):
            if p is None:
                continue  # a constant
            gi = rule(g, ans, *vals, **params) if params else rule(g, ans, *vals)
            if broadcasts and type(gi) is not float:  # a float is the shape of every input it reaches
                shape = shape_of(v)
                if shape_of(gi) != shape:
                    gi = unbroadcast(gi, shape)
            prev = cots[p]
            cots[p] = gi if prev is None else prev + gi
    return cots[:n_inputs]
