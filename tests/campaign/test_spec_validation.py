"""A corpus of broken campaign files: each is refused at validation with file, line and key (or one clear line).

Every check here is one a run would otherwise hit later, after labels and trainings (negative temperatures,
split fractions summing to 1.4, an empty ``entries`` list, a labeler setting the labeler does not take...).
Validation is what ``mlipflow validate`` does: load the file and build the campaign's flow.
"""

from __future__ import annotations

import copy
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mlipflow.campaign.loop import campaign_from_spec
from mlipflow.campaign.spec import load_campaign
from mlipflow.errors import MlipflowError

TOY = Path(__file__).resolve().parents[2] / "flows" / "campaign_toy.yaml"
SPEC = yaml.safe_load(TOY.read_text())
DELETE = object()


def _set(path: str, value):
    """A mutation of the toy campaign: ``value`` at the dotted ``path`` (``DELETE`` removes the key)."""

    def mutate(spec: dict) -> dict:
        spec = copy.deepcopy(spec)
        *parents, last = [int(k) if k.isdigit() else k for k in path.split(".")]
        node = spec
        for key in parents:
            node = node.setdefault(key, {}) if isinstance(key, str) else node[key]
        if value is DELETE:
            del node[last]
        else:
            node[last] = value
        return spec

    return mutate


