"""Label efficiency: how many reference labels each selection strategy needs for a given test error.

From one campaign file: a fixed candidate pool (labeled MD frames at every sampled temperature on every
exploration cell) and a fixed test set (separate MD walkers, other seeds, never in the pool).  Every strategy gets
the same budget schedule (cumulative label counts), the same MACE settings, the same validation frames and the
same seeds:

``random``
    seeded random picks from the pool;
``diversity``
    farthest point sampling on the campaign's SOAP descriptor (no model involved);
``uncertainty``
    the frames of highest committee force spread, the committee retrained at each budget step;
``campaign``
    the campaign's own selection at each step: relative trust windows on the committee's spread (scaled by its
    spread on the validation frames), spot checks, dedup against the labeled frames, the budget split over
    families and diverse picks (``selection.method``) on the focus descriptor.

``uncertainty`` and ``campaign`` start from the same random picks as ``random`` at the first budget (the same
model, trained once).  A model trained at a budget is evaluated on the test set: force-component RMSE and p95
(meV/Å), energy RMSE (meV/atom).  The headline ratio: labels a strategy needs to reach ``random``'s final force
RMSE (log-log interpolation between budget steps) over ``random``'s final budget, per seed.

The labels here are whatever the campaign's labeler is; a surrogate stays marked as one (``labeler.kind``).
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal

import numpy as np
from ase import Atoms
from pydantic import BaseModel, ConfigDict, Field, field_validator

from mlipflow.errors import ConfigError

logger = logging.getLogger(__name__)

Strategy = Literal["random", "diversity", "uncertainty", "campaign"]
STRATEGIES: tuple[Strategy, ...] = ("random", "diversity", "uncertainty", "campaign")
#: offset of the test walkers' seeds from the pool's (the test set never shares a trajectory with the pool)
TEST_SEED_OFFSET = 1000


class EfficiencySettings(BaseModel):
    """Size of a label-efficiency run (the campaign file gives the system, labeler, trainer and selection).

    Parameters
    ----------
    budgets
        Cumulative label counts at which every strategy trains and is tested (strictly increasing).
    seeds
        One repetition per seed (picks, trainings and committee members all derive from it).
    strategies
        Which strategies to run.
    n_valid
        Pool frames set aside (seeded, the same for every strategy) as MACE's validation frames; they also give the
        committee's spread scale of relative trust windows.  Not counted in the budgets.
    committee_size
        Members of the committees of ``uncertainty`` and ``campaign`` (member 0 is the model tested).
    hyperparams
        MACE fields over the campaign's trainer hyper-parameters.
    parallel
        Strategies run at the same time (threads; each training is one mace-torch process).
    pool_replicas, pool_steps, pool_equilibration, record_every, timestep
        Pool MD: walkers per cell and temperature, steps, steps not kept, record stride, time step (fs).
    test_replicas
        Test-set walkers per cell and temperature (seeds offset by ``TEST_SEED_OFFSET``).
    """

    model_config = ConfigDict(extra="forbid")

    budgets: list[int] = Field(default_factory=lambda: [4, 8, 16])
    seeds: list[int] = Field(default_factory=lambda: [0, 1, 2])
    strategies: list[Strategy] = Field(default_factory=lambda: list(STRATEGIES))
    n_valid: int = Field(6, ge=1)
    committee_size: int = Field(2, ge=2)
    hyperparams: dict[str, Any] = Field(default_factory=lambda: {"max_num_epochs": 20})
    parallel: int = Field(2, ge=1)
    pool_replicas: int = Field(2, ge=1)
    pool_steps: int = Field(50, ge=1)
    pool_equilibration: int = Field(10, ge=0)
    record_every: int = Field(5, ge=1)
    timestep: float = Field(2.0, gt=0, le=5.0)
    test_replicas: int = Field(1, ge=1)

    @field_validator("budgets")
    @classmethod
    def _increasing(cls, value: list[int]) -> list[int]:
        if not value or value[0] < 1 or any(b <= a for a, b in itertools.pairwise(value)):
            raise ValueError(f"budgets must be positive and strictly increasing, got {value}")
        return value

    @field_validator("seeds", "strategies")
    @classmethod
    def _non_empty(cls, value: list[Any]) -> list[Any]:
        if not value or len(set(value)) != len(value):
            raise ValueError(f"give at least one, without repeats, got {value}")
        return value

    @classmethod
    def tiny(cls, **overrides: Any) -> EfficiencySettings:
        """The test-sized run: 2 seeds, budgets 3 and 6, 3-epoch trainings."""
        values: dict[str, Any] = dict(budgets=[3, 6], seeds=[0, 1], n_valid=2, hyperparams={"max_num_epochs": 3},
                                      pool_replicas=1, pool_steps=28, pool_equilibration=4, record_every=4)
        values.update(overrides)
        return cls(**values)


def settings_from_options(**options: Any) -> EfficiencySettings:
    """:class:`EfficiencySettings` from command-line values; a bad one is a one-line :class:`ConfigError`."""
    from pydantic import ValidationError

    try:
        return EfficiencySettings(**{k: v for k, v in options.items() if v is not None})
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"])
        raise ConfigError(f"efficiency setting {key}: {err['msg']}") from None


# ---------------------------------------------------------------------------------------------------------- frames


def frame_key(atoms: Atoms) -> str:
    """Structure hash of a frame (positions, cell, numbers): two frames with the same key are the same frame."""
    from mlipflow.selection.descriptors import frame_hash

    return frame_hash(atoms)


def _digest(keys: Sequence[str]) -> str:
    return hashlib.sha256("\n".join(keys).encode()).hexdigest()[:16]


def build_pool_and_test(spec: Any, settings: EfficiencySettings, stores: Any, cache: Path | None = None,
                        processes: int = 2) -> tuple[list[Atoms], list[Atoms]]:
    """Label MD frames with the campaign's labeler: the pool and the test set (other walkers), cached as extxyz.

    Parameters
    ----------
    spec
        The :class:`~mlipflow.campaign.spec.CampaignSpec` (``explore`` cells, ``sampling.temperatures`` in K,
        ``labeler``, ``seed``).
    settings
        Pool and test MD sizes.
    stores
        Where the reference MD runs (trajectories, frames).
    cache
        Directory of the cached extxyz files (a rerun with the same file and settings labels nothing).

    Returns
    -------
    pool, test
        Atoms with ``REF_energy`` (eV), ``REF_forces`` (eV/Å) and ``info`` keys ``group``, ``family``,
        ``temperature`` (K).

    Raises
    ------
    ConfigError
        The pool would be empty (no exploration cell, no temperature, or no step kept after equilibration).
    """
    from ase.io import read, write

    from mlipflow.campaign.loop import labeler_from_spec
    from mlipflow.sampling.md import MDSettings
    from mlipflow.sampling.reference import run_reference_md
    from mlipflow.structures.structure_set import build_structure_set

    kept = kept_frames(settings)
    if kept < 1:
        raise ConfigError(f"efficiency pool_steps {settings.pool_steps} keeps no frame after pool_equilibration "
                          f"{settings.pool_equilibration} at record_every {settings.record_every}: the candidate "
                          "pool would be empty")
    temperatures = list(spec.sampling.temperatures)
    if not temperatures:
        raise ConfigError("sampling.temperatures is empty: the candidate pool would be empty")
    cells = build_structure_set(spec.explore).structures
    if not cells:
        raise ConfigError("explore gives no exploration cell: the candidate pool would be empty")
    expected = len(cells) * len(temperatures) * settings.pool_replicas * kept
    if settings.budgets[-1] > expected - settings.n_valid:
        raise ConfigError(f"efficiency budgets: the largest budget {settings.budgets[-1]} is larger than the "
                          f"candidate pool ({len(cells)} explore cells x {len(temperatures)} temperatures x "
                          f"{settings.pool_replicas} pool_replicas x {kept} frames = {expected}, less n_valid "
                          f"{settings.n_valid})")
    labeler = labeler_from_spec(spec)
    tag = hashlib.sha256(repr((spec.explore.model_dump(mode="json") if hasattr(spec.explore, "model_dump")
                               else spec.explore, temperatures, spec.labeler.model_dump(mode="json"), spec.seed,
                               settings.pool_replicas, settings.pool_steps, settings.pool_equilibration,
                               settings.record_every, settings.timestep, settings.test_replicas)).encode()
                         ).hexdigest()[:12]
    out = []
    for kind, replicas, seed in (("pool", settings.pool_replicas, spec.seed),
                                 ("test", settings.test_replicas, spec.seed + TEST_SEED_OFFSET)):
        path = cache / f"{spec.name}-{kind}-{tag}.xyz" if cache is not None else None
        if path is not None and path.is_file():
            out.append(read(path, ":"))
            continue
        md = MDSettings(n_steps=settings.pool_steps, record_every=settings.record_every, timestep=settings.timestep,
                        seed=seed, velocity_scale=spec.sampling.velocity_scale)
        summary = run_reference_md(stores, cells, labeler, temperatures, md, replicas=replicas,
                                   equilibration=settings.pool_equilibration, processes=processes,
                                   tags={"campaign": f"{spec.name}-efficiency-{kind}"})
        images = _summary_images(stores, summary, kind)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            write(path, images, format="extxyz", write_results=False)
        out.append(images)
    return out[0], out[1]


def kept_frames(settings: EfficiencySettings) -> int:
    """Frames one pool walker keeps: recorded every ``record_every`` steps from step 0, after equilibration."""
    recorded = settings.pool_steps // settings.record_every + 1
    dropped = -(-settings.pool_equilibration // settings.record_every)
    return max(0, recorded - dropped)


def _summary_images(stores: Any, summary: Any, kind: str) -> list[Atoms]:
    from mlipflow.data import Dataset
    from mlipflow.data.io import frame_to_extxyz_atoms

    dataset = Dataset(stores)
    images = []
    for fid in summary.frame_ids:
        frame = dataset.get(fid)
        atoms = frame_to_extxyz_atoms(frame, "train")
        atoms.info["group"] = f"{kind}:{frame.provenance.group}"
        atoms.info["temperature"] = frame.provenance.temperature
        atoms.info["family"] = frame.provenance.family
        images.append(atoms)
    return images


def labeler_e0s(spec: Any) -> dict[str, float] | None:
    """The labeler's energies (eV) of one atom of each element in a box (``None`` when the file turns them off)."""
    if not spec.labeler.isolated_atoms:
        return None
    from mlipflow.campaign.loop import labeler_from_spec
    from mlipflow.structures.bulk import isolated_atoms
    from mlipflow.structures.structure_set import section_elements

    labeler = labeler_from_spec(spec)
    elements = sorted(section_elements(spec.explore))
    return {s.species[0].symbol: float(labeler.label_one(s).energy)
            for s in isolated_atoms(elements, box=spec.labeler.isolated_atom_box)}


