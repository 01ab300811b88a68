"""Optimizers against hand-computed updates, schedules, clipping, state dicts and errors."""
import math

import numpy as np
import pytest

import chainrule as cr
from chainrule.nn import Parameter
from chainrule.optim import SGD, Adam, CosineAnnealingLR, ExponentialLR, StepLR, clip_grad_norm_, clip_grad_value_

W0 = np.array([[1.0, -2.0], [0.5, 3.0]])
B0 = np.array([0.1, -0.3])


def quad_grads(w, b):
    """Gradients of L = sum(w^3)/3 + sum(b^2): w^2 and 2 b (so they change with each step)."""
    return w ** 2, 2 * b


def run(opt_factory, steps=3):
    w, b = Parameter(W0), Parameter(B0)
    opt = opt_factory([w, b])
    for _ in range(steps):
        opt.zero_grad()
        ((w ** 3).sum() / 3 + (b * b).sum()).backward()
        opt.step()
    return w.numpy(), b.numpy(), opt


def test_plain_sgd():
    w, b = W0.copy(), B0.copy()
    for _ in range(3):
        gw, gb = quad_grads(w, b)
        w, b = w - 0.1 * gw, b - 0.1 * gb
    got_w, got_b, _ = run(lambda ps: SGD(ps, lr=0.1))
    np.testing.assert_allclose(got_w, w, rtol=1e-15)
    np.testing.assert_allclose(got_b, b, rtol=1e-15)


@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_momentum_and_weight_decay(nesterov):
    lr, mu, wd = 0.1, 0.9, 0.01
    ws, bufs = [W0.copy(), B0.copy()], [np.zeros(2 * (2,)), np.zeros(2)]
    for _ in range(3):
        grads = quad_grads(*ws)
        for i in range(2):
            g = grads[i] + wd * ws[i]
            bufs[i] = mu * bufs[i] + g
            step = g + mu * bufs[i] if nesterov else bufs[i]
            ws[i] = ws[i] - lr * step
    got_w, got_b, opt = run(lambda ps: SGD(ps, lr=lr, momentum=mu, nesterov=nesterov, weight_decay=wd))
    np.testing.assert_allclose(got_w, ws[0], rtol=1e-14)
    np.testing.assert_allclose(got_b, ws[1], rtol=1e-14)
    assert opt.steps == 3


def test_adam():
    lr, (b1, b2), eps, wd = 0.05, (0.8, 0.9), 1e-8, 0.01
    ws = [W0.copy(), B0.copy()]
    ms, vs = [np.zeros_like(w) for w in ws], [np.zeros_like(w) for w in ws]
    for t in range(1, 4):
        grads = quad_grads(*ws)
        for i in range(2):
            g = grads[i] + wd * ws[i]
            ms[i] = b1 * ms[i] + (1 - b1) * g
            vs[i] = b2 * vs[i] + (1 - b2) * g * g
            mhat, vhat = ms[i] / (1 - b1 ** t), vs[i] / (1 - b2 ** t)
            ws[i] = ws[i] - lr * mhat / (np.sqrt(vhat) + eps)
    got_w, got_b, _ = run(lambda ps: Adam(ps, lr=lr, betas=(b1, b2), eps=eps, weight_decay=wd))
    np.testing.assert_allclose(got_w, ws[0], rtol=1e-12)
    np.testing.assert_allclose(got_b, ws[1], rtol=1e-12)


def test_optimizers_match_pytorch():
    torch = pytest.importorskip("torch")
    for ours, theirs in [
        (lambda ps: SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
         lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)),
        (lambda ps: Adam(ps, lr=0.05, weight_decay=0.01), lambda ps: torch.optim.Adam(ps, lr=0.05, weight_decay=0.01)),
    ]:
        got_w, got_b, _ = run(ours, steps=5)
        tw, tb = torch.tensor(W0, requires_grad=True), torch.tensor(B0, requires_grad=True)
        opt = theirs([tw, tb])
        for _ in range(5):
            opt.zero_grad()
            ((tw ** 3).sum() / 3 + (tb * tb).sum()).backward()
            opt.step()
        np.testing.assert_allclose(got_w, tw.detach().numpy(), rtol=1e-12)
        np.testing.assert_allclose(got_b, tb.detach().numpy(), rtol=1e-12)


