"""Several objectives and constraints after a sweep: the store's points, feasibility and fronts;
rank's order and columns; the Pareto plot; export's pick; the champion that constraints allow.

The fast tests build experiments from synthetic tables (a spec snapshot and the two Parquet
files of the results store), without Ray; the slow one runs a real tiny sweep of two objectives.
"""

from __future__ import annotations

import copy
import json
import math

import matplotlib.image
import pandas as pd
import pytest
import yaml

from raysweep import cli, spec
from raysweep.analysis import champion, leaderboard, pareto, picks, plots, report, store
from raysweep.deploy import model_card
from raysweep.errors import UserError
from raysweep.phases import sweep
from raysweep.search.objectives import Constraint, Objective
from raysweep.spec import SNAPSHOT_FILE

from conftest import BASE_SPEC

# Each trial's reports, epoch by epoch. Its point is read at the epoch of its best val_loss.
REPORTS = {
    # the lowest feasible val_loss: on the front
    "a": [dict(val_loss=0.50, val_ece=0.10, val_auc=0.70), dict(val_loss=0.30, val_ece=0.08, val_auc=0.72)],
    # on the front; its best val_ece (0.01, epoch 2) is not at its best val_loss (epoch 1): the point says 0.02
    "b": [dict(val_loss=0.40, val_ece=0.02, val_auc=0.80), dict(val_loss=0.45, val_ece=0.01, val_auc=0.80)],
    # dominated by a: the second front
    "c": [dict(val_loss=0.35, val_ece=0.09, val_auc=0.60), dict(val_loss=0.50, val_ece=0.20, val_auc=0.60)],
    # dominated by a and c, but the best val_auc of all
    "f": [dict(val_loss=0.60, val_ece=0.30, val_auc=0.95)],
    # dominates everyone, but breaks val_auc >= 0.5: after every feasible trial
    "d": [dict(val_loss=0.10, val_ece=0.01, val_auc=0.30)],
    # diverged after a good epoch: never feasible
    "e": [dict(val_loss=0.20, val_ece=0.05, val_auc=0.90)],
}
STATUS = {"e": "diverged"}
LR = {"a": 1e-3, "b": 2e-3, "c": 3e-3, "f": 4e-3, "d": 5e-3, "e": 6e-3}
TWO = dict(metric=["val_loss", "val_ece"], mode=["min", "min"], constraints=["val_auc >= 0.5"])


def raw_spec(**changes) -> dict:
    raw = copy.deepcopy(BASE_SPEC)
    raw["data"]["path"] = "/nonexistent/data"   # ranking and choosing never read the data
    raw.update(changes)
    return raw


def write_experiment(tmp_path, raw: dict, *, annotate: bool = True, name: str = "exp"):
    """An experiment directory holding a spec snapshot and the results store of REPORTS."""
    experiment_dir = tmp_path / name
    experiment_dir.mkdir()
    (experiment_dir / SNAPSHOT_FILE).write_text(yaml.safe_dump(raw))
    s = spec.validate(raw, check_data=False)
    rows, curves = [], []
    for trial, reports in REPORTS.items():
        losses = [r["val_loss"] for r in reports]
        row = {"trial": trial, "learning_rate": LR[trial], "status": STATUS.get(trial, "finished"),
               "error": "DivergedError: loss is nan" if trial in STATUS else "", "epochs_run": len(reports),
               "planned_epochs": 3, "best_epoch": losses.index(min(losses)) + 1}
        for m in ("val_loss", "val_ece", "val_auc"):
            values = [r[m] for r in reports]
            row[f"best_{m}"] = max(values) if m == "val_auc" else min(values)
            row[f"last_{m}"] = values[-1]
        rows.append(row)
        curves.append({"trial": [trial] * len(reports), "step": list(range(1, len(reports) + 1)),
                       "epoch": list(range(1, len(reports) + 1)),
                       **{m: [r[m] for r in reports] for m in ("val_loss", "val_ece", "val_auc")}})
    store.write(experiment_dir, store.assemble(rows, curves, s if annotate else None))
    return experiment_dir


