"""Reverse mode on the Tensor API: the lecture's quiz, accumulation, double backward, errors."""
import gc
import sys
import weakref

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import chainrule as cr
from chainrule.testing import check_grads
from compositions import programs, run


def quiz(x, z):
    xz = x * z
    return cr.exp(xz) + xz / cr.log(x) + cr.sin(cr.log(x)) / xz


def test_lecture_quiz_gradient():
    x = cr.tensor(2.0, requires_grad=True)
    z = cr.tensor(3.0, requires_grad=True)
    quiz(x, z).backward()
    np.testing.assert_allclose([x.grad.item(), z.grad.item()], [1208.3812151266, 809.7074792186], rtol=1e-9)


def test_gradients_accumulate_across_backward_calls():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    (x * 3).sum().backward()
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [3 + 2, 3 + 4])


def test_shared_node_sums_cotangents():
    x = cr.tensor(1.5, requires_grad=True)
    u = x * x
    y = u + cr.sin(u) + u * u
    y.backward()
    uv = 1.5 ** 2
    np.testing.assert_allclose(x.grad.item(), (1 + np.cos(uv) + 2 * uv) * 2 * 1.5)


def test_second_derivative_by_double_backward():
    x = cr.tensor(2.0, requires_grad=True)
    (x ** 3).backward(create_graph=True)
    g = x.grad
    assert g.requires_grad
    x.grad = None
    g.backward()
    assert x.grad.item() == pytest.approx(12.0)


def test_hessian_vector_product_by_double_backward():
    a = np.array([[2.0, 1.0], [1.0, 3.0]])
    x = cr.tensor([0.5, -1.0], requires_grad=True)
    f = 0.5 * cr.sum(x * (a @ x)) + cr.sum(cr.exp(x))
    f.backward(create_graph=True)
    v = np.array([1.0, 2.0])
    g = x.grad
    x.grad = None
    cr.sum(g * v).backward()
    expected = a @ v + np.exp(x.numpy()) * v
    np.testing.assert_allclose(x.grad.numpy(), expected)


def test_retain_grad_on_interior_nodes():
    x = cr.tensor(3.0, requires_grad=True)
    h = (x * 2).retain_grad()
    (h * h).backward()
    assert h.grad.item() == pytest.approx(12.0)
    assert x.grad.item() == pytest.approx(24.0)


def test_no_grad_records_nothing_and_enable_grad_restores():
    w = cr.tensor([1.0, 2.0], requires_grad=True)
    with cr.no_grad():
        y = w * 2
        assert not y.requires_grad and y.is_leaf
        with cr.enable_grad():
            assert (w * 2).requires_grad
    assert (w * 2).requires_grad


def test_plain_arrays_give_plain_numpy_results():
    out = cr.tanh(np.ones(3)) * 2
    assert type(out) is np.ndarray


def test_chain_of_a_million_operations_needs_no_recursion():
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(200)
    gc.disable()  # the collector's repeated sweeps of a million live nodes would dominate
    try:
        x = cr.tensor(1.0, requires_grad=True)
        y = x
        for _ in range(1_000_000):
            y = y * 1.0000001
        y.backward()
    finally:
        gc.enable()
        sys.setrecursionlimit(old)
    assert x.grad.item() == pytest.approx(1.0000001 ** 1_000_000, rel=1e-9)


def test_forward_values_are_freed_after_backward():
    w = cr.tensor(np.ones((50, 50)), requires_grad=True)
    h1 = cr.tanh(w @ w)
    h2 = cr.exp(h1) * h1
    refs = [weakref.ref(h1), weakref.ref(h2)]
    loss = cr.sum(h2)
    del h1, h2
    loss.backward()
    gc.collect()
    assert all(ref() is None for ref in refs)


def test_retain_graph_allows_a_second_backward():
    x = cr.tensor(2.0, requires_grad=True)
    y = x * x * x
    y.backward(retain_graph=True)
    y.backward()
    assert x.grad.item() == pytest.approx(24.0)