def test_params_without_grad_are_skipped_and_updates_are_in_place():
    w, unused = Parameter([1.0, 2.0]), Parameter([5.0])
    data = w.data
    opt = SGD([w, unused], lr=0.5, momentum=0.5)
    (w * w).sum().backward()
    grad = w.grad.data.copy()
    opt.step()
    assert w.data is data  # updated in place: views of the weights stay valid
    np.testing.assert_allclose(w.numpy(), [0.0, 0.0])
    np.testing.assert_array_equal(w.grad.numpy(), grad)  # the gradient array is left alone
    assert unused.item() == 5.0


def test_step_refuses_stale_graph_but_not_new_ones():
    w = Parameter([1.0])
    opt = SGD([w], lr=0.1)
    loss = (w * w).sum()
    loss.backward(retain_graph=True)
    opt.step()
    with pytest.raises(cr.GraphError, match="changed in place"):
        loss.backward()
    opt.zero_grad()
    (w * w).sum().backward()  # a graph recorded after the step is fine
    np.testing.assert_allclose(w.grad.numpy(), [1.6])  # 2 w with w = 1 - 0.1 * 2


def test_optimizer_argument_errors():
    w = Parameter([1.0])
    with pytest.raises(ValueError, match=r"lr \(learning rate\) must be in \(0.0, inf\), got 0"):
        SGD([w], lr=0)
    with pytest.raises(ValueError, match="lr"):
        Adam([w], lr=-1e-3)
    with pytest.raises(ValueError, match="momentum must be in"):
        SGD([w], lr=0.1, momentum=-0.5)
    with pytest.raises(ValueError, match="nesterov=True needs a positive momentum"):
        SGD([w], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match=r"betas\[1\] must be in \[0.0, 1.0\)"):
        Adam([w], betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="weight_decay"):
        SGD([w], lr=0.1, weight_decay=-1)
    with pytest.raises(ValueError, match="empty parameter list"):
        SGD([], lr=0.1)
    with pytest.raises(ValueError, match="leaf tensor with requires_grad=True"):
        SGD([cr.tensor([1.0])], lr=0.1)
    with pytest.raises(ValueError, match="appears more than once"):
        SGD([w, w], lr=0.1)
    with pytest.raises(ValueError, match="lr"):
        SGD([w], lr=0.1).lr = float("nan")
    opt = SGD(cr.nn.Linear(2, 1, rng=0), lr=0.1)  # a Module is accepted
    assert len(opt.params) == 2


def test_optimizer_state_dict_round_trip():
    for factory in (lambda ps: SGD(ps, lr=0.1, momentum=0.9), lambda ps: Adam(ps, lr=0.01)):
        w, b, opt = run(factory, steps=2)
        state = opt.state_dict()
        assert all(isinstance(v, np.ndarray) for v in state["buffers"].values())
        assert all(isinstance(v, (int, float, bool, str, list)) for k, v in state.items() if k != "buffers")
        fresh = factory([Parameter(w), Parameter(b)])
        fresh.load_state_dict(state)
        assert fresh.state_dict()["steps"] == 2
        for k, v in state["buffers"].items():
            np.testing.assert_array_equal(fresh.state_dict()["buffers"][k], v)
    bad = dict(state, buffers={"exp_avg.0": np.zeros(3)})
    with pytest.raises(ValueError, match=r"buffer 'exp_avg.0' has shape \(3,\)"):
        fresh.load_state_dict(bad)
    with pytest.raises(ValueError, match="state is of a 'SGD'"):
        fresh.load_state_dict(SGD([Parameter([1.0])], lr=0.1).state_dict())


