"""The HTML report: every section renders (placeholders when data is missing), checked in headless Chromium."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from ase.build import bulk
from ase.calculators.morse import MorsePotential
from jobflow import run_locally
from pymatgen.io.ase import AseAtomsAdaptor

from mlipflow.benchmark.errors import evaluate_frames, plot_parity
from mlipflow.benchmark.jobs import EOSMaker, SpeedMaker
from mlipflow.benchmark.plotting import figure_to_base64
from mlipflow.benchmark.report import MISSING, SECTIONS, report
from mlipflow.benchmark.results import save_result
from mlipflow.benchmark.structure import first_peak, plot_distributions, rdf
from mlipflow.data import Dataset, LabeledFrame, LabelerInfo, Provenance

LJ = {"sigma": 2.7, "epsilon": 0.05, "rc": 6.0}
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _populate(stores, lj_li_images) -> None:
    info = LabelerInfo(name="lj", kind="surrogate", version="test", settings=LJ)
    frames = [
        LabeledFrame.from_atoms(
            a, info, energy=a.info["REF_energy"], forces=a.arrays["REF_forces"], stress=a.info["REF_stress"],
            provenance=Provenance(family="bulk", config_type="rattled"),
        )
        for a in lj_li_images(6, seed=0)
    ]
    dataset = Dataset(stores)
    dataset.add_frames(frames[:3])
    v1 = dataset.create_version("demo", frame_ids=[f.content_hash for f in frames[:3]])
    dataset.add_frames(frames[3:])
    v2 = dataset.create_version("demo", parent=v1.id)
    stores.models.insert_one({
        "_id": "demo-model-abc", "name": "demo", "kind": "mace", "dataset_version": v2.id,
        "curves": {"points": [{"epoch": e, "head": "Default", "rmse_e_per_atom": 0.02 / (e + 1),
                               "rmse_f": 0.3 / (e + 1)} for e in range(4)]},
        "errors": {"test": {"all": {"rmse_e_per_atom": 0.004, "rmse_f": 0.1, "n_frames": 1}}},
    })
    stores.campaigns.insert_one({
        "_id": "demo", "name": "demo", "dataset": "demo",
        "iterations": [{"iteration": 0, "counts": {"accurate": 5, "candidate": 10, "failed": 1},
                        "by_family": {"bulk": {"accurate": 5, "candidate": 10, "failed": 1}}},
                       {"iteration": 1, "counts": {"accurate": 12, "candidate": 3, "failed": 0}}],
    })
    rep, samples = evaluate_frames(frames, MorsePotential(epsilon=0.1, r0=3.0, rho0=4.0), model="demo-model-abc",
                                   test_set="6 frames")
    save_result(stores, subject="demo", kind="errors", model="demo-model-abc", reference=rep.reference,
                summary={"rmse_f_meV_A": 1e3 * rep.overall["force_component"].rmse}, result=rep,
                plots={"parity": figure_to_base64(plot_parity(samples))})
    r = rdf(bulk("Li", "bcc", a=3.44, cubic=True).repeat(2), rmax=5.0)
    save_result(stores, subject="demo", kind="rdf", model="demo-model-abc", reference="none",
                summary={"first_peak_Li-Li_A": first_peak(r.x, r.curves["Li-Li"])}, result=r,
                plots={"RDF": figure_to_base64(plot_distributions({"model": r}))})


def test_report_of_empty_store_has_every_section_as_placeholder(stores, tmp_path):
    path = report("nothing", tmp_path / "r.html", stores=stores)
    text = path.read_text()
    for sid in SECTIONS:
        assert f'<section id="{sid}">' in text
    assert text.count(MISSING) == len(SECTIONS) - 1  # all but the summary
    assert "<img" not in text


def test_report_shows_data_and_never_calls_a_surrogate_dft(stores, lj_li_images, tmp_path):
    _populate(stores, lj_li_images)
    # two Makers run through jobflow record into the benchmarks collection under the same subject
    cu = AseAtomsAdaptor.get_structure(bulk("Li", "bcc", a=3.44, cubic=True))
    flow = [EOSMaker(model="lj", subject="demo").make(cu), SpeedMaker(model="lj", sizes=[16], n_steps=2,
                                                                      subject="demo").make(cu)]
    from jobflow import Flow

    responses = run_locally(Flow(flow), store=stores.jobstore, ensure_success=True, log=False, root_dir=tmp_path)
    assert len(responses) == 2
    text = report("demo", tmp_path / "demo.html", stores=stores).read_text()
    for sid in ("dataset", "selection", "learning-curves", "errors", "properties", "speed"):
        section = re.search(f'<section id="{sid}">(.*?)</section>', text, re.S).group(1)
        assert MISSING not in section, sid
    assert "lj test (surrogate)" in text and "(dft)" not in text.replace("(dft) marks", "")
    assert text.count("<img") >= 7
    assert 'id="stability"' in text


def _dump_dom(path: Path) -> str:
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--dump-dom",
           f"file://{path}"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=90, check=True).stdout


@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium not installed (Debian package 'chromium')")
def test_report_renders_in_headless_chromium(stores, lj_li_images, tmp_path):
    _populate(stores, lj_li_images)
    path = report("demo", tmp_path / "demo.html", stores=stores)
    dom = _dump_dom(path.resolve())
    for sid in SECTIONS:
        assert f'id="{sid}"' in dom, sid
    n_img = len(re.findall(r"<img ", dom))
    assert n_img == path.read_text().count("<img") and n_img >= 5
    # every image is a decodable embedded PNG (no external resources)
    assert all(src.startswith("data:image/png;base64,iVBOR") for src in re.findall(r'<img [^>]*src="([^"]+)"', dom))
    shot = tmp_path / "shot.png"
    subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    f"--screenshot={shot}", "--window-size=1200,2400", f"file://{path.resolve()}"],
                   capture_output=True, timeout=90, check=True)
    assert shot.stat().st_size > 10_000
