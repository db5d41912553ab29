"""Prototype crystal structures of the flagship systems, shipped as CIF files inside the package.

The files in ``mlipflow/structures/prototypes/`` are the single source of truth; each starts with a comment
header naming its space group, Wyckoff positions, lattice parameters, the paper they come from and the rule
that resolved partial occupancies (they are written by ``scripts/build_prototypes.py``).
"""

from __future__ import annotations

import warnings
from importlib import resources
from pathlib import Path

from pymatgen.core import Structure

from mlipflow.errors import StructureError
from mlipflow.structures.provenance import tag

#: prototype name -> short description
PROTOTYPES: dict[str, str] = {
    "Li2O": "Li2O antifluorite, Fm-3m",
    "Li2S": "Li2S antifluorite, Fm-3m",
    "LiF": "LiF rock salt, Fm-3m",
    "Li2CO3": "Li2CO3 zabuyelite, C2/c (molecular CO3 anions)",
    "Li": "Li metal, bcc, Im-3m",
    "LiCoO2": "LiCoO2 layered, R-3m (Li 3a, Co 3b, O 6c)",
    "LLZO-cubic": "Li7La3Zr2O12 cubic garnet (Ia-3d average), Li ordered by the tetragonal rule",
    "LLZO-tetragonal": "Li7La3Zr2O12 tetragonal garnet, I4_1/acd",
    "Li3PS4": "gamma-Li3PS4, Pmn2_1 (idealised coordinates)",
    "Li6PS5Cl": "Li6PS5Cl argyrodite (F-43m average), Li ordered by the lowest Ewald energy",
}

#: Bond lengths (Å) the prototypes must reproduce within 2 %: prototype -> "A-B" (shortest A-B distance) ->
#: (value, source).  The values follow from the lattice and Wyckoff parameters of the cited refinements (written
#: in each CIF header); the test ``tests/structures/test_prototypes.py`` also checks that every prototype sits near
#: a minimum of the CHGNet surrogate, which is what caught Li and Co swapped in LiCoO2.
REFERENCE_BONDS: dict[str, dict[str, tuple[float, str]]] = {
    "Li2O": {"Li-O": (1.997, "a sqrt(3)/4, a = 4.6114 Å (Farley et al. 1991)")},
    "Li2S": {"Li-S": (2.472, "a sqrt(3)/4, a = 5.708 Å (Buehrer & Bill 1980)")},
    "LiF": {"F-Li": (2.0135, "a/2, a = 4.0270 Å (Thewlis 1955)")},
    "Li2CO3": {"C-O": (1.28, "Effenberger & Zemann 1979 (planar CO3, C-O 1.28-1.29 Å)"),
               "Li-O": (1.90, "Effenberger & Zemann 1979 (LiO4, Li-O 1.90-2.00 Å)")},
    "Li": {"Li-Li": (3.039, "a sqrt(3)/2, a = 3.5093 Å (Berliner & Werner 1986)")},
    "LiCoO2": {"Co-O": (1.922, "Akimoto et al. 1998 (a, c, z(O) = 0.2395)"),
               "Li-O": (2.092, "Akimoto et al. 1998 (a, c, z(O) = 0.2395)")},
    "LLZO-cubic": {"O-Zr": (2.105, "Awaka et al. 2011"), "La-O": (2.518, "Awaka et al. 2011")},
    "LLZO-tetragonal": {"O-Zr": (2.10, "Awaka et al. 2009 (ZrO6 mean)"), "La-O": (2.50, "Awaka et al. 2009")},
    "Li3PS4": {"P-S": (2.05, "Homma et al. 2011 (PS4 tetrahedra 2.04-2.06 Å)"),
               "Li-S": (2.40, "Homma et al. 2011 (LiS4 2.40-2.46 Å)")},
    "Li6PS5Cl": {"P-S": (2.032, "Deiseroth et al. 2008 (S 16e x = 0.619)"),
                 "Li-S": (2.44, "Deiseroth et al. 2008"), "Cl-Li": (2.60, "Deiseroth et al. 2008")},
}

ALIASES = {"LLZO": "LLZO-cubic", "Li7La3Zr2O12": "LLZO-cubic", "LCO": "LiCoO2", "LPS": "Li3PS4"}


def prototype_path(name: str) -> Path:
    """Path of the CIF file of prototype ``name`` (see :data:`PROTOTYPES`)."""
    key = ALIASES.get(name, name)
    if key not in PROTOTYPES:
        raise StructureError(f"unknown prototype {name!r}; choose one of {', '.join(PROTOTYPES)} (or give a CIF file)")
    return Path(str(resources.files("mlipflow.structures") / "prototypes" / f"{key}.cif"))


def prototype_header(name: str) -> str:
    """The comment header (source and ordering rule) of a prototype CIF."""
    lines = prototype_path(name).read_text().splitlines()
    return "\n".join(line[2:] for line in lines if line.startswith("# ") and "generated using" not in line)


def load_prototype(name: str) -> Structure:
    """Load a shipped prototype structure.

    Parameters
    ----------
    name
        One of :data:`PROTOTYPES` (aliases: ``LLZO``, ``LCO``, ``LPS``).

    Returns
    -------
    Structure
        The ordered crystal with provenance family ``bulk``, generator ``prototype``.
    """
    path = prototype_path(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        structure = Structure.from_file(path)
    key = ALIASES.get(name, name)
    return tag(
        structure,
        "bulk",
        "mlipflow.structures.prototypes.load_prototype",
        {"name": key},
        f"prototype {key}",
        label=f"prototype {key}",
    )


def list_prototypes() -> list[str]:
    """Names of the shipped prototypes."""
    return list(PROTOTYPES)