#: (case, mutation or raw file text/bytes, key path the error names, what the message says)
CORPUS = [
    ("negative temperature", _set("sampling.temperatures", [-300.0]), "sampling.temperatures.0", "greater than 0"),
    ("zero temperature", _set("sampling.temperatures", [0.0, 300.0]), "sampling.temperatures.0", "greater than 0"),
    ("absurd temperature", _set("sampling.temperatures", [1e6]), "sampling.temperatures.0",
     "less than or equal to 5000"),
    ("no temperature", _set("sampling.temperatures", []), "sampling.temperatures", "at least 1 item"),
    ("temperature not a number", _set("sampling.temperatures", ["hot"]), "sampling.temperatures.0", "valid number"),
    ("negative temperature from an iteration on",
     _set("sampling.schedule", [{"from_iteration": 2, "temperatures": [-5.0]}]),
     "sampling.schedule.0.temperatures.0", "greater than 0"),
    ("schedule from iteration 0", _set("sampling.schedule", [{"from_iteration": 0}]),
     "sampling.schedule.0.from_iteration", "greater than or equal to 1"),
    ("zero MD steps", _set("sampling.n_steps", 0), "sampling.n_steps", "greater than or equal to 1"),
    ("a billion MD steps", _set("sampling.n_steps", 10**9), "sampling.n_steps", "less than or equal to"),
    ("records no frame", _set("sampling.record_every", 100), "sampling.record_every", "record no frame"),
    ("records no frame from an iteration on", _set("sampling.schedule", [{"from_iteration": 2, "n_steps": 2}]),
     "sampling.schedule.0.n_steps", "from iteration 2 on, record_every (4) is more than n_steps (2)"),
    ("negative time step", _set("sampling.timestep", -1.0), "sampling.timestep", "greater than 0"),
    ("50 fs time step", _set("sampling.timestep", 50.0), "sampling.timestep", "less than or equal to 5"),
    ("unknown ensemble", _set("sampling.ensemble", "nvt_magic"), "sampling.ensemble", "nvt_langevin"),
    ("split fractions sum to 1.4", _set("splits", {"train": 0.7, "valid": 0.7}), "splits", "must sum to 1"),
    ("no validation split", _set("splits", {"train": 1.0}), "splits.valid", "needs valid frames"),
    ("negative split fraction", _set("splits", {"train": -0.2, "valid": 1.2}), "splits.train", "between 0 and 1"),
    ("unknown split", _set("splits", {"train": 0.7, "validation": 0.3}), "splits.validation",
     "unknown key (check its spelling); allowed keys: min_test, min_valid, test, train, valid"),
    ("empty entries", _set("structures.entries", []), "structures.entries", "`entries` is empty"),
    ("empty exploration entries", _set("explore.entries", []), "explore.entries", "`entries` is empty"),
    ("empty materials", _set("structures.materials", {}), "structures.materials", "`materials` is empty"),
    ("unknown labeler setting", _set("labeler.settings", {"cutoff": 3.0}), "labeler.settings.cutoff",
     "not a setting of the surrogate labeler; allowed: calculator_kwargs, compute_stress, name"),
    ("calculator given twice", _set("labeler.settings", {"calculator": "lj"}), "labeler.settings.calculator",
     "set it as `labeler.calculator`"),
    ("unknown calculator parameter", _set("labeler.settings", {"calculator_kwargs": {"cutof": 3.0}}),
     "labeler.settings.calculator_kwargs.cutof", "not a parameter of calculator 'toy-morse'; allowed: "),
    ("ASE calculator parameter typo", lambda s: {**s, "labeler": {"kind": "surrogate", "calculator": "lj",
                                                                 "settings": {"calculator_kwargs": {"sigm": 2.0}}}},
     "labeler.settings.calculator_kwargs.sigm", "allowed: atoms, directory, epsilon"),
    ("labeler setting of a wrong type", _set("labeler.settings", {"compute_stress": "maybe"}),
     "labeler.settings.compute_stress", "valid boolean"),
    ("unknown calculator", _set("labeler.calculator", "chgnett"), "labeler.calculator",
     "unknown surrogate calculator 'chgnett'; use one of chgnet, emt"),
    ("calculator that does not import", _set("labeler.calculator", "no_such_module:make"), "labeler.calculator",
     "cannot be imported"),
    ("unknown labeler kind", _set("labeler.kind", "gaussian"), "labeler.kind", "'surrogate', 'cp2k' or 'vasp'"),
    ("zero batch size", _set("labeler.batch_size", 0), "labeler.batch_size", "greater than or equal to 1"),
    ("isolated-atom box smaller than the cutoff", _set("labeler.isolated_atom_box", 3.0),
     "labeler.isolated_atom_box", "must be wider than the model's cutoff r_max (4.0 Å)"),
    ("unknown hyper-parameter", _set("trainer.hyperparams", {"lr_rate": 0.1}), "trainer.hyperparams.lr_rate",
     "not a MACE hyper-parameter; allowed: batch_size"),
    ("negative learning rate", _set("trainer.hyperparams", {"lr": -0.1}), "trainer.hyperparams.lr",
     "greater than 0"),
    ("epochs not a number", _set("trainer.hyperparams", {"max_num_epochs": "ten"}),
     "trainer.hyperparams.max_num_epochs", "valid integer"),
    ("seed among the hyper-parameters", _set("trainer.hyperparams", {"seed": 3}), "trainer.hyperparams.seed",
     "set the campaign's `seed` at the top level"),
    ("reserved mace option", _set("trainer.hyperparams", {"extra_args": {"train_file": "x.xyz"}}),
     "trainer.hyperparams", "extra_args may not set ['train_file']"),
    ("committee of one", _set("trainer.committee_size", 1), "trainer.committee_size", "greater than or equal to 2"),
    ("trust window upside down", _set("selection.trust", [0.5, 0.05]), "selection.trust", "0 <= lower < upper"),
    ("zero selection budget", _set("selection.budget", 0), "selection.budget", "greater than or equal to 1"),
    ("unknown selection method", _set("selection.method", "random"), "selection.method", "'fps', 'kmeans'"),
    ("SOAP cutoff of 0.1 Å", _set("selection.soap_cutoff", 0.1), "selection.soap_cutoff", "greater than or equal"),
    ("accurate ratio above 1", _set("convergence.accurate_ratio", 1.5), "convergence.accurate_ratio",
     "less than or equal to 1"),
    ("zero iterations", _set("convergence.max_iterations", 0), "convergence.max_iterations", "greater than or"),
    ("top-level typo", lambda s: {**s, "sampeling": {"n_steps": 5}}, "sampeling",
     "unknown key (check its spelling); allowed keys: benchmark, convergence, explore, labeler, name"),
    ("nested typo", _set("labeler.batch_sise", 4), "labeler.batch_sise", "allowed keys: batch_size, calculator"),
    ("name with a space", _set("name", "my campaign"), "name", "should match pattern"),
    ("empty labeler section", _set("labeler", None), "labeler", "valid dictionary"),
    ("no structures section", _set("structures", DELETE), "structures", "Field required"),
    ("seed not a number", _set("seed", "abc"), "seed", "valid integer"),
    ("unknown resource", _set("resources.md", "tpu"), "resources.md", "'cpu' or 'gpu'"),
    ("key given twice", "name: toy\nname: other\n", "name", "given twice"),
    ("YAML syntax error", "name: toy\nsplits: {train: 0.7, valid: 0.3\n", None, "not valid YAML"),
    ("not UTF-8", b"name: toy\nlabeler: {calculator: \xff\xfe}\n", None, "not a UTF-8 text YAML file (byte"),
    ("a list, not a mapping", "- name: toy\n", None, "expected a mapping of settings at the top level"),
    ("empty file", "", None, "expected a mapping of settings at the top level"),
]


