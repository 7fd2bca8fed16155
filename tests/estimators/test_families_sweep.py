"""The ready spec sweeps all four families under ASHA + Optuna TPE on a real table; the champion
and each family's best trial export in their native format, load without raysweep, and predict."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from raysweep import cli, experiment, spec
from raysweep.analysis import store
from raysweep.estimators.registry import FAMILIES
from raysweep.phases import sweep

pytestmark = pytest.mark.slow
SPEC = "search_spaces/model_families_optuna.yaml"


@pytest.fixture(scope="module")
def families_sweep(ray_session, cancer, tmp_path_factory):
    overrides = [f"data.path={cancer}", f"storage_path={tmp_path_factory.mktemp('families')}",
                 "search.num_samples=8", "fixed.epochs=4", "fixed.rounds_per_epoch=5", "scheduler.grace_period=1",
                 "checkpoints.keep_top=2",   # the best two, and the best of each family (scientific)
                 "resources.max_concurrent_trials=1",   # one at a time: the same
                 # trials and the same ASHA decisions on every run
                 # one trial of each family first, so that every family is in the study whatever TPE picks next
                 "search.points_to_evaluate=[{family: logistic_regression}, {family: random_forest}, "
                 "{family: lightgbm}, {family: xgboost}]"]
    return sweep.run(spec.load(SPEC, overrides))


def test_the_spec_sweeps_every_family_under_asha_and_tpe(families_sweep):
    s = experiment.load_spec(families_sweep)
    assert (s.search.algorithm, s.scheduler.type) == ("optuna", "asha")
    trials = store.load(families_sweep).trials
    assert len(trials) == 8 and set(trials["family"]) == set(FAMILIES)
    assert set(trials["status"]) <= {"finished", "stopped by ASHA"}, trials["status"].tolist()
    stopped = trials[trials["status"] == "stopped by ASHA"]
    assert len(stopped) and set(stopped["family"]) <= {"lightgbm", "xgboost"}   # weak boosters, after few rounds
    once = trials[trials["family"].isin(["logistic_regression", "random_forest"])]
    assert (once["epochs_run"] == 4).all()   # fitted once, reported at the full budget
    boosted = trials[trials["family"].isin(["lightgbm", "xgboost"])]
    assert (boosted["last_rounds"] == boosted["epochs_run"] * 5).all()
    assert trials["best_val_fbeta"].notna().all() and trials["best_val_fbeta"].max() > 0.9


def test_the_champion_and_each_familys_best_export_load_and_predict(families_sweep, cancer, tmp_path, capsys):
    trials = store.load(families_sweep).trials
    assert cli.main(["export", str(families_sweep), "--to", str(tmp_path / "refused"), "--min-metric", "1.01"]) == 1
    assert "Nothing exported" in capsys.readouterr().err and not (tmp_path / "refused").exists()
    for family in FAMILIES:
        best = trials[trials["family"] == family].sort_values("best_val_fbeta", ascending=False).iloc[0]
        to = tmp_path / family
        assert cli.main(["export", str(families_sweep), "--to", str(to), "--trial", best["trial"],
                         "--min-metric", "0.7"]) == 0
        card = json.loads((to / "model_card.json").read_text())
        assert card["family"] == family and (to / FAMILIES[family].FILE).is_file()
        assert card["model"]["library"].split()[0] in ("sklearn", "lightgbm", "xgboost")
        assert card["champion"]["trial"] == best["trial"] and 0 < card["decision_threshold"] < 1
        capsys.readouterr()
        assert cli.main(["predict", str(to), "--data", str(cancer), "--out", str(tmp_path / f"{family}.parquet")]) == 0
        out = capsys.readouterr().out
        assert float(out.split("val_fbeta ")[1].split()[0]) == pytest.approx(best["best_val_fbeta"], abs=1e-4)
        # The card's loading line works in an interpreter that never imports raysweep.
        snippet = (f"import numpy, lightgbm, xgboost, skops.io\nX = numpy.zeros((3, 30))\n"
                   f"print(numpy.asarray({card['model']['load'].split('  #')[0]}).shape[0])")
        result = subprocess.run([sys.executable, "-c", snippet], cwd=to, capture_output=True, text=True)
        assert result.returncode == 0 and result.stdout.strip() == "3", result.stderr
    # The champion by default: the best trial of all.
    assert cli.main(["export", str(families_sweep), "--to", str(tmp_path / "champion")]) == 0
    card = json.loads((tmp_path / "champion" / "model_card.json").read_text())
    assert card["champion"]["value"] == pytest.approx(trials["best_val_fbeta"].max())