def check_inputs(pool: Sequence[Atoms], test: Sequence[Atoms], settings: EfficiencySettings) -> None:
    """Refuse an empty pool or test set, a budget schedule larger than the pool, or a test frame in the pool.

    Raises
    ------
    ConfigError
        Naming the key (``budgets``, ``n_valid``) or the set at fault.
    """
    if not pool:
        raise ConfigError("the candidate pool is empty (explore cells x sampling.temperatures x pool_replicas)")
    if not test:
        raise ConfigError("the test set is empty (explore cells x sampling.temperatures x test_replicas)")
    room = len(pool) - settings.n_valid
    if room < 1:
        raise ConfigError(f"efficiency n_valid {settings.n_valid} takes the whole pool of {len(pool)} frames")
    if settings.budgets[-1] > room:
        raise ConfigError(f"efficiency budgets: the largest budget {settings.budgets[-1]} is larger than the "
                          f"candidate pool ({len(pool)} frames less n_valid {settings.n_valid} = {room})")
    shared = {frame_key(a) for a in pool} & {frame_key(a) for a in test}
    if shared:
        raise ConfigError(f"{len(shared)} test frames are also in the candidate pool: the test set must come from "
                          "separate MD walkers")


# -------------------------------------------------------------------------------------------------------- training


class _Trainer:
    """Trains (once per training set and seed) and evaluates MACE models on a fixed pool; thread safe."""

    def __init__(self, root: Path, pool: list[Atoms], test: list[Atoms], valid: list[int], hp: Any,
                 labeler_info: Any, e0s: dict[str, float] | None) -> None:
        self.root, self.pool, self.test, self.valid = root, pool, test, valid
        self.hp, self.labeler_info, self.e0s = hp, labeler_info, e0s
        self._lock = threading.Lock()
        self._runs: dict[tuple[tuple[int, ...], int], Future] = {}
        self.trainings = 0

    def model(self, indices: Sequence[int], seed: int) -> dict[str, Any]:
        """``{path, wall_s, test, reused}`` of the model trained on pool ``indices`` with ``seed`` (memoised)."""
        key = (tuple(sorted(int(i) for i in indices)), int(seed))
        with self._lock:
            fut = self._runs.get(key)
            owner = fut is None
            if owner:
                fut = self._runs[key] = Future()
        if not owner:
            return {**fut.result(), "reused": True}
        try:
            result = self._train(list(key[0]), seed)
        except BaseException as exc:
            fut.set_exception(exc)
            raise
        fut.set_result(result)
        return {**result, "reused": False}

    def _frames(self, rows: Sequence[int], split: str) -> list[Any]:
        from mlipflow.data import LabeledFrame, Provenance

        out = []
        for r in rows:
            a = self.pool[r]
            out.append(LabeledFrame.from_atoms(
                a.copy(), self.labeler_info, energy=a.info["REF_energy"], forces=a.arrays["REF_forces"],
                provenance=Provenance(origin="reference_md", family=a.info.get("family"),
                                      group=f"{split}:{a.info.get('group')}", temperature=a.info.get("temperature"),
                                      config_type=split)))
        return out

    def _train(self, rows: list[int], seed: int) -> dict[str, Any]:
        from mlipflow.data import Dataset
        from mlipflow.settings import load_settings
        from mlipflow.storage import get_stores
        from mlipflow.training.registry import ModelRegistry
        from mlipflow.training.trainer import train_model

        with self._lock:
            self.trainings += 1
            n = self.trainings
        stores = get_stores(load_settings(home=self.root / f"t{n:04d}"))
        dataset = Dataset(stores)
        train, valid = self._frames(rows, "train"), self._frames(self.valid, "valid")
        dataset.add_frames(train + valid)
        version = dataset.create_version("efficiency", frame_ids=[f.content_hash for f in train],
                                         fractions={"train": 1.0})
        version = dataset.create_version("efficiency", parent=version.id, frame_ids=[f.content_hash for f in valid],
                                         fractions={"train": 0.0, "valid": 1.0, "test": 0.0})
        start = time.perf_counter()
        record = train_model(stores, version.id, self.hp.with_updates(seed=seed), name="efficiency",
                             e0s=self.e0s, evaluate_splits=("valid",))
        wall = time.perf_counter() - start
        path = ModelRegistry(stores).model_file(record.id)
        e, f = predict(path, self.hp.default_dtype, self.test)
        return {"path": str(path), "wall_s": wall, "test": test_errors(self.test, e, f)}

    def predict_pool(self, path: str, rows: Sequence[int]) -> tuple[np.ndarray, list[np.ndarray]]:
        return predict(Path(path), self.hp.default_dtype, [self.pool[r] for r in rows])


