"""cr.fit(compile=True): each batch's forward and backward pass as one compiled program gives the
eager training run's numbers, and class labels enter compiled programs as checked data."""
import numpy as np
import pytest

import chainrule as cr
from chainrule.nn.functional import cross_entropy, nll_loss
from chainrule.nn.training import CompiledStep


def _params(model):
    return [p.data.copy() for p in model.parameters()]


def _train(compile, loss, make_model, make_opt, X, y, **kw):
    model = make_model()
    opt = make_opt(model.parameters())
    h = cr.fit(model, loss, X, y, optimizer=opt, progress=False, seed=0, compile=compile, **kw)
    return h, _params(model)


def _sigmoid_net():
    return cr.nn.Sequential(cr.nn.Linear(2, 8, rng=0), cr.nn.Tanh(), cr.nn.Linear(8, 1, rng=1), cr.nn.Sigmoid())


CASES = {
    "cross_entropy-sgd-momentum": ("cross_entropy", lambda: cr.nn.MLP(2, [16, 16], 3, activation="tanh", rng=0),
                                   lambda p: cr.optim.SGD(p, lr=0.1, momentum=0.9), "spiral3"),
    "nll-adam": ("nll", lambda: cr.nn.MLP(2, [8], 2, activation="relu", rng=1),
                 lambda p: cr.optim.Adam(p, lr=0.01), "circle"),
    "bce_logits-sgd": ("bce_logits", lambda: cr.nn.MLP(2, [8, 8], 1, activation="sigmoid", rng=2),
                       lambda p: cr.optim.SGD(p, lr=0.5), "circle"),
    "bce-probabilities": ("binary_cross_entropy", _sigmoid_net, lambda p: cr.optim.SGD(p, lr=0.5), "circle"),
    "mse-regression": ("mse", lambda: cr.nn.MLP(3, [8], 1, activation="tanh", rng=3),
                       lambda p: cr.optim.SGD(p, lr=0.05, weight_decay=1e-3), "regression"),
    "loss-function": (lambda out, t: cr.mean((out[:, 0] - t) ** 2), lambda: cr.nn.MLP(3, [4], 1, rng=4),
                      lambda p: cr.optim.Adam(p, lr=0.01), "regression"),
}


def _data(name):
    rng = np.random.default_rng(7)
    if name == "regression":
        X = rng.normal(size=(120, 3))
        return X, X @ np.array([1.0, -2.0, 0.5]) + 0.1 * rng.normal(size=120)
    if name == "spiral3":
        X = rng.normal(size=(120, 2))
        return X, (np.arctan2(X[:, 1], X[:, 0]) > 0).astype(int) + (np.hypot(*X.T) > 1.2)
    return cr.data.circle(n=120, seed=0)


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_compiled_run_equals_the_eager_run_over_100_steps(case):
    loss, make_model, make_opt, data = CASES[case]
    X, y = _data(data)
    # 120 rows in batches of 50: two full batches and a shorter one per epoch (two programs)
    h_eager, w_eager = _train(False, loss, make_model, make_opt, X, y, epochs=34, batch_size=50)
    h_comp, w_comp = _train(True, loss, make_model, make_opt, X, y, epochs=34, batch_size=50)
    assert len(h_eager) == 34 and 34 * 3 >= 100
    np.testing.assert_allclose(h_comp.history["loss"], h_eager.history["loss"], rtol=1e-12, atol=1e-15)
    for a, b in zip(w_comp, w_eager):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-13)
    assert h_eager.history["loss"][-1] < h_eager.history["loss"][0]  # it trained


def test_frozen_parameters_go_in_undifferentiated_and_stay():
    X, y = cr.data.circle(n=60, seed=1)
    model = cr.nn.MLP(2, [6], 2, rng=0)
    first = model.parameters()[0]
    first.requires_grad = False
    before = first.data.copy()
    opt = cr.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    cr.fit(model, "cross_entropy", X, y, optimizer=opt, epochs=3, progress=False, compile=True)
    np.testing.assert_array_equal(first.data, before)
    assert first.grad is None


