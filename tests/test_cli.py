"""The command line: init, doctor, dataset commands, errors without tracebacks, the dashboard."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request

from ase.io import write
from fireworks import Firework, ScriptTask, Workflow

MLIPFLOW = [sys.executable, "-m", "mlipflow"]


def _run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = dict(os.environ, COLUMNS="250")
    proc = subprocess.run([*MLIPFLOW, *args], capture_output=True, text=True, env=env, timeout=300)
    if check:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def test_init_doctor_and_dataset_commands(mlipflow_home, tmp_path, lj_li_images):
    out = _run("init").stdout
    assert "embedded store" in out and (mlipflow_home / "config.yaml").exists()
    assert _run("init", check=False).returncode == 1  # refuses to overwrite without --force
    assert "torch device" in _run("doctor").stdout
    path = tmp_path / "f.xyz"
    write(path, lj_li_images(4), format="extxyz")
    assert "4 new frames" in _run("dataset", "import", str(path), "--labeler", "lj", "--kind", "surrogate").stdout
    assert "0 new frames, 4 already stored" in _run("dataset", "import", str(path), "--labeler", "lj",
                                                   "--kind", "surrogate").stdout
    version = _run("dataset", "version", "li").stdout.split()[2].rstrip(":")
    assert "lj (surrogate)" in _run("dataset", "list").stdout
    _run("dataset", "export", version, str(tmp_path / "out.xyz"))
    assert (tmp_path / "out.xyz").read_text().count("REF_energy") == 4


def test_user_errors_print_one_line_without_traceback(tmp_path):
    proc = _run("dataset", "import", str(tmp_path / "missing.xyz"), "--labeler", "x", check=False)
    assert proc.returncode == 1
    assert "no such file" in proc.stderr and "Traceback" not in proc.stderr
    debug = _run("--debug", "dataset", "import", str(tmp_path / "missing.xyz"), "--labeler", "x", check=False)
    assert "Traceback" in debug.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_dashboard_serves_index_and_workflow_page(stores):
    wf = Workflow([Firework(ScriptTask.from_str("echo hi"), name="hello")], name="dash-test")
    stores.launchpad.add_wf(wf)
    fw_id = stores.launchpad.get_fw_ids()[0]
    port = _free_port()
    proc = subprocess.Popen([*MLIPFLOW, "dashboard", "--port", str(port)], env=dict(os.environ),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                index = urllib.request.urlopen(base + "/", timeout=5)
                break
            except OSError:
                time.sleep(0.2)
        else:
            raise AssertionError("dashboard did not start")
        assert index.status == 200 and "dash-test" in index.read().decode()
        page = urllib.request.urlopen(f"{base}/wf/{fw_id}", timeout=10)
        assert page.status == 200 and "hello" in page.read().decode()
    finally:
        proc.terminate()
        proc.wait(10)
