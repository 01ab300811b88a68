"""Linear, Sequential, activations, MLP and the one-layer models: shapes, dtypes, errors, gradients."""
import numpy as np
import pytest

import chainrule as cr
from chainrule.nn import MLP, Linear, functional_call
from chainrule.nn import functional as F
from chainrule.testing import check_grads

RNG = np.random.default_rng(42)
X = RNG.normal(size=(6, 3))


def params_check(model, loss, x, target, order=1):
    """check_grads of loss(model(x), target) with respect to every parameter, all modes."""
    names = [n for n, _ in model.named_parameters()]

    def f(*ps):
        return loss(functional_call(model, dict(zip(names, ps)), x), target)

    check_grads(f, *[p.numpy() for p in model.parameters()], order=order)


def test_linear_layout_and_forward():
    lin = Linear(3, 2, rng=0)
    assert lin.weight.shape == (2, 3) and lin.bias.shape == (2,)
    np.testing.assert_array_equal(lin.bias.numpy(), 0)
    W = lin.weight.numpy()
    np.testing.assert_allclose(lin(X).numpy(), X @ W.T)
    assert Linear(3, 2, bias=False, rng=0).bias is None
    with pytest.raises(cr.ShapeError, match=r"Linear\(3, 2\) expects 3 input features, got X with 4 columns"):
        lin(np.ones((2, 4)))
    with pytest.raises(ValueError, match="in_features must be a positive integer"):
        Linear(0, 2)


def test_sequential_composes_and_round_trips_config():
    seq = cr.nn.Sequential(Linear(3, 4, rng=0), cr.nn.LeakyReLU(0.2), Linear(4, 1, rng=1))
    h = X @ seq[0].weight.numpy().T
    h = np.where(h > 0, h, 0.2 * h)
    np.testing.assert_allclose(seq(X).numpy(), h @ seq[2].weight.numpy().T)
    rebuilt = cr.nn.from_config(seq.config())
    assert rebuilt.config() == seq.config()
    with pytest.raises(TypeError, match="item 1 is a str"):
        cr.nn.Sequential(Linear(1, 1), "relu")


@pytest.mark.parametrize("name, fn", [
    ("sigmoid", lambda x: 1 / (1 + np.exp(-x))), ("tanh", np.tanh), ("relu", lambda x: np.maximum(x, 0)),
    ("leaky_relu", lambda x: np.where(x > 0, x, 0.01 * x)), ("softplus", lambda x: np.log1p(np.exp(x))),
    ("identity", lambda x: x),
])
def test_activations_by_name(name, fn):
    act = cr.nn.activation(name)
    np.testing.assert_allclose(act(X).numpy() if isinstance(act(X), cr.Tensor) else act(X), fn(X), rtol=1e-12)
    t = cr.tensor(X, requires_grad=True)
    out = act(t)
    if isinstance(out, cr.Tensor) and out.requires_grad:
        check_grads(lambda x: cr.sum(act(x) * x), X + 0.05)  # away from the kink at 0


def test_activation_names_and_errors():
    assert isinstance(cr.nn.activation("Leaky-ReLU"), cr.nn.LeakyReLU)
    assert isinstance(cr.nn.activation("logistic"), cr.nn.Sigmoid)
    with pytest.raises(ValueError, match="unknown activation 'swish'; valid names: sigmoid, tanh, relu"):
        cr.nn.activation("swish")
    with pytest.raises(ValueError, match="negative_slope"):
        cr.nn.LeakyReLU(-1)


def test_leaky_relu_derivative_at_zero_is_the_slope():
    x = cr.tensor([0.0, -1.0, 2.0], requires_grad=True)
    cr.nn.LeakyReLU(0.1)(x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [0.1, 0.1, 1.0])


def test_mlp_structure_and_forward_matches_numpy():
    m = MLP(3, [5, 4], 2, activation=["tanh", "relu"], rng=0)
    assert [type(a).__name__ for a in m.activations] == ["Tanh", "ReLU"]
    assert [l.weight.shape for l in m.layers] == [(5, 3), (4, 5), (2, 4)]
    Ws = [(l.weight.numpy(), l.bias.numpy()) for l in m.layers]
    h = np.tanh(X @ Ws[0][0].T + Ws[0][1])
    h = np.maximum(h @ Ws[1][0].T + Ws[1][1], 0)
    np.testing.assert_allclose(m(X).numpy(), h @ Ws[2][0].T + Ws[2][1], rtol=1e-12)
    assert m(cr.tensor(X)).shape == (6, 2)
    assert m(X.tolist()).shape == (6, 2)
    one = MLP(3, [], 2, rng=0)
    assert len(one.layers) == 1 and one.activations == []


def test_mlp_rng_reproducible_and_seed_or_generator():
    a, b = MLP(3, [4], 2, rng=7), MLP(3, [4], 2, rng=np.random.default_rng(7))
    for p, q in zip(a.parameters(), b.parameters()):
        np.testing.assert_array_equal(p.numpy(), q.numpy())
    c = MLP(3, [4], 2, rng=8)
    assert not np.array_equal(a.layers[0].weight.numpy(), c.layers[0].weight.numpy())


