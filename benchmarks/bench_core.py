"""Core reverse mode (issue 2): a tiny graph where overhead is everything, and a real training step.

(a) value and gradient of sum(tanh(x*w + b)) on 16-element float64 arrays;
(b) one SGD step of a 784-256-256-10 ReLU network with softmax cross-entropy, batch 128,
    float32, written with chainrule tensors and operations directly;
and inference under ``no_grad``, which should cost what numpy costs.
"""
from __future__ import annotations

import numpy as np

import chainrule as cr
import peers
from harness import Case

# ---------------------------------------------------------------- (a) sum(tanh(x*w + b))


def _tanh_data():
    rng = np.random.default_rng(0)
    return rng.standard_normal(16), rng.standard_normal(16), rng.standard_normal(16)


def tanh_numpy():
    x, w, b = _tanh_data()

    def step():
        t = np.tanh(x * w + b)
        d = 1.0 - t * t  # d tanh(u)/du
        return t.sum(), d * x, d
    return step


def _tanh_step(lib, x, w, b):
    """The step written once for chainrule and PyTorch (the same names: tensor, sum, tanh)."""
    w = lib.tensor(w, requires_grad=True)
    b = lib.tensor(b, requires_grad=True)

    def step():
        w.grad = b.grad = None
        y = lib.sum(lib.tanh(x * w + b))
        y.backward()
        return y, w.grad, b.grad
    return step


def tanh_chainrule():
    return _tanh_step(cr, *_tanh_data())


def tanh_compiled():
    """The same value and gradient as one compiled program (cr.compile: traced once, replayed)."""
    x, w, b = _tanh_data()
    vg = cr.compile(cr.value_and_grad(lambda w, b: cr.sum(cr.tanh(x * w + b)), argnums=(0, 1)))

    def step():
        y, (gw, gb) = vg(w, b)
        return y, gw, gb
    return step


def tanh_jax():
    jax, jnp = peers.jax()
    x, w, b = (jnp.asarray(a) for a in _tanh_data())  # JAX's own arrays, as torch's tensors (no copy per call)
    vg = jax.jit(jax.value_and_grad(lambda w, b: jnp.sum(jnp.tanh(x * w + b)), argnums=(0, 1)))

    def step():
        y, (gw, gb) = vg(w, b)
        return jax.block_until_ready((y, gw, gb))  # JAX dispatches asynchronously: wait for the values
    return step


def tanh_torch():
    torch = peers.torch()
    x, w, b = _tanh_data()
    return _tanh_step(torch, torch.from_numpy(x), w, b)


def tanh_torch_compile():
    """torch.compile of torch.func's value and gradient (the functional form compiles whole;
    ``.backward()`` inside a compiled function would break its graph)."""
    torch = peers.torch()
    x, w, b = (torch.from_numpy(a) for a in _tanh_data())
    vg = peers.torch_compile(torch.func.grad_and_value(lambda w, b: torch.sum(torch.tanh(x * w + b)),
                                                      argnums=(0, 1)))

    def step():
        (gw, gb), y = vg(w, b)
        return y, gw, gb
    return step


def tanh_autograd():
    ag = peers.autograd()
    import autograd.numpy as anp

    x, w, b = _tanh_data()
    vg = ag.value_and_grad(lambda w, b: anp.sum(anp.tanh(x * w + b)), argnum=(0, 1))

    def step():
        y, (gw, gb) = vg(w, b)
        return y, gw, gb
    return step


def tanh_micrograd():
    Value = peers.micrograd_value()
    x, w0, b0 = _tanh_data()
    x = x.tolist()
    w = [Value(v) for v in w0.tolist()]
    b = [Value(v) for v in b0.tolist()]

    def step():
        for p in w:
            p.grad = 0
        for p in b:
            p.grad = 0
        y = sum((xi * wi + bi).tanh() for xi, wi, bi in zip(x, w, b))
        y.backward()
        return y.data, [p.grad for p in w], [p.grad for p in b]
    return step


# ---------------------------------------------------------------- (b) the 784-256-256-10 network

SIZES = (784, 256, 256, 10)
BATCH = 128
LR = 0.01


def mlp_data(dtype=np.float32, seed=0):
    """A batch of inputs, integer labels and He-initialised weights and zero biases."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((BATCH, SIZES[0])).astype(dtype)
    y = rng.integers(0, SIZES[-1], BATCH)
    params = []
    for n_in, n_out in zip(SIZES[:-1], SIZES[1:]):
        params.append((rng.standard_normal((n_in, n_out)) * np.sqrt(2.0 / n_in)).astype(dtype))
        params.append(np.zeros(n_out, dtype))
    return X, y, params


def _numpy_forward(X, W1, b1, W2, b2, W3, b3):
    """The network's forward pass by hand: (z1, h1, z2, h2, z3), biases added in place."""
    z1 = X @ W1
    z1 += b1
    h1 = np.maximum(z1, 0)
    z2 = h1 @ W2
    z2 += b2
    h2 = np.maximum(z2, 0)
    z3 = h2 @ W3
    z3 += b3
    return z1, h1, z2, h2, z3


