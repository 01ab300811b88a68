"""The course's HW5 network on tinyTrain.csv, against a numpy re-derivation of backpropagation."""
from pathlib import Path

import numpy as np
import pytest

import chainrule as cr

TINY = Path(__file__).resolve().parents[2] / ".." / "shared" / "datasets" / "cmu601" / "nn" / "tinyTrain.csv"


def sigmoid(a):
    return 1 / (1 + np.exp(-a))


def numpy_sgd_epoch(X, Y, alpha, a0, beta, b0, lr):
    """The lecture's module-by-module derivation: a = alpha x + a0, z = sigma(a),
    b = beta z + b0, yhat = softmax(b), J = -log yhat_y; then g_b = yhat - y,
    g_beta = g_b z^T, g_z = beta^T g_b, g_a = g_z * z (1 - z), g_alpha = g_a x^T."""
    losses = []
    for x, y in zip(X, Y):
        a = alpha @ x + a0
        z = sigmoid(a)
        b = beta @ z + b0
        yhat = np.exp(b - b.max()) / np.exp(b - b.max()).sum()
        losses.append(-np.log(yhat[y]))
        gb = yhat - np.eye(len(b))[y]
        gbeta, gz = np.outer(gb, z), beta.T @ gb
        ga = gz * z * (1 - z)
        galpha = np.outer(ga, x)
        alpha, a0, beta, b0 = alpha - lr * galpha, a0 - lr * ga, beta - lr * gbeta, b0 - lr * gb
    return losses, (alpha, a0, beta, b0)


@pytest.mark.skipif(not TINY.exists(), reason="course data set not available")
def test_hw5_tiny_network_matches_numpy_backprop():
    data = np.loadtxt(TINY, delimiter=",", ndmin=2)
    X, Y = data[:, 1:], data[:, 0].astype(int)
    assert X.shape == (2, 5)
    model = cr.nn.MLP(5, [4], 10, activation="sigmoid", init="zeros")
    opt = cr.optim.SGD(model.parameters(), lr=0.1)
    lossf = cr.nn.CrossEntropyLoss()
    params = (np.zeros((4, 5)), np.zeros(4), np.zeros((10, 4)), np.zeros(10))
    for epoch in range(3):
        expected, params = numpy_sgd_epoch(X, Y, *params, lr=0.1)
        for i in range(len(X)):  # batch size 1, file order
            opt.zero_grad()
            loss = lossf(model(X[i:i + 1]), Y[i:i + 1])
            loss.backward()
            opt.step()
            assert loss.item() == pytest.approx(expected[i], rel=1e-13)
        for p, q in zip(model.parameters(), params):
            np.testing.assert_allclose(p.numpy(), q, rtol=1e-12, atol=1e-15)
    # the first example's loss starts at log 10 (zero weights: a uniform softmax over 10 classes)
    assert numpy_sgd_epoch(X, Y, *(np.zeros((4, 5)), np.zeros(4), np.zeros((10, 4)), np.zeros(10)), 0.1)[0][0] \
        == pytest.approx(np.log(10))
