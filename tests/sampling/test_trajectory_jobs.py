"""Chunked trajectory storage, the CommitteeMDMaker job, and AIMD maker settings / ingest of a recorded run."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk
from ase.units import Bohr, Hartree
from pymatgen.core import Lattice, Structure

from mlipflow.data import Dataset, LabelerInfo
from mlipflow.execution import RESOURCE_KEY, run_locally
from mlipflow.sampling import CalculatorFactory, CommitteeMDMaker, MDSettings, TrajectoryStore


def test_2000_frame_trajectory_round_trip(stores):
    atoms = bulk("Li", "bcc", a=3.44, cubic=True).repeat((2, 2, 2))
    rng = np.random.default_rng(0)
    tstore = TrajectoryStore(stores)
    positions, energies = [], []
    with tstore.writer(atoms, metadata={"family": "bulk"}, chunk_frames=256) as writer:
        for step in range(2000):
            a = atoms.copy()
            a.positions += rng.normal(0, 0.1, a.positions.shape)
            e = float(rng.normal())
            writer.append(a, energy=e, forces=rng.normal(size=a.positions.shape), step=step,
                          max_force_spread=float(rng.random()))
            positions.append(a.positions.copy())
            energies.append(e)
    header = tstore.header(writer.id)
    assert header["complete"] and header["n_frames"] == 2000 and len(header["chunks"]) == 8
    for chunk in header["chunks"]:  # every stored piece is far below MongoDB's 16 MB document limit
        assert stores.blobs.get(chunk["file_id"]).length < 16 * 2**20
    arrays = tstore.arrays(writer.id)
    assert arrays["positions"].shape == (2000, 16, 3)
    np.testing.assert_array_equal(arrays["positions"], np.array(positions))
    np.testing.assert_array_equal(arrays["energy"], energies)
    assert arrays["step"].tolist() == list(range(2000))
    frames = tstore.read(writer.id, indices=[0, 255, 256, 1999])
    assert [f.info["frame"] for f in frames] == [0, 255, 256, 1999]
    np.testing.assert_array_equal(frames[3].positions, positions[1999])
    assert frames[1].get_potential_energy() == energies[255]
    assert sum(1 for _ in tstore.iter_atoms(writer.id)) == 2000


def test_committee_md_maker_job(stores):
    structure = Structure(Lattice.cubic(3.44), ["Li", "Li"], [[0, 0, 0], [0.5, 0.5, 0.5]]) * (2, 2, 2)
    structure.properties = {"provenance": {"family": "bulk", "generator": "test", "parameters": {}, "parent": None}}
    maker = CommitteeMDMaker(
        calculator=CalculatorFactory("mlipflow.sampling.uncertainty:toy_lj_committee", {"n_models": 2}),
        temperatures=[300.0, 900.0], settings=MDSettings(n_steps=20, record_every=10), monitors=[])
    job = maker.make([structure])
    assert job.metadata[RESOURCE_KEY] == "gpu"
    responses = run_locally(job, stores)
    summary = responses[job.uuid][1].output
    assert len(summary.walkers) == 2 and all(w.family == "bulk" for w in summary.walkers)
    assert [w.n_frames for w in summary.walkers] == [3, 3]
    assert TrajectoryStore(stores).header(summary.trajectory_ids[1])["metadata"]["temperature_index"] == 1


# -- AIMD ------------------------------------------------------------------------------------------------------


def _write_cp2k_run(directory, n_steps=20, every=5):
    """A CP2K MD run's print files in CP2K's own format (Å; Hartree; Hartree/Bohr)."""
    rng = np.random.default_rng(1)
    pos, frc, truth = [], [], []
    for step in range(0, n_steps + 1, every):
        p = np.array([[0.0, 0.0, 0.0], [1.72, 1.72, 1.72]]) + rng.normal(0, 0.05, (2, 3))
        f = rng.normal(0, 0.01, (2, 3))
        e = -14.9 + 0.001 * step
        head = f"       2\n i =     {step:5d}, time =     {step * 0.5:10.3f}, E =       {e:.10f}\n"
        pos.append(head + "".join(f"  Li  {x:16.10f}{y:16.10f}{z:16.10f}\n" for x, y, z in p))
        frc.append(head + "".join(f"  Li  {x:16.10f}{y:16.10f}{z:16.10f}\n" for x, y, z in f))
        truth.append((step, p, f, e))
    (directory / "cp2k-pos-1.xyz").write_text("".join(pos))
    (directory / "cp2k-frc-1.xyz").write_text("".join(frc))
    return truth


def test_read_and_ingest_recorded_cp2k_run(tmp_path, stores):
    from mlipflow.sampling.aimd import ingest_aimd_frames, read_cp2k_md

    truth = _write_cp2k_run(tmp_path)
    images = read_cp2k_md(tmp_path, cell=np.eye(3) * 3.44)
    assert [a.info["md_step"] for a in images] == [0, 5, 10, 15, 20]
    np.testing.assert_allclose(images[2].positions, truth[2][1])
    np.testing.assert_allclose(images[2].get_forces(), truth[2][2] * Hartree / Bohr)
    assert images[2].get_potential_energy() == pytest.approx(truth[2][3] * Hartree)
    labeler = LabelerInfo(name="cp2k-pbe", kind="dft", version="2023.1", settings={"cutoff": 400})
    ids, inserted, existing = ingest_aimd_frames(images, labeler, stores=stores, temperature=1200.0,
                                                 snapshot_every=10, skip_steps=5, family="bulk")
    assert (len(ids), inserted, existing) == (2, 2, 0)
    frame = Dataset(stores).get(ids[0])
    assert frame.provenance.origin == "aimd" and frame.provenance.md_step == 10
    assert frame.provenance.temperature == 1200.0 and frame.labeler.is_dft
    np.testing.assert_allclose(frame.forces, truth[2][2] * Hartree / Bohr)


def test_aimd_maker_builds_atomate2_settings():
    from pymatgen.io.cp2k.inputs import Cp2kInput, Section

    from mlipflow.sampling.aimd import AimdMaker, Cp2kAimdSetGenerator, repair_cp2k_md_section

    s = Structure(Lattice.cubic(3.44), ["Li", "Li"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    maker = AimdMaker(temperatures=[800.0, 1600.0], timestep=0.5, n_steps=200, snapshot_every=20,
                      input_settings={"cutoff": 300})
    flow = maker.make(s)
    assert [j.name for j in flow.jobs] == ["aimd cp2k md 800 K", "aimd ingest 800 K", "aimd cp2k md 1600 K",
                                           "aimd ingest 1600 K"]
    gen = maker.md_maker(1600.0).input_set_generator
    assert isinstance(gen, Cp2kAimdSetGenerator) and gen.snapshot_every == 20
    assert gen.user_input_settings["activate_motion"] == {"ensemble": "NVT", "temperature": 1600.0,
                                                          "timestep": 0.5, "nsteps": 200, "thermostat": "NOSE"}
    assert gen.user_input_settings["cutoff"] == 300
    # the chained rung starts from the first rung's final structure
    assert flow.jobs[2].function_args[0].uuid == flow.jobs[0].uuid

    vasp = AimdMaker(code="vasp", temperatures=[1000.0], timestep=2.0, n_steps=500, snapshot_every=5)
    vgen = vasp.md_maker(1000.0).input_set_generator
    assert (vgen.ensemble, vgen.start_temp, vgen.end_temp, vgen.nsteps, vgen.time_step) == ("nvt", 1000.0, 1000.0,
                                                                                            500, 2.0)
    assert vgen.user_incar_settings["NBLOCK"] == 5

    # pymatgen's activate_motion leaves THERMOSTAT/TYPE as a bare string: the repair makes it writable
    inp = Cp2kInput(subsections={})
    motion = Section("MOTION", subsections={})
    motion.insert(Section("PRINT", subsections={}))
    motion["PRINT"].insert(Section("TRAJECTORY", section_parameters=["ON"], subsections={}))
    motion.insert(Section("MD", subsections={"THERMOSTAT": Section("THERMOSTAT", keywords={"TYPE": "NOSE"})}))
    inp.insert(motion)
    with pytest.raises(AttributeError):
        inp.get_str()
    text = repair_cp2k_md_section(inp, 20, 50.0).get_str()
    assert "TYPE NOSE" in text and "MD 20" in text and "TIMECON 50.0" in text


def test_aimd_frames_carry_the_md_settings_and_never_join_a_static_version(stores):
    from ase.calculators.lj import LennardJones

    from mlipflow.data import LabeledFrame
    from mlipflow.errors import DataError
    from mlipflow.sampling.aimd import AimdMaker, ingest_aimd_frames

    static = LabelerInfo(name="cp2k-pbe", kind="dft", version="2023.1", settings={"cutoff_ry": 400.0})
    info = AimdMaker(labeler=static, timestep=1.0, input_settings={"cutoff": 400}).frame_labeler()
    assert info.name == "cp2k-pbe-aimd" and info.is_dft and info.settings["cutoff_ry"] == 400.0
    md = info.settings["md"]
    assert md["input_set"] == "atomate2.cp2k.sets.core.MDSetGenerator" and md["timestep_fs"] == 1.0
    assert md["input_settings"] == {"cutoff": 400} and md["atomate2"]
    other = AimdMaker(labeler=static, timestep=1.0, input_settings={"cutoff": 300}).frame_labeler()
    vasp = AimdMaker(code="vasp").frame_labeler()
    assert len({static.settings_hash, info.settings_hash, other.settings_hash, vasp.settings_hash}) == 4

    rng = np.random.default_rng(0)
    images, statics = [], []
    for step in range(4):  # an "MD run" and static labels of the same kind of cells (LJ numbers)
        atoms = bulk("Li", "bcc", a=3.44, cubic=True).repeat((2, 1, 1))
        atoms.positions += rng.normal(0.0, 0.05, atoms.positions.shape)
        atoms.calc = LennardJones(sigma=2.7, epsilon=0.05, rc=5.0)
        atoms.get_potential_energy()
        atoms.info["md_step"] = step
        images.append(atoms)
        statics.append(LabeledFrame.from_atoms(atoms, static, energy=atoms.get_potential_energy(),
                                               forces=atoms.get_forces()))
    aimd_ids, inserted, _ = ingest_aimd_frames(images, info, stores=stores, temperature=600.0)
    assert inserted == 4
    dataset = Dataset(stores)
    dataset.add_frames(statics)
    static_ids = [f.content_hash for f in statics]
    assert not set(static_ids) & set(aimd_ids)  # same structures, other labeler: other frames
    stored = stores.frames.find_one({"_id": aimd_ids[0]})
    assert stored["labeler"]["settings"]["md"]["timestep_fs"] == 1.0
    with pytest.raises(DataError, match="different labelers"):
        dataset.create_version("mixed", frame_ids=static_ids + aimd_ids)
    assert dataset.create_version("static", frame_ids=static_ids, fractions={"train": 1.0}) is not None
