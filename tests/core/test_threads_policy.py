"""The BLAS thread policy (chainrule.core.threads): one thread for small matrix products, the
pools left alone for large ones, applied inside fit, the scikit-learn estimators and the command
line, and never over a setting of the user's own. Threads are read with threadpoolctl from inside
the running code (nothing is timed)."""
import numpy as np
import pytest

threadpoolctl = pytest.importorskip("threadpoolctl")

import chainrule as cr  # noqa: E402
from chainrule.core import threads  # noqa: E402
from chainrule.core.threads import MIN_PARALLEL_WORK, blas_threads, largest_product, parse_threads  # noqa: E402


def blas_now():
    """The most threads any loaded BLAS pool runs now."""
    return max(lib["num_threads"] for lib in threadpoolctl.threadpool_info() if lib["user_api"] == "blas")


@pytest.fixture
def pools(monkeypatch):
    """BLAS pools at their default of more than one thread, and no setting of the user's own in the
    environment; gives that default."""
    for name in (threads.ENV, *threads.USER_ENV):
        monkeypatch.delenv(name, raising=False)
    default = blas_now()
    if default < 2:
        pytest.skip("the BLAS pools run one thread here: nothing to limit")
    return default


@pytest.fixture
def spy_forward(monkeypatch):
    """Record the BLAS threads at every forward pass of an MLP (the real forward runs)."""
    seen = []
    forward = cr.nn.MLP.forward

    def recording(self, x):
        seen.append(blas_now())
        return forward(self, x)
    monkeypatch.setattr(cr.nn.MLP, "forward", recording)
    return seen


# ------------------------------------------------------------------------ the rule itself
def test_small_work_runs_on_one_thread(pools):
    with blas_threads(work=128 * 784 * 256):  # the 784-256-256-10 network at batch 128
        assert blas_now() == 1
    with blas_threads():  # sizes unknown (a command line before it knows its data)
        assert blas_now() == 1
    assert blas_now() == pools  # and back afterwards


def test_large_work_leaves_the_pools_alone(pools):
    with blas_threads(work=MIN_PARALLEL_WORK):
        assert blas_now() == pools


def test_nested_large_work_goes_back_to_the_threads_found_first(pools):
    """`chainrule train` runs fit inside the command line's one-thread policy: a large network
    gets back the threads the pools had before chainrule limited them (never more)."""
    with blas_threads():
        assert blas_now() == 1
        with blas_threads(work=10 * MIN_PARALLEL_WORK):
            assert blas_now() == pools
        with blas_threads(work=1000):
            assert blas_now() == 1


def test_policies_in_two_threads_leave_the_pools_as_they_were(pools):
    """The pools are one per process: thread A limits them to one thread, thread B enters asking
    for two while A trains, A leaves first, then B. B must not restore A's limit on leaving, so the
    default comes back (the second policy leaves the pools to the first)."""
    import threading

    b_in, a_out = threading.Event(), threading.Event()

    def a():
        with blas_threads(work=64):
            b_in.wait(10)
        a_out.set()

    def b():
        with blas_threads(threads=2):
            b_in.set()
            a_out.wait(10)

    ta = threading.Thread(target=a)
    ta.start()
    while blas_now() != 1 and ta.is_alive():  # A holds the pools
        pass
    tb = threading.Thread(target=b)
    tb.start()
    ta.join(20); tb.join(20)
    assert blas_now() == pools


def test_explicit_threads_and_environment(pools, monkeypatch):
    with blas_threads(work=10 * MIN_PARALLEL_WORK, threads=1):
        assert blas_now() == 1
    with blas_threads(threads=1):
        with blas_threads(work=1000, threads=0):  # 0: the libraries' own choice
            assert blas_now() == pools
    monkeypatch.setenv(threads.ENV, "0")
    with blas_threads(work=1000):
        assert blas_now() == pools
    monkeypatch.setenv(threads.ENV, "many")
    with pytest.raises(ValueError, match="CHAINRULE_THREADS must be"):
        with blas_threads(work=1000):
            pass


@pytest.mark.parametrize("name", ["OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"])
def test_a_users_environment_variable_is_respected(pools, monkeypatch, name):
    monkeypatch.setenv(name, str(pools))
    with blas_threads(work=1000):
        assert blas_now() == pools


