"""A label-consistency-safe custodian profile: error handlers may change how a calculation converges, never
what it computes.

Every handler is wrapped in :class:`LabelConsistencyGuard`.  Before the inner handler corrects the inputs,
the guard records a *physics fingerprint* of them (VASP: every INCAR tag that is not a pure convergence
strategy, the k-points and the POTCARs; CP2K: cutoffs, functional, basis sets, potentials, spin, charge,
smearing and k-points).  If the correction changed the fingerprint, the inputs are restored and the
handler's result is turned into an unrecoverable error (custodian stops; the frame fails with the reason)
instead of a silently different label.  Corrections that keep the fingerprint are recorded in the frame's
``corrections`` (custodian writes them to ``custodian.json``).
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from custodian.custodian import ErrorHandler
from monty.json import MontyDecoder, MSONable

logger = logging.getLogger(__name__)

#: INCAR tags a handler may change: electronic/ionic convergence strategy and parallelisation only
VASP_CONVERGENCE_TAGS = frozenset(
    {
        "ALGO", "IALGO", "NELM", "NELMIN", "NELMDL", "EDIFF", "AMIX", "BMIX", "AMIX_MAG", "BMIX_MAG", "AMIN",
        "IMIX", "INIMIX", "MAXMIX", "WC", "MIXPRE", "TIME", "ISTART", "ICHARG", "LWAVE", "LCHARG", "LAECHG",
        "LVTOT", "LVHAR", "LORBIT", "NSIM", "NPAR", "NCORE", "KPAR", "LPLANE", "LSCALU", "NBLOCK", "KBLOCK",
        "ISYM", "SYMPREC", "POTIM", "IBRION", "NSW", "EDIFFG", "LREAL_COMPAT", "NWRITE", "LELF", "NBANDS",
        "ENINI", "WEIMIN", "EBREAK", "DEPER", "LDAUPRINT", "LMAXMIX", "ISIF",
    }
)  # fmt: skip
#: VASP input files whose content is physics (INCAR is compared tag by tag)
VASP_PHYSICS_FILES = ("KPOINTS", "POTCAR", "POTCAR.spec", "POSCAR")


def vasp_fingerprint(directory: str | Path) -> dict[str, Any]:
    """Physics settings of the VASP inputs in ``directory`` (tags outside :data:`VASP_CONVERGENCE_TAGS`)."""
    from pymatgen.io.vasp import Incar

    directory = Path(directory)
    out: dict[str, Any] = {}
    if (directory / "INCAR").exists():
        incar = Incar.from_file(directory / "INCAR")
        out.update({f"INCAR:{k}": str(v) for k, v in incar.items() if k not in VASP_CONVERGENCE_TAGS})
    for name in VASP_PHYSICS_FILES:
        path = directory / name
        if path.exists():
            out[name] = path.read_text()
    return out


#: CP2K input sections/keywords that define the physics of a label
_CP2K_PHYSICS_PATHS = (
    ("FORCE_EVAL", "DFT", "MGRID", "CUTOFF"),
    ("FORCE_EVAL", "DFT", "MGRID", "REL_CUTOFF"),
    ("FORCE_EVAL", "DFT", "XC"),
    ("FORCE_EVAL", "DFT", "UKS"),
    ("FORCE_EVAL", "DFT", "LSD"),
    ("FORCE_EVAL", "DFT", "MULTIPLICITY"),
    ("FORCE_EVAL", "DFT", "CHARGE"),
    ("FORCE_EVAL", "DFT", "KPOINTS"),
    ("FORCE_EVAL", "DFT", "SCF", "SMEAR"),
    ("FORCE_EVAL", "DFT", "QS", "METHOD"),
    ("FORCE_EVAL", "SUBSYS"),
)


def cp2k_fingerprint(directory: str | Path, input_file: str = "cp2k.inp") -> dict[str, Any]:
    """Physics settings of a CP2K input (cutoffs, XC, spin, charge, smearing, k-points, kinds and cell)."""
    from pymatgen.io.cp2k.inputs import Cp2kInput

    path = Path(directory) / input_file
    if not path.exists():
        return {}
    inp = Cp2kInput.from_file(path)
    out: dict[str, Any] = {}
    for keys in _CP2K_PHYSICS_PATHS:
        node: Any = inp
        for key in keys:
            try:
                node = node[key]
            except (KeyError, TypeError, AttributeError):
                node = None
                break
        out["/".join(keys)] = None if node is None else str(node)
    for name in ("BASIS", "POTENTIAL"):
        if (Path(directory) / name).exists():
            out[name] = (Path(directory) / name).read_text()
    return out


FINGERPRINTS: dict[str, Callable[[str | Path], dict[str, Any]]] = {
    "vasp": vasp_fingerprint,
    "cp2k": cp2k_fingerprint,
}
_SNAPSHOT_FILES = {
    "vasp": ("INCAR", "KPOINTS", "POTCAR", "POTCAR.spec", "POSCAR"),
    "cp2k": ("cp2k.inp", "BASIS", "POTENTIAL"),
}


class LabelConsistencyGuard(ErrorHandler):
    """Wrap a custodian handler so that it can only change the convergence strategy.

    Parameters
    ----------
    handler
        The custodian error handler to guard.
    code
        ``"vasp"`` or ``"cp2k"`` (which fingerprint to compare).
    """

    def __init__(self, handler: ErrorHandler, code: str = "vasp") -> None:
        if isinstance(handler, dict):
            handler = MontyDecoder().process_decoded(handler)
        self.handler = handler
        self.code = code
        self.is_monitor = handler.is_monitor
        self.is_terminating = handler.is_terminating
        self.raises_runtime_error = getattr(handler, "raises_runtime_error", True)
        self.max_num_corrections = getattr(handler, "max_num_corrections", None)
        self.raise_on_max = getattr(handler, "raise_on_max", False)

    def __repr__(self) -> str:
        return f"LabelConsistencyGuard({type(self.handler).__name__})"

    def check(self, directory: str = "./") -> bool:
        return (
            self.handler.check(directory=directory)
            if _takes_directory(self.handler.check)
            else self.handler.check()
        )

    def correct(self, directory: str = "./") -> dict[str, Any]:
        fingerprint = FINGERPRINTS[self.code]
        before = fingerprint(directory)
        with tempfile.TemporaryDirectory() as backup:
            for name in _SNAPSHOT_FILES[self.code]:
                if (Path(directory) / name).exists():
                    shutil.copy2(Path(directory) / name, Path(backup) / name)
            result = (
                self.handler.correct(directory=directory)
                if _takes_directory(self.handler.correct)
                else self.handler.correct()
            )
            after = fingerprint(directory)
            changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
            if not changed:
                return result
            for name in _SNAPSHOT_FILES[self.code]:
                if (Path(backup) / name).exists():
                    shutil.copy2(Path(backup) / name, Path(directory) / name)
        message = (
            f"{type(self.handler).__name__} wanted to change physics settings {changed} "
            f"(actions {result.get('actions')}): refused to keep labels consistent"
        )
        logger.warning(message)
        return {"errors": [*result.get("errors", []), message], "actions": None, "refused": changed}

    def as_dict(self) -> dict[str, Any]:
        return {
            "@module": type(self).__module__,
            "@class": type(self).__name__,
            "handler": self.handler.as_dict() if isinstance(self.handler, MSONable) else repr(self.handler),
            "code": self.code,
        }


def _takes_directory(method: Callable[..., Any]) -> bool:
    import inspect

    try:
        return "directory" in inspect.signature(method).parameters
    except (TypeError, ValueError):  # pragma: no cover
        return False


def guard_handlers(handlers: Sequence[ErrorHandler], code: str) -> list[ErrorHandler]:
    """Wrap every handler in a :class:`LabelConsistencyGuard`."""
    return [h if isinstance(h, LabelConsistencyGuard) else LabelConsistencyGuard(h, code) for h in handlers]


def corrections_from_custodian(custodian_log: Sequence[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """Flatten a custodian run log (``custodian.json``) into the frame's ``corrections`` entries."""
    out: list[dict[str, Any]] = []
    for run in custodian_log or []:
        for corr in run.get("corrections", []) or []:
            handler = corr.get("handler")
            if isinstance(handler, dict):
                inner = handler.get("handler")
                name = (inner or {}).get("@class") if isinstance(inner, dict) else handler.get("@class")
            else:
                name = type(handler).__name__ if handler is not None else None
            out.append(
                {
                    "source": "custodian",
                    "handler": name,
                    "errors": [str(e) for e in corr.get("errors", [])],
                    "actions": corr.get("actions"),
                }
            )
    return out
