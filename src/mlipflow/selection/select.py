"""The selector: trust window -> dedup -> descriptors -> diversity, with budgets, writing why each frame was picked.

:func:`select_frames` reads sampled trajectories from the store (uncertainty arrays first, then only the frames it
needs), in six steps, each a function here:

1. :func:`uncertainty_table`: every frame's family, walker temperature and largest-atom force spread;
2. :func:`classify`: accurate / candidate / failed with the trust windows, ratios per family and temperature;
3. :func:`describe_candidates`: structure hashes and descriptors of the candidates, in batches;
4. dedup against the campaign's dataset version (:mod:`mlipflow.selection.reference`) and within the pool, the
   budget split over families (:func:`split_budget`), diverse picks per family (FPS or PCA + clustering);
5. :func:`spot_checks`: a few frames the committee called accurate, picked at random (seeded), so that the true
   error of "accurate" is measured, not assumed;
6. :func:`stop_frames`: of every walker a stability monitor stopped, its last frame the labeler accepts (the onset
   of the collapse the committee did not see coming), from the budget before the diverse picks.

A candidate with two atoms closer than the labeler's pre-labeling floor (:class:`~mlipflow.labeling.filters.
SanityFilter`, the same floors) counts as ``failed`` and is never picked: the labeler would refuse it, and the
budget would be spent on nothing.

The result is a small document of frame references and reasons; :func:`picked_structures` turns the picks into
structures for a labeler.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from ase import Atoms
from ase.data import chemical_symbols
from pymatgen.core import Structure
from pymatgen.io.ase import AseAtomsAdaptor

from mlipflow.errors import ConfigError
from mlipflow.sampling.trajectory import TrajectoryStore
from mlipflow.selection.dedup import Deduplicator
from mlipflow.selection.descriptors import Descriptor, DescriptorCache, SoapDescriptor, frame_hash
from mlipflow.selection.diversity import _allocate, select_diverse
from mlipflow.selection.reference import Reference, dataset_reference
from mlipflow.selection.schemas import SelectedFrame, SelectionResult
from mlipflow.selection.uncertainty import TrustWindowSelector
from mlipflow.storage import Stores

logger = logging.getLogger(__name__)

Method = Literal["fps", "kmeans", "minibatch", "birch"]


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


@dataclass
class FrameTable:
    """One row per explored frame: where it is and what the committee made of it."""

    trajectory: list[str] = field(default_factory=list)
    frame: list[int] = field(default_factory=list)
    family: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=object))
    walker_temperature: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=object))
    spread: np.ndarray = field(default_factory=lambda: np.zeros(0))
    step: np.ndarray = field(default_factory=lambda: np.zeros(0))
    temperature: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def __len__(self) -> int:
        return len(self.trajectory)


def uncertainty_table(tstore: TrajectoryStore, headers: dict[str, dict[str, Any]]) -> FrameTable:
    """Family, walker temperature, spread (eV/Å), step and target temperature (K) of every frame (small arrays)."""
    table = FrameTable()
    fams, wtemps, spreads, steps, temps = [], [], [], [], []
    for tid, header in headers.items():
        arrays = tstore.arrays(tid, ["max_force_spread", "step", "target_temperature"])
        n = header["n_frames"]
        meta = header.get("metadata") or {}
        table.trajectory += [tid] * n
        table.frame += list(range(n))
        fams += [meta.get("family") or "unknown"] * n
        wtemps += [temperature_label(meta)] * n
        spreads.append(arrays.get("max_force_spread", np.full(n, np.nan)))
        steps.append(arrays.get("step", np.full(n, -1)))
        temps.append(arrays.get("target_temperature", np.full(n, np.nan)))
    table.family = np.array(fams, dtype=object)
    table.walker_temperature = np.array(wtemps, dtype=object)
    table.spread = np.concatenate(spreads).astype(float) if spreads else np.zeros(0)
    table.step = np.concatenate(steps) if steps else np.zeros(0)
    table.temperature = np.concatenate(temps).astype(float) if temps else np.zeros(0)
    return table


def classify(table: FrameTable, trust: TrustWindowSelector
             ) -> tuple[np.ndarray, dict[str, dict[str, float]], dict[str, dict[str, dict[str, float]]]]:
    """Categories of every frame, and the trust report per family and per family and walker temperature.

    Frames without a recorded spread are candidates (never accurate).
    """
    fams = table.family.tolist()
    categories = trust.classify(np.nan_to_num(table.spread, nan=0.0), fams)
    categories[np.isnan(table.spread) & (categories != "failed")] = "candidate"
    report, by_temperature = trust_reports(table, categories, trust)
    return categories, report, by_temperature


def trust_reports(table: FrameTable, categories: np.ndarray, trust: TrustWindowSelector
                  ) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, dict[str, float]]]]:
    """The trust report of ``categories`` per family, and per family and walker temperature."""
    fams = table.family.tolist()
    report = trust.report(categories, fams)
    by_temperature: dict[str, dict[str, dict[str, float]]] = {}
    for fam in sorted(set(fams)):
        labels = set(table.walker_temperature[table.family == fam].tolist())
        for label in sorted(labels, key=_temperature_order):
            mask = (table.family == fam) & (table.walker_temperature == label)
            by_temperature.setdefault(fam, {})[label] = trust.report(categories[mask], [fam] * int(mask.sum()))[fam]
    return report, by_temperature


def _frames_of(tstore: TrajectoryStore, table: FrameTable, rows: Sequence[int]):
    """Atoms of table rows, read per trajectory (yields (row, atoms) in the order of ``rows`` per trajectory)."""
    by_traj: dict[str, list[int]] = {}
    for row in rows:
        by_traj.setdefault(table.trajectory[row], []).append(int(row))
    for tid, trows in by_traj.items():
        for atoms, row in zip(tstore.iter_atoms(tid, [table.frame[r] for r in trows]), trows, strict=True):
            atoms.calc = None
            yield row, atoms


def label_floor_check(covalent_fraction: float | None = None) -> Callable[[Atoms], str | None]:
    """The labeler's pre-labeling pair floors as a check of one frame: the reason it would be refused, or None.

    The floors are :func:`~mlipflow.structures.bonds.default_pair_floor`'s, as in
    :meth:`~mlipflow.labeling.filters.SanityFilter.check_structure`; the check is the MD monitor's (ASE neighbour
    list on the frame as it is read, no conversion to a pymatgen structure).
    """
    from mlipflow.sampling.monitors import MinDistanceMonitor
    from mlipflow.structures.bonds import COVALENT_FRACTION

    monitor = MinDistanceMonitor(covalent_fraction=COVALENT_FRACTION if covalent_fraction is None
                                 else covalent_fraction)

    def check(atoms: Atoms) -> str | None:
        monitor.reset(atoms)  # the floor table of this frame's species (a few pairs)
        verdict = monitor.check(atoms, 0)
        return None if verdict is None else verdict.message

    return check


def describe_candidates(tstore: TrajectoryStore, table: FrameTable, rows: np.ndarray, descriptor: Descriptor,
                        cache: DescriptorCache | None, batch: int = 1000,
                        refuse: Callable[[Atoms], str | None] | None = None
                        ) -> tuple[np.ndarray, list[str], np.ndarray, list[int]]:
    """(rows in described order, structure hashes, descriptor matrix, refused rows) of candidate rows, in batches.

    ``refuse`` (see :func:`label_floor_check`): rows it gives a reason for are not described but returned last.
    """
    refused: list[int] = []
    ordered: list[int] = []
    hashes: list[str] = []
    parts: list[np.ndarray] = []
    buf_atoms: list[Any] = []
    buf_rows: list[int] = []

    def flush() -> None:
        h = [frame_hash(a) for a in buf_atoms]
        parts.append(cache.describe(descriptor, buf_atoms, h) if cache else descriptor.compute(buf_atoms))
        hashes.extend(h)
        ordered.extend(buf_rows)
        buf_atoms.clear()
        buf_rows.clear()

    for row, atoms in _frames_of(tstore, table, rows):
        if refuse is not None and refuse(atoms) is not None:
            refused.append(row)
            continue
        buf_atoms.append(atoms)
        buf_rows.append(row)
        if len(buf_atoms) >= batch:
            flush()
    if buf_atoms:
        flush()
    desc = np.concatenate(parts) if parts else np.zeros((0, 0), np.float32)
    return np.array(ordered, dtype=int), hashes, desc, refused


def spot_checks(categories: np.ndarray, table: FrameTable, n: int, seed: int) -> list[int]:
    """Rows of ``n`` frames called accurate, drawn at random (seeded), spread over families and temperatures."""
    accurate = np.flatnonzero(categories == "accurate")
    if n <= 0 or not len(accurate):
        return []
    rng = np.random.default_rng(seed + 7919)
    strata: dict[tuple[str, str], list[int]] = {}
    for row in accurate:
        strata.setdefault((table.family[row], table.walker_temperature[row]), []).append(int(row))
    pools = {k: list(rng.permutation(v)) for k, v in sorted(strata.items())}
    chosen: list[int] = []
    while len(chosen) < n and any(pools.values()):
        for key in sorted(pools):
            if pools[key] and len(chosen) < n:
                chosen.append(int(pools[key].pop(0)))
    return chosen


def stop_frames(tstore: TrajectoryStore, table: FrameTable, headers: dict[str, dict[str, Any]], n: int,
                refuse: Callable[[Atoms], str | None] | None = None, look_back: int = 5
                ) -> list[tuple[int, Atoms, str]]:
    """Of each walker stopped by a stability monitor or an error, its last ``n`` frames the labeler accepts.

    Frames are taken from the end of the trajectory backwards, at most ``look_back`` per walker (an earlier frame
    is no longer the onset of what stopped it).  Returns ``(row, atoms, stop reason)``.
    """
    if n <= 0:
        return []
    first_row: dict[str, int] = {}
    for row, tid in enumerate(table.trajectory):
        first_row.setdefault(tid, row)
    out: list[tuple[int, Atoms, str]] = []
    for tid, header in headers.items():
        reason = str((header.get("metadata") or {}).get("stop_reason") or "completed")
        n_frames = int(header.get("n_frames", 0))
        if not (reason.startswith("monitor:") or reason.startswith("error")) or n_frames == 0 or tid not in first_row:
            continue
        frames = list(range(max(0, n_frames - look_back), n_frames))  # read in order, walked from the end
        taken = 0
        for frame, atoms in reversed(list(zip(frames, tstore.iter_atoms(tid, frames), strict=True))):
            atoms.calc = None
            if refuse is not None and refuse(atoms) is not None:
                continue
            out.append((first_row[tid] + frame, atoms, reason))
            taken += 1
            if taken >= n:
                break
    return out


def _reason(trust: TrustWindowSelector, family: str, spread: float) -> str:
    win = trust.window(family)
    if np.isnan(spread):
        return "no committee spread recorded"
    return f"max force spread {spread:.3f} eV/Å in trust window [{win.lower:.3g}, {win.upper:.3g}]"


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
    reference_version: str | None = None,
    n_spot_checks: int = 0,
    batch: int = 1000,
    cluster_kwargs: dict[str, Any] | None = None,
    n_stop_frames: int = 0,
    label_floors: bool = True,
) -> SelectionResult:
    """Select frames to label from sampled trajectories.

    Parameters
    ----------
    stores
        The stores (trajectories, descriptor cache, frames collection).
    trajectory_ids
        Trajectories to select from (from :class:`~mlipflow.sampling.schemas.SamplingSummary`).
    trust
        Trust windows (eV/Å) per family, absolute (a relative selector must be :meth:`~TrustWindowSelector.scaled`
        first); frames without a recorded spread are candidates.
    descriptor
        Default: SOAP over the species of the trajectories.
    method
        ``fps``, ``kmeans``, ``minibatch`` or ``birch``.
    budget
        Frames to pick in this iteration (spot checks included).
    budget_per_family
        Cap per family (int for all, or a dict with an optional ``default``).
    seed
        Seed of every random choice (same seed, same picks).
    dedup_distance
        Descriptor distance under which a candidate counts as a dataset frame (``None``: hash check only).
    use_cache
        Cache descriptors in the store.
    reference_version
        The campaign's current dataset version: candidates equal to (or, with ``dedup_distance``, near) its frames
        are dropped, and FPS picks far from them.  ``None``: no dataset reference (only in-pool duplicates).
    n_spot_checks
        Frames the committee called accurate to label as well (from the budget), to measure their true error.
    batch
        Frames read and described at a time.
    cluster_kwargs
        Extra :class:`~mlipflow.selection.diversity.ClusterSelector` arguments (``n_clusters``, ``n_components``).
    n_stop_frames
        Of every walker a stability monitor (or an error) stopped, label its last this many frames the labeler
        accepts (from the budget, before the diverse picks; see :func:`stop_frames`).
    label_floors
        Candidates with two atoms closer than the labeler's pre-labeling floor are ``failed``, never picked.
    """
    start = time.perf_counter()
    trust = trust or TrustWindowSelector()
    if trust.mode != "absolute":
        raise ConfigError("select_frames needs absolute trust windows: scale a relative selector first")
    tstore = TrajectoryStore(stores)
    headers = {t: tstore.header(t) for t in trajectory_ids}
    if descriptor is None:
        species = sorted({chemical_symbols[z] for h in headers.values() for z in h["numbers"]})
        descriptor = SoapDescriptor(species=species)
    cache = DescriptorCache(stores) if use_cache else None

    table = uncertainty_table(tstore, headers)
    categories, report, by_temperature = classify(table, trust)
    cand = np.flatnonzero(categories == "candidate")
    refuse = label_floor_check() if label_floors else None
    checks = spot_checks(categories, table, min(n_spot_checks, budget), seed)

    need_reference = reference_version is not None
    ref = (dataset_reference(stores, reference_version, descriptor) if need_reference
           else Reference([], [], np.zeros((0, 0), np.float32)))
    stopped = [(row, frame_hash(atoms), why) for row, atoms, why in stop_frames(tstore, table, headers,
                                                                                n_stop_frames, refuse)]
    stopped = [s for s in stopped if s[1] not in ref.hash_set][: max(0, budget - len(checks))]
    budget_left = max(0, budget - len(checks) - len(stopped))
    forced = {row for row, _, _ in stopped}
    rows_arr, hashes, desc, refused = describe_candidates(
        tstore, table, np.array([r for r in cand if int(r) not in forced], dtype=int), descriptor, cache, batch,
        refuse)
    if refused:  # the labeler would refuse them: failed, not candidates
        categories[refused] = "failed"
        report, by_temperature = trust_reports(table, categories, trust)
        cand = np.flatnonzero(categories == "candidate")
    known = ref.descriptors if len(ref.descriptors) else None
    dedup = Deduplicator(min_distance=dedup_distance).run(hashes, ref.hash_set, desc, known)

    picks: list[SelectedFrame] = []
    per_family: dict[str, dict[str, int]] = {}
    fam_of = table.family[rows_arr] if len(rows_arr) else np.zeros(0, dtype=object)
    available = {fam: int((dedup.keep & (fam_of == fam)).sum()) if len(rows_arr) else 0
                 for fam in sorted(set(table.family.tolist()))}
    alloc = split_budget(available, budget_left, budget_per_family)
    for fam in sorted(available):
        local = np.flatnonzero(dedup.keep & (fam_of == fam)) if len(rows_arr) else np.zeros(0, int)
        per_family[fam] = {"frames": int((table.family == fam).sum()),
                           "candidates": int((table.family[cand] == fam).sum()), "after_dedup": len(local),
                           "picked": 0, "spot_checks": sum(1 for r in checks if table.family[r] == fam)}
        if alloc.get(fam, 0) == 0 or len(local) == 0:
            continue
        chosen = select_diverse(desc[local], alloc[fam], method, seed=seed,
                                reference=known if method == "fps" else None, **(cluster_kwargs or {}))
        per_family[fam]["picked"] = len(chosen)
        for p in chosen:
            i = int(local[p.index])
            row = int(rows_arr[i])
            picks.append(_pick(table, row, hashes[i], "candidate", False,
                               f"{_reason(trust, fam, table.spread[row])} ({fam}); {p.reason}; family budget "
                               f"{alloc[fam]} of {budget}"))
    for row, h, why in stopped:
        picks.append(_pick(table, row, h, str(categories[row]), False,
                           f"last frame the labeler accepts before the walker stopped ({why}; max force spread "
                           f"{table.spread[row]:.3f} eV/Å, {table.family[row]}, {table.walker_temperature[row]})"))
    for row in checks:
        fam = table.family[row]
        a = next(iter(tstore.iter_atoms(table.trajectory[row], [table.frame[row]])))
        a.calc = None
        picks.append(_pick(table, row, frame_hash(a), "accurate", True,
                           f"spot check: max force spread {table.spread[row]:.3f} eV/Å below the accurate bound "
                           f"{trust.window(fam).lower:.3g} ({fam}, {table.walker_temperature[row]})"))
    counts = {"frames": len(table), "candidates": len(cand), "dedup_dropped": dedup.n_dropped,
              "picked": len(picks), "spot_checks": len(checks), "accurate": int((categories == "accurate").sum()),
              "failed": int((categories == "failed").sum()), "reference_frames": len(ref.frame_ids),
              "below_label_floor": len(refused), "stop_frames": len(stopped)}
    if cache is not None:
        counts.update(cache_hits=cache.hits, cache_misses=cache.misses)
    windows = {fam: [trust.window(fam).lower, trust.window(fam).upper] for fam in sorted(available)}
    result = SelectionResult(picks=picks, trust_report=report, trust_by_temperature=by_temperature, counts=counts,
                             per_family=per_family, windows=windows, reference=reference_version, method=method,
                             seed=seed, seconds=time.perf_counter() - start)
    logger.info("selection (%s, seed %d): %s", method, seed, counts)
    return result


def _pick(table: FrameTable, row: int, structure_hash: str, category: str, spot_check: bool, reason: str
          ) -> SelectedFrame:
    spread = table.spread[row]
    return SelectedFrame(
        trajectory_id=table.trajectory[row], frame=table.frame[row], family=table.family[row],
        md_step=int(table.step[row]) if table.step[row] >= 0 else None,
        temperature=None if np.isnan(table.temperature[row]) else float(table.temperature[row]),
        max_force_spread=None if np.isnan(spread) else float(spread), category=category, spot_check=spot_check,
        structure_hash=structure_hash, reason=reason)


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
                "parameters": {"reason": p.reason, "max_force_spread": p.max_force_spread, "frame": p.frame,
                               "category": p.category, "spot_check": p.spot_check},
                "parent": f"trajectory:{tid}",
            }}
            out[(tid, p.frame)] = structure
    return [out[k] for k in result.frame_keys]
