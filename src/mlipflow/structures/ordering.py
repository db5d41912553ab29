"""Ordered cells from structures with partial occupancies, ranked by their point-charge (Ewald) energy.

The rule, stated once:

1. Sites with the same occupancy (the same species and fractions, i.e. one Wyckoff orbit of the average
   structure) form a group.  A group of ``n`` sites receives ``round(n * occupancy)`` atoms of each species;
   the rest stay empty.  A rounding larger than ``occupancy_tolerance`` atoms is refused (use a supercell).
2. The arrangement inside every group minimises the electrostatic energy of formal point charges (oxidation
   states guessed by pymatgen, or given): pymatgen's ``EwaldSummation`` gives the pair matrix once for all
   candidate sites, and a seeded simulated annealing of swaps inside the groups (``n_restarts`` runs) keeps the
   lowest energy found.  pymatgen's ``OrderDisorderedStructureTransformation`` ranks by the same energy but
   enumerates exactly, which does not finish for 24 Li on 48 sites.
3. The result records the rule, the seed, the Ewald energy (eV) and the counts per group in its provenance.

Face-sharing or split sites (e.g. Li 24d/96h in garnets, the 48h pairs of argyrodites) need no extra rule: two
charges 0.7-1.8 Å apart cost several eV and are never both kept.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import numpy as np
from pymatgen.analysis.ewald import EwaldSummation
from pymatgen.core import Composition, Lattice, Species, Structure

from mlipflow.errors import StructureError
from mlipflow.structures.provenance import tag

logger = logging.getLogger(__name__)

_MOD = "mlipflow.structures.ordering"


def _occupancy_key(site) -> tuple:
    return tuple(sorted((sp.symbol if hasattr(sp, "symbol") else str(sp), round(float(x), 4))
                        for sp, x in site.species.items()))


def _oxidation_states(comp: Composition, given: Mapping[str, float] | None, entry: str) -> dict[str, float]:
    if given:
        return {str(k): float(v) for k, v in given.items()}
    try:
        guesses = comp.oxi_state_guesses(max_sites=-50)
    except ValueError:
        guesses = []
    if not guesses:
        raise StructureError(f"{entry}: cannot guess oxidation states of {comp.reduced_formula} to rank orderings; "
                             "give oxidation_states, e.g. {Li: 1, La: 3, Zr: 4, O: -2}")
    return {str(k): float(v) for k, v in guesses[0].items()}


def order_by_ewald(
    structure: Structure,
    seed: int = 0,
    supercell: Sequence[int] | None = None,
    oxidation_states: Mapping[str, float] | None = None,
    n_sweeps: int = 300,
    n_restarts: int = 3,
    occupancy_tolerance: float = 0.26,
    entry: str = "",
) -> Structure:
    """An ordered cell of a structure with partial occupancies (see the module docstring for the rule).

    Parameters
    ----------
    structure
        The average structure (partial occupancies allowed; fully occupied sites are kept as they are).
    seed
        Seed of ``numpy.random.default_rng`` for the annealing (restart ``k`` uses ``seed + k``).
    supercell
        Repetitions applied before ordering (more sites give occupancies closer to the average).
    oxidation_states
        Formal charges per element (e); default pymatgen's guess for the composition.
    n_sweeps
        Annealing length in sweeps (one sweep = one trial swap per disordered site).
    n_restarts
        Independent annealing runs; the lowest Ewald energy is kept.
    occupancy_tolerance
        Largest allowed difference (atoms) between ``n * occupancy`` and its rounding, per group and species.
    entry
        Name used in error messages.

    Returns
    -------
    Structure
        Ordered, with provenance family ``bulk``, generator ``order_by_ewald`` and ``ewald_energy`` (eV).
    """
    where = entry or structure.composition.reduced_formula
    s = structure.copy()
    if supercell is not None:
        s.make_supercell(list(supercell))
    if s.is_ordered:
        return s
    groups: dict[tuple, list[int]] = {}
    for i, site in enumerate(s):
        if not site.is_ordered or sum(site.species.values()) < 1 - 1e-6:
            key = (*_occupancy_key(site), ("orbit", str(site.properties.get("orbit", ""))))
            groups.setdefault(key, []).append(i)
    fixed = [i for i in range(len(s)) if not any(i in g for g in groups.values())]
    # candidate assignment: per group, a list of labels (element or None for a vacancy)
    labels: dict[tuple, list[str | None]] = {}
    for key, members in groups.items():
        n = len(members)
        pool: list[str | None] = []
        for el, occ in key:
            if el == "orbit":
                continue
            want = n * occ
            k = round(want)
            if abs(want - k) > occupancy_tolerance:
                raise StructureError(
                    f"{where}: {n} sites with {el} occupancy {occ} hold {want:.2f} atoms, not a whole number; order "
                    "a supercell (supercell: [2, 2, 2]) or round the occupancies in the CIF")
            pool += [el] * k
        if len(pool) > n:
            raise StructureError(f"{where}: occupancies of one site group add up to more than 1 ({key})")
        labels[key] = pool + [None] * (n - len(pool))
    counts_all: dict[str, float] = {}
    for i in range(len(s)):
        if not any(i in g for g in groups.values()):
            for sp, x in s[i].species.items():
                counts_all[sp.symbol] = counts_all.get(sp.symbol, 0) + x
    for pool in labels.values():
        for el in pool:
            if el is not None:
                counts_all[el] = counts_all.get(el, 0) + 1
    oxi = _oxidation_states(Composition(counts_all), oxidation_states, where)
    missing = {el for key in groups for el, _ in key if el != "orbit"} - set(oxi)
    if missing:
        raise StructureError(f"{where}: no oxidation state for {sorted(missing)}; give oxidation_states")
    fixed_q = {i: sum(oxi[sp.symbol] * x for sp, x in s[i].species.items()) for i in fixed}
    # unit charges on every candidate site: E = q^T U q for any assignment of charges q
    unit = Structure(s.lattice, [Species("Li", 1)] * len(s), s.frac_coords)
    matrix = EwaldSummation(unit).total_energy_matrix
    matrix = (matrix + matrix.T) / 2.0
    keys = list(groups)
    best: tuple[float, dict[int, str | None]] | None = None
    for restart in range(n_restarts):
        rng = np.random.default_rng(seed + restart)
        assign: dict[int, str | None] = {}
        for key in keys:
            pool = list(labels[key])
            rng.shuffle(pool)
            assign.update(zip(groups[key], pool, strict=True))
        q = np.zeros(len(s))
        for i, v in fixed_q.items():
            q[i] = v
        for i, el in assign.items():
            q[i] = 0.0 if el is None else oxi[el]
        energy, best_run = _anneal(matrix, q, assign, groups, keys, oxi, rng, n_sweeps)
        logger.debug("%s: ordering restart %d, Ewald energy %.3f eV", where, restart, energy)
        if best is None or energy < best[0]:
            best = (energy, best_run)
    assert best is not None
    energy, assign = best
    species, coords = [], []
    for i, site in enumerate(s):
        if i in assign:
            if assign[i] is not None:
                species.append(assign[i])
                coords.append(site.frac_coords)
        else:
            species.append(next(iter(site.species)).symbol)
            coords.append(site.frac_coords)
    ordered = Structure(Lattice(s.lattice.matrix), species, coords).get_sorted_structure()
    counts = {"/".join(f"{el}{occ:g}" if el != "orbit" else str(occ) for el, occ in key if occ != ""):
              {str(k): labels[key].count(k) for k in set(labels[key]) if k is not None} for key in keys}
    return tag(ordered, "bulk", f"{_MOD}.order_by_ewald",
               {"seed": seed, "supercell": list(supercell) if supercell is not None else None,
                "oxidation_states": oxi, "n_sweeps": n_sweeps, "n_restarts": n_restarts},
               structure, ewald_energy=float(energy), ordering_rule="round(n*occupancy) per site group, lowest "
               "Ewald energy of formal charges by seeded annealing", ordered_groups=counts)


def _anneal(matrix: np.ndarray, q: np.ndarray, assign: dict[int, str | None], groups: dict[tuple, list[int]],
            keys: list[tuple], oxi: Mapping[str, float], rng: np.random.Generator,
            n_sweeps: int) -> tuple[float, dict[int, str | None]]:
    """Simulated annealing of swaps inside groups; returns the lowest energy (eV) and its assignment."""
    field = matrix @ q
    energy = float(q @ field)
    movable = [k for k in keys if len(set(assign[i] for i in groups[k])) > 1]
    if not movable:
        return energy, dict(assign)
    sizes = np.array([len(groups[k]) for k in movable], float)
    n_moves = int(n_sweeps * sizes.sum())

    def delta(a: int, b: int) -> tuple[float, float, float]:
        da, db = q[b] - q[a], q[a] - q[b]
        d = 2 * (da * field[a] + db * field[b]) + da * da * matrix[a, a] + db * db * matrix[b, b] \
            + 2 * da * db * matrix[a, b]
        return float(d), da, db

    # temperature scale from random trial swaps
    trials = []
    for _ in range(200):
        k = movable[int(rng.choice(len(movable), p=sizes / sizes.sum()))]
        a, b = rng.choice(groups[k], 2, replace=False)
        if q[a] != q[b]:
            trials.append(abs(delta(int(a), int(b))[0]))
    t_start = float(np.median(trials)) if trials else 1.0
    t_end = t_start * 1e-4
    best_e, best = energy, dict(assign)
    for step in range(n_moves):
        temp = t_start * (t_end / t_start) ** (step / max(1, n_moves - 1))
        k = movable[int(rng.choice(len(movable), p=sizes / sizes.sum()))]
        a, b = (int(x) for x in rng.choice(groups[k], 2, replace=False))
        if assign[a] == assign[b]:
            continue
        d, da, db = delta(a, b)
        if d < 0 or rng.random() < np.exp(-d / temp):
            field += matrix[:, a] * da + matrix[:, b] * db
            q[a] += da
            q[b] += db
            assign[a], assign[b] = assign[b], assign[a]
            energy += d
            if energy < best_e - 1e-9:
                best_e, best = energy, dict(assign)
    return best_e, best


__all__ = ["order_by_ewald"]


def exchange_sites(structure: Structure, a: str, b: str, fraction: float, entry: str = "") -> Structure:
    """Anti-site disorder between two elements, as partial occupancies to order with :func:`order_by_ewald`.

    Every site of ``a`` not bound in a molecular unit (e.g. the free S2- of an argyrodite, not the S of PS4) gets
    occupancy ``{a: 1 - x_a, b: x_a}`` and every free site of ``b`` gets ``{b: 1 - x_b, a: x_b}``, with the same
    number of atoms exchanged each way: ``fraction`` of the smaller of the two site sets (0.25 = a quarter of
    the Cl of Li6PS5Cl on S2- sites and as many S2- on Cl sites).  The composition is unchanged.
    """
    from mlipflow.structures.bonds import molecular_bonds, molecular_units

    where = entry or structure.composition.reduced_formula
    if not 0.0 <= fraction <= 1.0:
        raise StructureError(f"{where}: exchange fraction must be in [0, 1], got {fraction}")
    s = structure.copy()
    units = molecular_units(s, molecular_bonds(s))
    bound = {i for u in units if len(u) > 1 for i in u}
    sites_a = [i for i, x in enumerate(s) if x.specie.symbol == a and i not in bound]
    sites_b = [i for i, x in enumerate(s) if x.specie.symbol == b and i not in bound]
    if not sites_a or not sites_b:
        raise StructureError(f"{where}: no free {a} or {b} sites to exchange (sites of molecular units are kept)")
    n = fraction * min(len(sites_a), len(sites_b))
    for sites, own, other in ((sites_a, a, b), (sites_b, b, a)):
        x = n / len(sites)
        for i in sites:
            s.replace(i, {own: 1.0 - x, other: x} if x > 0 else own, properties={"orbit": f"{own} site"})
    return s
