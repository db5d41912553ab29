"""Dataset files: export to extxyz with MACE's keys; import from extxyz and ASE databases.

Exported frames carry ``REF_energy`` (eV), ``REF_forces`` (eV/Å), ``REF_stress`` (eV/Å³, ASE sign
convention, 3x3), ``config_type``, ``frame_id``, ``split`` and ``labeler`` (name, version and kind), so
that a surrogate label can never be mistaken for DFT in an exported file either.

Imports are all or nothing: the whole file is read and checked first (every frame needs an energy and
forces of the right shape, and finite numbers, and no two atoms closer than a per-pair floor: by default
half the sum of their covalent radii, e.g. 0.66 Å for O-O and 1.28 Å for Li-Li, see
:class:`~mlipflow.sampling.monitors.MinDistanceMonitor`), and nothing is stored if any frame is bad; the
error names the file, the frame and the atoms.
"""

from __future__ import annotations

import io
import uuid
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms, units
from ase.io import read, write

from mlipflow.data.dataset import AddResult, Dataset, Split
from mlipflow.data.frames import LabeledFrame, LabelerInfo, Provenance
from mlipflow.errors import DataError, MlipflowError

ENERGY_KEYS = ("REF_energy", "energy", "DFT_energy")
FORCES_KEYS = ("REF_forces", "forces", "DFT_forces")
STRESS_KEYS = ("REF_stress", "stress", "DFT_stress")


def frame_to_extxyz_atoms(frame: LabeledFrame, split: str | None = None) -> Atoms:
    """ASE atoms carrying the frame's labels under MACE's ``REF_*`` keys."""
    atoms = frame.to_atoms()
    atoms.calc = None
    if frame.energy is not None:
        atoms.info["REF_energy"] = frame.energy
    if frame.forces is not None:
        atoms.arrays["REF_forces"] = np.asarray(frame.forces, dtype=float)
    if frame.stress is not None:
        atoms.info["REF_stress"] = (np.asarray(frame.stress, dtype=float) * units.GPa).reshape(9)
    atoms.info["config_type"] = frame.config_type
    atoms.info["frame_id"] = frame.content_hash
    atoms.info["labeler"] = frame.labeler.describe()
    if split:
        atoms.info["split"] = split
    return atoms


#: MACE's ``config_type`` of isolated-atom frames: mace_run_train takes its E0s from them (no ``--E0s`` needed)
ISOLATED_ATOM = "IsolatedAtom"


def isolated_atom_images(dataset: Dataset, version_id: str) -> list[Atoms]:
    """The isolated-atom labels of a version (its E0s, outside the splits) as ``config_type=IsolatedAtom``
    frames, in atomic-number order; elements whose label is missing or not ``labeled`` are left out."""
    version = dataset.get_version(version_id)
    ids = dict(version.isolated_atoms)
    docs = {d["_id"]: d for d in dataset.frames.find({"_id": {"$in": list(ids.values())}, "status": "labeled"})}
    images = []
    for frame_id in ids.values():
        if frame_id not in docs:
            continue
        frame = LabeledFrame.from_document(docs[frame_id])
        if frame.natoms != 1:
            raise DataError(f"dataset version {version.id}: isolated-atom frame {frame_id} has {frame.natoms} atoms")
        atoms = frame_to_extxyz_atoms(frame, "isolated")
        atoms.info["config_type"] = ISOLATED_ATOM
        images.append(atoms)
    return sorted(images, key=lambda a: int(a.numbers[0]))


