"""Chunked trajectory storage in the large-data store (GridFS bucket ``stores.blobs``).

A trajectory is a header document in the ``trajectories`` collection (atoms numbers, pbc, frame count,
chunk file ids, free metadata: a few kB whatever the length) plus one GridFS file per chunk of frames
(a compressed ``.npz`` of per-frame arrays).  The writer flushes a chunk every ``chunk_frames`` frames and
updates the header, so memory stays bounded, no document ever approaches MongoDB's 16 MB limit, and a run that
dies keeps every frame up to its last flush.

Per-frame fields: ``positions`` (Å), ``cell`` (Å), and, when given, ``energy`` (eV), ``forces`` (eV/Å),
``momenta`` (amu·Å/fs in ASE units), ``forces_spread`` (per atom, eV/Å) and any scalar such as ``step``,
``time`` (fs), ``temperature`` (K), ``max_force_spread`` (eV/Å), ``energy_spread_per_atom`` (eV/atom).
"""

from __future__ import annotations

import io
import logging
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator

from mlipflow.errors import DataError
from mlipflow.storage import Stores

logger = logging.getLogger(__name__)

TRAJECTORIES = "trajectories"
PER_ATOM_FIELDS = ("positions", "forces", "momenta", "forces_spread")


def _encode(arrays: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def _decode(data: bytes) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(data)) as npz:
        return {k: npz[k] for k in npz.files}


