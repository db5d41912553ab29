"""Compose your own flow from the stages' Makers: structures -> labels -> dataset -> committee -> benchmark.

    python flows/custom_flow.py --labeler cp2k          # DFT labels (CP2K must be installed: scripts/setup_system.sh)
    python flows/custom_flow.py --labeler surrogate --epochs 2 --tiny    # seconds: the CHGNet stand-in, a toy cell

Every Maker here is the one a campaign uses; swapping the labeler is one argument. The flow runs in this process
(``run_locally``); ``mlipflow.execution.submit(flow)`` would queue it for workers instead.
"""

from __future__ import annotations

import argparse

from jobflow import Flow

from mlipflow.benchmark.flows import CampaignBenchmarkMaker
from mlipflow.data.jobs import DatasetVersionMaker
from mlipflow.execution import run_locally
from mlipflow.labeling.base import Labeler
from mlipflow.labeling.jobs import LabelMaker, label_when_known
from mlipflow.structures.jobs import StructureSetMaker
from mlipflow.training.hyperparams import MaceHyperParams
from mlipflow.training.jobs import CommitteeTrainMaker, MaceTrainMaker

#: 12-atom Li2O cells: strained and rattled (two rattle series: two groups, so both splits get one)
CELLS = {
    "cutoff": 3.0, "max_atoms": 40, "materials": {"Li2O": {"prototype": "Li2O"}},
    "entries": [
        {"name": "strain", "kind": "strain", "material": "Li2O", "supercell": False, "strains": [-0.02, 0.0, 0.02]},
        {"name": "rattle", "kind": "rattle", "material": "Li2O", "supercell": False, "n_structures": 4,
         "stdev": 0.1, "seed": 1},
        {"name": "rattle-b", "kind": "rattle", "material": "Li2O", "supercell": False, "n_structures": 4,
         "stdev": 0.1, "seed": 2},
    ],
}


def labeler_of(kind: str, tiny: bool) -> Labeler:
    """A CP2K labeler (DFT), or the surrogate (``toy-morse`` when ``tiny``, else CHGNet; never presented as DFT)."""
    if kind == "cp2k":
        from mlipflow.labeling.cp2k import Cp2kLabeler

        return Cp2kLabeler(cutoff=400.0, rel_cutoff=50.0)
    from mlipflow.labeling.surrogate import SurrogateLabeler

    return SurrogateLabeler(calculator="toy-morse" if tiny else "chgnet")


def build(labeler: Labeler, epochs: int = 30, tiny: bool = False, name: str = "custom-li2o") -> Flow:
    """The flow: cells, their labels, a dataset version, a 2-member committee and its benchmark."""
    cells = StructureSetMaker(spec=CELLS).make()
    labels = label_when_known(LabelMaker(labeler=labeler, batch_size=8), cells.output)
    version = DatasetVersionMaker(dataset_name=name, fractions={"train": 0.7, "valid": 0.3}).make([labels.output])
    hp = (MaceHyperParams.tiny() if tiny else MaceHyperParams()).with_updates(max_num_epochs=epochs, r_max=3.0)
    committee = CommitteeTrainMaker(trainer=MaceTrainMaker(hyperparams=hp, model_name=f"{name}-mace", resource="cpu"),
                                    n_models=2, committee_name=f"{name}-committee").make(version.output.version)
    bench = CampaignBenchmarkMaker(
        labeler=labeler, temperatures=[300.0],
        settings={"test_md_steps": 20, "test_every": 5, "test_equilibration": 5, "property_md_steps": 40,
                  "stability_steps": 40, "speed_sizes": [12], "gb_energy": False},
    ).make(committee=committee.output, structures=cells.output, subject=name)
    return Flow([cells, labels, version, committee, bench], output=bench.output, name=name)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labeler", choices=["cp2k", "surrogate"], default="cp2k")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--tiny", action="store_true", help="toy-morse labels and the tiny MACE (a test)")
    args = parser.parse_args(argv)
    flow = build(labeler_of(args.labeler, args.tiny), epochs=args.epochs, tiny=args.tiny)
    responses = run_locally(flow, raise_immediately=True)
    return responses


if __name__ == "__main__":
    main()
