"""The model registry: every trained model stored once, with what made it and how good it is.

A model's ``.model`` file (and its TorchScript-compiled twin when mace-torch wrote one) goes into the
large-data store (GridFS bucket ``stores.blobs``) under its SHA-256 checksum; the ``models`` collection holds
one small document per model: id, kind, checksum, hyper-parameters, dataset version, E0s and where they
came from, per-epoch curves, final errors per split and config type, wall time, device, versions, and for
fine-tuned models the foundation and the forgetting measurement.  A committee is a document listing its
member ids.  Registering the same file twice returns the first record.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from mlipflow.data.frames import utcnow
from mlipflow.errors import StorageError, TrainingError
from mlipflow.storage import Stores

logger = logging.getLogger(__name__)

ModelKind = Literal["mace", "finetune", "committee"]
FILE_ROLES = ("model", "compiled")


def sha256_file(path: str | Path) -> str:
    """SHA-256 hex digest of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class StoredFile(BaseModel):
    """A file in the large-data store: GridFS id, checksum (SHA-256), size (bytes), original name."""

    blob_id: Any
    checksum: str
    size: int
    filename: str


class ModelRecord(BaseModel):
    """One registered model (or committee).

    Parameters
    ----------
    id
        ``<name>-<first 12 hex digits of the model file's SHA-256>`` (committees: of the member ids).
    kind
        ``mace`` (trained from scratch), ``finetune`` (from a foundation model) or ``committee``.
    checksum
        SHA-256 of the ``.model`` file.
    files
        Stored files by role: ``model`` (mace-torch ``.model``) and ``compiled`` (TorchScript, if any).
    hyperparams
        :class:`~mlipflow.training.hyperparams.MaceHyperParams` as a dict.
    dataset_version
        Dataset version id the model was trained on.
    e0s, e0s_source
        Isolated-atom energies used (element symbol -> eV) and where they came from
        (``labeler``, ``least-squares`` or ``foundation``).
    curves
        :class:`~mlipflow.training.curves.TrainingCurves` as a dict.
    errors
        Final errors: split -> config type -> {``rmse_e_per_atom`` eV/atom, ``rmse_f`` eV/Å, ``n_frames``}.
    wall_time
        Training wall time (s), summed over restarts.
    device
        ``cpu`` or ``cuda``.
    heads
        Heads of the model (``["Default"]``, or ``["pt_head", "Default"]`` after multi-head fine-tuning).
    members
        Member model ids (committees only).
    kept_epoch, kept_rule
        The epoch (0-based) whose weights the model file holds, and how it was chosen (the lowest validation
        loss of the final stage; mace-torch itself keeps the last epoch when every checkpoint is saved).
    warm_start
        Id of the model whose weights the training started from (warm start of an active-learning
        iteration), if any.
    extra
        Anything else (foundation, forgetting, run key, versions, bootstrap seed).
    """

    id: str
    name: str
    kind: ModelKind
    checksum: str
    files: dict[str, StoredFile] = Field(default_factory=dict)
    hyperparams: dict[str, Any] = Field(default_factory=dict)
    dataset_version: str | None = None
    e0s: dict[str, float] = Field(default_factory=dict)
    e0s_source: str | None = None
    curves: dict[str, Any] = Field(default_factory=dict)
    errors: dict[str, dict[str, dict[str, float]]] = Field(default_factory=dict)
    wall_time: float | None = None
    device: str | None = None
    heads: list[str] = Field(default_factory=list)
    members: list[str] = Field(default_factory=list)
    kept_epoch: int | None = None
    kept_rule: str = ""
    warm_start: str | None = None
    run_key: str | None = None
    extra: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime = Field(default_factory=utcnow)

    def summary(self) -> dict[str, Any]:
        """A one-line summary (for ``mlipflow models list``); errors on the valid split in meV."""
        valid = self.errors.get("valid", {}).get("all", {})
        return {
            "id": self.id,
            "kind": self.kind,
            "dataset": self.dataset_version,
            "valid_rmse_e_meV_atom": None if "rmse_e_per_atom" not in valid else 1e3 * valid["rmse_e_per_atom"],
            "valid_rmse_f_meV_A": None if "rmse_f" not in valid else 1e3 * valid["rmse_f"],
            "epochs": (self.hyperparams or {}).get("max_num_epochs"),
            "wall_time_s": self.wall_time,
            "device": self.device,
            "created_at": self.created_at,
        }


