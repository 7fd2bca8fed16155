"""Spec validation: every problem at once, each naming the file, the key and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from raysweep import spec

ROOT = Path(__file__).resolve().parents[2]


def problems(raw, **kwargs) -> list[str]:
    with pytest.raises(spec.SpecError) as info:
        spec.validate(raw, source="s.yaml", **kwargs)
    return info.value.problems


def test_valid_spec_gives_typed_objects(raw_spec):
    s = spec.validate(raw_spec, source="s.yaml")
    assert s.workload == "glideator" and s.metric == "val_loss"
    assert s.params == (spec.Param("learning_rate", "loguniform", low=1e-3, high=1e-2),)
    assert s.epochs == 3 and s.executor == "in_trial"
    assert s.search.num_samples == 2 and s.scheduler.type == "fifo"


@pytest.mark.parametrize("path", sorted((ROOT / "search_spaces").glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_spec_validates(path):
    s = spec.load(path, check_data=False)
    assert s.name and s.params
    assert path.read_text().startswith("#"), "each shipped spec opens with its question and command"


def test_unknown_keys_suggest_the_right_one(raw_spec):
    raw_spec["schedular"] = {"type": "asha"}
    raw_spec["search"]["num_sample"] = 3
    found = problems(raw_spec)
    assert "s.yaml: schedular: unknown key. Did you mean 'scheduler'?" in found[0]
    assert any(p.startswith("s.yaml: search.num_sample: unknown key. Did you mean 'num_samples'?") for p in found)


def test_all_problems_reported_at_once(raw_spec):
    raw_spec["workload"] = "glideatr"
    raw_spec["search"]["algorithm"] = "bayes"
    raw_spec["mode"] = "lowest"
    found = problems(raw_spec)
    assert any("workload: unknown workload 'glideatr'." in p and "Did you mean 'glideator'?" in p for p in found)
    assert any("search.algorithm: unknown searcher 'bayes'" in p and "Known: random, grid, optuna, hyperopt" in p
               for p in found)
    assert any("mode: must be 'min' or 'max'" in p for p in found)


def test_impossible_ranges(raw_spec):
    raw_spec["params"] = {
        "learning_rate": {"type": "loguniform", "low": 0.0, "high": 1e-2},
        "dropout": {"type": "uniform", "low": 0.5, "high": 0.1},
        "cross_layers": {"type": "randint", "low": 1.5, "high": 3},
    }
    found = problems(raw_spec)
    assert "s.yaml: params.learning_rate: `low > 0` must hold for loguniform, but got low=0.0." in found[0]
    assert any("params.dropout: `low < high` must hold, but got low=0.5, high=0.1. Swap them." in p for p in found)
    assert any("params.cross_layers.low: randint needs an integer, got 1.5" in p for p in found)


def test_grid_values_under_tpe_searcher(raw_spec):
    raw_spec["search"]["algorithm"] = "optuna"
    raw_spec["params"]["cross_layers"] = {"type": "grid", "values": [1, 2]}
    found = problems(raw_spec)
    assert any("params.cross_layers.type: grid values cannot be used with search.algorithm 'optuna'" in p
               and "use type: choice" in p for p in found)


def test_missing_data_names_the_command(raw_spec, tmp_path):
    raw_spec["data"]["path"] = str(tmp_path / "nowhere")
    found = problems(raw_spec)
    assert len(found) == 1
    assert "data.path: data directory" in found[0] and "does not exist" in found[0]
    assert f"raysweep data glideator --out {tmp_path / 'nowhere'}" in found[0]


def test_unknown_hyperparameter_and_bad_types(raw_spec):
    raw_spec["fixed"]["learnig_rate"] = 0.1
    raw_spec["fixed"]["batch_size"] = "big"
    raw_spec["params"]["cross_layers"] = {"type": "uniform", "low": 1, "high": 3}
    found = problems(raw_spec)
    assert any("fixed.learnig_rate: not a hyperparameter of this workload. Did you mean 'learning_rate'?" in p
               for p in found)
    assert any("fixed.batch_size: expected int, got 'big'" in p for p in found)
    assert any("params.cross_layers.type: cross_layers is an integer; use type: randint" in p for p in found)


def test_asha_checks(raw_spec):
    raw_spec["scheduler"] = {"type": "asha", "max_t": 0, "grace_period": 1, "reduction_factor": 1}
    found = problems(raw_spec)
    assert any("scheduler.max_t: must be an integer number of epochs >= 1, got 0" in p for p in found)
    assert any("scheduler.reduction_factor: must be a number > 1" in p for p in found)
    raw_spec["scheduler"] = {"type": "asha", "max_t": 5, "grace_period": 1}
    s = spec.validate(raw_spec, source="s.yaml")   # trials stop at their epochs anyway: lowered, not refused
    assert s.scheduler.max_t == 3 and s.warnings == ("s.yaml: scheduler.max_t: 5 is more than fixed.epochs 3: lowered to 3",)


def test_each_scheduler_takes_only_its_own_keys(raw_spec):
    raw_spec["scheduler"] = {"type": "hyperband", "grace_period": 2, "brackets": 0}
    found = problems(raw_spec)
    assert any("scheduler.grace_period: the hyperband scheduler does not use it (it reads max_t, reduction_factor); "
               "remove it or choose a scheduler that does (asha, median)" in p for p in found), found
    assert any("scheduler.brackets: the hyperband scheduler does not use it (it reads max_t, reduction_factor); "
               "remove it or choose a scheduler that does (asha)" in p for p in found), found
    raw_spec["scheduler"] = {"type": "asha", "brackets": 0}
    assert any("scheduler.brackets: must be an integer >= 1, got 0" in p for p in problems(raw_spec))
    raw_spec["scheduler"] = {"type": "median", "grace_period": 0, "min_samples_required": 0}
    found = problems(raw_spec)
    assert any("scheduler.grace_period: must be an integer >= 1, got 0" in p for p in found)
    assert any("scheduler.min_samples_required: must be an integer >= 1, got 0" in p for p in found)


def test_bohb_pairs_its_scheduler_and_searcher_and_hyperband_refuses_limited_searchers(raw_spec):
    raw_spec["scheduler"] = {"type": "bohb"}
    assert any("scheduler.type: bohb works only with search.algorithm: bohb" in p for p in problems(raw_spec))
    raw_spec["scheduler"] = {"type": "asha"}
    raw_spec["search"]["algorithm"] = "bohb"
    assert any("search.algorithm: bohb works only with scheduler.type: bohb; got 'asha'" in p for p in problems(raw_spec))
    raw_spec["scheduler"] = {"type": "hyperband"}
    raw_spec["search"]["algorithm"] = "optuna"
    assert any("scheduler.type: hyperband pauses trials at each rung, and optuna would stop proposing" in p
               and "use it with search.algorithm random or grid, or choose asha or median" in p
               for p in problems(raw_spec))
    raw_spec["scheduler"] = {"type": "bohb", "max_t": 3, "reduction_factor": 2}
    raw_spec["search"]["algorithm"] = "bohb"
    assert spec.validate(raw_spec).scheduler.type == "bohb"


def test_metric_mode_and_executor_checks(raw_spec):
    raw_spec["metric"] = "val_auc"
    raw_spec["resources"] = {"workers_per_trial": 2, "executor": "in_trial", "gpus_per_worker": 1.5}
    found = problems(raw_spec)
    assert any("mode: val_auc is better when higher; set mode: max" in p for p in found)
    assert any("resources.executor: in_trial runs one worker, but workers_per_trial=2" in p for p in found)
    assert any("resources.gpus_per_worker: must be a fraction in [0, 1] or a whole number" in p for p in found)


def test_overrides_go_through_the_same_checks(raw_spec):
    s = spec.validate(raw_spec, overrides=["search.num_samples=5", "params.learning_rate.high=1e-1"])
    assert s.search.num_samples == 5 and s.params[0].high == pytest.approx(0.1)
    found = problems(raw_spec, overrides=["params.learning_rate.low=-1", "search.num_sampels=2", "oops"])
    assert any("--set oops: expected KEY=VALUE" in p for p in found)
    assert any("search.num_sampels: unknown key" in p for p in found)
    assert any("params.learning_rate: `low > 0` must hold for loguniform" in p for p in found)


def test_yaml_exponent_without_dot_is_a_float(tmp_path, raw_spec):
    raw_spec["params"]["learning_rate"] = {"type": "loguniform", "low": "LOW", "high": 1e-2}
    text = yaml.safe_dump(raw_spec).replace("LOW", "1e-4")
    path = tmp_path / "s.yaml"
    path.write_text(text)
    assert spec.load(path).params[0].low == pytest.approx(1e-4)


def test_unreadable_files(tmp_path):
    with pytest.raises(spec.SpecError, match="no such spec file"):
        spec.load(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(spec.SpecError, match="not valid YAML"):
        spec.load(bad)


def test_phase_sections_are_checked(raw_spec, tmp_path):
    raw_spec["lr_find"] = {"start_lr": 1.0, "end_lr": 1e-3, "over": ["learning_rate"], "fit_loss_fraction": 2,
                           "num_stpes": 10}
    raw_spec["io_search"] = {"steps": 10, "warmup_steps": 10,
                             "grid": {"batch_size": [0, 64], "data_path": [str(tmp_path / "none")],
                                      "prefetch": [1], "materialize": ["yes"]}}
    found = problems(raw_spec)
    assert any("lr_find: `start_lr < end_lr` must hold" in p for p in found)
    assert any("lr_find.over: must list tuned choice or grid parameters" in p for p in found)
    assert any("lr_find.fit_loss_fraction: must lie in (0, 1)" in p for p in found)
    assert any("lr_find.num_stpes: unknown key. Did you mean 'num_steps'?" in p for p in found)
    assert any("io_search.warmup_steps: 10 leaves no timed step of 10" in p for p in found)
    assert any("io_search.grid.batch_size: 0 is not an integer >= 1" in p for p in found)
    assert any("io_search.grid.data_path: data directory" in p and "raysweep data glideator --out" in p
               for p in found)
    assert any("io_search.grid.prefetch: not an I/O setting. Did you mean 'prefetch_batches'?" in p for p in found)
    assert any("io_search.grid.materialize: 'yes' is not auto, true or false" in p for p in found)


def test_warm_start_needs_an_experiment_directory(raw_spec, tmp_path):
    raw_spec["search"]["warm_start"] = {"experiment": str(tmp_path), "top": 0}
    found = problems(raw_spec)
    assert any("search.warm_start.experiment:" in p and "is not a raysweep experiment directory" in p for p in found)
    assert any("search.warm_start.top: must be an integer >= 1, got 0" in p for p in found)


def test_checkpoints_keep_a_handful_of_ended_trials_unless_told(raw_spec):
    assert spec.validate(raw_spec).checkpoints.keep_top == 5
    assert spec.validate({**raw_spec, "checkpoints": {"keep_top": None}}).checkpoints.keep_top is None, "all"
    for bad, message in (({"keep_top": 0}, "checkpoints.keep_top: must be an integer >= 1 or null, got 0"),
                         ({"keep_top": "all"}, "checkpoints.keep_top: must be an integer >= 1 or null, got 'all'"),
                         ({"keep": 3}, "checkpoints.keep: unknown key. Did you mean 'keep_top'?")):
        with pytest.raises(spec.SpecError) as info:
            spec.validate({**raw_spec, "checkpoints": bad}, source="s.yaml")
        assert any(message in p for p in info.value.problems), info.value.problems


def test_failure_retries_are_a_count(raw_spec):
    assert spec.validate(raw_spec).failure.max_retries == 0, "no retries unless asked"
    assert spec.validate({**raw_spec, "failure": {"max_retries": 2}}).failure.max_retries == 2
    for bad, message in (({"max_retries": -1}, "failure.max_retries: must be an integer >= 0, got -1"),
                         ({"max_retries": 1.5}, "failure.max_retries: must be an integer >= 0, got 1.5"),
                         ({"max_retry": 2}, "failure.max_retry: unknown key. Did you mean 'max_retries'?")):
        with pytest.raises(spec.SpecError) as info:
            spec.validate({**raw_spec, "failure": bad}, source="s.yaml")
        assert any(message in p for p in info.value.problems), info.value.problems
