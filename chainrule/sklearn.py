"""scikit-learn estimators backed by chainrule networks: MLPClassifier and MLPRegressor.

They take scikit-learn's MLP parameter names, so they drop into Pipelines, ``cross_val_score`` and
grid searches, and swap with ``sklearn.neural_network`` classes without other changes.

Training and predictions run under chainrule's BLAS thread policy (``chainrule.core.threads``: one
thread for small networks); ``with chainrule.core.threads.blas_threads(threads=N):`` around a call,
or the environment variable ``CHAINRULE_THREADS``, sets another number.
"""
from __future__ import annotations

import contextlib

import numpy as np

try:
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
    from sklearn.utils.multiclass import check_classification_targets
    from sklearn.utils.validation import check_array, check_is_fitted, check_X_y
except ImportError:  # pragma: no cover - depends on the environment
    raise ImportError('chainrule.sklearn needs scikit-learn: pip install "chainrule[sklearn]"') from None

__all__ = ["MLPClassifier", "MLPRegressor"]


class _MLPBase(BaseEstimator):
    """Shared parameters and training; subclasses say how targets and outputs are read.

    Beyond scikit-learn's parameters: ``init`` (the weight initializer) and ``compile`` ("auto",
    the default, and True: each batch's forward and backward pass runs as one ``cr.compile``
    program, the same numbers as the eager step; False: eager; see ``cr.fit``)."""

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", solver="adam", alpha=1e-4,
                 batch_size="auto", learning_rate_init=1e-3, max_iter=200, momentum=0.9,
                 nesterovs_momentum=True, shuffle=True, random_state=None, tol=1e-4, n_iter_no_change=10,
                 early_stopping=False, validation_fraction=0.1, init=None, warm_start=False, verbose=False,
                 compile="auto"):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate_init = learning_rate_init
        self.max_iter = max_iter
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.init = init
        self.warm_start = warm_start
        self.verbose = verbose
        self.compile = compile  # chainrule's own: each batch's step as one cr.compile program

    # scikit-learn's name for the identity activation is "identity", for sigmoid "logistic"; both
    # are aliases chainrule knows.
    def _train(self, X, targets, n_out, loss, monitor):
        import chainrule as cr
        from chainrule.nn.training import EarlyStopping, fit

        hidden = self.hidden_layer_sizes
        hidden = [int(hidden)] if np.isscalar(hidden) else [int(h) for h in hidden]
        n = len(X)
        batch = min(200, n) if self.batch_size == "auto" else int(min(self.batch_size, n))
        seed = _seed(self.random_state)
        if not (self.warm_start and hasattr(self, "model_")) or self.model_.out_features != n_out \
                or self.model_.in_features != X.shape[1]:
            init = self.init or "xavier_uniform"  # Glorot uniform, as scikit-learn initialises
            self.model_ = cr.nn.MLP(X.shape[1], hidden, n_out, activation=self.activation, init=init, rng=seed)
            self._optimizer = self._make_optimizer(batch)
            self.history_ = None
        # scikit-learn's L2 penalty alpha/(2 batch) ||W||^2 has gradient (alpha / batch) W per step.
        # scikit-learn stops after n_iter_no_change + 1 epochs without an improvement of tol.
        stop = EarlyStopping(monitor=monitor if self.early_stopping else "loss", patience=self.n_iter_no_change + 1,
                             min_delta=self.tol, restore_best_weights=self.early_stopping)
        self.history_ = fit(self.model_, loss, X, targets, optimizer=self._optimizer, epochs=int(self.max_iter),
                            batch_size=batch, shuffle=self.shuffle, seed=seed, early_stopping=stop,
                            validation_split=self.validation_fraction if self.early_stopping else None,
                            metrics=(monitor[4:],) if self.early_stopping else (), progress=bool(self.verbose),
                            history=self.history_, compile=self.compile)
        self.loss_curve_ = list(self.history_.history["loss"])
        self.loss_ = self.loss_curve_[-1]
        self.n_iter_ = len(self.history_)
        self.n_features_in_ = X.shape[1]
        return self

    def _make_optimizer(self, batch):
        import chainrule as cr

        decay = float(self.alpha) / batch
        params = self.model_.parameters()
        if self.solver == "adam":
            return cr.optim.Adam(params, lr=self.learning_rate_init, weight_decay=decay)
        if self.solver == "sgd":
            return cr.optim.SGD(params, lr=self.learning_rate_init, momentum=self.momentum,
                                nesterov=bool(self.nesterovs_momentum and self.momentum > 0), weight_decay=decay)
        raise ValueError(f"solver must be 'adam' or 'sgd', got {self.solver!r}")

    def _outputs(self, X):
        from chainrule.core.threads import SERIAL_WORK, blas_threads, largest_product
        from chainrule.nn.training import _CHUNK, _outputs

        check_is_fitted(self, "model_")
        X = check_array(X, dtype=np.float64)
        if X.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {X.shape[1]} features, but {type(self).__name__} is expecting "
                             f"{self.n_features_in_} features as input")
        # fit applies the thread policy itself; predictions take it here, for their chunk of rows
        work = largest_product(self.model_.parameters(), min(len(X), _CHUNK))
        with blas_threads(work) if work > SERIAL_WORK else contextlib.nullcontext():
            return _outputs(self.model_, X)


