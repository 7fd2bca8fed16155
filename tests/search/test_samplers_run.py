"""Each `search.sampler` runs for real: a tiny Ray Tune run per sampler, its searcher built by
raysweep's builder (`SEARCHERS["optuna"].build`), a function trainable reporting two objectives
(one for CMA-ES). Every trial completes in Tune and reaches Optuna's study whole: as many
completed trials as Tune ran, each with a value per objective and, for the samplers that steer by
them, its constraint value.

Each run is long enough for the sampler's own method to act, not only its random start: TPE and
GP after their 10 startup trials, CMA-ES past its first generation, and NSGA-II into its second
generation (its first is 50 trials)."""

from __future__ import annotations

import optuna
import pytest

from raysweep.search import SEARCHERS, Request
from raysweep.search.objectives import Objective, parse_constraint
from raysweep.search.samplers import SAMPLERS
from raysweep.search.space import Param

pytestmark = pytest.mark.slow

SPACE = (Param("x", "uniform", low=0.0, high=1.0), Param("k", "randint", low=1, high=5),
         Param("c", "choice", values=("a", "b")))
TWO = (Objective("loss", "min"), Objective("auc", "max"))
CONSTRAINTS = (parse_constraint("auc <= 0.75"),)
N_TRIALS = {"tpe": 14, "random": 8, "cmaes": 14, "gp": 14, "qmc": 8, "nsga2": 56}
CLASSES = {"tpe": "TPESampler", "random": "RandomSampler", "cmaes": "CmaEsSampler", "gp": "GPSampler",
           "qmc": "QMCSampler", "nsga2": "NSGAIISampler"}


def expected(params: dict) -> list[float]:
    """What the trainable reports: loss falls with x and k, auc rises with x."""
    return [(1 - params["x"]) + 0.1 * params["k"] + (0.05 if params["c"] == "b" else 0.0), params["x"]]


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_each_sampler_completes_a_tune_run_and_its_study_holds_every_trial(name, ray_session, tmp_path):
    from ray import tune

    def trainable(config: dict) -> None:   # here and self-contained: Ray pickles it by value, not by module name
        tune.report({"loss": (1 - config["x"]) + 0.1 * config["k"] + (0.05 if config["c"] == "b" else 0.0),
                     "auc": config["x"]})

    for package in SAMPLERS[name].packages:
        pytest.importorskip(package)
    entry, n_trials = SAMPLERS[name], N_TRIALS[name]
    objectives = TWO if entry.objectives else TWO[:1]
    constraints = CONSTRAINTS if entry.constraints else ()
    plan = SEARCHERS["optuna"].build(Request(
        params=SPACE, fixed={"epochs": 1}, metric="loss", mode="min", seed=0, points=[], max_concurrent=2,
        num_samples=n_trials, objectives=objectives, constraints=constraints, sampler=name))
    tuner = tune.Tuner(trainable, param_space=plan.param_space,
                       tune_config=tune.TuneConfig(search_alg=plan.searcher, num_samples=plan.num_samples,
                                                   reuse_actors=True),
                       run_config=tune.RunConfig(storage_path=str(tmp_path), name=name, verbose=0))
    results = tuner.fit()

    assert results.num_errors == 0 and len(results) == n_trials
    assert all(r.metrics.get("loss") is not None and r.metrics.get("auc") is not None for r in results)
    study = getattr(plan.searcher, "searcher", plan.searcher)._ot_study   # inside the ConcurrencyLimiter
    assert type(study.sampler).__name__ == CLASSES[name]
    assert len(study.directions) == len(objectives)
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(done) == len(study.trials) == n_trials
    assert all(t.values == pytest.approx(expected(t.params)[:len(objectives)]) for t in done)
    if constraints:
        assert all(t.constraints == {"auc <= 0.75": pytest.approx(t.params["x"] - 0.75)} for t in done)
    if name == "nsga2":   # crossover ran: trials of the second generation were sampled
        assert max(t.system_attrs["NSGAIISampler:generation"] for t in done) >= 1
    if name == "cmaes":   # CMA-ES's own model proposed trials, not only its random first one
        assert any(key.endswith(":generation") for t in done for key in t.system_attrs)
