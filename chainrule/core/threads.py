"""How many BLAS threads chainrule's training runs with: one for small matrix products, the
libraries' own choice for large ones.

The rule. A training step's cost is dominated by its largest matrix product, the
``batch x fan_in x fan_out`` multiply-adds of its widest layer (:func:`largest_product`). Below
:data:`MIN_PARALLEL_WORK` multiply-adds, BLAS runs on one thread; at or above it, the pools keep
the threads they had. ``cr.fit`` (so the scikit-learn estimators too) and every ``chainrule``
command apply the rule by default; commands that know no sizes before they start run on one
thread, and the training inside ``chainrule train`` decides again from its network.

Why. OpenBLAS splits a product of more than 65536 x 4 multiply-adds over its threads, and after
a product its threads keep spinning, waiting for work, on the cores that numpy's elementwise
operations and the Python interpreter need; where the machine is busy, each split product also
waits for its second thread to be scheduled. On a shared 2-core machine (OpenBLAS 0.3.31, Haswell
kernel), a numpy-only float32 forward and backward pass of a 3-layer MLP, 2 threads against 1,
median of 12 interleaved rounds (in brackets the quartiles of the per-round ratio; "busy": load 3
to 6 from other processes):

    largest product   b x in x out        2 threads / 1, quiet   same, machine busy
    2.6e5             64 x 64 x 64        0.99 (0.94-1.07)       0.99 (0.87-1.03)
    2.0e6             200 x 64 x 100      3.1 (1.9-8.4)          77 (64-84)
    8.4e6             128 x 256 x 256     3.8 (1.5-5.7)          16 (3.1-24)
    2.6e7             128 x 784 x 256     0.77 (0.66-3.9)        2.4 (1.8-3.4)
    6.7e7             256 x 512 x 512     0.56 (0.51-0.63)       3.1 (2.2-8.1)
    2.7e8             256 x 1024 x 1024   0.60 (0.55-0.63)       3.1 (1.3-4.4)

Two threads pay only from about 5e7 multiply-adds on, and only on a quiet machine; below it they
cost up to 80 times the single-threaded time. Training scikit-learn's default network on digits
(64-100-10, batch 200: 1.3e6) took 23.7 s at the default threads against 1.5 s on one, and at
load 4 to 7, 49 to 64 s against 3.5 to 4.9 s under this rule.

Overriding it, strongest first: ``cr.fit(..., threads=N)`` or ``with blas_threads(threads=N):``
around any code (N threads; 0: the libraries' default, no limit); ``chainrule --threads N``
(any command); the environment variable ``CHAINRULE_THREADS=N``. Settings of the user's own are
left alone: with ``OMP_NUM_THREADS``, ``OPENBLAS_NUM_THREADS``, ``MKL_NUM_THREADS``,
``BLIS_NUM_THREADS`` or ``VECLIB_MAXIMUM_THREADS`` set, or BLAS pools already running fewer
threads than the CPUs this process may use (``threadpoolctl.threadpool_limits`` of the user's own),
chainrule changes nothing; and the rule never gives a pool more threads than it had.

threadpoolctl does the limiting; it is imported on first use, so ``import chainrule`` does not
pay for it (without it the rule does nothing).
"""
from __future__ import annotations

import contextlib
import contextvars
import os
import threading

__all__ = ["ENV", "MIN_PARALLEL_WORK", "SERIAL_WORK", "blas_threads", "for_training", "largest_product",
           "parse_threads"]

ENV = "CHAINRULE_THREADS"
MIN_PARALLEL_WORK = 5e7  # multiply-adds of the largest matrix product from which threads may pay
# OpenBLAS computes a product of up to this many multiply-adds on one thread whatever its pool
# (SMP_THRESHOLD_MIN x GEMM_MULTITHREAD_THRESHOLD): code whose products are all this small needs
# no policy, and can skip the 0.4 ms that setting one costs.
SERIAL_WORK = 65536 * 4
# Environment variables by which users choose BLAS and OpenMP threads themselves.
USER_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS",
            "VECLIB_MAXIMUM_THREADS")


class _Policy:
    """What an active :func:`blas_threads` asked for and found: nested ones (``chainrule train``
    inside the command line's) inherit the request, and may go back to the thread count that the
    pools had before chainrule limited them, never above it."""

    __slots__ = ("requested", "before", "hands_off")

    def __init__(self, requested, before, hands_off):
        self.requested, self.before, self.hands_off = requested, before, hands_off


