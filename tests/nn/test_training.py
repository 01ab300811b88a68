"""cr.fit, History, callbacks, early stopping and predict: behaviour, exactness and clear errors."""
import json

import numpy as np
import pytest

import chainrule as cr
from chainrule.core.errors import ChainruleError, ShapeError
from chainrule.data import DataError
from chainrule.nn.training import (
    Callback, EarlyStopping, History, TrainingError, evaluate, hidden_outputs, predict, predict_proba,
)


def _sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def numpy_sgd_epoch(alpha, b1, beta, b2, X, y, lr):
    """Independent reference: one epoch of per-example SGD on a 1-hidden-layer sigmoid network with
    softmax cross-entropy, written out by hand (no chainrule). Updates the arrays in place."""
    for x, label in zip(X, y):
        z = _sigmoid(alpha @ x + b1)
        scores = beta @ z + b2
        p = np.exp(scores - scores.max())
        p /= p.sum()
        g_scores = p.copy()
        g_scores[label] -= 1.0
        g_z = beta.T @ g_scores
        g_a = g_z * z * (1.0 - z)
        beta -= lr * np.outer(g_scores, z)
        b2 -= lr * g_scores
        alpha -= lr * np.outer(g_a, x)
        b1 -= lr * g_a


def numpy_mean_cross_entropy(alpha, b1, beta, b2, X, y):
    scores = _sigmoid(X @ alpha.T + b1) @ beta.T + b2
    scores = scores - scores.max(axis=1, keepdims=True)
    log_p = scores - np.log(np.exp(scores).sum(axis=1, keepdims=True))
    return float(-log_p[np.arange(len(y)), y].mean())


def _weights(model):
    return [p.numpy().copy() for p in model.parameters()]


@pytest.fixture
def blobs():
    return cr.data.gaussians(n=120, seed=1)


def _mlp(seed=0, hidden=(8,), out=2, **kw):
    return cr.nn.MLP(2, list(hidden), out, rng=seed, **kw)


def test_fit_learns_and_records_history(blobs):
    X, y = blobs
    model = _mlp()
    opt = cr.optim.SGD(model.parameters(), lr=0.2, momentum=0.9)
    h = cr.fit(model, "cross_entropy", X, y, optimizer=opt, epochs=6, batch_size=16, seed=0,
               validation_split=0.25, progress=False)
    assert isinstance(h, History) and h.epochs == [1, 2, 3, 4, 5, 6]
    assert set(h.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert all(len(v) == 6 for v in h.history.values())
    assert h.history["loss"][-1] < h.history["loss"][0]
    assert h.history["accuracy"][-1] >= 0.95
    assert h.params["n_train"] == 90 and h.params["n_val"] == 30 and h.params["steps_per_epoch"] == 6
    epoch, best = h.best()
    assert best == min(h.history["val_loss"]) and h.history["val_loss"][h.epochs.index(epoch)] == best
    assert h.best("accuracy")[1] == max(h.history["accuracy"])
    assert History.from_dict(json.loads(json.dumps(h.to_dict()))).history == h.history
    assert "6 epochs" in repr(h)


def test_history_is_end_of_epoch_loss_over_the_whole_set(blobs):
    X, y = blobs
    model = _mlp(seed=3)
    opt = cr.optim.Adam(model.parameters(), lr=0.01)
    h = cr.fit(model, cr.nn.CrossEntropyLoss(), X, y, optimizer=opt, epochs=2, seed=0, progress=False)
    # Recomputed here from the final weights: the same number the history holds for the last epoch.
    logits = model(X).numpy()
    log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    assert h.history["loss"][-1] == pytest.approx(-log_p[np.arange(len(y)), y].mean(), rel=1e-12)
    assert h.history["accuracy"][-1] == np.mean(logits.argmax(1) == y)
    assert evaluate(model, "ce", X, y) == pytest.approx({"loss": h.history["loss"][-1],
                                                        "accuracy": h.history["accuracy"][-1]})


def test_batch_one_in_file_order_is_plain_sgd():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 5))
    y = rng.integers(0, 3, 30)
    model = cr.nn.MLP(5, [4], 3, activation="sigmoid", init="uniform", rng=1)
    alpha, b1, beta, b2 = (p.numpy().copy() for p in model.parameters())
    opt = cr.optim.SGD(model.parameters(), lr=0.1)
    h = cr.fit(model, "cross_entropy", X, y, optimizer=opt, epochs=2, batch_size=1, shuffle=False,
               progress=False)
    for _ in range(2):
        numpy_sgd_epoch(alpha, b1, beta, b2, X, y, lr=0.1)
    for got, want in zip(_weights(model), (alpha, b1, beta, b2)):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)
    assert h.history["loss"][-1] == pytest.approx(numpy_mean_cross_entropy(alpha, b1, beta, b2, X, y), rel=1e-12)
    assert opt.steps == 60