def predict(model_path: Path, dtype: str, images: Sequence[Atoms]) -> tuple[np.ndarray, list[np.ndarray]]:
    """Energies (eV) and forces (eV/Å) of a MACE model on ``images``."""
    from mlipflow.training.trainer import _EVAL_LOCK, load_calculator

    energies, forces = [], []
    with _EVAL_LOCK:  # the trainer's lock: in-process model loading and evaluation are not thread safe
        calc = load_calculator(model_path, default_dtype=dtype)
        for a in images:
            atoms = Atoms(numbers=a.numbers, positions=a.positions, cell=a.cell, pbc=a.pbc)
            atoms.calc = calc
            energies.append(atoms.get_potential_energy())
            forces.append(np.array(atoms.get_forces()))
    return np.array(energies), forces


def test_errors(test: Sequence[Atoms], energies: np.ndarray, forces: Sequence[np.ndarray]) -> dict[str, float]:
    """Force-component RMSE and p95 of |error| (meV/Å), energy RMSE (meV/atom) against the labels."""
    de = np.array([(e - a.info["REF_energy"]) / len(a) for a, e in zip(test, energies, strict=True)])
    df = np.abs(np.concatenate([(f - a.arrays["REF_forces"]).ravel() for a, f in zip(test, forces, strict=True)]))
    return {"rmse_f_meV_A": 1e3 * float(np.sqrt(np.mean(df**2))), "p95_f_meV_A": 1e3 * float(np.percentile(df, 95)),
            "rmse_e_meV_atom": 1e3 * float(np.sqrt(np.mean(de**2)))}