class TrajectoryWriter:
    """Append frames of one trajectory; chunks go to GridFS as they fill.

    Use :meth:`TrajectoryStore.writer` to make one, and as a context manager (closing flushes).

    Parameters
    ----------
    stores
        The stores.
    numbers
        Atomic numbers (fixed for the trajectory).
    pbc
        Periodic boundary conditions.
    metadata
        Small JSON-serialisable description (walker, family, temperature, calculator, ...).
    chunk_frames
        Frames per chunk file.
    trajectory_id
        Default: a new uuid.
    """

    def __init__(self, stores: Stores, numbers: Sequence[int], pbc: Sequence[bool], *,
                 metadata: dict[str, Any] | None = None, chunk_frames: int = 500,
                 trajectory_id: str | None = None) -> None:
        if chunk_frames < 1:
            raise ValueError(f"chunk_frames must be >= 1, got {chunk_frames}")
        self.stores = stores
        self.id = trajectory_id or uuid.uuid4().hex
        self.numbers = np.asarray(numbers, dtype=int)
        self.chunk_frames = chunk_frames
        self._buffer: list[dict[str, Any]] = []
        self._n_frames = 0
        self._chunks: list[Any] = []
        self._fields: set[str] = set()
        self.closed = False
        self._coll = stores.collection(TRAJECTORIES)
        self._coll.insert_one({
            "_id": self.id,
            "numbers": self.numbers.tolist(),
            "pbc": [bool(p) for p in pbc],
            "n_atoms": len(self.numbers),
            "n_frames": 0,
            "chunk_frames": chunk_frames,
            "chunks": [],
            "fields": [],
            "complete": False,
            "metadata": metadata or {},
            "created_at": datetime.now(UTC),
        })

    def __len__(self) -> int:
        return self._n_frames + len(self._buffer)

    def append(self, atoms: Atoms, *, energy: float | None = None, forces: np.ndarray | None = None,
               momenta: bool = True, **values: Any) -> None:
        """Add one frame.

        Parameters
        ----------
        atoms
            The frame (positions in Å, cell in Å); its momenta are stored if present and ``momenta``.
        energy
            Potential energy (eV).
        forces
            Forces (eV/Å).
        momenta
            Store the momenta.
        **values
            Scalars (``step``, ``temperature`` in K, ...) or per-atom arrays (``forces_spread``, eV/Å).
        """
        if self.closed:
            raise DataError(f"trajectory {self.id} is closed; open a new writer to add frames")
        if len(atoms) != len(self.numbers):
            raise DataError(f"trajectory {self.id} has {len(self.numbers)} atoms, frame has {len(atoms)}")
        frame: dict[str, Any] = {"positions": atoms.positions.copy(), "cell": atoms.cell.array.copy()}
        if energy is not None:
            frame["energy"] = float(energy)
        if forces is not None:
            frame["forces"] = np.asarray(forces, dtype=float)
        if momenta and atoms.has("momenta"):
            frame["momenta"] = atoms.get_momenta()
        for key, value in values.items():
            if value is not None:
                frame[key] = value
        if self._buffer and set(frame) != set(self._buffer[0]):
            raise DataError(f"trajectory {self.id}: frame fields {sorted(frame)} differ from the chunk's "
                            f"{sorted(self._buffer[0])}; give the same fields to every frame")
        self._buffer.append(frame)
        if len(self._buffer) >= self.chunk_frames:
            self.flush()

    def flush(self) -> None:
        """Write the buffered frames as one chunk and update the header."""
        if not self._buffer:
            return
        keys = list(self._buffer[0])
        arrays = {k: np.asarray([f[k] for f in self._buffer]) for k in keys}
        start, stop = self._n_frames, self._n_frames + len(self._buffer)
        index = len(self._chunks)
        file_id = self.stores.blobs.put(
            _encode(arrays), filename=f"trajectory-{self.id}-{index:06d}.npz",
            metadata={"trajectory": self.id, "chunk": index, "start": start, "stop": stop},
        )
        self._chunks.append({"file_id": file_id, "start": start, "stop": stop})
        self._n_frames = stop
        self._fields.update(keys)
        self._buffer = []
        self._coll.update_one({"_id": self.id}, {"$set": {"n_frames": stop, "chunks": self._chunks,
                                                          "fields": sorted(self._fields)}})

    def close(self, **metadata: Any) -> str:
        """Flush, mark complete, add ``metadata`` to the header; return the trajectory id."""
        if not self.closed:
            self.flush()
            update = {"complete": True, **{f"metadata.{k}": v for k, v in metadata.items()}}
            self._coll.update_one({"_id": self.id}, {"$set": update})
            self.closed = True
        return self.id

    def __enter__(self) -> TrajectoryWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class TrajectoryStore:
    """Read and write chunked trajectories of one store.

    Parameters
    ----------
    stores
        From :func:`mlipflow.storage.get_stores`.
    """

    def __init__(self, stores: Stores) -> None:
        self.stores = stores
        self.collection = stores.collection(TRAJECTORIES)

    def writer(self, atoms: Atoms, *, metadata: dict[str, Any] | None = None, chunk_frames: int = 500,
               trajectory_id: str | None = None) -> TrajectoryWriter:
        """A writer for a trajectory of frames like ``atoms`` (same atoms, same order)."""
        return TrajectoryWriter(self.stores, atoms.numbers, atoms.pbc, metadata=metadata,
                                chunk_frames=chunk_frames, trajectory_id=trajectory_id)

    def header(self, trajectory_id: str) -> dict[str, Any]:
        """The header document, or :class:`DataError` if there is none."""
        doc = self.collection.find_one({"_id": trajectory_id})
        if doc is None:
            raise DataError(f"no trajectory {trajectory_id!r} in {self.stores.describe()}")
        return doc

    def iter_chunks(self, trajectory_id: str, fields: Sequence[str] | None = None) -> Iterator[dict[str, np.ndarray]]:
        """Chunks in order, as dicts of arrays (optionally only ``fields``)."""
        header = self.header(trajectory_id)
        for chunk in header["chunks"]:
            arrays = _decode(self.stores.blobs.get(chunk["file_id"]).read())
            n = chunk["stop"] - chunk["start"]
            if any(len(v) != n for v in arrays.values()):
                raise DataError(f"trajectory {trajectory_id}: chunk at frame {chunk['start']} is corrupt")
            yield arrays if fields is None else {k: arrays[k] for k in fields if k in arrays}

    def arrays(self, trajectory_id: str, fields: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """All frames as concatenated arrays (first axis: frame)."""
        parts: dict[str, list[np.ndarray]] = {}
        for chunk in self.iter_chunks(trajectory_id, fields):
            for k, v in chunk.items():
                parts.setdefault(k, []).append(v)
        return {k: np.concatenate(v) for k, v in parts.items()}

    def iter_atoms(self, trajectory_id: str, indices: Sequence[int] | None = None) -> Iterator[Atoms]:
        """Frames as ASE Atoms (energy/forces on a single-point calculator; scalars in ``info``).

        Parameters
        ----------
        trajectory_id
            The trajectory.
        indices
            Frame indices to return, in increasing order (default: all).
        """
        header = self.header(trajectory_id)
        numbers, pbc = header["numbers"], header["pbc"]
        wanted = None if indices is None else sorted(set(int(i) for i in indices))
        pos = 0
        for chunk_meta in header["chunks"]:
            start, stop = chunk_meta["start"], chunk_meta["stop"]
            if wanted is None:
                local: Sequence[int] = range(stop - start)
            else:
                local_list = []
                while pos < len(wanted) and wanted[pos] < stop:
                    local_list.append(wanted[pos] - start)
                    pos += 1
                local = local_list
            if not local:
                continue  # no wanted frame in this chunk: not even read
            chunk = _decode(self.stores.blobs.get(chunk_meta["file_id"]).read())
            for i in local:
                yield _to_atoms(chunk, i, numbers, pbc, start + i, trajectory_id)

    def read(self, trajectory_id: str, indices: Sequence[int] | None = None) -> list[Atoms]:
        """All frames (or ``indices``) as a list of ASE Atoms."""
        return list(self.iter_atoms(trajectory_id, indices))

    def delete(self, trajectory_id: str) -> None:
        """Remove the chunks and the header."""
        header = self.header(trajectory_id)
        for chunk in header["chunks"]:
            self.stores.blobs.delete(chunk["file_id"])
        self.collection.delete_one({"_id": trajectory_id})


def _to_atoms(chunk: dict[str, np.ndarray], i: int, numbers: Sequence[int], pbc: Sequence[bool],
              frame_index: int, trajectory_id: str) -> Atoms:
    atoms = Atoms(numbers=numbers, positions=chunk["positions"][i], cell=chunk["cell"][i], pbc=pbc)
    if "momenta" in chunk:
        atoms.set_momenta(chunk["momenta"][i])
    if "forces_spread" in chunk:
        atoms.arrays["forces_spread"] = chunk["forces_spread"][i]
    results = {}
    if "energy" in chunk:
        results["energy"] = float(chunk["energy"][i])
    if "forces" in chunk:
        results["forces"] = chunk["forces"][i]
    if results:
        atoms.calc = SinglePointCalculator(atoms, **results)
    for key, value in chunk.items():
        if key in PER_ATOM_FIELDS or key in ("cell", "energy"):
            continue
        v = value[i]
        atoms.info[key] = v.item() if np.ndim(v) == 0 else v
    atoms.info["trajectory"] = trajectory_id
    atoms.info["frame"] = frame_index
    return atoms
