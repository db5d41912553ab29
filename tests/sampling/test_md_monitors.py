"""Committee MD (toy LJ committees), uncertainty vs temperature, stability monitors on injected failures."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.calculator import Calculator, all_changes
from ase.calculators.lj import LennardJones

from mlipflow.errors import ConfigError
from mlipflow.sampling import (
    BallisticMonitor,
    MDSettings,
    MinDistanceMonitor,
    TemperatureMonitor,
    TemperatureSchedule,
    TrajectoryStore,
    VoidMonitor,
    check_trajectory,
    committee_predict,
    run_md,
    run_walkers,
)
from mlipflow.sampling.uncertainty import toy_lj_committee

SETTINGS = MDSettings(timestep=2.0, n_steps=120, record_every=10, seed=1)


def li16():
    return bulk("Li", "bcc", a=3.44, cubic=True).repeat((2, 2, 2))


@pytest.fixture(scope="module")
def committee():
    return toy_lj_committee(3, perturbation=0.05, seed=0)


@pytest.fixture(scope="module")
def runs(committee):
    """A 300 K and a 1500 K run of the same cell (frames kept in memory)."""
    cold = run_md(li16(), committee, 300.0, SETTINGS, keep_frames=True)
    hot = run_md(li16(), committee, 1500.0, SETTINGS, keep_frames=True)
    return cold, hot


def test_spread_grows_with_temperature(runs):
    (cold, _), (hot, _) = runs
    assert cold.stop_reason == hot.stop_reason == "completed"
    assert cold.n_frames == hot.n_frames == 13
    assert hot.mean_temperature > 3 * cold.mean_temperature
    assert hot.mean_max_force_spread > 1.5 * cold.mean_max_force_spread


def test_healthy_run_fires_no_monitor(runs):
    (_, frames), _ = runs
    verdicts = check_trajectory(frames)
    assert [v.monitor for v in verdicts] == ["min_distance", "density_drift", "void", "ballistic", "temperature"]
    assert not any(v.fired for v in verdicts), [v.message for v in verdicts if v.fired]


def _copy(frames):
    out = []
    for a in frames:
        b = a.copy()
        b.info = dict(a.info)
        out.append(b)
    return out


def test_overlap_caught_at_injected_frame(runs):
    (_, frames), _ = runs
    frames = _copy(frames)
    for a in frames[7:]:
        a.positions[1] = a.positions[0] + [0.6, 0.0, 0.0]
    verdicts = {v.monitor: v for v in check_trajectory(frames)}
    assert verdicts["min_distance"].fired and verdicts["min_distance"].frame == 7
    assert "atoms 0 (Li) and 1 (Li)" in verdicts["min_distance"].message


def test_ballistic_atom_caught_at_injected_frame(runs):
    (_, frames), _ = runs
    frames = _copy(frames)
    for a in frames[4:]:
        a.positions[5] += [2.4, 0.0, 0.0]
    (verdict,) = check_trajectory(frames, [BallisticMonitor(max_displacement={"Li": 1.5})])
    assert verdict.fired and verdict.frame == 4 and "atom 5 (Li)" in verdict.message


def test_void_caught_at_injected_frame():
    atoms = bulk("Li", "bcc", a=3.44, cubic=True).repeat((3, 3, 3))
    rng = np.random.default_rng(0)
    frames = []
    centre = atoms.cell.array.sum(axis=0) / 2
    for i in range(10):
        a = atoms.copy()
        a.positions += rng.normal(0, 0.05, a.positions.shape)
        if i >= 6:  # carve a void: drop the atoms within 3.1 Å of the centre
            del a[[k for k, p in enumerate(a.positions) if np.linalg.norm(p - centre) < 3.1]]
        frames.append(a)
    (verdict,) = check_trajectory(frames, [VoidMonitor(margin=1.0)])
    assert verdict.fired and verdict.frame == 6, verdict


def test_temperature_runaway(runs):
    (_, frames), _ = runs
    frames = _copy(frames)
    for a in frames[5:]:
        a.set_momenta(a.get_momenta() * 4.0)
    (verdict,) = check_trajectory(frames, [TemperatureMonitor(patience=2)])
    assert verdict.fired and verdict.frame == 5


def test_md_stops_when_monitor_fires(committee):
    atoms = li16()
    result, _ = run_md(atoms, committee, 300.0, MDSettings(n_steps=40, record_every=10),
                       monitors=[MinDistanceMonitor(floors={("Li", "Li"): 2.8})])
    # perfect bcc Li at frame 0 (2.98 Å); thermal motion brings neighbours under 2.8 Å by frame 1
    assert result.stop_reason == "monitor:min_distance" and result.n_frames == 2
    assert [v["frame"] for v in result.verdicts] == [1]


def test_md_stops_above_upper_trust(committee, stores):
    settings = MDSettings(n_steps=100, record_every=10, upper_trust=1e-4, patience=2)
    result, _ = run_md(li16(), committee, 300.0, settings, stores=stores)
    # frame 0 is the perfect lattice (zero spread by symmetry); frames 1 and 2 are above the bound
    assert result.stop_reason == "uncertainty" and result.n_frames == 3
    header = TrajectoryStore(stores).header(result.trajectory_id)
    assert header["complete"] and header["n_frames"] == 3 and header["metadata"]["stop_reason"] == "uncertainty"


def test_walkers_and_schedules(committee, stores):
    melt = TemperatureSchedule.melt_quench(2000.0, 300.0, heat_steps=10, hold_steps=10, quench_steps=10,
                                           anneal_steps=0)
    assert melt.at(0) == 300.0 and melt.at(10) == 2000.0 and melt.at(25) == pytest.approx(1150.0)
    assert melt.n_steps == 30
    s = li16()
    s.info["family"] = "bulk"
    results = run_walkers([s, li16()], [300.0, melt], committee, MDSettings(n_steps=30, record_every=10),
                          stores=stores, monitors=[])
    assert len(results) == 4 and len({r.trajectory_id for r in results}) == 4
    assert [r.family for r in results] == ["bulk", "bulk", None, None]
    arrays = TrajectoryStore(stores).arrays(results[1].trajectory_id, ["target_temperature", "step"])
    assert arrays["step"].tolist() == [0, 10, 20, 30]
    assert arrays["target_temperature"].tolist() == pytest.approx([300.0, 2000.0, 2000.0, 300.0])


def test_constant_temperature_ensembles_refuse_ramps(committee):
    with pytest.raises(ConfigError, match="ramp"):
        run_md(li16(), committee, TemperatureSchedule.ramp(300, 600, 20), MDSettings(ensemble="nvt_nose_hoover"))


@pytest.mark.parametrize("ensemble", ["npt_berendsen", "npt_nose_hoover", "nvt_nose_hoover"])
def test_other_ensembles_run(committee, ensemble):
    result, _ = run_md(li16(), committee, 300.0, MDSettings(ensemble=ensemble, n_steps=10, record_every=5), monitors=[])
    assert result.n_frames == 3 and result.stop_reason == "completed"


class _PerMemberCalc(Calculator):
    """Mimics MACECalculator(model_paths=[...]): per-member forces in ``forces_comm``, energies in ``energy_comm``."""

    implemented_properties = ("energy", "forces")

    def __init__(self, members):
        super().__init__()
        self.members = members

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        f, e = [], []
        for m in self.members:
            m.calculate(self.atoms.copy(), ["energy", "forces"], all_changes)
            f.append(m.results["forces"])
            e.append(m.results["energy"])
        self.results = {"energy": float(np.mean(e)), "forces": np.mean(f, axis=0), "forces_comm": np.array(f),
                        "energy_comm": np.array(e)}


def test_list_and_per_member_calculator_agree():
    atoms = li16()
    atoms.rattle(0.1, seed=3)
    members = [LennardJones(sigma=2.7, epsilon=0.05, rc=6.0), LennardJones(sigma=2.8, epsilon=0.05, rc=6.0)]
    a = committee_predict(atoms, members).uncertainty()
    b = committee_predict(atoms, _PerMemberCalc(members)).uncertainty()
    assert a.max_force_spread == pytest.approx(b.max_force_spread) and a.max_force_spread > 0
    assert a.energy_spread_per_atom == pytest.approx(b.energy_spread_per_atom)
    single = committee_predict(atoms, members[0]).uncertainty()
    assert single.max_force_spread == 0.0


# --- safety nets ----------------------------------------------------------------------------------------------


def test_nve_refuses_a_ramp(committee):
    with pytest.raises(ConfigError, match=r"'nve' cannot follow a temperature ramp \(asked 300 -> 2000 K\)"):
        run_md(li16(), committee, TemperatureSchedule.ramp(300, 2000, 20), MDSettings(ensemble="nve"))


@pytest.mark.parametrize("ensemble", ["npt_berendsen", "npt_berendsen_aniso", "npt_nose_hoover"])
def test_npt_is_refused_on_a_cell_with_vacuum(committee, ensemble):
    slab = li16()
    slab.center(vacuum=6.0, axis=2)
    with pytest.raises(ConfigError, match=r"vacuum along axis 2 \(1[0-9.]+ Å\)"):
        run_md(slab, committee, 300.0, MDSettings(ensemble=ensemble, n_steps=4, record_every=2), monitors=[])


def test_anisotropic_barostat_runs(committee):
    result, frames = run_md(li16(), committee, 300.0, MDSettings(ensemble="npt_berendsen_aniso", n_steps=10,
                                                                 record_every=5), monitors=[], keep_frames=True)
    assert result.stop_reason == "completed" and len(frames) == 3


def test_void_monitor_sees_a_cavity_in_a_slab():
    """A 22-atom cavity inside a Li2O slab; the vacuum above the slab is not taken for the void."""
    from mlipflow.sampling.monitors import vacuum_axes

    slab = bulk("Li2O", "fluorite", a=4.61, cubic=True).repeat((3, 3, 4))
    slab.center(vacuum=8.0, axis=2)
    holed = slab.copy()
    d = np.linalg.norm(holed.positions - holed.get_center_of_mass(), axis=1)
    del holed[list(np.argsort(d)[:22])]
    assert set(vacuum_axes(slab)) == {2}
    verdicts = {v.monitor: v for v in check_trajectory([slab, holed], [VoidMonitor()])}
    assert verdicts["void"].fired and verdicts["void"].frame == 1
    blind = {v.monitor: v for v in check_trajectory([slab, holed], [VoidMonitor(vacuum_gap=1e9)])}
    assert not blind["void"].fired  # what the monitor did before: the vacuum hid the cavity


def test_anion_pairs_have_a_physical_floor():
    monitor = MinDistanceMonitor()
    assert monitor.floor("O", "O") == pytest.approx(1.35)  # was 0.66 Å
    assert monitor.floor("Li", "O") == pytest.approx(0.5 * (1.28 + 0.66))
    assert MinDistanceMonitor(floors={"O-O": 2.0}).floor("O", "O") == 2.0


def test_broken_frames_are_not_labeled(stores):
    from pymatgen.core import Lattice, Structure

    from mlipflow.labeling.jobs import label_structures
    from mlipflow.labeling.surrogate import SurrogateLabeler

    ok = Structure(Lattice.cubic(4.61), ["O", "Li"], [[0, 0, 0], [0.25, 0.25, 0.25]])
    bad = Structure(Lattice.cubic(4.61), ["O", "O", "Li"], [[0, 0, 0], [0.2, 0, 0], [0.25, 0.25, 0.25]])
    summary = label_structures([ok, bad], SurrogateLabeler("toy-morse"), stores=stores)
    assert summary.counts["labeled"] == 1 and summary.counts["failed"] == 1
    doc = stores.frames.find_one({"_id": summary.frame_ids[1]})
    assert "0.922 Å apart, below the O-O floor of 1.35 Å: not labeled" in str(doc)
