"""The command line: init, doctor, dataset commands, errors without tracebacks, the dashboard."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml
from ase.io import write
from fireworks import Firework, ScriptTask, Workflow

MLIPFLOW = [sys.executable, "-m", "mlipflow"]
ROOT = Path(__file__).resolve().parents[1]


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
    doctor = _run("doctor").stdout
    assert "torch device" in doctor and "labeler cp2k" in doctor and "labeler vasp" in doctor
    assert "ATOMATE2_VASP_CMD" in doctor or "PMG_VASP_PSP_DIR" in doctor or "POTCAR" in doctor  # says what to set
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


# ------------------------------------------------------------------ a campaign run with `mlipflow run`
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
#: the toy campaign, one iteration with 2 epochs per model: every stage once, in about a minute
TOY_CLI = "toy-cli"


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    """`mlipflow run` of a one-iteration toy campaign on a user CIF, into a pipe (COLUMNS=80): home, env, process."""
    home = tmp_path_factory.mktemp("toy-cli-home")
    spec = yaml.safe_load((ROOT / "flows" / "campaign_toy.yaml").read_text())
    spec.update(name=TOY_CLI, convergence={**spec["convergence"], "max_iterations": 1})
    # the user's own structure file as the material (a CIF written here, found next to the campaign file)
    from mlipflow.structures import load_prototype

    load_prototype("Li2O").to(filename=str(home / "my_li2o.cif"))
    for section in ("structures", "explore"):
        spec[section]["materials"] = {"Li2O": {"file": "my_li2o.cif"}}
    spec["trainer"]["hyperparams"]["max_num_epochs"] = 2
    path = home / "toy.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    env = {k: v for k, v in os.environ.items() if k not in ("MLIPFLOW_CONFIG", "MLIPFLOW_MONGODB_URI")}
    env.update(MLIPFLOW_HOME=str(home / "data"), COLUMNS="80", OMP_NUM_THREADS="1")
    proc = subprocess.run([*MLIPFLOW, "run", str(path), "--no-report"], capture_output=True, text=True, env=env,
                          cwd=home, timeout=1200)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return home, env, proc


def _toy_stores(env):
    from mlipflow.settings import load_settings
    from mlipflow.storage import get_stores

    return get_stores(load_settings(home=Path(env["MLIPFLOW_HOME"])))


def test_campaign_console_output_is_a_line_per_step_and_the_log_file_has_everything(toy_run):
    _, env, proc = toy_run
    lines = proc.stdout.splitlines()
    log_line = next(line for line in lines if line.startswith("full log: "))
    log_file = Path(log_line.removeprefix("full log: "))
    assert log_file.parent == Path(env["MLIPFLOW_HOME"]) / "logs"
    steps = lines[lines.index(log_line) + 1: lines.index(f"campaign {TOY_CLI}: max_iterations")]
    lp = _toy_stores(env).launchpad
    finished = lp.fireworks.count_documents({"spec.campaign": TOY_CLI, "state": "COMPLETED"})
    assert 0 < len(steps) <= finished  # at most one line per finished step
    for line in steps:
        assert re.match(rf"\[\d:\d\d:\d\d\] {TOY_CLI} · iteration \d · [a-z]+", line), line
    assert {line.split(" · ")[2].split(":")[0] for line in steps} >= {"structures", "label", "dataset", "train",
                                                                      "explore", "select", "decide"}
    assert any("decision max_iterations: reached 1 iterations" in line for line in steps)
    everything = proc.stdout + proc.stderr
    for noise in ("Warning", "warn", "Traceback", "cuequivariance", "Starting job", "Rocket", "fw_id"):
        assert noise not in everything, noise  # no third-party chatter on the console
    assert proc.stderr.strip() == ""
    text = log_file.read_text()
    for job in lp.fireworks.find({"spec.campaign": TOY_CLI}, {"spec._tasks.job.name": 1}):
        assert f"Starting job - {job['spec']['_tasks'][0]['job']['name']}" in text
    assert "Task completed" in text and "mlipflow.training" in text  # FireWorks' and mlipflow's own records


def test_status_fits_80_columns_in_a_pipe_and_prints_json(toy_run):
    home, env, _ = toy_run
    shell = subprocess.run(f"{sys.executable} -m mlipflow status {TOY_CLI} | awk 'length > 80'", shell=True,
                           capture_output=True, text=True, env=env, cwd=home, timeout=120)
    assert shell.returncode == 0 and shell.stdout == "", shell.stdout
    shown = subprocess.run([*MLIPFLOW, "status", TOY_CLI], capture_output=True, text=True, env=env, timeout=120)
    assert max(len(line.encode()) for line in shown.stdout.splitlines()) <= 80
    assert "\x1b[" not in shown.stdout and "┃" not in shown.stdout  # plain layout in a pipe
    assert "max_iterations: reached 1 iterations" in shown.stdout
    stores = _toy_stores(env)
    stores.campaigns.update_one({"_id": TOY_CLI}, {"$set": {"benchmark": {"trajectory_errors": {"rmse_f": 0.1}}}})
    doc = json.loads(subprocess.run([*MLIPFLOW, "status", TOY_CLI, "--json"], capture_output=True, text=True,
                                    env=env, timeout=120).stdout)
    assert doc["state"] == "max_iterations" and [it["iteration"] for it in doc["iterations"]] == [1]
    assert doc["benchmark"] == {"trajectory_errors": {"rmse_f": 0.1}}  # every field of the campaign document
    labeled = stores.frames.count_documents({"status": "labeled"})
    assert labeled >= 19 + 3  # iteration 0's cells and atoms, iteration 1's picks (and the benchmark's test set)
    assert stores.frames.count_documents({"provenance.parent": "file my_li2o.cif"}) >= 1  # cut from the user's CIF
    assert doc["spec"]["name"] == TOY_CLI and doc["labels"]["labeled"] == labeled and doc["next"].startswith("nothing")


@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium not installed (Debian package 'chromium')")
def test_dashboard_shows_the_campaign_graph_offline(toy_run, tmp_path):
    """Headless Chromium with every host but localhost unresolvable: the workflow page draws its graph."""
    import numpy as np
    from PIL import Image

    _, env, _ = toy_run
    wf = _toy_stores(env).launchpad.workflows.find_one({"name": TOY_CLI}, {"nodes": 1})
    port = _free_port()
    server = subprocess.Popen([*MLIPFLOW, "dashboard", "--port", str(port)], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}/wf/{wf['nodes'][0]}"
        for _ in range(150):
            try:
                page = urllib.request.urlopen(url, timeout=5).read().decode()
                break
            except OSError:
                time.sleep(0.2)
        else:
            raise AssertionError("dashboard did not start")
        assert "code.jquery.com" not in page and "/mlipflow-static/jquery-3.7.1.min.js" in page
        offline = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                   "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1", "--virtual-time-budget=10000"]
        dom = subprocess.run([CHROMIUM, *offline, "--dump-dom", url], capture_output=True, text=True, timeout=120,
                             check=True).stdout
        assert 'class="jsonview"' in dom  # jQuery ran (the JSON view is drawn by a jQuery plugin)
        shot = tmp_path / "workflow.png"
        subprocess.run([CHROMIUM, *offline, "--window-size=1400,1000", f"--screenshot={shot}", url],
                       capture_output=True, timeout=120, check=True)
    finally:
        server.terminate()
        server.wait(10)
    pixels = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    green = np.all(np.abs(pixels - np.array([0x24, 0xC7, 0x5A])) <= 8, axis=-1)  # COMPLETED nodes (#24C75A)
    from scipy import ndimage

    _, n_blobs = ndimage.label(green[150:])  # below the page's own COMPLETED label
    n_fireworks = len(wf["nodes"])
    assert n_blobs >= n_fireworks // 2, (n_blobs, n_fireworks)  # the graph has (about) one box per firework


def test_mace_run_train_on_a_dataset_export_uses_the_campaigns_e0s(toy_run, tmp_path):
    """mace-torch's own CLI on `mlipflow dataset export` (no --E0s): E0s from the IsolatedAtom frames."""
    import torch

    _, env, _ = toy_run
    stores = _toy_stores(env)
    model = stores.models.find_one({"kind": "mace", "dataset_version": {"$regex": f"^{TOY_CLI}-"}})
    out = tmp_path / "export.xyz"
    _run_env = dict(env, COLUMNS="250")
    shown = subprocess.run([*MLIPFLOW, "dataset", "export", model["dataset_version"], str(out)], capture_output=True,
                           text=True, env=_run_env, timeout=120)
    assert shown.returncode == 0, shown.stderr
    text = out.read_text()
    assert text.count("config_type=IsolatedAtom") == 2 == len(model["e0s"])
    args = ["--name", "export", "--train_file", str(out), "--valid_fraction", "0.2", "--model", "MACE",
            "--r_max", "3.0", "--num_channels", "8", "--max_L", "0", "--num_interactions", "1",
            "--max_num_epochs", "1", "--batch_size", "4", "--energy_key", "REF_energy", "--forces_key", "REF_forces",
            "--stress_key", "REF_stress", "--device", "cpu", "--default_dtype", "float64", "--seed", "0"]
    mace_env = dict(_run_env, TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD="1")
    done = subprocess.run([str(Path(sys.executable).parent / "mace_run_train"), *args], capture_output=True,
                          text=True, env=mace_env, cwd=tmp_path, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "Using isolated atom energies from training file" in (tmp_path / "logs").glob("*.log").__next__().read_text()
    trained = torch.load(tmp_path / "export.model", map_location="cpu", weights_only=False)
    numbers = [int(z) for z in trained.atomic_numbers]
    energies = trained.atomic_energies_fn.atomic_energies.detach().numpy().reshape(-1)
    from ase.data import chemical_symbols

    got = {chemical_symbols[z]: float(e) for z, e in zip(numbers, energies, strict=True)}
    assert got == pytest.approx(model["e0s"], abs=1e-8)  # the E0s the campaign trained with


def test_worker_prints_a_line_per_finished_step(stores, tmp_path):
    """`mlipflow worker` into a pipe: the log file's path, then one line per finished step of any campaign."""
    tests = Path(__file__).resolve().parent
    sys.path.insert(0, str(tests))
    try:
        import demo_flow
    finally:
        sys.path.remove(str(tests))
    from mlipflow.execution import submit

    env = dict(os.environ, PYTHONPATH=str(tests), DEMO_LOG=str(tmp_path / "ran.log"), DEMO_GO=str(tmp_path / "go"),
               COLUMNS="80")
    submit(demo_flow.make("demo"), stores)
    proc = subprocess.run([*MLIPFLOW, "worker", "--sleep", "1"], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("full log: "))
    steps = lines[start + 1:]
    assert len(steps) == 7 and all(" · iteration " in line for line in steps), steps
    assert "Rocket" not in proc.stdout and "fw_id" not in proc.stdout and proc.stderr.strip() == ""
