"""Frame descriptors for diversity selection: SOAP (dscribe) and a MACE model's own invariant features.

Both give one vector per frame: the average of the per-atom descriptors over the frame (``average="frame"``),
per species, the averages concatenated in a fixed species order (``average="species"``; a species absent
from a frame contributes zeros), or the average over the frame's ``focus_atoms`` atoms that matter most
(``average="focus"``): those with the largest committee force spread when the frame carries one (an explored
frame, ``atoms.arrays["forces_spread"]``), else those whose environment is farthest from the frame's mean
(e.g. the boundary atoms of a grain-boundary cell).  A frame average dilutes the few boundary atoms of a
100-atom boundary cell into its bulk; the focus average does not.

:class:`DescriptorCache` keeps vectors in the store keyed by descriptor settings and frame content hash
(:func:`frame_hash`, identical to the dataset's :func:`~mlipflow.data.structure_hash`), so a frame is described
once however often it is selected from.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol

import numpy as np
from ase import Atoms
from ase.data import chemical_symbols
from monty.json import MSONable

from mlipflow.data.hashing import FRAC_DECIMALS, LATTICE_DECIMALS, _sha
from mlipflow.errors import ConfigError
from mlipflow.storage import Stores

logger = logging.getLogger(__name__)

DESCRIPTOR_CACHE = "descriptor_cache"
Average = Literal["frame", "species", "focus"]
#: per-atom array of explored frames holding each atom's committee force spread (eV/Å)
SPREAD_ARRAY = "forces_spread"


def frame_hash(atoms: Atoms) -> str:
    """Content hash of a frame's structure, equal to :func:`mlipflow.data.structure_hash` of the same structure.

    Computed from ASE arrays directly (no pymatgen conversion), so it is cheap enough for 100k frames.
    """
    cell = np.asarray(atoms.cell.array, dtype=float)
    lattice = np.round(cell, LATTICE_DECIMALS) + 0.0
    frac = np.linalg.solve(cell.T, atoms.positions.T).T if atoms.cell.rank == 3 else atoms.positions
    frac = np.round(np.round(frac, FRAC_DECIMALS) % 1.0, FRAC_DECIMALS) % 1.0
    fmt = f"{{:.{FRAC_DECIMALS}f}}"
    sites = sorted((int(z), *(fmt.format(x) for x in row)) for z, row in zip(atoms.numbers, frac, strict=True))
    return _sha({"lattice": [f"{x:.{LATTICE_DECIMALS}f}" for x in lattice.ravel()], "sites": sites})


def focus_atoms(per_atom: np.ndarray, n: int, spread: np.ndarray | None = None) -> np.ndarray:
    """Indices of the ``n`` atoms that matter most: largest force spread if given, else most atypical environment."""
    n = max(1, min(int(n), len(per_atom)))
    if spread is not None and len(spread) == len(per_atom) and np.all(np.isfinite(spread)):
        score = np.asarray(spread, dtype=float)
    else:
        score = np.linalg.norm(per_atom - per_atom.mean(axis=0), axis=1)
    return np.argsort(-score, kind="stable")[:n]


def _average(per_atom: np.ndarray, numbers: np.ndarray, average: Average, species: Sequence[int],
             focus: np.ndarray | None = None) -> np.ndarray:
    if average == "frame":
        return per_atom.mean(axis=0)
    if average == "focus":
        return per_atom[focus].mean(axis=0)
    parts = []
    for z in species:
        mask = numbers == z
        parts.append(per_atom[mask].mean(axis=0) if mask.any() else np.zeros(per_atom.shape[1]))
    return np.concatenate(parts)


class Descriptor(Protocol):
    """Anything that turns frames into a (n_frames, dim) matrix and has a stable ``key``."""

    @property
    def key(self) -> str: ...

    def compute(self, frames: Sequence[Atoms]) -> np.ndarray: ...


@dataclass
class SoapDescriptor(MSONable):
    """SOAP power spectrum (dscribe), averaged per frame or per species.

    Parameters
    ----------
    species
        Element symbols of the whole pool (fixed, so vectors of different frames line up).
    r_cut
        Cutoff radius (Å).
    n_max, l_max
        Radial and angular basis sizes.
    sigma
        Gaussian width of the atomic densities (Å).
    average
        ``frame``, ``species`` or ``focus`` (see the module docstring).
    focus_atoms
        Atoms averaged with ``average="focus"``.
    n_jobs
        Parallel workers of dscribe (keep 1 on shared machines).
    """

    species: list[str]
    r_cut: float = 5.0
    n_max: int = 6
    l_max: int = 4
    sigma: float = 0.5
    average: Average = "frame"
    focus_atoms: int = 8
    n_jobs: int = 1

    @property
    def key(self) -> str:
        params = {k: v for k, v in asdict(self).items()
                  if k != "n_jobs" and (k != "focus_atoms" or self.average == "focus")}
        params["species"] = sorted(params["species"])
        return "soap-" + hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:12]

    def _build(self) -> Any:
        soap = self.__dict__.get("_soap")  # built once, not a dataclass field (keeps the object serialisable)
        if soap is None:
            from dscribe.descriptors import SOAP

            soap = SOAP(species=sorted(self.species), r_cut=self.r_cut, n_max=self.n_max, l_max=self.l_max,
                        sigma=self.sigma, periodic=True, sparse=False, dtype="float32")
            self.__dict__["_soap"] = soap
        return soap

    def compute(self, frames: Sequence[Atoms]) -> np.ndarray:
        """Descriptor matrix (n_frames, dim), float32."""
        if not frames:
            return np.zeros((0, 0), dtype=np.float32)
        soap = self._build()
        known = set(self.species)
        zs = sorted(chemical_symbols.index(s) for s in known)
        out = []
        for atoms in frames:
            extra = set(atoms.get_chemical_symbols()) - known
            if extra:
                raise ConfigError(f"frame has species {sorted(extra)} not in the SOAP species {sorted(known)}")
            per_atom = soap.create(atoms, n_jobs=self.n_jobs)
            focus = (focus_atoms(per_atom, self.focus_atoms, atoms.arrays.get(SPREAD_ARRAY))
                     if self.average == "focus" else None)
            out.append(_average(per_atom, atoms.numbers, self.average, zs, focus))
        return np.asarray(out, dtype=np.float32)


@dataclass
class MaceDescriptor(MSONable):
    """A MACE model's invariant node features (``MACECalculator.get_descriptors``), averaged.

    Parameters
    ----------
    model_paths
        Local ``.model`` file(s); the first model's features are used.
    species
        Element symbols, for ``average="species"``.
    average
        ``frame``, ``species`` or ``focus``.
    focus_atoms
        Atoms averaged with ``average="focus"``.
    num_layers
        Interaction layers to include (-1: all).
    device, default_dtype
        As for ``MACECalculator``.
    calculator
        An already built ``MACECalculator`` (not serialised; overrides ``model_paths``).
    """

    model_paths: list[str] = field(default_factory=list)
    species: list[str] = field(default_factory=list)
    average: Average = "frame"
    focus_atoms: int = 8
    num_layers: int = -1
    device: str = "cpu"
    default_dtype: str = "float64"
    calculator: Any = field(default=None, repr=False)

    @property
    def key(self) -> str:
        ident: list[str] = []
        for path in self.model_paths[:1]:
            with open(path, "rb") as fh:
                ident.append(hashlib.sha256(fh.read()).hexdigest()[:16])
        if not ident:
            ident.append(f"calc-{id(self.calculator)}")
        params = {"models": ident, "species": sorted(self.species), "average": self.average,
                  "num_layers": self.num_layers, **({"focus": self.focus_atoms} if self.average == "focus" else {})}
        return "mace-" + hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:12]

    def _calc(self) -> Any:
        if self.calculator is None:
            if not self.model_paths:
                raise ConfigError("MaceDescriptor needs model_paths (local .model files) or a calculator")
            from mace.calculators import MACECalculator

            self.calculator = MACECalculator(model_paths=self.model_paths[0], device=self.device,
                                             default_dtype=self.default_dtype)
        return self.calculator

    def compute(self, frames: Sequence[Atoms]) -> np.ndarray:
        calc = self._calc()
        zs = sorted(chemical_symbols.index(s) for s in self.species)
        if self.average == "species" and not zs:
            raise ConfigError("MaceDescriptor(average='species') needs the species list")
        out = []
        for atoms in frames:
            per_atom = np.asarray(calc.get_descriptors(atoms.copy(), invariants_only=True,
                                                       num_layers=self.num_layers))
            focus = (focus_atoms(per_atom, self.focus_atoms, atoms.arrays.get(SPREAD_ARRAY))
                     if self.average == "focus" else None)
            out.append(_average(per_atom, atoms.numbers, self.average, zs, focus))
        return np.asarray(out, dtype=np.float32)


@dataclass
class CommitteeMaceDescriptor(MSONable):
    """MACE descriptors of the committee a selection runs with (its first member), resolved inside the job.

    The committee is only known when the selection runs; :meth:`resolve` gives the :class:`MaceDescriptor` of its
    first member's model file.  The descriptors change with every committee, so a dataset version's reference is
    described again in every iteration (SOAP's is reused).

    Parameters
    ----------
    species
        Element symbols.
    average
        ``frame``, ``species`` or ``focus``.
    focus_atoms
        Atoms averaged with ``average="focus"``.
    """

    species: list[str] = field(default_factory=list)
    average: Average = "focus"
    focus_atoms: int = 8

    def resolve(self, stores: Stores, committee_id: str | None) -> MaceDescriptor:
        """The descriptor of ``committee_id``'s first member (a clear error without a committee)."""
        if not committee_id:
            raise ConfigError("selection.descriptor 'mace' needs the committee of the iteration; none was given")
        from mlipflow.training.registry import ModelRegistry

        path = ModelRegistry(stores).member_files(committee_id)[0]
        return MaceDescriptor(model_paths=[str(path)], species=list(self.species), average=self.average,
                              focus_atoms=self.focus_atoms, default_dtype="float32")


class DescriptorCache:
    """Descriptor vectors in the store, keyed by descriptor key and frame hash.

    Parameters
    ----------
    stores
        The stores (collection ``descriptor_cache``).
    """

    def __init__(self, stores: Stores) -> None:
        self.collection = stores.collection(DESCRIPTOR_CACHE)
        self.hits = 0
        self.misses = 0

    def get_many(self, key: str, hashes: Sequence[str]) -> dict[str, np.ndarray]:
        """Cached vectors of the given frame hashes (missing ones are absent)."""
        out: dict[str, np.ndarray] = {}
        unique = list(dict.fromkeys(hashes))
        for lo in range(0, len(unique), 2000):
            ids = [f"{key}:{h}" for h in unique[lo : lo + 2000]]
            for doc in self.collection.find({"_id": {"$in": ids}}):
                out[doc["_id"].split(":", 1)[1]] = np.frombuffer(doc["v"], dtype=np.float32)
        return out

    def put_many(self, key: str, hashes: Sequence[str], vectors: np.ndarray) -> None:
        docs = {f"{key}:{h}": {"_id": f"{key}:{h}", "v": np.asarray(v, dtype=np.float32).tobytes()}
                for h, v in zip(hashes, vectors, strict=True)}
        if not docs:
            return
        existing = {d["_id"] for d in self.collection.find({"_id": {"$in": list(docs)}}, {"_id": 1})}
        new = [d for i, d in docs.items() if i not in existing]
        for lo in range(0, len(new), 2000):
            self.collection.insert_many(new[lo : lo + 2000], ordered=False)

    def describe(self, descriptor: Descriptor, frames: Sequence[Atoms], hashes: Sequence[str] | None = None,
                 batch: int = 1000) -> np.ndarray:
        """Descriptor matrix of ``frames``, computing (and caching) only the frames not cached yet."""
        hashes = list(hashes) if hashes is not None else [frame_hash(a) for a in frames]
        key = descriptor.key
        cached = self.get_many(key, hashes)
        todo = [i for i, h in enumerate(hashes) if h not in cached]
        self.hits += len(hashes) - len(todo)
        self.misses += len(todo)
        for lo in range(0, len(todo), batch):
            idx = todo[lo : lo + batch]
            vecs = descriptor.compute([frames[i] for i in idx])
            self.put_many(key, [hashes[i] for i in idx], vecs)
            for i, v in zip(idx, vecs, strict=True):
                cached[hashes[i]] = v
        if not hashes:
            return np.zeros((0, 0), dtype=np.float32)
        return np.stack([cached[h] for h in hashes]).astype(np.float32)


def describe_frames(descriptor: Descriptor, frames: Sequence[Atoms], *, cache: DescriptorCache | None = None,
                    hashes: Sequence[str] | None = None) -> np.ndarray:
    """Descriptor matrix of ``frames``, through ``cache`` when given."""
    if cache is None:
        return descriptor.compute(list(frames))
    return cache.describe(descriptor, list(frames), hashes)
