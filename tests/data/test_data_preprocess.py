"""Tests for splitting, standardizing, one-hot encoding, batching and dataset checks."""
import doctest
import json

import numpy as np
import pytest

from chainrule.data import (
    DataError, Standardizer, batches, check_dataset, one_hot, preprocess, train_test_split,
)


def numbered(n, n_classes=2):
    """Rows that name themselves (X[i] = [i, -i]) so we can see where each one went."""
    X = np.column_stack([np.arange(n), -np.arange(n)]).astype(float)
    return X, np.arange(n) % n_classes


# --- train_test_split -------------------------------------------------------------------

def test_split_sizes_partition_and_pairing():
    X, y = numbered(101)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.2, seed=0)
    assert len(X_te) == 21 and len(X_tr) == 80  # the test part rounds up
    ids = np.concatenate([X_tr[:, 0], X_te[:, 0]]).astype(int)
    assert sorted(ids.tolist()) == list(range(101))
    assert np.array_equal(y_tr, X_tr[:, 0].astype(int) % 2)
    assert np.array_equal(y_te, X_te[:, 0].astype(int) % 2)
    assert not np.array_equal(X_tr[:, 0], np.sort(X_tr[:, 0]))  # shuffled


def test_split_reproducible():
    X, y = numbered(50)
    a = train_test_split(X, y, seed=5)
    b = train_test_split(X, y, seed=5)
    c = train_test_split(X, y, seed=6)
    assert all(np.array_equal(p, q) for p, q in zip(a, b))
    assert not np.array_equal(a[1], c[1])


def test_split_integer_test_size():
    X, y = numbered(10)
    X_tr, X_te, _, _ = train_test_split(X, y, test_size=3, seed=0)
    assert (len(X_tr), len(X_te)) == (7, 3)


def test_split_stratified_keeps_class_ratios():
    X, _ = numbered(300)
    y = np.repeat([0, 1, 2], [200, 50, 50])
    for seed in range(5):
        _, _, y_tr, y_te = train_test_split(X, y, test_size=0.2, seed=seed, stratify=True)
        assert np.bincount(y_te).tolist() == [40, 10, 10]
        assert np.bincount(y_tr).tolist() == [160, 40, 40]


@pytest.mark.parametrize("test_size, match", [
    (0.0, r"a fractional test_size must be in \(0, 1\)"),
    (1.0, r"a fractional test_size must be in \(0, 1\)"),
    (0, "both must be at least 1"),
    (10, "leaves 10 test and 0 training examples of 10"),
])
def test_split_bad_test_size(test_size, match):
    X, y = numbered(10)
    with pytest.raises(ValueError, match=match):
        train_test_split(X, y, test_size=test_size)


def test_split_length_mismatch():
    with pytest.raises(ValueError, match="X has 3 rows but y has 2"):
        train_test_split(np.zeros((3, 2)), np.zeros(2))


# --- Standardizer -----------------------------------------------------------------------

def test_standardizer_scales_columns():
    X = np.random.default_rng(0).normal([1.0, -3.0], [2.0, 0.5], size=(500, 2))
    s = Standardizer()
    Z = s.fit_transform(X)
    assert np.allclose(Z.mean(axis=0), 0) and np.allclose(Z.std(axis=0), 1)
    assert np.allclose(s.mean, X.mean(axis=0)) and np.allclose(s.std, X.std(axis=0))
    assert np.allclose(s.inverse_transform(Z), X)


@pytest.mark.parametrize("value", [0.0, 0.1, 7.3e5])
def test_standardizer_constant_column_is_only_centred(value):
    X = np.column_stack([np.arange(4.0), np.full(4, value)])
    s = Standardizer().fit(X)
    Z = s.transform(X)
    assert np.allclose(Z[:, 1], 0.0, atol=1e-9)
    assert np.allclose(s.transform([[0.0, value + 1.0]])[0, 1], 1.0)
    assert np.allclose(s.inverse_transform(Z), X)


def test_standardizer_json_round_trip():
    X = np.random.default_rng(1).normal(size=(20, 3))
    s = Standardizer().fit(X)
    d = json.loads(json.dumps(s.to_dict()))
    assert set(d) == {"mean", "std"} and all(isinstance(v, float) for v in d["mean"])
    assert np.array_equal(Standardizer.from_dict(d).transform(X), s.transform(X))


