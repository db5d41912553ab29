"""Amorphous cells and two-phase mixtures by random packing at a target density.

Random sequential insertion in a cubic cell: atoms are placed one by one at uniformly random positions and a
trial is accepted only if it keeps every pair at least the guard apart.  The pair guard is
``guard_scale * (r_cov(A) + r_cov(B))`` with pymatgen's covalent radii (default ``guard_scale = 0.7``, e.g.
Li-S 1.63 Å, P-S 1.48 Å, Li-Li 1.79 Å), or one fixed ``min_distance`` (Å) for all pairs.  The structures are
starting points of :func:`melt_quench`, which melts and quenches them with a surrogate or the current MLIP.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from pymatgen.analysis.molecule_structure_comparator import CovalentRadius
from pymatgen.core import Composition, Lattice, Structure

from mlipflow.errors import StructureError
from mlipflow.structures.provenance import check_composition, tag

_MOD = "mlipflow.structures.amorphous"
_AVOGADRO = 6.02214076e23


def pair_guards(elements: Sequence[str], guard_scale: float = 0.7, min_distance: float | None = None) -> dict:
    """Minimum allowed distance (Å) for every element pair (see the module docstring); two anions (O, S, F, ...)
    at least :data:`~mlipflow.structures.bonds.ANION_FLOOR` apart, the floor of the MD monitor and the labeling
    filter."""
    from mlipflow.structures.bonds import ANION_FLOOR, ANIONS

    out = {}
    for a in elements:
        for b in elements:
            if min_distance is not None:
                out[(a, b)] = float(min_distance)
                continue
            guard = guard_scale * (_covalent(a) + _covalent(b))
            out[(a, b)] = max(guard, ANION_FLOOR) if a in ANIONS and b in ANIONS else guard
    return out


def _covalent(symbol: str) -> float:
    """Covalent radius (Å) from pymatgen's table (Cordero et al. 2008); 1.5 Å if missing."""
    return float(CovalentRadius.radius.get(symbol, 1.5))


def _push_apart(frac: np.ndarray, length: float, gmat: np.ndarray, sweeps: int = 500) -> np.ndarray:
    """Move overlapping pairs apart (each by half the overlap, minimum image) until every guard holds."""
    x = frac * length
    for _ in range(sweeps):
        d = x[:, None, :] - x[None, :, :]
        d -= np.round(d / length) * length
        r = np.linalg.norm(d, axis=2) + np.eye(len(x)) * 1e9
        over = np.clip(gmat * 1.0001 - r, 0.0, None)
        if not over.any():
            break
        step = (d / r[:, :, None]) * (0.5 * over)[:, :, None]
        x = (x + step.sum(axis=1)) % length
    return x / length


def cell_length_for_density(composition: Composition, density: float) -> float:
    """Edge (Å) of the cubic cell holding ``composition`` at ``density`` (g/cm^3)."""
    mass = composition.weight  # g/mol for the given atom counts
    volume_cm3 = float(mass) / _AVOGADRO / density
    return (volume_cm3 * 1e24) ** (1.0 / 3.0)


