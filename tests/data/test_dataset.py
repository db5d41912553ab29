"""Dataset versions: immutable manifests, inherited splits, honest labeler bookkeeping."""

from __future__ import annotations

import pytest
from ase.io import write

from mlipflow.data import Dataset, LabeledFrame, LabelerInfo, assign_split, import_file, structure_hash
from mlipflow.errors import DataError

LJ = LabelerInfo(name="lj-li", kind="surrogate", version="1")


def _import(stores, tmp_path, images, labeler=LJ, name="in.xyz"):
    path = tmp_path / name
    write(path, images, format="extxyz")
    return import_file(Dataset(stores), path, labeler)


def test_split_assignment_is_deterministic_and_follows_fractions():
    ids = [f"{i:032x}" for i in range(4000)]
    splits = [assign_split(i, 7, {"train": 0.8, "valid": 0.1, "test": 0.1}) for i in ids]
    assert splits == [assign_split(i, 7, {"train": 0.8, "valid": 0.1, "test": 0.1}) for i in ids]
    assert 0.77 < splits.count("train") / 4000 < 0.83
    assert 0.08 < splits.count("test") / 4000 < 0.12


def test_child_version_keeps_parent_splits_and_parent_is_unchanged(stores, tmp_path, lj_li_images):
    dataset = Dataset(stores)
    _import(stores, tmp_path, lj_li_images(10, seed=1), name="a.xyz")
    v1 = dataset.create_version("li", seed=1, note="first")
    m1 = dataset.manifest(v1.id)
    new = _import(stores, tmp_path, lj_li_images(10, seed=2), name="b.xyz")
    v2 = dataset.create_version("li", parent=v1.id, frame_ids=new.inserted, seed=1)
    m2 = dataset.manifest(v2.id)
    assert v2.parent == v1.id and v2.size == 20
    assert {k: m2[k] for k in m1} == m1  # nothing moved between splits
    assert dataset.manifest(v1.id) == m1 and dataset.get_version(v1.id).size == 10  # immutable
    assert dataset.get_version("li").id in {v1.id, v2.id}
    assert len(list(dataset.version_frames(v2.id, "train"))) == v2.counts["train"]


def test_failed_and_unknown_frames_never_enter_a_version(stores, tmp_path, lj_li_images):
    dataset = Dataset(stores)
    _import(stores, tmp_path, lj_li_images(3))
    atoms = lj_li_images(1, seed=9)[0]
    failed = LabeledFrame.from_atoms(atoms, LJ, energy=None, forces=None, status="failed", failure="SCF not converged")
    dataset.add_frames([failed])
    version = dataset.create_version("li")
    assert version.size == 3
    with pytest.raises(DataError, match="not stored or not labeled"):
        dataset.create_version("li2", frame_ids=[failed.content_hash])


def test_versions_refuse_to_mix_labelers(stores, tmp_path, lj_li_images):
    _import(stores, tmp_path, lj_li_images(2, seed=1), name="a.xyz")
    _import(stores, tmp_path, lj_li_images(2, seed=2), LabelerInfo(name="pbe", kind="dft", version="cp2k"), "b.xyz")
    with pytest.raises(DataError, match="mix labels of different labelers"):
        Dataset(stores).create_version("mixed")


def test_structure_hash_tolerates_site_order_and_wrapping(lj_li_images):
    from pymatgen.io.ase import AseAtomsAdaptor

    atoms = lj_li_images(1)[0]
    s = AseAtomsAdaptor.get_structure(atoms)
    shuffled = s.copy()
    shuffled.translate_sites(list(range(len(s))), [1.0, 0.0, -1.0], frac_coords=True, to_unit_cell=False)
    reordered = s.copy()
    reordered.reverse()
    assert structure_hash(s) == structure_hash(shuffled) == structure_hash(reordered)
    moved = s.copy()
    moved.translate_sites([0], [0.01, 0, 0], frac_coords=False)
    assert structure_hash(moved) != structure_hash(s)


