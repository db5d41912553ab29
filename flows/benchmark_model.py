"""Take a model from the registry and benchmark it against a campaign's labeler and cells.

    python flows/benchmark_model.py li2o-gb-committee-1a2b3c --campaign flows/campaign_li2o.yaml
    mlipflow models list                                  # the registered models and committees

The same flow as `mlipflow benchmark MODEL --file CAMPAIGN.yaml`: MD with the model at every temperature the
campaign samples, those frames labeled by the campaign's labeler (the MLMD test set), stability, speed and, with a
reference MD, RDF/ADF/MSD.
"""

from __future__ import annotations

import argparse

from mlipflow.benchmark.runner import run_benchmark
from mlipflow.storage import get_stores
from mlipflow.training.registry import ModelRegistry


def main(argv: list[str] | None = None) -> dict:
    """Benchmark a registered model (or committee) by id or name; return the benchmark document."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="registry id (or a unique prefix of it)")
    parser.add_argument("--campaign", required=True, help="campaign file: its labeler, cells and temperatures")
    args = parser.parse_args(argv)
    stores = get_stores()
    record = ModelRegistry(stores).get(args.model)
    print(f"benchmarking {record.id} ({record.kind}, trained on {record.dataset_version})")
    result = run_benchmark(stores, record.id, file=args.campaign)
    errors = result.get("trajectory_errors") or {}
    print(f"MLMD test set: force RMSE {errors.get('rmse_f_meV_A', float('nan')):.1f} meV/Å, "
          f"energy RMSE {errors.get('rmse_e_meV_atom', float('nan')):.2f} meV/atom")
    return result


if __name__ == "__main__":
    main()
