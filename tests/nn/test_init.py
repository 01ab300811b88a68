"""Initializers: scales from fan-in/fan-out, reproducibility, dtypes, names."""
import math

import numpy as np
import pytest

import chainrule as cr
from chainrule.nn import init


def test_fans_follow_the_out_in_layout():
    assert init.fans((3, 5)) == (5, 3)
    assert init.fans((7,)) == (7, 7)
    assert init.fans((4, 2, 3, 3)) == (18, 36)


@pytest.mark.parametrize("name, check", [
    ("uniform", lambda w, fi, fo: np.abs(w).max() <= 0.1 and np.abs(w).max() > 0.09),
    ("normal", lambda w, fi, fo: abs(w.std() - 0.1) < 0.01),
    ("xavier_uniform", lambda w, fi, fo: np.abs(w).max() <= math.sqrt(6 / (fi + fo))
     and abs(w.std() - math.sqrt(2 / (fi + fo))) < 0.05 * math.sqrt(2 / (fi + fo))),
    ("xavier_normal", lambda w, fi, fo: abs(w.std() - math.sqrt(2 / (fi + fo))) < 0.05 * math.sqrt(2 / (fi + fo))),
    ("kaiming_uniform", lambda w, fi, fo: np.abs(w).max() <= math.sqrt(6 / fi)
     and abs(w.std() - math.sqrt(2 / fi)) < 0.05 * math.sqrt(2 / fi)),
    ("kaiming_normal", lambda w, fi, fo: abs(w.std() - math.sqrt(2 / fi)) < 0.05 * math.sqrt(2 / fi)),
    ("zeros", lambda w, fi, fo: not w.any()),
])
def test_scales(name, check):
    shape = (300, 200)
    w = init.get(name)(shape, np.random.default_rng(0))
    assert w.shape == shape and w.dtype == np.float64
    assert check(w, 200, 300)
    assert abs(w.mean()) < 0.01


def test_reproducible_dtype_and_gain():
    a = init.xavier_uniform((4, 3), np.random.default_rng(1))
    b = init.xavier_uniform((4, 3), np.random.default_rng(1), dtype=np.float32)
    assert b.dtype == np.float32
    np.testing.assert_array_equal(a.astype(np.float32), b)  # float32 is float64 rounded
    c = init.xavier_uniform((4, 3), np.random.default_rng(1), gain=2.0)
    np.testing.assert_allclose(c, 2 * a)
    np.testing.assert_array_equal(init.uniform((2, 2), 5), init.uniform((2, 2), np.random.default_rng(5)))


def test_names_aliases_and_errors():
    assert init.get("glorot") is init.xavier_uniform
    assert init.get("Glorot-Normal") is init.xavier_normal
    assert init.get("he") is init.kaiming_uniform
    assert init.get("he_normal") is init.kaiming_normal
    assert init.get("random") is init.uniform
    with pytest.raises(ValueError, match="unknown initializer 'lecun'; valid names: zeros, uniform, normal"):
        init.get("lecun")
    with pytest.raises(TypeError, match="Generator"):
        init.uniform((2,), "seed")


def test_mlp_uses_the_named_initializer_and_zero_biases():
    m = cr.nn.MLP(50, [40], 30, init="uniform", rng=0)
    for layer in m.layers:
        assert np.abs(layer.weight.numpy()).max() <= 0.1
        assert not layer.bias.numpy().any()
    z = cr.nn.MLP(5, [4], 3, init="zeros")
    assert not any(p.numpy().any() for p in z.parameters())