class ModelRegistry:
    """Register, find and export models of one store.

    Parameters
    ----------
    stores
        From :func:`mlipflow.storage.get_stores`.
    """

    def __init__(self, stores: Stores) -> None:
        self.stores = stores
        self.collection = stores.models
        self.collection.create_index("checksum")
        self.collection.create_index("run_key")
        self.cache_dir = stores.settings.home / "models"

    # -- writing -----------------------------------------------------------------------------
    def _put_file(self, path: Path, role: str, checksum: str | None = None) -> StoredFile:
        checksum = checksum or sha256_file(path)
        existing = self.stores.blobs.find_one({"metadata.checksum": checksum})
        if existing is not None:
            return StoredFile(blob_id=existing._id, checksum=checksum, size=existing.length, filename=path.name)
        with open(path, "rb") as fh:
            blob_id = self.stores.blobs.put(fh, filename=path.name, metadata={"checksum": checksum, "role": role})
        return StoredFile(blob_id=blob_id, checksum=checksum, size=path.stat().st_size, filename=path.name)

    def register(
        self,
        model_path: str | Path,
        *,
        name: str,
        kind: ModelKind = "mace",
        compiled_path: str | Path | None = None,
        **fields: Any,
    ) -> ModelRecord:
        """Store a ``.model`` file once and record its metadata; return the (new or existing) record.

        Parameters
        ----------
        model_path
            mace-torch ``.model`` file.
        name
            Human name (prefix of the id).
        kind
            ``mace`` or ``finetune``.
        compiled_path
            TorchScript file written by mace-torch next to the model (optional).
        **fields
            Further :class:`ModelRecord` fields (hyperparams, dataset_version, curves, errors, ...).
        """
        model_path = Path(model_path)
        if not model_path.is_file():
            raise TrainingError(f"cannot register {model_path}: no such model file")
        checksum = sha256_file(model_path)
        existing = self.collection.find_one({"checksum": checksum, "kind": {"$ne": "committee"}})
        if existing is not None:
            logger.info("model %s is already registered (same checksum)", existing["_id"])
            return self._record(existing)
        files = {"model": self._put_file(model_path, "model", checksum)}
        if compiled_path is not None and Path(compiled_path).is_file():
            files["compiled"] = self._put_file(Path(compiled_path), "compiled")
        record = ModelRecord(id=f"{name}-{checksum[:12]}", name=name, kind=kind, checksum=checksum, files=files,
                             **fields)
        self.collection.insert_one(self._document(record))
        logger.info("registered model %s (%s, %.1f kB)", record.id, kind, files["model"].size / 1e3)
        return record

    def register_committee(self, member_ids: list[str], *, name: str, **fields: Any) -> ModelRecord:
        """Record a committee of registered models (no file of its own); return its record.

        Raises
        ------
        TrainingError
            When the members were trained on different dataset versions, or not on the ``dataset_version``
            given for the committee: a committee's record names the one version all its members learned.
        """
        members = [self.get(m) for m in member_ids]
        versions = {m.dataset_version for m in members} | ({fields["dataset_version"]} if "dataset_version" in fields
                                                           else set())
        if len(versions) > 1:
            trained = ", ".join(f"{m.id} on {m.dataset_version}" for m in members)
            raise TrainingError(f"committee {name!r} would mix dataset versions ({trained}"
                                + (f"; committee: {fields['dataset_version']}" if "dataset_version" in fields else "")
                                + "): its members must all be trained on its own dataset version")
        checksum = hashlib.sha256("\n".join(m.checksum for m in members).encode()).hexdigest()
        existing = self.collection.find_one({"checksum": checksum, "kind": "committee"})
        if existing is not None:
            return self._record(existing)
        first = members[0]
        fields.setdefault("dataset_version", first.dataset_version)
        fields.setdefault("hyperparams", first.hyperparams)
        fields.setdefault("device", first.device)
        fields.setdefault("heads", first.heads)
        fields.setdefault("wall_time", sum(m.wall_time or 0.0 for m in members))
        record = ModelRecord(id=f"{name}-{checksum[:12]}", name=name, kind="committee", checksum=checksum,
                             members=[m.id for m in members], **fields)
        self.collection.insert_one(self._document(record))
        logger.info("registered committee %s of %d models", record.id, len(members))
        return record

    @staticmethod
    def _document(record: ModelRecord) -> dict[str, Any]:
        doc = record.model_dump(exclude={"id", "files"})
        doc["files"] = {role: f.model_dump() for role, f in record.files.items()}
        doc["_id"] = record.id
        return doc

    @staticmethod
    def _record(doc: dict[str, Any]) -> ModelRecord:
        return ModelRecord(**{k: v for k, v in doc.items() if k != "_id"}, id=doc["_id"])

    # -- reading -----------------------------------------------------------------------------
    def get(self, model_id: str) -> ModelRecord:
        """Return a record by id (or by unique id prefix); raise :class:`StorageError` if unknown."""
        doc = self.collection.find_one({"_id": model_id})
        if doc is None:
            matches = [d for d in self.collection.find({}) if str(d["_id"]).startswith(model_id)]
            if len(matches) == 1:
                doc = matches[0]
            elif len(matches) > 1:
                raise StorageError(f"model id {model_id!r} is ambiguous: {[d['_id'] for d in matches][:5]}")
        if doc is None:
            raise StorageError(f"no model {model_id!r} in the registry (see `mlipflow models list`)")
        return self._record(doc)

    def find_by_run_key(self, run_key: str) -> ModelRecord | None:
        """The model a training run with this key already registered, if any."""
        doc = self.collection.find_one({"run_key": run_key})
        return None if doc is None else self._record(doc)

    def list(self, kind: ModelKind | None = None, dataset_version: str | None = None) -> list[ModelRecord]:
        """Records in registration order, optionally of one kind or one dataset version."""
        query: dict[str, Any] = {}
        if kind:
            query["kind"] = kind
        if dataset_version:
            query["dataset_version"] = dataset_version
        return [self._record(d) for d in self.collection.find(query).sort("created_at", 1)]

    def _write_blob(self, stored: StoredFile, dest: Path) -> Path:
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(dest.name + ".part")
        digest = hashlib.sha256()
        with open(tmp, "wb") as out:
            grid_out = self.stores.blobs.get(stored.blob_id)
            for chunk in iter(lambda: grid_out.read(1 << 20), b""):
                digest.update(chunk)
                out.write(chunk)
        if digest.hexdigest() != stored.checksum:
            tmp.unlink(missing_ok=True)
            raise StorageError(f"stored file {stored.filename} is corrupt: checksum mismatch")
        tmp.replace(dest)
        return dest

    def model_file(self, model_id: str, role: str = "model") -> Path:
        """Path of a model's file in the local cache (``MLIPFLOW_HOME/models``), fetched and verified once."""
        record = self.get(model_id)
        if record.kind == "committee":
            raise TrainingError(f"{model_id} is a committee; use member_files() or CommitteeCalculator")
        if role not in record.files:
            raise StorageError(f"model {record.id} has no {role!r} file (has {sorted(record.files)})")
        stored = record.files[role]
        suffix = ".model" if role == "model" else f"_{role}.model"
        dest = self.cache_dir / f"{record.id}{suffix}"
        if dest.is_file() and dest.stat().st_size == stored.size and sha256_file(dest) == stored.checksum:
            return dest
        return self._write_blob(stored, dest)

    def member_files(self, model_id: str) -> list[Path]:
        """Model files of a committee's members (or the one file of a single model)."""
        record = self.get(model_id)
        ids = record.members if record.kind == "committee" else [record.id]
        return [self.model_file(i) for i in ids]

    def export(self, model_id: str, dest: str | Path, *, lammps: bool = False, head: str | None = None) -> list[Path]:
        """Copy a model's files to ``dest`` (a directory); return the written paths.

        Writes ``<id>.model`` and, when stored, ``<id>_compiled.model`` (TorchScript).  With ``lammps``,
        also runs mace-torch's ``create_lammps_model`` (float64, ``head`` or the last head) which writes
        ``<id>.model-lammps.pt`` for LAMMPS' ``pair_style mace``.  A committee exports every member.
        """
        dest = Path(dest)
        dest.mkdir(parents=True, exist_ok=True)
        record = self.get(model_id)
        if record.kind == "committee":
            written: list[Path] = []
            for member in record.members:
                written += self.export(member, dest, lammps=lammps, head=head)
            return written
        written = []
        for role in FILE_ROLES:
            if role in record.files:
                target = dest / (f"{record.id}.model" if role == "model" else f"{record.id}_{role}.model")
                shutil.copyfile(self.model_file(record.id, role), target)
                written.append(target)
        if lammps:
            written.append(make_lammps_model(written[0], head=head or (record.heads[-1] if record.heads else None)))
        return written


def make_lammps_model(model_path: Path, head: str | None = None, dtype: str = "float64") -> Path:
    """Run mace-torch's ``create_lammps_model`` on a ``.model`` file; return the ``-lammps.pt`` path."""
    cmd = [sys.executable, "-m", "mace.cli.create_lammps_model", str(model_path), "--dtype", dtype]
    if head:
        cmd += ["--head", head]
    proc = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False)
    out = Path(str(model_path) + "-lammps.pt")
    if proc.returncode != 0 or not out.is_file():
        raise TrainingError(f"mace create_lammps_model failed on {model_path}: {proc.stderr.strip()[-800:]}")
    return out