def mlp_numpy_step_fn(X, y, params, lr=LR):
    """One SGD step by hand: forward, softmax cross-entropy, backward, in-place update.
    ``params`` are (W1, b1, W2, b2, W3, b3) with W of shape (in, out); returns the loss and the
    updated parameters."""
    W1, b1, W2, b2, W3, b3 = params
    rows = np.arange(len(y))
    n = len(y)

    def step():
        z1, h1, z2, h2, z3 = _numpy_forward(X, W1, b1, W2, b2, W3, b3)
        # loss = mean(logsumexp(z3) - z3[y]); dloss/dz3 = (softmax(z3) - onehot(y)) / n
        m = z3.max(axis=1, keepdims=True)
        e = np.exp(z3 - m)
        s = e.sum(axis=1, keepdims=True)
        loss = np.mean(np.log(s[:, 0]) + m[:, 0] - z3[rows, y])
        g3 = e
        g3 /= s
        g3[rows, y] -= 1
        g3 /= n
        gW3 = h2.T @ g3
        gb3 = g3.sum(axis=0)
        g2 = g3 @ W3.T
        g2 *= z2 > 0
        gW2 = h1.T @ g2
        gb2 = g2.sum(axis=0)
        g1 = g2 @ W2.T
        g1 *= z1 > 0
        gW1 = X.T @ g1
        gb1 = g1.sum(axis=0)
        for p, g in zip(params, (gW1, gb1, gW2, gb2, gW3, gb3)):
            g *= lr
            p -= g
        return loss, params
    return step
def mlp_numpy():
    return mlp_numpy_step_fn(*mlp_data())


def mlp_chainrule():
    X, y, arrays = mlp_data()
    params = [cr.tensor(a, requires_grad=True) for a in arrays]
    W1, b1, W2, b2, W3, b3 = params
    opt = cr.optim.SGD(params, lr=LR)  # in place, as torch.optim.SGD in the PyTorch step
    rows = np.arange(len(y))

    def step():
        h1 = cr.relu(X @ W1 + b1)
        h2 = cr.relu(h1 @ W2 + b2)
        z = h2 @ W3 + b3
        loss = cr.mean(cr.logsumexp(z, axis=1) - z[rows, y])
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss, params
    return step


def mlp_compiled_step(X, y, arrays, lr=LR):
    """The SGD step as one compiled program: the parameters go in as a list, the updated ones
    come out (the labels are constants of the program; X an argument)."""
    rows = np.arange(len(y))

    def loss(params, X):
        W1, b1, W2, b2, W3, b3 = params
        h1 = cr.relu(X @ W1 + b1)
        h2 = cr.relu(h1 @ W2 + b2)
        z = h2 @ W3 + b3
        return cr.mean(cr.logsumexp(z, axis=1) - z[rows, y])

    def sgd(params, X):
        value, grads = cr.value_and_grad(loss)(params, X)
        return value, [p - lr * g for p, g in zip(params, grads)]
    return cr.compile(sgd)


def mlp_compiled():
    X, y, arrays = mlp_data()
    compiled = mlp_compiled_step(X, y, arrays)
    state = [arrays]

    def step():
        loss, state[0] = compiled(state[0], X)
        return loss, state[0]
    return step


def jax_sgd(loss, lr):
    """JAX's idiomatic SGD step: ``jit`` of ``value_and_grad`` and the update, returning the new
    parameters (a new jitted function at every call: a fresh trace and compilation)."""
    jax, _ = peers.jax()

    def sgd(params, X):
        value, grads = jax.value_and_grad(loss)(params, X)
        return value, [p - lr * g for p, g in zip(params, grads)]
    return jax.jit(sgd)


def jax_stepper(sgd, params, X):
    """The timed step of a jitted ``sgd``: parameters carried from call to call, and the results
    waited for (JAX dispatches asynchronously; an unfinished step would be timed as done)."""
    jax, jnp = peers.jax()
    state = [[jnp.asarray(p) for p in params]]
    X = jnp.asarray(X)

    def step():
        loss, state[0] = sgd(state[0], X)
        return jax.block_until_ready((loss, state[0]))
    return step


