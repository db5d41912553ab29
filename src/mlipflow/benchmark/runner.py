"""``mlipflow benchmark NAME``: the campaign's benchmark stage on its final committee, or on any registered model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlipflow.errors import ConfigError
from mlipflow.storage import Stores


def _reference_md(stores: Stores, campaign: str) -> Any:
    """The reference-MD summary a campaign's iteration 0 produced (``None`` when it ran none)."""
    from mlipflow.sampling.schemas import ReferenceMDSummary

    doc = stores.jobstore.query_one({"metadata.campaign": campaign, "metadata.stage": "reference_md"},
                                    properties=["output"], load=True)
    output = (doc or {}).get("output")
    if not isinstance(output, dict):
        return output
    return ReferenceMDSummary(**{k: v for k, v in output.items() if not k.startswith("@")})


def run_benchmark(stores: Stores, name: str, *, campaign: str | None = None, file: str | Path | None = None
                  ) -> dict[str, Any]:
    """Benchmark campaign ``name``'s final committee, or the registered model ``name`` with a campaign's settings.

    Parameters
    ----------
    name
        A campaign name (its final committee, labeler, exploration cells and reference MD), or a model or
        committee id.
    campaign, file
        For a model id: the campaign (stored, by name) or campaign file whose labeler, cells and benchmark settings
        to use.

    Raises
    ------
    ConfigError
        The campaign has not stopped, the model id does not exist, or a model is given without a campaign.
    """
    from mlipflow.campaign.loop import campaign_benchmark, labeler_from_spec
    from mlipflow.campaign.spec import CampaignSpec, load_campaign
    from mlipflow.execution import run_locally
    from mlipflow.structures.structure_set import build_structure_set
    from mlipflow.training.registry import ModelRegistry

    doc = stores.campaigns.find_one({"_id": name})
    if doc is not None:
        if not doc.get("committee"):
            raise ConfigError(f"campaign {name} has no final committee yet (state {doc.get('state')}): run or resume "
                              "it until it stops")
        spec, committee, source = CampaignSpec(**doc["spec"]), doc["committee"], name
    else:
        try:
            committee = ModelRegistry(stores).get(name).id
        except Exception as exc:
            raise ConfigError(f"{name!r} is neither a campaign nor a registered model in {stores.describe()} "
                              "(see `mlipflow status` and `mlipflow models list`)") from exc
        if file is not None:
            spec, source = load_campaign(file), None
        elif campaign is not None:
            cdoc = stores.campaigns.find_one({"_id": campaign})
            if cdoc is None:
                raise ConfigError(f"no campaign {campaign!r} in {stores.describe()}")
            spec, source = CampaignSpec(**cdoc["spec"]), campaign
        else:
            raise ConfigError(f"benchmarking the model {name} needs a labeler and cells: give --campaign NAME or "
                              "--file CAMPAIGN.yaml")
    labeler = labeler_from_spec(spec)
    structures = build_structure_set(spec.explore).structures
    reference = _reference_md(stores, source) if source else None
    flow = campaign_benchmark(spec, labeler).make(committee=committee, structures=structures, reference=reference,
                                                  campaign=name if doc is not None else None, subject=name)
    responses = run_locally(flow, stores)
    out = responses.get(flow.jobs[-1].uuid, {})
    result = next(iter(out.values())).output if out else None
    if result is None:
        raise ConfigError(f"the benchmark of {name} did not finish (see the log above)")
    return result.model_dump(mode="json") if hasattr(result, "model_dump") else dict(result)
