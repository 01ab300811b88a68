"""The SGD update takes BLAS axpy (SciPy) for large arrays and numpy otherwise: both give
d - lr g, leave the gradient unchanged and keep float32 parameters float32."""
import numpy as np
import pytest

from chainrule.optim import optimizer
from chainrule.optim.optimizer import subtract_scaled


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("shape", [(3, 4), (300, 70)])
def test_subtract_scaled_matches_numpy(dtype, order, shape):
    rng = np.random.default_rng(0)
    d = np.asarray(rng.standard_normal(shape), dtype=dtype, order=order)
    g = np.asarray(rng.standard_normal(shape), dtype=dtype, order=order)
    want = d - dtype(0.1) * g
    g_before = g.copy()
    out = subtract_scaled(d, g, 0.1, np.empty_like(d))
    assert out is d and d.dtype == dtype
    np.testing.assert_allclose(d, want, rtol=1e-6 if dtype == np.float32 else 1e-14, atol=1e-7)
    np.testing.assert_array_equal(g, g_before)


def test_mixed_layouts_take_the_numpy_path(monkeypatch):
    monkeypatch.setattr(optimizer, "_blas", None)  # as before the first large update
    rng = np.random.default_rng(1)
    d = np.asfortranarray(rng.standard_normal((200, 50)))
    g = np.ascontiguousarray(rng.standard_normal((200, 50)))
    want = d - 0.5 * g
    subtract_scaled(d, g, 0.5, np.empty_like(d))
    np.testing.assert_allclose(d, want, rtol=1e-14)
    assert optimizer._blas is None  # BLAS was not even looked up


def test_blas_path_is_taken_when_scipy_is_installed(monkeypatch):
    pytest.importorskip("scipy")
    monkeypatch.setattr(optimizer, "_blas", None)
    d = np.zeros(10_000)
    subtract_scaled(d, np.ones(10_000), 0.25, np.empty_like(d))
    assert optimizer._blas  # this update looked BLAS up and found it
    np.testing.assert_array_equal(d, -0.25)
