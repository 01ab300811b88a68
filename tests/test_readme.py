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
