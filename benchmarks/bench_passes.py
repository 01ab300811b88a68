"""What each optimisation of ``cr.compile`` is worth (issue 13): its five cases, compiled with every
pass, with all passes but one, with none, and without the buffer work.

The cases are issue 13's: value and gradient of sum(tanh(x*w + b)) on 16 float64 (core/tanh16),
the quiz gradient at scalars (forward/grad_quiz), the 2-16-16-1 tanh BCE step (nn/small_tanh_bce),
the 784-256-256-10 ReLU SGD step, batch 128, float32 (core/mlp_step) and the logistic NLL Hessian
1000 x 100 (forward/hessian_logreg). Their contenders here:

- ``numpy``: the case's hand-written step (the base of the ratios);
- ``compiled``: the case's own ``compiled`` contender, as its group times it (every pass, inplace);
- ``no_<pass>`` for each pass of ``cr.compile`` (simplify, fold, cse, dce, fuse): every pass but that one;
- ``no_passes``: ``passes=()``, the program as traced;
- ``no_buffers``: every pass, ``inplace=False`` (no arrays kept between calls, no ``out=``, no
  in-place updates).

Every compiled contender is built by the case's own ``compiled`` factory, unchanged, with
``cr.compile``'s options set while it runs: the same function, data and step, only the options
differ. The number of equations of each contender's program (``len(fn.program(*args))``) is
recorded beside its times (the record's ``extra``).
"""
from __future__ import annotations

import contextlib

import numpy as np

import bench_core
import bench_forward
import bench_nn
import chainrule as cr
from chainrule.modes.compile import PASSES
from harness import Case

# contender -> cr.compile's options (everything else as the case's own compiled contender)
VARIANTS = {
    "compiled": {},
    **{f"no_{p}": {"passes": tuple(q for q in PASSES if q != p)} for p in PASSES},
    "no_passes": {"passes": ()},
    "no_buffers": {"inplace": False},
}


@contextlib.contextmanager
def compile_options(options, made):
    """``cr.compile`` with ``options`` while the block runs; the compiled functions it makes are
    appended to ``made``."""
    real = cr.compile

    def compile_with(fn=None, **kwargs):
        made.append(real(fn, **{**kwargs, **options}))
        return made[-1]
    cr.compile = compile_with
    try:
        yield
    finally:
        cr.compile = real


# the arguments each case's compiled function is called with (their shapes and dtypes select its program)
def _tanh_args():
    _, w, b = bench_core._tanh_data()
    return w, b


def _quiz_args():
    return tuple(np.array(v) for v in bench_forward.QUIZ_POINT)


def _hessian_args():
    return (bench_forward._logreg_data()[2],)


def _mlp_args():
    X, _, arrays = bench_core.mlp_data()
    return arrays, X


def _small_args():
    X, _ = bench_nn._blobs()
    net = bench_nn._net(bench_nn.SMALL, "tanh", np.float64)
    return {k: p.numpy().copy() for k, p in net.named_parameters()}, X


# (group's module, case name, the arguments of its compiled function)
CASES = [
    (bench_core, "tanh16", _tanh_args),
    (bench_forward, "grad_quiz", _quiz_args),
    (bench_nn, "small_tanh_bce", _small_args),
    (bench_core, "mlp_step", _mlp_args),
    (bench_forward, "hessian_logreg", _hessian_args),
]


def _variant(factory, args, options, facts):
    """A factory of the case's compiled step built with ``options``; it records the number of
    equations of the program in ``facts`` (traced here, for ``args``: the step's first call then
    finds it in the cache)."""
    def make():
        made = []
        with compile_options(options, made):
            step = factory()
        (fn,) = made
        facts["equations"] = len(fn.program(*args()))
        return step
    return make


def cases():
    out = []
    for module, name, args in CASES:
        (case,) = [c for c in module.cases() if c.name == name]
        extra = {n: {} for n in VARIANTS}
        contenders = {"numpy": case.contenders["numpy"]}
        for n, options in VARIANTS.items():
            contenders[n] = _variant(case.contenders["compiled"], args, options, extra[n])
        out.append(Case("passes", name, f"{case.what} ({case.group}/{name}): cr.compile's passes",
                        contenders, rtol=case.rtol, atol=case.atol, extra=extra))
    return out
