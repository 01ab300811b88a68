"""Losses against hand-written numpy (and PyTorch when installed): values, gradients, stability, errors."""
import numpy as np
import pytest

import chainrule as cr
from chainrule.nn import functional as F

RNG = np.random.default_rng(3)
Z = RNG.normal(size=(5, 4)) * 3
LABELS = np.array([0, 3, 1, 1, 2])
BIN = (RNG.random((5, 4)) > 0.5).astype(float)


def value_and_grad(fn, z, *args, **kw):
    t = cr.tensor(z, requires_grad=True)
    out = fn(t, *args, **kw)
    out.backward()
    return out.item(), t.grad.numpy()


def np_log_softmax(z):
    m = z.max(axis=1, keepdims=True)
    return z - m - np.log(np.exp(z - m).sum(axis=1, keepdims=True))


def np_softmax(z):
    return np.exp(np_log_softmax(z))


def test_mse_matches_numpy():
    y = RNG.normal(size=Z.shape)
    v, g = value_and_grad(F.mse_loss, Z, y)
    np.testing.assert_allclose(v, np.mean((Z - y) ** 2), rtol=1e-13)
    np.testing.assert_allclose(g, 2 * (Z - y) / Z.size, rtol=1e-13)
    v, _ = value_and_grad(F.mse_loss, Z, y, reduction="sum")
    np.testing.assert_allclose(v, np.sum((Z - y) ** 2), rtol=1e-13)
    assert F.mse_loss(Z, y, reduction="none").shape == Z.shape


def test_mse_reshapes_a_target_with_as_many_entries():
    z = RNG.normal(size=(4, 1))
    y = RNG.normal(size=4)
    np.testing.assert_allclose(F.mse_loss(z, y), np.mean((z[:, 0] - y) ** 2))
    with pytest.raises(cr.ShapeError, match=r"input has shape \(4, 1\) but target has shape \(3,\)"):
        F.mse_loss(z, y[:3])


def test_bce_with_logits_matches_numpy():
    v, g = value_and_grad(F.binary_cross_entropy_with_logits, Z, BIN)
    p = 1 / (1 + np.exp(-Z))
    np.testing.assert_allclose(v, np.mean(-(BIN * np.log(p) + (1 - BIN) * np.log(1 - p))), rtol=1e-12)
    np.testing.assert_allclose(g, (p - BIN) / Z.size, rtol=1e-12)


def test_bce_on_probabilities_matches_numpy_and_clamps():
    p = 1 / (1 + np.exp(-Z))
    v, g = value_and_grad(F.binary_cross_entropy, p, BIN)
    np.testing.assert_allclose(v, np.mean(-(BIN * np.log(p) + (1 - BIN) * np.log(1 - p))), rtol=1e-12)
    np.testing.assert_allclose(g, -(BIN / p - (1 - BIN) / (1 - p)) / p.size, rtol=1e-10)
    # log(0) is clamped at -100 (PyTorch's rule): finite value and gradient at p = 0 and 1
    v, g = value_and_grad(F.binary_cross_entropy, np.array([0.0, 1.0, 0.0]), np.array([1.0, 0.0, 0.0]))
    assert v == pytest.approx(200 / 3)
    assert np.all(np.isfinite(g))
    with pytest.raises(ValueError, match=r"probabilities in \[0, 1\].*with_logits"):
        F.binary_cross_entropy(np.array([1.5]), np.array([1.0]))


def test_cross_entropy_with_labels_matches_numpy():
    v, g = value_and_grad(F.cross_entropy, Z, LABELS)
    n = len(LABELS)
    np.testing.assert_allclose(v, -np.mean(np_log_softmax(Z)[np.arange(n), LABELS]), rtol=1e-13)
    np.testing.assert_allclose(g, (np_softmax(Z) - np.eye(4)[LABELS]) / n, rtol=1e-12, atol=1e-15)
    v_sum, _ = value_and_grad(F.cross_entropy, Z, LABELS, reduction="sum")
    np.testing.assert_allclose(v_sum, v * n, rtol=1e-13)
    np.testing.assert_allclose(F.cross_entropy(Z, LABELS, reduction="none"),
                               -np_log_softmax(Z)[np.arange(n), LABELS], rtol=1e-13, atol=1e-15)