# ------------------------------------------------------------------------------------------------------ strategies


class EfficiencyContext:
    """What every strategy of one run shares: pool, candidates, descriptors, trainer, campaign selection."""

    def __init__(self, pool: list[Atoms], candidates: list[int], trainer: _Trainer, selection: Any,
                 descriptor: Any, settings: EfficiencySettings, *, spec: Any, test: list[Atoms]) -> None:
        self.pool, self.candidates, self.trainer = pool, candidates, trainer
        self.selection, self.descriptor, self.settings = selection, descriptor, settings
        self.spec, self.test = spec, test
        self.families = np.array([str(a.info.get("family") or "unknown") for a in pool], dtype=object)
        self.keys = [frame_key(a) for a in pool]
        self.pool_digest = _digest(self.keys)
        self.test_digest = _digest([frame_key(a) for a in test])
        self._desc: np.ndarray | None = None
        self._lock = threading.Lock()

    def descriptors(self) -> np.ndarray:
        """Descriptors of every pool frame (no spread: the focus atoms are the most atypical environments)."""
        with self._lock:
            if self._desc is None:
                self._desc = describe(self.descriptor, self.pool)
            return self._desc


def describe(descriptor: Any, frames: Sequence[Atoms], spreads: Sequence[np.ndarray] | None = None) -> np.ndarray:
    """Descriptor matrix of ``frames``; per-atom committee spreads (eV/Å), when given, steer the focus atoms."""
    from mlipflow.selection.descriptors import SPREAD_ARRAY

    plain = []
    for i, a in enumerate(frames):
        b = Atoms(numbers=a.numbers, positions=a.positions, cell=a.cell, pbc=a.pbc)
        if spreads is not None:
            b.arrays[SPREAD_ARRAY] = np.asarray(spreads[i], dtype=float)
        plain.append(b)
    return descriptor.compute(plain)


def _random_order(candidates: Sequence[int], seed: int) -> list[int]:
    return [int(candidates[i]) for i in np.random.default_rng([seed, 14]).permutation(len(candidates))]


def _committee(ctx: EfficiencyContext, labeled: list[int], seed: int) -> tuple[dict[str, Any], list[str], float]:
    """Member 0's result, every member's model path and the members' training wall time (s)."""
    from mlipflow.training.committee import committee_seeds

    results = [ctx.trainer.model(labeled, s) for s in committee_seeds(seed, ctx.settings.committee_size)]
    wall = sum(r["wall_s"] for r in results)
    return results[0], [r["path"] for r in results], wall


def _spreads(ctx: EfficiencyContext, paths: list[str], rows: Sequence[int]) -> list[np.ndarray]:
    """Per-atom committee force spread (eV/Å) of pool ``rows``."""
    from mlipflow.sampling.uncertainty import force_spread

    forces = [ctx.trainer.predict_pool(p, rows)[1] for p in paths]
    return [force_spread(np.stack([f[i] for f in forces])) for i in range(len(rows))]


def _uncertainty_picks(ctx: EfficiencyContext, labeled: list[int], n: int, paths: list[str], seed: int
                       ) -> tuple[list[int], dict[str, Any]]:
    rest = [r for r in ctx.candidates if r not in set(labeled)]
    spread = np.array([s.max() for s in _spreads(ctx, paths, rest)])
    order = np.argsort(-spread, kind="stable")[:n]
    return [rest[i] for i in order], {"max_spread_eV_A": float(spread.max()) if spread.size else None}


