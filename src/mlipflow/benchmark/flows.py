"""The benchmark stage of a campaign as a flow of jobs (see :mod:`mlipflow.benchmark.campaign` for the science).

:class:`CampaignBenchmarkMaker` is what the campaign loop runs on its final committee when it stops, and what
``mlipflow benchmark MODEL_OR_CAMPAIGN`` runs on any registered model: MD of the model at every sampled
temperature, the reference labels of its frames (through the labeler's own Maker, on ``cpu`` workers), errors of
every iteration's committee on those frames, the model's MD next to the reference MD (RDF, ADF, MSD), a long
stability run, speed, boundary energies after relaxation, and a summary with the verdict, stored as the campaign
document's ``benchmark`` and as results of the report.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from jobflow import Flow, Maker, OutputReference, Response, job
from pymatgen.core import Structure
from pymatgen.io.ase import AseAtomsAdaptor

from mlipflow.benchmark.schemas import (
    BenchmarkDoc,
    GBEnergyDoc,
    PropertiesDoc,
    SpeedDoc,
    StabilityDoc,
    TestErrorsDoc,
    TestMDDoc,
    TestSetDoc,
)
from mlipflow.execution import Resource, set_resource
from mlipflow.labeling.base import Labeler
from mlipflow.labeling.jobs import LabelMaker, label_when_known

logger = logging.getLogger(__name__)


def _get(obj: Any, key: str, default: Any = None) -> Any:
    if obj is None:
        return default
    return obj.get(key, default) if isinstance(obj, dict) else getattr(obj, key, default)


def _structures(structures: Any) -> list[Structure]:
    if isinstance(structures, dict):
        return list(structures["structures"])
    if hasattr(structures, "structures"):
        return list(structures.structures)
    return list(structures or [])


def _reference_cells(reference: Any) -> list[Structure]:
    """The starting cell of every reference-MD walker (one per family and size)."""
    from mlipflow.sampling.trajectory import TrajectoryStore
    from mlipflow.storage import get_stores

    tstore = TrajectoryStore(get_stores())
    seen, out = set(), []
    for w in _get(reference, "walkers", []) or []:
        tid = _get(w, "trajectory_id")
        key = (_get(w, "family"), _get(w, "n_atoms"))
        if not tid or key in seen:
            continue
        seen.add(key)
        atoms = next(iter(tstore.iter_atoms(tid, [0])))
        atoms.calc = None
        structure = AseAtomsAdaptor.get_structure(atoms)
        for prop in list(structure.site_properties):
            structure.remove_site_property(prop)
        structure.properties = {"provenance": {"family": _get(w, "family")}}
        out.append(structure)
    return out


def _bulk_cell(cells: list[Structure]) -> Structure | None:
    bulk = [c for c in cells if ((c.properties or {}).get("provenance") or {}).get("family") == "bulk"]
    return min(bulk, key=len) if bulk else None


@job(output_schema=TestMDDoc)
def test_md_job(model_id: str, structures: Any, reference: Any, temperatures: list[float], settings: dict[str, Any],
                seed: int = 0, processes: int = 1, tags: dict[str, Any] | None = None) -> TestMDDoc:
    """Job: the model's own MD on the exploration and reference cells; the frames to label (with provenance).

    The test set has no frame ids yet: the campaign's labeler labels the structures in the next job.
    """
    from mlipflow.benchmark.campaign import test_set_frames
    from mlipflow.storage import get_stores

    cells = _structures(structures) + _reference_cells(reference)
    doc, frames = test_set_frames(get_stores(), model_id, cells, temperatures, n_steps=settings["test_md_steps"],
                                  every=settings["test_every"], equilibration=settings["test_equilibration"],
                                  timestep=settings["timestep"], seed=seed, processes=processes, tags=tags)
    return TestMDDoc(test_set=doc, structures=frames)


@job(output_schema=TestSetDoc)
def test_set_job(md: TestMDDoc, labels: Any) -> TestSetDoc:
    """Job: the labeled MLMD test set (the frames the labeler labeled, failed ones left out)."""
    from mlipflow.storage import get_stores

    doc = md.test_set.model_copy()
    ids = list(_get(labels, "frame_ids", []) or [])
    labeled = {d["_id"] for d in get_stores().frames.find({"_id": {"$in": ids}, "status": "labeled"}, {"_id": 1})}
    doc.frame_ids = [i for i in ids if i in labeled]
    doc.labeler = str(_get(labels, "labeler", ""))
    return doc


def _committees(stores: Any, campaign: str | None, committee: str) -> list[tuple[int | None, str]]:
    """(iteration it was trained in, committee id) of every committee of the campaign, oldest first."""
    doc = stores.campaigns.find_one({"_id": campaign}) if campaign else None
    out: list[tuple[int | None, str]] = []
    for rec in (doc or {}).get("iterations", []):
        if rec.get("committee") and rec["committee"] not in [c for _, c in out]:
            out.append((int(rec["iteration"]) - 1, rec["committee"]))
    if committee not in [c for _, c in out]:
        out.append((None, committee))
    return out


@job(output_schema=TestErrorsDoc)
def test_errors_job(test_set: TestSetDoc, committee: str, campaign: str | None = None,
                    bulk: Structure | None = None) -> TestErrorsDoc:
    """Job: errors of every committee of the campaign (first member and mean) on the one fixed test set."""
    from mlipflow.benchmark.campaign import test_set_errors
    from mlipflow.storage import get_stores
    from mlipflow.training.registry import ModelRegistry

    stores = get_stores()
    registry = ModelRegistry(stores)
    models: list[tuple[int | None, str, str]] = []
    for iteration, cid in _committees(stores, campaign, committee):
        record = registry.get(cid)
        first = record.members[0] if record.kind == "committee" else record.id
        models.append((iteration, first, "member"))
        if record.kind == "committee":
            models.append((iteration, cid, "committee"))
    return test_set_errors(stores, test_set, models, AseAtomsAdaptor.get_atoms(bulk) if bulk is not None else None)


@job(output_schema=PropertiesDoc)
def properties_job(model_id: str, reference: Any, n_steps: int, seed: int = 0,
                   tags: dict[str, Any] | None = None) -> PropertiesDoc:
    """Job: the model's MD next to the reference MD (RDF, ADF, Li MSD)."""
    from mlipflow.benchmark.campaign import reference_properties
    from mlipflow.storage import get_stores

    if reference is None:
        return PropertiesDoc()
    return PropertiesDoc(comparisons=reference_properties(get_stores(), model_id, reference, n_steps=n_steps,
                                                          seed=seed, tags=tags))


