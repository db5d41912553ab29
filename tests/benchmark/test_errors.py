"""Error tables, and the trajectory test set built from a model's MD and labeled by a reference."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.lj import LennardJones
from ase.calculators.morse import MorsePotential

from mlipflow.benchmark.errors import (
    build_trajectory_test_set,
    compute_errors,
    error_stats,
    evaluate_frames,
    plot_error_distribution,
    plot_parity,
    trajectory_errors,
)
from mlipflow.benchmark.plotting import figure_to_base64
from mlipflow.data import LabeledFrame, LabelerInfo, Provenance
from mlipflow.labeling.surrogate import SurrogateLabeler

LJ = {"sigma": 2.7, "epsilon": 0.05, "rc": 6.0}


def _frames(images, family="bulk"):
    info = LabelerInfo(name="lj", kind="surrogate", version="test", settings=LJ)
    return [
        LabeledFrame.from_atoms(
            a, info, energy=a.info["REF_energy"], forces=a.arrays["REF_forces"], stress=a.info["REF_stress"],
            provenance=Provenance(family=family, config_type=a.info["config_type"]),
        )
        for a in images
    ]


def test_error_stats_rmse_mae_tails_and_offset():
    ref = np.linspace(0, 1, 101)
    stats = error_stats(ref + 0.1, ref)
    assert stats.rmse == pytest.approx(0.1) and stats.mae == pytest.approx(0.1) and stats.mean == pytest.approx(0.1)
    assert stats.rmse_offset_corrected == pytest.approx(0.0, abs=1e-12)  # a constant shift is only an offset
    assert stats.slope == pytest.approx(1.0)
    spike = ref.copy()
    spike[3] += 5.0
    tails = error_stats(spike, ref)
    assert tails.max == pytest.approx(5.0) and tails.p95 < 1e-12 < tails.rmse


def test_errors_of_a_model_against_reference_frames(lj_li_images):
    frames = _frames(lj_li_images(4, seed=0, config_type="rattled")) + _frames(
        lj_li_images(2, seed=1, config_type="strained"), family="strained")
    same, _ = evaluate_frames(frames, LennardJones(**LJ), model="lj-itself")
    assert same.overall["force_component"].rmse < 1e-9 and same.overall["stress"].rmse < 1e-9
    report, samples = evaluate_frames(frames, MorsePotential(epsilon=0.1, r0=3.0, rho0=4.0), model="morse")
    assert report.reference == "lj test (surrogate)"
    assert report.n_frames == 6 and report.n_atoms == 6 * 16
    assert set(report.by_config_type) == {"rattled", "strained"} and set(report.by_family) == {"bulk", "strained"}
    assert set(report.by_element) == {"Li"}
    assert set(report.overall) == {"energy_per_atom", "force_component", "force_vector", "force_magnitude", "stress"}
    o = report.overall["force_component"]
    assert o.rmse > 0 and o.p95 <= o.p99 <= o.max
    assert report.worst_frames and len(report.worst_frames) == 5
    again = compute_errors(samples.subset(np.arange(4)), model="morse", reference=report.reference)
    assert again.by_config_type.keys() == {"rattled"}
    for fig in (plot_parity(samples), plot_error_distribution(samples)):
        assert len(figure_to_base64(fig)) > 1000


def test_trajectory_test_set_is_from_model_md_labeled_by_reference():
    atoms = bulk("Li", "bcc", a=3.44, cubic=True).repeat(2)
    model = LennardJones(**LJ)
    reference = SurrogateLabeler(calculator="morse", calculator_kwargs={"epsilon": 0.1, "r0": 3.0, "rho0": 4.0})
    frames = build_trajectory_test_set(atoms, model, reference, temperature_K=300, n_steps=40, sample_every=10,
                                       seed=3)
    assert len(frames) == 4
    assert all(f.labeler == reference.info for f in frames)
    assert [f.provenance.md_step for f in frames] == [10, 20, 30, 40]
    assert all(f.provenance.origin == "benchmark-mlmd" and f.provenance.temperature == 300 for f in frames)
    # the frames are the model's MD: atoms moved, and the labels are the reference's, not the model's
    assert not np.allclose(frames[-1].structure.cart_coords, atoms.positions)
    probe = frames[0].to_atoms()
    probe.calc = MorsePotential(epsilon=0.1, r0=3.0, rho0=4.0)
    assert probe.get_potential_energy() == pytest.approx(frames[0].energy)
    again = build_trajectory_test_set(atoms, model, reference, temperature_K=300, n_steps=40, sample_every=10,
                                      seed=3)
    assert np.allclose(again[-1].structure.cart_coords, frames[-1].structure.cart_coords)  # seeded
    report, _, _ = trajectory_errors(atoms, model, reference, model="lj", temperature_K=300, n_steps=20,
                                     sample_every=10, seed=3)
    assert report.reference == reference.info.describe() and "(surrogate)" in report.reference
    assert report.overall["energy_per_atom"].rmse > 0 and "300 K" in report.test_set
