"""The README's Python examples run as written (each as a script in a scratch folder), and its
two commands are the ones CI runs: the README stays true."""
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_python_block_runs(index, tmp_path):
    pytest.importorskip("sympy")
    pytest.importorskip("matplotlib")
    script = tmp_path / f"readme_block_{index}.py"
    script.write_text(BLOCKS[index])
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"README block {index} failed:\n{BLOCKS[index]}\n{done.stderr[-3000:]}"


def test_readme_names_the_two_commands_and_ci_runs_the_test_one():
    text = README.read_text()
    assert 'pip install -e ".[all]" && chainrule train' in text
    assert 'pip install -e ".[dev]" && python3 -m pytest -q' in text
    assert 'pip install -e ".[dev]" && python3 -m pytest -q' in (ROOT / ".ci" / "run").read_text()


def _training_blocks():
    return [b for b in BLOCKS if "cr.fit(" in b or ".step()" in b]


def test_readme_training_blocks_assert_a_good_accuracy():
    """Each Python example that trains checks, as written, that it learnt (the block test runs it):
    the digits loop once ended at chance (0.103) on raw pixels and nobody noticed."""
    blocks = _training_blocks()
    assert len(blocks) >= 2
    for block in blocks:
        assert re.search(r"^assert \w*accuracy\w* > 0\.9\d*$", block, re.M), block


def _readme_train_commands():
    text = README.read_text()
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        for line in block.splitlines():
            argv = line.split("#")[0].split()
            data = argv[argv.index("--data") + 1] if "--data" in argv else "digits"
            if argv[:2] == ["chainrule", "train"] and data != "digits" and not data.endswith(".csv"):
                commands.append(argv[2:])
    return commands


@pytest.mark.parametrize("argv", _readme_train_commands(), ids=" ".join)
def test_readme_train_commands_reach_a_good_accuracy(argv, tmp_path, capsys):
    """The README's `chainrule train --data SET ...` lines, as written (in a scratch folder)."""
    import json

    from chainrule.cli import main

    if "--out" in argv:
        i = argv.index("--out")
        argv = argv[:i] + argv[i + 2:]
    code = main(["train", *argv, "--out", str(tmp_path / "run"), "--no-progress", "--no-figures", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert json.loads(out)["test_accuracy"] >= 0.95


def _blocks_with_output():
    """(python block, the ```text block right after it): what the README says the block prints."""
    text = README.read_text()
    return re.findall(r"```python\n((?:(?!```).)*?)```\n\n(?:(?!```).)*?```text\n(.*?)```", text, flags=re.S)


def test_readme_shows_what_its_blocks_print(tmp_path):
    """A printed result in the README (the quiz's compiled program) is the block's real output."""
    pairs = _blocks_with_output()
    assert any("source(" in code for code, _ in pairs)
    for code, shown in pairs:
        script = tmp_path / "block.py"
        script.write_text(code)
        done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        assert done.stdout.rstrip("\n").endswith(shown.rstrip("\n")), (done.stdout, shown)


def test_readme_diagnostics_warning_is_what_training_prints(tmp_path, capsys):
    """The Diagnostics section: its relu + He command trains without a warning; the same network
    with the sigmoid flags it names stays at chance and warns with the message it quotes."""
    import json
    import warnings

    import chainrule as cr
    from chainrule.cli import main

    text = README.read_text()
    (line,) = [ln for ln in text.splitlines() if ln.startswith("chainrule train") and "no warning" in ln]
    argv = line.split("#")[0].split()[2:]
    sigmoid = re.search(r"The same network with `(--activation [^`]+)` stays at chance", text).group(1).split()
    quoted = re.search(r"the\s+warning says why: `VanishingGradientWarning: (.*?)`", text, re.S).group(1)
    results = {}
    for name, extra in (("relu", []), ("sigmoid", [a for a in sigmoid if a not in argv])):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            code = main(["train", *argv, *extra, "--out", str(tmp_path / name), "--no-progress", "--no-figures",
                         "--json"])
        assert code == 0
        accuracy = json.loads(capsys.readouterr().out)["test_accuracy"]
        results[name] = accuracy, [w for w in caught if issubclass(w.category, cr.TrainingWarning)]
    assert results["relu"][1] == []
    accuracy, caught = results["sigmoid"]
    assert accuracy <= 0.6  # chance on the two-class circle
    assert [w.category for w in caught] == [cr.VanishingGradientWarning]
    assert str(caught[0].message).startswith(" ".join(quoted.split()))
