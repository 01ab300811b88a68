"""The lecture's slides as examples: each runs with --quick, prints what the slide claims, and
writes its figure (universal approximation, poll question 2, deep networks, feature engineering,
logistic regression and backpropagation as traced circuits)."""
import re

import pytest

from test_examples import EXAMPLES, figures, run_example  # noqa: F401  (the same runner as the other examples)

NAMES = ["universal_approximation", "zero_mse_regression", "deep_networks_tricks", "feature_engineering",
         "logistic_regression_circuit", "backprop_one_hidden_layer"]

pytestmark = pytest.mark.usefixtures("one_blas_thread")


def test_universal_approximation(tmp_path, capsys):
    out = run_example("universal_approximation", tmp_path, capsys)
    rows = [(int(w), float(m)) for w, m in re.findall(r"^\s*(\d+) hidden sigmoid units: training MSE ([\d.]+)", out, re.M)]
    assert [w for w, _ in rows] == [1, 3, 12]
    mses = [m for _, m in rows]
    assert all(a > b for a, b in zip(mses, mses[1:])), out  # wider fits better
    assert mses[-1] < mses[0] / 4
    assert "finding: the training MSE falls as the hidden layer grows" in out
    figures(tmp_path, out, "universal_approximation.png")


def test_zero_mse_regression(tmp_path, capsys):
    out = run_example("zero_mse_regression", tmp_path, capsys)
    rows = dict(re.findall(r"^(plane|multi_gaussian): (near-zero|not near-zero) training MSE", out, re.M))
    assert set(rows) == {"plane", "multi_gaussian"}
    assert rows["plane"] == "near-zero"
    assert re.search(r"^plane: near-zero .* with 1 hidden unit ", out, re.M)  # a linear function: one ReLU will do
    answer = int(re.search(r"^answer: one hidden layer reached near-zero training MSE on (\d) of 2 sets", out, re.M)[1])
    assert answer == sum(v == "near-zero" for v in rows.values())  # the answer says what the lines say
    figures(tmp_path, out, "plane.png", "multi_gaussian.png")


def test_deep_networks_tricks(tmp_path, capsys):
    out = run_example("deep_networks_tricks", tmp_path, capsys)
    sigmoid = re.search(r"^sigmoid \+ uniform: training accuracy ([\d.]+).*\n  warning VanishingGradientWarning: "
                        r"epoch 1: layer 1's gradient is (\S+) of layer 7's", out, re.M)
    relu = re.search(r"^relu \+ kaiming_uniform: training accuracy ([\d.]+).*\n  no warning", out, re.M)
    assert sigmoid and relu, out
    assert float(sigmoid[2]) < 1e-4
    assert float(sigmoid[1]) < 0.7 < 0.9 < float(relu[1])
    assert "finding: the deep sigmoid network stalls" in out and "ReLU with He initialization trains" in out
    figures(tmp_path, out, "diagnostics_sigmoid.png", "diagnostics_relu.png", "training_loss.png")


def test_feature_engineering(tmp_path, capsys):
    out = run_example("feature_engineering", tmp_path, capsys)
    test = dict(re.findall(r"^(.+?): training accuracy [\d.]+, test accuracy ([\d.]+)", out, re.M))
    raw = float(test["logistic regression, raw inputs"])
    hand = float(test["logistic regression, hand-made features"])
    learned = float(test["one hidden layer (8 tanh units), raw inputs"])
    assert raw < 0.7 and hand > 0.9 and learned > 0.9
    assert "both beat the raw inputs by far" in out
    figures(tmp_path, out, "decision_boundaries.png")


def test_logistic_regression_circuit(tmp_path, capsys):
    out = run_example("logistic_regression_circuit", tmp_path, capsys)
    forward, backward = out.split("Backward pass")
    for quantity in ("theta", "a", "q", "J"):
        assert re.search(rf"^{quantity}\s", forward, re.M) and re.search(rf"^{quantity}\s", backward, re.M), quantity
    assert "finding: the backward pass equals the closed form (y* - q) x" in out
    figures(tmp_path, out, "circuit.png")


def test_backprop_one_hidden_layer(tmp_path, capsys):
    out = run_example("backprop_one_hidden_layer", tmp_path, capsys)
    forward = out.split("Backward pass")[0]
    for quantity in ("alpha", "beta", "a", "z", "b", "y", "J"):
        assert re.search(rf"^{quantity}\s", forward, re.M), quantity
    agreed = re.findall(r"^\s*(\w+): value and dJ/d\w+ agree with the slide's formula", out, re.M)
    assert sorted(agreed) == sorted(["a", "z", "b", "y", "beta", "alpha"])
    assert "finding: reverse mode reproduces every forward value and adjoint of the slide" in out
    figures(tmp_path, out, "network.png")


@pytest.mark.parametrize("name", NAMES)
def test_example_is_documented(name):
    text = (EXAMPLES / f"{name}.py").read_text()
    assert text.startswith('"""') and "--out" in text and "--quick" in text
