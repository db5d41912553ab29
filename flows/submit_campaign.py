"""Build the flagship campaign from Python and submit it to the LaunchPad (workers then run it).

    python flows/submit_campaign.py                      # flows/campaign_li2o.yaml, as `mlipflow submit` does
    python flows/submit_campaign.py flows/campaign_toy.yaml --epochs 2
    mlipflow worker --category cpu & mlipflow worker --category gpu     # labels on cpu, training and MD on gpu

The campaign file is read and checked like `mlipflow validate` does; what is changed here in Python (the number of
epochs) is changed on the validated model, so a wrong value is refused with the key named.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mlipflow.campaign.loop import campaign_from_spec
from mlipflow.campaign.spec import CampaignSpec, load_campaign
from mlipflow.execution import submit
from mlipflow.storage import get_stores
from mlipflow.yamlio import validate_with_lines

HERE = Path(__file__).resolve().parent


def build(path: str | Path = HERE / "campaign_li2o.yaml", epochs: int | None = None) -> CampaignSpec:
    """The campaign of ``path``, with ``trainer.hyperparams.max_num_epochs`` set to ``epochs`` if given."""
    spec = load_campaign(path)
    if epochs is not None:
        data = spec.model_dump(mode="json")
        data["trainer"]["hyperparams"] = {**data["trainer"]["hyperparams"], "max_num_epochs": epochs}
        spec = validate_with_lines(data, CampaignSpec, f"{path} (max_num_epochs set in Python)", {})
    return spec


def main(argv: list[str] | None = None) -> dict[str, int]:
    """Submit the campaign's flow; return jobflow uuid -> FireWorks id."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("campaign", nargs="?", default=str(HERE / "campaign_li2o.yaml"))
    parser.add_argument("--epochs", type=int, default=None)
    args = parser.parse_args(argv)
    spec = build(args.campaign, args.epochs)
    stores = get_stores()
    ids = submit(campaign_from_spec(spec).make(), stores)  # the flow: iteration 0 and the first exploration
    print(f"campaign {spec.name}: {len(ids)} fireworks on {stores.describe()}; start workers with "
          "`mlipflow worker --category cpu` and `--category gpu`; watch with `mlipflow status " + spec.name + "`")
    return ids


if __name__ == "__main__":
    main()