def test_standardizer_errors():
    with pytest.raises(RuntimeError, match="not fitted"):
        Standardizer().transform([[1.0]])
    s = Standardizer().fit(np.ones((3, 2)))
    with pytest.raises(ValueError, match=r"expected 2 columns, got shape \(3, 3\)"):
        s.transform(np.ones((3, 3)))
    with pytest.raises(DataError, match=r"Standardizer.fit: X has nan at row 1, column 0"):
        Standardizer().fit([[1.0, 2.0], [np.nan, 1.0]])
    with pytest.raises(ValueError, match="needs 'mean' and 'std' lists of equal length"):
        Standardizer.from_dict({"mean": [1.0], "std": []})


# --- one_hot ----------------------------------------------------------------------------

def test_one_hot():
    out = one_hot(np.array([2, 0, 1, 2]))
    assert out.dtype == np.float64 and out.shape == (4, 3)
    assert np.array_equal(out.argmax(axis=1), [2, 0, 1, 2]) and np.array_equal(out.sum(axis=1), np.ones(4))
    assert one_hot([1], n_classes=4).tolist() == [[0, 1, 0, 0]]
    assert one_hot(np.array([1.0, 0.0])).tolist() == [[0, 1], [1, 0]]
    assert one_hot(np.array([], dtype=np.int64), n_classes=3).shape == (0, 3)


@pytest.mark.parametrize("y, n_classes, match", [
    ([0, 3], 3, r"labels must be in 0\.\.2, got 0\.\.3"),
    ([-1, 1], None, r"labels must be in 0\.\.1, got -1\.\.1"),
    ([0.5, 1.0], None, "labels must be whole numbers"),
    ([[0, 1]], None, r"labels must be 1-D, got shape \(1, 2\)"),
])
def test_one_hot_errors(y, n_classes, match):
    with pytest.raises(ValueError, match=match):
        one_hot(np.array(y), n_classes)


# --- batches ----------------------------------------------------------------------------

def test_batches_in_order():
    out = list(batches(7, 3, shuffle=False))
    assert [b.tolist() for b in out] == [[0, 1, 2], [3, 4, 5], [6]]


def test_batches_shuffled_cover_everything_once():
    out = list(batches(103, 10, rng=0))
    assert [len(b) for b in out] == [10] * 10 + [3]
    flat = np.concatenate(out)
    assert sorted(flat.tolist()) == list(range(103))
    assert flat.tolist() != list(range(103))


def test_batches_reproducible_with_seed_or_generator():
    a = np.concatenate(list(batches(50, 8, rng=3)))
    b = np.concatenate(list(batches(50, 8, rng=np.random.default_rng(3))))
    c = np.concatenate(list(batches(50, 8, rng=4)))
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_batches_edge_cases():
    assert list(batches(0, 4)) == []
    with pytest.raises(ValueError, match="batch_size must be a positive integer, got 0"):
        next(batches(5, 0))
    with pytest.raises(ValueError, match="n must be >= 0, got -1"):
        next(batches(-1, 2))


# --- check_dataset ----------------------------------------------------------------------

def test_check_dataset_passes_good_data():
    X, y = check_dataset([[1, 2], [3, 4]], [0, 1])
    assert isinstance(X, np.ndarray) and X.shape == (2, 2) and y.tolist() == [0, 1]
    check_dataset(np.zeros((3, 2)), np.zeros((3, 4)))  # one-hot targets are fine


@pytest.mark.parametrize("X, y, match", [
    (np.zeros(3), np.zeros(3), r"train: X must be 2-D \(examples x features\), got shape \(3,\)"),
    (np.zeros((3, 2)), np.zeros(2), r"train: X has 3 rows but y has shape \(2,\)"),
    (np.zeros((0, 2)), np.zeros(0), r"train: X is empty \(shape \(0, 2\)\)"),
    (np.array([[1.0, 2.0], [3.0, np.inf], [np.nan, 0.0]]), np.zeros(3),
     "train: X has inf at row 1, column 1"),
    (np.ones((3, 2)), np.array([0.0, np.nan, 1.0]), "train: y has nan at row 1 "),
    (np.ones((2, 2)), np.array([[0.0, 1.0], [1.0, np.inf]]), "train: y has inf at row 1, column 1"),
    (np.array([["a", "b"]]), np.zeros(1), "train: X must be numeric, got dtype <U1"),
])
def test_check_dataset_errors(X, y, match):
    with pytest.raises(DataError, match=match):
        check_dataset(X, y, where="train")


def test_doctests():
    result = doctest.testmod(preprocess)
    assert result.attempted > 0 and result.failed == 0
