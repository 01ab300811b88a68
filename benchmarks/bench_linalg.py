"""Linear algebra (issue 12): 200x200 solve, slogdet and eigh, float64.

Two cases per function: the value of the function on a Tensor that records the graph (against
numpy's own call: target 1.5x), and value and gradient of a scalar loss by ``cr.value_and_grad``
(against the same value and its gradient written by hand in numpy: target 3x).

* solve:   loss = sum(solve(A, b)), gradient in A and b: b_bar = A^-T 1, A_bar = -b_bar x^T.
* slogdet: loss = log|det A|, gradient A^-T.
* eigh:    loss = sum(w * c) + sum(V * V * D) of the lower triangle's eigendecomposition,
           gradient V (diag(c) + F o (V^T 2 V D)) V^T onto the lower triangle.
"""
from __future__ import annotations

import numpy as np

import chainrule as cr
import peers
from harness import Case

N = 200


def _data():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((N, N)) + 2 * np.sqrt(N) * np.eye(N)
    b = rng.standard_normal(N)
    c = rng.standard_normal(N)
    d = rng.standard_normal((N, N))
    return a, b, c, d


# ---------------------------------------------------------------- the losses, written once for every library
def solve_loss(np_, a, b):
    return np_.sum(np_.linalg.solve(a, b))


def slogdet_loss(np_, a, b):
    return np_.linalg.slogdet(a)[1]


def eigh_loss(np_, a, c, d):
    w, v = np_.linalg.eigh(a)
    return np_.sum(w * c) + np_.sum(v * v * d)


# ---------------------------------------------------------------- numpy by hand
def solve_grad_numpy(a, b):
    x = np.linalg.solve(a, b)
    gb = np.linalg.solve(a.T, np.ones(N))
    return x.sum(), -np.outer(gb, x), gb


def slogdet_grad_numpy(a):
    return np.linalg.slogdet(a)[1], np.linalg.inv(a).T


def eigh_grad_numpy(a, c, d):
    w, v = np.linalg.eigh(a)
    gap = w[None, :] - w[:, None]
    np.fill_diagonal(gap, 1.0)
    f = 1.0 / gap
    np.fill_diagonal(f, 0.0)
    inner = f * (v.T @ (2 * v * d))
    inner[np.diag_indices(N)] += c
    m = v @ inner @ v.T
    g = np.tril(m) + np.tril(m.T, -1)
    return np.sum(w * c) + np.sum(v * v * d), g


# ---------------------------------------------------------------- contenders
def _value(name, a, b):
    """The call timed by both value contenders: the same numpy function on an array or a Tensor."""
    if name == "solve":
        return lambda: np.linalg.solve(a, b)
    if name == "slogdet":
        return lambda: np.linalg.slogdet(a)[1]
    return lambda: np.linalg.eigh(a)[0]


def value_numpy(name):
    a, b, _, _ = _data()
    return _value(name, a, b)


def value_chainrule(name):
    a, b, _, _ = _data()
    # the graph is recorded, as it is before a backward
    return _value(name, cr.tensor(a, requires_grad=True), b)


def grad_numpy(name):
    a, b, c, d = _data()
    if name == "solve":
        return lambda: solve_grad_numpy(a, b)
    if name == "slogdet":
        return lambda: slogdet_grad_numpy(a)
    return lambda: eigh_grad_numpy(a, c, d)


def grad_chainrule(name):
    a, b, c, d = _data()
    if name == "solve":
        vg = cr.value_and_grad(lambda a, b: solve_loss(np, a, b), argnums=(0, 1))
        return lambda: (lambda v, g: (v, *g))(*vg(a, b))
    if name == "slogdet":
        vg = cr.value_and_grad(lambda a: slogdet_loss(np, a, None))
        return lambda: vg(a)
    vg = cr.value_and_grad(lambda a: eigh_loss(np, a, c, d))
    return lambda: vg(a)


def grad_torch(name):
    torch = peers.torch()
    a0, b0, c0, d0 = _data()
    b, c, d = (torch.from_numpy(x) for x in (b0, c0, d0))

    def step():
        a = torch.tensor(a0, requires_grad=True)
        if name == "solve":
            bb = b.clone().requires_grad_(True)
            loss = torch.sum(torch.linalg.solve(a, bb))
            loss.backward()
            return loss.detach(), a.grad, bb.grad
        if name == "slogdet":
            loss = torch.linalg.slogdet(a)[1]
        else:
            # torch.linalg.eigh reads the lower triangle too, but its gradient is the symmetric
            # one: its lower triangle holds half the off-diagonal pair's share, so it is folded
            w, v = torch.linalg.eigh(a)
            loss = torch.sum(w * c) + torch.sum(v * v * d)
        loss.backward()
        g = a.grad
        if name == "eigh":
            g = torch.tril(g) + torch.tril(g.T, -1)
        return loss.detach(), g
    return step


def grad_autograd(name):
    ag = peers.autograd()
    import autograd.numpy as anp

    a, b, c, d = _data()
    if name == "solve":
        vg = ag.value_and_grad(lambda a, b: solve_loss(anp, a, b), (0, 1))
        return lambda: (lambda v, g: (v, *g))(*vg(a, b))
    if name == "slogdet":
        vg = ag.value_and_grad(lambda a: slogdet_loss(anp, a, None))
        return lambda: vg(a)
    vg = ag.value_and_grad(lambda a: eigh_loss(anp, a, c, d))
    return lambda: vg(a)


def _bind(factory, name):
    return lambda: factory(name)


def cases():
    out = []
    for name in ("solve", "slogdet", "eigh"):
        out.append(Case("linalg", f"{name}_value", f"value of {name} on a 200x200 Tensor that records the graph",
                        {"numpy": _bind(value_numpy, name), "chainrule": _bind(value_chainrule, name)},
                        target=1.5, rtol=1e-10, atol=1e-12))
        out.append(Case("linalg", f"{name}_grad", f"value and gradient of a scalar loss of {name}, 200x200",
                        {"numpy": _bind(grad_numpy, name), "chainrule": _bind(grad_chainrule, name),
                         "torch": _bind(grad_torch, name), "autograd": _bind(grad_autograd, name)},
                        target=3.0, rtol=1e-6, atol=1e-8))
    return out
