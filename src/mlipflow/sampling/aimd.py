"""AIMD sampling through atomate2's CP2K and VASP MD makers; the DFT-labelled frames go into the dataset.

:class:`AimdMaker` builds, for one structure, one atomate2 MD job per temperature of a ladder (NVT, each rung
optionally starting from the previous rung's final structure), each followed by a small ingest job that
parses the run directory and stores every ``snapshot_every``-th frame (after ``skip_steps`` of
equilibration) as a :class:`~mlipflow.data.LabeledFrame` with provenance ``origin="aimd"``, the temperature
and the MD step.  AIMD frames are labels: give ``labeler`` the same name, version and settings as the static
DFT labeler of the campaign so that they can share a dataset version.

Parsers (usable on any recorded run):

* :func:`read_cp2k_md` - CP2K's ``<project>-pos-1.xyz`` (Å, energies in Hartree in the comment line) and
  ``<project>-frc-1.xyz`` (Hartree/Bohr) plus, when printed, ``<project>-1.cell``;
* :func:`read_vasp_md` - ``vasprun.xml`` through ASE (energy, forces, stress per ionic step).

Known problem handled here: with atomate2 0.1.5 and pymatgen 2026.10, the CP2K ``MDSetGenerator`` leaves the
``THERMOSTAT`` section's ``TYPE`` as a bare string and writing ``cp2k.inp`` fails
(``'str' object has no attribute 'get_str'``); :class:`Cp2kAimdSetGenerator` repairs the section.
"""

from __future__ import annotations

import glob
import gzip
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from ase import Atoms, units
from ase.calculators.singlepoint import SinglePointCalculator
from atomate2.cp2k.sets.core import MDSetGenerator as Cp2kMDSetGenerator
from jobflow import Flow, Maker, job
from pydantic import BaseModel, Field
from pymatgen.core import Structure
from pymatgen.io.ase import AseAtomsAdaptor

from mlipflow.data import Dataset, LabeledFrame, LabelerInfo, Provenance
from mlipflow.errors import ConfigError, DataError
from mlipflow.storage import Stores, get_stores

logger = logging.getLogger(__name__)

HARTREE_PER_BOHR = units.Hartree / units.Bohr  # eV/Å


# -- CP2K input set --------------------------------------------------------------------------------------------


def _cp2k_md_updates(temperature: float, timestep: float, n_steps: int, ensemble: str, thermostat: str) -> dict:
    return {"ensemble": ensemble, "temperature": temperature, "timestep": timestep, "nsteps": n_steps,
            "thermostat": thermostat}


def repair_cp2k_md_section(cp2k_input: Any, snapshot_every: int, thermostat_timecon: float | None = None) -> Any:
    """Make the ``MOTION/MD`` section of a pymatgen ``Cp2kInput`` writable and print every ``snapshot_every`` steps.

    * wraps bare strings in ``MOTION/MD/THERMOSTAT`` into ``Keyword`` objects (pymatgen's ``activate_motion``
      leaves ``TYPE`` as a string);
    * sets ``EACH/MD`` of the trajectory, force, velocity and cell print keys to ``snapshot_every``;
    * sets the Nosé thermostat time constant ``TIMECON`` (fs) when given.
    """
    from pymatgen.io.cp2k.inputs import Keyword, Section

    motion = cp2k_input["MOTION"]
    md = motion["MD"]
    if md.check("THERMOSTAT"):
        thermo = md["THERMOSTAT"]
        for key, value in list(thermo.keywords.items()):
            if not isinstance(value, Keyword) and not hasattr(value, "get_str"):
                thermo.keywords[key] = Keyword(key, value)
        if thermostat_timecon is not None:
            thermo.insert(Section("NOSE", subsections={},
                                  keywords={"TIMECON": Keyword("TIMECON", thermostat_timecon)}))
    printing = motion["PRINT"]
    for name in ("TRAJECTORY", "FORCES", "VELOCITIES", "CELL"):
        if not printing.check(name):
            printing.insert(Section(name, subsections={}))
        printing[name].section_parameters = ["ON"]
        printing[name].insert(Section("EACH", subsections={}, keywords={"MD": Keyword("MD", snapshot_every)}))
    return cp2k_input


