"""Fuzzing the command line: random and hostile expressions for diff/explain/graph, crafted model
files for predict/evaluate and the Python loader. Each case must end with an answer or a clear
error (exit code 0 or 2, never an exception, never a traceback) within CASE_SECONDS, enforced by
an alarm (in-process) or a subprocess timeout, never by measuring time. Seeded, so a failure
reproduces; the whole file runs in well under a minute."""
import json
import os
import signal
import struct
import subprocess
import sys

import numpy as np
import pytest

import chainrule as cr
from chainrule.cli import main
from chainrule.serialization import ModelFileError, load_safetensors, save_safetensors

CASE_SECONDS = 5
FUNCTIONS = ["exp", "log", "ln", "sin", "cos", "tanh", "sqrt", "abs", "sigmoid", "relu", "softplus"]

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGALRM"), reason="needs signal.alarm")


class CaseTimeout(BaseException):
    """Raised by the alarm; a BaseException so no `except Exception` in the code under test eats it."""


def within_limit(fn, *args):
    def expire(signum, frame):
        raise CaseTimeout(f"no answer within {CASE_SECONDS} s")

    old = signal.signal(signal.SIGALRM, expire)
    signal.alarm(CASE_SECONDS)
    try:
        return fn(*args)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def run_cli(capsys, argv):
    try:
        code = within_limit(main, argv)  # an exception here is a traceback for a user: the test fails
    except SystemExit as exit:  # argparse's own usage errors ("unrecognized arguments: --x")
        code = exit.code
    out, err = capsys.readouterr()
    assert code in (0, 2), (argv, code, err)
    assert "Traceback" not in err, (argv, err)
    if code == 2:
        assert err.strip(), (argv, "exit 2 without a message")
    return code, out, err


# ---------------------------------------------------------------- expressions


def random_expression(rng, depth=0):
    kind = rng.integers(0, 10) if depth < 6 else rng.integers(0, 3)
    if kind == 0:
        return str(rng.choice(["x", "y", "z"]))
    if kind == 1:
        return str(rng.choice(["0", "1", "2.5", "1e300", "1e-300", "0.0", "3"]))
    if kind == 2:
        return str(rng.choice(["x", "y"]))
    if kind in (3, 4, 5):
        op = str(rng.choice(["+", "-", "*", "/", "**", "^"]))
        return f"({random_expression(rng, depth + 1)}){op}({random_expression(rng, depth + 1)})"
    if kind == 6:
        return f"-{random_expression(rng, depth + 1)}"
    if kind == 7:
        name = str(rng.choice(["maximum", "minimum"]))
        return f"{name}({random_expression(rng, depth + 1)}, {random_expression(rng, depth + 1)})"
    return f"{rng.choice(FUNCTIONS)}({random_expression(rng, depth + 1)})"


HOSTILE = [
    "tanh(" * 50 + "x" + ")" * 50,
    "**".join(["x"] * 141),
    "z/0**y",
    "+".join(f"x{i}" for i in range(1000)),
    "*".join(f"x{i}" for i in range(300)),
    "(" * 300 + "x" + ")" * 300,
    "sin(" * 199 + "x" + ")" * 199,
    "x" + "+x" * 4999,
    "exp(exp(exp(exp(x))))",
    "1/(x-x)",
    "log(-x)",
    "foo(x)",
    "x**1e308",
    "9" * 400 + "*x",
    "x ** (y ** z) / 0",
    "xé + 1",
    "x\u00a0+ 1",
    "__import__('os')",
    "x; y",
    "",
    "-" * 500 + "x",
]


def _at(text):
    from chainrule.expr import ExpressionError, parse

    try:
        names = parse(text).variables
    except (ExpressionError, TypeError):
        names = ("x",)
    return [f"{n}=0.7" for n in names] or ["x=1"]


