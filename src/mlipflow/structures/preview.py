"""``mlipflow structures preview FILE``: expand a structure section, write the cells, return the table."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pymatgen.io.ase import AseAtomsAdaptor

from mlipflow.structures.structure_set import build_structure_set, load_spec


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")


def preview(yaml_path: str | Path, out_dir: str | Path, skip_md: bool = False) -> list[dict[str, Any]]:
    """Build every cell of a structure section and write each as CIF and extxyz.

    Parameters
    ----------
    yaml_path
        YAML file with the structure section (top level or under ``structures:``; a campaign file previews its
        ``structures`` section).
    out_dir
        Directory for ``<index>_<entry>_<formula>.cif`` / ``.extxyz`` files (created if missing).
    skip_md
        Do not run the melt-quench MD of amorphous and mixture entries: their starting cells are written instead,
        with ``melt-quench skipped`` in the note (to look at a cluster campaign's cells on a laptop).

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
    spec = load_spec(yaml_path)
    skipped = set()
    if skip_md:
        for entry in spec.entries:
            if getattr(entry, "melt_quench", None) is not None:
                entry.melt_quench = None
                skipped.add(entry.name)
    result = build_structure_set(spec)
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
        if r["entry"] in skipped:
            r = {**r, "note": f"{r['note']} melt-quench skipped".strip()}
        rows.append({**r, "cif": str(cif), "extxyz": str(xyz)})
    return rows