def export_extxyz(dataset: Dataset, version_id: str, path: str | Path, split: Split | None = None) -> int:
    """Write a dataset version (or one split of it) as extxyz; return the number of frames written.

    The whole version and its ``train`` split start with the version's isolated-atom labels as
    ``config_type=IsolatedAtom`` frames (``split=isolated``), so that ``mace_run_train`` on the file uses the
    same E0s as the campaign's own training (mace-torch reads them from such frames when ``--E0s`` is not
    given, and does not train on them).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    images = isolated_atom_images(dataset, version_id) if split in (None, "train") else []
    images += [frame_to_extxyz_atoms(frame, s) for frame, s in dataset.version_frames(version_id, split)]
    write(path, images, format="extxyz", write_results=False)
    return len(images)


def _first(mapping: dict[str, Any], keys: tuple[str, ...]) -> Any:
    for key in keys:
        if key in mapping:
            return mapping[key]
    return None


def _labels_of(atoms: Atoms) -> tuple[Any, Any, Any]:
    energy = _first(atoms.info, ENERGY_KEYS)
    forces = _first(atoms.arrays, FORCES_KEYS)
    stress = _first(atoms.info, STRESS_KEYS)
    calc = atoms.calc
    if calc is not None:
        results = getattr(calc, "results", {})
        energy = results.get("energy", energy) if energy is None else energy
        forces = results.get("forces") if forces is None else forces
        stress = results.get("stress") if stress is None else stress
    return energy, forces, stress


def _numbers(value: Any, where: str, what: str) -> np.ndarray:
    try:
        return np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise DataError(f"{where}: {what} is not made of numbers ({str(value)[:60]!r})") from None


def _check_labels(atoms: Atoms, where: str, energy: Any, forces: Any, stress: Any) -> None:
    n = len(atoms)
    if energy is None:
        raise DataError(f"{where}: no energy (expected one of {ENERGY_KEYS} or a calculator result)")
    if _numbers(energy, where, "the energy").size != 1 or not np.isfinite(_numbers(energy, where, "the energy")).all():
        raise DataError(f"{where}: energy is not one finite number ({str(energy)[:60]})")
    if forces is None:
        raise DataError(f"{where}: no forces (expected one of {FORCES_KEYS} per atom)")
    forces = _numbers(forces, where, "the forces")
    if forces.shape != (n, 3):
        raise DataError(f"{where}: forces have shape {forces.shape}, expected ({n}, 3) for {n} atoms")
    if not np.all(np.isfinite(forces)):
        raise DataError(f"{where}: forces contain NaN or infinite values")
    if not np.all(np.isfinite(atoms.positions)) or not np.all(np.isfinite(atoms.cell.array)):
        raise DataError(f"{where}: positions or lattice contain NaN or infinite values")
    if stress is not None:
        s = _numbers(stress, where, "the stress")
        if s.size not in (6, 9):
            raise DataError(f"{where}: stress has {s.size} values, expected 6 (Voigt) or 9 (3x3)")
        if not np.all(np.isfinite(s)):
            raise DataError(f"{where}: stress contains NaN or infinite values")


def check_distances(atoms: Atoms, where: str, monitor: Any = None) -> None:
    """Refuse a frame with two atoms closer than their pair's floor (or on one site), naming the atoms.

    Parameters
    ----------
    atoms
        The frame (periodic images count).
    where
        File and frame, for the message.
    monitor
        A :class:`~mlipflow.sampling.monitors.MinDistanceMonitor` with the floors per element pair (Å);
        default: half the sum of the covalent radii for every pair.
    """
    from mlipflow.sampling.monitors import MinDistanceMonitor

    monitor = monitor or MinDistanceMonitor()
    monitor.reset(atoms)
    verdict = monitor.check(atoms, 0)
    if verdict is None:
        return
    if verdict.value < 0.01:
        raise DataError(f"{where}: two atoms on one site: {verdict.message}")
    raise DataError(f"{where}: {verdict.message}; if the frame is right, lower the floor "
                    "(`mlipflow dataset import --min-distance A-B=Å`)")


def _split_extxyz(path: Path) -> list[tuple[int, str]]:
    """Cut an extxyz file into (first line number, text) per frame, checking every atom-count line."""
    from mlipflow.yamlio import read_text

    try:
        lines = read_text(path, "extxyz file").splitlines(keepends=True)
    except MlipflowError as exc:
        raise DataError(str(exc)) from None
    frames: list[tuple[int, str]] = []
    i = 0
    previous = ""
    while i < len(lines):
        if not lines[i].strip():
            i += 1
            continue
        try:
            n = int(lines[i].split()[0])
            if len(lines[i].split()) != 1 or n < 1:
                raise ValueError
        except ValueError:
            raise DataError(
                f"{path}, frame {len(frames)} (0-based, line {i + 1}): expected the atom count of a new frame, "
                f"found {lines[i].strip()[:60]!r}{previous}"
            ) from None
        if i + 2 + n > len(lines):
            raise DataError(
                f"{path}, frame {len(frames)} (0-based, line {i + 1}): says {n} atoms but the file ends "
                f"after {len(lines) - i - 2} atom lines"
            )
        frames.append((i + 1, "".join(lines[i : i + 2 + n])))
        previous = f"; the atom count {n} of the frame before (line {i + 1}) may be wrong"
        i += 2 + n
    return frames


def _frame(atoms: Atoms, where: str, labeler: LabelerInfo, labels: tuple[Any, Any, Any],
           provenance: Provenance) -> LabeledFrame:
    energy, forces, stress = labels
    try:
        return LabeledFrame.from_atoms(atoms, labeler, energy=energy, forces=forces, stress=stress,
                                       provenance=provenance)
    except Exception as exc:  # a degenerate cell, odd per-atom arrays: pymatgen and pydantic raise many kinds
        raise DataError(f"{where}: cannot be stored as a structure: {type(exc).__name__}: "
                        f"{' '.join(str(exc).split())[:300]}") from exc


def read_labeled_extxyz(
    path: str | Path, labeler: LabelerInfo, provenance: dict[str, Any] | None = None, min_distance: Any = None
) -> list[LabeledFrame]:
    """Read and check every frame of an extxyz file; raise :class:`DataError` naming file, frame and line.

    ``min_distance`` is the :class:`~mlipflow.sampling.monitors.MinDistanceMonitor` whose per-pair floors (Å)
    the frames must respect (default: half the sum of the covalent radii).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    frames: list[LabeledFrame] = []
    for index, (line, text) in enumerate(_split_extxyz(path)):
        where = f"{path}, frame {index} (0-based, line {line})"
        try:
            atoms = read(io.StringIO(text), format="extxyz")
        except Exception as exc:  # ASE raises many kinds of errors on a malformed frame
            raise DataError(f"{where}: cannot be read as extxyz: {type(exc).__name__}: {exc}") from exc
        energy, forces, stress = _labels_of(atoms)
        _check_labels(atoms, where, energy, forces, stress)
        check_distances(atoms, where, min_distance)
        if stress is not None and np.asarray(stress).size == 9:
            stress = np.asarray(stress, dtype=float).reshape(3, 3)
        config_type = atoms.info.get("config_type")
        frames.append(_frame(atoms, where, labeler, (energy, forces, stress), Provenance(
            origin="import", source=str(path), source_index=index,
            config_type=None if config_type is None else str(config_type), **dict(provenance or {}))))
    if not frames:
        raise DataError(f"{path}: holds no frames")
    return frames


