"""``mlipflow structures preview FILE``: expand a structure section, write the cells, return the table."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pymatgen.io.ase import AseAtomsAdaptor

from mlipflow.structures.structure_set import build_structure_set


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")


def preview(yaml_path: str | Path, out_dir: str | Path) -> list[dict[str, Any]]:
    """Build every cell of a structure section and write each as CIF and extxyz.

    Parameters
    ----------
    yaml_path
        YAML file with the structure section (top level or under ``structures:``).
    out_dir
        Directory for ``<index>_<entry>_<formula>.cif`` / ``.extxyz`` files (created if missing).

    Returns
    -------
    list of dict
        One row per cell: ``entry``, ``family``, ``formula``, ``atoms``, ``sigma``, ``strain``, ``note``,
        ``cif`` and ``extxyz`` (paths).
    """
    import json

    from ase.io import write

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    result = build_structure_set(yaml_path)
    rows = []
    for i, (s, r) in enumerate(zip(result.structures, result.rows, strict=True)):
        stem = f"{i:03d}_{_safe(r['entry'])}_{_safe(r['formula'])}"
        cif = out / f"{stem}.cif"
        s.to(filename=str(cif))
        atoms = AseAtomsAdaptor.get_atoms(s)
        for key in list(atoms.arrays):
            if key not in ("numbers", "positions"):
                del atoms.arrays[key]
        atoms.info = {"provenance": json.dumps(s.properties.get("provenance", {})), "config_type": r["family"]}
        xyz = out / f"{stem}.extxyz"
        write(xyz, atoms, format="extxyz")
        rows.append({**r, "cif": str(cif), "extxyz": str(xyz)})
    return rows