def random_packing(
    composition: Composition | str | dict,
    density: float,
    n_atoms: int | None = None,
    guard_scale: float = 0.7,
    min_distance: float | None = None,
    seed: int = 0,
    max_trials: int = 5000,
    family: str = "amorphous",
    parent: str | None = None,
    entry: str = "",
) -> Structure:
    """Random cell of ``composition`` at ``density`` with a minimum-distance guard.

    Parameters
    ----------
    composition
        Atom counts of the cell (e.g. ``"Li24P8S32"``) or, with ``n_atoms``, a formula scaled to about
        ``n_atoms`` atoms (whole formula units).
    density
        Mass density (g/cm^3).
    n_atoms
        Approximate number of atoms (rounded to whole formula units of the reduced formula).
    guard_scale
        Pair guard as a fraction of the sum of covalent radii (see module docstring).
    min_distance
        One guard (Å) for every pair instead of ``guard_scale``.
    seed
        Seed of ``numpy.random.default_rng``.
    max_trials
        Random trials per atom; if none keeps the guard, the best trial is kept and all overlaps are removed at
        the end by pushing pairs apart (a ``StructureError`` if that fails).
    family
        Provenance family (``amorphous`` or ``mixture``).
    parent
        Parent label for the provenance.
    entry
        Name used in error messages.
    """
    comp = (
        composition
        if isinstance(composition, Composition)
        else check_composition(composition, entry)
        if isinstance(composition, str)
        else Composition(composition)
    )
    if n_atoms is not None:
        red, _ = comp.get_reduced_composition_and_factor()
        n_fu = max(1, round(n_atoms / red.num_atoms))
        comp = red * n_fu
    if density <= 0:
        raise StructureError(f"{entry}: density must be positive (g/cm^3), got {density}")
    symbols: list[str] = []
    for el, amt in comp.items():
        if abs(amt - round(amt)) > 1e-6:
            raise StructureError(f"{entry}: composition {comp.formula} has non-integer atom counts; give n_atoms")
        symbols += [str(el)] * round(amt)
    length = cell_length_for_density(comp, density)
    lattice = Lattice.cubic(length)
    guards = pair_guards(sorted(set(symbols)), guard_scale, min_distance)
    rng = np.random.default_rng(seed)
    # largest atoms first; ties in random (seeded) order
    order = sorted(rng.permutation(len(symbols)), key=lambda k: -_covalent(symbols[k]))
    placed: list[np.ndarray] = []
    placed_sym: list[str] = []
    crowded = 0
    for k in order:
        sym = symbols[k]
        g = np.array([guards[(sym, s)] for s in placed_sym]) if placed_sym else np.zeros(0)
        best, best_score = rng.random(3), -np.inf
        for _ in range(max_trials if placed else 1):
            trial = rng.random(3)
            d = np.asarray(placed) - trial if placed else np.zeros((0, 3))
            d -= np.round(d)
            score = float(np.min(np.linalg.norm(d * length, axis=1) / g)) if placed else np.inf
            if score > best_score:
                best, best_score = trial, score
            if score >= 1.0:
                break
        crowded += best_score < 1.0
        placed.append(best)
        placed_sym.append(sym)
    frac = np.asarray(placed)
    gmat = np.array([[guards[(a, b)] for b in placed_sym] for a in placed_sym])
    if crowded:
        frac = _push_apart(frac, length, gmat)
    d = frac[:, None, :] - frac[None, :, :]
    d -= np.round(d)
    r = np.linalg.norm(d * length, axis=2) + np.eye(len(frac)) * 1e9
    if np.any(r < gmat - 1e-6):
        raise StructureError(
            f"{entry}: cannot pack {comp.formula} at {density:.3f} g/cm^3 with the guard (guard_scale "
            f"{guard_scale}); lower the density or guard_scale"
        )
    placed = list(frac)
    s = Structure(lattice, placed_sym, np.array(placed))
    s = s.get_sorted_structure()
    return tag(
        s,
        family,
        f"{_MOD}.random_packing",
        {
            "composition": comp.formula,
            "density": density,
            "guard_scale": guard_scale,
            "min_distance": min_distance,
            "seed": seed,
        },
        parent or comp.reduced_formula,
        density=float(s.density),
        guards={f"{a}-{b}": round(v, 4) for (a, b), v in guards.items() if a <= b},
    )


def amorphous_from_crystal(
    crystal: Structure,
    n_atoms: int | None = None,
    density: float | None = None,
    density_scale: float = 1.0,
    guard_scale: float = 0.7,
    seed: int = 0,
    entry: str = "",
) -> Structure:
    """Random cell with the crystal's composition at ``density_scale`` x its density (or at ``density``).

    Parameters
    ----------
    crystal
        The crystal whose composition and density are used.
    n_atoms
        Approximate number of atoms (default: as many as the crystal cell).
    density
        Target density (g/cm^3), overriding ``density_scale``.
    density_scale
        Fraction of the crystal density (e.g. 0.9 for an expanded melt).
    guard_scale, seed, entry
        See :func:`random_packing`.
    """
    target = density if density is not None else crystal.density * density_scale
    return random_packing(
        crystal.composition.reduced_composition,
        target,
        n_atoms=n_atoms or len(crystal),
        guard_scale=guard_scale,
        seed=seed,
        parent=crystal,
        entry=entry,
    )