def read_labeled_ase_db(path: str | Path, labeler: LabelerInfo, selection: Any = None,
                       min_distance: Any = None) -> list[LabeledFrame]:
    """Read and check every row of an ASE database (rows need energy and forces; atoms apart, see above)."""
    import ase.db

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    frames = []
    try:
        rows = list(ase.db.connect(path).select(selection))
    except Exception as exc:
        raise DataError(f"{path}: cannot be read as an ASE database: {exc}") from exc
    for row in rows:
        atoms = row.toatoms()
        where = f"{path}, row id {row.id}"
        energy = row.get("energy")
        forces = row.get("forces")
        stress = row.get("stress")
        _check_labels(atoms, where, energy, forces, stress)
        check_distances(atoms, where, min_distance)
        frames.append(_frame(atoms, where, labeler, (energy, forces, stress), Provenance(
            origin="import", source=str(path), source_index=row.id, config_type=row.get("config_type"))))
    if not frames:
        raise DataError(f"{path}: holds no rows")
    return frames


def read_frames(path: str | Path, labeler: LabelerInfo, min_distance: Any = None) -> list[LabeledFrame]:
    """Read and check every frame of an extxyz file or an ASE database (``.db``/``.json``); store nothing.

    ``min_distance``: the per-pair distance floors (a :class:`~mlipflow.sampling.monitors.MinDistanceMonitor`)
    every frame must respect.
    """
    path = Path(path)
    if path.suffix in {".db", ".json"}:
        return read_labeled_ase_db(path, labeler, min_distance=min_distance)
    return read_labeled_extxyz(path, labeler, min_distance=min_distance)


def import_file(dataset: Dataset, path: str | Path, labeler: LabelerInfo, min_distance: Any = None) -> AddResult:
    """Import an extxyz file or an ASE database into the dataset, all or nothing (see :func:`read_frames`)."""
    return import_frames(dataset, read_frames(path, labeler, min_distance))


def import_frames(dataset: Dataset, frames: list[LabeledFrame]) -> AddResult:
    """Store checked frames (from :func:`read_frames`) as one import."""
    return dataset.add_frames(frames, import_id=uuid.uuid4().hex)

