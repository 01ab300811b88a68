"""The SGD update ``d -= lr g`` in numpy alone: it gives d - lr g, leaves the gradient unchanged,
keeps float32 parameters float32, and loads no second BLAS library (whose threads would spin
against numpy's)."""
import subprocess
import sys
import textwrap

import numpy as np
import pytest

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


def test_mixed_layouts():
    rng = np.random.default_rng(1)
    d = np.asfortranarray(rng.standard_normal((200, 50)))
    g = np.ascontiguousarray(rng.standard_normal((200, 50)))
    want = d - 0.5 * g
    subtract_scaled(d, g, 0.5, np.empty_like(d))
    np.testing.assert_allclose(d, want, rtol=1e-14)


def test_training_loads_one_blas_library():
    """A fresh process with SciPy installed: after SGD and Adam steps on large parameters (where
    the update once went through SciPy's axpy), numpy's BLAS is the only one loaded."""
    pytest.importorskip("scipy")
    pytest.importorskip("threadpoolctl")
    code = textwrap.dedent("""
        import numpy as np, chainrule as cr
        from threadpoolctl import threadpool_info
        before = [lib["filepath"] for lib in threadpool_info() if lib["user_api"] == "blas"]
        net = cr.nn.MLP(300, [200], 10, rng=0)
        X = np.random.default_rng(0).standard_normal((64, 300)); y = np.arange(64) % 10
        for opt in (cr.optim.SGD(net.parameters(), lr=0.1, momentum=0.9), cr.optim.Adam(net.parameters())):
            opt.zero_grad(); cr.nn.functional.cross_entropy(net(X), y).backward(); opt.step()
        after = [lib["filepath"] for lib in threadpool_info() if lib["user_api"] == "blas"]
        print(len(before), len(after), after)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    n_before, n_after, *_ = out.stdout.split(maxsplit=2)
    assert (n_before, n_after) == ("1", "1"), out.stdout