def test_the_compiled_step_reads_the_current_weights_and_shows_its_program():
    X, y = cr.data.circle(n=40, seed=2)
    model = cr.nn.MLP(2, [4], 2, activation="tanh", rng=0)
    step = CompiledStep(model, cross_entropy)
    loss0 = step(X, y)
    for p in model.parameters():
        p.data[...] = 0.0  # a change in place: the next call sees it
    assert step(X, y) == pytest.approx(np.log(2.0), rel=1e-12) != loss0
    assert all(np.all(p.grad.data == 0) for p in model.parameters()[:-1])
    source = step.source(X, y)
    assert "class_labels(" in source and "tanh(" in source and "scatter_add(" in source


def test_a_model_with_python_decisions_on_values_names_the_line():
    class Branchy(cr.nn.Module):
        def __init__(self):
            self.lin = cr.nn.Linear(2, 2, rng=0)

        def forward(self, x):
            out = self.lin(x)
            if cr.sum(out) > 0:  # a decision on a value: no single program
                return out
            return -out

    X, y = cr.data.circle(n=20, seed=0)
    model = Branchy()
    with pytest.raises(cr.ConcretizationError, match="test_compiled_training.py"):
        cr.fit(model, "cross_entropy", X, y, optimizer=cr.optim.SGD(model.parameters(), lr=0.1), epochs=1,
               progress=False, compile=True)
    cr.fit(model, "cross_entropy", X, y, optimizer=cr.optim.SGD(model.parameters(), lr=0.1), epochs=1,
           progress=False)  # eager training of the same model works


@pytest.mark.parametrize("loss", [cross_entropy, nll_loss])
def test_integer_labels_are_arguments_of_the_program_checked_on_every_call(loss):
    rng = np.random.default_rng(0)
    z = rng.normal(size=(6, 4))
    f = cr.compile(cr.value_and_grad(loss))
    for labels in (np.array([0, 3, 1, 1, 2, 0]), np.array([3, 3, 0, 2, 1, 1]), np.array([1, 0, 3, 2, 2, 3.0])):
        v, g = f(z, labels)
        ve, ge = cr.value_and_grad(loss)(z, labels)
        assert v == pytest.approx(ve, rel=1e-14)
        np.testing.assert_allclose(g, ge, rtol=1e-14)
    assert f.cache_info().misses == 2  # int64 and float64 labels: two signatures
    with pytest.raises(cr.LabelError, match=r"label 4 \(row 2\) is out of range for 4 classes"):
        f(z, np.array([0, 1, 4, 1, 2, 0]))
    with pytest.raises(cr.LabelError, match=r"label -1 \(row 0\)"):
        f(z, np.array([-1, 1, 2, 1, 2, 0]))  # numpy would have read the last column
    with pytest.raises(cr.DTypeError, match="whole numbers"):
        f(z, np.array([0.5, 1, 2, 1, 2, 0]))


def test_auto_compiles_chainrule_models_and_losses_only():
    from chainrule.nn.training import _compiled_by_default

    mlp = cr.nn.MLP(2, [4], 2, rng=0)
    assert _compiled_by_default(mlp, cross_entropy)
    assert _compiled_by_default(cr.nn.Sequential(cr.nn.Linear(2, 3), cr.nn.ReLU()), cr.nn.CrossEntropyLoss())
    assert not _compiled_by_default(mlp, lambda out, t: cr.mean((out - t) ** 2))  # the user's loss

    class Mine(cr.nn.Module):
        def __init__(self):
            self.lin = cr.nn.Linear(2, 2)

        def forward(self, x):
            return self.lin(x)

    assert not _compiled_by_default(Mine(), cross_entropy)
    with cr.detect_anomaly():
        assert not _compiled_by_default(mlp, cross_entropy)
    X, y = cr.data.circle(n=40, seed=0)
    with pytest.raises(cr.nn.training.TrainingError, match="compile must be True, False or 'auto'"):
        cr.fit(mlp, "cross_entropy", X, y, optimizer=cr.optim.SGD(mlp.parameters(), lr=0.1), epochs=1,
               progress=False, compile="yes")
    h = cr.fit(mlp, "cross_entropy", X, y, optimizer=cr.optim.SGD(mlp.parameters(), lr=0.1), epochs=2,
               progress=False, compile="auto")
    assert len(h) == 2


