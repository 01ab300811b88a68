"""Sweeps (issue 15): throughput of `cr.sweep` on Dask against the same runs one after another,
Dask's overhead per run, and the per-task costs that decide how a large sweep scales.

    python benchmarks/bench_sweep.py                   # 32 runs of about 1 s, 2 workers vs serial
    python benchmarks/bench_sweep.py --runs 16 --epochs 30 --workers 2
    python benchmarks/bench_sweep.py --overhead-only   # per-task costs and the 10,000-run estimate

Measured:
- throughput: runs per second with a LocalCluster of W single-threaded worker processes (started
  beforehand; its start-up is reported apart) over runs per second of the same runs in this
  process (``scheduler="serial"``): the target is >= 1.7x with 2 workers on 2 free cores.
- Dask's overhead per run: W x (sweep wall time) - (sum of the runs' own wall times), per run,
  as a fraction of a run (target < 5%). It holds what the workers spend outside the runs:
  scheduling, sending arguments and rows, the client storing each row.
- per-task costs: the scheduler's round trip for an empty task (2,000 of them, 2 workers),
  the client's cost to submit one task, and the store's append (write + fsync) per row; from
  them, the time a sweep of 10,000 runs on 100 workers loses to Dask and to the client.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def grid(epochs):
    # 8 configurations of spiral at the toy defaults' size; runs of about 1 s on one free core.
    return ({"hidden": ["64 64", "32 32"], "activation": ["relu", "tanh"], "lr": [0.01, 0.003]},
            {"data": "spiral", "epochs": epochs})


def throughput(runs, epochs, workers):
    import chainrule as cr
    from distributed import Client, LocalCluster

    g, fixed = grid(epochs)
    seeds = max(1, runs // 8)
    tmp = Path(tempfile.mkdtemp())
    began = time.perf_counter()
    serial = cr.sweep(g, seeds=seeds, out=tmp / "serial", scheduler="serial", progress=False, **fixed)
    t_serial = time.perf_counter() - began
    began = time.perf_counter()
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None)
    client = Client(cluster)
    client.run(lambda: __import__("chainrule.cli.train"))  # imports, as a worker of a long sweep has done
    t_start = time.perf_counter() - began
    try:
        began = time.perf_counter()
        rows = cr.sweep(g, seeds=seeds, out=tmp / "dask", scheduler=client, progress=False, **fixed)
        t_dask = time.perf_counter() - began
    finally:
        client.close()
        cluster.close()
    n = len(rows)
    busy = sum(r["wall_time"] for r in rows)
    overhead = (workers * t_dask - busy) / n
    return {"runs": n, "workers": workers, "serial_s": round(t_serial, 2), "dask_s": round(t_dask, 2),
            "cluster_start_s": round(t_start, 2), "mean_run_s": round(busy / n, 3),
            "mean_run_serial_s": round(sum(r["wall_time"] for r in serial) / n, 3),
            "speedup": round(t_serial / t_dask, 2), "speedup_with_start": round(t_serial / (t_dask + t_start), 2),
            "overhead_per_run_s": round(overhead, 4), "overhead_fraction": round(overhead / (busy / n), 4)}


def per_task(n=2000, workers=2):
    from distributed import Client, LocalCluster, as_completed

    from chainrule.sweeps import Store

    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        client.submit(int, 0).result()
        began = time.perf_counter()
        futures = [client.submit(int, i, pure=False) for i in range(n)]
        t_submit = (time.perf_counter() - began) / n
        for f in as_completed(futures):
            f.result()
        t_round = (time.perf_counter() - began) / n
    row = {"run": "x", "hidden": [64, 64], "loss_curve": [0.1] * 100, "val_loss_curve": [0.1] * 100,
           "accuracy_curve": [0.5] * 100, "val_accuracy_curve": [0.5] * 100, "test_accuracy": 0.9}
    store = Store(tempfile.mkdtemp())
    began = time.perf_counter()
    for i in range(200):
        store.append({**row, "run": str(i)})
    t_append = (time.perf_counter() - began) / 200
    return {"tasks": n, "submit_ms": round(1e3 * t_submit, 3), "empty_task_ms": round(1e3 * t_round, 3),
            "append_fsync_ms": round(1e3 * t_append, 3)}


def estimate(costs, runs=10_000, workers=100, run_s=1.0):
    """What 10,000 runs of run_s seconds on 100 workers lose to Dask and to the client."""
    ideal = runs * run_s / workers
    client_per_row = (costs["submit_ms"] + costs["append_fsync_ms"]) / 1e3  # one thread does both
    scheduler = runs * costs["empty_task_ms"] / 1e3  # the scheduler's work, all tasks, one thread
    busiest = max(client_per_row * workers / run_s, scheduler / ideal)  # fraction of a core kept busy
    return {"runs": runs, "workers": workers, "run_s": run_s, "ideal_s": ideal,
            "submit_all_s": round(runs * costs["submit_ms"] / 1e3, 1),
            "scheduler_s": round(scheduler, 1), "client_rows_s": round(runs * client_per_row, 1),
            "busiest_fraction": round(busiest, 3)}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=32)
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--overhead-only", action="store_true")
    args = ap.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    out = {}
    if not args.overhead_only:
        out["throughput"] = t = throughput(args.runs, args.epochs, args.workers)
        print(f"{t['runs']} runs of {t['mean_run_s']:.2f} s: serial {t['serial_s']:.1f} s, Dask with {t['workers']} "
              f"workers {t['dask_s']:.1f} s (+{t['cluster_start_s']:.1f} s to start the cluster): "
              f"{t['speedup']:.2f}x throughput ({t['speedup_with_start']:.2f}x with the start); "
              f"overhead {1e3 * t['overhead_per_run_s']:.0f} ms per run = {100 * t['overhead_fraction']:.1f}% of a run")
    out["per_task"] = c = per_task()
    print(f"per task: submit {c['submit_ms']:.2f} ms, empty task round trip {c['empty_task_ms']:.2f} ms "
          f"(2 workers), store append with fsync {c['append_fsync_ms']:.2f} ms")
    for run_s in (1.0, 0.1):
        out[f"estimate_{run_s}"] = e = estimate(c, run_s=run_s)
        print(f"10,000 runs of {run_s:g} s on 100 workers: ideal {e['ideal_s']:.0f} s; submitting all "
              f"{e['submit_all_s']:.1f} s, scheduler {e['scheduler_s']:.1f} s, client storing rows "
              f"{e['client_rows_s']:.1f} s in all; the busiest thread is {100 * e['busiest_fraction']:.0f}% busy")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
