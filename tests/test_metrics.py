"""Metrics against scikit-learn's (where installed) and against hand-counted cases."""
import numpy as np
import pytest

from chainrule import metrics
from chainrule.core.errors import ShapeError


def test_hand_counted():
    y, p = [0, 1, 2, 2, 1], [0, 2, 2, 2, 1]
    assert metrics.accuracy(y, p) == 0.8
    assert metrics.error_rate(y, p) == pytest.approx(0.2)
    assert metrics.confusion_matrix(y, p).tolist() == [[1, 0, 0], [0, 1, 1], [0, 0, 2]]
    assert metrics.confusion_matrix(y, p, n_classes=4).shape == (4, 4)
    # class scores are read by their argmax
    scores = np.eye(3)[[0, 2, 2, 2, 1]] * 5.0
    assert metrics.accuracy(y, scores) == 0.8


def test_regression_hand_counted():
    y, p = np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.0, 3.0, 3.0, 2.0])
    assert metrics.mean_squared_error(y, p) == pytest.approx(5 / 4)
    assert metrics.mean_absolute_error(y, p) == pytest.approx(3 / 4)
    assert metrics.r2_score(y, p) == pytest.approx(1 - 5 / 5)
    # an (n, 1) model output against (n,) targets
    assert metrics.mean_squared_error(y, p[:, None]) == pytest.approx(5 / 4)
    assert metrics.r2_score([2.0, 2.0], [2.0, 2.0]) == 1.0
    assert metrics.r2_score([2.0, 2.0], [2.0, 3.0]) == 0.0


def test_against_sklearn():
    skm = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    y, p = rng.integers(0, 5, 300), rng.integers(0, 5, 300)
    assert metrics.accuracy(y, p) == pytest.approx(skm.accuracy_score(y, p))
    assert (metrics.confusion_matrix(y, p) == skm.confusion_matrix(y, p)).all()
    t, q = rng.normal(size=(300, 3)), rng.normal(size=(300, 3))
    assert metrics.mean_squared_error(t, q) == pytest.approx(skm.mean_squared_error(t, q))
    assert metrics.mean_absolute_error(t, q) == pytest.approx(skm.mean_absolute_error(t, q))
    assert metrics.r2_score(t, q) == pytest.approx(skm.r2_score(t, q))
    assert metrics.r2_score(t[:, 0], t[:, 0] + 0.1 * q[:, 0]) == pytest.approx(skm.r2_score(t[:, 0], t[:, 0] + 0.1 * q[:, 0]))


def test_clear_errors():
    with pytest.raises(ShapeError, match="accuracy: y_true has 3 examples but y_pred has 2"):
        metrics.accuracy([0, 1, 1], [0, 1])
    with pytest.raises(ShapeError, match="no examples"):
        metrics.mean_squared_error([], [])
    with pytest.raises(ValueError, match=r"labels must be in 0\.\.1, got -1\.\.1"):
        metrics.confusion_matrix([0, 1], [-1, 1], n_classes=2)
    with pytest.raises(ValueError, match="integer class labels"):
        metrics.confusion_matrix([0.5, 1.0], [0, 1])
    with pytest.raises(ValueError, match="unknown metric 'f1'; valid names: accuracy, error_rate, mse"):
        metrics.get("f1")
    assert metrics.canonical("acc") == "accuracy"


def test_doctests():
    import doctest

    result = doctest.testmod(metrics)
    assert result.failed == 0 and result.attempted > 0
