"""A traced training step: its gradients are the check_grads-verified ones, its update is SGD's."""
import xml.etree.ElementTree as ET
from pathlib import Path

import shutil

import numpy as np
import pytest

import chainrule as cr
from chainrule.core.errors import ShapeError
from chainrule.data import load_digits, load_file
from chainrule.modes.reverse import grads_of
from chainrule.testing import check_grads, numeric_directional
from chainrule.viz import explain_step

COURSE = Path(__file__).resolve().parents[2] / ".." / "shared" / "datasets" / "cmu601" / "nn"


def course_file(name):
    path = COURSE / name
    if not path.is_file():
        pytest.skip(f"course data not available: nn/{name}")
    return path


def loss_of(x, y, activations):
    """The network's loss as a function of its parameters, written independently of explain_step
    (a batch of one row, x W^T + b, the library's cross-entropy)."""
    xb = np.asarray(x, dtype=np.float64)[None, :]

    def f(*params):
        h = xb
        for i in range(0, len(params), 2):
            h = cr.matmul(h, cr.transpose(params[i])) + params[i + 1]
            if i // 2 < len(activations):
                h = activations[i // 2](h)
        return cr.nn.functional.cross_entropy(h, np.array([y]))

    return f


def reverse_grads(f, params):
    leaves = [cr.tensor(p, requires_grad=True) for p in params]
    out = f(*leaves)
    return [np.asarray(g) for g in grads_of(out, np.ones(()), leaves)]


def central_differences(f, params, h=1e-6):
    """Every partial derivative by central differences (float64), entry by entry."""
    grads = []
    for i, p in enumerate(params):
        g = np.zeros_like(p)
        for j in np.ndindex(p.shape):
            v = [np.zeros_like(q) for q in params]
            v[i][j] = 1.0
            g[j] = numeric_directional(f, params, np.ones(()), v, h)
        grads.append(g)
    return grads


def check_step(model, x, y, lr, activations):
    before = [p.numpy().copy() for p in model.parameters()]
    step = explain_step(model, x, y, lr=lr)
    f = loss_of(x, y, activations)
    check_grads(f, *before)  # every mode agrees with central differences along random directions
    expected = reverse_grads(f, before)
    fd = central_differences(f, before)
    names = [n for n, _ in model.named_parameters()]
    for name, b, e, d in zip(names, before, expected, fd):
        got = step.grads[name]
        assert got.shape == b.shape
        assert np.allclose(got, e, rtol=1e-10, atol=1e-14), name
        assert np.allclose(got, d, rtol=1e-6, atol=1e-9), name
        assert np.allclose(step.new_params[name], b - lr * got, rtol=0, atol=1e-15)
    for (name, p) in model.named_parameters():
        assert np.array_equal(p.numpy(), step.new_params[name])  # the model took the step
    assert step.loss == pytest.approx(float(f(*before)), rel=1e-12)
    return step


def test_course_tiny_data_one_sgd_step_per_example():
    X, y = load_file(course_file("tinyTrain.csv"))
    assert X.shape == (2, 5)
    model = cr.nn.MLP(5, [4], 10, activation="sigmoid", init="zeros")
    steps = [check_step(model, X[i], y[i], 0.1, [cr.sigmoid]) for i in range(len(y))]
    first = steps[0]
    # Zero weights: a = 0, z = 1/2, scores 0, y_hat uniform, J = log 10; no gradient reaches layer 1.
    assert np.array_equal(first.value("a"), np.zeros(4)) and np.array_equal(first.value("z"), np.full(4, 0.5))
    assert np.allclose(first.value("y_hat"), 0.1) and first.loss == pytest.approx(np.log(10))
    onehot = np.eye(10)[y[0]]
    assert np.allclose(first.grad("s"), 0.1 - onehot)
    assert np.allclose(first.grads["layers.1.weight"], np.outer(0.1 - onehot, np.full(4, 0.5)))
    assert not first.grads["layers.0.weight"].any() and not first.grad("a").any()
    # The second example sees the updated output layer, so its gradient reaches layer 1.
    second = steps[1]
    assert second.grads["layers.0.weight"][:, 3].all() and not second.grads["layers.0.weight"][:, [0, 1, 2, 4]].any()
    assert second.prediction == y[0]  # the first step moved the scores toward class y[0]


def test_deeper_network_on_digits_matches_the_models_own_gradients():
    X, y = load_digits()
    x = X[5] / 16.0
    model = cr.nn.MLP(64, [6, 5], 10, activation=["tanh", "softplus"], init="uniform", rng=3)
    before = [p.numpy().copy() for p in model.parameters()]
    out = cr.nn.functional.cross_entropy(model(x[None, :]), np.array([y[5]]))
    out.backward()
    own = {n: p.grad.numpy() for n, p in model.named_parameters()}
    step = explain_step(model, x, y[5], lr=0.5, update=False)
    for n, g in own.items():
        assert np.allclose(step.grads[n], g, rtol=1e-10, atol=1e-14), n
    assert all(np.array_equal(p.numpy(), b) for p, b in zip(model.parameters(), before))  # update=False
    assert [n for n, _ in step.forward_names] == ["a1", "z1", "a2", "z2", "s", "y_hat", "J"]
    assert [n for n, _ in step.grad_names] == ["y_hat", "s", "W3", "b3", "z2", "a2", "W2", "b2", "z1", "a1",
                                               "W1", "b1"]
    groups = {n.name: n.group for n in step.graph.nodes if n.kind != "constant"}
    assert groups["W1"] == groups["a1"] == groups["z1"] == "layer 1"
    assert groups["W3"] == groups["s"] == "output layer" and groups["J"] == "loss"


def test_step_tables_in_every_format():
    model = cr.nn.MLP(5, [4], 10, activation="sigmoid", init="uniform", rng=0)
    step = explain_step(model, np.array([0, 1, 1, 1, 0.0]), 7)
    text = str(step)
    for heading in ("Forward pass", "Backward pass", "SGD update (lr = 0.1)"):
        assert heading in text
    for row in ("dJ/ds", "dJ/dW2", "dJ/dz", "dJ/da", "dJ/dW1", "W1 new"):
        assert row in text
    root = ET.fromstring(step.render("html"))
    assert root.tag == "html" and len(list(root.iter("table"))) == 3
    assert ET.fromstring(step._repr_html_()).tag == "div"  # Jupyter gets the fragment
    assert "\\frac{\\partial J}{\\partial W_{1}}" in step.render("latex")
    assert "| dJ/dW2 |" in step.render("markdown")


def test_bad_inputs():
    model = cr.nn.MLP(5, [4], 3, activation="sigmoid", rng=0)
    with pytest.raises(ShapeError, match="expects 5 features, x has 4"):
        explain_step(model, np.zeros(4), 0)
    with pytest.raises(ShapeError, match="one example"):
        explain_step(model, np.zeros((2, 5)), 0)
    with pytest.raises(ValueError, match="label 3 is out of range for 3 classes"):
        explain_step(model, np.zeros(5), 3)
    with pytest.raises(ValueError, match="one class label"):
        explain_step(model, np.zeros(5), 1.5)
    with pytest.raises(ValueError, match="cross_entropy needs a score per class; this model has 1 output"):
        explain_step(cr.nn.LinearRegression(5), np.zeros(5), 0)
    with pytest.raises(ValueError, match="loss must be one of cross_entropy, bce_logits, mse"):
        explain_step(model, np.zeros(5), 0, loss="hinge")
    with pytest.raises(ValueError, match="bce_logits takes labels 0 or 1, got 2"):
        explain_step(cr.nn.MLP(5, [4], 1, rng=0), np.zeros(5), 2, loss="bce_logits")
    with pytest.raises(ValueError, match="with one output; this model has 3"):
        explain_step(model, np.zeros(5), 1, loss="bce_logits")
    with pytest.raises(ShapeError, match="3 output\\(s\\) but the target has 1 value"):
        explain_step(model, np.zeros(5), 0.5, loss="mse")
    with pytest.raises(TypeError, match="MLP or a Sequential"):
        explain_step(object(), np.zeros(5), 0)


def test_sequential_models_are_traced_too():
    from chainrule.nn import Linear, ReLU, Sequential

    model = Sequential(Linear(3, 4, rng=1), ReLU(), Linear(4, 2, rng=2))
    x = np.array([0.5, -1.0, 2.0])
    step = explain_step(model, x, 1, update=False)
    out = cr.nn.functional.cross_entropy(model(x[None, :]), np.array([1]))
    out.backward()
    for n, p in model.named_parameters():
        assert np.allclose(step.grads[n], p.grad.numpy(), rtol=1e-10, atol=1e-14)


def test_identity_activation_adds_no_quantity():
    model = cr.nn.MLP(3, [2], 3, activation="identity", rng=0)
    step = explain_step(model, np.ones(3), 1, update=False)
    assert [n for n, _ in step.forward_names] == ["a", "s", "y_hat", "J"]
    assert "dJ/da" in str(step) and "dJ/dz" not in str(step)


def _png_size(path):
    import struct

    data = path.read_bytes()[:24]
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def test_step_drawing_has_one_row_per_layer(tmp_path):
    model = cr.nn.MLP(64, [16, 16], 10, activation="sigmoid", init="xavier_uniform", rng=0)
    step = explain_step(model, np.random.default_rng(0).random(64), 3)
    src = step.graph.to_dot(rows=True)
    assert "rankdir=TB" in src and src.count("rank=same") == 4  # layer 1, layer 2, output layer, loss
    assert "constraint=false" in src  # the edge into the next row does not push it to the right
    if shutil.which("dot") is None:
        pytest.skip("Graphviz's dot is not installed")
    width, height = _png_size(step.draw(tmp_path / "rows.png"))
    strip_w, strip_h = _png_size(step.graph.draw(tmp_path / "strip.png"))
    assert width / height < 4 < strip_w / strip_h, ((width, height), (strip_w, strip_h))
    assert width < strip_w / 2


@pytest.mark.parametrize("loss,out,target", [("bce_logits", 1, 1), ("bce_logits", 1, 0), ("mse", 1, -0.7),
                                             ("mse", 3, [0.5, -1.0, 2.0])])
def test_bce_and_mse_steps_give_fit_s_loss_and_gradients(loss, out, target):
    """The one-output losses of the playground: explain_step's loss and every parameter's gradient
    equal those of the loss cr.fit trains with, on the same example, by reverse mode."""
    import chainrule.nn.functional as F

    model = cr.nn.MLP(4, [5, 3], out, activation="tanh", rng=2)
    x = np.random.default_rng(0).normal(size=4)
    step = explain_step(model, x, target, lr=0.1, update=False, loss=loss)
    fn = {"bce_logits": F.binary_cross_entropy_with_logits, "mse": F.mse_loss}[loss]
    t = np.atleast_1d(np.asarray(target, dtype=float))[None, :]
    params = dict(model.named_parameters())
    value, grads = cr.value_and_grad(lambda p: fn(cr.nn.functional_call(model, p, x[None, :]), t))(
        {n: p.data for n, p in params.items()})
    assert step.loss == pytest.approx(float(value), rel=1e-12)
    for short, full, old, grad, new in step.params:
        np.testing.assert_allclose(grad, grads[full], rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(new, old - 0.1 * grad, rtol=1e-14)
    if loss == "bce_logits":
        p = 1 / (1 + np.exp(-step.value("s")[0]))
        assert step.value("y_hat")[0] == pytest.approx(p) and step.prediction == int(p > 0.5)
        assert step.grad("s")[0] == pytest.approx(p - target, rel=1e-12)  # dJ/ds = y_hat - y
        assert "sigmoid(s)" in step.render("text")
    else:
        assert "y_hat" not in step.graph
        np.testing.assert_allclose(step.grad("s"), 2 * (step.value("s") - np.ravel(target)) / out, rtol=1e-12)
        assert "mean of (s - y)^2" in step.render("text")
