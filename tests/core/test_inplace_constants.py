"""A plain array (or list) that an operation saved for the backward pass and that is then changed
in place: the gradient is the one of the values the forward pass used, as for Tensors (which
refuse such a change with their version counter).

Each case builds a loss from a leaf ``w`` and a constant made by ``make()``, changes the constant
in place (``change``) between the forward and the backward pass, and compares ``w.grad`` with the
gradient of the same loss built from a private copy that nothing changes.
"""
from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr

W = np.array([[0.5, -1.0], [2.0, 0.25]])


def plain():
    return np.array([[1.0, 2.0], [3.0, 4.0]])


def view_of_writeable_base():
    """A read-only view whose memory belongs to a writeable array: it changes with its base."""
    base = np.arange(1.0, 9.0).reshape(2, 4)
    v = base[:, ::2]  # a strided view, shape (2, 2)
    v.flags.writeable = False
    return v, base


def overwrite(c):
    c[...] = 100.0 * np.asarray(c) + 7.0


def overwrite_base(pair):
    _, base = pair
    base *= -3.0


# name: (make the constant, change it in place, the loss of w and the constant)
CASES = {
    "w * c": (plain, overwrite, lambda w, c: cr.sum(w * c)),
    "c * w": (plain, overwrite, lambda w, c: cr.sum(c * w)),
    "w / c": (plain, overwrite, lambda w, c: cr.sum(w / c)),
    "c @ w (matmul)": (plain, overwrite, lambda w, c: cr.sum(cr.tanh(c @ w))),
    "linear(c, w, b)": (plain, overwrite,
                        lambda w, c: cr.sum(cr.nn.functional.linear(c, w, cr.tensor([0.1, -0.2])) ** 2)),
    "where(cond, w, c) * c": (plain, overwrite, lambda w, c: cr.sum(cr.where(w > 0, w, c) * c)),
    "w ** c": (plain, lambda c: c.__setitem__(..., c * 0.5),
               lambda w, c: cr.sum(cr.abs(w) ** c)),
    "a view changed through its base": (lambda: np.arange(1.0, 9.0).reshape(2, 4), overwrite,
                                        lambda w, c: cr.sum(w * c[:, 1:3])),
    "a read-only view of a writeable base": (view_of_writeable_base, overwrite_base,
                                             lambda w, pair: cr.sum(w * pair[0])),
    "a list": (lambda: [1.0, -2.0], lambda c: c.__setitem__(slice(None), [50.0, 60.0]),
               lambda w, c: cr.sum(w * c)),
    "an index array (w[rows, idx])": (lambda: np.array([0, 0]), lambda c: c.__setitem__(..., [1, 1]),
                                      lambda w, idx: cr.sum(w[np.arange(2), idx] * np.array([3.0, 5.0]))),
}


def _private(c):
    """A copy of the constant that the test alone holds."""
    if isinstance(c, tuple):  # (read-only view, base): a fresh view of a fresh base
        v = c[0].copy()
        v.flags.writeable = False
        return (v, None)
    return [*c] if isinstance(c, list) else c.copy()


@pytest.mark.parametrize("name", list(CASES))
def test_a_saved_constant_changed_in_place_does_not_change_the_gradient(name):
    make, change, loss = CASES[name]
    c = make()
    expected_w = cr.tensor(W, requires_grad=True)
    loss(expected_w, _private(c)).backward()

    w = cr.tensor(W, requires_grad=True)
    y = loss(w, c)
    change(c)
    y.backward()
    np.testing.assert_array_equal(w.grad.numpy(), expected_w.grad.numpy())


@pytest.mark.parametrize("name", ["w * c", "c @ w (matmul)", "a view changed through its base"])
def test_second_derivatives_see_the_saved_values_too(name):
    """backward(create_graph=True) hands the rules the recorded arguments, not the saved values:
    they must be the protected copies as well."""
    make, change, loss = CASES[name]

    def grad_of_grad(c, after=None):
        w = cr.tensor(W, requires_grad=True)
        y = loss(w, c) * cr.sum(w)  # the gradient depends on w, so it can be differentiated again
        if after is not None:
            after(c)
        y.backward(create_graph=True)
        gw, w.grad = w.grad, None
        cr.sum(gw * gw).backward()
        return w.grad.numpy()

    c = make()
    np.testing.assert_array_equal(grad_of_grad(c, change), grad_of_grad(_private(make())))


def test_the_issue_example():
    c = np.array([1.0, 2.0])
    w = cr.tensor([3.0, 4.0], requires_grad=True)
    y = (w * c).sum()
    c[:] = [100.0, 200.0]
    y.backward()
    np.testing.assert_array_equal(w.grad.numpy(), [1.0, 2.0])


def test_an_array_nothing_can_write_to_is_saved_without_a_copy():
    """The cost of the protection is paid only by arrays that can still change: a read-only array
    that owns its memory (as cr.fit's batches are) is saved as it is."""
    c = np.array([1.0, 2.0])
    c.flags.writeable = False
    w = cr.tensor([3.0, 4.0], requires_grad=True)
    y = w * c
    assert y._saved[1] is c
    writeable = np.array([1.0, 2.0])
    z = w * writeable
    assert z._saved[1] is not writeable


def test_fit_hands_the_model_batches_it_need_not_copy():
    """cr.fit's shuffled batches are read-only slices of its own gathered copy of the data, so the
    protection above costs training nothing."""
    seen = []

    class Recorder(cr.nn.Module):
        def __init__(self):
            self.inner = cr.nn.MLP(2, [4], 1, activation="tanh", rng=0)

        def forward(self, x):
            seen.append(x)
            return self.inner(x)

    rng = np.random.default_rng(0)
    X = rng.standard_normal((24, 2))
    y = (X[:, 0] > 0).astype(np.float64)
    model = Recorder()
    cr.fit(model, "bce_logits", X, y, optimizer=cr.optim.SGD(model.parameters(), lr=0.1), epochs=2,
           batch_size=8, seed=0, progress=False, metrics=())
    batches = [x for x in seen if isinstance(x, np.ndarray) and len(x) == 8]
    assert batches and all(cr.core.tensor._frozen(x) is x for x in batches)
    assert X.flags.writeable  # the caller's array is left as it was


# vjp returns a pullback that may run after a constant of f changed: at float numbers (the tape)
# and at arrays (the graph of Tensors). name: (f of the constant c, the point)
PULLBACKS = {
    "x * c at a float (tape)": (lambda c: lambda x: x * c, 3.0),
    "c * x at a float (tape)": (lambda c: lambda x: c * x, 3.0),
    "where and linear at a float (tape)": (
        lambda c: lambda x: cr.where(c > 0, x * 2, c) + cr.sum(cr.nn.functional.linear(c[None], x * np.ones((1, 2)))),
        3.0),
    "x[c] at a float (tape, an index array)": (lambda c: lambda x: (x * np.ones(3))[c.astype(int) % 3] * c, 2.0),
    "x * c at an array": (lambda c: lambda x: x * c, np.array([3.0, -1.0])),
}


@pytest.mark.parametrize("name", list(PULLBACKS))
def test_a_pullback_sees_the_constants_as_f_used_them(name):
    build, x = PULLBACKS[name]
    expected = cr.vjp(build(np.array([1.0, 2.0])), x)[1](np.array([1.0, 1.0]))
    c = np.array([1.0, 2.0])
    _, pull = cr.vjp(build(c), x)
    c[:] = [100.0, 201.0]
    for got, want in zip(pull(np.array([1.0, 1.0])), expected):
        np.testing.assert_array_equal(got, want)
