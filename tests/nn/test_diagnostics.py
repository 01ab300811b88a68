"""fit(..., diagnostics=True): per-layer records checked against a hand computation, and the
warning that names the layer where gradients vanish."""
import warnings

import numpy as np
import pytest

import chainrule as cr
from chainrule.nn.diagnostics import Diagnostics, check_gradients, layer_records
from chainrule.nn.training import History, hidden_outputs

KEYS = {"epoch", "layer", "grad_norm", "weight_norm", "update_ratio", "saturated", "dead"}


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _hand_grads(W1, b1, W2, b2, X, y):
    """d/dW of J = mean (y_hat - y)^2 for y_hat = sigmoid(X W1^T + b1) W2^T + b2, by the chain rule."""
    n = len(X)
    a = X @ W1.T + b1
    z = _sigmoid(a)
    yhat = (z @ W2.T + b2).ravel()
    g_yhat = (2.0 / n) * (yhat - y)[:, None]          # dJ/dy_hat
    g_W2 = g_yhat.T @ z                               # dJ/dW2
    g_a = (g_yhat @ W2) * z * (1.0 - z)               # dJ/da through sigmoid' = z (1 - z)
    g_W1 = g_a.T @ X
    return g_W1, g_W2


def test_grad_norm_and_update_ratio_equal_a_hand_computation():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(12, 2)), rng.normal(size=12)
    net = cr.nn.MLP(2, [3], 1, activation="sigmoid", rng=1)
    start = [p.numpy().copy() for p in net.parameters()]  # W1, b1, W2, b2
    lr = 0.5
    h = cr.fit(net, "mse", X, y, optimizer=cr.optim.SGD(net.parameters(), lr=lr), epochs=1, batch_size=len(X),
               shuffle=False, progress=False, diagnostics=True)
    end = [p.numpy() for p in net.parameters()]
    rec = {r["layer"]: r for r in h.diagnostics}
    # grad_norm: the gradient of the mean loss over the whole set at the end-of-epoch weights
    g1, g2 = _hand_grads(*end, X, y)
    assert rec[1]["grad_norm"] == pytest.approx(np.linalg.norm(g1), rel=1e-10)
    assert rec[2]["grad_norm"] == pytest.approx(np.linalg.norm(g2), rel=1e-10)
    assert rec[1]["weight_norm"] == pytest.approx(np.linalg.norm(end[0]), rel=1e-12)
    # update_ratio: one full-batch step moved W by lr * gradient at the starting weights
    s1, s2 = _hand_grads(*start, X, y)
    assert rec[1]["update_ratio"] == pytest.approx(lr * np.linalg.norm(s1) / np.linalg.norm(start[0]), rel=1e-10)
    assert rec[2]["update_ratio"] == pytest.approx(lr * np.linalg.norm(s2) / np.linalg.norm(start[2]), rel=1e-10)


def test_one_record_per_epoch_and_layer_with_the_keys():
    X, y = cr.data.xor(n=60, seed=0)
    net = cr.nn.MLP(2, [5, 4], 2, activation="tanh", rng=0)
    h = cr.fit(net, "cross_entropy", X, y, optimizer=cr.optim.SGD(net.parameters(), lr=0.1), epochs=3,
               seed=0, progress=False, diagnostics=True)
    assert [(r["epoch"], r["layer"]) for r in h.diagnostics] == [(e, l) for e in (1, 2, 3) for l in (1, 2, 3)]
    assert all(KEYS <= set(r) for r in h.diagnostics)
    again = History.from_dict(h.to_dict())  # metrics.json keeps them
    assert again.diagnostics == h.diagnostics


def test_saturated_and_dead_fractions_match_the_hidden_outputs():
    X, y = cr.data.circle(n=80, seed=0)
    for act in ("sigmoid", "relu"):
        net = cr.nn.MLP(2, [6, 6], 2, activation=act, init="normal", rng=3)
        for p in net.parameters():
            p.data[...] *= 40.0  # large weights: sigmoids saturate
        net.layers[0].bias.data[:3] = -1e3  # these three ReLUs are 0 on every example: dead
        recs = layer_records(net, cr.nn.functional.cross_entropy, X, y.astype(np.int64))
        for rec, hidden in zip(recs, hidden_outputs(net, X)):
            if act == "sigmoid":
                assert rec["saturated"] == np.mean((hidden < 0.01) | (hidden > 0.99)) and rec["dead"] is None
            else:
                assert rec["dead"] == np.mean(np.all(hidden == 0, axis=0)) and rec["saturated"] is None
        assert recs[-1]["saturated"] is None and recs[-1]["dead"] is None  # the output layer has no activation
        if act == "sigmoid":
            assert min(r["saturated"] for r in recs[:-1]) > 0.1
        else:
            assert recs[0]["dead"] == 0.5


def test_records_leave_the_training_gradients_alone():
    X, y = cr.data.xor(n=20, seed=0)
    net = cr.nn.MLP(2, [4], 2, rng=0)
    cr.nn.functional.cross_entropy(net(X[:5]), y[:5].astype(np.int64)).backward()
    before = [p.grad.numpy().copy() for p in net.parameters()]
    layer_records(net, cr.nn.functional.cross_entropy, X, y.astype(np.int64))
    assert all(np.array_equal(p.grad.numpy(), b) for p, b in zip(net.parameters(), before))