def test_a_users_threadpool_limits_is_respected(pools, monkeypatch):
    """A pool running fewer threads than the CPUs is the user's own limit: kept. (This machine's
    CPU count is raised so that a limit between one thread and all of them exists.)"""
    monkeypatch.setattr(threads, "_cpus", lambda: pools + 2)
    with threadpoolctl.threadpool_limits(limits=pools, user_api="blas"):
        with blas_threads(work=1000):
            assert blas_now() == pools


def test_largest_product_and_parse():
    net = cr.nn.MLP(784, [256, 256], 10, rng=0)
    assert largest_product(net.parameters(), 128) == 128 * 784 * 256
    assert [parse_threads(v) for v in (None, "auto", " 3 ", 0, 4)] == [None, None, 3, 0, 4]
    for bad in (-1, "x", 1.5, True):
        with pytest.raises(ValueError, match="threads must be"):
            parse_threads(bad)


# ------------------------------------------------------------------------ where it applies
def test_fit_applies_the_policy(pools, spy_forward):
    X, y = cr.data.xor(n=64, seed=0)
    seen_in_callback = []
    model = cr.nn.MLP(2, [8], 2, rng=0)
    opt = cr.optim.SGD(model.parameters(), lr=0.1)
    cr.fit(model, "cross_entropy", X, y, optimizer=opt, epochs=2, progress=False,
           callbacks=[lambda epoch, logs: seen_in_callback.append(blas_now())])
    assert set(spy_forward) == {1} and seen_in_callback == [1, 1]
    cr.fit(model, "cross_entropy", X, y, optimizer=opt, epochs=1, progress=False, threads=0)
    assert spy_forward[-1] == pools
    assert blas_now() == pools
    with pytest.raises(ValueError, match="threads must be"):
        cr.fit(model, "cross_entropy", X, y, optimizer=opt, epochs=1, progress=False, threads=-2)


def test_fit_of_a_large_network_keeps_the_threads(pools, spy_forward):
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((64, 1024)), rng.integers(0, 2, 64)
    model = cr.nn.MLP(1024, [1024], 2, rng=0)  # 64 x 1024 x 1024 = 6.7e7 multiply-adds
    cr.fit(model, "cross_entropy", X, y, optimizer=cr.optim.SGD(model.parameters(), lr=0.01),
           epochs=1, batch_size=64, progress=False)
    assert set(spy_forward) == {pools}


def test_sklearn_estimators_apply_the_policy(pools, spy_forward):
    sk = pytest.importorskip("chainrule.sklearn")
    X, y = cr.data.xor(n=64, seed=0)
    clf = sk.MLPClassifier(hidden_layer_sizes=(64,), max_iter=2, random_state=0).fit(X, y)
    assert spy_forward and set(spy_forward) == {1}
    spy_forward.clear()
    clf.predict(np.tile(X, (100, 1)))  # 6400 x 2 x 64 multiply-adds: OpenBLAS would split them
    assert spy_forward == [1]
    reg = sk.MLPRegressor(hidden_layer_sizes=(8,), max_iter=2, random_state=0)
    with blas_threads(threads=0):  # a user's override reaches through the estimator
        reg.fit(X, y.astype(float))
    assert spy_forward[-1] == pools


def test_command_line_applies_the_policy(pools, spy_forward, tmp_path, capsys):
    from chainrule.cli import main

    argv = ["train", "--data", "xor", "--epochs", "1", "--no-progress", "--no-figures"]
    assert main(argv + ["--out", str(tmp_path / "a")]) == 0
    assert set(spy_forward) == {1}
    spy_forward.clear()
    assert main(["--threads", "0"] + argv + ["--out", str(tmp_path / "b")]) == 0
    assert set(spy_forward) == {pools}
    spy_forward.clear()
    assert main(argv + ["--out", str(tmp_path / "c"), "--threads", "0"]) == 0
    assert set(spy_forward) == {pools}
    spy_forward.clear()
    model = str(tmp_path / "a" / "model.safetensors")
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:
        main(["evaluate", model, "xor", "--threads", "-1"])
    assert stop.value.code == 2 and "--threads" in capsys.readouterr().err
    assert blas_now() == pools


def test_doctests():
    import doctest

    result = doctest.testmod(threads)
    assert result.failed == 0 and result.attempted > 0
