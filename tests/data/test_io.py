"""extxyz import/export: dedup, round trip, all-or-nothing on malformed files."""

from __future__ import annotations

import numpy as np
import pytest
from ase.io import write

from mlipflow.data import Dataset, LabelerInfo, export_extxyz, import_file, read_labeled_extxyz
from mlipflow.errors import DataError

LJ = LabelerInfo(name="lj-li", kind="surrogate", version="ase-3.29", settings={"sigma": 2.7, "epsilon": 0.05})


def test_import_twice_stores_each_frame_once(stores, tmp_path, lj_li_images):
    path = tmp_path / "in.xyz"
    write(path, lj_li_images(6), format="extxyz")
    dataset = Dataset(stores)
    first = import_file(dataset, path, LJ)
    second = import_file(dataset, path, LJ)
    assert len(first.inserted) == 6 and not first.existing
    assert not second.inserted and sorted(second.existing) == sorted(first.inserted)
    assert dataset.count() == 6


def test_same_structure_other_labeler_is_another_frame(stores, tmp_path, lj_li_images):
    path = tmp_path / "in.xyz"
    write(path, lj_li_images(2), format="extxyz")
    dataset = Dataset(stores)
    import_file(dataset, path, LJ)
    import_file(dataset, path, LJ.model_copy(update={"settings": {"sigma": 2.8, "epsilon": 0.05}}))
    assert dataset.count() == 4


def test_export_import_round_trip(stores, tmp_path, lj_li_images):
    images = lj_li_images(8, seed=3)
    path = tmp_path / "in.xyz"
    write(path, images, format="extxyz")
    dataset = Dataset(stores)
    import_file(dataset, path, LJ)
    version = dataset.create_version("lj")
    out = tmp_path / "out.xyz"
    assert export_extxyz(dataset, version.id, out) == 8

    text = out.read_text()
    for key in ("REF_energy", "REF_forces", "REF_stress", "config_type=rattled", "lj-li ase-3.29 (surrogate)"):
        assert key in text
    back = {f.content_hash: f for f in read_labeled_extxyz(out, LJ)}
    stored = {f.content_hash: f for f in dataset.iter_frames()}
    assert set(back) == set(stored)
    for key, frame in stored.items():
        other = back[key]
        assert abs(frame.energy - other.energy) < 1e-8
        np.testing.assert_allclose(frame.forces, other.forces, atol=1e-8, rtol=0)
        np.testing.assert_allclose(frame.stress, other.stress, atol=1e-8, rtol=0)
    # and against the original calculator values, in the original units (eV/Å³)
    originals = sorted(images, key=lambda a: a.info["REF_energy"])
    exported = sorted(back.values(), key=lambda f: f.energy)
    for atoms, frame in zip(originals, exported, strict=True):
        assert abs(atoms.info["REF_energy"] - frame.energy) < 1e-8
        np.testing.assert_allclose(atoms.arrays["REF_forces"], frame.forces, atol=1e-8, rtol=0)
        np.testing.assert_allclose(frame.to_atoms().get_stress(voigt=False).reshape(9), atoms.info["REF_stress"],
                                   atol=1e-8, rtol=0)


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("bad_line", "frame 3"),
        ("missing_forces", "frame 1"),
        ("count_too_large", "frame 3 (0-based, line 55): says 19 atoms"),
        ("count_too_small", "the atom count 15 of the frame before (line 19) may be wrong"),
    ],
)
def test_malformed_extxyz_is_refused_whole(case, expected, stores, tmp_path, lj_li_images):
    images = lj_li_images(4)
    path = tmp_path / f"{case}.xyz"
    if case == "missing_forces":
        del images[1].arrays["REF_forces"]
        write(path, images, format="extxyz")
    else:
        write(path, images, format="extxyz")
        lines = path.read_text().splitlines()
        n = len(images[0])
        start = 3 * (n + 2)  # fourth frame
        if case == "bad_line":
            lines[start + 4] = "Li 0.1 zero 0.3 0.0 0.0 0.0"
        elif case == "count_too_large":
            lines[start] = str(n + 3)  # the last frame's count says more atoms than follow
        else:
            lines[n + 2] = str(n - 1)  # the second frame's count says one atom fewer
        path.write_text("\n".join(lines) + "\n")
    dataset = Dataset(stores)
    with pytest.raises(DataError) as err:
        import_file(dataset, path, LJ)
    message = str(err.value)
    assert str(path) in message and expected in message
    assert dataset.count() == 0  # all or nothing


def test_missing_file_is_a_clear_error(stores, tmp_path):
    with pytest.raises(DataError, match="no such file"):
        import_file(Dataset(stores), tmp_path / "nope.xyz", LJ)


def test_ase_db_import(stores, tmp_path, lj_li_images):
    import ase.db
    from ase.calculators.singlepoint import SinglePointCalculator

    db = ase.db.connect(tmp_path / "frames.db")
    for atoms in lj_li_images(3):
        atoms.calc = SinglePointCalculator(
            atoms, energy=atoms.info["REF_energy"], forces=atoms.arrays["REF_forces"],
            stress=atoms.info["REF_stress"].reshape(3, 3),
        )
        db.write(atoms)
    result = import_file(Dataset(stores), tmp_path / "frames.db", LJ)
    assert len(result.inserted) == 3


@pytest.mark.parametrize(
    ("where", "shift", "expected"),
    [
        ("two atoms on one site", None, "frame 2 (0-based, line 37): two atoms on one site: atoms 0 (Li) and 5 (Li) "
                                        "are 0.000 Å apart, below the Li-Li floor of 1.280 Å"),
        ("too close", 0.9, "frame 2 (0-based, line 37): atoms 0 (Li) and 5 (Li) are 0.900 Å apart, below the Li-Li "
                           "floor of 1.280 Å"),
    ],
)
def test_frames_with_atoms_too_close_are_refused_naming_file_frame_and_atoms(where, shift, expected, stores,
                                                                             tmp_path, lj_li_images):
    images = lj_li_images(4)
    atoms = images[2]
    # atom 5 onto atom 0, or 0.9 Å from it (half the sum of the Li covalent radii is 1.28 Å)
    atoms.positions[5] = atoms.positions[0] + (0.0 if shift is None else [shift, 0.0, 0.0])
    path = tmp_path / "close.xyz"
    write(path, images, format="extxyz")
    dataset = Dataset(stores)
    with pytest.raises(DataError) as err:
        import_file(dataset, path, LJ)
    assert str(err.value) == f"{path}, {expected}" + ("" if shift is None else (
        "; if the frame is right, lower the floor (`mlipflow dataset import --min-distance A-B=Å`)"))
    assert dataset.count() == 0  # all or nothing
    # a stated floor for the pair lets a deliberate close contact in
    from mlipflow.sampling.monitors import MinDistanceMonitor

    if shift is not None:
        result = import_file(dataset, path, LJ, min_distance=MinDistanceMonitor(floors={"Li-Li": 0.8}))
        assert len(result.inserted) == 4


def test_not_utf8_extxyz_is_a_clear_error(stores, tmp_path, lj_li_images):
    path = tmp_path / "f.xyz"
    write(path, lj_li_images(2), format="extxyz")
    path.write_bytes(path.read_bytes().replace(b"Li", b"L\xe9", 1))
    with pytest.raises(DataError, match=r"f.xyz:3: not a UTF-8 text extxyz file \(byte \d+: b'\\xe9'\)"):
        import_file(Dataset(stores), path, LJ)
