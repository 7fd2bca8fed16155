"""`search.sampler`: each Optuna sampler built seeded, given every objective and the constraints it
steers by (driven here through Ray Tune's OptunaSearch without a cluster), and validate's refusals
and notes for what a sampler cannot take."""

from __future__ import annotations

import importlib.util
import math
import pickle
import subprocess
import sys
import warnings

import optuna
import pytest

from raysweep import spec
from raysweep.search import SEARCHERS, Request, optuna_constraints, samplers, searchers
from raysweep.search.objectives import Objective, parse_constraint
from raysweep.search.samplers import SAMPLERS
from raysweep.search.space import Param
from raysweep.spec import sections
from raysweep.spec.problems import Problems
from raysweep.spec.schema import Search

CLASSES = {"tpe": "TPESampler", "random": "RandomSampler", "cmaes": "CmaEsSampler", "gp": "GPSampler",
           "qmc": "QMCSampler", "nsga2": "NSGAIISampler"}
SPACE = (Param("x", "uniform", low=0.0, high=1.0), Param("k", "randint", low=1, high=5),
         Param("c", "choice", values=("a", "b")))
TWO = (Objective("loss", "min"), Objective("auc", "max"))
SMALL_AUC = (parse_constraint("auc <= 0.25"),)
BRANCHING = (Param("x", "uniform", low=0.0, high=1.0),
             Param("c", "choice", values=("a", "b"), when=(("a", (Param("k", "randint", low=1, high=3),)),)))


def request(sampler: str | None, *, seed: int | None = 0, objectives=TWO, constraints=(), params=SPACE,
            points=(), max_concurrent: int = 1, algorithm: str = "optuna", scheduler_pauses: bool = False):
    r = Request(params=params, fixed={"epochs": 2}, metric=objectives[0].metric, mode=objectives[0].mode, seed=seed,
                points=list(points), max_concurrent=max_concurrent, num_samples=8, objectives=objectives,
                constraints=constraints, sampler=sampler, scheduler_pauses=scheduler_pauses)
    return SEARCHERS[algorithm].build(r)


def optuna_search(plan):
    """The OptunaSearch inside the plan's ConcurrencyLimiter (or the plan's own)."""
    return getattr(plan.searcher, "searcher", plan.searcher)


def outcome(config: dict) -> dict:
    """A trial's result: loss falls and auc rises with x."""
    return {"loss": 1 - config["x"], "auc": config["x"], "training_iteration": 1}


def drive(plan, n_trials: int, result=outcome, *, start: int = 0) -> list[dict]:
    """Suggest and complete trials one at a time, as Tune would with one running; their configs."""
    configs = []
    for i in range(start, start + n_trials):
        config = plan.searcher.suggest(f"t{i}")
        assert config is not None, f"no suggestion for trial {i}"
        plan.searcher.on_trial_complete(f"t{i}", result(config))
        configs.append(config)
    return configs


def needs(name: str) -> None:
    for package in SAMPLERS[name].packages:
        pytest.importorskip(package)


def single(name: str) -> tuple[Objective, ...]:
    return TWO if SAMPLERS[name].objectives else TWO[:1]


# --- building and driving each sampler ---------------------------------------------------------


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_each_sampler_is_the_study_sampler(name):
    study = optuna_search(request(name, objectives=single(name)))._ot_study
    assert type(study.sampler).__name__ == CLASSES[name]


def test_no_sampler_named_is_tpe():
    assert isinstance(optuna_search(request(None))._ot_study.sampler, optuna.samplers.TPESampler)


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_same_seed_same_suggestions(name):
    needs(name)
    n_trials = 4   # past CMA-ES's and QMC's first (random) trial, into their own sequences
    first, again = (drive(request(name, seed=3, objectives=single(name)), n_trials) for _ in range(2))
    other = drive(request(name, seed=4, objectives=single(name)), n_trials)
    assert first == again
    assert other != first


def test_two_objectives_make_a_study_with_two_directions():
    plan = request("nsga2")
    configs = drive(plan, 3)
    searcher = optuna_search(plan)
    study = searcher._ot_study
    assert searcher.metric == ["loss", "auc"] and searcher.mode == ["min", "max"]
    assert study.directions == [optuna.study.StudyDirection.MINIMIZE, optuna.study.StudyDirection.MAXIMIZE]
    assert [t.values for t in study.trials] == [[1 - c["x"], c["x"]] for c in configs]


def test_one_objective_stays_a_single_objective_study():
    searcher = optuna_search(request("tpe", objectives=TWO[:1]))
    assert searcher.metric == "loss" and searcher.mode == "min"
    assert searcher._ot_study.directions == [optuna.study.StudyDirection.MINIMIZE]


