"""Training steps through the nn API (issue 5): ``cr.nn.MLP``, the losses and ``cr.optim.SGD``.

(a) one step of the 784-256-256-10 ReLU network, softmax cross-entropy, batch 128, float32;
(b) one step of a 2-16-16-1 tanh network, BCE with logits, batch 32, float64 (overhead-bound).

Every contender starts from the chainrule model's initial weights, so the first step of each is
checked against the hand-written numpy step (loss and updated parameters).
"""
from __future__ import annotations

import numpy as np

import chainrule as cr
import peers
from bench_core import BATCH, SIZES, jax_sgd, jax_stepper, mlp_numpy_step_fn
from harness import Case

LR = 0.01


def _net(sizes, activation, dtype, seed=0):
    return cr.nn.MLP(sizes[0], list(sizes[1:-1]), sizes[-1], activation=activation, dtype=dtype, rng=seed)


def _weights(net):
    """The model's parameters as numpy copies, weights transposed to (in, out)."""
    out = []
    for layer in net.layers:
        out.append(np.array(layer.weight.numpy().T, order="C"))
        out.append(np.array(layer.bias.numpy()))
    return out


def _as_torch_linear(torch, net):
    layers = []
    for i, layer in enumerate(net.layers):
        lin = torch.nn.Linear(layer.in_features, layer.out_features, dtype=getattr(torch, net.dtype.name))
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(np.ascontiguousarray(layer.weight.numpy())))
            lin.bias.copy_(torch.from_numpy(layer.bias.numpy()))
        layers.append(lin)
    return layers


def _torch_step(net, activation, loss, lr, X, y, compile=False):
    """The same network (its weights copied), loss and SGD step in PyTorch; ``activation`` and
    ``loss`` name torch.nn classes. ``compile``: torch.compile of the whole step (dynamo splits it
    at ``backward``: forward and backward graphs by AOTAutograd, the update a graph of its own)."""
    torch = peers.torch()
    layers = []
    for lin in _as_torch_linear(torch, net):
        layers += [lin, getattr(torch.nn, activation)()]
    model = torch.nn.Sequential(*layers[:-1])  # no activation after the output layer
    step = _training_step(model, getattr(torch.nn, loss)(), torch.optim.SGD(model.parameters(), lr=lr),
                          torch.from_numpy(X), torch.from_numpy(y))
    return peers.torch_compile(step) if compile else step


def _jax_loss(activation, loss, y):
    """The network's loss in jax.numpy, its parameters in the modules' order and layout (W of
    shape (out, in)): ``activation`` "relu" or "tanh", ``loss`` "cross_entropy" (integer labels)
    or "bce" (binary cross-entropy with logits)."""
    jax, jnp = peers.jax()
    act = {"relu": jax.nn.relu, "tanh": jnp.tanh}[activation]
    y = jnp.asarray(y)

    def value(params, X):
        h = X
        for i in range(0, len(params), 2):
            h = h @ params[i].T + params[i + 1]
            if i + 2 < len(params):
                h = act(h)
        if loss == "bce":
            return jnp.mean(jax.nn.softplus(h) - y * h)
        return jnp.mean(jax.nn.logsumexp(h, axis=1) - jnp.take_along_axis(h, y[:, None], axis=1)[:, 0])
    return value


def _jax_step(net, activation, loss, lr, X, y):
    """JAX's jit of value_and_grad and the SGD update, from the chainrule model's initial weights."""
    params = [p.numpy().copy() for p in net.parameters()]
    return jax_stepper(jax_sgd(_jax_loss(activation, loss, y), lr), params, X)


def _training_step(model, loss_fn, opt, X, y):
    """One step of a chainrule or PyTorch model, loss and optimizer (the two share these names);
    it returns the loss and the updated parameters, for the check against numpy."""
    params = list(model.parameters())

    def step():
        opt.zero_grad()
        loss = loss_fn(model(X), y)
        loss.backward()
        opt.step()
        return loss, params
    return step


def _transposed_view(params):
    # the numpy steps keep W as (in, out); show it as (out, in) like the modules, for the check
    return [p.T if p.ndim == 2 else p for p in params]


# ---------------------------------------------------------------- (a) 784-256-256-10, float32


