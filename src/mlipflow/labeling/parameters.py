"""Which settings a labeler takes: a campaign's ``labeler.settings`` checked before anything runs.

The campaign file gives a labeler as ``kind`` (``surrogate``, ``cp2k``, ``vasp``), for surrogates a
``calculator``, and ``settings``, the keyword arguments of the labeler's class.  A key the class does not
take, or a value of the wrong type, would only fail when the first label is computed; here it is found
when the file is validated, with the allowed keys listed.
"""

from __future__ import annotations

import dataclasses
import importlib
import typing
from typing import Any

from pydantic import ConfigDict, TypeAdapter, ValidationError

from mlipflow.errors import ConfigError

#: labeler kind -> its class (``module:Class``)
LABELER_CLASSES = {
    "surrogate": "mlipflow.labeling.surrogate:SurrogateLabeler",
    "cp2k": "mlipflow.labeling.cp2k:Cp2kLabeler",
    "vasp": "mlipflow.labeling.vasp:VaspLabeler",
}
#: parameters that the campaign file sets outside ``settings``
SET_ELSEWHERE = {"surrogate": {"calculator": "labeler.calculator"}}

Problem = tuple[tuple[str, ...], str]


def labeler_parameters(kind: str) -> dict[str, Any]:
    """Keyword arguments of the labeler class of ``kind`` and their types."""
    module, name = LABELER_CLASSES[kind].split(":")
    cls = getattr(importlib.import_module(module), name)
    hints = typing.get_type_hints(cls)
    return {f.name: hints.get(f.name, Any) for f in dataclasses.fields(cls) if f.init}


def settings_problems(kind: str, calculator: str, settings: dict[str, Any]) -> list[Problem]:
    """What is wrong with ``settings`` for a labeler of ``kind``: (key path inside ``settings``, message)."""
    problems: list[Problem] = []
    if kind == "surrogate":
        from mlipflow.labeling.surrogate import KNOWN_CALCULATORS, calculator_parameters

        if calculator not in KNOWN_CALCULATORS and ":" not in calculator:
            return [(("calculator",), f"unknown surrogate calculator {calculator!r}; use one of "
                                      f"{', '.join(sorted(KNOWN_CALCULATORS))} or 'package.module:factory'")]
        kwargs = settings.get("calculator_kwargs")
        try:  # importing a calculator can take seconds (torch): only when there are arguments to check
            allowed_kwargs = calculator_parameters(calculator) if kwargs or ":" in calculator else None
        except ConfigError as exc:
            return [(("calculator",), str(exc))]
        if allowed_kwargs is not None and isinstance(kwargs, dict):
            problems += [(("settings", "calculator_kwargs", str(key)),
                          f"not a parameter of calculator {calculator!r}; allowed: {', '.join(sorted(allowed_kwargs))}")
                         for key in kwargs if key not in allowed_kwargs]
    parameters = labeler_parameters(kind)
    elsewhere = SET_ELSEWHERE.get(kind, {})
    allowed = ", ".join(sorted(set(parameters) - set(elsewhere)))
    for key, value in settings.items():
        if key in elsewhere:
            problems.insert(0, (("settings", key), f"set it as `{elsewhere[key]}`, not under settings"))
        elif key not in parameters:
            problems.insert(0, (("settings", str(key)), f"not a setting of the {kind} labeler; allowed: {allowed}"))
        else:
            try:
                TypeAdapter(parameters[key], config=ConfigDict(arbitrary_types_allowed=True)).validate_python(value)
            except ValidationError as exc:
                err = exc.errors()[0]
                problems.insert(0, (("settings", key, *map(str, err["loc"])), str(err["msg"])))
            except Exception:  # a type pydantic cannot check (a callable): the labeler itself will
                continue
    return problems
