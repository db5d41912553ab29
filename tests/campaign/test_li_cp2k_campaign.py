"""The CP2K campaign file builds with every label by CP2K, the E0 atoms unrestricted; its inputs are written.

Not run end to end here: one CP2K label of its cells takes minutes on this machine (see the file's header).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mlipflow.campaign.loop import campaign_from_spec, labeler_from_spec
from mlipflow.campaign.spec import load_campaign
from mlipflow.errors import ConfigError
from mlipflow.labeling.cp2k import Cp2kLabeler, ensure_pmg_cp2k_settings
from mlipflow.labeling.electronic import with_system_charge
from mlipflow.structures.bulk import isolated_atoms
from mlipflow.structures.structure_set import build_structure_set

CAMPAIGN = Path(__file__).parents[2] / "flows" / "campaign_li_cp2k.yaml"


def _cp2k_ready() -> bool:
    try:
        ensure_pmg_cp2k_settings()
    except ConfigError:
        return False
    return shutil.which("cp2k.psmp") is not None


@pytest.mark.skipif(not _cp2k_ready(), reason="cp2k.psmp or pymatgen CP2K data missing: scripts/setup_cp2k.sh")
def test_cp2k_campaign_builds_and_its_inputs_are_stated(tmp_path):
    spec = load_campaign(CAMPAIGN)
    labeler = labeler_from_spec(spec)
    assert isinstance(labeler, Cp2kLabeler) and labeler.info.kind == "dft" and labeler.kspacing == 0.7
    assert campaign_from_spec(spec) is not None  # preflight passes: CP2K is installed here
    cell = build_structure_set(spec.structures).structures[0]
    assert len(cell) == 12
    state = labeler.write_input(with_system_charge(cell), tmp_path / "cell")
    assert state.kpoints == (2, 2, 2) and state.multiplicity == 1
    for atom in isolated_atoms(["Li", "O"], box=spec.labeler.isolated_atom_box):
        state = labeler.write_input(with_system_charge(atom), tmp_path / atom.formula)
        assert state.unrestricted and state.gamma_only and state.multiplicity == {"Li1": 2, "O1": 3}[atom.formula]