_active: contextvars.ContextVar[_Policy | None] = contextvars.ContextVar("chainrule_blas_threads",
                                                                       default=None)
# The BLAS pools are one per process, while policies are per thread: only the first thread to
# enter one sets the pools (and restores them as they were when it leaves); a policy entered in
# another thread meanwhile leaves them alone, so no thread restores a limit another one set.
_holders = 0
_holders_lock = threading.Lock()


def parse_threads(value, where="threads"):
    """None or "auto" -> None (the rule); a whole number >= 0 (an int or its digits) -> that number
    (0: the libraries' default); anything else a ValueError naming ``where``.

    >>> parse_threads("auto"), parse_threads("2"), parse_threads(0)
    (None, 2, 0)
    """
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "auto")):
        return None
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    raise ValueError(f"{where} must be 'auto', 0 (the BLAS libraries' default) or a positive number of "
                     f"threads, got {value!r}")


def largest_product(params, rows):
    """Multiply-adds of the largest matrix product of a layer: ``rows x fan_in x fan_out`` for the
    biggest weight matrix among ``params`` (Tensors or arrays; a Module's ``parameters()``).

    >>> import numpy as np
    >>> largest_product([np.zeros((256, 784)), np.zeros(256), np.zeros((10, 256))], 128)
    25690112
    """
    biggest = 0
    for p in params:
        shape = p.shape
        if len(shape) >= 2:
            size = 1
            for n in shape:
                size *= int(n)
            biggest = max(biggest, size)
    return int(rows) * biggest


def _controller():
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # the rule only makes things faster, never different
        return None
    return ThreadpoolController().select(user_api="blas")


def _cpus():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@contextlib.contextmanager
def blas_threads(work=None, threads=None):
    """Run the block with the BLAS threads the rule chooses for a largest matrix product of
    ``work`` multiply-adds (None: unknown, one thread), or with ``threads`` (see the module's
    docstring for the rule, the figures behind it and the settings it respects).

    >>> import numpy as np
    >>> with blas_threads(work=64 * 64 * 64):   # a small network: one BLAS thread
    ...     _ = np.ones((64, 64)) @ np.ones((64, 64))
    """
    outer = _active.get()
    if threads is not None:
        requested = parse_threads(threads)
    elif outer is not None:
        requested = outer.requested
    else:
        requested = parse_threads(os.environ.get(ENV), f"the environment variable {ENV}")
    ctl = _controller()
    if ctl is None or not ctl.lib_controllers:
        yield
        return
    now = max(lib.num_threads for lib in ctl.lib_controllers)
    global _holders
    first = False
    if outer is not None:
        before, hands_off = outer.before, outer.hands_off
    else:
        with _holders_lock:
            first = _holders == 0
            _holders += 1
        before = now
        hands_off = (not first or any(os.environ.get(name) for name in USER_ENV) or 1 < now < _cpus())
    if requested is None:  # the rule
        small = work is None or work < MIN_PARALLEL_WORK
        want = None if hands_off else (1 if small else before)
    else:
        want = requested or before  # 0: the libraries' default (as they were before chainrule)
    if not first and outer is None:
        want = None  # another thread's policy holds the pools (see _holders)
    token = _active.set(_Policy(requested, before, hands_off))
    try:
        if want is None or want == now:
            yield
        else:
            with ctl.limit(limits=want):
                yield
    finally:
        _active.reset(token)
        if outer is None:
            with _holders_lock:
                _holders -= 1


def for_training(fit):
    """Decorator of a training function ``fit(model, ..., batch_size=..., threads=None)``: the call
    runs under :func:`blas_threads` for the model's largest product at that batch size, or with
    its ``threads``. (Bad arguments are left for ``fit`` itself to report.)"""
    import functools
    import inspect

    default_batch = inspect.signature(fit).parameters["batch_size"].default

    @functools.wraps(fit)
    def run(model, *args, **kwargs):
        batch = kwargs.get("batch_size", default_batch)
        try:
            work = largest_product(model.parameters(), batch) if int(batch) >= 1 else None
        except (AttributeError, TypeError, ValueError):
            work = None
        with blas_threads(work, kwargs.get("threads")):
            return fit(model, *args, **kwargs)
    return run