def test_cross_entropy_with_probability_targets():
    onehot = np.eye(4)[LABELS]
    np.testing.assert_allclose(F.cross_entropy(Z, onehot), F.cross_entropy(Z, LABELS), rtol=1e-13)
    soft = np_softmax(RNG.normal(size=Z.shape))
    v, g = value_and_grad(F.cross_entropy, Z, soft)
    np.testing.assert_allclose(v, -np.mean(np.sum(soft * np_log_softmax(Z), axis=1)), rtol=1e-13)
    np.testing.assert_allclose(g, (np_softmax(Z) - soft) / len(Z), rtol=1e-11, atol=1e-15)


def test_nll_loss_is_cross_entropy_of_log_softmax():
    logp = np_log_softmax(Z)
    np.testing.assert_allclose(F.nll_loss(logp, LABELS), F.cross_entropy(Z, LABELS), rtol=1e-13)


def test_float_labels_that_are_whole_numbers_are_accepted():
    np.testing.assert_allclose(F.cross_entropy(Z, LABELS.astype(float)), F.cross_entropy(Z, LABELS))
    with pytest.raises(cr.DTypeError, match="whole numbers"):
        F.cross_entropy(Z, LABELS + 0.5)


@pytest.mark.parametrize("scale", [1000.0, -1000.0])
def test_losses_stay_finite_for_huge_logits(scale):
    z = np.array([[1.0, -1.0, 0.5], [-1.0, 1.0, 0.0]]) * scale
    for fn, target in [(F.cross_entropy, np.array([1, 1])), (F.cross_entropy, np.eye(3)[[1, 1]]),
                       (F.binary_cross_entropy_with_logits, np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])),
                       (lambda z, y: F.binary_cross_entropy(cr.sigmoid(z), y), np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])),
                       (lambda z, y: F.nll_loss(cr.log_softmax(z), y), np.array([0, 2]))]:
        v, g = value_and_grad(fn, z, target)
        assert np.isfinite(v) and np.all(np.isfinite(g)), fn
    # the wrong class at logit gap 2000 costs exactly 2000 per row
    v, _ = value_and_grad(F.cross_entropy, np.array([[1000.0, -1000.0]]), np.array([1]))
    assert v == pytest.approx(2000.0)
    v, _ = value_and_grad(F.binary_cross_entropy_with_logits, np.array([scale]), np.array([0.0]))
    assert v == pytest.approx(max(scale, 0.0))


def test_label_errors_name_the_bad_label():
    with pytest.raises(ValueError, match=r"label 4 \(row 1\) is out of range for 4 classes; labels must be in 0\.\.3"):
        F.cross_entropy(Z, np.array([0, 4, 1, 1, 2]))
    with pytest.raises(ValueError, match=r"label -1 \(row 2\)"):
        F.nll_loss(Z, np.array([0, 1, -1, 1, 2]))
    with pytest.raises(cr.ShapeError, match=r"5 rows of scores but labels of shape \(4,\)"):
        F.cross_entropy(Z, LABELS[:4])
    with pytest.raises(cr.ShapeError, match=r"expected scores of shape \(n, n_classes\)"):
        F.cross_entropy(Z[0], 1)
    with pytest.raises(ValueError, match="reduction must be one of 'mean', 'sum', 'none', got 'avg'"):
        F.mse_loss(Z, Z, reduction="avg")


def test_loss_modules_and_lookup_by_name():
    for name, cls in [("mse", cr.nn.MSELoss), ("quadratic", cr.nn.MSELoss), ("bce", cr.nn.BCELoss),
                      ("bce_logits", cr.nn.BCEWithLogitsLoss), ("ce", cr.nn.CrossEntropyLoss),
                      ("cross_entropy", cr.nn.CrossEntropyLoss), ("nll", cr.nn.NLLLoss)]:
        assert type(cr.nn.loss(name)) is cls
    assert cr.nn.loss("ce", reduction="sum").reduction == "sum"
    np.testing.assert_allclose(cr.nn.CrossEntropyLoss()(Z, LABELS), F.cross_entropy(Z, LABELS))
    with pytest.raises(ValueError, match="unknown loss 'hinge'; valid names: mse, binary_cross_entropy"):
        cr.nn.loss("hinge")
    assert repr(cr.nn.MSELoss(reduction="sum")) == "MSELoss(reduction='sum')"