@job(output_schema=StabilityDoc)
def stability_runs_job(model_id: str, structures: Any, temperature: float, n_steps: int, timestep: float,
                       seed: int = 0, processes: int = 1, tags: dict[str, Any] | None = None) -> StabilityDoc:
    """Job: long MD of the exploration cells at the highest sampled temperature, with the monitors."""
    from mlipflow.benchmark.campaign import stability_runs
    from mlipflow.storage import get_stores

    return StabilityDoc(runs=stability_runs(get_stores(), model_id, _structures(structures), temperature,
                                            n_steps=n_steps, timestep=timestep, seed=seed, processes=processes,
                                            tags=tags))


@job(output_schema=SpeedDoc)
def speed_runs_job(model_id: str, structures: Any, sizes: list[int]) -> SpeedDoc:
    """Job: MD steps/s and ns/day of the model (and of its committee) at several atom counts."""
    from mlipflow.benchmark.baselines import calculator_from_spec
    from mlipflow.benchmark.speed import md_speed
    from mlipflow.storage import get_stores

    cells = _structures(structures)
    if not cells:
        return SpeedDoc()
    stores = get_stores()
    atoms = AseAtomsAdaptor.get_atoms(min(cells, key=len))
    calc = calculator_from_spec(f"model:{model_id}", stores=stores, torch_threads=stores.settings.torch_threads,
                                default_dtype="float32")
    return SpeedDoc(points=[p.model_dump() for p in md_speed(atoms, calc, sizes=sizes, n_steps=10)])


@job(output_schema=GBEnergyDoc)
def boundary_energy_job(model_id: str, structures: Any, reference: Any, labeler: Labeler,
                        relax_steps: int) -> GBEnergyDoc:
    """Job: energies of the exploration's boundary cells after relaxation, model against reference (J/m²)."""
    from mlipflow.benchmark.campaign import boundary_energies
    from mlipflow.storage import get_stores

    cells = _structures(structures)
    gbs = [c for c in cells if ((c.properties or {}).get("provenance") or {}).get("family") == "grain_boundary"]
    bulk = _bulk_cell(_reference_cells(reference)) if reference is not None else None
    if not gbs or bulk is None:
        logger.info("boundary energies: %s", "no boundary cell" if not gbs else "no bulk reference cell")
        return GBEnergyDoc()
    return GBEnergyDoc(energies=boundary_energies(get_stores(), model_id, gbs, bulk, labeler,
                                                  relax_steps=relax_steps))