@pytest.fixture
def two(tmp_path):
    return write_experiment(tmp_path, raw_spec(**TWO))


def test_the_store_holds_each_trials_point_at_its_best_epoch_its_feasibility_and_front(two):
    trials = store.load(two).trials.set_index("trial")
    assert trials.loc["b", "at_best_val_loss"] == 0.40
    assert trials.loc["b", "at_best_val_ece"] == 0.02, "read at the epoch of b's best val_loss, not b's best val_ece"
    assert trials.loc["b", "best_val_ece"] == 0.01
    assert trials.loc["a", "at_best_val_auc"] == 0.72
    assert trials["feasible"].to_dict() == {"a": True, "b": True, "c": True, "f": True, "d": False, "e": False}
    # feasible: a, b on the front, c behind a, f behind c; then the infeasible among themselves
    assert trials["pareto_rank"].to_dict() == {"a": 1, "b": 1, "c": 2, "f": 3, "d": 4, "e": 5}
    assert math.isinf(trials.loc["a", "crowding"])


def test_a_store_written_without_the_spec_gets_the_columns_when_ranked(tmp_path):
    experiment_dir = write_experiment(tmp_path, raw_spec(**TWO), annotate=False)
    assert "pareto_rank" not in store.load(experiment_dir).trials
    table = leaderboard.leaderboard(experiment_dir)
    assert list(table["trial"]) == ["a", "b", "c", "f", "d", "e"]


def test_one_objective_without_constraints_is_feasible_unless_failed_and_has_no_front(tmp_path):
    trials = store.load(write_experiment(tmp_path, raw_spec())).trials.set_index("trial")
    assert trials["feasible"].to_dict() == {"a": True, "b": True, "c": True, "f": True, "d": True, "e": False}
    assert "pareto_rank" not in trials and "at_best_val_loss" in trials


def test_rank_orders_by_feasibility_front_and_crowding_and_shows_each_objective(two, capsys):
    table = leaderboard.leaderboard(two)
    assert list(table["trial"]) == ["a", "b", "c", "f", "d", "e"], "d's val_loss is the lowest, but it is infeasible"
    assert list(table.columns) == ["rank", "trial", "learning_rate", "best_val_loss", "at_best_val_ece",
                                   "at_best_val_auc", "best_epoch", "epochs", "pareto_rank", "feasible", "status"]
    assert table.set_index("trial").loc["b", "at_best_val_ece"] == 0.02
    assert cli.main(["rank", str(two)]) == 0
    out = capsys.readouterr().out
    assert "pareto_rank" in out and "at_best_val_ece" in out and "feasible" in out
    assert "Pareto front of val_loss (min), val_ece (min): 2 trials (pareto_rank 1); 4 of 6 feasible " \
           "(constraints: val_auc >= 0.5)" in out


def test_rank_of_one_objective_with_constraints_puts_the_infeasible_last(tmp_path, capsys):
    experiment_dir = write_experiment(tmp_path, raw_spec(constraints=["val_auc >= 0.5"]))
    table = leaderboard.leaderboard(experiment_dir)
    assert list(table["trial"]) == ["a", "c", "b", "f", "d", "e"]
    assert "feasible" in table and "pareto_rank" not in table and "at_best_val_auc" in table
    assert table["feasible"].tolist() == [True, True, True, True, False, False]
    assert cli.main(["rank", str(experiment_dir)]) == 0
    assert "4 of 6 trials feasible (constraints: val_auc >= 0.5), ranked first" in capsys.readouterr().out


def test_rank_of_one_objective_without_constraints_is_unchanged(tmp_path, capsys):
    table = leaderboard.leaderboard(write_experiment(tmp_path, raw_spec()))
    assert list(table.columns) == ["rank", "trial", "learning_rate", "best_val_loss", "best_epoch", "epochs", "status"]
    assert list(table["trial"]) == ["d", "e", "a", "c", "b", "f"]