def test_a_request_without_objectives_optimises_its_metric():
    r = Request(params=SPACE, fixed={}, metric="loss", mode="max", seed=0, points=[], max_concurrent=1)
    searcher = optuna_search(SEARCHERS["optuna"].build(r))
    assert searcher.metric == "loss" and searcher.mode == "max"


def test_a_one_objective_sampler_refuses_two():
    with pytest.raises(ValueError, match="cmaes sampler optimises one objective"):
        request("cmaes", objectives=TWO)


def test_random_search_with_branches_is_optuna_random_with_every_objective():
    plan = request(None, algorithm="random", params=BRANCHING, scheduler_pauses=True)
    searcher = optuna_search(plan)
    assert plan.searcher is searcher, "random draws under a pausing scheduler need no limiter"
    assert isinstance(searcher._ot_study.sampler, optuna.samplers.RandomSampler)
    assert len(searcher._ot_study.directions) == 2


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_given_points_come_first_under_every_sampler(name):
    plan = request(name, objectives=single(name), points=[{"x": 0.25, "k": 2, "c": "b"}])
    assert drive(plan, 1) == [{"x": 0.25, "k": 2, "c": "b"}]


# --- constraints ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", samplers.taking(constraints=True))
def test_constraint_values_reach_the_steering_samplers(name):
    plan = request(name, constraints=SMALL_AUC)
    configs = drive(plan, 3)
    trials = optuna_search(plan)._ot_study.trials
    assert [t.user_attrs["constraints"] for t in trials] == [[c["x"] - 0.25] for c in configs]
    assert [t.constraints for t in trials] == [{"auc <= 0.25": c["x"] - 0.25} for c in configs]


@pytest.mark.parametrize("name", samplers.taking(constraints=False))
def test_samplers_that_ignore_constraints_are_not_given_them(name):
    needs(name)
    plan = request(name, constraints=SMALL_AUC, objectives=single(name))
    drive(plan, 2)
    assert all(t.constraints == {} and "constraints" not in t.user_attrs
               for t in optuna_search(plan)._ot_study.trials)


def test_tpe_steers_toward_feasible_trials():
    """auc rises with x, and the constraint caps it: TPE learns to stay low only when told."""
    high_auc = (Objective("auc", "max"),)
    free = drive(request("tpe", objectives=high_auc), 40)
    bound = drive(request("tpe", objectives=high_auc, constraints=SMALL_AUC), 40)
    assert late_mean_x(free) > 0.6
    assert late_mean_x(bound) < 0.4


def late_mean_x(configs: list[dict]) -> float:
    """The mean x of the last 20 trials, once TPE has left its 10 random ones behind."""
    return sum(c["x"] for c in configs[-20:]) / 20


def test_gp_models_the_constraints_with_two_objectives_and_branches():
    plan = request("gp", params=BRANCHING, constraints=SMALL_AUC)
    drive(plan, 11)   # one past GPSampler's 10 random trials
    study = optuna_search(plan)._ot_study
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
    assert study.sampler._constraints_gprs_cache_list is not None, "the GP fitted a model of the constraint"


def test_before_optuna_5_the_samplers_read_the_user_attribute(monkeypatch):
    """Without Trial.set_constraint, the values travel as a user attribute and constraints_func."""
    for trial_class in optuna.trial.Trial.__mro__:
        if "set_constraint" in vars(trial_class):
            monkeypatch.delattr(trial_class, "set_constraint")
    with pytest.warns(FutureWarning, match="constraints_func"):
        plan = request("tpe", constraints=SMALL_AUC)
    study = optuna_search(plan)._ot_study
    assert study.sampler._constraints_func is optuna_constraints.violations
    config = drive(plan, 1)[0]
    assert study.trials[0].system_attrs["constraints"] == (config["x"] - 0.25,)


def test_a_missing_constraint_metric_is_infinitely_violated():
    plan = request("tpe", constraints=(parse_constraint("latency_ms <= 5"),))
    drive(plan, 1)
    assert optuna_search(plan)._ot_study.trials[0].constraints == {"latency_ms <= 5": math.inf}


# --- trials Optuna cannot rank ---------------------------------------------------------------------


def test_nan_or_a_missing_objective_fails_the_trial_instead_of_leaving_it_running():
    plan = request("tpe")
    drive(plan, 1, result=lambda c: {"loss": math.nan, "auc": 0.5})
    drive(plan, 1, result=lambda c: {"loss": 0.5}, start=1)
    states = [t.state for t in optuna_search(plan)._ot_study.trials]
    assert states == [optuna.trial.TrialState.FAIL] * 2


def test_one_objective_without_its_value_is_pruned_as_ray_does():
    plan = request("tpe", objectives=TWO[:1])
    drive(plan, 1, result=lambda c: {"auc": 0.5})
    assert optuna_search(plan)._ot_study.trials[0].state == optuna.trial.TrialState.PRUNED