def test_isolated_atom_labels_become_the_versions_e0s_not_training_frames(stores, tmp_path, lj_li_images):
    from mlipflow.data.jobs import freeze_version
    from mlipflow.structures.bulk import isolated_atoms

    dataset = Dataset(stores)
    cells = _import(stores, tmp_path, lj_li_images(4))
    (atom,) = isolated_atoms(["Li"], box=12.0)
    assert atom.properties["provenance"]["config_type"] == "IsolatedAtom" and atom.lattice.a == 12.0
    frame = LabeledFrame(structure=atom, labeler=LJ, energy=-0.25, forces=[[0.0, 0.0, 0.0]], status="labeled",
                         provenance=atom.properties["provenance"])
    dataset.add_frames([frame])
    out = freeze_version.original("li", [{"frame_ids": [*cells.inserted, frame.content_hash]}])
    version = dataset.get_version(out.version)
    assert version.size == 4 and frame.content_hash not in dataset.manifest(version.id)
    assert version.isolated_atoms == {"Li": frame.content_hash}
    more = _import(stores, tmp_path, lj_li_images(2, seed=5), name="more.xyz")
    child = dataset.create_version("li", parent=version.id, frame_ids=more.inserted)
    assert child.isolated_atoms == version.isolated_atoms  # inherited


def _grouped_frames(lj_li_images, families: dict[str, int], per_group: int = 4, labeler=LJ):
    """Labeled frames in groups (one 'trajectory' each) of several families."""
    frames = []
    seed = 100
    for family, n_groups in families.items():
        for g in range(n_groups):
            for atoms in lj_li_images(per_group, seed=seed):
                frame = LabeledFrame.from_atoms(
                    atoms, labeler, energy=atoms.info["REF_energy"], forces=atoms.arrays["REF_forces"],
                    provenance={"family": family, "parent": f"trajectory:{family}-{g}", "origin": "sampler"})
                frames.append(frame)
            seed += 1
    return frames


def test_splits_keep_groups_whole_stratified_by_family_with_minimums(stores, lj_li_images):
    dataset = Dataset(stores)
    frames = _grouped_frames(lj_li_images, {"bulk": 6, "grain_boundary": 4})
    dataset.add_frames(frames)
    fractions = {"train": 0.6, "valid": 0.2, "test": 0.2}
    version = dataset.create_version("g", frame_ids=[f.content_hash for f in frames], fractions=fractions,
                                     minimum={"valid": 4, "test": 4})
    groups = dataset.groups(version.id)
    assert len(groups) == 10 and all(len(splits) == 1 for splits in groups.values())  # no group spans two splits
    for family in ("bulk", "grain_boundary"):  # every family has train, valid and test frames
        counts = version.families[family]
        assert counts["train"] >= 4 and counts["valid"] >= 4 and counts["test"] >= 4, counts
    # a child version: old groups keep their split, a new frame of a known group joins it
    extra = _grouped_frames(lj_li_images, {"bulk": 1}, per_group=2)
    for f in extra:
        f.provenance.parent = "trajectory:bulk-0"
    dataset.add_frames(extra)
    child = dataset.create_version("g", parent=version.id, frame_ids=[f.content_hash for f in extra],
                                   fractions=fractions, minimum={"valid": 4, "test": 4})
    child_groups = dataset.groups(child.id)
    assert child_groups["trajectory:bulk-0"] == groups["trajectory:bulk-0"]
    assert {k: v for k, v in dataset.manifest(child.id).items() if k in dataset.manifest(version.id)} == \
        dataset.manifest(version.id)


def test_a_family_with_one_group_trains_on_it():
    from mlipflow.data.dataset import assign_group_splits

    counts: dict = {}
    out = assign_group_splits({"a": ["1", "2"]}, {"a": "slab"}, {}, counts, seed=0,
                              fractions={"train": 0.8, "valid": 0.1, "test": 0.1}, minimum={"valid": 2, "test": 2})
    assert out == {"a": "train"}


def test_versions_refuse_labels_of_one_labeler_with_different_settings(stores, lj_li_images):
    a = LabelerInfo(name="cp2k-pbe", kind="dft", version="2023.1", settings={"cutoff": 400, "functional": "PBE"})
    b = LabelerInfo(name="cp2k-pbe", kind="dft", version="2023.1", settings={"cutoff": 800, "functional": "PBE"})
    frames = _grouped_frames(lj_li_images, {"bulk": 1}, labeler=a) + _grouped_frames(lj_li_images, {"bulk": 1},
                                                                                     per_group=3, labeler=b)
    Dataset(stores).add_frames(frames)
    with pytest.raises(DataError, match=r"different settings \(they differ in \['cutoff'\]\).*400.*800"):
        Dataset(stores).create_version("mixed")