def _campaign_picks(ctx: EfficiencyContext, labeled: list[int], n: int, paths: list[str], seed: int
                    ) -> tuple[list[int], dict[str, Any]]:
    """The campaign's selection on the unlabeled pool (trust window, spot checks, dedup, budget split, diversity)."""
    from mlipflow.selection.dedup import Deduplicator
    from mlipflow.selection.diversity import select_diverse
    from mlipflow.selection.select import FrameTable, split_budget, spot_checks
    from mlipflow.selection.uncertainty import TrustWindow, TrustWindowSelector
    from mlipflow.training.committee import spread_statistics

    sel = ctx.selection
    labeled_set = set(labeled)
    rest = [r for r in ctx.candidates if r not in labeled_set]
    valid = ctx.trainer.valid
    atom_spread = _spreads(ctx, paths, rest + list(valid))
    rest_spread, valid_spread = atom_spread[:len(rest)], atom_spread[len(rest):]
    spread = np.array([s.max() for s in rest_spread])
    fams = ctx.families[rest]
    trust = TrustWindowSelector(default=TrustWindow(lower=sel.trust[0], upper=sel.trust[1]),
                                per_family={f: TrustWindow(lower=lo, upper=up)
                                            for f, (lo, up) in sel.trust_per_family.items()}, mode=sel.trust_mode)
    trust, _ = trust.scaled(spread_statistics(np.array([s.max() for s in valid_spread]),
                                              ctx.families[list(valid)].tolist()), sorted(set(fams.tolist())))
    categories = trust.classify(spread, fams.tolist())
    table = FrameTable(trajectory=[str(ctx.pool[r].info.get("group")) for r in rest], frame=list(range(len(rest))),
                       family=fams, walker_temperature=np.array([str(ctx.pool[r].info.get("temperature"))
                                                                 for r in rest], dtype=object),
                       spread=spread)
    checks = spot_checks(categories, table, min(sel.spot_checks, n), seed)
    cand = [i for i in np.flatnonzero(categories == "candidate") if i not in set(checks)]
    desc = describe(ctx.descriptor, [ctx.pool[rest[i]] for i in cand], [rest_spread[i] for i in cand])
    known = ctx.descriptors()[labeled] if labeled else None
    dedup = Deduplicator(min_distance=sel.dedup_distance).run([ctx.keys[rest[i]] for i in cand],
                                                              [ctx.keys[r] for r in labeled], desc, known)
    cand_fams = fams[cand] if cand else np.zeros(0, dtype=object)
    available = {f: int((dedup.keep & (cand_fams == f)).sum()) for f in sorted(set(fams.tolist()))}
    alloc = split_budget(available, n - len(checks), dict(sel.budget_per_family) or None)
    picked = [int(i) for i in checks]
    for fam in sorted(available):
        local = np.flatnonzero(dedup.keep & (cand_fams == fam))
        if alloc.get(fam, 0) and len(local):
            ref = known if sel.method == "fps" else None
            chosen = select_diverse(desc[local], alloc[fam], sel.method, seed=seed, reference=ref)
            picked += [int(cand[local[p.index]]) for p in chosen]
    filled = 0
    if len(picked) < n:  # too few candidates: the rest by largest spread (not failed), so budgets stay equal
        taken = set(picked)
        order = [int(i) for i in np.argsort(-spread, kind="stable") if int(i) not in taken]
        ok = [i for i in order if categories[i] != "failed"] + [i for i in order if categories[i] == "failed"]
        filled = n - len(picked)
        picked += ok[:filled]
    counts = {c: int((categories == c).sum()) for c in ("accurate", "candidate", "failed")}
    return [rest[i] for i in picked[:n]], {**counts, "spot_checks": len(checks), "dedup_dropped": dedup.n_dropped,
                                          "filled_by_spread": filled}


Picker = Callable[[EfficiencyContext, list[int], int, list[str], int], tuple[list[int], dict[str, Any]]]
_PICKERS: dict[str, Picker] = {"uncertainty": _uncertainty_picks, "campaign": _campaign_picks}


def run_strategy(ctx: EfficiencyContext, strategy: Strategy, seed: int) -> dict[str, Any]:
    """One strategy's learning curve for one seed: ``{points: [{labels, rmse_f_meV_A, ...}], wall_s, ...}``."""
    start = time.perf_counter()
    budgets = ctx.settings.budgets
    points: list[dict[str, Any]] = []
    train_wall = select_wall = 0.0
    if strategy in ("random", "diversity"):
        if strategy == "random":
            order = _random_order(ctx.candidates, seed)
        else:
            from mlipflow.selection.diversity import farthest_point_sampling

            t0 = time.perf_counter()
            picks = farthest_point_sampling(ctx.descriptors()[ctx.candidates], budgets[-1], seed=seed)
            order = [ctx.candidates[p.index] for p in picks]
            select_wall += time.perf_counter() - t0
        for b in budgets:
            res = ctx.trainer.model(order[:b], seed)
            train_wall += res["wall_s"]
            points.append({"labels": b, **res["test"], "picked": order[:b]})
    else:
        labeled = _random_order(ctx.candidates, seed)[:budgets[0]]
        for k, b in enumerate(budgets):
            if k + 1 < len(budgets):
                member0, paths, wall = _committee(ctx, labeled, seed)
            else:
                member0 = ctx.trainer.model(labeled, seed)
                wall = member0["wall_s"]
            train_wall += wall
            points.append({"labels": b, **member0["test"], "picked": list(labeled)})
            if k + 1 < len(budgets):
                t0 = time.perf_counter()
                new, info = _PICKERS[strategy](ctx, labeled, budgets[k + 1] - b, paths, seed)
                select_wall += time.perf_counter() - t0
                points[-1]["selection"] = info
                labeled = labeled + new
    wall = time.perf_counter() - start
    logger.info("efficiency %s seed %d: %s (%.0f s)", strategy, seed,
                ", ".join(f"{p['labels']}: {p['rmse_f_meV_A']:.0f}" for p in points), wall)
    # cost_s: training wall of every model the strategy used (shared ones too) plus its own selection time
    return {"strategy": strategy, "seed": seed, "points": points, "wall_s": wall, "train_wall_s": train_wall,
            "cost_s": train_wall + select_wall}


# --------------------------------------------------------------------------------------------------------- summary


