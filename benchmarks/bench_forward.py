"""The functional API (issue 3): forward-mode JVP, a full Hessian, and cr.grad at scalar inputs.

(a) the JVP of the 784-256-256-10 network's loss along a random direction in all parameters,
    float32, batch 128 (``cr.jvp`` against a hand-written numpy JVP);
(b) the full Hessian of the logistic-regression negative log-likelihood, 1000 samples, 100
    features, float64 (``cr.hessian`` against the closed form X^T diag(p(1-p)) X);
(c) ``cr.grad`` of the lecture's quiz y = exp(xz) + xz/ln x + sin(ln x)/(xz) at scalars
    (against the hand-derived gradient on numpy 0-d arrays).
"""
from __future__ import annotations

import numpy as np

import chainrule as cr
import peers
from bench_core import mlp_data
from harness import Case

# ---------------------------------------------------------------- (a) JVP of the network's loss


def _jvp_data():
    X, y, params = mlp_data()
    rng = np.random.default_rng(1)
    # biases start at zero in mlp_data; random ones make every term of the JVP matter
    params = [p if p.ndim == 2 else (0.1 * rng.standard_normal(p.shape)).astype(p.dtype) for p in params]
    tangents = [rng.standard_normal(p.shape).astype(p.dtype) for p in params]
    return X, y, params, tangents


def jvp_numpy():
    X, y, (W1, b1, W2, b2, W3, b3), (dW1, db1, dW2, db2, dW3, db3) = _jvp_data()
    rows = np.arange(len(y))
    n = len(y)

    def step():
        z1 = X @ W1
        z1 += b1
        dz1 = X @ dW1
        dz1 += db1
        m1 = z1 > 0
        h1 = z1 * m1
        dh1 = dz1 * m1
        z2 = h1 @ W2
        z2 += b2
        dz2 = dh1 @ W2
        dz2 += h1 @ dW2
        dz2 += db2
        m2 = z2 > 0
        h2 = z2 * m2
        dh2 = dz2 * m2
        z3 = h2 @ W3
        z3 += b3
        dz3 = dh2 @ W3
        dz3 += h2 @ dW3
        dz3 += db3
        # loss = mean(logsumexp(z3) - z3[y]); its tangent is mean(<softmax(z3), dz3> - dz3[y])
        m = z3.max(axis=1, keepdims=True)
        e = np.exp(z3 - m)
        s = e.sum(axis=1, keepdims=True)
        loss = np.mean(np.log(s[:, 0]) + m[:, 0] - z3[rows, y])
        e *= dz3
        dloss = (e.sum(axis=1) / s[:, 0] - dz3[rows, y]).sum() / n
        return loss, dloss
    return step


def _cr_loss(X, y):
    rows = np.arange(len(y))

    def loss(W1, b1, W2, b2, W3, b3):
        h1 = cr.relu(X @ W1 + b1)
        h2 = cr.relu(h1 @ W2 + b2)
        z = h2 @ W3 + b3
        return cr.mean(cr.logsumexp(z, axis=1) - z[rows, y])
    return loss


def jvp_chainrule():
    X, y, params, tangents = _jvp_data()
    f = _cr_loss(X, y)
    primals, tangents = tuple(params), tuple(tangents)
    return lambda: cr.jvp(f, primals, tangents)


def jvp_torch():
    torch = peers.torch()
    from torch.func import jvp

    X0, y0, params, tangents = _jvp_data()
    X, y = torch.from_numpy(X0), torch.from_numpy(y0)
    F = torch.nn.functional
    primals = tuple(torch.from_numpy(p) for p in params)
    tangents = tuple(torch.from_numpy(t) for t in tangents)

    def f(W1, b1, W2, b2, W3, b3):
        h1 = torch.relu(X @ W1 + b1)
        h2 = torch.relu(h1 @ W2 + b2)
        return F.cross_entropy(h2 @ W3 + b3, y)
    return lambda: jvp(f, primals, tangents)