@pytest.mark.parametrize("text", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_expressions(capsys, text):
    run_cli(capsys, ["diff", text, "--at", *_at(text), "--json"])


def test_random_expressions(capsys, tmp_path):
    rng = np.random.default_rng(11)
    for i in range(60):
        text = random_expression(rng)
        at = _at(text)
        command = ["diff", "explain", "graph"][i % 3]
        argv = [command, "--at", *at, text] if i % 2 else [command, text, "--at", *at]
        if command == "graph":
            argv += ["-o", str(tmp_path / "g.dot")]
        elif command == "diff" and i % 4 == 0:
            argv.append("--markdown")
        run_cli(capsys, argv)


def test_subprocesses_print_no_traceback():
    for argv in (["diff", "tanh(" * 30 + "x" + ")" * 30, "--at", "x=0.5"],
                 ["explain", "--at", "x=2", "-x**x"],
                 ["diff", "z/0**y", "--at", "z=1", "y=0", "--json"]):
        done = subprocess.run([sys.executable, "-m", "chainrule", *argv], capture_output=True, text=True,
                              timeout=4 * CASE_SECONDS)  # one interpreter start besides the case
        assert done.returncode in (0, 2) and "Traceback" not in done.stderr, (argv, done.stderr)


# ---------------------------------------------------------------- model files


def crafted_files(folder):
    """{name: path} of hostile variations of one small model file."""
    good = folder / "good.safetensors"
    cr.nn.MLP(2, [4], 2, rng=0).save(good, metadata={"classes": [0, 1]})
    raw = good.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    tensors, meta = load_safetensors(good)
    files = {}

    def put(name, data):
        files[name] = folder / f"{name}.safetensors"
        files[name].write_bytes(data)

    def with_meta(name, **changes):
        files[name] = folder / f"{name}.safetensors"
        save_safetensors(files[name], tensors, {**meta, **changes})

    def with_header(name, header, data=b""):
        h = json.dumps(header).encode()
        put(name, struct.pack("<Q", len(h)) + h + data)

    rng = np.random.default_rng(5)
    for cut in sorted(rng.choice(len(raw), size=12, replace=False)):
        put(f"truncated-{cut}", raw[:cut])
    for bit in rng.choice(len(raw) * 8, size=40, replace=False):
        data = bytearray(raw)
        data[bit // 8] ^= 1 << (bit % 8)
        put(f"flip-{bit}", bytes(data))
    put("length-huge", struct.pack("<Q", 2**63) + raw[8:])
    put("length-zero", struct.pack("<Q", 0) + raw[8:])
    put("header-not-json", raw[:8] + b"x" + raw[9:])  # its first byte, '{', made a stray letter
    put("brackets", struct.pack("<Q", 2000) + b"[" * 1000 + b"]" * 1000)
    with_header("dtype-dict", {"w": {"dtype": {}, "shape": [1], "data_offsets": [0, 8]}}, bytes(8))
    with_header("shape-huge", {"w": {"dtype": "F64", "shape": [2**40, 2**40], "data_offsets": [0, 8]}}, bytes(8))
    with_header("shape-negative", {"w": {"dtype": "F64", "shape": [-1], "data_offsets": [0, 8]}}, bytes(8))
    with_header("offsets-float", {"w": {"dtype": "F64", "shape": [1], "data_offsets": [0.0, 8.0]}}, bytes(8))
    with_header("not-object", [1, 2, 3])
    with_meta("config-sequential", **{"chainrule.config": json.dumps({"class": "Sequential"})})
    with_meta("config-huge", **{"chainrule.config": json.dumps(
        {"class": "MLP", "in_features": 2, "hidden": [4000, 4000], "out_features": 2})})
    with_meta("config-strings", **{"chainrule.config": json.dumps(
        {"class": "MLP", "in_features": "2", "hidden": "4", "out_features": [2]})})
    with_meta("config-deep", **{"chainrule.config": "[" * 3000 + "]" * 3000})
    with_meta("config-not-json", **{"chainrule.config": "{"})
    with_meta("classes-short", **{"chainrule.metadata": json.dumps({"classes": [0]})})
    with_meta("classes-long", **{"chainrule.metadata": json.dumps({"classes": list(range(9))})})
    with_meta("classes-nested", **{"chainrule.metadata": json.dumps({"classes": [[0], {"a": 1}]})})
    with_meta("standardizer-short", **{"chainrule.metadata": json.dumps(
        {"classes": [0, 1], "standardizer": {"mean": [0.0], "std": [1.0]}})})
    with_meta("standardizer-strings", **{"chainrule.metadata": json.dumps(
        {"classes": [0, 1], "standardizer": {"mean": ["a", "b"], "std": [1, 1]}})})
    with_meta("metadata-list", **{"chainrule.metadata": "[1, 2]"})
    with_meta("format-checkpoint", **{"chainrule.format": "checkpoint"})
    return files


def test_crafted_model_files(capsys, tmp_path):
    files = crafted_files(tmp_path)
    reference = None
    try:
        import safetensors.numpy as reference
    except ImportError:  # pragma: no cover - installed with the dev extras
        pass
    # The untouched file is the control: it loads, and both readers read it alike.
    for name, path in {**files, "good": tmp_path / "good.safetensors"}.items():
        try:
            model = within_limit(cr.nn.load, path)
        except ModelFileError:
            model = None
        assert (model is None) == (name != "good"), f"{name}: a hostile file was loaded"
        if reference is not None:
            # Our reader is at least as strict as the Rust one: what it accepts, safetensors reads alike.
            try:
                ours = within_limit(load_safetensors, path)[0]
            except ModelFileError:
                ours = None
            if ours is not None:
                theirs = reference.load_file(str(path))
                assert sorted(theirs) == sorted(ours), name
                for key in ours:
                    assert theirs[key].tobytes() == ours[key].tobytes(), (name, key)
        for command in ("predict", "evaluate"):
            code, out, err = run_cli(capsys, [command, str(path), "circle"])
            assert code == (2 if model is None else 0), (name, command)


def test_a_closed_pipe_ends_the_command_quietly():
    """`chainrule explain ... | head -1`: the reader leaves early; no BrokenPipeError traceback."""
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "chainrule", "explain", "exp(x*z) + x*z/ln(x) + sin(ln(x))/(x*z)",
                             "--at", "x=2", "z=3"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # the reader is gone before the first line is written
    _, err = proc.communicate(timeout=60)
    assert b"Traceback" not in err and b"BrokenPipe" not in err, err.decode()[-2000:]
    assert proc.returncode == 141