def test_compiled_gradients_have_the_eager_layout():
    """cr.nn keeps a weight as the transpose of an (in, out) array; its gradient comes out in the
    same memory order as eagerly, so the optimizer's update runs along memory (a C-ordered
    gradient of an F-ordered weight made the update 4 to 8 times slower)."""
    X, y = cr.data.circle(n=64, seed=3)
    model = cr.nn.MLP(2, [32, 16], 2, rng=0)
    CompiledStep(model, cross_entropy)(X, y)
    compiled = [p.grad.data for p in model.parameters()]
    for p in model.parameters():
        p.grad = None
    cross_entropy(model(X), y).backward()
    for p, g in zip(model.parameters(), compiled):
        assert g.flags.c_contiguous == p.grad.data.flags.c_contiguous
        assert g.flags.f_contiguous == p.grad.data.flags.f_contiguous
        np.testing.assert_allclose(g, p.grad.data, rtol=1e-13, atol=1e-15)


def test_the_compiled_step_is_kept_between_fit_calls_while_the_model_is_the_same():
    import gc
    import weakref

    from chainrule.nn.training import compiled_step

    X, y = cr.data.circle(n=64, seed=4)
    model = cr.nn.Sequential(cr.nn.Linear(2, 8, rng=0), cr.nn.Tanh(), cr.nn.Linear(8, 2, rng=1))
    opt = cr.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(3):  # an epoch at a time: one trace
        cr.fit(model, "cross_entropy", X, y, optimizer=opt, epochs=1, progress=False, batch_size=64)
    step = compiled_step(model, cr.nn.loss("cross_entropy"))
    assert step.program.cache_info()[:2] == (2, 1)  # three calls of one batch each: one trace
    assert compiled_step(model, cr.nn.loss("mse")) is not step  # another loss
    model.layers[1] = cr.nn.ReLU()  # another activation: traced anew, and it trains as a ReLU net
    relu_step = compiled_step(model, cr.nn.functional.cross_entropy)
    assert relu_step is not step and "relu(" in relu_step.source(X, y) and "tanh(" not in relu_step.source(X, y)
    first = model.parameters()[0]
    first.requires_grad = False
    assert compiled_step(model, cr.nn.functional.cross_entropy) is not relu_step
    ref = weakref.ref(model)
    del model, opt, first, step, relu_step
    gc.collect()
    assert ref() is None  # a kept step does not keep its model alive


def test_a_loss_subclass_of_the_users_is_kept_by_identity_not_by_its_class_and_reduction():
    from chainrule.nn.training import compiled_step

    class Scaled(cr.nn.MSELoss):  # computes with a setting of its own beside the reduction
        def __init__(self, scale):
            super().__init__()
            self.scale = scale

        def forward(self, input, target):
            return self.scale * super().forward(input, target)

    X, y = cr.data.circle(n=32, seed=5)
    y = y.reshape(-1, 1).astype(float)
    model = cr.nn.Sequential(cr.nn.Linear(2, 4, rng=0), cr.nn.Tanh(), cr.nn.Linear(4, 1, rng=1))
    one, three = Scaled(1.0), Scaled(3.0)
    assert compiled_step(model, one) is compiled_step(model, one)
    step = compiled_step(model, three)
    np.testing.assert_allclose(step(X, y), float(three(model(X), y).data), rtol=1e-12)


def test_a_users_loss_holding_the_model_does_not_keep_it_alive():
    import gc
    import weakref

    X, y = cr.data.circle(n=32, seed=5)
    model = cr.nn.MLP(2, [4], 2, rng=0)

    def loss(out, t, held=model):  # a user's loss that holds the model, as weight decay would
        return cross_entropy(out, t) + 0.0 * len(held.layers)

    cr.fit(model, loss, X, y, optimizer=cr.optim.SGD(model.parameters(), lr=0.1), epochs=1, progress=False,
           compile=True)
    ref = weakref.ref(model)
    del model, loss
    gc.collect()
    assert ref() is None