def test_against_pytorch():
    torch = pytest.importorskip("torch")
    tF = torch.nn.functional

    def both(ours, theirs, z, *args):
        v, g = value_and_grad(ours, z, *args)
        tz = torch.tensor(z, requires_grad=True)
        tv = theirs(tz, *[torch.tensor(a) for a in args])
        tv.backward()
        np.testing.assert_allclose(v, tv.item(), rtol=1e-12)
        np.testing.assert_allclose(g, tz.grad.numpy(), rtol=1e-10, atol=1e-15)

    y = RNG.normal(size=Z.shape)
    both(F.mse_loss, tF.mse_loss, Z, y)
    both(F.binary_cross_entropy_with_logits, tF.binary_cross_entropy_with_logits, Z, BIN)
    both(F.binary_cross_entropy, tF.binary_cross_entropy, 1 / (1 + np.exp(-Z)), BIN)
    both(F.cross_entropy, tF.cross_entropy, Z, LABELS)
    both(F.cross_entropy, tF.cross_entropy, Z, np_softmax(y))
    both(F.nll_loss, tF.nll_loss, np_log_softmax(Z), LABELS)


# ---------------------------------------------------------------- BCE at the edges (PyTorch's conventions)
EDGE_P = np.array([0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 1e-30, 0.5])
EDGE_Y = np.array([1.0, 0.0, 0.0, 1.0, 0.3, 0.3, 1.0, 1.0])


def test_bce_gradient_is_finite_at_0_and_1_with_pytorchs_formula():
    # loss: each log clamped at -100; gradient (p - y) / max(p (1 - p), 1e-12), PyTorch's
    v, g = value_and_grad(F.binary_cross_entropy, EDGE_P, EDGE_Y, reduction="sum")
    want_loss = -(EDGE_Y * np.maximum(np.log(np.maximum(EDGE_P, 1e-300)), -100)
                  + (1 - EDGE_Y) * np.maximum(np.log(np.maximum(1 - EDGE_P, 1e-300)), -100))
    assert v == pytest.approx(want_loss.sum(), rel=1e-12)
    np.testing.assert_allclose(g, (EDGE_P - EDGE_Y) / np.maximum(EDGE_P * (1 - EDGE_P), 1e-12), rtol=1e-12)
    np.testing.assert_allclose(g[:6], [-1e12, 1e12, 0.0, 0.0, -3e11, 7e11], rtol=1e-12)
    for dtype in (np.float32, np.float64):  # every mode, both dtypes: finite
        p = EDGE_P.astype(dtype)
        t = cr.tensor(p, requires_grad=True)
        out = cr.nn.BCELoss()(t, EDGE_Y)
        out.backward()
        assert out.dtype == dtype and t.grad.dtype == dtype and np.all(np.isfinite(t.grad.numpy()))
        assert float(out) == pytest.approx(want_loss.mean(), rel=1e-5)
        _, tan = cr.jvp(lambda q: F.binary_cross_entropy(q, EDGE_Y), (p,), (np.ones_like(p),))
        assert np.isfinite(tan)


def test_bce_edges_against_pytorch():
    torch = pytest.importorskip("torch")
    for dtype, tdtype, rtol in ((np.float64, torch.float64, 1e-7), (np.float32, torch.float32, 1e-6)):
        p = EDGE_P.astype(dtype)
        v, g = value_and_grad(F.binary_cross_entropy, p, EDGE_Y.astype(dtype), reduction="sum")
        tp = torch.tensor(p, requires_grad=True)
        tv = torch.nn.functional.binary_cross_entropy(tp, torch.tensor(EDGE_Y, dtype=tdtype), reduction="sum")
        tv.backward()
        # PyTorch's floor 1e-12 is a float32 constant (9.9999998e-13): 2e-8 apart in float64
        np.testing.assert_allclose(v, tv.item(), rtol=rtol)
        np.testing.assert_allclose(g, tp.grad.numpy(), rtol=rtol)


def test_bce_refuses_targets_outside_0_1():
    for bad in ([1.5], [-0.2], [np.nan]):
        with pytest.raises(ValueError, match=r"binary_cross_entropy: targets must be in \[0, 1\]"):
            F.binary_cross_entropy(np.array([0.5]), np.array(bad))
    with pytest.raises(ValueError, match=r"targets must be in \[0, 1\]"):
        cr.nn.BCELoss()(cr.tensor([0.5, 0.2], requires_grad=True), np.array([1.0, 2.0]))