def test_same_seed_is_bit_identical(blobs):
    X, y = blobs
    runs = []
    for _ in range(2):
        model = _mlp(seed=5, hidden=(6, 6))
        opt = cr.optim.Adam(model.parameters(), lr=0.01)
        h = cr.fit(model, "cross_entropy", X, y, optimizer=opt, epochs=3, batch_size=7, seed=11,
                   validation_split=0.2, progress=False)
        runs.append((h.history, _weights(model)))
    assert runs[0][0] == runs[1][0]
    assert all(np.array_equal(a, b) for a, b in zip(runs[0][1], runs[1][1]))
    model = _mlp(seed=5, hidden=(6, 6))
    opt = cr.optim.Adam(model.parameters(), lr=0.01)
    other = cr.fit(model, "cross_entropy", X, y, optimizer=opt, epochs=3, batch_size=7, seed=12,
                   validation_split=0.2, progress=False)
    assert other.history != runs[0][0]  # the seed matters: it picks the split and the order


@pytest.mark.parametrize("make_opt", [lambda p: cr.optim.SGD(p, lr=0.1, momentum=0.9),
                                      lambda p: cr.optim.Adam(p, lr=0.01)], ids=["sgd-momentum", "adam"])
def test_fit_again_continues(blobs, make_opt):
    X, y = blobs
    once = _mlp(seed=2)
    h_once = cr.fit(once, "ce", X, y, optimizer=make_opt(once.parameters()), epochs=4, batch_size=10,
                    shuffle=False, progress=False)
    twice = _mlp(seed=2)
    opt = make_opt(twice.parameters())
    h = cr.fit(twice, "ce", X, y, optimizer=opt, epochs=2, batch_size=10, shuffle=False, progress=False)
    cr.fit(twice, "ce", X, y, optimizer=opt, epochs=2, batch_size=10, shuffle=False, progress=False, history=h)
    # Weights, momentum / moment estimates and the step count carry over: 2 + 2 epochs == 4 epochs.
    assert all(np.array_equal(a, b) for a, b in zip(_weights(once), _weights(twice)))
    assert h.epochs == [1, 2, 3, 4] and h.history == h_once.history


def test_regression_with_metrics():
    X, y = cr.data.plane(n=200, noise=0.01, seed=0)
    model = cr.nn.MLP(2, [], 1, rng=0)
    opt = cr.optim.SGD(model.parameters(), lr=0.1)
    h = cr.fit(model, "mse", X, y, optimizer=opt, epochs=20, batch_size=16, seed=0,
               metrics=("mse", "r2"), validation=cr.data.plane(n=50, noise=0.01, seed=1), progress=False)
    assert h.history["r2"][-1] > 0.99 and h.history["val_r2"][-1] > 0.99
    assert h.history["mse"][-1] == pytest.approx(h.history["loss"][-1])
    assert predict(model, X).shape == (200, 1)
    w = model.layers[0].weight.numpy()
    np.testing.assert_allclose(w, [[0.5, 0.5]], atol=0.02)


