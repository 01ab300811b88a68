"""The fast paths of the core keep numpy's results: operators on numpy scalars, the scalar seed,
and the cotangent of a full sum."""
import warnings

import numpy as np
import pytest

import chainrule as cr
from chainrule.core.registry import REGISTRY

ARITHMETIC = ["add", "subtract", "multiply", "divide"]


@pytest.mark.parametrize("name", ARITHMETIC)
@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int64])
def test_operator_path_matches_the_ufunc_bit_for_bit(name, dtype):
    prim = REGISTRY[name]
    assert prim.operator is not None
    rng = np.random.default_rng(0)
    a = (rng.standard_normal(7) * 10).astype(dtype)
    b = (rng.standard_normal(7) * 10 + 20).astype(dtype)
    pairs = [(a, b), (a[0], b[0]), (a, b[1]), (a[2], b), (a[3], 2.5), (3, b[4]), (np.array(a[5]), b[5])]
    for x, y in pairs:
        got, want = prim.op(x, y), prim.impl(x, y)
        assert type(got) is type(want)
        assert np.asarray(got).dtype == np.asarray(want).dtype
        np.testing.assert_array_equal(got, want)


def test_python_numbers_and_lists_still_go_through_numpy():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        out = cr.divide(1.0, 0.0)  # Python's 1.0 / 0.0 would raise ZeroDivisionError
    assert out == np.inf and isinstance(out, np.floating)
    np.testing.assert_array_equal(cr.multiply([1, 2], np.int64(3)), [3, 6])  # not list repetition
    np.testing.assert_array_equal(cr.tensor(2) * [1, 2], [2, 4])
    assert type(cr.negative(np.float32(2))) is np.float32


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("name", ["exp", "log", "sin", "cos", "tanh", "sqrt", "abs", "negative"])
def test_python_floats_take_math_with_numpys_edge_values(name):
    """On a Python float, a primitive with a ``scalar`` form computes with math (a float back,
    within an ulp of the ufunc); where math refuses, the ufunc's inf or nan comes back."""
    prim = REGISTRY[name]
    assert prim.scalar is not None
    for x in [0.3, 2.0, -1.5, 7.25, 1e-300]:
        got = prim.op(x)
        if type(got) is float:
            np.testing.assert_allclose(got, prim.impl(x), rtol=2e-16, atol=0)
        else:  # math refused (log or sqrt of a negative number): numpy's nan
            assert np.isnan(got) and np.isnan(prim.impl(x))
    for x in [0.0, -0.0, 1000.0, -1000.0, np.inf, -np.inf, np.nan]:
        np.testing.assert_array_equal(prim.op(float(x)), prim.impl(x))


@pytest.mark.parametrize("name", ARITHMETIC)
def test_python_float_arithmetic_is_numpys_bit_for_bit(name):
    prim = REGISTRY[name]
    rng = np.random.default_rng(1)
    for x, y in zip(rng.standard_normal(20) * 1e3, rng.standard_normal(20)):
        got = prim.op(float(x), float(y))
        assert type(got) is float and got == prim.impl(x, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for x, y in [(1.0, 0.0), (-1.0, 0.0), (0.0, 0.0), (1e308, 1e308), (np.inf, np.inf), (2.0, 3)]:
            np.testing.assert_array_equal(prim.op(x, y), prim.impl(x, y))


def test_float32_stays_float32_through_the_scalar_seed():
    w = cr.tensor(np.ones(3, np.float32), requires_grad=True)
    loss = cr.sum(cr.tanh(w * 2.0))
    loss.backward()
    assert w.grad.dtype == np.float32
    np.testing.assert_allclose(w.grad.numpy(), 2 * (1 - np.tanh(2.0) ** 2), rtol=1e-6)


def test_backward_of_a_leaf_and_of_an_identity_rule():
    x = cr.tensor(3.0, requires_grad=True)
    x.backward()
    assert x.grad.item() == 1.0
    a = cr.tensor(1.0, requires_grad=True)
    b = cr.tensor(2.0, requires_grad=True)
    (a + b).backward()
    (a + b).backward()  # accumulation onto the seed-shaped gradient
    assert a.grad.item() == 2.0 and b.grad.item() == 2.0


def test_sum_cotangent_is_a_writable_array_of_the_input_shape():
    x = cr.tensor(np.ones((2, 3)), requires_grad=True)
    cr.sum(x).backward()
    assert x.grad.shape == (2, 3) and x.grad.data.flags.writeable
    x.grad.data[0, 0] = 7.0  # one entry, not a broadcast view of a single number
    assert x.grad.data[1, 2] == 1.0


def test_scalar_quiz_gives_the_lecture_gradient_through_the_operator_path():
    x = cr.tensor(2.0, requires_grad=True)
    z = cr.tensor(3.0, requires_grad=True)
    xz = x * z
    y = cr.exp(xz) + xz / cr.log(x) + cr.sin(cr.log(x)) / xz
    y.backward()
    np.testing.assert_allclose([x.grad.item(), z.grad.item()], [1208.3812151266, 809.7074792186], rtol=1e-9)
    assert isinstance(x.grad.data, (np.ndarray, np.generic))