def image_size(path) -> tuple[int, int]:
    image = matplotlib.image.imread(path)
    assert image[..., :3].std() > 0.05, f"{path} is blank"
    return image.shape[:2]


def test_the_pareto_plot_is_a_scatter_for_two_objectives_and_parallel_coordinates_for_three(tmp_path):
    two_dir = write_experiment(tmp_path, raw_spec(**TWO), name="two")
    drawn = plots.all_plots(two_dir, tmp_path / "plots2")
    assert "pareto_front" in drawn and drawn["pareto_front"].name == "pareto_front.png"
    three_dir = write_experiment(tmp_path, raw_spec(metric=["val_loss", "val_ece", "val_auc"], mode=["min", "min", "max"]),
                                 name="three")
    three = plots.all_plots(three_dir, tmp_path / "plots3")["pareto_front"]
    assert image_size(drawn["pareto_front"]) == (550, 770), "the scatter's 7 x 5 inches"
    assert image_size(three) == (528, 814), "parallel coordinates, 1.8 inches an objective"
    one_dir = write_experiment(tmp_path, raw_spec(), name="one")
    assert "pareto_front" not in plots.all_plots(one_dir, tmp_path / "plots1")
    assert list(pareto.front(store.load(two_dir).trials)["trial"]) == ["a", "b"]


def test_the_report_shows_the_front_and_how_it_ranked(two, tmp_path):
    page = report.write(two, tmp_path / "report.html").read_text()
    assert "Pareto front of the objectives" in page and page.count("<img ") >= 2
    assert "ranked by Pareto front over val_loss (min), val_ece (min); constraints: val_auc &gt;= 0.5 " \
           "(2 on the front, 4 feasible" in page


@pytest.mark.parametrize("text, wanted", [
    ("min val_loss", picks.Pick(Objective("val_loss", "min"))),
    ("max val_auc where val_ece <= 0.05 and val_loss < 1",
     picks.Pick(Objective("val_auc", "max"), (Constraint("val_ece", "<=", 0.05),
                                                    Constraint("val_loss", "<", 1.0)))),
])
def test_the_pick_grammar(text, wanted):
    assert picks.parse(text) == wanted
    assert picks.parse(wanted.text) == wanted


@pytest.mark.parametrize("text, says", [
    ("val_loss", "not 'min|max METRIC [where CONSTRAINT [and CONSTRAINT]...]'"),
    ("min val_loss where", "not 'min|max METRIC"),
    ("min val_loss if val_auc > 1", "not 'min|max METRIC"),
    ("min val_loss where val_auc = 0.5", "'val_auc = 0.5' is not 'METRIC OP NUMBER'"),
    ("min val_loss where val_auc >= 0.5 and", "'val_auc >= 0.5 and' is not 'METRIC OP NUMBER'"),
])
def test_a_malformed_pick_is_one_error_line(text, says):
    with pytest.raises(UserError) as caught:
        picks.parse(text)
    assert len(caught.value.lines) == 1 and says in caught.value.lines[0]


