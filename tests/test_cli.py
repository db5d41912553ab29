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


def test_doctor_exits_1_when_its_store_check_fails(tmp_path):
    env = dict(os.environ, MLIPFLOW_MONGODB_URI="mongodb://user:s3cret-pw@127.0.0.1:9/db?serverSelectionTimeoutMS=500",
               COLUMNS="250")
    proc = subprocess.run([*MLIPFLOW, "doctor"], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "cannot reach the store mongodb://user:***@127.0.0.1:9/db" in proc.stdout
    assert "s3cret-pw" not in proc.stdout + proc.stderr
    malformed = subprocess.run([*MLIPFLOW, "status"], capture_output=True, text=True, timeout=300,
                               env=dict(env, MLIPFLOW_MONGODB_URI="mongodb://user:s3cret-pw@"))
    assert malformed.returncode == 1 and "Traceback" not in malformed.stderr
    assert malformed.stderr.startswith("error: cannot reach the store mongodb://user:***@: ")
    assert "s3cret-pw" not in malformed.stdout + malformed.stderr


def test_init_with_an_unreachable_uri_writes_nothing_and_masks_the_password(mlipflow_home):
    proc = _run("init", "--uri", "mongodb://user:s3cret-pw@127.0.0.1:9/db?serverSelectionTimeoutMS=500",
                check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "cannot reach the store mongodb://user:***@127.0.0.1:9/db" in proc.stderr
    assert "s3cret-pw" not in proc.stdout + proc.stderr
    assert not (mlipflow_home / "config.yaml").exists() and not (mlipflow_home / "fireworks").exists()


def test_init_with_a_uri_writes_files_holding_the_password_for_the_owner_only(mlipflow_home, tmp_path,
                                                                             monkeypatch):
    """The server behind the URI is played by an embedded store (no MongoDB here); everything else is real."""
    from typer.testing import CliRunner

    import mlipflow.storage as storage
    from mlipflow.cli import app
    from mlipflow.embedded import EmbeddedMongoClient

    server = EmbeddedMongoClient(tmp_path / "server")
    monkeypatch.setattr(storage, "_mongo_client", lambda uri: server)
    uri = "mongodb://user:s3cret-pw@db.example.org:27017/mlip?authSource=admin&tlsCertificateKeyFilePassword=k3y"
    result = CliRunner().invoke(app, ["init", "--uri", uri])
    assert result.exit_code == 0, result.output
    assert "s3cret-pw" not in result.output and "k3y" not in result.output
    assert "mongodb://user:***@db.example.org:27017/mlip?authSource=admin&tlsCertificateKeyFilePassword=***" \
        in result.output.replace("\n", "")
    modes = {p.relative_to(mlipflow_home).as_posix(): p.stat().st_mode & 0o777
             for p in mlipflow_home.rglob("*.yaml")}
    assert modes == {"config.yaml": 0o600, "fireworks/my_launchpad.yaml": 0o600, "fireworks/jobflow.yaml": 0o600,
                     "fireworks/fworker_cpu.yaml": 0o644, "fireworks/fworker_gpu.yaml": 0o644}
    assert uri in (mlipflow_home / "config.yaml").read_text()


def test_redaction_masks_passwords_in_every_uri_form():
    from mlipflow.storage import redact_text, redact_uri

    cases = {
        "mongodb://u:p%40ss@h:27017/db?authSource=admin": "mongodb://u:***@h:27017/db?authSource=admin",
        "mongodb+srv://user:s3cr/et@cluster.example.net/db": "mongodb+srv://user:***@cluster.example.net/db",
        "mongodb://u:p@ss@h1,h2/db": "mongodb://u:***@h1,h2/db",
        "mongodb://u:p?x@h/db": "mongodb://u:***@h/db",
        "mongodb://:pw@h": "mongodb://***@h",
        "mongodb://h/db?tlsCertificateKeyFilePassword=xyz&w=1": "mongodb://h/db?tlsCertificateKeyFilePassword=***&w=1",
        "mongodb://u@h/?authMechanism=MONGODB-AWS&authMechanismProperties=AWS_SESSION_TOKEN:abc":
            "mongodb://u@h/?authMechanism=MONGODB-AWS&authMechanismProperties=***",
        "mongodb://h/db?password=zz": "mongodb://h/db?password=***",
        "localhost:27017": "localhost:27017",
        "not a uri": "not a uri",
        "mongodb://a:b@": "mongodb://a:***@",
        "://": "://",
        "": "",
    }
    for uri, masked in cases.items():
        assert redact_uri(uri) == masked
    assert redact_text("auth failed for p@ss (mongodb://u:p%40ss@h/db)", "mongodb://u:p%40ss@h/db") == \
        "auth failed for *** (mongodb://u:***@h/db)"
