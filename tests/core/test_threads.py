"""Mode state (grad mode, anomaly mode) is per thread and per asyncio task.

The race scenarios run their threads with a short interpreter switch interval so that threads
interleave every few operations: with a process-wide grad mode they fail in every run (a thread's
``backward()`` or ``no_grad`` block switches recording off under another thread's forward pass).
Every thread is joined with a timeout, and models are small: a scenario takes well under a second.
"""
from __future__ import annotations

import asyncio
import sys
import threading
from contextlib import contextmanager

import numpy as np
import pytest

import chainrule as cr

TIMEOUT = 10  # seconds: a generous bound for any one wait or thread of a scenario
STEPS = 40


@contextmanager
def interleaving():
    """Threads switch every ~10 microseconds (a few primitive calls) instead of every 5 ms."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        yield
    finally:
        sys.setswitchinterval(old)


def run_threads(workers):
    """Run each worker in its own thread, all released together; their results, in order.
    An exception in a worker is raised here; a thread still alive after TIMEOUT fails the test."""
    results = [None] * len(workers)
    errors = []
    start = threading.Barrier(len(workers))

    def body(i, fn):
        try:
            start.wait(TIMEOUT)
            results[i] = fn()
        except BaseException as err:  # noqa: BLE001 - re-raised in the main thread
            errors.append(err)

    threads = [threading.Thread(target=body, args=(i, fn), daemon=True) for i, fn in enumerate(workers)]
    with interleaving():
        for t in threads:
            t.start()
        for t in threads:
            t.join(TIMEOUT)
    assert not any(t.is_alive() for t in threads), "a worker thread did not finish in time"
    if errors:
        raise errors[0]
    return results


# ---------------------------------------------------------------- the workers
def _data(seed):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((16, 3))
    return X, (X[:, :1] * X[:, 1:2] > 0).astype(np.float64)


def train(seed, steps=STEPS):
    """Train a 3-8-8-1 tanh MLP with SGD from a fixed seed; its final weights. Every step checks
    that every parameter received a gradient (a missing one would be skipped by the optimizer)."""
    X, y = _data(seed)
    model = cr.nn.MLP(3, [8, 8], 1, activation="tanh", rng=seed)
    params = list(model.parameters())
    opt = cr.optim.SGD(params, lr=0.1)
    loss_fn = cr.nn.BCEWithLogitsLoss()
    for step in range(steps):
        opt.zero_grad()
        loss = loss_fn(model(X), y)
        loss.backward()
        missing = [i for i, p in enumerate(params) if p.grad is None]
        assert not missing, f"step {step}: parameters {missing} got no gradient"
        opt.step()
    return [p.numpy().copy() for p in params]


def infer_under_no_grad(seed, running, done):
    """Forward passes inside one no_grad block (``running`` set once inside) until ``done`` is
    set (at most a bounded number)."""
    X, _ = _data(seed)
    model = cr.nn.MLP(3, [8, 8], 1, activation="tanh", rng=seed)
    with cr.no_grad():
        first = model(X).numpy().copy()
        running.set()  # the trainer starts while this thread is inside the block
        for _ in range(20000):
            out = model(X)
            assert not out.requires_grad
            np.testing.assert_array_equal(out.numpy(), first)
            if done.is_set():
                break
    return True


def _loss(w, x):
    return cr.sum(cr.tanh(w * x) ** 2) + cr.sum(w ** 3) / 3


FUNCTIONAL = {
    # the tape: grad at float numbers
    "grad at floats": lambda: cr.grad(lambda a, b: a * cr.sin(b) + a ** 2 / b, argnums=(0, 1))(0.7, 1.3),
    # the graph of Tensors: grad at arrays
    "grad at arrays": lambda: cr.grad(_loss)(np.array([0.2, -0.5, 1.1]), np.array([1.0, 2.0, 3.0])),
    "value_and_grad": lambda: cr.value_and_grad(_loss)(np.array([0.3, 0.4]), np.array([-1.0, 2.0])),
    # nested levels: forward over reverse, reverse over forward, reverse over reverse
    "hvp": lambda: cr.hvp(lambda w: _loss(w, np.array([1.0, -2.0, 0.5])), (np.array([0.1, 0.2, 0.3]),),
                          (np.array([1.0, 0.0, -1.0]),)),
    "grad of jvp": lambda: cr.grad(lambda x: cr.jvp(lambda u: cr.sin(u) * u, (x,), (1.0,))[1])(0.9),
    "grad of grad": lambda: cr.grad(cr.grad(lambda x: x * cr.exp(x) * cr.cos(x)))(0.4),
    "jvp": lambda: cr.jvp(lambda x: cr.tanh(x) * x, (np.array([0.5, -1.5]),), (np.array([1.0, 2.0]),)),
    "jacobian": lambda: cr.jacobian(lambda x: cr.tanh(x * x[::-1]))(np.array([0.3, 0.6, -0.2])),
    # a trace keeps its own `group` blocks
    "trace with groups": lambda: [(n.name, n.group) for n in cr.trace(_grouped, 0.5).nodes],
}


def _grouped(x):
    with cr.viz.group("layer 1"):
        h = cr.tanh(2 * x)
    with cr.viz.group("layer 2"):
        return cr.sin(h * h)


def repeated(fn, n=60):
    return [fn() for _ in range(n)]


def assert_same(got, want):
    """Equal leaf by leaf, bitwise (the same operations on the same numbers)."""
    if isinstance(want, (tuple, list)):
        assert isinstance(got, (tuple, list)) and len(got) == len(want)
        for g, w in zip(got, want):
            assert_same(g, w)
    else:
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want))


# ---------------------------------------------------------------- the race scenarios, one table
def n_models():
    seeds = range(4)
    return [lambda s=s: train(s) for s in seeds], [train(s) for s in seeds]


def training_beside_inference():
    running, done = threading.Event(), threading.Event()

    def trainer():
        running.wait(TIMEOUT)
        try:
            return train(0)
        finally:
            done.set()
    return [trainer, lambda: infer_under_no_grad(1, running, done)], [train(0), True]


def functional_beside_training():
    names = list(FUNCTIONAL)
    workers = [lambda f=FUNCTIONAL[k]: repeated(f) for k in names] + [lambda: train(2)]
    expected = [repeated(FUNCTIONAL[k], 1) * 60 for k in names] + [train(2)]
    return workers, expected


def traces_in_threads():
    trace = FUNCTIONAL["trace with groups"]
    return [lambda: repeated(trace) for _ in range(3)], [repeated(trace, 1) * 60] * 3


SCENARIOS = {
    "N threads train N models: the weights of N sequential runs": n_models,
    "training beside inference under no_grad": training_beside_inference,
    "grad, jvp, hvp, jacobian (tape and graph), trace beside training": functional_beside_training,
    "traces with groups in threads": traces_in_threads,
}


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_threads_do_not_disturb_each_other(scenario):
    workers, expected = SCENARIOS[scenario]()
    got = run_threads(workers)
    for g, w in zip(got, expected):
        assert_same(g, w)


# ---------------------------------------------------------------- ordered interleavings
def test_interleaved_no_grad_blocks_leave_recording_on():
    # A enters, B enters, A exits, B exits: with one process-wide flag B restores "off" for everyone.
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()
    after = {}

    def a():
        with cr.no_grad():
            a_in.set()
            b_in.wait(TIMEOUT)
        a_out.set()
        after["a"] = cr.is_grad_enabled()

    def b():
        a_in.wait(TIMEOUT)
        with cr.no_grad():
            b_in.set()
            a_out.wait(TIMEOUT)
        after["b"] = cr.is_grad_enabled()

    run_threads([a, b])
    assert after == {"a": True, "b": True}
    assert cr.is_grad_enabled()
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    assert (x * x).requires_grad


def test_no_grad_in_one_thread_leaves_another_recording():
    inside, checked = threading.Event(), threading.Event()

    def quiet():
        with cr.no_grad():
            inside.set()
            checked.wait(TIMEOUT)
            return cr.is_grad_enabled()

    def recording():
        inside.wait(TIMEOUT)
        try:
            x = cr.tensor(3.0, requires_grad=True)
            y = x * x
            y.backward()
            return cr.is_grad_enabled(), y.requires_grad, float(x.grad)
        finally:
            checked.set()

    assert run_threads([quiet, recording]) == [False, (True, True, 6.0)]


def test_one_no_grad_object_entered_again_inside_its_block_restores_recording():
    quiet = cr.no_grad()
    with quiet:
        with quiet:
            assert not cr.is_grad_enabled()
        assert not cr.is_grad_enabled()  # still inside the outer block
    assert cr.is_grad_enabled()
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    assert (x * x).requires_grad


def test_one_no_grad_object_shared_by_threads_restores_each_threads_mode():
    # B enters the shared object inside a no_grad block of its own, A enters it after B: B's exit
    # must give B "off" (its outer block), A's exit "on", whatever the other did with the object.
    shared = cr.no_grad()
    b_in, a_in, b_out = threading.Event(), threading.Event(), threading.Event()
    after = {}

    def a():
        b_in.wait(TIMEOUT)
        with shared:
            a_in.set()
            b_out.wait(TIMEOUT)
        after["a"] = cr.is_grad_enabled()

    def b():
        with cr.no_grad():
            with shared:
                b_in.set()
                a_in.wait(TIMEOUT)
            after["b inside its outer block"] = cr.is_grad_enabled()
            b_out.set()
        after["b"] = cr.is_grad_enabled()

    run_threads([a, b])
    assert after == {"a": True, "b inside its outer block": False, "b": True}


def test_a_block_left_in_another_thread_changes_nothing_there():
    # a generator's `with cr.no_grad():` closed by another thread: its exit has nothing to restore there
    quiet = cr.no_grad()
    quiet.__enter__()
    errors = []

    def leave():
        try:
            quiet.__exit__(None, None, None)
            errors.append(cr.is_grad_enabled())
        except Exception as err:  # noqa: BLE001 - the test reports it
            errors.append(err)

    t = threading.Thread(target=leave)
    t.start()
    t.join(TIMEOUT)
    assert errors == [True]
    assert not cr.is_grad_enabled()
    quiet.__exit__(None, None, None)
    assert cr.is_grad_enabled()


def test_a_new_thread_starts_with_the_default_modes():
    seen = []
    with cr.no_grad():
        t = threading.Thread(target=lambda: seen.append(cr.is_grad_enabled()))
        t.start()
        t.join(TIMEOUT)
    assert seen == [True]


def test_anomaly_mode_is_per_thread():
    inside, checked = threading.Event(), threading.Event()

    def detecting():
        with cr.detect_anomaly():
            inside.set()
            checked.wait(TIMEOUT)

    def plain():
        inside.wait(TIMEOUT)
        try:
            x = cr.tensor([1.0, -1.0], requires_grad=True)
            with np.errstate(all="ignore"):
                return np.isnan(cr.log(x).numpy()).tolist()  # NaN without an AnomalyError here
        finally:
            checked.set()

    assert run_threads([detecting, plain])[1] == [False, True]


@pytest.mark.parametrize("create_graph, other_mode", [(False, cr.enable_grad), (True, cr.no_grad)])
def test_backward_in_one_thread_leaves_the_mode_of_another(create_graph, other_mode):
    # backward() records its walk (create_graph=True) or not, in its own thread alone: pause
    # inside the walk and look from another thread, which is in the other mode.
    walking, checked = threading.Event(), threading.Event()
    seen = {}

    def inside_walk():
        from chainrule.modes import reverse

        x = cr.tensor(2.0, requires_grad=True)
        y = cr.exp(x * 3.0)
        real = reverse._walk

        def pausing(*args):
            walking.set()
            checked.wait(TIMEOUT)
            return real(*args)
        reverse._walk = pausing
        try:
            y.backward(create_graph=create_graph)
        finally:
            reverse._walk = real
        return float(x.grad)

    def other():
        with other_mode():
            walking.wait(TIMEOUT)
            try:
                seen["enabled"] = cr.is_grad_enabled()
                w = cr.tensor(1.0, requires_grad=True)
                seen["records"] = (w * w).requires_grad
            finally:
                checked.set()

    run_threads([inside_walk, other])
    expected = other_mode is cr.enable_grad
    assert seen == {"enabled": expected, "records": expected}


# ---------------------------------------------------------------- asyncio tasks
def test_asyncio_tasks_have_their_own_grad_mode():
    async def quiet(entered, resume):
        with cr.no_grad():
            entered.set()
            await resume.wait()  # across an await: the other task runs meanwhile
            x = cr.tensor(1.0, requires_grad=True)
            return cr.is_grad_enabled(), (x * x).requires_grad

    async def recording(entered, resume):
        await entered.wait()
        try:
            x = cr.tensor(3.0, requires_grad=True)
            y = x * x
            y.backward()
            return cr.is_grad_enabled(), y.requires_grad, float(x.grad)
        finally:
            resume.set()

    async def main():
        entered, resume = asyncio.Event(), asyncio.Event()
        got = await asyncio.wait_for(asyncio.gather(quiet(entered, resume), recording(entered, resume)), TIMEOUT)
        return got, cr.is_grad_enabled()

    (q, r), after = asyncio.run(main())
    assert q == (False, False)
    assert r == (True, True, 6.0)
    assert after
