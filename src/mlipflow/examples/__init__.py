"""Example input files shipped inside the package: ``mlipflow examples`` lists and copies them.

The files live in the repository's ``flows/`` directory (where users of a checkout edit them); this package
directory holds links to them, which a wheel turns into copies, so that an installed mlipflow runs
``mlipflow run --example li2o`` anywhere.  An example's name is its file name without ``campaign_`` and
``.yaml`` (``li2o``, ``toy``, ``structures_preview``); a campaign can also be named by its ``name`` key
(``li2o-gb``).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Literal

import yaml

from mlipflow.errors import ConfigError

Kind = Literal["campaign", "structures"]


@dataclass(frozen=True)
class Example:
    """One shipped example file.

    Attributes
    ----------
    name
        Short name (``li2o``).
    path
        The file inside the installed package.
    kind
        ``campaign`` (``mlipflow run``) or ``structures`` (``mlipflow structures preview``).
    campaign
        The campaign's ``name`` key (campaigns only).
    description
        The file's first comment line.
    """

    name: str
    path: Path
    kind: Kind
    campaign: str | None
    description: str


def _describe(path: Path) -> tuple[Kind, str | None, str]:
    text = path.read_text()
    first = next((ln.lstrip("# ").strip() for ln in text.splitlines() if ln.startswith("#")), "")
    data = yaml.safe_load(text) or {}
    if isinstance(data, dict) and "labeler" in data and "name" in data:
        return "campaign", str(data["name"]), first
    return "structures", None, first


def list_examples() -> list[Example]:
    """The shipped examples, sorted by name."""
    root = Path(str(resources.files(__name__)))
    found = []
    for path in sorted(root.glob("*.yaml")):
        kind, campaign, description = _describe(path)
        name = path.stem.removeprefix("campaign_")
        found.append(Example(name=name, path=path, kind=kind, campaign=campaign, description=description))
    return found


def example_path(name: str, kind: Kind | None = None) -> Path:
    """The file of the example ``name`` (short name or campaign name).

    Raises
    ------
    ConfigError
        If there is no such example (the message lists them).
    """
    examples = [e for e in list_examples() if kind is None or e.kind == kind]
    for example in examples:
        if name in (example.name, example.campaign, example.path.name):
            return example.path
    names = ", ".join(e.name for e in examples)
    raise ConfigError(f"no example {name!r}; the shipped {kind + ' ' if kind else ''}examples are: {names} "
                      "(`mlipflow examples`)")


def copy_examples(destination: Path, names: list[str] | None = None, overwrite: bool = False) -> list[Path]:
    """Copy examples (all, or ``names``) into ``destination`` as real files; return the written paths.

    Raises
    ------
    ConfigError
        If a file exists there already and ``overwrite`` is false (nothing is copied then).
    """
    sources = [example_path(n) for n in names] if names else [e.path for e in list_examples()]
    destination = Path(destination)
    targets = [destination / src.name for src in sources]
    existing = [t for t in targets if t.exists()]
    if existing and not overwrite:
        raise ConfigError(f"{existing[0]} exists; pass --force to overwrite it")
    destination.mkdir(parents=True, exist_ok=True)
    for src, target in zip(sources, targets, strict=True):
        shutil.copyfile(src, target)  # follows the link: a real, editable file
    return targets