@pytest.mark.parametrize("args, says", [
    (["--pick", "min val_loss where"], "error: --pick 'min val_loss where': not 'min|max METRIC"),
    (["--pick", "min val_los"], "error: --pick 'min val_los': val_los is not a metric of this experiment. "
                                "Did you mean 'val_loss'?"),
    (["--pick", "max val_loss"], "error: --pick 'max val_loss': val_loss is better when lower: --pick 'min val_loss'"),
    (["--pick", "min val_loss", "--objective", "val_ece"], "error: --pick says it all"),
    (["--pick", "min val_loss", "--trial", "a"], "error: --pick 'min val_loss' chooses the trial"),
    (["--objective", "val_fbeta_typo"], "error: --objective val_fbeta_typo: its direction is not known"),
    (["--constraint", "val_auc => 0.5"], "error: --constraint: 'val_auc => 0.5' is not 'METRIC OP NUMBER'"),
])
def test_export_refuses_a_malformed_pick_with_exit_2(two, tmp_path, capsys, args, says):
    to = tmp_path / "champion"
    assert cli.main(["export", str(two), "--to", str(to), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith(says) and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not to.exists()


def test_export_refuses_a_pick_nobody_meets_with_exit_1_and_the_closest(two, tmp_path, capsys):
    to = tmp_path / "champion"
    assert cli.main(["export", str(two), "--to", str(to), "--pick", "min val_loss where val_auc >= 0.99"]) == 1
    err = capsys.readouterr().err
    assert "refused: --pick 'min val_loss where val_auc >= 0.99': none of the 4 feasible trials meets it" in err
    assert "the best val_auc is 0.95 (trial f)" in err and "Nothing exported." in err
    assert not to.exists() and not list(tmp_path.glob(".champion.*"))


def test_the_default_champion_is_the_fronts_best_on_the_first_objective_never_an_infeasible_one(two):
    best = champion.select(two)
    assert (best.trial, best.metric, best.value) == ("a", "val_loss", 0.30), "not d (infeasible) nor e (diverged)"
    assert best.checkpoint_on == ("val_loss", "min")
    assert best.choice["pick"] is None and best.choice["constraints"] == ["val_auc >= 0.5"]
    assert [t["trial"] for t in best.choice["front"]] == ["a", "b"]


def test_a_pick_chooses_along_the_front_at_the_exported_epoch(two):
    by_ece = champion.select(two, pick=picks.parse("min val_ece"))
    assert (by_ece.trial, by_ece.value) == ("b", 0.02), "b's val_ece at its best val_loss's epoch, which is exported"
    assert by_ece.checkpoint_on == ("val_loss", "min")
    # val_auc is no objective: the front's best (b), not f, whom a and c dominate
    assert champion.select(two, pick=picks.parse("max val_auc")).trial == "b"
    # the pick's constraint leaves f alone: the front drawn over the trials meeting it is f
    assert champion.select(two, pick=picks.parse("min val_loss where val_auc >= 0.9")).trial == "f"
    assert champion.select(two, pick=picks.parse("min val_loss where val_ece <= 0.05")).trial == "b"


def test_constraints_bind_a_single_objective_champion_too(tmp_path):
    experiment_dir = write_experiment(tmp_path, raw_spec(constraints=["val_auc >= 0.5"]))
    best = champion.select(experiment_dir)
    assert best.trial == "a" and best.choice["constraints"] == ["val_auc >= 0.5"] and "front" not in best.choice
    assert champion.select(experiment_dir, "val_ece", "min").trial == "b", "--metric: the feasible trials' best"
    assert champion.select(experiment_dir, trial="d").trial == "d", "a trial asked for by id is taken"
    # one objective: the pick ranks every trial that meets it, not a front of one
    assert champion.select(experiment_dir, pick=picks.parse("max val_auc")).trial == "f"
    assert champion.select(write_experiment(tmp_path, raw_spec(), name="plain")).trial == "d", "no constraints"


def test_no_feasible_trial_means_no_champion(tmp_path):
    experiment_dir = write_experiment(tmp_path, raw_spec(**{**TWO, "constraints": ["val_auc >= 0.99"]}))
    with pytest.raises(champion.NoneMeets, match=r"no trial meets the spec's constraints \(val_auc >= 0.99\)"):
        champion.select(experiment_dir)


def test_the_model_card_records_the_choice(two):
    best = champion.select(two, pick=picks.parse("min val_ece where val_auc >= 0.5"))
    card = json.loads(json.dumps(model_card.card_head(two, best, None), default=str))
    choice = card["choice"]
    assert choice["pick"] == "min val_ece where val_auc >= 0.5" and choice["trial"] == "b"
    assert choice["front"] == [{"trial": "a", "val_loss": 0.30, "val_ece": 0.08},
                               {"trial": "b", "val_loss": 0.40, "val_ece": 0.02}]
    assert choice["constraints"] == ["val_auc >= 0.5"] and choice["pick_constraints"] == ["val_auc >= 0.5"]
    assert card["champion"]["feasible"] is True and card["champion"]["pareto_rank"] == 1
    assert card["metrics"]["at_best_val_ece"] == 0.02


@pytest.mark.slow
def test_a_real_sweep_of_two_objectives_ranks_reports_and_exports_a_pick(ray_session, tiny_data, tmp_path, capsys):
    raw = copy.deepcopy(BASE_SPEC)
    raw.update(metric=["val_loss", "val_ece"], mode=["min", "min"], constraints=["val_auc >= 0.5"])
    raw["data"]["path"] = str(tiny_data)
    raw["storage_path"] = str(tmp_path / "results")
    raw["fixed"]["epochs"] = 2
    raw["search"]["num_samples"] = 4
    experiment_dir = sweep.run(spec.validate(raw))

    trials = store.load(experiment_dir).trials
    assert {"at_best_val_loss", "at_best_val_ece", "at_best_val_auc", "feasible", "pareto_rank"} <= set(trials)
    assert (trials["pareto_rank"] == 1).any()
    assert trials["feasible"].any(), "no trial met val_auc >= 0.5 at its best val_loss's epoch: the pick below needs one"
    assert cli.main(["rank", str(experiment_dir)]) == 0
    out = capsys.readouterr().out
    assert "pareto_rank" in out and "Pareto front of val_loss (min), val_ece (min)" in out

    page = report.write(experiment_dir, tmp_path / "report.html").read_text()
    assert "Pareto front of the objectives" in page

    to = tmp_path / "champion"
    assert cli.main(["export", str(experiment_dir), "--to", str(to), "--pick", "min val_ece where val_auc >= 0.5"]) == 0
    card = json.loads((to / "model_card.json").read_text())
    on_front = trials[(trials["pareto_rank"] == 1) & trials["feasible"]]
    wanted = on_front.sort_values("at_best_val_ece", kind="stable").iloc[0]
    assert card["champion"]["trial"] == wanted["trial"]
    assert card["champion"]["value"] == pytest.approx(wanted["at_best_val_ece"])
    assert card["choice"]["pick"] == "min val_ece where val_auc >= 0.5"
    assert sorted(t["trial"] for t in card["choice"]["front"]) == sorted(on_front["trial"])
    assert "chosen: min val_ece where val_auc >= 0.5: the best val_ece on the Pareto front" in capsys.readouterr().out
    refused = tmp_path / "refused"
    assert cli.main(["export", str(experiment_dir), "--to", str(refused), "--pick", "min val_loss where val_auc > 1"]) == 1
    assert "Nothing exported" in capsys.readouterr().err and not refused.exists()


def test_a_trial_missing_an_objective_is_not_feasible_and_never_on_the_front():
    objectives = (Objective("val_loss", "min"), Objective("latency_ms", "min"))
    trials = pd.DataFrame({"trial": ["a", "b", "c"], "status": ["finished"] * 3})
    curves = pd.DataFrame({"trial": ["a", "b", "c"], "epoch": [1, 1, 1], "val_loss": [0.1, 0.3, 0.2],
                           "latency_ms": [float("nan"), 1.0, 2.0]})   # a: the best loss, never timed
    annotated = pareto.annotate(trials, curves, objectives).set_index("trial")
    assert annotated["feasible"].to_dict() == {"a": False, "b": True, "c": True}
    assert annotated.loc[["b", "c"], "pareto_rank"].tolist() == [1, 1] and annotated.loc["a", "pareto_rank"] > 1
