"""VASP labeler: atomate2's static maker, a battery-interface input set, a label-safe custodian profile.

Input set (:class:`BatteryInterfaceSetGenerator`; every value below is in the labeler settings, hence in every
frame id):

* PBE (``GGA = PE``, PBE_54 POTCARs as in atomate2), ``ENCUT = 520`` eV, ``PREC = Accurate``, ``LASPH``,
  ``EDIFF = 1e-6`` eV;
* spin polarised (``ISPIN = 2``), initial moments from pymatgen's defaults;
* per frame (:func:`spin_updates`, :mod:`mlipflow.labeling.electronic`): ``NELECT`` from the frame's charge
  (set from the provenance's ``net_charge``), ``ISPIN = 2`` for odd electron counts, an isolated atom's
  Hund's-rule moment fixed by ``NUPDOWN``;
* Gaussian smearing ``ISMEAR = 0``, ``SIGMA = 0.05`` eV for every frame (tetrahedron smearing gives wrong
  forces in metals, and labels must not switch smearing kind with the band gap: ``auto_ismear`` is off);
* k-points from a density of 100 per Å⁻³ of reciprocal volume (Γ-centred), the same for metals and insulators
  (``auto_metal_kpoints`` off);
* Hubbard +U (Dudarev, ``LDAUTYPE = 2``) on the d states of Co 3.32, Cr 3.7, Fe 5.3, Mn 3.9, Mo 4.38, Ni 6.2,
  V 3.25, W 6.2 eV (Materials Project values).  Unlike Materials Project, U is applied whenever the element is
  present, with or without O/F: one element, one Hamiltonian, so that interface frames with and without oxygen
  near a transition metal stay comparable.  ``LMAXMIX = 4``;
* optional dipole correction along c for slabs (``LDIPOL``, ``IDIPOL = 3``, ``DIPOL`` at the centre of mass).

Custodian profile (:func:`label_safe_vasp_handlers`): atomate2's default handlers without those whose only
action is a physics change (``LargeSigmaHandler``, ``IncorrectSmearingHandler``, ``KspacingMetalHandler``) and
the ionic-step ``PotimErrorHandler``, each wrapped in a
:class:`~mlipflow.labeling.consistency.LabelConsistencyGuard`: a correction that touches ENCUT, the
functional, smearing, U, k-points or POTCARs is refused and the frame fails with the reason;
convergence-only corrections (ALGO, mixing, NELM, ...) are applied and recorded in the frame's
``corrections``.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from ase import units
from pymatgen.core import Structure

from mlipflow.data import LabelerInfo
from mlipflow.errors import LabelingError
from mlipflow.labeling.base import Labeler, LabelResult
from mlipflow.labeling.consistency import corrections_from_custodian, guard_handlers
from mlipflow.labeling.electronic import RULES_VERSION, multiplicity, structure_charge

logger = logging.getLogger(__name__)

#: Hubbard U (eV) on the d states, Materials Project values (Wang et al. 2006 / Jain et al. 2011 fits)
DEFAULT_HUBBARD_U: dict[str, float] = {
    "Co": 3.32, "Cr": 3.7, "Fe": 5.3, "Mn": 3.9, "Mo": 4.38, "Ni": 6.2, "V": 3.25, "W": 6.2,
}  # fmt: skip

#: name of the inner atomate2 job (the fake-run harness looks reference directories up by job name)
STATIC_JOB_NAME = "mlipflow vasp static"

#: custodian handlers left out of the profile: their only fixes change physics (or are for ionic steps)
EXCLUDED_HANDLERS = (
    "LargeSigmaHandler",
    "IncorrectSmearingHandler",
    "KspacingMetalHandler",
    "PotimErrorHandler",
)


def _generator_base() -> type:
    from atomate2.vasp.sets.base import VaspInputGenerator

    return VaspInputGenerator


def battery_interface_set_generator(
    encut: float = 520.0,
    reciprocal_density: float = 100.0,
    hubbard_u: dict[str, float] | None = None,
    spin_polarized: bool = True,
    sigma: float = 0.05,
    ediff: float = 1e-6,
    dipole_correction: bool = False,
    user_incar_settings: dict[str, Any] | None = None,
) -> Any:
    """Build the :class:`BatteryInterfaceSetGenerator` (atomate2 ``VaspInputGenerator``) for these settings.

    Parameters
    ----------
    encut
        Plane-wave cutoff (eV).
    reciprocal_density
        k-points per Å⁻³ of reciprocal volume (Γ-centred mesh).
    hubbard_u
        U (eV) per element on the d states (default :data:`DEFAULT_HUBBARD_U`; ``{}`` switches +U off).
    spin_polarized
        ``ISPIN = 2``.
    sigma
        Gaussian smearing width (eV).
    ediff
        Electronic convergence (eV).
    dipole_correction
        Dipole correction along c (slabs).
    user_incar_settings
        Further INCAR settings (they join the labeler settings).
    """
    from atomate2.vasp.sets.base import _BASE_VASP_SET

    u = dict(DEFAULT_HUBBARD_U if hubbard_u is None else hubbard_u)
    config = {
        key: (dict(value) if isinstance(value, dict) else value) for key, value in _BASE_VASP_SET.items()
    }
    incar = dict(config["INCAR"])
    for key in ("METAGGA", "KSPACING", "LDAUU", "LDAUJ", "LDAUL"):
        incar.pop(key, None)
    incar.update(
        GGA="PE",
        ENCUT=encut,
        PREC="Accurate",
        LASPH=True,
        EDIFF=ediff,
        ISPIN=2 if spin_polarized else 1,
        ISMEAR=0,
        SIGMA=sigma,
        LDAU=bool(u),
        LDAUTYPE=2,
        LMAXMIX=4,
        LREAL=False,
        NELM=200,
    )
    if u:
        incar.update(
            LDAUU={el: float(v) for el, v in u.items()},
            LDAUL={el: 2 for el in u},
            LDAUJ={el: 0.0 for el in u},
        )
    config["INCAR"] = incar
    config["KPOINTS"] = {"reciprocal_density": reciprocal_density}
    return BatteryInterfaceSetGenerator(
        config_dict=config,
        user_incar_settings=dict(user_incar_settings or {}),
        dipole_correction=dipole_correction,
        sigma=sigma,
        auto_ismear=False,
        auto_ispin=False,
        auto_lreal=False,
        auto_metal_kpoints=False,
        auto_kspacing=False,
        inherit_incar=False,
        force_gamma=True,
    )


def _make_generator_class() -> type:
    base = _generator_base()

    @dataclass
    class BatteryInterfaceSetGenerator(base):  # type: ignore[misc, valid-type]
        """atomate2 VASP input generator for static labels of battery interfaces (see module docstring)."""

        dipole_correction: bool = False
        sigma: float = 0.05

        @property
        def incar_updates(self) -> dict[str, Any]:
            updates: dict[str, Any] = {
                "NSW": 0,
                "IBRION": -1,
                "ISMEAR": 0,
                "SIGMA": self.sigma,
                "LREAL": False,
                "LCHARG": False,
                "LWAVE": False,
                "LAECHG": False,
                "LVTOT": False,
                "LORBIT": 11,
            }
            if self.structure is not None:
                updates.update(spin_updates(self.structure, int(self.config_dict["INCAR"].get("ISPIN", 2)) == 2))
                charge = structure_charge(self.structure)
                if charge:  # POTCAR valences (pymatgen) minus the frame's charge; neutral frames keep VASP's count
                    updates["NELECT"] = float(self.nelect) - charge
            if self.dipole_correction and self.structure is not None:
                centre = np.asarray(self.structure.frac_coords).mean(axis=0)
                masses = np.array([site.specie.atomic_mass for site in self.structure])
                centre = (np.asarray(self.structure.frac_coords) * masses[:, None]).sum(0) / masses.sum()
                updates.update(LDIPOL=True, IDIPOL=3, DIPOL=[round(float(x), 4) for x in centre])
            return updates

    BatteryInterfaceSetGenerator.__module__ = __name__
    return BatteryInterfaceSetGenerator


BatteryInterfaceSetGenerator = _make_generator_class()


def spin_updates(structure: Structure, spin_polarized: bool) -> dict[str, Any]:
    """Per-frame spin settings by :mod:`mlipflow.labeling.electronic`'s rules.

    ``NELECT`` (POTCAR valences minus the frame's charge) is set by the generator for charged frames.
    Here: an odd electron count is spin polarised (``ISPIN = 2``) even when the labeler
    is not; an isolated neutral atom has its Hund's-rule moment fixed (``NUPDOWN``, ``MAGMOM``).
    """
    mult = multiplicity(structure)
    updates: dict[str, Any] = {}
    if mult > 1 and not spin_polarized:
        updates["ISPIN"] = 2
    if len(structure) == 1 and structure_charge(structure) == 0:
        updates.update(ISPIN=2, NUPDOWN=mult - 1, MAGMOM=[float(mult - 1)])
    return updates


def check_vasp(vasp_cmd: str | None = None, elements: Iterable[str] = ()) -> str:
    """Check that VASP can run here; return a one-line description of what will run.

    The command is ``vasp_cmd``, else atomate2's ``VASP_CMD`` (``ATOMATE2_VASP_CMD`` or ``~/.atomate2.yaml``,
    default ``vasp_std``); POTCARs are looked up in pymatgen's ``PMG_VASP_PSP_DIR`` (PBE_54 set).

    Raises
    ------
    ConfigError
        When the command's programs are not on the PATH, ``PMG_VASP_PSP_DIR`` is unset or lacks the PBE_54
        directory, or a POTCAR of ``elements`` is missing; the message says what to set.
    """
    from atomate2 import SETTINGS as A2
    from pymatgen.core import SETTINGS as PMG
    from pymatgen.io.vasp.inputs import PotcarSingle

    from mlipflow.errors import ConfigError
    from mlipflow.labeling.cp2k import missing_executables

    cmd = vasp_cmd or str(A2.VASP_CMD)
    missing = missing_executables(cmd, "vasp")
    if missing:
        raise ConfigError(
            f"VASP labeler: {', '.join(missing)} not found on the PATH (command {cmd!r}): set ATOMATE2_VASP_CMD "
            "(e.g. 'srun vasp_std') on a machine with VASP, or MLIPFLOW_REMOTE_LABELER=1 where only workers have it"
        )
    psp = PMG.get("PMG_VASP_PSP_DIR") or os.environ.get("PMG_VASP_PSP_DIR")
    if not psp:
        raise ConfigError("VASP labeler: PMG_VASP_PSP_DIR is not set: point it at your POTCAR library "
                          "(`pmg config --add PMG_VASP_PSP_DIR <dir>`)")
    root = Path(psp) / PotcarSingle.functional_dir["PBE_54"]
    if not root.is_dir():
        raise ConfigError(f"VASP labeler: no {root.name} directory in PMG_VASP_PSP_DIR={psp} (PBE_54 POTCARs)")
    symbols = _potcar_symbols()
    absent = [el for el in sorted(set(elements))
              if not any((root / name).exists() for name in _potcar_files(symbols.get(el, el)))]
    if absent:
        raise ConfigError(f"VASP labeler: no PBE_54 POTCAR for {absent} in {root}")
    return f"{cmd} (POTCARs {root})"


def _potcar_symbols() -> dict[str, str]:
    """atomate2's POTCAR choice per element (``Li`` -> ``Li_sv``)."""
    from atomate2.vasp.sets.base import _BASE_VASP_SET

    return {el: str(sym) for el, sym in (_BASE_VASP_SET.get("POTCAR") or {}).items()}


