"""Each plug-in owns its options: a scheduler's or a sampler's entry names a dataclass of the keys it
reads (defaults, types, ranges) and its own check, `validate` reads a section against it, and the
builder receives the options as checked. Adding one is one entry: the throwaway entries here are
registered in the test alone, and validate, messages and builder follow."""

from __future__ import annotations

import copy
import dataclasses
import importlib.util
import pickle
import typing
from dataclasses import dataclass
from typing import Literal

import optuna
import pytest

from raysweep import spec
from raysweep.search import SCHEDULERS, SEARCHERS, Request, samplers, schedulers
from raysweep.search.objectives import Objective, parse_constraint
from raysweep.search.options import Finding, NoOptions, option, option_keys
from raysweep.search.samplers import MODELLED, NSGA2, SAMPLERS, Sampler
from raysweep.search.schedulers import ASHA, SchedulerKind, Trials
from raysweep.spec import sections
from raysweep.spec.problems import Problems
from raysweep.spec.schema import Scheduler, Search


def problems(raw) -> list[str]:
    with pytest.raises(spec.SpecError) as info:
        spec.validate(raw, source="s.yaml")
    return info.value.problems


# --- a new scheduler: one entry, registered here -----------------------------------------------


@dataclass(frozen=True)
class Throttle:
    interval: int = option(2, low=1)                            # epochs between its decisions
    quantile: float = option(0.25, low=0, high=0.5, strict=True)
    mode: Literal["soft", "hard"] = "soft"


def throttle_check(options: Throttle, trials: Trials) -> list[Finding]:
    if isinstance(trials.epochs, int) and options.interval > trials.epochs:
        return [Finding("interval", f"{options.interval} epochs between decisions, but each trial runs "
                                    f"{trials.epochs} ({trials.epochs_key}): it would never decide; set it to "
                                    f"at most {trials.epochs}", because_of=(trials.epochs_key,))]
    return []


BUILT = []


def build_throttle(options: Throttle, trials: Trials):
    BUILT.append((options, trials))
    return "a Tune scheduler"


@pytest.fixture
def throttle(monkeypatch):
    entry = SchedulerKind(build_throttle, Throttle, throttle_check, label="throttle")
    monkeypatch.setitem(SCHEDULERS, "throttle", entry)
    return entry


def test_a_new_scheduler_s_options_are_validated_and_kept(raw_spec, throttle):
    raw_spec["scheduler"] = {"type": "throttle", "interval": 3, "mode": "hard"}
    s = spec.validate(raw_spec, source="s.yaml")
    assert s.scheduler.options == Throttle(interval=3, quantile=0.25, mode="hard")
    assert s.scheduler.interval == 3, "an option reads as an attribute of the spec's scheduler"
    assert s.raw["scheduler"] == {"type": "throttle", "interval": 3, "mode": "hard"}


def test_a_new_scheduler_s_ranges_name_the_key_and_the_fix(raw_spec, throttle):
    raw_spec["scheduler"] = {"type": "throttle", "interval": 0, "quantile": 0.5, "mode": "hardest"}
    assert problems(raw_spec) == [
        "s.yaml: scheduler.interval: must be an integer >= 1, got 0",
        "s.yaml: scheduler.mode: must be one of soft, hard, got 'hardest'"]
    raw_spec["scheduler"] = {"type": "throttle", "quantile": 0}
    assert problems(raw_spec) == ["s.yaml: scheduler.quantile: must be a number in (0, 0.5], got 0"]
    raw_spec["scheduler"] = {"type": "throttle", "interval": True}
    assert problems(raw_spec) == ["s.yaml: scheduler.interval: must be an integer >= 1, got True"]


