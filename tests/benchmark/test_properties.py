"""EOS (CHGNet, the project's surrogate), elastic constants, phonons, energetics, stability and speed."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk, fcc111
from ase.calculators.emt import EMT
from ase.calculators.lj import LennardJones

from mlipflow.benchmark.energetics import (
    EV_PER_A2_TO_J_PER_M2,
    grain_boundary_energy,
    interface_area,
    reference_energy,
    surface_energy,
    work_of_adhesion,
)
from mlipflow.benchmark.mechanics import elastic_constants, equation_of_state, phonon_dos, relax
from mlipflow.benchmark.speed import md_speed, supercell_for
from mlipflow.benchmark.stability import run_stability
from mlipflow.errors import DataError

LJ = {"sigma": 2.7, "epsilon": 0.05, "rc": 6.0}


@pytest.fixture(scope="module")
def chgnet():
    pytest.importorskip("chgnet")
    import torch

    from mlipflow.benchmark.baselines import calculator_from_spec

    calc = calculator_from_spec("chgnet")
    torch.set_num_threads(1)
    return calc


def test_eos_of_surrogate_on_bcc_li_matches_its_relaxed_lattice(chgnet):
    relaxed = relax(bulk("Li", "bcc", a=3.44, cubic=True), chgnet, fmax=1e-3)
    a_relaxed = relaxed.cell.lengths()[0]
    eos = equation_of_state(relaxed, chgnet)
    assert eos.lattice_abc[0] == pytest.approx(a_relaxed, rel=0.01)
    assert 5 < eos.bulk_modulus_GPa < 30  # Li: ~13 GPa
    elastic = elastic_constants(relaxed, chgnet)
    c = np.asarray(elastic.C_GPa)
    assert c[0, 0] == pytest.approx(c[1, 1], rel=1e-3) and c[0, 1] == pytest.approx(c[0, 2], rel=1e-3)
    assert abs(c[0, 3]) < 0.5 and elastic.bulk_modulus_vrh_GPa == pytest.approx((c[0, 0] + 2 * c[0, 1]) / 3, rel=1e-3)


def test_eos_and_elastic_of_emt_copper_are_consistent():
    cu = relax(bulk("Cu", "fcc", a=3.6, cubic=True), EMT())
    eos = equation_of_state(cu, EMT())
    elastic = elastic_constants(cu, EMT())
    assert eos.bulk_modulus_GPa == pytest.approx(elastic.bulk_modulus_vrh_GPa, rel=0.05)


def test_phonon_dos_with_phonopy():
    pytest.importorskip("phonopy")
    res = phonon_dos(bulk("Cu", "fcc", a=3.59), EMT(), supercell=(3, 3, 3), mesh=(8, 8, 8))
    assert res.min_frequency_THz > -0.05 and 6 < max(np.asarray(res.frequency_THz)) < 12
    assert np.trapezoid(res.dos, res.frequency_THz) == pytest.approx(3, rel=0.05)  # 3 branches per atom


def test_surface_gb_and_adhesion_energies_follow_their_definitions():
    cu_bulk = bulk("Cu", "fcc", a=3.59, cubic=True)
    slab = fcc111("Cu", size=(2, 2, 4), a=3.59, vacuum=8.0, periodic=True)
    gamma = surface_energy(slab, bulk("Cu", "fcc", a=3.59), EMT())
    assert 0.3 < gamma.value_J_m2 < 2.5 and gamma.n_interfaces == 2
    e_bulk_atom = gamma.energies_eV["bulk"]
    assert gamma.value_J_m2 == pytest.approx(
        (gamma.energies_eV["slab"] - len(slab) * e_bulk_atom) / (2 * interface_area(slab)) * EV_PER_A2_TO_J_PER_M2
    )
    # a "bicrystal" identical to the bulk has zero boundary energy
    gb = grain_boundary_energy(cu_bulk.repeat((1, 1, 4)), cu_bulk, EMT())
    assert gb.value_J_m2 == pytest.approx(0.0, abs=1e-8)
    # adhesion: two halves of a periodic crystal separated by vacuum
    whole = cu_bulk.repeat((1, 1, 4))
    whole.center(vacuum=6.0, axis=2)
    z = whole.positions[:, 2]
    lower, upper = whole[z < np.median(z)], whole[z >= np.median(z)]
    w = work_of_adhesion(whole, lower, upper, EMT())
    assert w.value_J_m2 > 0
    with pytest.raises(DataError, match="off-stoichiometric"):
        reference_energy({"Li": 3, "O": 1}, bulk=[({"Li": 2, "O": 1}, -10.0)])
    assert reference_energy({"Li": 4, "O": 2}, bulk=[({"Li": 2, "O": 1}, -10.0)]) == pytest.approx(-20.0)


def test_stability_verdicts():
    atoms = bulk("Li", "bcc", a=3.44, cubic=True).repeat(2)
    ok = run_stability(atoms, LennardJones(**LJ), temperature_K=300, n_steps=40, check_every=10, seed=0)
    assert ok.stable and ok.time_to_failure_ps is None and ok.steps_run == 40
    assert {v["monitor"] for v in ok.verdicts} >= {"min_distance", "temperature"}
    squeezed = atoms.copy()
    squeezed.positions[1] = squeezed.positions[0] + [0.3, 0.0, 0.0]  # two atoms 0.3 Å apart
    bad = run_stability(squeezed, LennardJones(**LJ), temperature_K=300, n_steps=40, check_every=10, seed=0)
    assert not bad.stable and bad.time_to_failure_ps is not None and bad.steps_run < 40
    assert bad.first_failure


def test_md_speed_at_several_sizes():
    li = bulk("Li", "bcc", a=3.44, cubic=True)
    assert len(supercell_for(li, 50)) >= 50
    points = md_speed(li, LennardJones(**LJ), sizes=(16, 54), n_steps=3, warmup=1)
    assert [p.n_atoms for p in points] == [16, 54]
    for p in points:
        assert p.steps_per_s > 0 and p.ns_per_day == pytest.approx(p.steps_per_s * 86400 * 1e-6)