def jvp_autograd():
    ag = peers.autograd()
    import autograd.numpy as anp

    X, y, params, tangents = _jvp_data()
    rows = np.arange(len(y))

    def f(W1, b1, W2, b2, W3, b3):
        h1 = anp.maximum(anp.dot(X, W1) + b1, 0)
        h2 = anp.maximum(anp.dot(h1, W2) + b2, 0)
        z = anp.dot(h2, W3) + b3
        m = anp.max(z, axis=1, keepdims=True)
        lse = anp.log(anp.sum(anp.exp(z - m), axis=1)) + m[:, 0]
        return anp.mean(lse - z[rows, y])
    jvp = ag.make_jvp(f, argnum=(0, 1, 2, 3, 4, 5))
    tangents = tuple(tangents)
    return lambda: jvp(*params)(tangents)


# ---------------------------------------------------------------- (b) Hessian of logistic regression


def _logreg_data():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((1000, 100)) / 10
    w = rng.standard_normal(100)
    y = (rng.random(1000) < 1 / (1 + np.exp(-X @ w))).astype(np.float64)
    return X, y, w


def hessian_numpy():
    X, _, w = _logreg_data()

    def step():
        p = 1 / (1 + np.exp(-(X @ w)))
        return X.T @ (X * (p * (1 - p))[:, None])
    return step


def hessian_chainrule():
    X, y, w = _logreg_data()

    def nll(w):
        z = X @ w
        return cr.sum(cr.softplus(z) - y * z)
    h = cr.hessian(nll)
    return lambda: h(w)


def hessian_compiled():
    X, y, w = _logreg_data()

    def nll(w):
        z = X @ w
        return cr.sum(cr.softplus(z) - y * z)
    h = cr.compile(cr.hessian(nll))
    return lambda: h(w)


def hessian_jax():
    jax, jnp = peers.jax()
    X, y, w = (jnp.asarray(a) for a in _logreg_data())  # JAX's own arrays (no copy per call)
    h = jax.jit(jax.hessian(lambda w: jnp.sum(jax.nn.softplus(X @ w) - y * (X @ w))))
    return lambda: h(w).block_until_ready()  # JAX dispatches asynchronously: wait for the value


def _torch_nll():
    """``(torch, nll, w)``: the logistic NLL as a torch function of the weights, at the data."""
    torch = peers.torch()
    X0, y0, w0 = _logreg_data()
    X, y, w = torch.from_numpy(X0), torch.from_numpy(y0), torch.from_numpy(w0)
    F = torch.nn.functional

    def nll(w):
        z = X @ w
        return torch.sum(F.softplus(z) - y * z)
    return torch, nll, w


def hessian_torch():
    torch, nll, w = _torch_nll()
    h = torch.func.hessian(nll)
    return lambda: h(w)


def hessian_torch_compile():
    torch, nll, w = _torch_nll()
    h = peers.torch_compile(torch.func.hessian(nll))
    return lambda: h(w)


def hessian_autograd():
    ag = peers.autograd()
    import autograd.numpy as anp

    X, y, w = _logreg_data()

    def nll(w):
        z = anp.dot(X, w)
        return anp.sum(anp.logaddexp(0, z) - y * z)
    h = ag.hessian(nll)
    return lambda: h(w)


# ---------------------------------------------------------------- (c) cr.grad of the quiz at scalars

QUIZ_POINT = (2.0, 3.0)


def quiz_numpy():
    x, z = (np.array(v) for v in QUIZ_POINT)

    def step():
        # y = e^u + u / l + sin(l) / u with u = xz, l = ln x
        u = x * z
        lx = np.log(x)
        e = np.exp(u)
        s = np.sin(lx)
        c = np.cos(lx)
        gx = z * e + z / lx - z / (lx * lx) + (c - s) / (x * u)
        gz = x * e + x / lx - s / (u * z)
        return gx, gz
    return step