def test_mlp_errors_are_clear():
    m = MLP(64, [8], 10, rng=0)
    with pytest.raises(cr.ShapeError, match="MLP expects 64 input features, got X with 10 columns"):
        m(np.zeros((3, 10)))
    with pytest.raises(cr.ShapeError, match=r"got X of shape \(\)"):
        m(np.float64(1.0))
    with pytest.raises(ValueError, match="unknown initializer 'glorious'; valid names: zeros, uniform"):
        MLP(2, [3], 1, init="glorious")
    with pytest.raises(ValueError, match="2 activations given for 1 hidden layers"):
        MLP(2, [3], 1, activation=["relu", "tanh"])
    with pytest.raises(ValueError, match="hidden width"):
        MLP(2, [3, 0], 1)
    with pytest.raises(cr.DTypeError, match="float32 or float64"):
        MLP(2, [3], 1, dtype=np.int32)
    with pytest.raises(cr.DTypeError, match="numeric input"):
        m(np.array([["a"] * 64]))


def test_float32_model_stays_float32_end_to_end():
    m = MLP(3, [4], 3, rng=0, dtype=np.float32)
    assert all(p.dtype == np.float32 for p in m.parameters())
    out = m(X)  # float64 input is cast to the model's dtype
    assert out.dtype == np.float32
    for loss, target in [(F.cross_entropy, np.array([0, 1, 2, 0, 1, 2])), (F.mse_loss, np.ones((6, 3))),
                         (F.binary_cross_entropy_with_logits, np.ones((6, 3)))]:
        m.zero_grad()
        value = loss(m(X), target)
        assert value.dtype == np.float32
        value.backward()
        assert all(p.grad.dtype == np.float32 for p in m.parameters())
    opt = cr.optim.SGD(m.parameters(), lr=0.1, momentum=0.9)
    opt.step()
    assert all(p.dtype == np.float32 for p in m.parameters())


def test_one_layer_models():
    for model, out in [(cr.nn.LinearRegression(3), 1), (cr.nn.LogisticRegression(3), 1),
                       (cr.nn.SoftmaxRegression(3, 4), 4)]:
        assert model(X).shape == (6, out)
        assert len(model.layers) == 1
        np.testing.assert_array_equal(model.layers[0].weight.numpy(), 0)  # start at zero
        assert cr.nn.from_config(model.config()).config() == model.config()
    assert cr.nn.SoftmaxRegression(3, 4).n_classes == 4
    assert cr.nn.LogisticRegression(3).default_loss == "bce_logits"
    assert cr.nn.LogisticRegression(3, init="uniform", rng=0).layers[0].weight.numpy().any()


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu", "leaky_relu", "softplus", "identity"])
def test_mlp_gradients_each_activation(activation):
    m = MLP(3, [4, 3], 2, activation=activation, rng=1)
    params_check(m, F.mse_loss, X, RNG.normal(size=(6, 2)))


@pytest.mark.parametrize("loss, target", [
    (F.mse_loss, RNG.normal(size=(6, 3))),
    (F.binary_cross_entropy_with_logits, (RNG.random((6, 3)) > 0.5).astype(float)),
    (F.cross_entropy, np.array([0, 2, 1, 1, 0, 2])),
    (F.cross_entropy, np.eye(3)[[0, 2, 1, 1, 0, 2]] * 0.8 + 0.2 / 3),
    (lambda z, y: F.nll_loss(cr.log_softmax(z), y), np.array([0, 2, 1, 1, 0, 2])),
    (lambda z, y: F.binary_cross_entropy(cr.sigmoid(z), y), (RNG.random((6, 3)) > 0.5).astype(float)),
])
def test_mlp_gradients_each_loss(loss, target):
    params_check(MLP(3, [4], 3, activation="tanh", rng=2), loss, X, target)


def test_mlp_second_order_gradients():
    params_check(MLP(3, [3], 2, activation="tanh", rng=3), F.cross_entropy, X, np.array([0, 1, 1, 0, 1, 0]), order=2)


@pytest.mark.parametrize("model, loss, target", [
    (cr.nn.LinearRegression(3, init="uniform", rng=0), F.mse_loss, RNG.normal(size=6)),
    (cr.nn.LogisticRegression(3, init="uniform", rng=0), F.binary_cross_entropy_with_logits,
     np.array([0, 1, 1, 0, 1, 0])),
    (cr.nn.SoftmaxRegression(3, 4, init="uniform", rng=0), F.cross_entropy, np.array([0, 1, 3, 2, 1, 0])),
])
def test_one_layer_model_gradients(model, loss, target):
    params_check(model, loss, X, target)


def test_gradient_with_respect_to_the_input():
    m = MLP(3, [4], 2, activation="softplus", rng=4)
    check_grads(lambda x: F.cross_entropy(m(x), np.array([0, 1, 1, 0, 1, 0])), X)