# --- pickling (Tune writes tuner.pkl and the searcher's checkpoints) -------------------------------


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_the_searcher_pickles_and_goes_on(name):
    needs(name)
    plan = request(name, objectives=single(name), constraints=SMALL_AUC)
    drive(plan, 2)
    restored = pickle.loads(pickle.dumps(plan.searcher))
    assert type(optuna_search(restored)).__name__ == "ConstrainedOptunaSearch"
    assert optuna_search(restored).constraints == optuna_search(plan).constraints
    config = restored.suggest("t2")
    restored.on_trial_complete("t2", outcome(config))
    assert len(optuna_search(restored)._ot_study.trials) == 3


def test_a_fresh_process_unpickles_the_searcher_by_its_module():
    """The class is made on first use (the module's __getattr__); unpickling is such a use."""
    pickled = pickle.dumps(optuna_search(request("tpe", constraints=SMALL_AUC)))
    script = ("import pickle, sys\nsearcher = pickle.loads(sys.stdin.buffer.read())\n"
              "print(type(searcher).__module__, type(searcher).__name__, searcher.constraints[0].text)")
    done = subprocess.run([sys.executable, "-c", script], input=pickled, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout.decode().split() == ["raysweep.search.optuna_constraints", "ConstrainedOptunaSearch",
                                            "auc", "<=", "0.25"]


def test_importing_the_registries_imports_neither_optuna_nor_ray():
    script = ("import sys\nfrom raysweep.search import samplers, searchers, optuna_constraints\nfrom raysweep import spec\n"
              "print(sorted(m for m in ('ray', 'optuna') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


# --- validate ----------------------------------------------------------------------------------------


def problems(raw) -> list[str]:
    with pytest.raises(spec.SpecError) as info:
        spec.validate(raw, source="s.yaml")
    return info.value.problems


@pytest.fixture
def optuna_spec(raw_spec):
    raw_spec["search"] = {"algorithm": "optuna", "num_samples": 4, "seed": 0}
    del raw_spec["fixed"]["site_embedding_dim"]
    raw_spec["params"]["site_embedding_dim"] = {"type": "choice", "values": [4, 8]}
    return raw_spec


BRANCHES = {"type": "choice", "values": ["dcn", "deep"], "when": {"dcn": {"cross_layers": {"type": "randint", "low": 1,
                                                                                           "high": 3}}}}


def test_a_named_sampler_is_kept(optuna_spec):
    optuna_spec["search"]["sampler"] = "nsga2"
    s = spec.validate(optuna_spec, source="s.yaml")
    assert s.search.sampler == "nsga2" and s.warnings == ()


def test_no_sampler_is_none(optuna_spec):
    assert spec.validate(optuna_spec, source="s.yaml").search.sampler is None


def test_a_sampler_needs_search_algorithm_optuna(optuna_spec):
    optuna_spec["search"].update(algorithm="random", sampler="tpe")
    assert problems(optuna_spec) == ["s.yaml: search.sampler: search.algorithm 'random' has no sampler to choose; "
                                     "remove search.sampler, or set search.algorithm: optuna"]


def test_an_unknown_sampler_suggests_the_closest(optuna_spec):
    optuna_spec["search"]["sampler"] = "nsgaii"
    assert problems(optuna_spec) == ["s.yaml: search.sampler: unknown sampler 'nsgaii'. Did you mean 'nsga2'? "
                                     "Known: tpe, random, cmaes, gp, qmc, nsga2."]


@pytest.fixture
def cmaes_installed(monkeypatch):
    """validate checks that cmaes is installed; these tests are about the space, wherever it is."""
    installed = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: object() if name == "cmaes" else installed(name, *a))


def test_cmaes_refuses_branches(optuna_spec, cmaes_installed):
    optuna_spec["search"]["sampler"] = "cmaes"
    optuna_spec["params"]["architecture"] = BRANCHES
    assert problems(optuna_spec) == [
        "s.yaml: params.architecture.when: search.sampler cmaes takes no conditional branches: "
        f"{SAMPLERS['cmaes'].branches.why}; use search.sampler: tpe or random, or tune the branch's parameters on every trial"]


def test_cmaes_refuses_a_space_of_choices_alone(optuna_spec, cmaes_installed):
    optuna_spec["search"]["sampler"] = "cmaes"
    del optuna_spec["params"]["learning_rate"]
    assert problems(optuna_spec) == [
        "s.yaml: search.sampler: cmaes would tune nothing here: CMA-ES models numeric parameters only, and every "
        "parameter is a choice; use search.sampler: tpe, random, gp, qmc or nsga2"]


def test_cmaes_draws_choices_at_random_with_a_note(optuna_spec, cmaes_installed):
    optuna_spec["search"]["sampler"] = "cmaes"
    s = spec.validate(optuna_spec, source="s.yaml")
    assert s.warnings == ("s.yaml: search.sampler: cmaes draws the choice parameters (site_embedding_dim) at random: "
                          "CMA-ES models numeric parameters only; for a sampler that models them use "
                          "tpe, random, gp, qmc or nsga2",)


def test_a_sampler_whose_package_is_missing_names_it(optuna_spec, monkeypatch):
    installed = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "cmaes" else installed(name, *a))
    optuna_spec["search"]["sampler"] = "cmaes"
    assert problems(optuna_spec) == ["s.yaml: search.sampler: the cmaes sampler needs cmaes, which is not installed; "
                                     "pip install cmaes, or choose another sampler"]