def labels_to_reach(points: Sequence[dict[str, Any]], target: float, key: str = "rmse_f_meV_A") -> float | None:
    """Labels at which a curve first reaches ``target`` (log-log interpolation between steps; ``None``: never)."""
    prev = None
    for p in points:
        if p[key] <= target:
            if prev is None or prev[key] <= target:
                return float(p["labels"])
            x0, x1 = np.log(prev["labels"]), np.log(p["labels"])
            y0, y1 = np.log(prev[key]), np.log(p[key])
            t = (np.log(target) - y0) / (y1 - y0) if y1 != y0 else 1.0
            return float(np.exp(x0 + t * (x1 - x0)))
        prev = p
    return None


def summarize(runs: Sequence[dict[str, Any]], budgets: Sequence[int]) -> dict[str, Any]:
    """Mean and spread of every strategy's curve, labels to reach random's final force RMSE and the ratio."""
    by: dict[str, dict[int, dict[str, Any]]] = {}
    for r in runs:
        by.setdefault(r["strategy"], {})[r["seed"]] = r
    curves: dict[str, list[dict[str, Any]]] = {}
    for strategy, seeds in by.items():
        rows = []
        for i, b in enumerate(budgets):
            row: dict[str, Any] = {"labels": b}
            for key in ("rmse_f_meV_A", "p95_f_meV_A", "rmse_e_meV_atom"):
                vals = np.array([s["points"][i][key] for s in seeds.values()])
                row[key] = float(vals.mean())
                row[f"{key}_std"] = float(vals.std(ddof=1)) if len(vals) > 1 else 0.0
            rows.append(row)
        curves[strategy] = rows
    reach: dict[str, dict[str, Any]] = {}
    random = by.get("random", {})
    for strategy, seeds in by.items():
        per_seed = {}
        for seed, r in seeds.items():
            if seed not in random:
                continue
            target = random[seed]["points"][-1]["rmse_f_meV_A"]
            n = labels_to_reach(r["points"], target)
            per_seed[str(seed)] = {"target_rmse_f_meV_A": target, "labels": n,
                                   "ratio": None if n is None else n / budgets[-1]}
        ratios = [v["ratio"] for v in per_seed.values() if v["ratio"] is not None]
        reach[strategy] = {
            "per_seed": per_seed, "reached": len(ratios), "seeds": len(per_seed),
            "ratio_mean": float(np.mean(ratios)) if ratios and len(ratios) == len(per_seed) else None,
            "ratio_std": float(np.std(ratios, ddof=1)) if len(ratios) > 1 and len(ratios) == len(per_seed) else None,
            "ratio_bound": None if len(ratios) == len(per_seed) else f"> 1 in {len(per_seed) - len(ratios)} seeds",
            "wall_s_mean": float(np.mean([r["wall_s"] for r in seeds.values()])),
            "cost_s_mean": float(np.mean([r["cost_s"] for r in seeds.values()])),
        }
    head = reach.get("campaign", {})
    return {"curves": curves, "labels_to_reach_random": reach,
            "headline": {"strategy": "campaign", "ratio_mean": head.get("ratio_mean"),
                         "ratio_std": head.get("ratio_std"), "ratio_bound": head.get("ratio_bound"),
                         "goal": 0.5,
                         "definition": "labels the campaign's selection needs to reach random's final test force "
                                       "RMSE, over the labels random used (per seed, then mean and std)"}}


# ------------------------------------------------------------------------------------------------------------- run


def make_context(spec: Any, pool: list[Atoms], test: list[Atoms], settings: EfficiencySettings, *,
                 workdir: Path, e0s: dict[str, float] | None = None) -> EfficiencyContext:
    """Check the inputs and fix what every strategy shares: validation frames, candidates, MACE settings, descriptor.

    Parameters are those of :func:`run_efficiency`.
    """
    from mlipflow.campaign.loop import labeler_from_spec, selection_descriptor
    from mlipflow.structures.structure_set import section_elements
    from mlipflow.training.hyperparams import MaceHyperParams

    check_inputs(pool, test, settings)
    rng = np.random.default_rng([spec.seed, 1414])
    valid = sorted(int(i) for i in rng.choice(len(pool), settings.n_valid, replace=False))
    candidates = [i for i in range(len(pool)) if i not in set(valid)]
    base = MaceHyperParams.tiny() if spec.trainer.tiny else MaceHyperParams()
    hp = base.with_updates(**{**spec.trainer.hyperparams, **settings.hyperparams})
    if hp.batch_size > settings.budgets[0]:  # mace refuses a batch larger than the training set
        logger.info("batch_size %d lowered to the first budget %d", hp.batch_size, settings.budgets[0])
        hp = hp.with_updates(batch_size=settings.budgets[0])
    labeler_info = labeler_from_spec(spec).info
    trainer = _Trainer(workdir, list(pool), list(test), valid, hp, labeler_info, e0s)
    elements = sorted({s for a in list(pool) + list(test) for s in a.get_chemical_symbols()}
                      | set(section_elements(spec.explore)))
    descriptor = selection_descriptor(spec, elements)
    if not hasattr(descriptor, "compute"):
        raise ConfigError("selection.descriptor: mace is not supported by the efficiency benchmark, use a soap one")
    return EfficiencyContext(list(pool), candidates, trainer, spec.selection, descriptor, settings,
                             spec=spec, test=list(test))