def amorphous_mixture(
    phase_a: Structure,
    phase_b: Structure,
    fractions: Sequence[float] = (0.25, 0.5, 0.75),
    n_atoms: int = 100,
    guard_scale: float = 0.7,
    seed: int = 0,
    entry: str = "",
) -> list[Structure]:
    """Amorphous two-phase mixtures (interface proxies) at several stoichiometries.

    For each ``x`` in ``fractions`` (atom fraction of phase A) the cell holds ``n_A`` formula units of A and
    ``n_B`` of B with ``n_A * atoms_A ≈ x * n_atoms``; the density follows ideal volume mixing of the two
    crystals (per-formula-unit volumes add).

    Parameters
    ----------
    phase_a, phase_b
        The two crystals.
    fractions
        Atom fractions of phase A, each in (0, 1).
    n_atoms
        Approximate atoms per cell.
    guard_scale, seed, entry
        See :func:`random_packing`; cell ``k`` uses ``seed + k``.
    """
    ra, fa = phase_a.composition.get_reduced_composition_and_factor()
    rb, fb = phase_b.composition.get_reduced_composition_and_factor()
    va, vb = phase_a.volume / fa, phase_b.volume / fb  # Å^3 per formula unit
    out = []
    for k, x in enumerate(fractions):
        if not 0.0 < x < 1.0:
            raise StructureError(f"{entry}: mixture fraction {x} must be strictly between 0 and 1")
        na = max(1, round(x * n_atoms / ra.num_atoms))
        nb = max(1, round((1 - x) * n_atoms / rb.num_atoms))
        comp = ra * na + rb * nb
        density = float(comp.weight) / _AVOGADRO / ((na * va + nb * vb) * 1e-24)
        s = random_packing(
            comp,
            density,
            guard_scale=guard_scale,
            seed=seed + k,
            family="mixture",
            parent=f"{ra.reduced_formula} + {rb.reduced_formula}",
            entry=entry,
        )
        prov = s.properties["provenance"]
        prov["parameters"].update({"fraction_a": x, "formula_units": [na, nb]})
        prov["phases"] = [ra.reduced_formula, rb.reduced_formula]
        out.append(s)
    return out


def _calculator(spec: Any) -> Any:
    """An ASE calculator from a name (``chgnet``, ``sevennet``, ``model:<id>``, ``mace:<path>``, a surrogate name
    such as ``toy-morse``) or the calculator itself."""
    if not isinstance(spec, str):
        return spec
    from mlipflow.labeling.surrogate import KNOWN_CALCULATORS, SurrogateLabeler

    if spec in KNOWN_CALCULATORS:
        return SurrogateLabeler(calculator=spec).ase_calculator()
    from mlipflow.benchmark.baselines import calculator_from_spec

    return calculator_from_spec(spec)


