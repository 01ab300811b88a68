"""The benchmark harness (benchmarks/): every contender of issue 13's cases computes what numpy
computes, the optional peers (JAX, torch.compile) skip cleanly when absent, --fresh times a case
in a new process, and --table compile prints the table from a results file. Nothing here is
timed against anything: one round of single calls, results checked, times never asserted."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH))

import bench_core  # noqa: E402
import bench_forward  # noqa: E402
import bench_linalg  # noqa: E402
import bench_nn  # noqa: E402
import bench_passes  # noqa: E402
import harness  # noqa: E402
import run  # noqa: E402

# the contenders issue 13 compares (torch.compile's compilations take minutes: not run here)
ISSUE_13 = {"chainrule", "compiled", "jax"}


def _case(module, name):
    (case,) = [c for c in module.cases() if c.name == name]
    return case


def _issue_13_cases():
    return [(module, name) for _, group, name, _ in run.COMPILE_TABLE if not name.endswith(run.FRESH)
            for module in [{"core": bench_core, "forward": bench_forward, "nn": bench_nn}[group]]]


@pytest.mark.parametrize("module, name", _issue_13_cases(), ids=lambda v: getattr(v, "__name__", v))
def test_issue_13_contenders_compute_what_numpy_computes(module, name, one_blas_thread):
    case = _case(module, name)
    assert {"numpy", "compiled", "jax", "torch_compile"} <= set(case.contenders), sorted(case.contenders)
    record = harness.run_case(case, rounds=1, sample_s=0, only=ISSUE_13)
    wrong = {n: why for n, why in record["skipped"].items() if "WRONG" in why}
    assert not wrong
    ran = set(record["contenders"]) | set(record["skipped"])
    assert ISSUE_13 & set(case.contenders) <= ran
    assert "compiled" in record["contenders"], record["skipped"].get("compiled")
    for why in record["skipped"].values():  # the only acceptable reason: the peer is not installed
        assert "is not installed" in why


@pytest.mark.parametrize("name", [c.name for c in bench_linalg.cases()])
def test_linalg_contenders_compute_what_numpy_computes(name, one_blas_thread):
    # solve, slogdet and eigh on a Tensor (value), and chainrule's gradients beside the hand-written ones
    record = harness.run_case(_case(bench_linalg, name), rounds=1, sample_s=0, only={"chainrule"})
    assert not record["skipped"]
    assert set(record["contenders"]) == {"numpy", "chainrule"}


@pytest.mark.parametrize("name", [name for _, name, _ in bench_passes.CASES])
def test_passes_contenders_compute_what_numpy_computes(name, one_blas_thread):
    # every ablation of cr.compile's passes (and inplace=False) computes the hand-written step's result
    case = _case(bench_passes, name)
    assert set(case.contenders) == {"numpy", "compiled", "no_passes", "no_buffers",
                                    *(f"no_{p}" for p in bench_passes.PASSES)}
    record = harness.run_case(case, rounds=1, sample_s=0)
    assert not record["skipped"]  # none wrong, none failed (no optional peer here)
    assert set(record["contenders"]) == set(case.contenders)
    equations = {n: facts["equations"] for n, facts in record["extra"].items()}
    assert set(equations) == set(case.contenders) - {"numpy"}
    assert equations["no_passes"] > equations["compiled"] > 0  # the passes shorten every case's program
    assert equations["no_buffers"] == equations["compiled"]  # the buffer work changes the code, not the program
    (row,) = [line for line in harness.table({"one round": [record]}).splitlines() if " no_passes " in line]
    assert row.endswith(f"equations {equations['no_passes']}")  # the table shows them beside the times


def test_jax_and_torch_compile_skip_when_not_installed(monkeypatch):
    # a None entry in sys.modules makes `import jax` raise ImportError, as on a machine without it
    monkeypatch.setitem(sys.modules, "jax", None)
    monkeypatch.setitem(sys.modules, "torch", None)
    record = harness.run_case(_case(bench_core, "tanh16"), rounds=1, sample_s=0, only={"jax", "torch_compile"})
    assert set(record["contenders"]) == {"numpy"}
    assert record["skipped"]["jax"].startswith("jax is not installed")
    assert record["skipped"]["torch_compile"].startswith("torch is not installed")


def test_a_failing_peer_is_skipped_with_its_first_line():
    def broken():
        raise RuntimeError("inductor failed\n" + "C++ compile error\n" * 100)
    case = harness.Case("t", "t", "t", {"numpy": lambda: (lambda: 1.0), "torch_compile": broken})
    record = harness.run_case(case, rounds=1, sample_s=0)
    assert record["skipped"]["torch_compile"] == "RuntimeError: inductor failed"


def _run(*args, **kwargs):
    return subprocess.run([sys.executable, str(BENCH / "run.py"), *args], capture_output=True, text=True,
                          timeout=600, **kwargs)


def test_fresh_times_the_first_calls_in_a_new_process(tmp_path):
    out = tmp_path / "fresh.json"
    proc = _run("forward", "-k", "quiz", "--fresh", "--fresh-calls", "3", "--only", "compiled",
                "--threads", "1", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    (only_run,) = json.loads(out.read_text())["runs"]
    (record,) = only_run["cases"]
    assert record["name"] == "grad_quiz_fresh" and record["rounds"] == 3
    assert set(record["contenders"]) == {"numpy", "compiled"}
    assert record["contenders"]["compiled"]["calls_per_sample"] == 1


def test_table_compile_from_a_results_file(tmp_path):
    quiz = harness.run_case(_case(bench_forward, "grad_quiz"), rounds=1, sample_s=0, only={"chainrule", "compiled"})
    doc = {"environment": {}, "runs": [
        {"threads": None, "label": "default threads", "blas": [], "cases": [quiz]},
        {"threads": 1, "label": "--threads 1", "blas": [], "cases": [quiz]}]}
    path = tmp_path / "results.json"
    path.write_text(json.dumps(doc))
    proc = _run("--table", "compile", "--from", str(path))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    (row,) = [line for line in lines if line.startswith("quiz gradient")]
    eager = f"{quiz['contenders']['chainrule']['ratio']:.2f}"
    compiled = f"{quiz['contenders']['compiled']['ratio']:.2f}"
    assert f"{eager} / {eager}" in row and f"{compiled} / {compiled}" in row and "<= 0.5x" in row
    (tanh,) = [line for line in lines if line.startswith("value+grad")]
    assert "- / -" in tanh  # a case the file does not hold
    for label, *_ in run.COMPILE_TABLE:  # every row of the issue's table, once
        assert len([line for line in lines if line.startswith(label)]) == 1


@pytest.mark.parametrize("args, says", [
    (["--table", "compile", "--from", "no-such-file.json"], "no-such-file.json"),
    (["--from", "x.json"], "--from needs --table compile"),
    (["forward", "--only", "nonesuch"], "no contender named ['nonesuch']"),
])
def test_bad_input_exits_2_with_a_message(args, says):
    proc = _run(*args)
    assert proc.returncode == 2 and says in proc.stderr and "Traceback" not in proc.stderr


def test_first_compile_in_a_new_process_reports_and_records(tmp_path):
    """benchmarks/first_compile.py (the README's first-compile figures): it runs, writes its record,
    and refuses a bad count with a message. Times are not asserted."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "first_compile.py"
    out = tmp_path / "first.json"
    done = subprocess.run([sys.executable, str(script), "--processes", "1", "--out", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    record = json.loads(out.read_text())
    assert len(record["first_ms"]) == len(record["next_ms"]) == 1 and record["first_ms"][0] > 0
    assert "first compile in a new process" in done.stdout
    bad = subprocess.run([sys.executable, str(script), "--processes", "0"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "--processes must be in 1..100" in bad.stderr