@job(output_schema=BenchmarkDoc)
def benchmark_summary_job(campaign: str | None, committee: str, model_id: str, reference: str, targets: dict[str, Any],
                          errors: TestErrorsDoc, properties: PropertiesDoc, stability: StabilityDoc | None,
                          speed: SpeedDoc, gb_energy: GBEnergyDoc | None, subject: str | None = None) -> BenchmarkDoc:
    """Job: the verdict, stored as the campaign's ``benchmark`` and as report results (``subject``)."""
    from mlipflow.benchmark.campaign import verdict
    from mlipflow.benchmark.results import save_result
    from mlipflow.campaign.spec import BenchmarkTargets
    from mlipflow.storage import get_stores

    stores = get_stores()
    props = list(properties.comparisons)
    stability = list(stability.runs) if stability is not None else []
    speed = list(speed.points)
    gb_list = list(gb_energy.energies) if gb_energy is not None else []
    final = errors.final("member")
    members = [m for m in errors.models if m.kind == "member"]
    result = verdict(BenchmarkTargets(**targets), final, props, stability, members)
    doc = BenchmarkDoc(
        campaign=campaign or "", committee=committee, model=model_id, reference=reference, verdict=result,
        trajectory_errors={} if final is None else {
            **final.model_dump(exclude={"by_group"}), "by_group": final.by_group,
            "committee_mean": (errors.final("committee").model_dump(exclude={"by_group"})
                               if errors.final("committee") else None)},
        learning_curve=[m.model_dump(exclude={"by_group"}) for m in errors.models],
        properties=props, stability=stability, speed=speed, gb_energy=gb_list)
    name = subject or campaign or model_id
    if final is not None:
        save_result(stores, subject=name, kind="errors", model=model_id, reference=reference,
                    summary={"rmse_e_meV_atom": final.rmse_e_meV_atom, "rmse_f_meV_A": final.rmse_f_meV_A,
                             "p95_f_meV_A": final.p95_f_meV_A, "max_f_meV_A": final.max_f_meV_A,
                             "frames": final.n_frames},
                    result=errors, note=f"MLMD-trajectory test set: {errors.test_set}")
    for p in props:
        save_result(stores, subject=name, kind="rdf", model=model_id, reference=reference,
                    summary={"T_K": p.temperature_K, "family": p.family,
                             **{f"first_peak_{k}_A": v for k, v in p.rdf_peaks_model_A.items() if k != "all"},
                             **{f"reference_first_peak_{k}_A": v for k, v in p.rdf_peaks_reference_A.items()
                                if k != "all"}, "max_shift_A": p.rdf_max_shift_A},
                    result=p, note=p.note)
        save_result(stores, subject=name, kind="diffusion", model=model_id, reference=reference,
                    summary={"T_K": p.temperature_K, "family": p.family, "msd_Li_A2": p.msd_li_model_A2,
                             "reference_msd_Li_A2": p.msd_li_reference_A2, "lag_fs": p.lag_fs,
                             "D_Li_cm2_s": p.d_li_model_cm2_s, "reference_D_Li_cm2_s": p.d_li_reference_cm2_s},
                    result=p, note=p.note)
    for s in stability:
        save_result(stores, subject=name, kind="stability", model=model_id, reference="none", summary=s, result=s)
    if speed:
        save_result(stores, subject=name, kind="speed", model=model_id, reference="none",
                    summary={f"steps_s_{p['n_atoms']}_atoms": p["steps_per_s"] for p in speed}
                    | {f"ns_day_{p['n_atoms']}_atoms": p["ns_per_day"] for p in speed}, result={"points": speed})
    for g in doc.gb_energy:
        save_result(stores, subject=name, kind="energetics", model=model_id, reference=reference,
                    summary={"gb_J_m2": g.model_J_m2, "reference_gb_J_m2": g.reference_J_m2,
                             "difference_J_m2": g.difference_J_m2, "formula": g.formula},
                    result=g, note=g.note)
    if campaign:
        stores.campaigns.update_one({"_id": campaign}, {"$set": {"benchmark": doc.model_dump(mode="json")}})
    logger.info("benchmark of %s: %s", model_id, "PASS" if result.passed else "FAIL")
    return doc


@job
def benchmark_when_known(maker: CampaignBenchmarkMaker, committee: Any, structures: Any = None, reference: Any = None,
                         campaign: str | None = None, model: str | None = None, subject: str | None = None
                         ) -> Response:
    """Replace this job by ``maker``'s benchmark flow once the committee (a job's output) is trained."""
    return Response(replace=maker.make(committee=committee, structures=structures, reference=reference,
                                       campaign=campaign, model=model, subject=subject))