def test_binary_logistic_regression_uses_its_default_loss():
    X, y = cr.data.gaussians(n=100, seed=2)
    model = cr.nn.LogisticRegression(2)
    opt = cr.optim.SGD(model.parameters(), lr=0.5)
    h = cr.fit(model, None, X, y, optimizer=opt, epochs=5, seed=0, progress=False)
    assert h.params["loss"] == "bce_logits" and h.history["accuracy"][-1] > 0.95
    labels, proba = predict(model, X), predict_proba(model, X)
    assert labels.shape == (100,) and set(labels.tolist()) <= {0, 1}
    assert proba.shape == (100, 2) and np.allclose(proba.sum(1), 1)
    assert np.array_equal(labels, proba.argmax(1))


def test_predict_and_proba_follow_the_loss(blobs):
    X, y = blobs
    model = _mlp(out=3)
    logits = model(X).numpy()
    assert np.array_equal(predict(model, X), logits.argmax(1))
    p = predict_proba(model, X)
    np.testing.assert_allclose(p, np.exp(logits) / np.exp(logits).sum(1, keepdims=True), rtol=1e-12)
    assert predict(model, X[0]).shape == (1,)  # one example as a 1-D row
    with pytest.raises(TrainingError, match="no class probabilities"):
        predict_proba(model, X, loss="mse")


def test_float32_model_stays_float32(blobs):
    X, y = blobs
    model = _mlp(dtype=np.float32)
    opt = cr.optim.SGD(model.parameters(), lr=0.1)
    cr.fit(model, "ce", X, y, optimizer=opt, epochs=1, progress=False)
    assert all(p.dtype == np.float32 for p in model.parameters())


def test_hidden_outputs_are_the_layers_features():
    model = cr.nn.MLP(2, [5, 3], 2, activation="tanh", rng=0)
    X = np.random.default_rng(0).normal(size=(7, 2))
    h1, h2 = hidden_outputs(model, X)
    W1, b1, W2, b2 = (p.numpy() for p in model.parameters()[:4])
    np.testing.assert_allclose(h1, np.tanh(X @ W1.T + b1), rtol=1e-12)
    np.testing.assert_allclose(h2, np.tanh(h1 @ W2.T + b2), rtol=1e-12)


# ------------------------------------------------------------------------------ stopping
def test_nan_loss_stops_with_a_clear_message():
    X, y = cr.data.plane(n=64, seed=0)
    model = cr.nn.MLP(2, [16], 1, rng=0)
    opt = cr.optim.SGD(model.parameters(), lr=1e6)
    with np.errstate(all="ignore"), pytest.raises(TrainingError) as err:
        cr.fit(model, "mse", X * 100, y * 100, optimizer=opt, epochs=5, batch_size=8, progress=False)
    msg = str(err.value)
    assert "epoch 1, batch" in msg and "smaller learning rate" in msg
    assert isinstance(err.value, ChainruleError)


def test_early_stopping_restores_the_best_weights(blobs):
    X, y = blobs
    model = _mlp(seed=0, hidden=(32,))
    opt = cr.optim.Adam(model.parameters(), lr=0.2)  # large: the validation loss soon stops improving
    stop = EarlyStopping(patience=1)
    h = cr.fit(model, "ce", X, y, optimizer=opt, epochs=60, seed=0, validation_split=0.3,
               early_stopping=stop, progress=False)
    assert h.stopped_early == stop.stopped_epoch and len(h) < 60
    assert stop.best_epoch == h.best()[0] and stop.stopped_epoch == stop.best_epoch + 1
    Xv, yv = _validation_part(X, y)
    assert evaluate(model, "ce", Xv, yv)["loss"] == pytest.approx(stop.best, rel=1e-12)


def _validation_part(X, y):
    # The rows fit held out: the split is made by seed 0's generator, as fit makes it.
    from chainrule.data import train_test_split

    _, Xv, _, yv = train_test_split(X, y, test_size=0.3, seed=np.random.default_rng(0), stratify=True)
    return Xv, yv


