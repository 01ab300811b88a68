"""Tests for the 2-D toy datasets and the load() registry."""
import doctest

import numpy as np
import pytest

import chainrule.data as data
from chainrule.data import DATASETS, load, toy

CLASSIFICATION = [name for name, (_, task) in DATASETS.items() if task == "classification"]
REGRESSION = [name for name, (_, task) in DATASETS.items() if task == "regression"]


def test_registry_names_and_tasks():
    assert set(CLASSIFICATION) == {"circle", "xor", "gaussians", "spiral", "moons"}
    assert set(REGRESSION) == {"plane", "multi_gaussian"}
    for name, (fn, _) in DATASETS.items():
        assert fn is getattr(data, name)


@pytest.mark.parametrize("name", sorted(DATASETS))
@pytest.mark.parametrize("n", [1, 2, 101])
def test_shapes_and_dtypes(name, n):
    fn, task = DATASETS[name]
    X, y = fn(n=n, noise=0.2, seed=3)
    assert X.shape == (n, 2) and X.dtype == np.float64
    assert y.shape == (n,)
    assert np.isfinite(X).all() and np.isfinite(y).all()
    assert np.abs(X).max() < 3
    if task == "classification":
        assert y.dtype == np.int64
        assert set(y.tolist()) <= {0, 1}
    else:
        assert y.dtype == np.float64


@pytest.mark.parametrize("name", sorted(CLASSIFICATION))
def test_classes_balanced(name):
    _, y = DATASETS[name][0](n=201, seed=0)
    if name == "xor":  # labels follow the uniformly drawn quadrant, so only roughly balanced
        assert 70 < y.sum() < 130
    else:
        assert np.bincount(y).tolist() == [100, 101]


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_same_seed_same_data_other_seed_other_data(name):
    fn = DATASETS[name][0]
    X1, y1 = fn(n=50, noise=0.1, seed=7)
    X2, y2 = fn(n=50, noise=0.1, seed=7)
    X3, _ = fn(n=50, noise=0.1, seed=8)
    assert np.array_equal(X1, X2) and np.array_equal(y1, y2)
    assert not np.array_equal(X1, X3)
    assert not np.array_equal(fn(n=50, noise=0.1)[0], fn(n=50, noise=0.1)[0])


@pytest.mark.parametrize("name", sorted(CLASSIFICATION))
def test_noise_jitters_points_but_keeps_labels(name):
    fn = DATASETS[name][0]
    X0, y0 = fn(n=4000, noise=0.0, seed=1)
    X1, y1 = fn(n=4000, noise=0.2, seed=1)
    assert np.array_equal(y0, y1)
    assert (X1 - X0).std() == pytest.approx(0.2, rel=0.05)


@pytest.mark.parametrize("name", sorted(REGRESSION))
def test_regression_noise_goes_to_target(name):
    fn = DATASETS[name][0]
    X0, y0 = fn(n=4000, noise=0.0, seed=1)
    X1, y1 = fn(n=4000, noise=0.3, seed=1)
    assert np.array_equal(X0, X1)
    assert (y1 - y0).std() == pytest.approx(0.3, rel=0.05)


def test_circle_geometry():
    X, y = data.circle(n=400, noise=0.0, seed=0)
    r = np.hypot(X[:, 0], X[:, 1])
    assert r[y == 1].max() <= 0.5
    assert r[y == 0].min() >= 0.7 and r[y == 0].max() <= 1.0


def test_xor_geometry():
    X, y = data.xor(n=400, noise=0.0, seed=0)
    assert np.array_equal(y, (X[:, 0] * X[:, 1] > 0).astype(np.int64))
    assert np.abs(X).min() >= 0.05


def test_gaussians_centres():
    X, y = data.gaussians(n=2000, noise=0.0, seed=0)
    assert np.allclose(X[y == 1].mean(axis=0), [0.5, 0.5], atol=0.03)
    assert np.allclose(X[y == 0].mean(axis=0), [-0.5, -0.5], atol=0.03)


def test_spirals_are_point_reflections_of_each_other():
    X, y = data.spiral(n=200, noise=0.0, seed=0)
    a, b = X[y == 0], -X[y == 1]
    assert np.allclose(a[np.lexsort(a.T)], b[np.lexsort(b.T)])
    radius = np.hypot(X[:, 0], X[:, 1])
    assert radius.max() == pytest.approx(1.0)


def test_moons_lie_on_their_circles():
    X, y = data.moons(n=300, noise=0.0, seed=0)
    top, bottom = X[y == 0] + [0.5, 0.25], X[y == 1] + [0.5, 0.25]
    assert np.allclose(np.hypot(*top.T), 1.0)
    assert np.allclose(np.hypot(bottom[:, 0] - 1.0, bottom[:, 1] - 0.5), 1.0)
    assert (top[:, 1] >= 0).all() and (bottom[:, 1] <= 0.5).all()


def test_plane_is_linear():
    X, y = data.plane(n=100, seed=0)
    assert np.allclose(y, 0.5 * X[:, 0] + 0.5 * X[:, 1])


def test_multi_gaussian_bump_signs():
    X, y = data.multi_gaussian(n=20000, seed=0)
    for cx, cy, sign in toy._BUMPS:
        near = np.hypot(X[:, 0] - cx, X[:, 1] - cy) < 0.05
        assert near.any()
        assert (np.sign(y[near]) == sign).all()
        assert np.abs(y[near]).min() > 0.8


@pytest.mark.parametrize("name", sorted(DATASETS))
@pytest.mark.parametrize("kw, match", [
    ({"n": 0}, "n must be a positive integer"),
    ({"n": -5}, "n must be a positive integer"),
    ({"n": 2.5}, "n must be a positive integer"),
    ({"n": True}, "n must be a positive integer"),
    ({"noise": -0.1}, "noise must be a finite number >= 0"),
    ({"noise": float("nan")}, "noise must be a finite number >= 0"),
])
def test_bad_arguments(name, kw, match):
    with pytest.raises(ValueError, match=match):
        DATASETS[name][0](**kw)


def test_load_by_name():
    X, y = load("moons", n=30, noise=0.05, seed=4)
    X2, y2 = data.moons(n=30, noise=0.05, seed=4)
    assert np.array_equal(X, X2) and np.array_equal(y, y2)
    X, y = load("digits")
    assert X.shape == (1797, 64)


def test_load_unknown_name_lists_valid_names():
    with pytest.raises(ValueError, match="unknown dataset 'mnist'; valid names: circle, digits, gaussians"):
        load("mnist")


def test_load_digits_rejects_options():
    with pytest.raises(ValueError, match=r"'digits' takes no options, got \['n'\]"):
        load("digits", n=10)


def test_doctests():
    result = doctest.testmod(toy)
    assert result.attempted > 0 and result.failed == 0