def test_schedules():
    def lrs(make, n=6):
        opt = SGD([Parameter([0.0])], lr=1.0)
        sched = make(opt)
        out = []
        for _ in range(n):
            sched.step()
            out.append(opt.lr)
        return out, sched

    got, _ = lrs(lambda o: StepLR(o, step_size=2, gamma=0.5))
    assert got == [1.0, 0.5, 0.5, 0.25, 0.25, 0.125]
    got, _ = lrs(lambda o: ExponentialLR(o, gamma=0.9))
    np.testing.assert_allclose(got, 0.9 ** np.arange(1, 7))
    got, sched = lrs(lambda o: CosineAnnealingLR(o, T_max=4, eta_min=0.1))
    np.testing.assert_allclose(got, [0.1 + 0.45 * (1 + math.cos(math.pi * e / 4)) for e in range(1, 7)])
    assert got[3] == pytest.approx(0.1)
    state = sched.state_dict()
    opt2 = SGD([Parameter([0.0])], lr=1.0)
    again = CosineAnnealingLR(opt2, T_max=4, eta_min=0.1)
    again.load_state_dict(state)
    assert opt2.lr == pytest.approx(got[-1]) and again.last_epoch == 6
    with pytest.raises(ValueError, match="step_size must be a positive integer"):
        StepLR(opt2, step_size=0)
    with pytest.raises(ValueError, match="gamma"):
        ExponentialLR(opt2, gamma=0)


def test_schedules_match_pytorch():
    torch = pytest.importorskip("torch")
    for ours, theirs in [(lambda o: StepLR(o, 3, 0.3), lambda o: torch.optim.lr_scheduler.StepLR(o, 3, 0.3)),
                         (lambda o: CosineAnnealingLR(o, 5, 0.01),
                          lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, 5, 0.01))]:
        opt = SGD([Parameter([0.0])], lr=0.5)
        topt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.5)
        s, ts = ours(opt), theirs(topt)
        for _ in range(12):
            topt.step()
            s.step()
            ts.step()
            assert opt.lr == pytest.approx(topt.param_groups[0]["lr"], rel=1e-9, abs=1e-12)


def test_clip_grad_norm_replaces_gradients():
    a, b = Parameter([3.0, 0.0]), Parameter([[4.0]])
    ga, gb = cr.tensor([3.0, 0.0]), cr.tensor([[4.0]])
    a.grad, b.grad = ga, gb
    shared = ga.data
    total = clip_grad_norm_([a, b], max_norm=1.0)
    assert total == pytest.approx(5.0)
    np.testing.assert_allclose(a.grad.numpy(), [0.6, 0.0], rtol=1e-6)
    np.testing.assert_allclose(b.grad.numpy(), [[0.8]], rtol=1e-6)
    np.testing.assert_array_equal(shared, [3.0, 0.0])  # the old array was not modified
    assert clip_grad_norm_([a, b], max_norm=10.0) == pytest.approx(1.0, rel=1e-5)
    np.testing.assert_allclose(a.grad.numpy(), [0.6, 0.0], rtol=1e-6)  # under the limit: unchanged
    assert clip_grad_norm_([a, b], max_norm=0.1, norm_type=math.inf) == pytest.approx(0.8, rel=1e-5)
    np.testing.assert_allclose(b.grad.numpy(), [[0.1]], rtol=1e-5)
    a.grad = cr.tensor([np.inf, 0.0])
    with pytest.raises(FloatingPointError, match="norm is inf"):
        clip_grad_norm_([a], 1.0, error_if_nonfinite=True)
    with pytest.raises(ValueError, match="max_norm"):
        clip_grad_norm_([a], -1.0)


def test_clip_grad_value():
    w = Parameter([1.0, -5.0, 3.0])
    w.grad = cr.tensor([1.0, -5.0, 3.0])
    old = w.grad.data
    clip_grad_value_([w], 2.0)
    np.testing.assert_array_equal(w.grad.numpy(), [1.0, -2.0, 2.0])
    np.testing.assert_array_equal(old, [1.0, -5.0, 3.0])