def melt_quench(
    start: Structure,
    calculator: Any = "chgnet",
    melt_temperature: float = 2000.0,
    final_temperature: float = 300.0,
    heat_steps: int = 100,
    hold_steps: int = 400,
    quench_steps: int = 400,
    anneal_steps: int = 100,
    timestep: float = 1.0,
    friction: float = 0.02,
    relax_steps: int = 50,
    fmax: float = 0.1,
    seed: int = 0,
    entry: str = "",
) -> Structure:
    """Melt a starting cell, quench it and relax it: an amorphous cell (the seed papers melt at 2000-4000 K).

    Langevin NVT (:func:`mlipflow.sampling.md.run_md`, one walker) along
    :meth:`~mlipflow.sampling.md.TemperatureSchedule.melt_quench`: heat from ``final_temperature`` to
    ``melt_temperature``, hold, quench linearly, anneal; then at most ``relax_steps`` FIRE steps of the positions.
    Random packings (:func:`random_packing`) are only the start of the melt.

    Parameters
    ----------
    start
        The starting cell (a random packing at the target density, or a crystal supercell).
    calculator
        The potential: a surrogate name (``chgnet``, ``toy-morse``, ...), ``model:<id>`` (the campaign's current
        MLIP from the registry), ``mace:<path>``, or an ASE calculator.
    melt_temperature, final_temperature
        Temperatures of the melt and of the end of the quench (K).
    heat_steps, hold_steps, quench_steps, anneal_steps
        Lengths of the four stages (MD steps).
    timestep
        MD time step (fs).
    friction
        Langevin friction (1/fs).
    relax_steps
        FIRE steps (positions only) after the quench; 0: none.
    fmax
        Force convergence of that relaxation (eV/Å).
    seed
        Seed of the velocities and the Langevin noise.
    entry
        Name used in error messages.

    Returns
    -------
    Structure
        Family of ``start`` (``amorphous`` or ``mixture``); provenance adds ``melt_quench`` (schedule, calculator,
        energy per atom in eV, largest force in eV/Å, stop reason).
    """
    from ase.optimize import FIRE
    from pymatgen.io.ase import AseAtomsAdaptor

    from mlipflow.sampling.md import MDSettings, TemperatureSchedule, run_md
    from mlipflow.sampling.monitors import MinDistanceMonitor

    calc = _calculator(calculator)
    schedule = TemperatureSchedule.melt_quench(melt_temperature, final_temperature, start=final_temperature,
                                               heat_steps=heat_steps, hold_steps=hold_steps,
                                               quench_steps=quench_steps, anneal_steps=anneal_steps)
    n_steps = schedule.n_steps
    settings = MDSettings(ensemble="nvt_langevin", timestep=timestep, n_steps=n_steps,
                          record_every=max(1, n_steps // 10), friction=friction, seed=seed, store_forces=False)
    # a guard against a blown-up potential only: a melt may form real short bonds (O2 at 1.21 Å), so no anion floor
    elements = sorted({el.symbol for el in start.composition.elements})
    guard = {f"{a}-{b}": 0.4 * (_covalent(a) + _covalent(b)) for i, a in enumerate(elements) for b in elements[i:]}
    result, frames = run_md(start, calc, schedule, settings, monitors=[MinDistanceMonitor(floors=guard)],
                            keep_frames=True)
    if result.stop_reason != "completed" or not frames:
        raise StructureError(f"{entry}: the melt-quench stopped at step {result.stop_step} ({result.stop_reason}); "
                             "lower melt_temperature or the time step, or start from a lower density")
    atoms = frames[-1].copy()
    atoms.calc = calc
    if relax_steps > 0:
        FIRE(atoms, logfile=None).run(fmax=fmax, steps=relax_steps)
    energy = float(atoms.get_potential_energy()) / len(atoms)
    force = float(np.abs(atoms.get_forces()).max())
    s = AseAtomsAdaptor.get_structure(atoms)
    s = Structure(s.lattice, s.species, s.frac_coords)
    prov = dict(start.properties.get("provenance") or {})
    name = calculator if isinstance(calculator, str) else type(calculator).__name__
    info = {"calculator": name, "melt_temperature": melt_temperature, "final_temperature": final_temperature,
            "steps": [heat_steps, hold_steps, quench_steps, anneal_steps], "timestep_fs": timestep,
            "relax_steps": relax_steps, "seed": seed, "energy_per_atom_eV": energy, "max_force_eV_A": force,
            "mean_temperature_K": result.mean_temperature}
    return tag(s, prov.get("family", "amorphous"), f"{_MOD}.melt_quench", {**prov.get("parameters", {}), **info},
               prov.get("parent") or start.composition.reduced_formula,
               **{k: v for k, v in prov.items() if k not in ("family", "generator", "parameters", "parent")},
               melt_quench=info)


def crystal_start(crystal: Structure, n_atoms: int, density_scale: float = 1.0, entry: str = "") -> Structure:
    """A supercell of the crystal with about ``n_atoms`` atoms, scaled to ``density_scale`` x its density: the start
    of a melt that keeps molecular anions (PS4, CO3) whole, which a random packing of single atoms does not form
    again within picoseconds of melt."""
    from mlipflow.structures.provenance import clean_copy, perpendicular_widths

    base = clean_copy(crystal)
    widths = perpendicular_widths(base)
    scale = [1, 1, 1]
    while len(base) * int(np.prod(scale)) < 0.75 * n_atoms:  # repeat along the thinnest direction first
        k = int(np.argmin([w * n for w, n in zip(widths, scale, strict=True)]))
        scale[k] += 1
    s = base.make_supercell(scale, in_place=False)
    if density_scale != 1.0:
        s.scale_lattice(s.volume / density_scale)
    return tag(s, "amorphous", f"{_MOD}.crystal_start",
               {"n_atoms": n_atoms, "density_scale": density_scale, "scaling": scale}, crystal,
               density=float(s.density))