def _quiz(lib):
    def quiz(x, z):
        xz = x * z
        return lib.exp(xz) + xz / lib.log(x) + lib.sin(lib.log(x)) / xz
    return quiz


def quiz_chainrule():
    x, z = (np.array(v) for v in QUIZ_POINT)
    g = cr.grad(_quiz(cr), argnums=(0, 1))
    return lambda: g(x, z)


def quiz_compiled():
    x, z = (np.array(v) for v in QUIZ_POINT)
    g = cr.compile(cr.grad(_quiz(cr), argnums=(0, 1)))
    return lambda: g(x, z)


def quiz_jax():
    jax, jnp = peers.jax()
    x, z = (jnp.array(v, dtype=jnp.float64) for v in QUIZ_POINT)  # 0-d JAX arrays (no copy per call)
    g = jax.jit(jax.grad(_quiz(jnp), argnums=(0, 1)))
    return lambda: jax.block_until_ready(g(x, z))


def quiz_torch():
    torch = peers.torch()
    x0, z0 = (np.array(v) for v in QUIZ_POINT)
    f = _quiz(torch)

    def step():
        x = torch.tensor(x0, requires_grad=True)
        z = torch.tensor(z0, requires_grad=True)
        return torch.autograd.grad(f(x, z), (x, z))
    return step


def quiz_torch_compile():
    """torch.compile of torch.func.grad on 0-d float64 tensors (functional: no graph break)."""
    torch = peers.torch()
    x, z = (torch.tensor(v, dtype=torch.float64) for v in QUIZ_POINT)
    g = peers.torch_compile(torch.func.grad(_quiz(torch), argnums=(0, 1)))
    return lambda: g(x, z)


def quiz_autograd():
    ag = peers.autograd()
    import autograd.numpy as anp

    x, z = (np.array(v) for v in QUIZ_POINT)
    g = ag.grad(_quiz(anp), argnum=(0, 1))
    return lambda: g(x, z)


def quiz_micrograd():
    Value = peers.micrograd_value()
    x0, z0 = QUIZ_POINT

    def step():
        x, z = Value(x0), Value(z0)
        xz = x * z
        (xz.exp() + xz / x.log() + x.log().sin() / xz).backward()
        return x.grad, z.grad
    return step


def cases():
    return [
        Case("forward", "jvp_mlp", "JVP of the 784-256-256-10 loss along a random direction, float32, batch 128",
             {"numpy": jvp_numpy, "chainrule": jvp_chainrule, "torch": jvp_torch, "autograd": jvp_autograd},
             target=1.2, reported={"torch": 1.67, "autograd": 1.61}, rtol=2e-3, atol=1e-4),
        Case("forward", "hessian_logreg", "full Hessian of the logistic NLL, 1000 x 100, float64",
             {"numpy": hessian_numpy, "chainrule": hessian_chainrule, "compiled": hessian_compiled,
              "jax": hessian_jax, "torch": hessian_torch, "torch_compile": hessian_torch_compile,
              "autograd": hessian_autograd},
             target=3.0, targets={"compiled": 1.8}, reported={"torch": 15, "autograd": 20, "jax": 1.6}, rtol=1e-8, atol=1e-10),
        Case("forward", "grad_quiz", "cr.grad of exp(xz) + xz/ln x + sin(ln x)/(xz) at scalars",
             {"numpy": quiz_numpy, "chainrule": quiz_chainrule, "compiled": quiz_compiled, "jax": quiz_jax,
              "torch": quiz_torch, "torch_compile": quiz_torch_compile,
              "autograd": quiz_autograd, "micrograd": quiz_micrograd},
             target=3.0, targets={"compiled": 0.5}, reported={"micrograd": 3.1, "torch": 10.5, "autograd": 36, "jax": 1.05},
             rtol=1e-10),
    ]
