"""The selector: trust window -> dedup -> descriptors -> diversity, with budgets, writing why each frame was picked.

:func:`select_frames` reads sampled trajectories from the store (uncertainty arrays first, then only the
candidate frames), classifies every frame with a :class:`TrustWindowSelector`, drops candidates already in the
dataset (hash) or on top of a dataset frame (descriptor distance), splits the iteration's budget over the
families (in proportion to their surviving candidates, capped per family) and picks diverse frames per family
by FPS or PCA + clustering.  The result is a small document: frame references and reasons.
:class:`SelectorMaker` wraps it in a job; :func:`picked_structures` turns the picks into structures for a
labeler.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from jobflow import Job, Maker, job
from pydantic import BaseModel, Field
from pymatgen.core import Structure
from pymatgen.io.ase import AseAtomsAdaptor

from mlipflow.data import LabeledFrame
from mlipflow.errors import ConfigError
from mlipflow.replay import finished_step, record_step, step_key
from mlipflow.sampling.trajectory import TrajectoryStore
from mlipflow.selection.dedup import Deduplicator
from mlipflow.selection.descriptors import Descriptor, DescriptorCache, SoapDescriptor, frame_hash
from mlipflow.selection.diversity import _allocate, select_diverse
from mlipflow.selection.uncertainty import TrustWindowSelector
from mlipflow.storage import Stores, get_stores

logger = logging.getLogger(__name__)

Method = Literal["fps", "kmeans", "minibatch", "birch"]


class SelectedFrame(BaseModel):
    """One picked frame: where it is, what it is, and why it was picked (spread in eV/Å, temperature in K)."""

    trajectory_id: str
    frame: int
    family: str | None = None
    md_step: int | None = None
    temperature: float | None = None
    max_force_spread: float | None = None
    category: str = "candidate"
    structure_hash: str
    reason: str


class SelectionResult(BaseModel):
    """Output of a selection: picks with reasons, trust-window ratios per family, and counts."""

    picks: list[SelectedFrame] = Field(default_factory=list)
    trust_report: dict[str, dict[str, float]] = Field(default_factory=dict)
    trust_by_temperature: dict[str, dict[str, dict[str, float]]] = Field(
        default_factory=dict, description="family -> walker temperature label (e.g. '900 K') -> counts and ratios")
    counts: dict[str, int] = Field(default_factory=dict)
    per_family: dict[str, dict[str, int]] = Field(default_factory=dict)
    method: str = "fps"
    seed: int = 0
    seconds: float = 0.0

    @property
    def frame_keys(self) -> list[tuple[str, int]]:
        return [(p.trajectory_id, p.frame) for p in self.picks]


def _temperature_order(label: str) -> tuple[float, str]:
    number = "".join(c for c in label if c.isdigit() or c == ".")
    return (float(number) if number else float("inf"), label)


def temperature_label(metadata: dict[str, Any]) -> str:
    """The temperature a walker sampled, from its trajectory header: ``'900 K'``, or ``'ramp to 1500 K'``."""
    points = metadata.get("schedule") or []
    temps = [float(p[1]) for p in points if isinstance(p, list | tuple) and len(p) >= 2]
    if not temps:
        return "unknown"
    if max(temps) - min(temps) < 1e-6:
        return f"{temps[0]:g} K"
    return f"ramp to {max(temps):g} K"


def _family_budget(budget_per_family: int | dict[str, int] | None, family: str) -> int | None:
    if budget_per_family is None or isinstance(budget_per_family, int):
        return budget_per_family
    return budget_per_family.get(family, budget_per_family.get("default"))


def split_budget(available: dict[str, int], budget: int, budget_per_family: int | dict[str, int] | None = None
                 ) -> dict[str, int]:
    """Split ``budget`` over families in proportion to their ``available`` candidates, capped per family.

    Every family with candidates gets at least one pick while the budget lasts (families in name order).
    """
    fams = sorted(f for f, n in available.items() if n > 0)
    if not fams or budget <= 0:
        return {f: 0 for f in available}
    sizes = np.array([available[f] for f in fams])
    caps = np.array([min(available[f], _family_budget(budget_per_family, f) or available[f]) for f in fams])
    total = int(min(budget, caps.sum()))
    alloc = np.minimum(_allocate(sizes, total), caps)
    while alloc.sum() < total:  # picks a capped family could not take go to the others, most candidates first
        room = caps - alloc
        order = [i for i in np.argsort(-sizes, kind="stable") if room[i] > 0]
        for i in order[: total - alloc.sum()]:
            alloc[i] += 1
    return {**{f: 0 for f in available}, **{f: int(a) for f, a in zip(fams, alloc, strict=True)}}


def _dataset_reference(stores: Stores, descriptor: Descriptor, cache: DescriptorCache | None,
                       query: dict[str, Any] | None, need_descriptors: bool) -> tuple[set[str], np.ndarray | None]:
    hashes, atoms = [], []
    for doc in stores.frames.find(query if query is not None else {"status": "labeled"}):
        a = LabeledFrame.from_document(doc).to_atoms()
        a.calc = None
        hashes.append(frame_hash(a))
        atoms.append(a)
    if not need_descriptors or not atoms:
        return set(hashes), None
    if cache is not None:
        return set(hashes), cache.describe(descriptor, atoms, hashes)
    return set(hashes), descriptor.compute(atoms)


def select_frames(
    stores: Stores,
    trajectory_ids: Sequence[str],
    *,
    trust: TrustWindowSelector | None = None,
    descriptor: Descriptor | None = None,
    method: Method = "fps",
    budget: int = 100,
    budget_per_family: int | dict[str, int] | None = None,
    seed: int = 0,
    dedup_distance: float | None = None,
    use_cache: bool = True,
    dataset_query: dict[str, Any] | None = None,
    batch: int = 1000,
    cluster_kwargs: dict[str, Any] | None = None,
) -> SelectionResult:
    """Select frames to label from sampled trajectories.

    Parameters
    ----------
    stores
        The stores (trajectories, descriptor cache, frames collection).
    trajectory_ids
        Trajectories to select from (from :class:`~mlipflow.sampling.jobs.SamplingSummary`).
    trust
        Trust windows (eV/Å) per family; frames without a recorded spread are candidates.
    descriptor
        Default: SOAP over the species of the trajectories.
    method
        ``fps``, ``kmeans``, ``minibatch`` or ``birch``.
    budget
        Frames to pick in this iteration.
    budget_per_family
        Cap per family (int for all, or a dict with an optional ``default``).
    seed
        Seed of every random choice (same seed, same picks).
    dedup_distance
        Descriptor distance under which a candidate counts as a dataset frame (``None``: hash check only).
    use_cache
        Cache descriptors in the store.
    dataset_query
        Frames collection query for the dataset to deduplicate against (default: labeled frames).
    batch
        Frames read and described at a time.
    cluster_kwargs
        Extra :class:`~mlipflow.selection.diversity.ClusterSelector` arguments (``n_clusters``, ``n_components``).
    """
    start = time.perf_counter()
    trust = trust or TrustWindowSelector()
    tstore = TrajectoryStore(stores)
    headers = {t: tstore.header(t) for t in trajectory_ids}
    if descriptor is None:
        from ase.data import chemical_symbols

        species = sorted({chemical_symbols[z] for h in headers.values() for z in h["numbers"]})
        descriptor = SoapDescriptor(species=species)
    cache = DescriptorCache(stores) if use_cache else None

    # 1. uncertainty of every frame, from the small arrays only
    rows_traj, rows_frame, fams, spreads, steps, temps, walker_temps = [], [], [], [], [], [], []
    for tid, header in headers.items():
        arrays = tstore.arrays(tid, ["max_force_spread", "step", "target_temperature"])
        n = header["n_frames"]
        fam = (header.get("metadata") or {}).get("family") or "unknown"
        rows_traj += [tid] * n
        rows_frame += list(range(n))
        fams += [fam] * n
        walker_temps += [temperature_label(header.get("metadata") or {})] * n
        spreads.append(arrays.get("max_force_spread", np.full(n, np.nan)))
        steps.append(arrays.get("step", np.full(n, -1)))
        temps.append(arrays.get("target_temperature", np.full(n, np.nan)))
    spread = np.concatenate(spreads) if spreads else np.zeros(0)
    step_arr = np.concatenate(steps) if steps else np.zeros(0)
    temp_arr = np.concatenate(temps) if temps else np.zeros(0)
    categories = trust.classify(np.nan_to_num(spread, nan=0.0), fams)
    categories[np.isnan(spread) & (categories != "failed")] = "candidate"
    report = trust.report(categories, fams)
    by_temperature: dict[str, dict[str, dict[str, float]]] = {}
    fam_np, temp_np = np.array(fams, dtype=object), np.array(walker_temps, dtype=object)
    for fam in sorted(set(fams)):
        for label in sorted(set(temp_np[fam_np == fam].tolist()), key=_temperature_order):
            mask = (fam_np == fam) & (temp_np == label)
            by_temperature.setdefault(fam, {})[label] = trust.report(categories[mask], [fam] * int(mask.sum()))[fam]
    cand = np.flatnonzero(categories == "candidate")

    # 2. hashes and descriptors of the candidates, read in batches, deduplicated against the dataset
    known_hashes, known_desc = _dataset_reference(stores, descriptor, cache, dataset_query,
                                                  need_descriptors=dedup_distance is not None or method == "fps")
    hashes: list[str] = []
    desc_parts: list[np.ndarray] = []
    by_traj: dict[str, list[int]] = {}
    for row in cand:
        by_traj.setdefault(rows_traj[row], []).append(int(row))
    ordered_rows: list[int] = []
    for tid, rows in by_traj.items():
        frames_idx = [rows_frame[r] for r in rows]
        buf_atoms, buf_rows = [], []
        for atoms, r in zip(tstore.iter_atoms(tid, frames_idx), rows, strict=True):
            atoms.calc = None
            buf_atoms.append(atoms)
            buf_rows.append(r)
            if len(buf_atoms) >= batch:
                h = [frame_hash(a) for a in buf_atoms]
                desc_parts.append(cache.describe(descriptor, buf_atoms, h) if cache else descriptor.compute(buf_atoms))
                hashes += h
                ordered_rows += buf_rows
                buf_atoms, buf_rows = [], []
        if buf_atoms:
            h = [frame_hash(a) for a in buf_atoms]
            desc_parts.append(cache.describe(descriptor, buf_atoms, h) if cache else descriptor.compute(buf_atoms))
            hashes += h
            ordered_rows += buf_rows
    rows_arr = np.array(ordered_rows, dtype=int)
    desc = np.concatenate(desc_parts) if desc_parts else np.zeros((0, 0), np.float32)
    dedup = Deduplicator(min_distance=dedup_distance).run(hashes, known_hashes, desc, known_desc)

    # 3. budget per family, diversity picks per family
    fam_arr = np.array(fams, dtype=object)
    available = {}
    for fam in sorted(set(fams)):
        available[fam] = int((dedup.keep & (fam_arr[rows_arr] == fam)).sum()) if len(rows_arr) else 0
    alloc = split_budget(available, budget, budget_per_family)
    picks: list[SelectedFrame] = []
    per_family: dict[str, dict[str, int]] = {}
    for fam in sorted(available):
        mask = dedup.keep & (fam_arr[rows_arr] == fam) if len(rows_arr) else np.zeros(0, bool)
        local = np.flatnonzero(mask)
        per_family[fam] = {"frames": int((fam_arr == fam).sum()), "candidates": int((fam_arr[cand] == fam).sum()),
                           "after_dedup": len(local), "picked": 0}
        if alloc.get(fam, 0) == 0 or len(local) == 0:
            continue
        chosen = select_diverse(desc[local], alloc[fam], method, seed=seed,
                                reference=known_desc if method == "fps" else None, **(cluster_kwargs or {}))
        per_family[fam]["picked"] = len(chosen)
        for p in chosen:
            i = int(local[p.index])
            row = int(rows_arr[i])
            win = trust.window(fam)
            s = spread[row]
            why_unc = ("no committee spread recorded" if np.isnan(s) else
                       f"max force spread {s:.3f} eV/Å in trust window [{win.lower:g}, {win.upper:g}]")
            picks.append(SelectedFrame(
                trajectory_id=rows_traj[row], frame=rows_frame[row], family=fam,
                md_step=int(step_arr[row]) if step_arr[row] >= 0 else None,
                temperature=None if np.isnan(temp_arr[row]) else float(temp_arr[row]),
                max_force_spread=None if np.isnan(s) else float(s), category="candidate",
                structure_hash=hashes[i],
                reason=f"{why_unc} ({fam}); {p.reason}; family budget {alloc[fam]} of {budget}",
            ))
    counts = {"frames": len(spread), "candidates": len(cand), "dedup_dropped": dedup.n_dropped,
              "picked": len(picks), "accurate": int((categories == "accurate").sum()),
              "failed": int((categories == "failed").sum())}
    if cache is not None:
        counts.update(cache_hits=cache.hits, cache_misses=cache.misses)
    result = SelectionResult(picks=picks, trust_report=report, trust_by_temperature=by_temperature,
                             counts=counts, per_family=per_family,
                             method=method, seed=seed, seconds=time.perf_counter() - start)
    logger.info("selection (%s, seed %d): %s", method, seed, counts)
    return result


def picked_structures(stores: Stores, result: SelectionResult | dict, *, campaign: str | None = None,
                      iteration: int | None = None) -> list[Structure]:
    """Structures of the picks, with ``properties["provenance"]`` (family, generator, parameters, parent)."""
    result = result if isinstance(result, SelectionResult) else SelectionResult(**result)
    tstore = TrajectoryStore(stores)
    by_traj: dict[str, list[SelectedFrame]] = {}
    for p in result.picks:
        by_traj.setdefault(p.trajectory_id, []).append(p)
    out: dict[tuple[str, int], Structure] = {}
    for tid, picks in by_traj.items():
        wanted = {p.frame: p for p in picks}
        for atoms in tstore.iter_atoms(tid, sorted(wanted)):
            p = wanted[atoms.info["frame"]]
            atoms.calc = None
            structure = AseAtomsAdaptor.get_structure(atoms)
            for prop in list(structure.site_properties):
                structure.remove_site_property(prop)
            # the keys of mlipflow.data.Provenance at the top level, so the dataset can query them
            structure.properties = {"provenance": {
                "origin": "sampler", "family": p.family, "generator": "selection",
                "campaign": campaign, "iteration": iteration, "temperature": p.temperature, "md_step": p.md_step,
                "parameters": {"reason": p.reason, "max_force_spread": p.max_force_spread, "frame": p.frame},
                "parent": f"trajectory:{tid}",
            }}
            out[(tid, p.frame)] = structure
    return [out[k] for k in result.frame_keys]


@job
def select_job(
    sampling: Any,
    trust: TrustWindowSelector,
    descriptor: Any,
    method: str,
    budget: int,
    budget_per_family: Any,
    seed: int,
    dedup_distance: float | None,
    cluster_kwargs: dict[str, Any] | None = None,
) -> SelectionResult:
    """Job: select from the trajectories of a sampling output (a SamplingSummary, its dict, or trajectory ids)."""
    if isinstance(sampling, dict):
        ids = [w["trajectory_id"] for w in sampling.get("walkers", []) if w.get("trajectory_id")]
    elif isinstance(sampling, list | tuple):
        ids = []
        for item in sampling:
            if isinstance(item, str):
                ids.append(item)
            elif isinstance(item, dict):
                ids += [w["trajectory_id"] for w in item.get("walkers", []) if w.get("trajectory_id")]
            else:
                ids += list(item.trajectory_ids)
    else:
        ids = list(sampling.trajectory_ids)
    stores = get_stores()
    # a selection that already finished on these trajectories is replayed, not redone: redone after its picks
    # were labeled, dedup would drop them and pick others (a resumed campaign must follow the same path)
    key = step_key("select", {"trajectories": ids, "trust": trust, "descriptor": descriptor, "method": method,
                              "budget": budget, "budget_per_family": budget_per_family, "seed": seed,
                              "dedup_distance": dedup_distance, "cluster_kwargs": cluster_kwargs})
    done = finished_step(stores, key)
    if done is not None:
        logger.info("selection: replaying the finished selection %s", key)
        return SelectionResult(**done)
    result = select_frames(stores, ids, trust=trust, descriptor=descriptor, method=method, budget=budget,
                           budget_per_family=budget_per_family, seed=seed, dedup_distance=dedup_distance,
                           cluster_kwargs=cluster_kwargs)
    record_step(stores, key, "select", result.model_dump(mode="json"))
    return result


@job
def picked_structures_job(result: SelectionResult, campaign: str | None = None,
                          iteration: int | None = None) -> list[Structure]:
    """Job: the structures of a selection (few hundred at most), for a labeler's ``make``."""
    return picked_structures(get_stores(), result, campaign=campaign, iteration=iteration)