# ---------------------------------------------------------------- bad input
def test_shape_errors_name_the_operation_and_both_shapes():
    a = cr.tensor(np.ones((2, 3)), requires_grad=True)
    with pytest.raises(cr.ShapeError, match=r"matmul: shapes \(2, 3\) and \(4, 5\)"):
        a @ np.ones((4, 5))
    with pytest.raises(cr.ShapeError, match=r"add: .*\(2, 3\) and \(4,\)"):
        a + np.ones(4)
    with pytest.raises(cr.ShapeError, match=r"concatenate: .*\(2, 3\) and \(2, 2\).*axis=0"):
        cr.concatenate([a, np.ones((2, 2))])
    with pytest.raises(cr.ShapeError, match=r"reshape: .*\(2, 3\).*shape=\(4,\)"):
        a.reshape(4)


def test_backward_errors():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(cr.GraphError, match="shape \\(2,\\); pass `gradient=`"):
        (x * 2).backward()
    with pytest.raises(cr.GraphError, match="does not require a gradient"):
        cr.tensor([1.0]).sum().backward()
    y = (x * x).sum()
    y.backward()
    with pytest.raises(cr.GraphError, match="already released.*retain_graph=True"):
        y.backward()
    with pytest.raises(cr.GraphError, match="gradient has shape"):
        (x * 2).backward(np.ones(3))


def test_integer_data_cannot_require_grad():
    with pytest.raises(cr.DTypeError, match="floating-point.*int64"):
        cr.tensor([1, 2], requires_grad=True)
    with pytest.raises(cr.DTypeError, match="bool"):
        cr.tensor([True], requires_grad=True)


def test_in_place_change_after_save_is_caught_at_backward():
    a = cr.tensor([1.0, 2.0])
    w = cr.tensor([3.0, 4.0], requires_grad=True)
    y = (a * w).sum()
    a += 1
    with pytest.raises(cr.GraphError, match=r"input 0 of multiply .*changed in place.*version 0 -> 1"):
        y.backward()
    with pytest.raises(cr.GraphError, match="in-place"):
        w += 1
    y2 = (w * w).sum()
    with cr.no_grad():
        w -= 0.5
    with pytest.raises(cr.GraphError, match="changed in place"):
        y2.backward()


def test_anomaly_mode_names_the_operation_and_the_line():
    x = cr.tensor([1.0, 0.0], requires_grad=True)
    with cr.detect_anomaly(), np.errstate(all="ignore"):
        with pytest.raises(cr.AnomalyError, match=r"log produced a non-finite value.*test_reverse.py:\d+"):
            cr.log(x - 1.0 + np.array([1.0, 0.0]))
        y = cr.sqrt(x)  # sqrt(0) is finite, its derivative is not
        with pytest.raises(cr.AnomalyError, match=r"cotangent .*non-finite"):
            cr.sum(y * 0 + cr.sqrt(x)).backward()


# ---------------------------------------------------------------- random compositions
UNARY = [cr.tanh, cr.sin, cr.cos, cr.sigmoid, cr.softplus, lambda v: cr.exp(v * 0.3), lambda v: cr.log(v * v + 1),
         lambda v: cr.sqrt(v * v + 0.5), lambda v: v * v]
BINARY = [cr.add, cr.subtract, cr.multiply, lambda a, b: a / (b * b + 1)]


@settings(max_examples=40, deadline=None)
@given(programs(len(UNARY), len(BINARY)), st.integers(0, 2 ** 32 - 1))
def test_random_compositions_match_central_differences(program, seed):
    rng = np.random.default_rng(seed)
    x0 = rng.uniform(-1.5, 1.5, size=(3,))
    y0 = rng.uniform(-1.5, 1.5, size=(2, 1))

    def f(x, y):
        last = run(program, x, y, UNARY, BINARY)
        return cr.sum(last * last) + cr.mean(last)

    check_grads(f, x0, y0, order=2, modes=["reverse"], rtol=1e-4, atol=1e-6)


def test_backward_takes_a_list_or_number_as_the_output_cotangent():
    x = cr.tensor(np.array([1.0, 2.0], dtype=np.float32), requires_grad=True)
    (x * x).backward(gradient=[1.0, 3.0])
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 12.0])
    assert x.grad.dtype == np.float32
    s = cr.tensor(2.0, requires_grad=True)
    (s * s).backward(gradient=0.5, create_graph=True)
    assert float(s.grad) == 2.0 and isinstance(s.grad.data, (np.ndarray, np.generic))
    with pytest.raises(cr.GraphError, match=r"gradient has shape \(3,\) but the output has shape \(2,\)"):
        (x * 2).backward(gradient=[1.0, 2.0, 3.0])
