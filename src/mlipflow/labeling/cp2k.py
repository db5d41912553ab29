"""CP2K labeler: atomate2's CP2K static input set and custodian run, light but stated settings.

Physics (all part of the labeler settings, hence of every frame id): PBE, GTH pseudopotentials, the
``DZVP-MOLOPT-SR-GTH`` basis, a plane-wave cutoff of 400 Ry (relative cutoff 50 Ry).  Per frame, by the
rules of :mod:`mlipflow.labeling.electronic` (the rule set is in the settings; its result follows from the
frame's structure and charge, both in the frame id):

* ``CHARGE`` from the structure's charge (set from the provenance's ``net_charge``), ``MULTIPLICITY`` the
  lowest one the electron count allows (Hund's rule for an isolated atom), unrestricted Kohn–Sham (``UKS``)
  whenever it is above 1 or ``spin_polarized``;
* a k-point mesh from ``kspacing``: CP2K's Monkhorst-Pack scheme, Γ-centred for odd ``n``, reduced by time
  reversal only (Γ only when the mesh is 1x1x1; ``kpoints="gamma"`` refuses cells that need more unless
  ``allow_small_gamma``);
* Γ-only gapped systems: orbital transformation (OT) with the ``FULL_ALL`` preconditioner
  (``FULL_SINGLE_INVERSE`` stalled 10 eV above the ground state on Li2O here), no smearing;
* k-point meshes, metals (every element a metal; not a free atom) and cells with a +U element:
  diagonalisation with Broyden mixing and Fermi–Dirac smearing at ``electronic_temperature`` (500 K,
  0.043 eV);
* Hubbard +U (Dudarev, ``U_MINUS_J`` on the d states, Mulliken projection) with the Materials Project values
  of :data:`~mlipflow.labeling.vasp.DEFAULT_HUBBARD_U` on Co, Cr, Fe, Mn, Mo, Ni, V, W, and their Materials
  Project initial moments.  These U values were fitted for VASP's PAW projectors; with CP2K's Mulliken
  projector they are a stated choice, not a transferred calibration.

How it runs: atomate2's :class:`~atomate2.cp2k.sets.core.StaticSetGenerator` writes the input (with the
BASIS and POTENTIAL files), atomate2's :func:`~atomate2.cp2k.run.run_cp2k` runs ``cp2k.psmp`` under custodian
with every handler inside a :class:`~mlipflow.labeling.consistency.LabelConsistencyGuard`, and the output is
parsed with pymatgen's :class:`~pymatgen.io.cp2k.outputs.Cp2kOutput`.  atomate2's own task document is not
used: with atomate2 0.1.5 and Debian's CP2K 2023.1 ``TaskDocument.from_directory`` fails in
``CalculationInput.cleanup_dft`` (it calls ``.upper()`` on the integer ``Multiplicity`` that pymatgen parses).

Environment (see ``scripts/setup_cp2k.sh``): ``cp2k.psmp`` on the path (``apt-get install cp2k``), a pymatgen
CP2K data directory (``PMG_CP2K_DATA_DIR``), and as root ``mpirun --allow-run-as-root``; OpenMPI needs the
loopback interface up.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from ase import units
from monty.serialization import loadfn
from pymatgen.core import Element, Structure

from mlipflow.data import LabelerInfo
from mlipflow.errors import ConfigError, LabelingError
from mlipflow.labeling.base import Labeler, LabelResult
from mlipflow.labeling.consistency import corrections_from_custodian, guard_handlers
from mlipflow.labeling.electronic import RULES_VERSION, ElectronicState, electronic_state

logger = logging.getLogger(__name__)

#: GTH-PBE valence charges of the elements of battery materials (the ``-qN`` of the potential's name)
GTH_VALENCE: dict[str, int] = {
    "H": 1, "Li": 3, "Be": 4, "B": 3, "C": 4, "N": 5, "O": 6, "F": 7, "Na": 9, "Mg": 10, "Al": 3, "Si": 4,
    "P": 5, "S": 6, "Cl": 7, "K": 9, "Ca": 10, "Ti": 12, "V": 13, "Cr": 14, "Mn": 15, "Fe": 16, "Co": 17,
    "Ni": 18, "Cu": 11, "Zn": 12, "Ge": 4, "Zr": 12, "Nb": 13, "La": 11, "Ta": 13, "Sn": 4,
}  # fmt: skip

DEFAULT_DATA_DIR = (
    Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share")) / "mlipflow" / "pmg_cp2k_data"
)
HARTREE_BOHR_TO_EV_ANG = units.Hartree / units.Bohr


def default_cp2k_cmd() -> str:
    """``ATOMATE2_CP2K_CMD`` if set, else ``mpirun -np 1 cp2k.psmp`` (``--allow-run-as-root`` as root)."""
    if os.environ.get("ATOMATE2_CP2K_CMD"):
        return os.environ["ATOMATE2_CP2K_CMD"]
    root = " --allow-run-as-root" if hasattr(os, "geteuid") and os.geteuid() == 0 else ""
    return f"mpirun{root} -np 1 cp2k.psmp"


def cp2k_version(cmd: str = "cp2k.psmp") -> str | None:
    """Version of the CP2K binary (``2023.1``), or None if it is not installed."""
    import subprocess

    exe = shutil.which(cmd)
    if exe is None:
        return None
    try:
        out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r"CP2K version ([\w.]+)", out)
    return match.group(1) if match else None


def missing_executables(cmd: str, code_hint: str) -> list[str]:
    """Programs of a launch command (``mpirun -np 2 cp2k.psmp``) that are not on the PATH.

    The launcher (first word) and the first word that contains ``code_hint`` are checked.
    """
    import shlex

    words = shlex.split(cmd)
    wanted = [words[0]] if words else []
    wanted += [w for w in words[1:] if code_hint in os.path.basename(w).lower()][:1]
    return [w for w in dict.fromkeys(wanted) if shutil.which(w) is None]


def check_cp2k(cmd: str | None = None, data_dir: str | Path | None = None, elements: Iterable[str] = ()) -> str:
    """Check that CP2K can run here; return a one-line description of what will run.

    Raises
    ------
    ConfigError
        When the CP2K binary or launcher is not on the PATH, or pymatgen's CP2K data directory (or an
        element's file in it) is missing; the message says what to install or set.
    """
    cmd = cmd or default_cp2k_cmd()
    missing = missing_executables(cmd, "cp2k")
    if missing:
        raise ConfigError(
            f"CP2K labeler: {', '.join(missing)} not found on the PATH (command {cmd!r}): install CP2K "
            "(`apt-get install cp2k`, or scripts/setup_system.sh) or set ATOMATE2_CP2K_CMD to a working command"
        )
    path = ensure_pmg_cp2k_settings(data_dir)
    absent = sorted(el for el in set(elements) if not (path / el).is_file())
    if absent:
        raise ConfigError(f"CP2K labeler: no pymatgen CP2K data for {absent} in {path}: re-run scripts/setup_cp2k.sh")
    return f"{cmd} (data {path})"


def ensure_pmg_cp2k_settings(data_dir: str | Path | None = None) -> Path:
    """Point pymatgen at a CP2K data directory and PBE defaults, without overriding what the user set.

    pymatgen reads ``PMG_CP2K_DATA_DIR`` when it is imported; this sets its settings at run time too,
    so a worker started without the variable still finds the directory made by ``scripts/setup_cp2k.sh``.
    """
    from pymatgen.core import SETTINGS

    path = Path(
        data_dir
        or os.environ.get("PMG_CP2K_DATA_DIR")
        or SETTINGS.get("PMG_CP2K_DATA_DIR")
        or DEFAULT_DATA_DIR
    )
    if not (path / "Li").is_file():
        raise ConfigError(
            f"no pymatgen CP2K data directory at {path}: run scripts/setup_cp2k.sh (or `pmg config --cp2k "
            "/usr/share/cp2k <dir>`) and set PMG_CP2K_DATA_DIR"
        )
    SETTINGS["PMG_CP2K_DATA_DIR"] = str(path)
    SETTINGS.setdefault("PMG_DEFAULT_CP2K_FUNCTIONAL", "PBE")
    return path


@dataclass
class Cp2kLabeler(Labeler):
    """Single points with CP2K (PBE, GTH, DZVP-MOLOPT-SR-GTH; charge, spin, k-points per frame) via atomate2.

    Parameters
    ----------
    cutoff
        Plane-wave cutoff of the finest grid (Ry).
    rel_cutoff
        Relative cutoff that maps Gaussians to grids (Ry).
    basis
        Basis set name for every element.
    spin_polarized
        Unrestricted Kohn–Sham (needed for open-shell transition metals).
    eps_scf
        SCF convergence threshold (Hartree, CP2K's unit).
    eps_default
        CP2K's ``EPS_DEFAULT`` (integral screening).
    max_scf
        Inner OT steps per outer SCF loop.
    valence
        GTH valence charge per element (defaults: :data:`GTH_VALENCE`).
    cp2k_cmd
        Command that runs CP2K (default :func:`default_cp2k_cmd`).
    max_errors
        Custodian corrections allowed per calculation.
    data_dir
        pymatgen CP2K data directory (default ``PMG_CP2K_DATA_DIR``).
    input_overrides
        Extra settings for atomate2's generator (``user_input_settings``): they join the labeler settings.
    kpoints
        ``auto`` (mesh from ``kspacing``) or ``gamma`` (Γ only; refused for cells needing more points).
    kspacing
        Reciprocal spacing of the k-point mesh (Å⁻¹, 2π included).
    vacuum_gap
        Empty space (Å) along an axis above which that axis gets one k-point.
    allow_small_gamma
        With ``kpoints="gamma"``: accept Γ only for cells that the mesh rule would sample more finely.
    hubbard_u
        U_eff (eV) per element on the d states (default :data:`~mlipflow.labeling.vasp.DEFAULT_HUBBARD_U`;
        ``{}`` switches +U off).
    electronic_temperature
        Fermi–Dirac smearing temperature where smearing is used (K).
    """

    cutoff: float = 400.0
    rel_cutoff: float = 50.0
    basis: str = "DZVP-MOLOPT-SR-GTH"
    spin_polarized: bool = False
    eps_scf: float = 1e-7
    eps_default: float = 1e-10
    max_scf: int = 50
    valence: dict[str, int] = field(default_factory=dict)
    cp2k_cmd: str | None = None
    max_errors: int = 5
    data_dir: str | None = None
    input_overrides: dict[str, Any] = field(default_factory=dict)
    kpoints: str = "auto"
    kspacing: float = 0.5
    vacuum_gap: float = 4.0
    allow_small_gamma: bool = False
    hubbard_u: dict[str, float] | None = None
    electronic_temperature: float = 500.0

    needs_workdir = True
    uses_charge = True

    def __post_init__(self) -> None:
        self._version: str | None = None

    # -- identity --------------------------------------------------------------------------------
    @property
    def info(self) -> LabelerInfo:
        settings = {
            "code": "cp2k",
            "functional": "PBE",
            "pseudopotentials": "GTH-PBE",
            "valence": {**GTH_VALENCE, **self.valence} if self.valence else "GTH_VALENCE",
            "basis": self.basis,
            "cutoff_ry": self.cutoff,
            "rel_cutoff_ry": self.rel_cutoff,
            "kpoints": {
                "mode": self.kpoints, "kspacing_inv_ang": self.kspacing, "vacuum_gap_ang": self.vacuum_gap,
                "allow_small_gamma": self.allow_small_gamma,
            },
            "spin_polarized": self.spin_polarized,
            "charge_and_spin": f"mlipflow.labeling.electronic rules v{RULES_VERSION}",
            "smearing": {
                "when": "k-point mesh, metal or +U element", "kind": "fermi_dirac",
                "electronic_temperature_k": self.electronic_temperature,
            },
            "hubbard_u": {"type": "dudarev", "l": 2, "projection": "mulliken", "u_eff_ev": self.u_values,
                          "initial_moments": "materials project"},
            "eps_scf": self.eps_scf,
            "eps_default": self.eps_default,
            "overrides": self.input_overrides,
        }
        if self._version is None:  # asked once: the version is part of every frame id, it must not drift
            self._version = cp2k_version() or "unknown"
        return LabelerInfo(name="cp2k-pbe", kind="dft", version=self._version, settings=settings)

    @property
    def u_values(self) -> dict[str, float]:
        from mlipflow.labeling.vasp import DEFAULT_HUBBARD_U

        return dict(DEFAULT_HUBBARD_U if self.hubbard_u is None else self.hubbard_u)

    def electronic_state(self, structure: Structure) -> ElectronicState:
        """Charge, multiplicity, spin and k-point mesh of one frame (see :mod:`mlipflow.labeling.electronic`)."""
        return electronic_state(
            structure,
            valence={**GTH_VALENCE, **self.valence},
            spin_polarized=self.spin_polarized,
            kpoints=self.kpoints,
            kspacing=self.kspacing,
            vacuum_gap=self.vacuum_gap,
            allow_small_gamma=self.allow_small_gamma,
        )

    def preflight(self, elements: Iterable[str] = ()) -> None:
        """Check the CP2K command, MPI launcher and pymatgen CP2K data (see :func:`check_cp2k`)."""
        check_cp2k(self.cp2k_cmd or default_cp2k_cmd(), self.data_dir, elements)

    def setup(self) -> None:
        ensure_pmg_cp2k_settings(self.data_dir)
        exe = shutil.which("cp2k.psmp")
        if exe is None:
            raise LabelingError(
                "cp2k.psmp is not installed: run scripts/setup_cp2k.sh (apt-get install cp2k)"
            )

    # -- input -----------------------------------------------------------------------------------
    def input_set_generator(self, structure: Structure) -> Any:
        """atomate2's static CP2K input generator with these settings for the elements of ``structure``."""
        from atomate2.cp2k.sets.core import StaticSetGenerator

        valence = {**GTH_VALENCE, **self.valence}
        missing = [el for el in structure.symbol_set if el not in valence]
        if missing:
            raise ConfigError(f"Cp2kLabeler: no GTH valence known for {missing}: give valence={{'X': q}}")
        basis_and_potential = {
            el: {"basis": self.basis, "potential": f"GTH-PBE-q{valence[el]}"} for el in structure.symbol_set
        }
        state = self.electronic_state(structure)
        plus_u = sorted(el for el in structure.symbol_set if el in self.u_values)
        isolated = len(structure) == 1 and state.gamma_only  # a free atom: integer occupations, OT
        metal = all(Element(el).is_metal for el in structure.symbol_set) and not isolated
        diagonalize = not state.gamma_only or bool(plus_u) or metal
        settings = {
            "basis_and_potential": basis_and_potential,
            "cutoff": self.cutoff,
            "rel_cutoff": self.rel_cutoff,
            "spin_polarized": state.unrestricted,
            "multiplicity": state.multiplicity,
            "ot": not diagonalize,
            "smearing": diagonalize,
            "elec_temp": self.electronic_temperature,
            "element_defaults": {el: {"magnetization": _initial_moment(el)} for el in plus_u},
            "minimizer": "DIIS",
            "preconditioner": "FULL_ALL",
            "rotation": False,  # FULL_ALL is not compatible with ROTATION
            "eps_scf": self.eps_scf,
            "eps_default": self.eps_default,
            "eps_pgf_orb": None,
            "max_scf": self.max_scf,
            "print_bandstructure": False,
            **self.input_overrides,
        }
        # an empty base config: only what is stated here.  k-points are added by write_input as CP2K's own
        # Monkhorst-Pack scheme: pymatgen's explicit list is reduced by the point group, which CP2K does not
        # undo for forces (a perfect Li2O crystal got 0.09 eV/Å with it).
        return StaticSetGenerator(
            user_input_settings=settings, config_dict={"KPOINTS": None, "cp2k_input": {}}
        )

    def write_input(self, structure: Structure, directory: str | Path) -> ElectronicState:
        """Write ``cp2k.inp`` (and basis/potential files) for ``structure`` into ``directory``.

        Returns the frame's :class:`~mlipflow.labeling.electronic.ElectronicState`.  atomate2's user-level
        ``CP2K_INPUT_UPDATES`` are not applied: a label's physics comes from the labeler settings only.
        """
        ensure_pmg_cp2k_settings(self.data_dir)
        state = self.electronic_state(structure)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # pymatgen: charge vs oxidation states; k-points + OT
            input_set = self.input_set_generator(structure).get_input_set(structure)
            _add_hubbard_u(input_set.cp2k_input, {el: self.u_values[el] for el in structure.symbol_set
                                                  if el in self.u_values})
            if not state.gamma_only:
                _add_kpoints(input_set.cp2k_input, state.kpoints)
            input_set.write_input(directory)
        return state

    # -- run ---------------------------------------------------------------------------------------
    def label_one(self, structure: Structure, workdir: Path | None = None) -> LabelResult:
        """Run one CP2K single point in ``workdir``; energy (eV), forces (eV/Å), stress (eV/Å³)."""
        from atomate2.cp2k.run import _DEFAULT_HANDLERS, _DEFAULT_VALIDATORS, run_cp2k
        from custodian.cp2k.handlers import UnconvergedRelaxationErrorHandler, WalltimeHandler
        from pymatgen.io.cp2k.outputs import Cp2kOutput

        self.setup()
        workdir = Path(workdir or Path.cwd())
        workdir.mkdir(parents=True, exist_ok=True)
        # sort_structure=True reorders sites: keep the map back to the input order
        ordered = structure.get_sorted_structure()
        order = _site_order(structure, ordered)
        handlers = [
            h
            for h in _DEFAULT_HANDLERS
            if not isinstance(h, UnconvergedRelaxationErrorHandler | WalltimeHandler)
        ]
        cwd = Path.cwd()
        try:
            os.chdir(workdir)
            state = self.write_input(ordered, workdir)
            try:
                run_cp2k(
                    cp2k_cmd=self.cp2k_cmd or default_cp2k_cmd(),
                    max_errors=self.max_errors,
                    handlers=guard_handlers(handlers, "cp2k"),
                    validators=_DEFAULT_VALIDATORS,
                )
            except Exception as exc:
                raise LabelingError(f"CP2K failed in {workdir}: {_cp2k_failure(workdir, exc)}") from exc
            out = Cp2kOutput(str(workdir / "cp2k.out"), auto_load=False)
            out.parse_energies()
            out.parse_forces()
            out.parse_stresses()
            out.convergence()
        finally:
            os.chdir(cwd)
        ran = str(getattr(out, "cp2k_version", "") or "")
        if ran and self.info.version not in ("unknown", ran):
            raise LabelingError(
                f"CP2K {ran} ran, but the labeler is CP2K {self.info.version}: one version per labeler"
            )
        if not all(np.ravel(out.data.get("scf_converged", [True]))):
            raise LabelingError(f"CP2K SCF did not converge in {workdir}")
        energy = float(out.final_energy)  # pymatgen converts to eV
        forces_au = np.asarray(out.data["forces"][-1], dtype=float)
        forces = forces_au * HARTREE_BOHR_TO_EV_ANG
        stress = None
        if out.data.get("stress_tensor"):
            # CP2K prints the stress in GPa with the pressure sign (positive = compressive)
            stress = -np.asarray(out.data["stress_tensor"][-1], dtype=float) * units.GPa
        log = loadfn(workdir / "custodian.json") if (workdir / "custodian.json").exists() else []
        return LabelResult(
            energy=energy,
            forces=forces[order],
            stress=stress,
            corrections=corrections_from_custodian(log),
            details={
                "code": "cp2k",
                "workdir": str(workdir),
                "cp2k_cmd": self.cp2k_cmd or default_cp2k_cmd(),
                "electronic_state": state.as_dict(),
            },
        )


def _initial_moment(element: str) -> float:
    """Materials Project's initial magnetic moment of an element (μB), as in its VASP input sets."""
    from pymatgen.io.vasp.sets import MPRelaxSet

    return float(MPRelaxSet.CONFIG["INCAR"]["MAGMOM"].get(element, 0.6))


def _add_kpoints(cp2k_input: Any, mesh: tuple[int, int, int]) -> None:
    """CP2K's Monkhorst-Pack mesh (Γ-centred for odd ``n``), reduced by time reversal only (no point group)."""
    from pymatgen.io.cp2k.inputs import Keyword, Section

    keywords = {
        "SCHEME": Keyword("SCHEME", "MONKHORST-PACK", *[int(n) for n in mesh]),
        "SYMMETRY": Keyword("SYMMETRY", False),
        "FULL_GRID": Keyword("FULL_GRID", False),
    }
    cp2k_input["FORCE_EVAL"]["DFT"].insert(Section("KPOINTS", keywords=keywords, subsections={}))


def _add_hubbard_u(cp2k_input: Any, u_values: dict[str, float]) -> None:
    """Add ``DFT_PLUS_U`` (``U_MINUS_J`` in eV on the d states) to the KIND of each element in ``u_values``."""
    if not u_values:
        return
    from pymatgen.io.cp2k.inputs import DftPlusU, Keyword

    cp2k_input["FORCE_EVAL"]["DFT"]["PLUS_U_METHOD"] = Keyword("PLUS_U_METHOD", "MULLIKEN")
    subsys = cp2k_input["FORCE_EVAL"]["SUBSYS"]
    done = set()
    for section in subsys.subsections.values():
        if section.name.upper() != "KIND":
            continue
        element = str(section.section_parameters[0]).split("_")[0]
        if element in u_values:
            plus_u = DftPlusU(l=2, u_minus_j=0.0)
            plus_u["U_MINUS_J"] = Keyword("U_MINUS_J", float(u_values[element]), units="eV")
            section.insert(plus_u)
            done.add(element)
    missing = set(u_values) - done
    if missing:
        raise LabelingError(f"CP2K input: no KIND section found for the +U elements {sorted(missing)}")


def _site_order(original: Structure, ordered: Structure) -> np.ndarray:
    """Index into ``ordered`` of each site of ``original`` (same sites, another order)."""
    used: set[int] = set()
    order = []
    for site in original:
        dists = [
            np.inf if j in used or other.species != site.species else site.distance(other)
            for j, other in enumerate(ordered)
        ]
        j = int(np.argmin(dists))
        used.add(j)
        order.append(j)
    return np.asarray(order)


def _cp2k_failure(workdir: Path, exc: Exception) -> str:
    """The most telling reason for a failed CP2K run: its ABORT message, else custodian's error."""
    out = workdir / "cp2k.out"
    if out.exists():
        text = out.read_text(errors="replace")
        match = re.search(r"\[ABORT\]\s*\*(.*?)\*\s*\n(.*?)\*\*\*\*", text, re.S)
        if match:
            lines = re.findall(r"\*\s+(.*?)\s+\*", match.group(0))
            message = " ".join(t for t in lines if t and "___" not in t and "/" not in t[:3]).strip()
            if message:
                return f"CP2K aborted: {message}"
    return f"{type(exc).__name__}: {exc}"
