"""Load YAML input files into pydantic models with errors that name the key path and the line.

Used for every user-written YAML file (campaigns, structure sets): an unknown key (a typo), a wrong
type or a missing value is reported as ``campaign.yaml:12: selection.trust_windw: unknown key`` rather
than as a traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from mlipflow.errors import ConfigError

M = TypeVar("M", bound=BaseModel)


def _line_index(node: yaml.Node, path: tuple = (), index: dict | None = None) -> dict[tuple, int]:
    """Map every key path of a composed YAML document to its 1-based line."""
    index = {} if index is None else index
    index.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value
            index[(*path, key)] = key_node.start_mark.line + 1
            _line_index(value_node, (*path, key), index)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _line_index(item, (*path, i), index)
    return index


def _line_of(loc: tuple, lines: dict[tuple, int]) -> int | None:
    """Line of the deepest existing prefix of a pydantic error location."""
    loc = tuple(loc)
    while loc:
        if loc in lines:
            return lines[loc]
        loc = loc[:-1]
    return lines.get(())


def format_validation_error(exc: ValidationError, source: str, lines: dict[tuple, int]) -> str:
    """One line per problem: ``source:line: key.path: message``."""
    problems = []
    for err in exc.errors():
        # pydantic may put the name of a union member or a validator in the location: keep only the
        # parts that are keys of the document (and the last part, a key that is missing)
        loc: tuple = ()
        raw = tuple(err["loc"])
        for i, part in enumerate(raw):
            if (*loc, part) in lines or i == len(raw) - 1:
                loc = (*loc, part)
        where = ".".join(str(p) for p in loc) or "(top level)"
        line = _line_of(loc, lines)
        message = "unknown key (check its spelling)" if err["type"] == "extra_forbidden" else err["msg"]
        problems.append(f"{source}:{line if line else '?'}: {where}: {message}")
    return "\n".join(problems)


def load_yaml_model(path: str | Path, model: type[M], *, text: str | None = None) -> M:
    """Read a YAML file into ``model``; raise :class:`ConfigError` naming file, line and key.

    Parameters
    ----------
    path
        The YAML file (also used as the name in messages when ``text`` is given).
    model
        A pydantic model, normally with ``extra="forbid"`` so that typos are caught.
    text
        The YAML text, if it is not to be read from ``path``.
    """
    path = Path(path)
    if text is None:
        if not path.is_file():
            raise ConfigError(f"{path}: no such file")
        text = path.read_text()
    try:
        node = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if node is None or not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of settings at the top level")
    lines = _line_index(node)
    return validate_with_lines(data, model, str(path), lines)


def validate_with_lines(data: Any, model: type[M], source: str, lines: dict[tuple, int]) -> M:
    """Validate already-loaded data, reporting problems with the lines of its YAML source."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{source} has {exc.error_count()} problem(s):\n" + format_validation_error(
            exc, source, lines)) from exc