def run_strategies(ctx: EfficiencyContext, jobs: Sequence[tuple[Strategy, int]] | None = None, *,
                   on_run: Callable[[list[dict[str, Any]]], None] | None = None) -> list[dict[str, Any]]:
    """Every ``(strategy, seed)`` (default: all of the settings', seed-major), ``settings.parallel`` at a time.

    ``on_run`` is called with the runs finished so far after each one (to write partial results).
    """
    settings = ctx.settings
    jobs = list(jobs) if jobs is not None else [(st, seed) for seed in settings.seeds for st in settings.strategies]
    done: list[dict[str, Any]] = []
    lock = threading.Lock()

    def one(strategy: Strategy, seed: int) -> dict[str, Any]:
        run = run_strategy(ctx, strategy, seed)
        # every strategy saw the same pool, validation frames and test set
        run.update(pool_digest=ctx.pool_digest, test_digest=ctx.test_digest, valid=list(ctx.trainer.valid))
        with lock:
            done.append(run)
            if on_run is not None:
                on_run(list(done))
        return run

    with ThreadPoolExecutor(max_workers=settings.parallel) as ex:
        futures = [ex.submit(one, strategy, seed) for strategy, seed in jobs]
        return [f.result() for f in futures]


def run_efficiency(spec: Any, pool: list[Atoms], test: list[Atoms], settings: EfficiencySettings, *,
                   workdir: Path, e0s: dict[str, float] | None = None,
                   on_partial: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Run every strategy and seed on a fixed pool and test set; the document of ``label_efficiency.json``.

    Parameters
    ----------
    spec
        The campaign file (labeler, trainer hyper-parameters, selection settings).
    pool, test
        Labeled frames (``REF_energy`` in eV, ``REF_forces`` in eV/Å; ``info`` ``family``, ``group``,
        ``temperature`` in K); the test frames must not be in the pool.
    settings
        Budgets, seeds, strategies, sizes.
    workdir
        Where the trainings' homes go (one per training).
    e0s
        Isolated-atom energies (eV) of the labeler for MACE (``None``: MACE's own fit).
    on_partial
        Called with the document of the runs finished so far (``complete: false``) after each run.

    Raises
    ------
    ConfigError
        An empty pool or test set, a budget schedule larger than the pool, a test frame in the pool.
    """
    start = time.perf_counter()
    ctx = make_context(spec, pool, test, settings, workdir=workdir, e0s=e0s)
    partial = None
    if on_partial is not None:
        def partial(runs: list[dict[str, Any]]) -> None:
            on_partial(efficiency_document(ctx, runs, time.perf_counter() - start, complete=False))
    runs = run_strategies(ctx, on_run=partial)
    return efficiency_document(ctx, runs, time.perf_counter() - start)


def efficiency_document(ctx: EfficiencyContext, runs: list[dict[str, Any]], wall_s: float, *,
                        complete: bool = True) -> dict[str, Any]:
    """The JSON document of a run: settings, labeler (a surrogate marked as one), pool, test set, runs, summary."""
    info = ctx.trainer.labeler_info
    surrogate = info.kind != "dft"
    valid = ctx.trainer.valid
    return {
        "campaign": ctx.spec.name,
        "labeler": {"name": info.name, "kind": info.kind, "surrogate": surrogate,
                    "note": "surrogate labels, not DFT" if surrogate else "DFT labels"},
        "settings": ctx.settings.model_dump(mode="json"),
        "hyperparams": ctx.trainer.hp.model_dump(mode="json"),
        "selection": ctx.spec.selection.model_dump(mode="json"),
        "pool": {"frames": len(ctx.pool), "candidates": len(ctx.candidates), "valid": len(valid),
                 "families": sorted(set(ctx.families.tolist())),
                 "temperatures_K": sorted({float(a.info.get("temperature") or 0) for a in ctx.pool}),
                 "digest": ctx.pool_digest},
        "test": {"frames": len(ctx.test), "digest": ctx.test_digest,
                 "in_pool": len(set(ctx.keys) & {frame_key(a) for a in ctx.test})},
        "trainings": ctx.trainer.trainings,
        "complete": complete,
        "wall_s": wall_s,
        "runs": runs,
        **summarize(runs, ctx.settings.budgets),
    }


def efficiency_lines(doc: dict[str, Any]) -> list[str]:
    """The learning curves and the headline ratio in plain lines (what ``mlipflow efficiency`` prints)."""
    lab = doc.get("labeler") or {}
    lines = [f"label efficiency of {doc.get('campaign')} ({lab.get('name')} labels, {lab.get('note')}): "
             f"pool {doc['pool']['frames']} frames, test {doc['test']['frames']} frames"]
    for strategy, rows in (doc.get("curves") or {}).items():
        lines.append(f"  {strategy:<12} force RMSE by labels: " + ", ".join(
            f"{r['labels']}: {r['rmse_f_meV_A']:.0f}±{r['rmse_f_meV_A_std']:.0f}" for r in rows) + " meV/Å")
    for strategy, r in (doc.get("labels_to_reach_random") or {}).items():
        shown = (f"{r['ratio_mean']:.2f}" + (f" ± {r['ratio_std']:.2f}" if r.get("ratio_std") is not None else "")
                 if r.get("ratio_mean") is not None else str(r.get("ratio_bound")))
        lines.append(f"  {strategy:<12} labels / random's to reach random's final force RMSE: {shown} "
                     f"(training + selection {r['cost_s_mean']:.0f} s per seed)")
    return lines


# ---------------------------------------------------------------------------------------------------------- report

#: benchmark-result kind of a label-efficiency document (:func:`mlipflow.benchmark.results.save_result`)
KIND = "label_efficiency"
_STYLE = {"random": ("#777777", "o"), "diversity": ("#1f77b4", "s"), "uncertainty": ("#ff7f0e", "^"),
          "campaign": ("#d62728", "D")}


def plot_efficiency(doc: dict[str, Any]) -> str:
    """Learning curves (test force RMSE and energy RMSE against labels, mean ± std over seeds) as base64 PNG."""
    from matplotlib.ticker import NullLocator

    from mlipflow.benchmark.plotting import figure_to_base64, new_figure

    fig, (ax_f, ax_e) = new_figure(2, width=4.6, height=3.8)
    budgets = (doc.get("settings") or {}).get("budgets") or []
    for strategy, rows in (doc.get("curves") or {}).items():
        color, marker = _STYLE.get(strategy, ("black", "x"))
        x = [r["labels"] for r in rows]
        for ax, key in ((ax_f, "rmse_f_meV_A"), (ax_e, "rmse_e_meV_atom")):
            ax.errorbar(x, [r[key] for r in rows], yerr=[r[f"{key}_std"] for r in rows], color=color,
                        marker=marker, capsize=3, label=strategy)
    lab = doc.get("labeler") or {}
    for ax, unit in ((ax_f, "test force RMSE (meV/Å)"), (ax_e, "test energy RMSE (meV/atom)")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks(budgets, [str(b) for b in budgets])
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xlabel(f"labels ({lab.get('name')}, {lab.get('kind')})")
        ax.set_ylabel(unit)
    ax_f.legend(fontsize=7)
    fig.tight_layout()
    return figure_to_base64(fig)


def save_efficiency(stores: Any, doc: dict[str, Any]) -> Any:
    """Store a label-efficiency document as a benchmark result of its campaign (the report shows it)."""
    from mlipflow.benchmark.results import save_result

    head = doc.get("headline") or {}
    lab = doc.get("labeler") or {}
    summary = {"ratio_campaign_over_random": head.get("ratio_mean"), "ratio_std": head.get("ratio_std"),
               "seeds": len((doc.get("settings") or {}).get("seeds") or []),
               "budgets": (doc.get("settings") or {}).get("budgets")}
    return save_result(stores, subject=str(doc.get("campaign")), kind=KIND, model="selection strategies",
                       reference=f"{lab.get('name')} ({lab.get('kind')})", summary=summary, result=doc,
                       plots={"learning curves": plot_efficiency(doc)}, note=str(lab.get("note", "")))


def report_section(benchmarks: Sequence[dict[str, Any]]) -> str | None:
    """HTML of the newest label-efficiency result among ``benchmarks`` (``None`` when there is none)."""
    import html

    docs = [b for b in benchmarks if b.get("kind") == KIND and isinstance(b.get("result"), dict)]
    if not docs:
        return None
    doc = docs[-1]["result"]
    lab = doc.get("labeler") or {}
    head = doc.get("headline") or {}
    if head.get("ratio_mean") is not None:
        ratio = f"{head['ratio_mean']:.2f}" + (f" ± {head['ratio_std']:.2f}" if head.get("ratio_std") is not None
                                                else "")
    else:
        ratio = f"not reached ({head.get('ratio_bound')})"
    labeler = f"{lab.get('name')} ({'surrogate, not DFT' if lab.get('surrogate') else lab.get('kind')})"
    parts = [f"<p><b>labels the campaign's selection needs to reach random's final test force RMSE, over "
             f"random's: {html.escape(ratio)}</b> (goal ≤ {head.get('goal', 0.5)}; labeler "
             f"{html.escape(labeler)}; pool {doc['pool']['frames']} frames, test set {doc['test']['frames']} "
             f"frames from separate MD, {len(doc['settings']['seeds'])} seeds"
             f"{'' if doc.get('complete', True) else '; partial run'})</p>"]
    rows = "".join(
        f"<tr><td>{html.escape(s)}</td>" + "".join(f"<td>{r['rmse_f_meV_A']:.0f} ± {r['rmse_f_meV_A_std']:.0f}</td>"
                                                   for r in curve)
        + f"<td>{_ratio_text(doc, s)}</td><td>{doc['labels_to_reach_random'][s]['cost_s_mean']:.0f}</td></tr>"
        for s, curve in (doc.get("curves") or {}).items())
    budgets = doc["settings"]["budgets"]
    parts.append("<table><thead><tr><th>strategy</th>" + "".join(f"<th>F RMSE @ {b} (meV/Å)</th>" for b in budgets)
                 + "<th>labels / random's</th><th>training + selection (s per seed)</th></tr></thead><tbody>"
                 + rows + "</tbody></table>")
    for title, b64 in (docs[-1].get("plots") or {}).items():
        parts.append(f'<img alt="label efficiency {html.escape(title)}" src="data:image/png;base64,{b64}">')
    return "".join(parts)


def _ratio_text(doc: dict[str, Any], strategy: str) -> str:
    r = (doc.get("labels_to_reach_random") or {}).get(strategy) or {}
    if r.get("ratio_mean") is None:
        return str(r.get("ratio_bound") or "—")
    return f"{r['ratio_mean']:.2f}" + (f" ± {r['ratio_std']:.2f}" if r.get("ratio_std") is not None else "")
