"""Sweeps on real Dask clusters on 127.0.0.1: same rows as one process, resume, lost workers,
an existing cluster, and bad grids refused before anything runs."""
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import chainrule as cr
from chainrule.sweeps import RESULTS_FILE, TIMING, SweepError

distributed = pytest.importorskip("distributed")

ROOT = Path(__file__).resolve().parents[1]
GRID = {"hidden": [[4], [4, 4]], "activation": ["relu", "tanh"]}
TINY = {"data": "xor", "n_samples": 80, "epochs": 5}
# Runs long enough (a few tenths of a second) that a kill lands in the middle of the sweep.
SLOW = {"data": "xor", "n_samples": 300, "epochs": 20}

pytestmark = pytest.mark.usefixtures("one_blas_thread")


def same(rows):
    """The rows without what differs between two runs of one configuration (time, worker)."""
    return sorted((json.dumps({k: v for k, v in r.items() if k not in TIMING}, sort_keys=True) for r in rows))


def stored(folder):
    lines = (Path(folder) / RESULTS_FILE).read_text().splitlines()
    return [json.loads(line) for line in lines]


@pytest.fixture(scope="module")
def cluster():
    """A LocalCluster of 2 single-threaded worker processes, as `chainrule sweep` starts by default."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as c, distributed.Client(c) as client:
        yield c, client


@pytest.fixture(scope="module")
def serial(tmp_path_factory):
    """The 8 runs of GRID one after another in this process."""
    rows = cr.sweep(GRID, seeds=2, out=tmp_path_factory.mktemp("serial"), scheduler="serial", progress=False, **TINY)
    assert len(rows) == 8 and all("error" not in r for r in rows)
    return rows


@pytest.fixture(scope="module")
def serial_slow(tmp_path_factory):
    return cr.sweep(GRID, seeds=2, out=tmp_path_factory.mktemp("slow"), scheduler="serial", progress=False, **SLOW)


def test_eight_runs_on_two_workers_equal_the_same_runs_in_one_process(cluster, serial, tmp_path):
    _, client = cluster
    rows = cr.sweep(GRID, seeds=2, out=tmp_path, scheduler=client, progress=False, **TINY)
    assert len(rows) == 8 and same(rows) == same(serial)
    assert {r["seed"] for r in rows} == {0, 1}
    assert {r["worker"] for r in rows} <= set(client.nthreads())  # ran on the cluster's workers
    assert len({r["worker"] for r in rows}) == 2
    assert same(stored(tmp_path)) == same(rows)  # the store holds what was returned
    for r in rows:  # one row: options, seed, metrics of every part, the curves
        assert {"train_accuracy", "val_accuracy", "test_accuracy", "loss_curve", "val_loss_curve", "options"} <= set(r)
        assert len(r["loss_curve"]) == 5 and r["options"]["hidden"] == r["hidden"]


def test_a_sweep_run_is_a_train_run(serial, tmp_path, capsys):
    """The same options and seed through `chainrule train` give the sweep row's metrics."""
    row = next(r for r in serial if r["hidden"] == [4, 4] and r["activation"] == "tanh" and r["seed"] == 1)
    from chainrule.cli import main

    assert main(["train", "--data", "xor", "--n-samples", "80", "--epochs", "5", "--hidden", "4", "4",
                 "--activation", "tanh", "--seed", "1", "--out", str(tmp_path / "t"), "--json", "--no-figures",
                 "--no-progress"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["test_accuracy"] == row["test_accuracy"] and result["val_accuracy"] == row["val_accuracy"]


def test_resume_after_the_client_is_killed(cluster, serial_slow, tmp_path):
    """A `chainrule sweep` process killed (with its workers) after some rows; the rerun adds the rest."""
    _, client = cluster
    out = tmp_path / "sweep"
    cmd = [sys.executable, "-m", "chainrule", "sweep", "--hidden", "4", "4 4", "--activation", "relu", "tanh",
           "--seeds", "2", "--workers", "2", "--out", str(out), "--no-progress", "--no-figures"]
    cmd += [x for k, v in SLOW.items() for x in (f"--{k.replace('_', '-')}", str(v))]
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if (out / RESULTS_FILE).exists() and len(stored(out)) >= 2:
                break
            time.sleep(0.02)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the client, its scheduler and its workers
        proc.wait()
    before = stored(out)
    assert 2 <= len(before) < 8, "the sweep was not stopped in the middle"
    rows = cr.sweep(GRID, seeds=2, out=out, scheduler=client, progress=False, **SLOW)
    assert len(rows) == 8
    after = stored(out)
    assert len(after) == 8 and len({r["run"] for r in after}) == 8  # no duplicate, nothing lost
    assert same(after[:len(before)]) == same(before)  # stored rows kept as they were
    assert same(rows) == same(serial_slow)
    # Once complete, the same sweep runs nothing (serial would train here) and returns the same rows.
    again = cr.sweep(GRID, seeds=2, out=out, scheduler="serial", progress=False, **SLOW)
    assert same(again) == same(rows) and len(stored(out)) == 8


def test_a_worker_killed_mid_sweep_has_its_runs_retried(cluster, serial_slow, tmp_path):
    c, client = cluster
    pids = client.run(os.getpid)
    victim = sorted(pids)[0]
    killed = []

    def kill_when_running():
        while not (tmp_path / RESULTS_FILE).exists():
            time.sleep(0.01)
        killed.append(len(stored(tmp_path)))
        os.kill(pids[victim], signal.SIGKILL)

    thread = threading.Thread(target=kill_when_running, daemon=True)
    thread.start()
    rows = cr.sweep(GRID, seeds=2, out=tmp_path, scheduler=client, progress=False, **SLOW)
    thread.join(timeout=5)
    assert killed and killed[0] < 8, "the worker was not killed in the middle of the sweep"
    assert len(rows) == 8 and rows.failed == 0
    assert len({r["run"] for r in stored(tmp_path)}) == len(stored(tmp_path)) == 8
    assert same(rows) == same(serial_slow)
    client.wait_for_workers(2, timeout=60)  # the nanny restarts the process for the next tests


@pytest.fixture
def existing_cluster(tmp_path):
    """`dask scheduler` and two `dask worker` processes on 127.0.0.1; yields the address."""
    dask = shutil.which("dask") or pytest.skip("no dask command")
    file = tmp_path / "scheduler.json"
    common = ["--no-dashboard"]
    procs = [subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", "0", "--scheduler-file",
                               str(file), *common], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        deadline = time.monotonic() + 60
        while not file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        address = json.loads(file.read_text())["address"]
        for _ in range(2):
            procs.append(subprocess.Popen([dask, "worker", address, "--nthreads", "1", "--host", "127.0.0.1",
                                           "--no-nanny", *common], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        with distributed.Client(address, timeout=30) as client:
            client.wait_for_workers(2, timeout=60)
        yield address
    finally:
        for p in procs:  # no graceful close: it waits seconds for peers that are going too
            p.kill()
            p.wait()


def test_an_existing_cluster_gives_the_same_rows(existing_cluster, serial, tmp_path, capsys):
    from chainrule.cli import main

    assert main(["sweep", "--data", "xor", "--n-samples", "80", "--epochs", "5", "--hidden", "4", "4 4",
                 "--activation", "relu", "tanh", "--seeds", "2", "--out", str(tmp_path), "--no-progress",
                 "--no-figures", "--scheduler", existing_cluster]) == 0
    out = capsys.readouterr().out
    rows = stored(tmp_path)
    assert same(rows) == same(serial) and len({r["worker"] for r in rows}) == 2
    assert "best configurations:" in out and "activation:" in out and " ± " in out


def test_the_scheduler_address_from_the_environment(cluster, serial, tmp_path, monkeypatch):
    c, _ = cluster
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", c.scheduler_address)
    rows = cr.sweep(GRID, seeds=2, out=tmp_path, progress=False, **TINY)
    assert same(rows) == same(serial) and all(r["worker"].startswith("tcp://127.0.0.1") for r in rows)


@pytest.mark.parametrize("grid, options, message", [
    ({"activaton": ["relu"]}, {}, "valid options (those of `chainrule train`): activation, batch_size"),
    ({"activation": ["relu", "sigmod"]}, {}, "valid names: sigmoid, tanh, relu"),
    ({"init": ["zeros", "lecun"]}, {}, "xavier_uniform"),
    ({"optimizer": ["adam", "adagrad"]}, {}, "valid names: adam, sgd"),
    ({"lr": [0.1, -1]}, {}, "--lr must be a positive number"),
    ({"hidden": ["8", "8 x"]}, {}, "not a list of widths"),
    ({"seed": [1, 2]}, {}, "seed is not a grid option"),
    ({"loss": ["cross_entropy", "mse"]}, {}, "valid: cross_entropy, bce_logits"),
    ({"activation": ["relu"]}, {"data": "no-such-file.csv", "n_samples": None}, "no such file or built-in data"),
])
def test_bad_grids_are_refused_before_anything_runs(tmp_path, grid, options, message):
    with pytest.raises(SweepError) as err:
        cr.sweep(grid, out=tmp_path / "out", seeds=1, **{**TINY, **options})
    assert message in str(err.value)
    assert not (tmp_path / "out").exists()


def test_bad_command_line_exits_2_with_the_choices(tmp_path, capsys):
    from chainrule.cli import main

    assert main(["sweep", "--data", "xor", "--activation", "relu", "swish", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "unknown activation 'swish'; valid names: sigmoid, tanh, relu" in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_the_store_drops_a_line_cut_by_a_crash(serial, tmp_path):
    from chainrule.sweeps import Store

    lines = (Path(serial.out) / RESULTS_FILE).read_bytes().splitlines(keepends=True)
    (tmp_path / RESULTS_FILE).write_bytes(b"".join(lines[:3]) + lines[3][:40])
    store = Store(tmp_path)
    assert len(store.rows) == 3 and (tmp_path / RESULTS_FILE).read_bytes() == b"".join(lines[:3])
    rows = cr.sweep(GRID, seeds=2, out=tmp_path, scheduler="serial", progress=False, **TINY)
    assert same(rows) == same(serial) and len(stored(tmp_path)) == 8


def test_summary_frame_and_figures(serial, tmp_path):
    from chainrule.sweeps.report import tables, write_figures, write_report

    configs, per = tables(serial)
    assert len(configs) == 4 and all(n == 2 for *_, n in configs)
    assert [c[1] for c in configs] == sorted((c[1] for c in configs), reverse=True)  # best first
    assert set(per) == {"hidden", "activation"} and {v[0] for v in per["hidden"]} == {"4", "4-4"}
    mean = sum(r["test_accuracy"] for r in serial if r["activation"] == "relu") / 4
    assert dict((v, m) for v, m, _, _ in per["activation"])["relu"] == pytest.approx(mean)
    pytest.importorskip("matplotlib")
    assert write_figures(serial, tmp_path) == ["depth_width.png", "distributions.png", "learning_curves.png"]
    page = write_report(serial, tmp_path).read_text()
    assert "<table>" in page and page.count("data:image/png;base64,") == 3 and 'src="http' not in page
    pd = pytest.importorskip("pandas")
    assert isinstance(serial.frame(), pd.DataFrame) and len(serial.frame()) == 8


def test_a_huge_grid_is_refused_or_sampled_without_being_written_out(tmp_path):
    """8 options of 10 values are 1e8 points: refused unless sampled, and sampling draws indices
    instead of listing the points (this test would need gigabytes otherwise)."""
    from chainrule.sweeps import plan

    huge = {"lr": [0.001 * (i + 1) for i in range(10)], "epochs": list(range(1, 11)),
            "batch_size": list(range(1, 11)), "momentum": [i / 10 for i in range(10)],
            "weight_decay": [i / 1000 for i in range(10)], "patience": list(range(1, 11)),
            "hidden": [[i + 1] for i in range(10)], "activation": ["relu", "tanh"] * 5}
    with pytest.raises(SweepError, match="100000000 points"):
        plan(huge, seeds=1, optimizer="sgd", **TINY)
    runs = plan(huge, seeds=1, sample=5, optimizer="sgd", **TINY)
    assert len(runs) == 5


@pytest.mark.parametrize("seeds, sample, match", [
    (10**9, 1, "1 points x 1000000000 seeds"),  # seeds=N is not listed before the count is checked
    (1, 10**9, "draws 100000000 points x 1 seeds"),  # nor the drawn indices of a huge sample
])
def test_a_sampled_sweep_with_too_many_runs_is_refused_before_anything_is_listed(seeds, sample, match):
    from chainrule.sweeps import plan

    huge = {"lr": [0.001 * (i + 1) for i in range(10)], "epochs": list(range(1, 11)),
            "batch_size": list(range(1, 11)), "momentum": [i / 10 for i in range(10)],
            "weight_decay": [i / 1000 for i in range(10)], "patience": list(range(1, 11)),
            "hidden": [[i + 1] for i in range(10)], "activation": ["relu", "tanh"] * 5}
    with pytest.raises(SweepError, match=match):
        plan(huge, seeds=seeds, sample=sample, optimizer="sgd", **TINY)


def test_a_damaged_results_file_is_named_not_a_traceback(tmp_path):
    (tmp_path / RESULTS_FILE).write_text('{"run": "a"}\nnot json\n')
    with pytest.raises(SweepError, match="line 2 is not a result row"):
        cr.sweep(GRID, seeds=1, out=tmp_path, scheduler="serial", progress=False, **TINY)


def test_both_compile_switches_are_refused_when_planned_not_in_every_run():
    from chainrule.sweeps import plan

    with pytest.raises(SweepError, match="--compile and --no-compile: choose one"):
        plan({"activation": ["relu", "tanh"]}, seeds=1, compile=True, no_compile=True, **TINY)


def test_a_local_cluster_never_has_more_workers_than_runs():
    from chainrule.sweeps import _local_workers

    assert _local_workers(100_000, 4) == 4  # not a hundred thousand processes for four runs
    assert _local_workers(2, 8) == 2
    assert 1 <= _local_workers(None, 3) <= 3  # one per core, at most the runs
    with pytest.raises(SweepError, match="at most 256 worker processes"):
        _local_workers(100_000, 50_000)  # as many processes as runs, but far beyond one machine