def test_callbacks(blobs):
    X, y = blobs
    seen = []

    class Recorder(Callback):
        def on_train_begin(self, model, history):
            seen.append("begin")

        def on_epoch_end(self, epoch, logs):
            seen.append((epoch, sorted(logs)))

        def on_train_end(self):
            seen.append("end")

    model = _mlp()
    opt = cr.optim.SGD(model.parameters(), lr=0.1)
    h = cr.fit(model, "ce", X, y, optimizer=opt, epochs=5, progress=False,
               callbacks=[Recorder(), lambda epoch, logs: epoch == 2])
    assert h.epochs == [1, 2] and h.stopped_early == 2
    assert seen == ["begin", (1, ["accuracy", "loss"]), (2, ["accuracy", "loss"]), "end"]


def test_progress_bar_shows_epoch_loss_and_rate(blobs, capsys):
    pytest.importorskip("tqdm")
    X, y = blobs
    model = _mlp()
    opt = cr.optim.SGD(model.parameters(), lr=0.1)
    cr.fit(model, "ce", X, y, optimizer=opt, epochs=2, progress=True)
    err = capsys.readouterr().err
    assert "epoch 2/2" in err and "loss=" in err and "100%" in err
    cr.fit(model, "ce", X, y, optimizer=opt, epochs=1, progress=False)
    assert capsys.readouterr().err == ""


# ------------------------------------------------------------------------------ bad input
def _fit(X, y, model=None, **kw):
    model = model or _mlp()
    args = dict(optimizer=cr.optim.SGD(model.parameters(), lr=0.1), epochs=1, progress=False)
    args.update(kw)
    return cr.fit(model, args.pop("loss", "ce"), X, y, **args)


def test_bad_input_fails_before_training(blobs):
    X, y = blobs
    model = _mlp()
    before = _weights(model)
    with pytest.raises(DataError, match="X has 120 rows but y has shape"):
        _fit(X, y[:-1], model)
    with pytest.raises(ShapeError, match="X has 3 features but the model expects 2"):
        _fit(np.ones((120, 3)), y, model)
    with pytest.raises(TrainingError, match=r"label 2 at row \d+ is out of range.*labels must be in 0\.\.1"):
        _fit(X, np.where(np.arange(120) == 7, 2, y), model)
    with pytest.raises(TrainingError, match="integer class labels"):
        _fit(X, y + 0.5, model)
    bad = X.copy()
    bad[3, 1] = np.nan
    with pytest.raises(DataError, match="X has nan at row 3, column 1"):
        _fit(bad, y, model)
    with pytest.raises(DataError, match="X is empty"):
        _fit(np.empty((0, 2)), np.empty(0, dtype=int), model)
    with pytest.raises(TrainingError, match="batch_size must be a positive integer, got 0"):
        _fit(X, y, model, batch_size=0)
    with pytest.raises(TrainingError, match="epochs must be a positive integer"):
        _fit(X, y, model, epochs=0)
    opt = cr.optim.SGD(model.parameters(), lr=0.1)
    opt.lr = 0.0
    with pytest.raises(TrainingError, match="learning rate must be a positive number, got 0.0"):
        _fit(X, y, model, optimizer=opt)
    with pytest.raises(ValueError, match="lr"):
        cr.optim.SGD(model.parameters(), lr=-1)
    with pytest.raises(ValueError, match="unknown loss 'hinge'; valid names: mse, .*cross_entropy"):
        _fit(X, y, model, loss="hinge")
    with pytest.raises(TrainingError, match="validation_split must be a fraction"):
        _fit(X, y, model, validation_split=1.5)
    with pytest.raises(ShapeError, match="validation X has 3 features"):
        _fit(X, y, model, validation=(np.ones((4, 3)), np.zeros(4, int)))
    with pytest.raises(TrainingError, match="targets have 1 column.*3 output"):
        _fit(X, y.astype(float), cr.nn.MLP(2, [4], 3, rng=0), loss="mse")
    assert all(np.array_equal(a, b) for a, b in zip(before, _weights(model)))


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(ValueError, match="unknown activation 'relu6'; valid names: sigmoid, tanh, relu"):
        cr.nn.MLP(2, [4], 2, activation="relu6")
    with pytest.raises(ValueError, match="unknown initializer 'glorious'; valid names: zeros, uniform"):
        cr.nn.MLP(2, [4], 2, init="glorious")
    with pytest.raises(ValueError, match="unknown metric 'f1'; valid names"):
        _fit(*cr.data.xor(n=20, seed=0), metrics=("f1",))