def _potcar_files(symbol: str) -> list[str]:
    return [f"POTCAR.{symbol}", f"POTCAR.{symbol}.gz", f"{symbol}/POTCAR", f"{symbol}/POTCAR.gz"]


def label_safe_vasp_handlers() -> list[Any]:
    """atomate2's default VASP handlers minus :data:`EXCLUDED_HANDLERS`, each in a consistency guard."""
    from atomate2.vasp.run import DEFAULT_HANDLERS

    kept = [h for h in DEFAULT_HANDLERS if type(h).__name__ not in EXCLUDED_HANDLERS]
    return guard_handlers(kept, "vasp")


@dataclass
class VaspLabeler(Labeler):
    """Static VASP labels through atomate2's ``StaticMaker`` and custodian (see the module docstring).

    Parameters
    ----------
    encut
        Plane-wave cutoff (eV).
    reciprocal_density
        k-points per Å⁻³ of reciprocal volume.
    hubbard_u
        U (eV) per transition metal (default :data:`DEFAULT_HUBBARD_U`; ``{}`` for no +U).
    spin_polarized
        Spin-polarised calculation.
    sigma
        Gaussian smearing width (eV).
    ediff
        Electronic convergence (eV).
    dipole_correction
        Dipole correction along c (slabs).
    user_incar_settings
        Further INCAR settings.
    max_errors
        Custodian corrections allowed per calculation.
    run_vasp_kwargs
        Further arguments of atomate2's ``run_vasp`` (``vasp_cmd``...); ``handlers`` is always the
        label-safe profile.
    """

    encut: float = 520.0
    reciprocal_density: float = 100.0
    hubbard_u: dict[str, float] | None = None
    spin_polarized: bool = True
    sigma: float = 0.05
    ediff: float = 1e-6
    dipole_correction: bool = False
    user_incar_settings: dict[str, Any] = field(default_factory=dict)
    max_errors: int = 5
    run_vasp_kwargs: dict[str, Any] = field(default_factory=dict)

    needs_workdir = True
    uses_charge = True

    @property
    def u_values(self) -> dict[str, float]:
        return dict(DEFAULT_HUBBARD_U if self.hubbard_u is None else self.hubbard_u)

    @property
    def info(self) -> LabelerInfo:
        settings = {
            "code": "vasp",
            "functional": "PBE",
            "potcar_functional": "PBE_54",
            "encut_ev": self.encut,
            "prec": "Accurate",
            "kpoint_reciprocal_density": self.reciprocal_density,
            "spin_polarized": self.spin_polarized,
            "smearing": {"ismear": 0, "sigma_ev": self.sigma},
            "hubbard_u": {"type": 2, "l": 2, "u_ev": self.u_values},
            "ediff_ev": self.ediff,
            "dipole_correction": self.dipole_correction,
            "user_incar_settings": self.user_incar_settings,
            "charge_and_spin": f"mlipflow.labeling.electronic rules v{RULES_VERSION}; NELECT from the charge",
        }
        return LabelerInfo(
            name="vasp-pbe+u" if self.u_values else "vasp-pbe", kind="dft", version=None, settings=settings
        )

    def preflight(self, elements: Iterable[str] = ()) -> None:
        """Check the VASP command and the PBE_54 POTCARs of ``elements`` (see :func:`check_vasp`)."""
        check_vasp(self.run_vasp_kwargs.get("vasp_cmd"), elements)

    def static_maker(self) -> Any:
        """The atomate2 ``StaticMaker`` that computes one label."""
        from atomate2.vasp.jobs.core import StaticMaker

        generator = battery_interface_set_generator(
            encut=self.encut,
            reciprocal_density=self.reciprocal_density,
            hubbard_u=self.u_values,
            spin_polarized=self.spin_polarized,
            sigma=self.sigma,
            ediff=self.ediff,
            dipole_correction=self.dipole_correction,
            user_incar_settings=self.user_incar_settings,
        )
        run_kwargs = {
            "max_errors": self.max_errors,
            **self.run_vasp_kwargs,
            "handlers": label_safe_vasp_handlers(),
        }
        return StaticMaker(name=STATIC_JOB_NAME, input_set_generator=generator, run_vasp_kwargs=run_kwargs)

    def label_one(self, structure: Structure, workdir: Path | None = None) -> LabelResult:
        """Run atomate2's static job in ``workdir``; free energy (eV), forces (eV/Å), stress (eV/Å³)."""
        from jobflow import CURRENT_JOB, JobStore
        from maggma.stores import MemoryStore

        from mlipflow.labeling.cp2k import _site_order

        workdir = Path(workdir or Path.cwd())
        workdir.mkdir(parents=True, exist_ok=True)
        job = self.static_maker().make(structure)
        saved = (CURRENT_JOB.job, CURRENT_JOB.store)
        store = JobStore(MemoryStore())
        store.connect()
        try:
            with contextlib.chdir(workdir):
                response = job.run(store=store)
        except Exception as exc:
            raise LabelingError(f"VASP static failed in {workdir}: {type(exc).__name__}: {exc}") from exc
        finally:
            CURRENT_JOB.job, CURRENT_JOB.store = saved
        return self._result_from_task(response.output, structure, workdir, _site_order)

    def _result_from_task(
        self, task: Any, structure: Structure, workdir: Path, site_order: Any
    ) -> LabelResult:
        calc = task.calcs_reversed[0]
        state = str(getattr(task.state, "value", task.state))
        if state != "successful":
            raise LabelingError(f"VASP static in {workdir} is not successful (state {state!r})")
        step = calc.output.ionic_steps[-1]
        nelm = int((calc.input.incar or {}).get("NELM", 60))
        if len(step.electronic_steps or []) >= nelm:
            raise LabelingError(
                f"VASP static in {workdir}: electronic loop hit NELM={nelm} without converging"
            )
        used_u = {k: float(v) for k, v in (task.input.hubbards or {}).items() if float(v) != 0.0}
        wanted = {el: u for el, u in self.u_values.items() if el in structure.symbol_set}
        if used_u != wanted:
            raise LabelingError(f"VASP static in {workdir} used U {used_u}, the labeler asks {wanted}")
        out_structure = calc.output.structure
        order = site_order(structure, out_structure)
        forces = np.asarray(step.forces, dtype=float)[order]
        stress = None
        if step.stress is not None:
            # vasprun: kBar, positive = compressive; ASE: eV/Å³, positive = tensile
            stress = -0.1 * units.GPa * np.asarray(step.stress, dtype=float)
        magmoms = out_structure.site_properties.get("magmom")
        energy = step.e_fr_energy if step.e_fr_energy is not None else calc.output.energy
        corrections = corrections_from_custodian(task.custodian and [c.model_dump() for c in task.custodian])
        return LabelResult(
            energy=float(energy),
            forces=forces,
            stress=stress,
            magmoms=None if magmoms is None else [float(magmoms[i]) for i in order],
            corrections=corrections,
            details={
                "code": "vasp",
                "vasp_version": calc.vasp_version,
                "hubbards": used_u,
                "incar": {
                    k: calc.input.incar.get(k) for k in ("GGA", "ENCUT", "ISMEAR", "SIGMA", "ISPIN", "LDAU")
                },
                "potcar": [
                    p.symbol if hasattr(p, "symbol") else str(p) for p in (calc.input.potcar_spec or [])
                ],
                "energy_sigma0": step.e_0_energy,
                "workdir": str(workdir),
                "run": os.path.basename(str(workdir)),
            },
        )