@dataclass
class Cp2kAimdSetGenerator(Cp2kMDSetGenerator):
    """atomate2's CP2K ``MDSetGenerator`` with the thermostat repaired and the print stride set.

    Parameters
    ----------
    snapshot_every
        Print positions, forces, velocities and cell every this many MD steps.
    thermostat_timecon
        Nosé-Hoover time constant (fs).
    """

    snapshot_every: int = 10
    thermostat_timecon: float | None = 100.0

    def get_input_set(self, structure: Structure | None = None, prev_dir: Any = None,
                      optional_files: Any = None) -> Any:
        input_set = super().get_input_set(structure, prev_dir, optional_files)
        repair_cp2k_md_section(input_set.cp2k_input, self.snapshot_every, self.thermostat_timecon)
        return input_set


def cp2k_aimd_set_generator(temperature: float, timestep: float, n_steps: int, snapshot_every: int,
                            *, ensemble: str = "NVT", thermostat: str = "NOSE", thermostat_timecon: float = 100.0,
                            user_input_settings: dict | None = None) -> Cp2kAimdSetGenerator:
    """CP2K input-set generator for one rung: ensemble, temperature (K), time step (fs), steps, print stride.

    ``user_input_settings`` (cutoffs, basis, SCF...) are kept; its ``activate_motion`` entries win.
    """
    settings = dict(user_input_settings or {})
    motion = dict(settings.pop("activate_motion", {}) or {})
    settings["activate_motion"] = {**_cp2k_md_updates(temperature, timestep, n_steps, ensemble, thermostat),
                                   **motion}
    return Cp2kAimdSetGenerator(user_input_settings=settings, snapshot_every=snapshot_every,
                                thermostat_timecon=thermostat_timecon)


# -- parsers ---------------------------------------------------------------------------------------------------

_COMMENT = re.compile(r"i\s*=\s*(\d+).*?time\s*=\s*([-\d.Ee+]+).*?E\s*=\s*([-\d.Ee+]+)")


def _open_text(path: Path) -> str:
    if path.suffix == ".gz":
        with gzip.open(path, "rt") as fh:
            return fh.read()
    return path.read_text()


def _find(directory: Path, pattern: str) -> Path | None:
    hits = sorted(glob.glob(str(directory / pattern))) + sorted(glob.glob(str(directory / f"{pattern}.gz")))
    return Path(hits[0]) if hits else None


def _read_cp2k_xyz(path: Path) -> list[tuple[int, float, float, list[str], np.ndarray]]:
    """(step, time fs, energy Hartree, symbols, 3-vectors) per frame of a CP2K xyz print file."""
    lines = _open_text(path).splitlines()
    frames = []
    pos = 0
    while pos < len(lines):
        if not lines[pos].strip():
            pos += 1
            continue
        n = int(lines[pos].split()[0])
        match = _COMMENT.search(lines[pos + 1])
        if match is None:
            raise DataError(f"{path}: unexpected comment line {lines[pos + 1]!r} (not a CP2K MD print file)")
        body = [ln.split() for ln in lines[pos + 2 : pos + 2 + n]]
        if len(body) != n:
            break  # a truncated last frame (run killed while printing)
        symbols = [b[0] for b in body]
        vecs = np.array([[float(x) for x in b[1:4]] for b in body])
        frames.append((int(match.group(1)), float(match.group(2)), float(match.group(3)), symbols, vecs))
        pos += 2 + n
    return frames


def _read_cp2k_cells(path: Path) -> dict[int, np.ndarray]:
    cells = {}
    for line in _open_text(path).splitlines():
        if line.startswith("#") or not line.strip():
            continue
        parts = line.split()
        cells[int(parts[0])] = np.array([float(x) for x in parts[2:11]]).reshape(3, 3)
    return cells