@dataclass
class SelectorMaker(Maker):
    """Select frames to label from a sampling job's trajectories.

    Parameters
    ----------
    name
        Job name.
    trust
        Trust windows per family (eV/Å).
    descriptor
        :class:`~mlipflow.selection.descriptors.SoapDescriptor` or ``MaceDescriptor`` (default SOAP over the
        trajectories' species).
    method
        ``fps``, ``kmeans``, ``minibatch`` or ``birch``.
    budget
        Frames per iteration.
    budget_per_family
        Cap per family (int, or dict with an optional ``default``).
    seed
        Seed of every random choice.
    dedup_distance
        Descriptor distance under which a candidate duplicates a dataset frame.
    cluster_kwargs
        Extra clustering arguments.
    """

    name: str = "select"
    trust: TrustWindowSelector = field(default_factory=TrustWindowSelector)
    descriptor: Any = None
    method: Method = "fps"
    budget: int = 100
    budget_per_family: int | dict[str, int] | None = None
    seed: int = 0
    dedup_distance: float | None = None
    cluster_kwargs: dict[str, Any] = field(default_factory=dict)

    def make(self, sampling: Any) -> Job:
        """The selection job over ``sampling`` (a sampling job's output, or trajectory ids)."""
        if self.budget < 0:
            raise ConfigError(f"selection budget must be >= 0, got {self.budget}")
        sel = select_job(sampling, self.trust, self.descriptor, self.method, self.budget, self.budget_per_family,
                         self.seed, self.dedup_distance, self.cluster_kwargs or None)
        sel.name = self.name
        return sel
