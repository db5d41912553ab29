"""Load YAML input files into pydantic models with errors that name the key path and the line.

Used for every user-written YAML file (campaigns, structure sets): an unknown key (a typo), a wrong
type or a missing value is reported as ``campaign.yaml:12: selection.trust_windw: unknown key`` (with the
keys allowed there) rather than as a traceback or pydantic's own report.  A validator that knows which key
inside its value is wrong says so with a ``PydanticCustomError`` whose context holds ``key`` (a key or a
tuple of keys below the validated field): the message then points at that key and its line.
"""

from __future__ import annotations

import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from mlipflow.errors import ConfigError

M = TypeVar("M", bound=BaseModel)

#: pydantic's prefixes of messages from validators that raised ValueError or AssertionError
_PREFIXES = ("Value error, ", "Assertion failed, ")


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


def _duplicate_keys(node: yaml.Node, path: tuple = ()) -> list[tuple[tuple, int]]:
    """Keys given twice in one mapping (YAML keeps the last one silently): key path and line of the second."""
    found = []
    if isinstance(node, yaml.MappingNode):
        seen = set()
        for key_node, value_node in node.value:
            key = key_node.value
            if isinstance(key_node, yaml.ScalarNode) and key in seen:
                found.append(((*path, key), key_node.start_mark.line + 1))
            seen.add(key)
            found += _duplicate_keys(value_node, (*path, key))
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            found += _duplicate_keys(item, (*path, i))
    return found


def _line_of(loc: tuple, lines: dict[tuple, int]) -> int | None:
    """Line of the deepest existing prefix of a pydantic error location."""
    loc = tuple(loc)
    while loc:
        if loc in lines:
            return lines[loc]
        loc = loc[:-1]
    return lines.get(())


def _members(annotation: Any) -> list[Any]:
    """The alternatives of a union (``X | None`` gives ``[X]``), or the annotation itself."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) is typing.Annotated:
        return _members(typing.get_args(annotation)[0])
    return [annotation]


def _step(annotation: Any, part: Any) -> Any:
    """The annotation one pydantic location part below ``annotation`` (``None`` when unknown)."""
    for member in _members(annotation):
        if isinstance(member, type) and issubclass(member, BaseModel):
            if isinstance(part, str) and part in member.model_fields:
                return member.model_fields[part].annotation
            kind = member.model_fields.get("kind")
            if part == member.__name__ or (kind is not None and part == kind.default):
                return member  # a union member named in the location (discriminated: by its tag)
            continue
        origin, args = typing.get_origin(member), typing.get_args(member)
        if origin in (list, tuple, set, frozenset) and isinstance(part, int) and args:
            return args[0]
        if origin is dict and len(args) == 2:
            return args[1]
    return None


def allowed_keys(model: type[BaseModel], loc: tuple) -> list[str] | None:
    """Keys of the mapping at pydantic location ``loc`` of ``model`` (``None`` if it is not a model's)."""
    annotation: Any = model
    for part in loc:
        annotation = _step(annotation, part)
        if annotation is None:
            return None
    models = [m for m in _members(annotation) if isinstance(m, type) and issubclass(m, BaseModel)]
    return sorted(models[0].model_fields) if len(models) == 1 else None


def _message(err: dict[str, Any], model: type[BaseModel] | None) -> str:
    if err["type"] == "extra_forbidden":
        allowed = allowed_keys(model, tuple(err["loc"])[:-1]) if model is not None else None
        return "unknown key (check its spelling)" + (f"; allowed keys: {', '.join(allowed)}" if allowed else "")
    message = str(err["msg"])
    for prefix in _PREFIXES:
        if message.startswith(prefix):
            message = message[len(prefix):]
    if "[key]" in err["loc"]:
        message = f"unknown key: {message[:1].lower()}{message[1:]}"
    return message


def format_validation_error(exc: ValidationError, source: str, lines: dict[tuple, int],
                            model: type[BaseModel] | None = None) -> str:
    """One line per problem: ``source:line: key.path: message`` (``model``: to list the allowed keys)."""
    problems = []
    for err in exc.errors():
        # pydantic may put the name of a union member or a validator in the location: keep only the
        # parts that are keys of the document (and the last part, a key that is missing)
        loc: tuple = ()
        raw = tuple(p for p in err["loc"] if p != "[key]")
        key = (err.get("ctx") or {}).get("key")  # a validator names the key inside its value
        if key is not None:
            raw = (*raw, *(key if isinstance(key, tuple | list) else (key,)))
        for i, part in enumerate(raw):
            if not lines or (*loc, part) in lines or i == len(raw) - 1:  # no YAML lines: keep the whole path
                loc = (*loc, part)
        where = ".".join(str(p) for p in loc) or "(top level)"
        line = _line_of(loc, lines)
        problems.append(f"{source}:{line if line else '?'}: {where}: {_message(err, model)}" if lines
                        else f"{source}: {where}: {_message(err, model)}")
    return "\n".join(problems)


def read_text(path: str | Path, what: str = "file") -> str:
    """The text of a UTF-8 file; raise :class:`ConfigError` naming the file (and the line of a bad byte)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such file")
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError(f"{path}:{line}: not a UTF-8 text {what} (byte {exc.start}: "
                          f"{data[exc.start:exc.start + 1]!r}); save it as UTF-8") from None


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
        text = read_text(path, "YAML file")
    try:
        node = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        what = " ".join(f"{exc.context or ''} {exc.problem or ''}".split()) or "cannot be parsed"
        raise ConfigError(f"{where}: not valid YAML: {what}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {' '.join(str(exc).split())}") from exc
    except RecursionError:
        raise ConfigError(f"{path}: not valid YAML: nested too deeply") from None
    if node is None or not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of settings at the top level")
    duplicates = _duplicate_keys(node)
    if duplicates:
        raise ConfigError("\n".join(f"{path}:{line}: {'.'.join(map(str, key))}: given twice (YAML would keep "
                                    "only the last)" for key, line in duplicates))
    lines = _line_index(node)
    return validate_with_lines(data, model, str(path), lines)


def validate_with_lines(data: Any, model: type[M], source: str, lines: dict[tuple, int]) -> M:
    """Validate already-loaded data, reporting problems with the lines of its YAML source."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = format_validation_error(exc, source, lines, model)
        if exc.error_count() > 1:
            problems = f"{source} has {exc.error_count()} problems:\n{problems}"
        raise ConfigError(problems) from exc