def read_cp2k_md(directory: str | Path, cell: Any = None, pbc: Sequence[bool] | bool = True) -> list[Atoms]:
    """Frames of a CP2K MD run with their DFT energy (eV) and forces (eV/Å).

    Parameters
    ----------
    directory
        The run directory (files may be gzipped, as atomate2 leaves them).
    cell
        Cell (Å) when the run did not print ``*-1.cell`` (NVT: the input cell).
    pbc
        Periodic boundary conditions.

    Returns
    -------
    list of Atoms
        One per printed step, with ``info["md_step"]`` and ``info["time"]`` (fs); only steps printed in both the
        position and the force file.
    """
    directory = Path(directory)
    pos_file, frc_file = _find(directory, "*-pos-1.xyz"), _find(directory, "*-frc-1.xyz")
    if pos_file is None or frc_file is None:
        raise DataError(f"{directory}: no CP2K '*-pos-1.xyz' and '*-frc-1.xyz' files; was MOTION/PRINT set "
                        "(use Cp2kAimdSetGenerator)?")
    cell_file = _find(directory, "*-1.cell")
    cells = _read_cp2k_cells(cell_file) if cell_file is not None else {}
    forces = {f[0]: f for f in _read_cp2k_xyz(frc_file)}
    images = []
    for step, time_fs, energy, symbols, positions in _read_cp2k_xyz(pos_file):
        if step not in forces:
            continue
        frame_cell = cells.get(step, cell)
        if frame_cell is None:
            raise DataError(f"{directory}: no cell for step {step}; pass the input cell")
        atoms = Atoms(symbols=symbols, positions=positions, cell=frame_cell, pbc=pbc)
        atoms.calc = SinglePointCalculator(atoms, energy=energy * units.Hartree,
                                           forces=forces[step][4] * HARTREE_PER_BOHR)
        atoms.info.update(md_step=step, time=time_fs)
        images.append(atoms)
    return images


def read_vasp_md(directory: str | Path) -> list[Atoms]:
    """Frames of a VASP MD run (``vasprun.xml``, possibly gzipped) with energy, forces and stress, via ASE."""
    from ase.io import read

    directory = Path(directory)
    path = _find(directory, "vasprun.xml")
    if path is None:
        raise DataError(f"{directory}: no vasprun.xml")
    images = read(str(path), index=":", format="vasp-xml")
    for step, atoms in enumerate(images):
        atoms.info.update(md_step=step)
    return images


# -- ingest ----------------------------------------------------------------------------------------------------


class AimdIngestSummary(BaseModel):
    """What an ingest did: frames read, frames stored (ids), frames already present."""

    directory: str
    temperature: float
    n_read: int
    frame_ids: list[str] = Field(default_factory=list)
    n_inserted: int = 0
    n_existing: int = 0


def ingest_aimd_frames(
    images: Sequence[Atoms],
    labeler: LabelerInfo,
    *,
    stores: Stores | None = None,
    temperature: float | None = None,
    snapshot_every: int = 1,
    skip_steps: int = 0,
    family: str | None = None,
    campaign: str | None = None,
    iteration: int | None = None,
    source: str | None = None,
) -> tuple[list[str], int, int]:
    """Store AIMD frames (labelled by the DFT run itself) in the dataset.

    Parameters
    ----------
    images
        Frames with energy (eV), forces (eV/Å) and optionally stress on their calculator and ``info["md_step"]``.
    labeler
        Who labelled them (the DFT settings of the run).
    stores
        Default: from the settings.
    temperature
        Target temperature (K), kept in provenance.
    snapshot_every
        Keep frames whose MD step is a multiple of this.
    skip_steps
        Drop frames before this MD step (equilibration).
    family, campaign, iteration
        Provenance.
    source
        Run directory or file, kept in provenance.

    Returns
    -------
    frame_ids, n_inserted, n_existing
    """
    stores = stores or get_stores()
    frames = []
    for index, atoms in enumerate(images):
        step = int(atoms.info.get("md_step", index))
        if step < skip_steps or step % snapshot_every:
            continue
        stress = None
        try:
            stress = atoms.get_stress(voigt=False)
        except Exception:  # no stress printed (CP2K NVT by default)
            stress = None
        prov = Provenance(origin="aimd", family=family, config_type=family or "aimd", campaign=campaign,
                          iteration=iteration, temperature=temperature, md_step=step, source=source,
                          source_index=index)
        frames.append(LabeledFrame.from_atoms(atoms, labeler, energy=atoms.get_potential_energy(),
                                              forces=atoms.get_forces(), stress=stress, provenance=prov))
    result = Dataset(stores).add_frames(frames)
    ids = [f.content_hash for f in frames]
    logger.info("AIMD %s at %s K: %d frames read, %d kept, %d new", source, temperature, len(images), len(ids),
                len(result.inserted))
    return ids, len(result.inserted), len(result.existing)