# ------------------------------------------------------------------------------ course data (HW5)
# tests/nn/<this file> -> parents[2] is the repository root; the course data sits beside it.
COURSE_NN = __import__("pathlib").Path(__file__).resolve().parents[2] / ".." / "shared" / "datasets" / "cmu601" / "nn"


def _course(name):
    path = COURSE_NN / name
    if not path.is_file():
        pytest.skip(f"course data not available: {name}")
    return cr.data.load_csv(path, label="first", header=False)


def test_hw5_one_epoch_zero_init_matches_numpy():
    X, y = _course("smallTrain.csv")
    Xv, yv = _course("smallValidation.csv")
    model = cr.nn.MLP(128, [4], 10, activation="sigmoid", init="zeros")
    h = cr.fit(model, "cross_entropy", X, y, optimizer=cr.optim.SGD(model.parameters(), lr=0.1), epochs=1,
               batch_size=1, shuffle=False, validation=(Xv, yv), progress=False)
    alpha, b1, beta, b2 = np.zeros((4, 128)), np.zeros(4), np.zeros((10, 4)), np.zeros(10)
    numpy_sgd_epoch(alpha, b1, beta, b2, X, y, lr=0.1)
    want_train = numpy_mean_cross_entropy(alpha, b1, beta, b2, X, y)
    want_val = numpy_mean_cross_entropy(alpha, b1, beta, b2, Xv, yv)
    assert h.history["loss"] == [pytest.approx(want_train, rel=1e-12)]
    assert h.history["val_loss"] == [pytest.approx(want_val, rel=1e-12)]
    for got, want in zip(_weights(model), (alpha, b1, beta, b2)):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-15)
    # Zero init is symmetric: the four hidden units stay identical.
    assert np.ptp(alpha, axis=0).max() == 0


def test_hw5_a_few_epochs_reduce_the_error():
    X, y = _course("smallTrain.csv")
    Xv, yv = _course("smallValidation.csv")
    model = cr.nn.MLP(128, [4], 10, activation="sigmoid", init="uniform", rng=0)
    h = cr.fit(model, "cross_entropy", X, y, optimizer=cr.optim.SGD(model.parameters(), lr=0.1), epochs=3,
               batch_size=1, shuffle=False, validation=(Xv, yv), metrics=("error_rate",), progress=False)
    err, val_err = h.history["error_rate"], h.history["val_error_rate"]
    assert err[-1] < err[0] and val_err[-1] < val_err[0]
    assert h.history["loss"][-1] < h.history["loss"][0] and err[-1] < 0.9 * err[0]


def test_a_loss_of_ones_own_is_read_by_shape(blobs):
    X, y = blobs

    def quadratic(out, labels):  # named like an alias of mse, but it is the user's own
        target = cr.data.one_hot(np.asarray(labels).astype(np.int64), 2)
        return cr.sum(cr.square(cr.softmax(out) - target)) / len(target)

    model = _mlp()
    h = cr.fit(model, quadratic, X, y, optimizer=cr.optim.SGD(model.parameters(), lr=0.5), epochs=3,
               metrics=("accuracy",), progress=False)
    assert h.params["loss"] == "quadratic" and h.history["accuracy"][-1] > 0.9
    assert np.array_equal(predict(model, X), model(X).numpy().argmax(1))


def test_without_tqdm_training_runs_silently(blobs, capsys, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "tqdm", None)  # `from tqdm import tqdm` now raises ImportError
    X, y = blobs
    model = _mlp()
    h = cr.fit(model, "ce", X, y, optimizer=cr.optim.SGD(model.parameters(), lr=0.1), epochs=2, progress=True)
    assert len(h) == 2 and capsys.readouterr().err == ""


def test_doctests():
    import doctest

    from chainrule.nn import training
    from chainrule.viz import nnplots

    for module in (training, nnplots):
        if module is nnplots:
            pytest.importorskip("matplotlib")
        result = doctest.testmod(module)
        assert result.failed == 0 and result.attempted > 0, module.__name__