@pytest.mark.parametrize("name", samplers.taking(branches="independent"))
def test_samplers_that_draw_branches_at_random_say_so(optuna_spec, name):
    optuna_spec["search"]["sampler"] = name
    optuna_spec["params"]["architecture"] = BRANCHES
    s = spec.validate(optuna_spec, source="s.yaml")
    assert s.warnings == (f"s.yaml: search.sampler: {name} draws the branches' sub-parameters (cross_layers) at random: "
                          f"{SAMPLERS[name].branches.why}; for a sampler that models them use tpe or random",)


def test_several_objectives_need_a_sampler_that_takes_them():
    found = Problems("s.yaml")
    sections.sampler_fit(found, Search(algorithm="optuna", sampler="cmaes"), TWO, ())
    assert found.lines == ["s.yaml: search.sampler: cmaes optimises one objective, but metric names 2 (loss, auc); "
                           "use search.sampler: tpe, random, gp, qmc or nsga2, or name one metric"]


def test_constraints_with_a_sampler_that_ignores_them_is_a_note():
    found = Problems("s.yaml")
    sections.sampler_fit(found, Search(algorithm="optuna", sampler="qmc"), TWO, SMALL_AUC)
    assert found.lines == []
    assert found.notes == ["s.yaml: search.sampler: qmc samples without the constraints (auc <= 0.25): they only mark "
                           "its trials feasible or not; for a sampler that steers toward feasible trials use "
                           "tpe, gp or nsga2"]


def test_steering_samplers_with_several_objectives_and_constraints_say_nothing():
    found = Problems("s.yaml")
    for name in ("tpe", "gp", "nsga2", None):
        sections.sampler_fit(found, Search(algorithm="optuna", sampler=name), TWO, SMALL_AUC)
    assert found.lines == [] and found.notes == []


def test_validate_checks_the_sampler_against_the_objectives_and_constraints(optuna_spec):
    optuna_spec["search"]["sampler"] = "qmc"
    optuna_spec.update(metric=["val_loss", "val_auc"], mode=["min", "max"], constraints=["val_auc >= 0.8"])
    assert any("qmc samples without the constraints" in w for w in spec.validate(optuna_spec, source="s.yaml").warnings)


def test_ray_s_slow_space_warning_is_not_raised_for_sampling(monkeypatch):
    """A model-based sampler fits its model inside the space function; Ray would call that slow
    training code in the space every trial."""
    from ray.tune.search.optuna import OptunaSearch
    from ray.tune.search.optuna import optuna_search as ray_optuna

    monkeypatch.setattr(ray_optuna, "DEFINE_BY_RUN_WARN_THRESHOLD_S", -1)   # every suggestion is "slow"
    plain = OptunaSearch(searchers.OptunaSpace(SPACE), metric="loss", mode="min", seed=0)
    with pytest.warns(UserWarning, match="Define-by-run function"):
        plain.suggest("t0")
    ours = optuna_search(request("tpe"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ours.suggest("t0")


@pytest.mark.slow
def test_a_tune_run_tells_optuna_every_objective_and_constraint(ray_session, tmp_path):
    """Through Tune itself: the Tuner's single metric (the first objective) leaves the searcher's
    two alone, the searcher pickles into tuner.pkl, and each trial reaches the study whole."""
    from ray import tune

    def trainable(config):
        tune.report({"loss": 1 - config["x"], "auc": config["x"]})

    plan = request("nsga2", constraints=SMALL_AUC, max_concurrent=2)
    tuner = tune.Tuner(trainable, param_space=plan.param_space,
                       tune_config=tune.TuneConfig(metric="loss", mode="min", search_alg=plan.searcher, num_samples=4),
                       run_config=tune.RunConfig(storage_path=str(tmp_path), name="nsga2", verbose=0))
    results = tuner.fit()
    assert results.num_errors == 0 and len(results) == 4
    study = optuna_search(plan)._ot_study
    assert len(study.directions) == 2
    trials = study.trials
    assert len(trials) == 4 and all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    assert all(t.values == [1 - t.params["x"], t.params["x"]] for t in trials)
    assert all(t.constraints == {"auc <= 0.25": t.params["x"] - 0.25} for t in trials)
