"""The label-efficiency benchmark at toy size: the machinery (same pool and test set, no leak, seeds), not the outcome.

The toy campaign (12-atom Li2O, toy-morse surrogate) gives the pool and the test set by real MD in this process;
one seed of ``random`` and ``campaign`` trains four real (tiny) MACE models, and the other strategies' picks are
checked on that committee.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from mlipflow.benchmark import efficiency as eff
from mlipflow.campaign.spec import load_campaign
from mlipflow.errors import ConfigError
from mlipflow.settings import load_settings
from mlipflow.storage import get_stores

TOY = Path(__file__).resolve().parents[2] / "flows" / "campaign_toy.yaml"
SETTINGS = eff.EfficiencySettings.tiny(seeds=[0], strategies=["random", "campaign"])


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    root = tmp_path_factory.mktemp("efficiency")
    spec = load_campaign(TOY)
    stores = get_stores(load_settings(home=root / "home"))
    pool, test = eff.build_pool_and_test(spec, SETTINGS, stores, cache=root / "cache", processes=1)
    ctx = eff.make_context(spec, pool, test, SETTINGS, workdir=root / "work", e0s=eff.labeler_e0s(spec))
    runs = eff.run_strategies(ctx)
    return spec, pool, test, ctx, runs, root


def test_pool_and_test_set_from_the_campaign_file(toy):
    spec, pool, test, _, _, root = toy
    # 1 exploration cell x 2 temperatures x 1 walker, (28 - 4) / 4 = 6 kept steps and the last one
    assert len(pool) == len(test) == 2 * 7
    assert {a.info["temperature"] for a in pool} == {300.0, 1200.0}
    assert {eff.frame_key(a) for a in pool}.isdisjoint({eff.frame_key(a) for a in test})
    assert not {a.info["group"] for a in pool} & {a.info["group"] for a in test}
    # cached: a second build labels nothing and gives the same frames
    again = eff.build_pool_and_test(spec, SETTINGS, get_stores(load_settings(home=root / "home2")),
                                    cache=root / "cache", processes=1)
    assert [eff.frame_key(a) for a in again[0]] == [eff.frame_key(a) for a in pool]


def test_every_strategy_sees_the_same_pool_validation_and_test_set(toy):
    _, _, _, ctx, runs, _ = toy
    assert {r["pool_digest"] for r in runs} == {ctx.pool_digest}
    assert {r["test_digest"] for r in runs} == {ctx.test_digest}
    assert all(r["valid"] == ctx.trainer.valid for r in runs)
    valid = set(ctx.trainer.valid)
    by = {r["strategy"]: r for r in runs}
    for r in runs:
        assert [p["labels"] for p in r["points"]] == SETTINGS.budgets
        for p in r["points"]:
            assert len(p["picked"]) == len(set(p["picked"])) == p["labels"]
            assert not set(p["picked"]) & valid
            assert np.isfinite(p["rmse_f_meV_A"]) and p["p95_f_meV_A"] > 0 and np.isfinite(p["rmse_e_meV_atom"])
    # the campaign starts from random's first picks: the same model, trained once, the same test error
    assert by["campaign"]["points"][0]["picked"] == by["random"]["points"][0]["picked"]
    assert by["campaign"]["points"][0]["rmse_f_meV_A"] == by["random"]["points"][0]["rmse_f_meV_A"]
    assert by["campaign"]["points"][0]["selection"]["spot_checks"] <= 2
    # random, committee member 1, random at 6, campaign at 6
    assert ctx.trainer.trainings == 4


def test_seeds_are_reproducible(toy):
    _, _, _, ctx, runs, _ = toy
    trainings = ctx.trainer.trainings
    again = eff.run_strategy(ctx, "campaign", 0)  # same seed: same picks, so every model is the one trained before
    first = next(r for r in runs if r["strategy"] == "campaign")
    assert [p["picked"] for p in again["points"]] == [p["picked"] for p in first["points"]]
    assert [p["rmse_f_meV_A"] for p in again["points"]] == [p["rmse_f_meV_A"] for p in first["points"]]
    assert ctx.trainer.trainings == trainings
    assert eff._random_order(ctx.candidates, 0) == eff._random_order(ctx.candidates, 0)
    assert eff._random_order(ctx.candidates, 0) != eff._random_order(ctx.candidates, 1)
    # uncertainty picks on the seed-0 committee are deterministic and are the largest spreads
    labeled = first["points"][0]["picked"]
    from mlipflow.training.committee import committee_seeds

    paths = [ctx.trainer.model(labeled, s)["path"] for s in committee_seeds(0, 2)]
    assert ctx.trainer.trainings == trainings
    picks, info = eff._uncertainty_picks(ctx, labeled, 3, paths, 0)
    assert picks == eff._uncertainty_picks(ctx, labeled, 3, paths, 0)[0]
    assert len(picks) == 3 and not set(picks) & set(labeled) and info["max_spread_eV_A"] > 0
    # diversity (FPS on the campaign's descriptor) is a fixed order per seed
    from mlipflow.selection.diversity import farthest_point_sampling

    x = ctx.descriptors()[ctx.candidates]
    assert ([p.index for p in farthest_point_sampling(x, 6, seed=0)]
            == [p.index for p in farthest_point_sampling(x, 6, seed=0)])


def test_document_names_the_surrogate_and_the_headline(toy):
    _, _, _, ctx, runs, _ = toy
    doc = eff.efficiency_document(ctx, runs, 1.0)
    assert doc["labeler"]["kind"] == "surrogate" and doc["labeler"]["surrogate"]
    assert doc["test"]["in_pool"] == 0
    assert set(doc["curves"]) == {"random", "campaign"}
    random = doc["labels_to_reach_random"]["random"]
    assert random["ratio_mean"] == pytest.approx(1.0) or random["per_seed"]["0"]["labels"] <= SETTINGS.budgets[-1]
    assert "ratio_mean" in doc["headline"] and doc["headline"]["goal"] == 0.5
    lines = eff.efficiency_lines(doc)
    assert "surrogate labels, not DFT" in lines[0]


def test_labels_to_reach_interpolates_in_log_log():
    points = [{"labels": 4, "rmse_f_meV_A": 400.0}, {"labels": 16, "rmse_f_meV_A": 100.0}]
    assert eff.labels_to_reach(points, 200.0) == pytest.approx(8.0)
    assert eff.labels_to_reach(points, 500.0) == 4.0
    assert eff.labels_to_reach(points, 50.0) is None
    runs = [{"strategy": s, "seed": 0, "wall_s": 1.0, "cost_s": 1.0,
             "points": [{"labels": 4, "rmse_f_meV_A": a, "p95_f_meV_A": a, "rmse_e_meV_atom": 1.0},
                        {"labels": 16, "rmse_f_meV_A": b, "p95_f_meV_A": b, "rmse_e_meV_atom": 1.0}]}
            for s, a, b in (("random", 400.0, 200.0), ("campaign", 400.0, 100.0))]
    summary = eff.summarize(runs, [4, 16])
    assert summary["headline"]["ratio_mean"] == pytest.approx(8.0 / 16)
    assert summary["labels_to_reach_random"]["random"]["ratio_mean"] == pytest.approx(1.0)


def test_bad_input_is_one_line_naming_the_key(toy, tmp_path):
    spec, pool, test, _, _, _ = toy
    with pytest.raises(ConfigError, match="budgets: the largest budget 40 is larger than the candidate pool"):
        eff.check_inputs(pool, test, eff.EfficiencySettings.tiny(budgets=[3, 40]))
    with pytest.raises(ConfigError, match="candidate pool is empty"):
        eff.check_inputs([], test, SETTINGS)
    with pytest.raises(ConfigError, match="test frames are also in the candidate pool"):
        eff.check_inputs(pool, test + pool[:1], SETTINGS)
    with pytest.raises(ConfigError, match="pool_steps 3 keeps no frame"):
        eff.build_pool_and_test(spec, eff.EfficiencySettings.tiny(pool_steps=3), None)
    with pytest.raises(ConfigError, match=r"^efficiency setting budgets: "):
        eff.settings_from_options(budgets=[6, 3])
    from mlipflow.cli import app

    result = CliRunner().invoke(app, ["efficiency", str(TOY), "--budgets", "3,400", "--pool-steps", "28",
                                      "--pool-replicas", "1"])
    assert result.exit_code != 0
    message = str(result.exception) if result.exception else result.output
    assert "budgets: the largest budget 400" in message


def test_report_shows_the_curves_and_the_ratio(toy, tmp_path):
    spec, _, _, ctx, runs, _ = toy
    from mlipflow.benchmark.report import report

    stores = get_stores(load_settings(home=tmp_path / "home"))
    eff.save_efficiency(stores, eff.efficiency_document(ctx, runs, 1.0))
    page = report(spec.name, tmp_path / "r.html", stores=stores).read_text()
    section = page[page.index('id="efficiency"'):]
    assert "over random&#x27;s" in section or "over random's" in section
    assert "toy-morse (surrogate, not DFT)" in section
    assert 'alt="label efficiency learning curves"' in section