def _write(tmp_path: Path, case) -> Path:
    path = tmp_path / "campaign.yaml"
    if isinstance(case, bytes):
        path.write_bytes(case)
    elif isinstance(case, str):
        path.write_text(case)
    else:
        path.write_text(yaml.safe_dump(case(SPEC), sort_keys=False, allow_unicode=True))
    return path


def validate(path: Path) -> None:
    """What ``mlipflow validate`` checks: the file, then every Maker of the campaign's flow."""
    campaign_from_spec(load_campaign(path)).make()


@pytest.mark.parametrize(("case", "broken", "key", "says"), CORPUS, ids=[c[0] for c in CORPUS])
def test_broken_campaign_file_is_refused_at_validation(case, broken, key, says, tmp_path):
    path = _write(tmp_path, broken)
    with pytest.raises(MlipflowError) as err:
        validate(path)
    message = str(err.value)
    assert "pydantic" not in message and "validation error for" not in message  # never pydantic's own report
    assert "\n" not in message  # one problem, one line
    assert says in message, message
    if key is None:
        assert message.startswith(f"{path}"), message
        return
    found = re.match(rf"{re.escape(str(path))}:(\d+): {re.escape(key)}: ", message)
    assert found, message
    line = path.read_text().splitlines()[int(found.group(1)) - 1]
    keys = [part for part in key.split(".") if not part.isdigit()]
    # the line of the key, of its list item, or (for a missing key) of the mapping that lacks it
    assert keys[-1] in line or "- " in line or (keys[-2:-1] and keys[-2] in line) or (len(keys) == 1 and says == \
        "Field required"), (line, message)


def test_corpus_has_at_least_25_cases():
    assert len(CORPUS) >= 25


def test_several_problems_are_each_named_on_their_own_line(tmp_path):
    broken = _set("sampling.temperatures", [-1.0])(_set("selection.budget", 0)(SPEC))
    path = _write(tmp_path, lambda _: broken)
    with pytest.raises(MlipflowError) as err:
        validate(path)
    lines = str(err.value).splitlines()
    assert lines[0] == f"{path} has 2 problems:"
    assert {line.split(": ")[1] for line in lines[1:]} == {"sampling.temperatures.0", "selection.budget"}


def test_validate_command_prints_one_line_and_exits_1(tmp_path):
    path = _write(tmp_path, _set("splits", {"train": 0.7, "valid": 0.7}))
    proc = subprocess.run([sys.executable, "-m", "mlipflow", "validate", str(path)], capture_output=True, text=True,
                          timeout=300, env={**__import__("os").environ, "COLUMNS": "300"})
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"error: {path}:2: splits: the split fractions must sum to 1, they sum to 1.4"]
    ok = subprocess.run([sys.executable, "-m", "mlipflow", "validate", str(TOY)], capture_output=True, text=True,
                        timeout=300)
    assert ok.returncode == 0 and "is valid" in ok.stdout