def _mnist_like(dtype=np.float32):
    rng = np.random.default_rng(0)
    return rng.standard_normal((BATCH, SIZES[0])).astype(dtype), rng.integers(0, SIZES[-1], BATCH)


def big_numpy():
    X, y = _mnist_like()
    params = _weights(_net(SIZES, "relu", np.float32))
    step = mlp_numpy_step_fn(X, y, params, lr=LR)

    def run():
        loss, ps = step()
        return loss, _transposed_view(ps)
    return run


def big_chainrule():
    X, y = _mnist_like()
    net = _net(SIZES, "relu", np.float32)
    return _training_step(net, cr.nn.CrossEntropyLoss(), cr.optim.SGD(net.parameters(), lr=LR), X, y)


def _compiled_sgd(net, loss_fn, lr, y):
    """One SGD step of ``net`` as a compiled program (a new ``cr.compile`` at every call): the
    parameters as a dict through ``functional_call``, the update in the same program (labels:
    constants of it)."""
    from chainrule.nn.module import functional_call

    def loss(params, X):
        return loss_fn(functional_call(net, params, X), y)

    def sgd(params, X):
        value, grads = cr.value_and_grad(loss)(params, X)
        return value, {k: params[k] - lr * grads[k] for k in params}
    return cr.compile(sgd)


def _compiled_step(net, loss_fn, lr, X, y):
    compiled = _compiled_sgd(net, loss_fn, lr, y)
    state = [{k: p.numpy().copy() for k, p in net.named_parameters()}]

    def step():
        value, state[0] = compiled(state[0], X)
        ps = state[0]
        return value, [ps[name] for name in names]  # the modules' order and (out, in) layout
    names = [k for k, _ in net.named_parameters()]
    return step


def big_compiled():
    X, y = _mnist_like()
    return _compiled_step(_net(SIZES, "relu", np.float32), cr.nn.functional.cross_entropy, LR, X, y)


def big_jax():
    X, y = _mnist_like()
    return _jax_step(_net(SIZES, "relu", np.float32), "relu", "cross_entropy", LR, X, y)


def big_torch():
    X, y = _mnist_like()
    return _torch_step(_net(SIZES, "relu", np.float32), "ReLU", "CrossEntropyLoss", LR, X, y)


def big_torch_compile():
    X, y = _mnist_like()
    return _torch_step(_net(SIZES, "relu", np.float32), "ReLU", "CrossEntropyLoss", LR, X, y, compile=True)


# ---------------------------------------------------------------- the first call of the 784 step
# Each call of these steps builds the compiled step anew and runs it once: trace, generate (or
# compile) and the first step together, what a user waits for before training starts.


def first_compiled():
    X, y = _mnist_like()
    net = _net(SIZES, "relu", np.float32)
    params = {k: p.numpy().copy() for k, p in net.named_parameters()}
    names = list(params)

    def step():
        value, new = _compiled_sgd(net, cr.nn.functional.cross_entropy, LR, y)(params, X)
        return value, [new[k] for k in names]
    return step


def first_jax():
    jax, _ = peers.jax()
    X, y = _mnist_like()
    params = [p.numpy().copy() for p in _net(SIZES, "relu", np.float32).parameters()]

    def step():
        jax.clear_caches()  # and a new function object: nothing of the last round is reused
        return jax_stepper(jax_sgd(_jax_loss("relu", "cross_entropy", y), LR), params, X)()
    return step


def first_torch_compile():
    """torch.compile's first call after ``torch._dynamo.reset()`` (inductor's on-disk cache of
    compiled graphs stays on, as torch ships it: later rounds may find their kernels there)."""
    X, y = _mnist_like()
    net = _net(SIZES, "relu", np.float32)
    return lambda: _torch_step(net, "ReLU", "CrossEntropyLoss", LR, X, y, compile=True)()

# ---------------------------------------------------------------- (b) 2-16-16-1 tanh, float64

SMALL = (2, 16, 16, 1)
SMALL_BATCH = 32
SMALL_LR = 0.1


def _blobs():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((SMALL_BATCH, 2))
    y = (X[:, :1] * X[:, 1:] > 0).astype(np.float64)  # XOR-like labels, shape (32, 1)
    return X, y