def test_a_new_scheduler_s_own_check_sees_the_epochs(raw_spec, throttle):
    raw_spec["scheduler"] = {"type": "throttle", "interval": 5}
    assert problems(raw_spec) == ["s.yaml: scheduler.interval: 5 epochs between decisions, but each trial runs 3 "
                                  "(fixed.epochs): it would never decide; set it to at most 3"]
    with pytest.raises(spec.SpecError) as info:
        spec.validate(raw_spec, source="s.yaml", overrides=["fixed.epochs=2"])
    assert info.value.problems[0].startswith("s.yaml (with --set fixed.epochs=2): scheduler.interval: "), \
        "the check read fixed.epochs, so the line names the --set that gave it"


def test_a_new_scheduler_s_keys_and_the_others_do_not_mix(raw_spec, throttle):
    raw_spec["scheduler"] = {"type": "throttle", "grace_period": 1, "intervall": 2}
    assert problems(raw_spec) == [
        "s.yaml: scheduler.grace_period: the throttle scheduler does not use it (it reads interval, quantile, mode); "
        "remove it or choose a scheduler that does (asha, median)",
        "s.yaml: scheduler.intervall: unknown key. Did you mean 'interval'? Known keys: type, max_t, grace_period, "
        "reduction_factor, brackets, min_samples_required, interval, quantile, mode."]
    raw_spec["scheduler"] = {"type": "asha", "interval": 2}
    assert problems(raw_spec) == ["s.yaml: scheduler.interval: the asha scheduler does not use it (it reads max_t, "
                                  "grace_period, reduction_factor, brackets); remove it or choose a scheduler that "
                                  "does (throttle)"]


def test_the_sweep_hands_the_builder_the_options_as_validated(raw_spec, throttle):
    from raysweep.runner import tuning  # imports Ray

    raw_spec["scheduler"] = {"type": "throttle", "quantile": 0.1}
    s = spec.validate(raw_spec, source="s.yaml")
    BUILT.clear()
    assert tuning.scheduler(s) == "a Tune scheduler"
    assert BUILT == [(Throttle(quantile=0.1), Trials(3))]
    assert BUILT[0][0] is s.scheduler.options


# --- a new sampler: one entry, registered here -------------------------------------------------


@dataclass(frozen=True)
class Anneal:
    temperature: float = option(1.0, low=0, strict=True)
    restarts: int | None = option(None, low=0)


def build_anneal(options: Anneal, seed, constraints_func=None):
    BUILT.append(options)
    return optuna.samplers.RandomSampler(seed=seed)


@pytest.fixture
def anneal(monkeypatch):
    monkeypatch.setitem(SAMPLERS, "anneal", Sampler(build_anneal, objectives=False, constraints=False,
                                                    choices=MODELLED, branches=MODELLED, Options=Anneal))


@pytest.fixture
def optuna_spec(raw_spec):
    raw_spec["search"] = {"algorithm": "optuna", "num_samples": 4, "seed": 0}
    return raw_spec


def test_a_new_sampler_s_options_are_validated_and_reach_its_builder(optuna_spec, anneal):
    optuna_spec["search"]["sampler"] = {"name": "anneal", "temperature": 0.5}
    s = spec.validate(optuna_spec, source="s.yaml")
    assert (s.search.sampler, s.search.sampler_options) == ("anneal", Anneal(temperature=0.5))
    BUILT.clear()
    SEARCHERS["optuna"].build(Request(params=s.params, fixed={}, metric="val_loss", mode="min", seed=0, points=[],
                                      max_concurrent=1, sampler=s.search.sampler,
                                      sampler_options=s.search.sampler_options))
    assert BUILT == [Anneal(temperature=0.5)]


def test_a_new_sampler_s_ranges_name_the_key_and_the_fix(optuna_spec, anneal):
    optuna_spec["search"]["sampler"] = {"name": "anneal", "temperature": 0, "restarts": -1}
    assert problems(optuna_spec) == ["s.yaml: search.sampler.temperature: must be a number > 0, got 0",
                                     "s.yaml: search.sampler.restarts: must be an integer >= 0 or null, got -1"]
    optuna_spec["search"]["sampler"] = {"name": "anneal", "temprature": 2}
    assert problems(optuna_spec) == ["s.yaml: search.sampler.temprature: unknown key. Did you mean 'temperature'? "
                                     "Known keys: name, n_startup_trials, sigma0, qmc_type, scramble, population_size, "
                                     "crossover_prob, temperature, restarts."]


