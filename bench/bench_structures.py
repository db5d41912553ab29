"""Time to enumerate and build grain-boundary and interface candidates for the flagship systems, and the cost and
result of the grain-boundary translation search (point-charge ranking, and CHGNet ranking on cells <= 130 atoms).

Run from the repository root: ``python bench/bench_structures.py [--no-chgnet]``; writes
``bench/results/structures.json``.
Timings are wall-clock seconds on this machine (see ``load_average`` in the output: other work running at the
same time inflates them).
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from mlipflow.errors import StructureError
from mlipflow.structures import (
    build_gb_candidates,
    build_interfaces,
    interface_candidates,
    list_gb_candidates,
    load_prototype,
)
from mlipflow.structures.bonds import closest_violation, pair_floors, shortest_pair_distances
from mlipflow.structures.grain_boundaries import TranslationSearch, grain_boundary_translations

OUT = Path(__file__).resolve().parent / "results" / "structures.json"

GB_CASES = [
    # name, prototype, rotation axis, max Σ, build?
    ("Li2O [100] tilt", "Li2O", (1, 0, 0), 13, True),
    ("Li2O [110] tilt", "Li2O", (1, 1, 0), 11, True),
    ("Li2S [100] tilt", "Li2S", (1, 0, 0), 13, True),
    ("Li bcc [110] tilt", "Li", (1, 1, 0), 11, True),
    ("LLZO-cubic [100] tilt", "LLZO-cubic", (1, 0, 0), 5, True),
]

INTERFACE_CASES = [
    # name, film, substrate, film hkl, substrate hkl, max area (Å^2), max strain
    ("LiCoO2(001) | Li2O(111)", "LiCoO2", "Li2O", (0, 0, 1), (1, 1, 1), 120, 0.03),
    ("LiCoO2(001) | LLZO(111)", "LiCoO2", "LLZO-cubic", (0, 0, 1), (1, 1, 1), 300, 0.02),
    ("LiCoO2(104) | Li2O(100)", "LiCoO2", "Li2O", (1, 0, 4), (1, 0, 0), 400, 0.05),
    ("Li(110) | Li3PS4(001)", "Li", "Li3PS4", (1, 1, 0), (0, 0, 1), 200, 0.04),
    ("Li(100) | Li6PS5Cl(100)", "Li", "Li6PS5Cl", (1, 0, 0), (1, 0, 0), 200, 0.04),
]

MAX_ATOMS = 800

SEARCH_CASES = [
    # name, prototype, axis, Σ, plane (None: default tilt/twist), gb_type, min grain thickness Å, min in-plane Å
    ("Li2O Σ5(210)[100] tilt", "Li2O", (1, 0, 0), 5, (0, -2, 1), "tilt", 5.0, None),
    ("Li2O Σ5(310)[100] tilt", "Li2O", (1, 0, 0), 5, (0, -1, 3), "tilt", 5.0, None),
    ("Li2O Σ3(112)[110] tilt", "Li2O", (1, 1, 0), 3, (1, -1, 2), "tilt", 5.0, None),
    ("Li2O Σ3(111)[111] twist", "Li2O", (1, 1, 1), 3, None, "twist", 5.0, None),
    ("LiCoO2 Σ7(001)[001] twist", "LiCoO2", (0, 0, 1), 7, None, "twist", 8.0, None),
    ("LiCoO2 Σ3(001)[001] twist", "LiCoO2", (0, 0, 1), 3, None, "twist", 8.0, 5.0),
    ("LLZO Σ3(112)[110] tilt", "LLZO-cubic", (1, 1, 0), 3, None, "tilt", 5.0, None),
    ("LLZO Σ5(310)[100] tilt", "LLZO-cubic", (1, 0, 0), 5, (0, -1, 3), "tilt", 4.0, None),
]
CHGNET_MAX_ATOMS = 130  # memory: CHGNet peaks at ~16 GB on 512 atoms


def bench_translation_search(use_chgnet: bool) -> list[dict]:
    calc = None
    if use_chgnet:
        from mlipflow.labeling.surrogate import SurrogateLabeler

        calc = SurrogateLabeler("chgnet").ase_calculator()
    rows = []
    for name, proto, axis, sigma, plane, gb_type, thickness, in_plane in SEARCH_CASES:
        bulk = load_prototype(proto)
        floors = pair_floors(shortest_pair_distances(bulk, 8.0), {e.symbol for e in bulk.composition}, 1.0)
        row: dict = {"case": name}
        for rank in ("coulomb", "chgnet"):
            search = TranslationSearch(rank_by=rank if rank == "coulomb" else calc, n_keep=1, max_evaluations=12)
            if rank == "chgnet" and (calc is None or row.get("atoms", 0) > CHGNET_MAX_ATOMS):
                row[rank] = {"skipped": f"{row.get('atoms')} atoms > {CHGNET_MAX_ATOMS} (CHGNet memory)"
                             if calc is not None else "--no-chgnet"}
                continue
            t0 = time.perf_counter()
            try:
                cell = grain_boundary_translations(bulk, axis, sigma=sigma, plane=plane, gb_type=gb_type,
                                                   min_grain_thickness=thickness, min_in_plane=in_plane,
                                                   search=search, entry=name)[0]
            except StructureError as exc:
                row[rank] = {"error": str(exc)}
                continue
            dt = time.perf_counter() - t0
            p = cell.properties["provenance"]
            ratio = closest_violation(cell, floors)[0]  # smallest distance / bulk distance over all pairs
            row["atoms"] = len(cell)
            row[rank] = {
                "seconds": round(dt, 2), "formula": cell.composition.formula, "net_charge": p["net_charge"],
                "stoichiometric": p["stoichiometric"], "removed_formula_units": p["removed_formula_units"],
                "min_distance_over_bulk": round(ratio, 3), "translation": p["translation"],
                "search_counts": p["search_counts"], "gb_energy_J_m2": p.get("gb_energy_J_m2"),
            }
            if rank == "coulomb" and calc is not None and len(cell) <= CHGNET_MAX_ATOMS:
                from mlipflow.structures.grain_boundaries import EV_PER_A2_TO_J_PER_M2, _energy

                m = cell.lattice.matrix
                area = float(np.linalg.norm(np.cross(m[0], m[1])))
                e_bulk = _energy(bulk, calc) / len(bulk)
                row[rank]["gb_energy_J_m2 (chgnet single point)"] = round(
                    (_energy(cell, calc) - len(cell) * e_bulk) / (2 * area) * EV_PER_A2_TO_J_PER_M2, 4)
        rows.append(row)
        print(f"GB search {name:28s} {row.get('atoms', '?'):>5} atoms  {row['coulomb']}  {row['chgnet']}", flush=True)
    return rows


def bench_gb() -> list[dict]:
    rows = []
    for name, proto, axis, max_sigma, build in GB_CASES:
        s = load_prototype(proto)
        t0 = time.perf_counter()
        cands = list_gb_candidates(s, axis, max_sigma=max_sigma)
        t_enum = time.perf_counter() - t0
        row = {
            "case": name,
            "n_candidates": len(cands),
            "candidates": [c.as_dict() for c in cands],
            "enumerate_s": round(t_enum, 3),
        }
        if build:
            small = [c for c in cands if c.n_atoms_estimate <= MAX_ATOMS]
            t0 = time.perf_counter()
            built, refused = [], []
            for c in small:
                try:
                    built += build_gb_candidates(s, [c], min_grain_thickness=8.0, max_atoms=MAX_ATOMS,
                                                 search=TranslationSearch(expansions=(0.0, 0.5)))
                except StructureError as exc:
                    refused.append(str(exc))
            row.update(
                build_s=round(time.perf_counter() - t0, 3),
                n_built=len(built),
                n_skipped_estimate_over_max_atoms=len(cands) - len(small),
                n_refused_over_max_atoms=len(refused),
                atoms=[len(b) for b in built],
                stoichiometric=[b.properties["provenance"]["stoichiometric"] for b in built],
            )
        rows.append(row)
        print(f"GB  {name:28s} {len(cands):3d} candidates  enum {t_enum:6.2f} s  build {row.get('build_s', 0):6.2f} s")
    return rows


def bench_interfaces() -> list[dict]:
    rows = []
    for name, film, sub, fm, sm, area, strain in INTERFACE_CASES:
        t0 = time.perf_counter()
        try:
            cells = build_interfaces(
                load_prototype(film),
                load_prototype(sub),
                fm,
                sm,
                max_area=area,
                max_strain=strain,
                film_thickness=6,
                substrate_thickness=6,
                max_candidates=1,
                max_atoms=MAX_ATOMS,
            )
            table = [r.as_dict() for r in interface_candidates(cells)]
            error = None
        except StructureError as exc:
            table, error = [], str(exc)
        dt = time.perf_counter() - t0
        rows.append(
            {
                "case": name,
                "max_area": area,
                "max_strain": strain,
                "seconds": round(dt, 3),
                "n_built": len(table),
                "atoms": [r["n_atoms"] for r in table],
                "table": table,
                "error": error,
            }
        )
        print(f"IF  {name:28s} {len(table):3d} cells  {dt:6.2f} s  {error or ''}")
    return rows


def bench_melt_quench(use_chgnet: bool) -> list[dict]:
    """Amorphous Li3PS4 (32 atoms) with CHGNet: random packing vs melt-quench from a random packing and from the
    crystal (2000 K, 25 + 100 + 100 + 25 steps of 1 fs, 30 FIRE steps)."""
    if not use_chgnet:
        return []
    from pymatgen.io.ase import AseAtomsAdaptor

    from mlipflow.labeling.surrogate import SurrogateLabeler
    from mlipflow.structures.amorphous import amorphous_from_crystal, crystal_start, melt_quench
    from mlipflow.structures.bonds import molecular_bonds, molecular_units, unit_formulas

    calc = SurrogateLabeler("chgnet").ase_calculator()
    lps = load_prototype("Li3PS4")

    def energy_force(s):
        atoms = AseAtomsAdaptor.get_atoms(s)
        atoms.calc = calc
        return float(atoms.get_potential_energy()) / len(atoms), float(np.abs(atoms.get_forces()).max())

    e_crystal, _ = energy_force(lps)
    bonds = molecular_bonds(lps)
    rows = []
    for label, start in (("random packing", amorphous_from_crystal(lps, n_atoms=32, seed=0)),
                         ("crystal start", crystal_start(lps, 32))):
        e0, f0 = energy_force(start)
        t0 = time.perf_counter()
        s = melt_quench(start, calc, 2000, 300, 25, 100, 100, 25, relax_steps=30)
        mq = s.properties["provenance"]["melt_quench"]
        rows.append({"start": label, "atoms": len(s), "start_dE_eV_atom": round(e0 - e_crystal, 4),
                     "start_max_force": round(f0, 3), "seconds": round(time.perf_counter() - t0, 1),
                     "dE_vs_crystal_eV_atom": round(mq["energy_per_atom_eV"] - e_crystal, 4),
                     "max_force_eV_A": round(mq["max_force_eV_A"], 3),
                     "units": dict(unit_formulas(s, molecular_units(s, bonds)))})
        print(f"melt-quench Li3PS4 from {label}: {rows[-1]}", flush=True)
    return rows


def main() -> None:
    warnings.simplefilter("ignore")
    t0 = time.perf_counter()
    result = {
        "benchmark": "structures",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "load_average_start": os.getloadavg()},
        "max_atoms": MAX_ATOMS,
        "grain_boundaries": bench_gb(),
        "interfaces": bench_interfaces(),
        "gb_translation_search": bench_translation_search("--no-chgnet" not in sys.argv),
        "melt_quench": bench_melt_quench("--no-chgnet" not in sys.argv),
    }
    result["machine"]["load_average_end"] = os.getloadavg()
    result["total_s"] = round(time.perf_counter() - t0, 3)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=1, default=str))
    print(f"total {result['total_s']:.1f} s -> {OUT}")


if __name__ == "__main__":
    main()