def test_off_records_nothing_and_training_is_unchanged():
    X, y = cr.data.xor(n=40, seed=0)
    runs = []
    for diag in (False, True):
        net = cr.nn.MLP(2, [4], 2, rng=0)
        h = cr.fit(net, "cross_entropy", X, y, optimizer=cr.optim.SGD(net.parameters(), lr=0.1), epochs=2,
                   seed=0, progress=False, diagnostics=diag)
        runs.append((h, [p.numpy().copy() for p in net.parameters()]))
    assert runs[0][0].diagnostics == [] and len(runs[1][0].diagnostics) == 4
    assert runs[0][0].history == runs[1][0].history  # the extra pass changes nothing in training
    assert all(np.array_equal(a, b) for a, b in zip(runs[0][1], runs[1][1]))


def _deep(activation, init, seed=0):
    X, y = cr.data.circle(n=200, noise=0.05, seed=seed)
    net = cr.nn.MLP(2, [32] * 6, 2, activation=activation, init=init, rng=seed)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        h = cr.fit(net, "cross_entropy", X, y, optimizer=cr.optim.SGD(net.parameters(), lr=0.1), epochs=3,
                   seed=seed, progress=False, diagnostics=True)
    return h, [w for w in caught if issubclass(w.category, cr.TrainingWarning)]


def test_vanishing_gradients_warn_naming_the_layer():
    h, caught = _deep("sigmoid", "uniform")
    assert len(caught) == 1 and caught[0].category is cr.VanishingGradientWarning
    message = str(caught[0].message)
    assert message.startswith("epoch 1: layer 1's gradient is") and "of layer 7's" in message
    assert "sigmoid" in message and "ReLU with He initialization" in message
    assert caught[0].filename == __file__  # points at the fit call
    first = [r for r in h.diagnostics if r["epoch"] == 1]
    assert min(first, key=lambda r: r["grad_norm"])["layer"] == 1


def test_a_healthy_deep_network_does_not_warn():
    _, caught = _deep("relu", "kaiming_uniform")
    assert caught == []


def test_the_rule_tells_vanishing_from_exploding_by_where_the_small_gradient_is():
    def recs(norms, act="tanh"):
        return [{"grad_norm": g, "activation": act if i < len(norms) - 1 else None, "saturated": 0.5, "dead": None}
                for i, g in enumerate(norms)]

    assert check_gradients(recs([1e-6, 1e-3, 1.0])) == (
        cr.VanishingGradientWarning, "layer 1's gradient is 1e-06 of layer 3's (1e-06 vs 1): tanh units saturate "
        "(50% of their outputs at a flat end, where the slope is near 0); try ReLU with He initialization "
        "(activation='relu', init='kaiming_uniform')")
    category, message = check_gradients(recs([1e5, 1e2, 1.0]))
    assert category is cr.ExplodingGradientWarning and message.startswith("layer 1's gradient is 1e+05 times layer 3's")
    assert check_gradients(recs([1e-3, 1e-2, 1.0])) is None  # within the default bounds
    assert check_gradients(recs([1.0, 1e-6, 1.0])) is not None  # the middle layer is the smallest
    assert check_gradients(recs([0.0, 0.0])) is None and check_gradients(recs([np.nan, 1.0])) is None


def test_a_diagnostics_object_configures_and_must_come_through_fit():
    X, y = cr.data.xor(n=300, seed=0)
    net = cr.nn.MLP(2, [4], 2, rng=0)
    opt = cr.optim.SGD(net.parameters(), lr=0.1)
    h = cr.fit(net, "cross_entropy", X, y, optimizer=opt, epochs=1, progress=False,
               diagnostics=Diagnostics(sample_size=50))
    assert len(h.diagnostics) == 2
    with pytest.raises(cr.nn.training.TrainingError, match="pass diagnostics=True"):
        cr.fit(net, "cross_entropy", X, y, optimizer=opt, epochs=1, progress=False, callbacks=[Diagnostics()])
    with pytest.raises(ValueError, match="sample_size"):
        Diagnostics(sample_size=0)
    with pytest.raises(cr.nn.training.TrainingError, match="diagnostics must be True, False or a Diagnostics"):
        cr.fit(net, "cross_entropy", X, y, optimizer=opt, epochs=1, progress=False, diagnostics="yes")


def test_sequential_models_are_walked_too():
    X, y = cr.data.xor(n=40, seed=0)
    net = cr.nn.Sequential(cr.nn.Linear(2, 4, rng=0), cr.nn.ReLU(), cr.nn.Linear(4, 2, rng=1))
    recs = layer_records(net, cr.nn.functional.cross_entropy, X, y.astype(np.int64))
    assert [(r["layer"], r["activation"]) for r in recs] == [(1, "relu"), (2, None)]
    # dead: the fraction of the 4 ReLU units that are 0 on every example, from the hidden outputs
    with cr.no_grad():
        hidden = cr.relu(net.layers[0](X)).numpy()
    assert recs[0]["dead"] == pytest.approx(np.mean(np.all(hidden == 0, axis=0)))


def test_doctests():
    import doctest

    from chainrule.nn import diagnostics

    result = doctest.testmod(diagnostics)
    assert result.failed == 0 and result.attempted > 0