def _seed(random_state):
    """None, an int or a numpy Generator as they are; a legacy RandomState gives an int seed."""
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(np.iinfo(np.int32).max))
    return random_state


class MLPClassifier(ClassifierMixin, _MLPBase):
    """A multilayer perceptron classifier trained by chainrule: softmax cross-entropy (one logistic
    output for two classes), Adam or SGD, scikit-learn's parameters and defaults.

    >>> from chainrule.sklearn import MLPClassifier
    >>> import chainrule as cr
    >>> X, y = cr.data.xor(n=200, seed=0)
    >>> clf = MLPClassifier(hidden_layer_sizes=(16,), learning_rate_init=0.01, max_iter=60, random_state=0)
    >>> clf.fit(X, y).score(X, y) > 0.95
    True
    """

    def fit(self, X, y):
        X, y = check_X_y(X, y, dtype=np.float64)
        check_classification_targets(y)
        self.classes_, index = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(f"MLPClassifier needs examples of at least 2 classes, but the data contains "
                             f"only 1 class: {self.classes_[0]!r}")
        binary = len(self.classes_) == 2
        return self._train(X, index, 1 if binary else len(self.classes_), "bce_logits" if binary else "cross_entropy",
                           "val_accuracy")

    def predict_proba(self, X):
        """Class probabilities, columns in the order of ``classes_``."""
        out = self._outputs(X)
        if len(self.classes_) == 2:
            p = 0.5 * (1.0 + np.tanh(0.5 * out[:, 0]))
            return np.column_stack([1.0 - p, p])
        z = np.exp(out - out.max(axis=1, keepdims=True))
        return z / z.sum(axis=1, keepdims=True)

    def predict_log_proba(self, X):
        return np.log(self.predict_proba(X))

    def predict(self, X):
        out = self._outputs(X)
        index = (out[:, 0] > 0).astype(np.int64) if len(self.classes_) == 2 else out.argmax(axis=1)
        return self.classes_[index]


class MLPRegressor(RegressorMixin, _MLPBase):
    """A multilayer perceptron regressor trained by chainrule on the mean squared error, with
    scikit-learn's parameters and defaults (targets are not rescaled, as there).

    >>> from chainrule.sklearn import MLPRegressor
    >>> import chainrule as cr
    >>> X, y = cr.data.plane(n=200, seed=0)
    >>> reg = MLPRegressor(hidden_layer_sizes=(), learning_rate_init=0.05, batch_size=20, max_iter=50, random_state=0)
    >>> reg.fit(X, y).score(X, y) > 0.99
    True
    """

    def fit(self, X, y):
        X, y = check_X_y(X, y, dtype=np.float64, multi_output=True, y_numeric=True)
        self._one_target = y.ndim == 1
        y = y.reshape(len(y), -1).astype(np.float64)
        return self._train(X, y, y.shape[1], "mse", "val_r2")

    def predict(self, X):
        out = self._outputs(X)
        return out[:, 0] if self._one_target else out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags

    def _more_tags(self):  # scikit-learn < 1.6
        return {"multioutput": True}
