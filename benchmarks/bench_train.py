"""Training (issue 5): `chainrule train` end to end, one epoch of `cr.fit` against numpy, memory over 10,000 steps.

    python benchmarks/bench_train.py                  # end-to-end run with the defaults, then memory
    python benchmarks/bench_train.py --seeds 0 1 2    # accuracy across split seeds
    python benchmarks/bench_train.py --threads 1      # the same with single-threaded BLAS
    python benchmarks/run.py train                    # cr.fit epoch vs hand-written numpy (harness)

The acceptance numbers: the default `chainrule train` reaches at least 0.97 test accuracy on the
digits in under 30 s (wall clock, imports and figures included), and the memory traced by
tracemalloc does not grow over 10,000 training steps.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

# ---------------------------------------------------------------- harness case: one epoch of fit


def _epoch_data():
    import chainrule as cr

    X, y = cr.data.load_digits()
    X = (X - X.mean(0)) / np.where(X.std(0) > 0, X.std(0), 1.0)
    return X, y


def _init(hidden=64):
    import chainrule as cr

    return cr.nn.MLP(64, [hidden], 10, rng=0)


def epoch_numpy():
    """Hand-written numpy: the same epoch (SGD, batch 32, file order), then the end-of-epoch loss."""
    X, y = _epoch_data()
    model = _init()
    W1, b1, W2, b2 = (p.numpy().copy() for p in model.parameters())
    n, lr = len(X), 0.05
    rows = np.arange(n)

    def step():
        for s in range(0, n, 32):
            xb, yb = X[s:s + 32], y[s:s + 32]
            a = xb @ W1.T + b1
            h = np.maximum(a, 0)
            z = h @ W2.T + b2
            p = np.exp(z - z.max(1, keepdims=True))
            p /= p.sum(1, keepdims=True)
            p[np.arange(len(yb)), yb] -= 1
            g = p / len(yb)
            gh = (g @ W2) * (a > 0)
            # in place (np.subtract with out=): the closure updates the arrays it captured
            np.subtract(W2, lr * (g.T @ h), out=W2)
            np.subtract(b2, lr * g.sum(0), out=b2)
            np.subtract(W1, lr * (gh.T @ xb), out=W1)
            np.subtract(b1, lr * gh.sum(0), out=b1)
        z = np.maximum(X @ W1.T + b1, 0) @ W2.T + b2
        lse = np.log(np.exp(z - z.max(1, keepdims=True)).sum(1)) + z.max(1)
        return float(np.mean(lse - z[rows, y])), W1, b1, W2, b2
    return step


def epoch_chainrule(compile="auto"):
    """cr.fit as a user calls it: by default each batch's step is one compiled program (kept
    between the fit calls of the rounds); ``compile=False`` records and walks a graph per batch."""
    import chainrule as cr

    X, y = _epoch_data()
    model = _init()
    opt = cr.optim.SGD(model.parameters(), lr=0.05)

    def step():
        h = cr.fit(model, "cross_entropy", X, y, optimizer=opt, epochs=1, batch_size=32, shuffle=False,
                   metrics=(), progress=False, compile=compile)
        return (h.history["loss"][-1], *model.parameters())
    return step


def epoch_chainrule_eager():
    return epoch_chainrule(compile=False)


def epoch_torch():
    """PyTorch's usual loop over the same batches, float64, then the end-of-epoch loss."""
    import peers

    torch = peers.torch()
    X, y = _epoch_data()
    W1, b1, W2, b2 = (torch.tensor(p.numpy().copy()) for p in _init().parameters())
    net = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10)).double()
    with torch.no_grad():
        for p, w in zip(net.parameters(), (W1, b1, W2, b2)):
            p.copy_(w)
    opt = torch.optim.SGD(net.parameters(), lr=0.05)
    loss_fn = torch.nn.CrossEntropyLoss()
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)

    def step():
        for s in range(0, len(Xt), 32):
            opt.zero_grad()
            loss_fn(net(Xt[s:s + 32]), yt[s:s + 32]).backward()
            opt.step()
        with torch.no_grad():
            loss = loss_fn(net(Xt), yt)
        return (float(loss), *net.parameters())
    return step


