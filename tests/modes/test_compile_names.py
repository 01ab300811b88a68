"""The generated program names values as the trace tables do: forward values v1, v2, ... and the
adjoint of v_k, where the backward program computes it, g_vk, holding the table's number."""
import math
import re

import numpy as np
import pytest

import chainrule as cr
from chainrule.modes.compile import Lit, Var


def quiz(x, z):
    """The lecture's quiz function, with its two shared quantities named."""
    a = x * z
    b = cr.log(x)
    return cr.exp(a) + a / b + cr.sin(b) / a


def quiz_repeating(x, z):
    """The same function with x * z and log(x) computed again where they recur."""
    return cr.exp(x * z) + x * z / cr.log(x) + cr.sin(cr.log(x)) / (x * z)


def _values(prog, args):
    """Every value of the program by name, computed equation by equation with the impls."""
    env = {v.name: a for v, a in zip(prog.invars, args)}

    def read(v):
        return env[v.name] if type(v) is Var else v.value

    for e in prog.eqns:
        env[e.out.name] = e.prim.impl(*map(read, e.ins), **e.params)
    return env


@pytest.mark.parametrize("at", [(2.0, 3.0), (1.5, -0.5)])
@pytest.mark.parametrize("floats", [True, False])
def test_adjoints_in_the_program_are_named_and_valued_as_in_the_trace_table(at, floats):
    g = cr.compile(cr.value_and_grad(quiz, argnums=(0, 1)), floats=floats)
    prog = g.program(*at)
    names = [e.out.name for e in prog.eqns]
    adjoints = [n for n in names if n.startswith("g_")]
    assert {"g_v1", "g_v2", "g_v6"} <= set(adjoints)  # the values with more than a constant adjoint
    values = _values(prog, at)
    table = cr.viz.trace(quiz, *at)
    for n in adjoints:
        assert table.adjoint(n[2:]) == pytest.approx(float(values[n]), rel=1e-12), n
    forward = [n for n in names if re.fullmatch(r"v\d+", n)]
    assert forward == [n.name for n in table.ops][:len(forward)]  # v1, v2, ... in the table's order
    for n in forward:
        assert table[n].value == pytest.approx(float(values[n]), rel=1e-12), n


def test_adjoint_names_on_arrays():
    x, z = np.array([2.0, 1.5, 3.0]), np.array([3.0, -0.5, 0.25])
    g = cr.compile(cr.grad(lambda x, z: cr.sum(quiz(x, z)), argnums=(0, 1)))
    prog = g.program(x, z)
    values = _values(prog, (x, z))
    named = [e.out.name for e in prog.eqns if e.out.name.startswith("g_")]
    assert {"g_v1", "g_v2", "g_v6"} <= set(named)
    for k in range(3):
        table = cr.viz.trace(quiz, x[k], z[k])
        for n in named:
            if n[2:] in table:
                assert table.adjoint(n[2:]) == pytest.approx(values[n][k], rel=1e-12), n


def test_a_value_computed_twice_gets_no_adjoint_name_after_merging():
    """Merged copies of x * z have one value but the program sums their adjoints only at x and z:
    no line holds the merged value's adjoint, so none is named after it."""
    g = cr.compile(cr.grad(quiz_repeating, argnums=(0, 1)))
    prog = g.program(2.0, 3.0)
    named = {e.out.name for e in prog.eqns if e.out.name.startswith("g_")}
    mul = next(e.out.name for e in prog.eqns if e.prim.name == "multiply" and e.out.name.startswith("v"))
    assert f"g_{mul}" not in named
    values = _values(prog, (2.0, 3.0))
    table = cr.viz.trace(quiz_repeating, 2.0, 3.0)
    for n in named:
        assert table.adjoint(n[2:]) == pytest.approx(float(values[n]), rel=1e-12), n
    assert g(2.0, 3.0) == pytest.approx(cr.grad(quiz, argnums=(0, 1))(2.0, 3.0), rel=1e-14)


def test_source_reads_as_the_lecture_writes_it():
    src = cr.compile(cr.grad(quiz, argnums=(0, 1))).source(2.0, 3.0)
    assert "v1 = x * z" in src and re.search(r"^\s+g_v1 = ", src, re.M)
    # an argument the user called g_v1 keeps its name; the adjoint then stays g<k>
    f = cr.compile(cr.grad(lambda g_v1: cr.sin(g_v1 * g_v1)))
    src = f.source(0.5)
    assert src.count("def ") == 2 and "(g_v1):" in src
    assert math.isclose(f(0.5), 2 * 0.5 * math.cos(0.25), rel_tol=1e-14)