@dataclass
class CampaignBenchmarkMaker(Maker):
    """The benchmark of a campaign's final committee against the campaign's labeler.

    Parameters
    ----------
    name
        Flow name.
    labeler
        The reference (the campaign's labeler).
    temperatures
        Sampled temperatures (K): the test-set MD runs at each.
    settings
        :class:`~mlipflow.campaign.spec.BenchmarkSpec` fields (steps, strides, sizes, targets).
    seed
        Base seed of the benchmark MD (offset from the exploration's).
    processes
        Walkers side by side.
    md_resource, labeling_resource
        Worker categories of the MD jobs and of the reference labels.
    """

    name: str = "benchmark"
    labeler: Labeler | None = None
    temperatures: list[float] = field(default_factory=lambda: [300.0])
    settings: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    processes: int = 1
    md_resource: Resource = "gpu"
    labeling_resource: Resource = "cpu"

    def _settings(self) -> dict[str, Any]:
        from mlipflow.campaign.spec import BenchmarkSpec

        return BenchmarkSpec(**self.settings).model_dump()

    def make(self, committee: Any, structures: Any = None, reference: Any = None, campaign: str | None = None,
             model: str | None = None, subject: str | None = None) -> Flow:
        """The benchmark flow of ``committee`` (its first member is "the model"; ``model`` overrides it).

        ``structures``: the exploration cells; ``reference``: the reference MD summary (RDF/MSD reference and the
        bulk cell), if any; ``campaign``: the campaign whose document gets the result and whose every committee is
        evaluated on the test set; ``subject``: the report name of the results (default the campaign or model).
        """
        from mlipflow.training.registry import ModelRegistry

        st = self._settings()
        committee_id = _get(committee, "model_id", committee)
        if isinstance(committee, OutputReference) or isinstance(structures, OutputReference):
            # the committee of this same flow (or its cells) is not trained yet: plan once it is
            planned = benchmark_when_known(self, committee, structures, reference, campaign, model, subject)
            planned.name = f"{self.name}: plan"
            planned.metadata["plans"] = True
            return Flow([planned], output=planned.output, name=self.name)
        if model is None:
            from mlipflow.storage import get_stores

            record = ModelRegistry(get_stores()).get(committee_id)
            model = record.members[0] if record.kind == "committee" else record.id
        tags = {"campaign": campaign} if campaign else {}
        md = test_md_job(model, structures, reference, list(self.temperatures), st, self.seed, self.processes, tags)
        md.name = "benchmark: model MD (test set)"
        set_resource(md, self.md_resource)
        labeler_maker = LabelMaker(name="benchmark labels", labeler=self.labeler, batch_size=50,
                                   resource=self.labeling_resource)
        labels = label_when_known(labeler_maker, md.output, tags=tags)
        labels.name = "benchmark: label the test set"
        labels.metadata["plans"] = True
        test_set = test_set_job(md.output, labels.output)
        test_set.name = "benchmark: test set"
        cells = _structures(structures) + (_reference_cells(reference) if reference is not None else [])
        errors = test_errors_job(test_set.output, committee_id, campaign, _bulk_cell(cells))
        errors.name = "benchmark: errors of every committee"
        props = properties_job(model, reference, st["property_md_steps"], self.seed, tags)
        props.name = "benchmark: properties against the reference MD"
        set_resource(props, self.md_resource)
        jobs = [md, labels, test_set, errors, props]
        stability_out: Any = None
        if st["stability_steps"] > 0:
            stab = stability_runs_job(model, structures, max(self.temperatures), st["stability_steps"],
                                      st["timestep"], self.seed, self.processes, tags)
            stab.name = "benchmark: stability"
            set_resource(stab, self.md_resource)
            jobs.append(stab)
            stability_out = stab.output
        speed = speed_runs_job(model, structures, list(st["speed_sizes"]))
        speed.name = "benchmark: speed"
        set_resource(speed, self.md_resource)
        jobs.append(speed)
        gb_out: Any = None
        if st["gb_energy"]:
            gb = boundary_energy_job(model, structures, reference, self.labeler, st["relax_steps"])
            gb.name = "benchmark: boundary energy"
            set_resource(gb, self.labeling_resource)
            jobs.append(gb)
            gb_out = gb.output
        summary = benchmark_summary_job(campaign, committee_id, model, self.labeler.info.describe(), st["targets"],
                                        errors.output, props.output, stability_out, speed.output, gb_out,
                                        subject=subject)
        summary.name = "benchmark: verdict"
        jobs.append(summary)
        return Flow(jobs, output=summary.output, name=self.name)