# --- resuming is bit-exact; the progress bar keeps its width ---------------------------------

def _resume_run(X, y):
    model = cr.nn.MLP(2, [16], 2, rng=0)
    return model, cr.optim.Adam(model.parameters(), lr=0.01)


def _fit_spiral(model, opt, X, y, epochs, history=None):
    return cr.fit(model, "cross_entropy", X, y, optimizer=opt, epochs=epochs, seed=0, validation_split=0.2,
                  progress=False, history=history)


def test_ten_plus_ten_epochs_equal_twenty_bit_for_bit(tmp_path):
    X, y = cr.data.spiral(n=200, seed=0)
    straight, opt = _resume_run(X, y)
    h20 = _fit_spiral(straight, opt, X, y, 20)

    resumed, opt = _resume_run(X, y)
    h = _fit_spiral(resumed, opt, X, y, 10)
    _fit_spiral(resumed, opt, X, y, 10, history=h)  # same seed, history continued: the shuffles continue
    assert h.history == h20.history
    for a, b in zip(straight.parameters(), resumed.parameters()):
        assert np.array_equal(a.numpy(), b.numpy())

    # ... and through a checkpoint file, into a fresh model and optimizer
    first, opt = _resume_run(X, y)
    h = _fit_spiral(first, opt, X, y, 10)
    path = tmp_path / "ckpt.safetensors"
    cr.nn.save_checkpoint(path, first, opt, extra={"history": h.to_dict()})
    model, opt = _resume_run(X, y)
    extra = cr.nn.load_checkpoint(path, model, opt)
    h = _fit_spiral(model, opt, X, y, 10, history=History.from_dict(extra["history"]))
    assert h.history == h20.history and h.epochs == list(range(1, 21))
    for a, b in zip(straight.parameters(), model.parameters()):
        assert np.array_equal(a.numpy(), b.numpy())


def test_a_different_seed_starts_a_new_stream():
    X, y = cr.data.spiral(n=200, seed=0)
    a, opt_a = _resume_run(X, y)
    h = _fit_spiral(a, opt_a, X, y, 2)
    b, opt_b = _resume_run(X, y)
    h2 = _fit_spiral(b, opt_b, X, y, 2)
    cr.fit(a, "cross_entropy", X, y, optimizer=opt_a, epochs=1, seed=0, progress=False, history=h)
    cr.fit(b, "cross_entropy", X, y, optimizer=opt_b, epochs=1, seed=5, progress=False, history=h2)
    assert not np.array_equal(a.parameters()[0].numpy(), b.parameters()[0].numpy())


def _bar_on_a_terminal(columns):
    """The last progress line fit draws on a pseudo-terminal `columns` wide, and its bar's width."""
    import fcntl
    import os
    import pty
    import re
    import struct
    import sys
    import termios
    import threading

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    chunks = []

    def drain():  # a pty holds a few KB: read while fit writes
        while True:
            try:
                data = os.read(master, 4096)
            except OSError:
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    X, y = cr.data.xor(n=400, seed=0)
    model = cr.nn.MLP(2, [8], 2, rng=0)
    tty, stderr = open(slave, "w", encoding="utf-8"), sys.stderr
    sys.stderr = tty
    try:
        cr.fit(model, "cross_entropy", X, y, optimizer=cr.optim.SGD(model.parameters(), lr=0.1), epochs=100,
               seed=0, validation_split=0.2, progress=True)
    finally:
        sys.stderr = stderr
        tty.close()
    reader.join(5)
    os.close(master)
    text = b"".join(chunks).decode("utf-8", "replace")
    last = [line for line in re.split(r"[\r\n]", text) if "epoch" in line][-1]
    return last, len(re.findall("[\u2588-\u258f]", last))


@pytest.mark.parametrize("columns", [80, 120])
def test_progress_bar_keeps_a_third_of_the_line(columns):
    pytest.importorskip("tqdm")
    pytest.importorskip("termios")
    line, width = _bar_on_a_terminal(columns)
    assert width >= columns // 3, line
    assert len(line) < columns and "epoch 100/100" in line and "loss=" in line
