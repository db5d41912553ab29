"""Fuzz: random bytes and mutated campaign files, extxyz files and CIFs fed to the commands that read them.

``validate``, ``dataset import`` and ``structures preview`` must answer every input with exit code 0 or with
exit code 1 and one error (``error: ...``, no traceback, not an internal error), and a refused input writes
nothing: no frame in the store, no file in the preview directory.  Every random choice is seeded.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest
import yaml
from ase.io import write

ROOT = Path(__file__).resolve().parents[1]
TOY = (ROOT / "flows" / "campaign_toy.yaml").read_text()
LI2O_CIF = (ROOT / "src" / "mlipflow" / "structures" / "prototypes" / "Li2O.cif").read_text()
TOKENS = ["-1", "0", "1e9", "nan", "[]", "{}", "null", "''", "x", ":", "- ", "  ", "\t", "[[", "}", "&a", "*a",
          "!!python/object:os.system", "é", "\x00", "1.5", "true", "-0.0", "'", '"', "#", "---", "..."]


def mutate_text(text: str, rng: random.Random, n: int | None = None) -> bytes:
    """``text`` with 1-4 random edits: characters, tokens, lines, truncation, a byte that is not UTF-8."""
    lines = text.splitlines(keepends=True)
    for _ in range(n or rng.randint(1, 4)):
        op = rng.randrange(8)
        i = rng.randrange(len(lines)) if lines else 0
        if not lines:
            lines = [rng.choice(TOKENS)]
        elif op == 0:  # delete a line
            del lines[i]
        elif op == 1:  # duplicate a line
            lines.insert(i, lines[i])
        elif op == 2:  # swap two lines
            j = rng.randrange(len(lines))
            lines[i], lines[j] = lines[j], lines[i]
        elif op == 3:  # a token replaces a word
            words = lines[i].split(" ")
            words[rng.randrange(len(words))] = rng.choice(TOKENS)
            lines[i] = " ".join(words)
        elif op == 4:  # delete a character
            if lines[i]:
                k = rng.randrange(len(lines[i]))
                lines[i] = lines[i][:k] + lines[i][k + 1:]
        elif op == 5:  # insert a token
            k = rng.randrange(len(lines[i]) + 1)
            lines[i] = lines[i][:k] + rng.choice(TOKENS) + lines[i][k:]
        elif op == 6:  # truncate
            lines = lines[:i]
        else:  # a digit changes
            digits = [k for k, c in enumerate(lines[i]) if c.isdigit()]
            if digits:
                k = rng.choice(digits)
                lines[i] = lines[i][:k] + str(rng.randrange(10)) + lines[i][k + 1:]
    data = "".join(lines).encode("utf-8", "surrogatepass")
    if rng.random() < 0.1:  # a byte that is not UTF-8
        k = rng.randrange(len(data) + 1)
        data = data[:k] + bytes([rng.randrange(0x80, 0x100)]) + data[k:]
    return data


def random_bytes(rng: random.Random) -> bytes:
    return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 400)))


def run_cli(args: list[str], capsys, monkeypatch) -> tuple[int, str]:
    """``mlipflow ARGS`` in this process (as the console script runs it): exit code and stderr."""
    from mlipflow.cli import main

    monkeypatch.setattr(sys, "argv", ["mlipflow", *args])
    monkeypatch.setenv("COLUMNS", "300")
    with pytest.raises(SystemExit) as exited:
        main()
    return int(exited.value.code or 0), capsys.readouterr().err


def assert_one_clean_error(code: int, err: str, what: str) -> None:
    assert code in (0, 1), (what, code, err)
    if code == 1:
        assert err.startswith("error: "), (what, err)
        assert "Traceback" not in err and "internal error" not in err, (what, err)


def _campaign_cases(n: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    return [random_bytes(rng) for _ in range(n // 4)] + [mutate_text(TOY, rng) for _ in range(n - n // 4)]


@pytest.mark.parametrize("seed", [0, 1])
def test_validate_answers_broken_campaign_files_with_one_error(seed, tmp_path, capsys, monkeypatch):
    outcomes = []
    for k, data in enumerate(_campaign_cases(40, seed)):
        path = tmp_path / f"c{k}.yaml"
        path.write_bytes(data)
        code, err = run_cli(["validate", str(path)], capsys, monkeypatch)
        assert_one_clean_error(code, err, data)
        outcomes.append(code)
    assert outcomes.count(1) >= len(outcomes) // 2  # the mutations mostly break the file


def _extxyz_cases(text: str, n: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    return [random_bytes(rng) for _ in range(n // 4)] + [mutate_text(text, rng) for _ in range(n - n // 4)]


@pytest.mark.parametrize("seed", [0, 1])
def test_dataset_import_answers_broken_extxyz_with_one_error_and_stores_nothing(seed, tmp_path, capsys,
                                                                              monkeypatch, lj_li_images, stores):
    good = tmp_path / "good.xyz"
    write(good, lj_li_images(3), format="extxyz")
    refused = 0
    for k, data in enumerate(_extxyz_cases(good.read_text(), 40, seed)):
        path = tmp_path / f"f{k}.xyz"
        path.write_bytes(data)
        before = stores.frames.count_documents({})
        code, err = run_cli(["dataset", "import", str(path), "--labeler", "lj", "--kind", "surrogate"], capsys,
                            monkeypatch)
        assert_one_clean_error(code, err, data)
        if code == 1:
            refused += 1
            assert stores.frames.count_documents({}) == before, data  # all or nothing
    assert refused >= 20


def _preview_file(tmp_path: Path, k: int, cif: bytes) -> Path:
    (tmp_path / f"m{k}.cif").write_bytes(cif)
    section = yaml.safe_load(TOY)["structures"]
    section["materials"] = {"mine": {"file": f"m{k}.cif"}}
    section["entries"] = [{"name": "strain", "kind": "strain", "material": "mine", "supercell": False,
                           "strains": [0.0, 0.01]}]
    path = tmp_path / f"s{k}.yaml"
    path.write_text(yaml.safe_dump({"structures": section}))
    return path


@pytest.mark.parametrize("seed", [0])
def test_structures_preview_answers_broken_cifs_and_files_with_one_error_and_writes_nothing(
        seed, tmp_path, capsys, monkeypatch):
    rng = random.Random(seed)
    cases = [("cif", mutate_text(LI2O_CIF, rng)) for _ in range(16)] + [("cif", random_bytes(rng)) for _ in range(4)]
    cases += [("yaml", random_bytes(rng)) for _ in range(4)]
    for k, (kind, data) in enumerate(cases):
        if kind == "cif":
            path = _preview_file(tmp_path, k, data)
        else:
            path = tmp_path / f"s{k}.yaml"
            path.write_bytes(data)
        out = tmp_path / f"out{k}"
        code, err = run_cli(["structures", "preview", str(path), "--out", str(out)], capsys, monkeypatch)
        assert_one_clean_error(code, err, data)
        if code == 1:
            assert not out.exists() or not any(out.iterdir()), data


def test_validate_answers_a_campaign_with_a_broken_cif_with_one_error(tmp_path, capsys, monkeypatch):
    rng = random.Random(3)
    for k in range(8):
        (tmp_path / f"m{k}.cif").write_bytes(mutate_text(LI2O_CIF, rng))
        spec = yaml.safe_load(TOY)
        spec["structures"]["materials"] = {"Li2O": {"file": str(tmp_path / f"m{k}.cif")}}
        path = tmp_path / f"c{k}.yaml"
        path.write_text(yaml.safe_dump(spec))
        code, err = run_cli(["validate", str(path)], capsys, monkeypatch)
        assert_one_clean_error(code, err, k)
