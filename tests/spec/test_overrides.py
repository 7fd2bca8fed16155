"""`--set KEY=VALUE`: a problem it causes names the command line, and a smoke run of any shipped
spec with `--set fixed.epochs=1` validates, its scheduler's epochs lowered with one line each."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from raysweep import cli, spec
from raysweep.workloads import load_workload

from conftest import import_bundled

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted((ROOT / "search_spaces").glob("*.yaml")) + sorted((ROOT / "examples").glob("*/spec.yaml"))
# Small data for the workloads whose data the shared fixtures do not make (as their own tests write it).
SMALL = {"trajectory": dict(layers_per_part=3, seconds_per_layer=16.0, sequence_length=10, stride=4, rows_per_shard=512),
         "battery": dict(n_cells=12, window=10, horizon=4, cycles_per_step=10, stride=10, rows_per_shard=128),
         "brake_coast": {"n_drives": 12, "seconds": 60}}


def problems(raw, overrides) -> list[str]:
    with pytest.raises(spec.SpecError) as info:
        spec.validate(raw, source="s.yaml", overrides=overrides)
    return info.value.problems


# --- whose problem: the file's or the command line's ---------------------------------------------

def test_a_value_set_on_the_command_line_is_blamed_there_not_on_the_file(raw_spec):
    raw_spec["search"]["num_samples"] = 0
    found = problems(raw_spec, ["fixed.epochs=abc"])
    assert "--set fixed.epochs=abc: fixed.epochs: expected int, got 'abc'" in found
    assert "s.yaml: search.num_samples: must be an integer >= 1, got 0" in found, "the file's own problem stays the file's"
    assert not any(p.startswith("s.yaml") and "fixed.epochs" in p for p in found), found


def test_a_key_inside_a_value_set_names_the_set_and_the_key(raw_spec):
    found = problems(raw_spec, ["scheduler={type: asha, grace_period: 0}"])
    assert found == ["--set scheduler={type: asha, grace_period: 0}: scheduler.grace_period: must be an integer >= 1, got 0"]


def test_an_entry_partly_overridden_names_the_file_with_the_set(raw_spec):
    found = problems(raw_spec, ["params.learning_rate.low=-1"])
    assert len(found) == 1
    assert found[0].startswith("s.yaml (with --set params.learning_rate.low=-1): params.learning_rate: "
                               "`low > 0` must hold for loguniform, but got low=-1")


def test_the_last_set_of_a_key_is_the_one_blamed(raw_spec):
    found = problems(raw_spec, ["search.num_samples=3", "search={algorithm: random, num_samples: 0}"])
    assert found == ["--set search={algorithm: random, num_samples: 0}: search.num_samples: must be an integer >= 1, got 0"]


def test_a_malformed_set_is_one_line_led_by_it(raw_spec):
    assert problems(raw_spec, ["oops"]) == ["--set oops: expected KEY=VALUE, e.g. --set search.num_samples=4"]


def test_epochs_below_one_are_refused(raw_spec):
    assert problems(raw_spec, ["fixed.epochs=0"]) == ["--set fixed.epochs=0: fixed.epochs: must be an integer >= 1 "
                                                      "(the epochs each trial runs), got 0"]


# --- epochs below the scheduler's: lowered with a line, not refused ------------------------------

def test_a_grace_period_beyond_the_epochs_is_lowered_with_a_warning_naming_the_set(raw_spec):
    raw_spec["scheduler"] = {"type": "asha", "grace_period": 3, "reduction_factor": 2}
    s = spec.validate(raw_spec, source="s.yaml", overrides=["fixed.epochs=1"])
    assert s.scheduler.grace_period == 1 and s.scheduler_max_t == 1
    assert s.warnings == ("s.yaml (with --set fixed.epochs=1): scheduler.grace_period: 3 is more than fixed.epochs 1: "
                          "lowered to 1",)
    assert s.raw["scheduler"]["grace_period"] == 1, "the spec an experiment keeps is the one that ran"


def test_max_t_beyond_the_epochs_is_lowered_and_then_bounds_the_grace_period(raw_spec):
    raw_spec["scheduler"] = {"type": "asha", "max_t": 3, "grace_period": 2, "reduction_factor": 2}
    s = spec.validate(raw_spec, source="s.yaml", overrides=["fixed.epochs=1"])
    assert (s.scheduler.max_t, s.scheduler.grace_period) == (1, 1)
    assert s.warnings == ("s.yaml (with --set fixed.epochs=1): scheduler.max_t: 3 is more than fixed.epochs 1: lowered to 1",
                          "s.yaml (with --set fixed.epochs=1): scheduler.grace_period: 2 is more than fixed.epochs 1: "
                          "lowered to 1")
    raw_spec["scheduler"] = {"type": "median", "grace_period": 2}
    s = spec.validate(raw_spec, source="s.yaml", overrides=["scheduler.grace_period=9"])
    assert s.scheduler.grace_period == 3
    assert s.warnings == ("--set scheduler.grace_period=9: scheduler.grace_period: 9 is more than fixed.epochs 3: "
                          "lowered to 3",)


def test_a_grace_period_within_max_t_is_kept_and_a_scheduler_that_ignores_max_t_is_not_warned(raw_spec):
    raw_spec["scheduler"] = {"type": "asha", "max_t": 2, "grace_period": 3}
    s = spec.validate(raw_spec, source="s.yaml")
    assert s.scheduler.grace_period == 2
    assert s.warnings == ("s.yaml: scheduler.grace_period: 3 is more than scheduler.max_t 2: lowered to 2",)
    raw_spec["scheduler"] = {"type": "fifo", "max_t": 30, "grace_period": 9}
    s = spec.validate(raw_spec, source="s.yaml")
    assert s.warnings == () and s.scheduler.max_t == 30, "fifo reads neither: nothing to lower"


@pytest.fixture(scope="module")
def shipped_data(tiny_data, tmp_path_factory):
    """A small dataset for each shipped spec's workload, by its data command (or a bundled table)."""
    root = tmp_path_factory.mktemp("shipped_data")
    found = {"glideator": tiny_data,
             "families": import_bundled("breast_cancer", "binary", root / "cancer"),
             "tabular": import_bundled("digits", "multiclass", root / "digits")}   # batches of 512 fit its 1438 rows
    for path in SHIPPED:
        workload = spec.load(path, check_data=False).workload
        if workload not in found:
            command = load_workload(workload).DATA
            command.write(out_dir=root / command.name, **SMALL.get(command.name, {}))
            found[workload] = root / command.name
    return found


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_shipped_spec_validates_for_a_one_epoch_smoke_run(path, shipped_data, capsys):
    data = shipped_data[spec.load(path, check_data=False).workload]
    sets = ["--set", "fixed.epochs=1", "--set", f"data.path={data}"]
    if "io_search" in yaml.safe_load(path.read_text()):
        sets += ["--set", f"io_search.grid.data_path=[{data}]"]
    capsys.readouterr()
    assert cli.main(["validate", str(path), *sets]) == 0, capsys.readouterr().err
    err = capsys.readouterr().err
    scheduler = yaml.safe_load(path.read_text()).get("scheduler") or {}
    beyond = {key: value for key, value in scheduler.items() if key in ("max_t", "grace_period") and value > 1}
    lowered = [line for line in err.splitlines() if "lowered to" in line]
    assert lowered == [f"warning: {path} (with --set fixed.epochs=1): scheduler.{key}: {value} is more than fixed.epochs 1: "
                       "lowered to 1" for key, value in beyond.items()]
    assert "error" not in err