def mlp_jax_loss(y):
    """The network's cross-entropy in jax.numpy, W of shape (in, out) as in the numpy step."""
    jax, jnp = peers.jax()
    y = jnp.asarray(y)[:, None]

    def loss(params, X):
        W1, b1, W2, b2, W3, b3 = params
        h1 = jax.nn.relu(X @ W1 + b1)
        h2 = jax.nn.relu(h1 @ W2 + b2)
        z = h2 @ W3 + b3
        return jnp.mean(jax.nn.logsumexp(z, axis=1) - jnp.take_along_axis(z, y, axis=1)[:, 0])
    return loss


def mlp_jax():
    X, y, arrays = mlp_data()
    return jax_stepper(jax_sgd(mlp_jax_loss(y), LR), arrays, X)


def _mlp_torch_step(torch):
    X0, y0, arrays = mlp_data()
    X, y = torch.from_numpy(X0), torch.from_numpy(y0)
    params = [torch.tensor(a, requires_grad=True) for a in arrays]
    W1, b1, W2, b2, W3, b3 = params
    opt = torch.optim.SGD(params, lr=LR)
    F = torch.nn.functional

    def step():
        h1 = torch.relu(X @ W1 + b1)
        h2 = torch.relu(h1 @ W2 + b2)
        z = h2 @ W3 + b3
        loss = F.cross_entropy(z, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss, params
    return step


def mlp_torch():
    return _mlp_torch_step(peers.torch())


def mlp_torch_compile():
    """torch.compile of the whole eager step (dynamo splits it at ``backward``: the forward and
    backward graphs compiled by AOTAutograd, the optimizer's update as a graph of its own)."""
    return peers.torch_compile(_mlp_torch_step(peers.torch()))


# ---------------------------------------------------------------- inference under no_grad


def infer_numpy():
    X, _, (W1, b1, W2, b2, W3, b3) = mlp_data()

    def step():
        return _numpy_forward(X, W1, b1, W2, b2, W3, b3)[-1]
    return step


def infer_chainrule():
    X, _, arrays = mlp_data()
    W1, b1, W2, b2, W3, b3 = (cr.tensor(a, requires_grad=True) for a in arrays)

    def step():
        with cr.no_grad():
            return cr.relu(cr.relu(X @ W1 + b1) @ W2 + b2) @ W3 + b3
    return step


def infer_torch():
    torch = peers.torch()
    X0, _, arrays = mlp_data()
    X = torch.from_numpy(X0)
    W1, b1, W2, b2, W3, b3 = (torch.tensor(a, requires_grad=True) for a in arrays)

    def step():
        with torch.no_grad():
            return torch.relu(torch.relu(X @ W1 + b1) @ W2 + b2) @ W3 + b3
    return step


def small_infer_numpy():
    x, w, b = _tanh_data()
    return lambda: np.tanh(x * w + b).sum()


def small_infer_chainrule():
    x, w0, b0 = _tanh_data()
    w, b = cr.tensor(w0, requires_grad=True), cr.tensor(b0, requires_grad=True)

    def step():
        with cr.no_grad():
            return cr.sum(cr.tanh(x * w + b))
    return step


def small_infer_torch():
    torch = peers.torch()
    x0, w0, b0 = _tanh_data()
    x, w, b = torch.from_numpy(x0), torch.tensor(w0, requires_grad=True), torch.tensor(b0, requires_grad=True)

    def step():
        with torch.no_grad():
            return torch.sum(torch.tanh(x * w + b))
    return step


def cases():
    return [
        Case("core", "tanh16", "value and gradient of sum(tanh(x*w + b)), 16 float64",
             {"numpy": tanh_numpy, "chainrule": tanh_chainrule, "compiled": tanh_compiled, "jax": tanh_jax,
              "torch": tanh_torch, "torch_compile": tanh_torch_compile,
              "autograd": tanh_autograd, "micrograd": tanh_micrograd},
             target=4.0, targets={"compiled": 1.5}, reported={"torch": 9.5, "autograd": 32, "jax": 2.5}),
        Case("core", "mlp_step", "SGD step, 784-256-256-10 ReLU, softmax CE, batch 128, float32, tensors and ops",
             {"numpy": mlp_numpy, "chainrule": mlp_chainrule, "compiled": mlp_compiled, "jax": mlp_jax,
              "torch": mlp_torch, "torch_compile": mlp_torch_compile},
             target=1.10, targets={"compiled": 0.92}, reported={"torch": 1.20, "jax": 0.88}, rtol=2e-4, atol=1e-6),
        Case("core", "mlp_infer_no_grad", "forward of the same network under no_grad, batch 128, float32",
             {"numpy": infer_numpy, "chainrule": infer_chainrule, "torch": infer_torch},
             target=1.05, rtol=1e-4, atol=1e-5),
        Case("core", "tanh16_no_grad", "sum(tanh(x*w + b)) under no_grad, 16 float64 (pure overhead)",
             {"numpy": small_infer_numpy, "chainrule": small_infer_chainrule, "torch": small_infer_torch}),
    ]