@job
def ingest_aimd_run(
    dir_name: str,
    code: str,
    labeler: LabelerInfo,
    structure: Structure,
    temperature: float,
    snapshot_every: int = 1,
    skip_steps: int = 0,
    family: str | None = None,
    campaign: str | None = None,
    iteration: int | None = None,
) -> AimdIngestSummary:
    """Job: parse a finished atomate2 MD directory and store its frames (see :func:`ingest_aimd_frames`)."""
    directory = str(dir_name).split(":", 1)[-1]  # atomate2 dir_name is "host:/path"
    if code == "cp2k":
        atoms0 = AseAtomsAdaptor.get_atoms(structure)
        images = read_cp2k_md(directory, cell=atoms0.cell.array, pbc=atoms0.pbc)
    else:
        images = read_vasp_md(directory)
    ids, inserted, existing = ingest_aimd_frames(
        images, labeler, temperature=temperature, snapshot_every=snapshot_every, skip_steps=skip_steps,
        family=family, campaign=campaign, iteration=iteration, source=directory)
    return AimdIngestSummary(directory=directory, temperature=temperature, n_read=len(images), frame_ids=ids,
                             n_inserted=inserted, n_existing=existing)


@dataclass
class AimdMaker(Maker):
    """AIMD along a temperature ladder with atomate2's CP2K or VASP MD makers; frames go into the dataset.

    Parameters
    ----------
    name
        Flow name.
    code
        ``cp2k`` or ``vasp``.
    temperatures
        The ladder (K): one NVT run per temperature.
    timestep
        Time step (fs).
    n_steps
        MD steps per rung.
    snapshot_every
        Keep (and, for CP2K, print) every this many steps.
    skip_steps
        Equilibration steps dropped at the start of each rung.
    chain
        Start each rung from the previous rung's final structure.
    labeler
        The static DFT labeler these runs stand for: the frames are labeled ``<its name>-aimd`` with its
        settings plus the MD input set's (:meth:`frame_labeler`); default ``<code>-aimd``.  AIMD frames never
        join a dataset version of static labels: their physics differs.
    input_settings
        CP2K ``user_input_settings`` or VASP ``user_incar_settings`` applied to every rung (cutoffs, basis...).
    thermostat_timecon
        CP2K Nosé-Hoover time constant (fs).
    family, campaign, iteration
        Provenance of the frames.
    """

    name: str = "aimd"
    code: Literal["cp2k", "vasp"] = "cp2k"
    temperatures: list[float] = field(default_factory=lambda: [1000.0])
    timestep: float = 1.0
    n_steps: int = 1000
    snapshot_every: int = 10
    skip_steps: int = 0
    chain: bool = True
    labeler: LabelerInfo | None = None
    input_settings: dict[str, Any] = field(default_factory=dict)
    thermostat_timecon: float = 100.0
    family: str | None = None
    campaign: str | None = None
    iteration: int | None = None

    def __post_init__(self) -> None:
        if self.code not in ("cp2k", "vasp"):
            raise ConfigError(f"AimdMaker code must be 'cp2k' or 'vasp', got {self.code!r}")
        if not self.temperatures:
            raise ConfigError("AimdMaker needs at least one temperature (K)")
        if self.snapshot_every < 1 or self.n_steps < 1 or self.timestep <= 0:
            raise ConfigError("AimdMaker: snapshot_every and n_steps must be >= 1 and timestep > 0 fs")

    def md_settings(self) -> dict[str, Any]:
        """What the MD's labels are computed with: atomate2's MD input set, its version and the settings given.

        atomate2's MD sets differ from the static labelers' in physics (VASP MD: ``PREC = Normal``,
        ``ISPIN = 1``, looser ``EDIFF``; CP2K MD: atomate2's base set, not the labeler's), so these are
        part of the frames' labeler identity.
        """
        import atomate2

        md: dict[str, Any] = {
            "input_set": f"atomate2.{self.code}.sets.core.MDSetGenerator", "atomate2": atomate2.__version__,
            "input_settings": dict(self.input_settings), "ensemble": "nvt", "timestep_fs": self.timestep,
        }  # fmt: skip
        if self.code == "cp2k":
            md["thermostat_timecon_fs"] = self.thermostat_timecon
        return md

    def frame_labeler(self) -> LabelerInfo:
        """The labeler recorded on the frames: ``<name>-aimd`` with the MD settings (:meth:`md_settings`).

        Never the static labeler itself: frames of an MD input set never share a labeler hash (and so a
        dataset version) with static labels.  With ``labeler`` given, its name, kind, version and settings are
        kept and the MD settings added under ``md``.
        """
        md = self.md_settings()
        if self.labeler is not None:
            base = self.labeler
            return LabelerInfo(name=f"{base.name}-aimd", kind=base.kind, version=base.version,
                               settings={**base.settings, "md": md})
        return LabelerInfo(name=f"{self.code}-aimd", kind="dft", settings={"code": self.code, "md": md})

    def md_maker(self, temperature: float) -> Maker:
        """The atomate2 MD maker of one rung (K)."""
        if self.code == "cp2k":
            from atomate2.cp2k.jobs.core import MDMaker

            generator = cp2k_aimd_set_generator(temperature, self.timestep, self.n_steps, self.snapshot_every,
                                                thermostat_timecon=self.thermostat_timecon,
                                                user_input_settings=self.input_settings)
            return MDMaker(name=f"{self.name} cp2k md {temperature:g} K", input_set_generator=generator)
        from atomate2.vasp.jobs.md import MDMaker
        from atomate2.vasp.sets.core import MDSetGenerator

        incar = {"NBLOCK": self.snapshot_every, **self.input_settings}
        generator = MDSetGenerator(ensemble="nvt", start_temp=temperature, end_temp=temperature,
                                   nsteps=self.n_steps, time_step=self.timestep, user_incar_settings=incar)
        return MDMaker(name=f"{self.name} vasp md {temperature:g} K", input_set_generator=generator)

    def make(self, structure: Structure, prev_dir: str | Path | None = None) -> Flow:
        """Build the flow: per rung, an MD job then an ingest job; output: the ingest summaries."""
        family = self.family or ((structure.properties or {}).get("provenance") or {}).get("family")
        jobs = []
        outputs = []
        current: Any = structure
        for temperature in self.temperatures:
            md_job = self.md_maker(temperature).make(current, prev_dir=prev_dir)
            ingest = ingest_aimd_run(md_job.output.dir_name, self.code, self.frame_labeler(), structure,
                                     temperature, snapshot_every=self.snapshot_every, skip_steps=self.skip_steps,
                                     family=family, campaign=self.campaign, iteration=self.iteration)
            ingest.name = f"{self.name} ingest {temperature:g} K"
            jobs += [md_job, ingest]
            outputs.append(ingest.output)
            if self.chain:
                current = md_job.output.structure
        return Flow(jobs, output=outputs, name=self.name)