# --- the shipped samplers' options ----------------------------------------------------------------


def test_a_sampler_by_name_takes_its_defaults(optuna_spec):
    optuna_spec["search"]["sampler"] = "nsga2"
    assert spec.validate(optuna_spec, source="s.yaml").search.sampler_options == NSGA2()


def test_a_sampler_mapping_sets_its_options_and_the_study_gets_them(optuna_spec):
    optuna_spec["search"]["sampler"] = {"name": "nsga2", "population_size": 4}
    s = spec.validate(optuna_spec, source="s.yaml")
    assert (s.search.sampler, s.search.sampler_options) == ("nsga2", NSGA2(population_size=4))
    plan = SEARCHERS["optuna"].build(Request(params=s.params, fixed={}, metric="val_loss", mode="min", seed=0,
                                             points=[], max_concurrent=1, sampler="nsga2",
                                             sampler_options=s.search.sampler_options))
    assert plan.searcher.searcher._ot_study.sampler._population_size == 4


def test_a_sampler_mapping_needs_a_name_and_its_own_keys(optuna_spec):
    optuna_spec["search"]["sampler"] = {"population_size": 4}
    assert problems(optuna_spec) == ["s.yaml: search.sampler.name: required: the sampler, one of tpe, random, cmaes, "
                                     "gp, qmc, nsga2 (e.g. sampler: {name: nsga2, population_size: 20})"]
    optuna_spec["search"]["sampler"] = {"name": "tpe", "population_size": 4, "n_startup_trials": -1}
    assert problems(optuna_spec) == [
        "s.yaml: search.sampler.population_size: the tpe sampler does not use it (it reads n_startup_trials); "
        "remove it or choose a sampler that does (nsga2)",
        "s.yaml: search.sampler.n_startup_trials: must be an integer >= 0, got -1"]
    optuna_spec["search"]["sampler"] = {"name": "nsgaii"}
    assert problems(optuna_spec) == ["s.yaml: search.sampler.name: unknown sampler 'nsgaii'. Did you mean 'nsga2'? "
                                     "Known: tpe, random, cmaes, gp, qmc, nsga2."]


def test_a_sampler_mapping_for_a_searcher_without_samplers_is_refused(optuna_spec):
    optuna_spec["search"].update(algorithm="random", sampler={"name": "nsga2", "population_size": 4})
    assert problems(optuna_spec) == ["s.yaml: search.sampler: search.algorithm 'random' has no sampler to choose; "
                                     "remove search.sampler, or set search.algorithm: optuna"]


# --- every entry keeps the contract (conformance) ---------------------------------------------


ENTRIES = [("scheduler", name, entry) for name, entry in SCHEDULERS.items()] + \
          [("sampler", name, entry) for name, entry in SAMPLERS.items()]


@pytest.mark.parametrize("kind, name, entry", ENTRIES, ids=[f"{k}-{n}" for k, n, _ in ENTRIES])
def test_every_entry_s_options_are_a_frozen_dataclass_whose_defaults_pass(kind, name, entry):
    options = entry.Options()
    assert dataclasses.is_dataclass(options) and entry.Options.__dataclass_params__.frozen
    hints = typing.get_type_hints(entry.Options)
    for f in dataclasses.fields(entry.Options):
        assert sections.option_problem(getattr(options, f.name), hints[f.name], f.metadata) is None, (name, f.name)
        assert not sections.described(hints[f.name]).startswith(("<", "typing")), \
            f"{name}.{f.name}: a type the messages cannot name"


