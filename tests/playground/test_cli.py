"""`chainrule playground` on the command line: the URL, the warning for all interfaces, the page."""
import subprocess
import sys
import time
import urllib.request

import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")


def start(*args):
    proc = subprocess.Popen([sys.executable, "-m", "chainrule", "playground", "--port", "0", "--no-browser", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    return proc, line


def stop(proc):
    proc.terminate()
    try:
        return proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.communicate()


def test_prints_the_url_and_serves_the_page_on_localhost():
    proc, line = start()
    try:
        assert line.startswith("chainrule playground: http://127.0.0.1:")
        url = line.split()[2]
        for _ in range(100):
            try:
                page = urllib.request.urlopen(url, timeout=5).read().decode()
                break
            except OSError:
                time.sleep(0.1)
        assert 'data-testid="network"' in page
    finally:
        _, err = stop(proc)
    assert "warning" not in err


def test_warns_when_listening_on_all_interfaces():
    proc, line = start("--host", "0.0.0.0")
    try:
        assert line.startswith("chainrule playground: http://")
    finally:
        _, err = stop(proc)
    assert "warning: listening on all interfaces" in err


def test_a_busy_port_is_a_clear_error():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        run = subprocess.run([sys.executable, "-m", "chainrule", "playground", "--port", str(port), "--no-browser"],
                             capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and f"cannot listen on 127.0.0.1:{port}" in run.stderr
    assert "Traceback" not in run.stderr
