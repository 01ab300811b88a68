"""`chainrule exercise`: blank and filled exercises in every format, JSON that `chainrule diff`
checks, files written with -o, and bad input refused with exit code 2."""
import json
import os
import subprocess
import sys

import pytest

from chainrule.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("kind", ["quiz", "graph", "network"])
def test_json_round_trips_through_diff(capsys, kind):
    code, out, err = run(capsys, "exercise", "--kind", kind, "--seed", "9", "--difficulty", "2", "--format", "json",
                         "--answers")
    assert code == 0, err
    data = json.loads(out)
    at = [f"{v}={x!r}" for v, x in data["at"].items()]
    code, out, err = run(capsys, "diff", data["expression"], "--at", *at, "--json", "--method", "reverse")
    assert code == 0, err
    checked = json.loads(out)
    for name, value in zip(checked["variables"], checked["methods"]["reverse"]["gradient"]):
        assert value == pytest.approx(data["gradient"][name], rel=1e-12, abs=1e-15)
    assert set(checked["variables"]) == set(data["gradient"])


def test_blank_and_answers_text(capsys):
    code, blank, err = run(capsys, "exercise", "--seed", "7", "--difficulty", "2")
    assert code == 0, err
    code, full, err = run(capsys, "exercise", "--seed", "7", "--difficulty", "2", "--answers")
    assert code == 0, err
    assert "Forward pass" in blank and "Backward pass" in blank and "A) " in blank and "Key" not in blank
    assert "Key" in full and "Answer: " in full and "  sum of " in full and "  sum of " not in blank
    # Same exercise: the blank is the filled one with cells removed.
    assert blank.splitlines()[:3] == full.splitlines()[:3]


def test_subprocess_same_seed_same_output_and_file(tmp_path):
    env = dict(os.environ)
    cmd = [sys.executable, "-m", "chainrule", "exercise", "--kind", "network", "--seed", "4", "--format", "markdown"]
    a = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert a.returncode == 0, a.stderr
    path = tmp_path / "ex.html"
    b = subprocess.run(cmd[:-2] + ["--format", "html", "-o", str(path)], capture_output=True, text=True, env=env,
                       timeout=120)
    assert b.returncode == 0, b.stderr
    page = path.read_text()
    assert page.startswith("<!DOCTYPE html>") and "</html>" in page
    c = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert a.stdout == c.stdout


@pytest.mark.parametrize("argv,message", [
    (["--difficulty", "4"], "--difficulty must be between 1 and 3"),
    (["--difficulty", "two"], "--difficulty must be an integer"),
    (["--seed", "-3"], "--seed must be at least 0"),
    (["--kind", "essay"], "invalid choice"),
    (["--format", "pdf"], "invalid choice"),
])
def test_bad_input_exits_2_with_a_message(capsys, argv, message):
    with pytest.raises(SystemExit) as e:
        main(["exercise", *argv])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