def test_the_builders_take_the_defaults():
    """What a spec without options gets: each sampler and scheduler built with its defaults."""
    from ray.tune.schedulers import TrialScheduler  # the builders import Ray Tune when called

    for name, entry in SAMPLERS.items():
        if all(importlib.util.find_spec(p) for p in entry.packages):
            assert isinstance(entry.build(entry.Options(), 0, None), optuna.samplers.BaseSampler), name
    for name, entry in SCHEDULERS.items():
        assert isinstance(entry.build(entry.Options(), Trials(4)), TrialScheduler), name
    assert SCHEDULERS["asha"].build(ASHA(grace_period=2), Trials(4))._max_t == 4, "max_t None: the trials' epochs"


# --- schedulers: the shipped rules, read through the options --------------------------------------


def test_fifo_ignores_the_others_keys_and_they_read_as_given(raw_spec):
    raw_spec["scheduler"] = {"type": "fifo", "max_t": 30, "brackets": 2}
    s = spec.validate(raw_spec, source="s.yaml")
    assert s.scheduler.options == NoOptions() and (s.scheduler.max_t, s.scheduler.brackets) == (30, 2)
    assert s.scheduler_max_t == 3, "fifo reads no max_t: its trials run their epochs"


def test_an_unknown_scheduler_still_names_unknown_keys(raw_spec):
    raw_spec["scheduler"] = {"type": "asah", "grace_perod": 1}
    assert problems(raw_spec) == [
        "s.yaml: scheduler.type: unknown scheduler 'asah'. Did you mean 'asha'? Known: fifo, asha, hyperband, median, "
        "bohb.",
        "s.yaml: scheduler.grace_perod: unknown key. Did you mean 'grace_period'? Known keys: max_t, grace_period, "
        "reduction_factor, brackets, min_samples_required."]


def test_the_spec_s_scheduler_pickles_and_copies():
    s = Scheduler("asha", ASHA(max_t=4), unread={})
    assert pickle.loads(pickle.dumps(s)) == s == copy.deepcopy(s)
    assert s.max_t == 4 and Scheduler().options == NoOptions() and Scheduler("median").grace_period == 1
    with pytest.raises(AttributeError):
        _ = s.min_samples_required


def test_within_epochs_lowers_max_t_then_bounds_the_grace_period():
    found = schedulers.within_epochs(ASHA(max_t=5, grace_period=4), Trials(2))
    assert [(f.key, f.lowered_to) for f in found] == [("max_t", 2), ("grace_period", 2)]
    assert schedulers.within_epochs(ASHA(max_t=3, grace_period=4), Trials(10))[0].because_of == ("scheduler.max_t",)


def test_option_keys_follow_the_declaration():
    assert option_keys(ASHA) == ("max_t", "grace_period", "reduction_factor", "brackets") == SCHEDULERS["asha"].keys


# --- constraints with a searcher or sampler that does not steer by them -------------------------


@pytest.mark.parametrize("algorithm", ["random", "grid", "hyperopt", "bohb"])
def test_constraints_with_a_searcher_that_does_not_steer_by_them_is_a_note(algorithm):
    found = Problems("s.yaml")
    sections.sampler_fit(found, Search(algorithm=algorithm), (Objective("val_loss", "min"),),
                         (parse_constraint("val_auc >= 0.8"),))
    assert found.lines == []
    assert found.notes == [f"s.yaml: constraints: search.algorithm {algorithm} samples without them; rank, report "
                           "and export still respect them. To steer toward feasible trials use search.algorithm: optuna"]


def test_validate_notes_constraints_the_random_searcher_does_not_steer_by(raw_spec):
    raw_spec["constraints"] = ["val_auc >= 0.8"]
    s = spec.validate(raw_spec, source="s.yaml")
    assert s.warnings == ("s.yaml: constraints: search.algorithm random samples without them; rank, report and "
                          "export still respect them. To steer toward feasible trials use search.algorithm: optuna",)
    raw_spec["search"] = {"algorithm": "optuna", "num_samples": 2, "seed": 0}
    assert spec.validate(raw_spec, source="s.yaml").warnings == (), "Optuna's TPE steers by them"


def test_samplers_that_ignore_constraints_are_the_table_s():
    assert samplers.taking(constraints=False) == ["random", "cmaes", "qmc"]