def small_numpy():
    X, y = _blobs()
    W1, b1, W2, b2, W3, b3 = params = _weights(_net(SMALL, "tanh", np.float64))
    n = len(y)

    def step():
        h1 = X @ W1
        h1 += b1
        np.tanh(h1, out=h1)
        h2 = h1 @ W2
        h2 += b2
        np.tanh(h2, out=h2)
        z = h2 @ W3
        z += b3
        # loss = mean(softplus(z) - y z); dloss/dz = (sigmoid(z) - y) / n
        loss = np.mean(np.logaddexp(0, z) - y * z)
        g3 = 1 / (1 + np.exp(-z))
        g3 -= y
        g3 /= n
        gW3 = h2.T @ g3
        gb3 = g3.sum(axis=0)
        g2 = g3 @ W3.T
        g2 *= 1 - h2 * h2
        gW2 = h1.T @ g2
        gb2 = g2.sum(axis=0)
        g1 = g2 @ W2.T
        g1 *= 1 - h1 * h1
        gW1 = X.T @ g1
        gb1 = g1.sum(axis=0)
        for p, g in zip(params, (gW1, gb1, gW2, gb2, gW3, gb3)):
            g *= SMALL_LR
            p -= g
        return loss, _transposed_view(params)
    return step


def small_chainrule():
    X, y = _blobs()
    net = _net(SMALL, "tanh", np.float64)
    return _training_step(net, cr.nn.BCEWithLogitsLoss(), cr.optim.SGD(net.parameters(), lr=SMALL_LR), X, y)


def small_compiled():
    X, y = _blobs()
    return _compiled_step(_net(SMALL, "tanh", np.float64), cr.nn.functional.binary_cross_entropy_with_logits,
                          SMALL_LR, X, y)


def small_jax():
    X, y = _blobs()
    return _jax_step(_net(SMALL, "tanh", np.float64), "tanh", "bce", SMALL_LR, X, y)


def small_torch():
    X, y = _blobs()
    return _torch_step(_net(SMALL, "tanh", np.float64), "Tanh", "BCEWithLogitsLoss", SMALL_LR, X, y)


def small_torch_compile():
    X, y = _blobs()
    return _torch_step(_net(SMALL, "tanh", np.float64), "Tanh", "BCEWithLogitsLoss", SMALL_LR, X, y,
                       compile=True)


def small_autograd():
    ag = peers.autograd()
    import autograd.numpy as anp

    X, y = _blobs()
    params = _weights(_net(SMALL, "tanh", np.float64))

    def loss(params):
        W1, b1, W2, b2, W3, b3 = params
        h1 = anp.tanh(anp.dot(X, W1) + b1)
        h2 = anp.tanh(anp.dot(h1, W2) + b2)
        z = anp.dot(h2, W3) + b3
        return anp.mean(anp.logaddexp(0, z) - y * z)
    vg = ag.value_and_grad(loss)

    def step():
        value, grads = vg(params)
        for p, g in zip(params, grads):
            g *= SMALL_LR
            p -= g
        return value, _transposed_view(params)
    return step


def cases():
    return [
        Case("nn", "mlp_step_nn", "SGD step through MLP + CrossEntropyLoss + SGD, 784-256-256-10, batch 128, float32",
             {"numpy": big_numpy, "chainrule": big_chainrule, "compiled": big_compiled, "jax": big_jax,
              "torch": big_torch, "torch_compile": big_torch_compile},
             target=1.10, targets={"compiled": 0.92}, reported={"torch": 1.20, "jax": 0.88}, rtol=2e-4, atol=1e-6),
        Case("nn", "small_tanh_bce", "SGD step, 2-16-16-1 tanh, BCEWithLogitsLoss, batch 32, float64",
             {"numpy": small_numpy, "chainrule": small_chainrule, "compiled": small_compiled, "jax": small_jax,
              "torch": small_torch, "torch_compile": small_torch_compile, "autograd": small_autograd},
             target=2.5, targets={"compiled": 1.2}, reported={"torch": 4.8, "autograd": 10.9, "jax": 0.52}, rtol=1e-9, atol=1e-12),
        # the baseline is one numpy step: read the absolute times (issue 13: at most 50 ms compiled)
        Case("nn", "first_call_784", "first call (trace + generate/compile + run) of the 784-256-256-10 step",
             {"numpy": big_numpy, "compiled": first_compiled, "jax": first_jax,
              "torch_compile": first_torch_compile},
             rtol=2e-4, atol=1e-6, rounds=7),
    ]
