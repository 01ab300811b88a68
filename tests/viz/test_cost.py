"""cr.cost: operation counts, saved memory, and the per-method pass counts."""
import xml.etree.ElementTree as ET

import numpy as np
import pytest

import chainrule as cr
from chainrule.core import tensor as tensor_module
from chainrule.modes.reverse import grads_of


def quiz(x, z):
    return cr.exp(x * z) + x * z / cr.log(x) + cr.sin(cr.log(x)) / (x * z)


def test_counts_for_a_small_function():
    c = cr.cost(lambda x: cr.sum(cr.tanh(x) * x), np.ones(100))
    assert c.ops == 3 and c.op_counts == {"tanh": 1, "multiply": 1, "sum": 1}
    # x, tanh(x), tanh(x) * x (100 float64 each) and the sum (one float64)
    assert c.saved_arrays == 4 and c.saved_bytes == 3 * 800 + 8
    # backward: broadcast the sum's cotangent (1); the product's two rules (2);
    # tanh's rule g * (1 - ans * ans) (3); x is used twice, so one add (1)
    assert c.backward_ops == 7
    # tangents: tanh's rule (3), the product's two rules and their sum (3), the sum's rule (1)
    assert c.tangent_ops == 7
    rows = {r["method"]: r for r in c.methods()}
    assert rows["finite differences (forward)"]["jacobian_passes"] == 101
    assert rows["finite differences (central)"]["gradient_passes"] == 200
    assert rows["forward mode"]["gradient_passes"] == 100
    assert rows["reverse mode"]["gradient_passes"] == 1
    assert rows["reverse mode"]["gradient_ops"] == 3 + 7


def test_backward_count_equals_the_operations_reverse_mode_records():
    c = cr.cost(quiz, 2.0, 3.0)
    x = cr.tensor(2.0, requires_grad=True)
    z = cr.tensor(3.0, requires_grad=True)
    out = quiz(x, z)
    before = next(tensor_module._sequence)
    grads_of(out, cr.tensor(1.0, requires_grad=True), [x, z], create_graph=True)
    recorded = next(tensor_module._sequence) - before - 1
    assert c.backward_ops == recorded
    assert c.ops == 11 and c.n_inputs == 2 and c.n_outputs == 1


def test_jacobian_passes_follow_inputs_and_outputs():
    a = np.arange(15.0).reshape(5, 3) / 10
    c = cr.cost(lambda x: cr.tanh(cr.matmul(a, x)), np.ones(3))
    assert (c.n_inputs, c.n_outputs) == (3, 5)
    rows = {r["method"]: r for r in c.methods()}
    assert rows["forward mode"]["jacobian_passes"] == 3
    assert rows["reverse mode"]["jacobian_passes"] == 5
    assert rows["reverse mode"]["jacobian_ops"] == c.ops + 5 * c.backward_ops


@pytest.mark.parametrize("fmt", ["text", "markdown", "latex", "html"])
def test_report_renders(fmt):
    c = cr.cost(quiz, 2.0, 3.0)
    out = c.render(fmt)
    assert "11" in out
    if fmt == "html":
        assert len(ET.fromstring(out).findall("table")) == 1
    if fmt == "text":
        assert str(c) == out and "reverse mode" in out and "Jacobian (1x2)" in out