def cases():
    from harness import Case

    return [Case("train", "fit_epoch", "one epoch of cr.fit: digits 64-64-10 ReLU, SGD batch 32, end-of-epoch loss",
                 {"numpy": epoch_numpy, "chainrule": epoch_chainrule, "chainrule_eager": epoch_chainrule_eager,
                  "torch": epoch_torch},
                 rtol=1e-9, atol=1e-12)]


# ---------------------------------------------------------------- end-to-end `chainrule train`
def end_to_end(seed, threads=None):
    """Run the command as a user would (a fresh process: imports, data, training, files, figures)."""
    env = dict(os.environ)
    if threads:
        env.update(OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    with tempfile.TemporaryDirectory() as out:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "chainrule", "train", "--seed", str(seed), "--out", out,
                               "--no-progress", "--json"], capture_output=True, text=True, env=env)
        wall = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if proc.returncode != 0:
            raise SystemExit(f"chainrule train failed:\n{proc.stderr}")
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        files = sorted(os.listdir(out))
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, result, files


# ---------------------------------------------------------------- memory over 10,000 steps
def memory(steps=10_000, hidden=512):
    """Traced memory at the end of each epoch while training the default network for `steps` steps."""
    import chainrule as cr
    from chainrule.data import Standardizer

    X, y = cr.data.load_digits()
    X = Standardizer().fit_transform(X)
    model = cr.nn.MLP(64, [hidden], 10, rng=0)
    opt = cr.optim.Adam(model.parameters(), lr=1e-3)
    per_epoch = -(-len(X) // 32)
    epochs = -(-steps // per_epoch)
    current = np.zeros(epochs, dtype=np.int64)  # preallocated: the record itself must not grow

    def record(epoch, logs):
        current[epoch - 1] = tracemalloc.get_traced_memory()[0]

    from chainrule.cli.train import blas_threads

    tracemalloc.start()
    t0 = time.perf_counter()
    with blas_threads(1):
        cr.fit(model, "cross_entropy", X, y, optimizer=opt, epochs=epochs, batch_size=32, seed=0, progress=False,
               callbacks=[record])
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    half = epochs // 2
    return {"steps": epochs * per_epoch, "epochs": epochs, "seconds": time.perf_counter() - t0,
            "after_epoch_1": int(current[0]), "half": int(current[half - 1]), "half_epoch": half,
            "last": int(current[-1]), "max_second_half": int(current[half:].max()), "peak": peak}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="*", default=[0], help="split seeds to run (default 0)")
    parser.add_argument("--threads", type=int, default=None, help="BLAS threads of the trained process")
    parser.add_argument("--steps", type=int, default=10_000, help="training steps of the memory check")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory check")
    args = parser.parse_args(argv)

    threads = f", BLAS threads {args.threads}" if args.threads else ""
    print(f"`chainrule train` with the defaults (digits, {os.cpu_count()} CPUs{threads}):")
    accs = []
    for seed in args.seeds:
        wall, cpu, r, files = end_to_end(seed, args.threads)
        accs.append(r["test_accuracy"])
        ok = "ok" if r["test_accuracy"] >= 0.97 and wall < 30 else "MISSED"
        print(f"  seed {seed}: test accuracy {r['test_accuracy']:.4f} (val {r['val_accuracy']:.4f}), "
              f"{wall:.1f} s wall, {cpu:.1f} s CPU, training {r['seconds']:.1f} s "
              f"({r['examples_per_second']} examples/s)  [>= 0.97 in < 30 s: {ok}]")
    if len(accs) > 1:
        print(f"  test accuracy over {len(accs)} seeds: min {min(accs):.4f}, mean {np.mean(accs):.4f}")
    print(f"  files: {', '.join(files)}")
    if not args.no_memory:
        m = memory(args.steps)
        mib = 1 / 2**20
        print(f"memory over {m['steps']} training steps ({m['epochs']} epochs, {m['seconds']:.1f} s, tracemalloc, "
              f"live bytes after each epoch): after epoch 1 {m['after_epoch_1'] * mib:.3f} MiB, after epoch "
              f"{m['half_epoch']} {m['half'] * mib:.3f} MiB, at the end {m['last'] * mib:.3f} MiB (second half: "
              f"{(m['last'] - m['half']) * mib:+.4f} MiB, highest {m['max_second_half'] * mib:.3f} MiB); "
              f"peak within a step {m['peak'] * mib:.2f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
