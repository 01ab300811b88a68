"""chainrule's scikit-learn estimators: accuracy beside scikit-learn's own MLP, pipelines, the API contract."""
import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")

from sklearn.base import clone  # noqa: E402
from sklearn.exceptions import ConvergenceWarning, NotFittedError  # noqa: E402
from sklearn.model_selection import cross_val_score, train_test_split  # noqa: E402
from sklearn.neural_network import MLPClassifier as SkMLPClassifier  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

import chainrule as cr  # noqa: E402
from chainrule.sklearn import MLPClassifier, MLPRegressor  # noqa: E402


pytestmark = pytest.mark.usefixtures("one_blas_thread")


@pytest.mark.parametrize("seed", [0, 1])
def test_digits_accuracy_within_one_point_of_scikit_learn(seed):
    X, y = cr.data.load_digits()
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.3, random_state=seed, stratify=y)
    scaler = StandardScaler().fit(X_tr)
    X_tr, X_te = scaler.transform(X_tr), scaler.transform(X_te)
    # Same architecture, optimizer, batch size, L2 penalty and number of epochs.
    params = dict(hidden_layer_sizes=(64,), max_iter=50, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        theirs = SkMLPClassifier(**params).fit(X_tr, y_tr).score(X_te, y_te)
    ours = MLPClassifier(**params).fit(X_tr, y_tr).score(X_te, y_te)
    assert theirs > 0.94
    assert abs(ours - theirs) <= 0.01, (ours, theirs)


def test_pipeline_and_cross_val_score():
    X, y = cr.data.load_digits()
    X, y = X[:600], y[:600]
    pipe = make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(32,), learning_rate_init=0.01,
                                                         batch_size=32, max_iter=15, random_state=0))
    scores = cross_val_score(pipe, X, y, cv=3)
    assert scores.shape == (3,) and scores.min() > 0.8  # scikit-learn's own MLP: 0.86, 0.895, 0.84


def test_params_clone_and_set_params():
    clf = MLPClassifier(hidden_layer_sizes=(7, 5), solver="sgd", momentum=0.5)
    params = clf.get_params()
    assert params["hidden_layer_sizes"] == (7, 5) and params["solver"] == "sgd" and params["momentum"] == 0.5
    copy = clone(clf).set_params(alpha=0.1)
    assert copy.alpha == 0.1 and clf.alpha == 1e-4
    with pytest.raises(NotFittedError):
        clf.predict(np.zeros((1, 3)))


def test_binary_with_string_labels():
    X, y = cr.data.circle(n=200, seed=0)
    labels = np.array(["outside", "inside"])[y]
    clf = MLPClassifier(hidden_layer_sizes=(16,), activation="tanh", learning_rate_init=0.02, max_iter=80,
                        random_state=0).fit(X, labels)
    assert list(clf.classes_) == ["inside", "outside"] and clf.model_.out_features == 1
    proba = clf.predict_proba(X)
    assert proba.shape == (200, 2) and np.allclose(proba.sum(1), 1)
    assert np.array_equal(clf.predict(X), clf.classes_[proba.argmax(1)])
    assert clf.score(X, labels) > 0.95
    with pytest.raises(ValueError, match="X has 3 features, but MLPClassifier is expecting 2"):
        clf.predict(np.zeros((2, 3)))


def test_regressor_single_and_multi_output():
    X, y = cr.data.plane(n=200, seed=0)
    reg = MLPRegressor(hidden_layer_sizes=(), learning_rate_init=0.05, batch_size=20, max_iter=60, random_state=0).fit(X, y)
    assert reg.predict(X).shape == (200,) and reg.score(X, y) > 0.999
    Y = np.column_stack([y, -2 * y])
    reg2 = MLPRegressor(hidden_layer_sizes=(), learning_rate_init=0.05, batch_size=20, max_iter=60, random_state=0).fit(X, Y)
    assert reg2.predict(X).shape == (200, 2) and reg2.score(X, Y) > 0.99


def test_warm_start_continues_and_tol_stops():
    X, y = cr.data.moons(n=200, seed=0)
    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=5, warm_start=True, random_state=0, learning_rate_init=0.01)
    clf.fit(X, y)
    first = clf.model_
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf.fit(X, y)
    assert clf.model_ is first and clf.n_iter_ == 10 and clf.history_.epochs == list(range(1, 11))
    # a large tol: no epoch counts as an improvement, so training stops after n_iter_no_change + 1
    quick = MLPClassifier(hidden_layer_sizes=(8,), max_iter=100, tol=10.0, n_iter_no_change=2, random_state=0)
    assert quick.fit(X, y).n_iter_ == 4


def test_early_stopping_on_a_validation_fraction():
    X, y = cr.data.gaussians(n=200, seed=0)
    clf = MLPClassifier(hidden_layer_sizes=(8,), early_stopping=True, n_iter_no_change=3, max_iter=200,
                        learning_rate_init=0.05, random_state=0).fit(X, y)
    assert clf.n_iter_ < 200 and "val_accuracy" in clf.history_.history
    assert clf.score(X, y) > 0.95


@pytest.mark.parametrize("kind", ["binary", "multiclass", "regression"])
def test_compile_trains_the_same_estimator(kind):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(150, 4))
    y = {"binary": (X[:, 0] * X[:, 1] > 0).astype(int), "multiclass": np.digitize(X[:, 0] + X[:, 2], [-0.5, 0.5]),
         "regression": X @ np.array([1.0, -1.0, 0.5, 2.0])}[kind]
    make = MLPRegressor if kind == "regression" else MLPClassifier
    settings = dict(hidden_layer_sizes=(12, 6), solver="sgd", learning_rate_init=0.05, batch_size=40, max_iter=20,
                    random_state=0, tol=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        eager, compiled = make(compile=False, **settings).fit(X, y), make(compile=True, **settings).fit(X, y)
    assert compiled.get_params()["compile"] is True and clone(compiled).compile is True
    assert make().get_params()["compile"] == "auto"
    np.testing.assert_allclose(compiled.loss_curve_, eager.loss_curve_, rtol=1e-12)
    out = "predict" if kind == "regression" else "predict_proba"
    np.testing.assert_allclose(getattr(compiled, out)(X), getattr(eager, out)(X), rtol=1e-10, atol=1e-12)


def test_scikit_learn_estimator_checks():
    from sklearn.utils.estimator_checks import check_estimator

    # Every check of scikit-learn's estimator contract (API, input validation, cloning, fitting
    # scores) with settings that train in a fraction of a second.
    settings = dict(hidden_layer_sizes=(8,), learning_rate_init=0.03, max_iter=50, random_state=0)
    for est in (MLPClassifier(**settings), MLPRegressor(**settings), MLPClassifier(compile=False, **settings),
                MLPRegressor(compile=False, **settings)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            results = check_estimator(est, on_fail=None)
        failed = [(r["check_name"], str(r["exception"])[:200]) for r in results if r["status"] == "failed"]
        assert failed == [], failed


def test_doctests():
    import doctest

    import chainrule.sklearn

    result = doctest.testmod(chainrule.sklearn)
    assert result.failed == 0 and result.attempted > 0
