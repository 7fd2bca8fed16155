"""`raysweep plan`: trials, epochs, trials at once on this machine or a cluster config, wall time
from a probe or a finished sweep, money; and the plan beside what happened in rank and the report."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from raysweep import experiment
from raysweep import spec as spec_module
from raysweep.analysis import forecast, plan_check, timing
from raysweep.errors import UserError
from raysweep.phases import capacity, plan, sweep
from raysweep.runner.resources import Allocation
from raysweep.search import budget

from conftest import BASE_SPEC, write_spec

REPO = Path(__file__).resolve().parents[2]
CLUSTER = REPO / "cluster.yaml"


def _spec(tiny_data, tmp_path, **changes):
    raw = copy.deepcopy(BASE_SPEC)
    raw["data"]["path"] = str(tiny_data)
    raw["storage_path"] = str(tmp_path / "results")
    for key, value in changes.items():
        raw[key] = value
    return spec_module.validate(raw), raw


def test_trials_at_once_on_this_machine_follow_the_resources(tiny_data, tmp_path):
    s, _ = _spec(tiny_data, tmp_path, resources={"cpus_per_worker": 2})
    here = capacity.this_machine(s, trials=10, cpus=8)
    assert here.slots == 4 and here.nodes == {capacity.LOCAL_NODE: 1}
    assert capacity.this_machine(s, trials=3, cpus=8).slots == 3          # no more than the trials
    capped, _ = _spec(tiny_data, tmp_path, resources={"cpus_per_worker": 1, "max_concurrent_trials": 2})
    assert capacity.this_machine(capped, trials=10, cpus=8).slots == 2


def test_a_cluster_config_hosts_cpu_trials_on_cpu_nodes_and_gpu_trials_on_gpu_nodes(tiny_data, tmp_path):
    s, _ = _spec(tiny_data, tmp_path, resources={"cpus_per_worker": 2})
    cpu = capacity.cluster(s, CLUSTER, trials=40)
    # cluster.yaml: a head without CPUs, cpu_worker (8 CPUs, 2 at most), gpu_worker (4 CPUs + 1 GPU, 4 at most)
    assert cpu.nodes["cpu_worker"] == 2 and cpu.slots == 2 * 4 + 4 * 2 and cpu.nodes.get("gpu_worker") == 4
    few = capacity.cluster(s, CLUSTER, trials=3)
    assert few.slots == 3 and few.nodes == {"head": 1, "cpu_worker": 1}   # min_workers 1 is enough
    g, _ = _spec(tiny_data, tmp_path, resources={"cpus_per_worker": 2, "gpus_per_worker": 1})
    gpu = capacity.cluster(g, CLUSTER, trials=40)
    assert gpu.slots == 4 and gpu.nodes["gpu_worker"] == 4 and gpu.gpus_per_trial == 1


def test_a_local_provider_cluster_is_its_machines_as_ray_start_gives_them(tiny_data, tmp_path):
    s, _ = _spec(tiny_data, tmp_path, resources={"cpus_per_worker": 1, "max_concurrent_trials": 8})
    # cluster.local.yaml: a head started with --num-cpus=1 and one worker with --num-cpus=2
    local = capacity.cluster(s, REPO / "cluster.local.yaml", trials=16)
    assert local.nodes == {"head": 1, "worker": 1} and local.slots == 3
    config = yaml.safe_load((REPO / "cluster.local.yaml").read_text())
    config["worker_start_ray_commands"] = ["ray start --address=$RAY_HEAD_IP:6379"]
    bare = tmp_path / "local.yaml"
    bare.write_text(yaml.safe_dump(config))
    with pytest.raises(UserError, match="worker_start_ray_commands: no --num-cpus"):
        capacity.cluster(s, bare, trials=16)


def test_a_cluster_config_that_is_none_says_so(tiny_data, tmp_path):
    s, _ = _spec(tiny_data, tmp_path)
    bad = tmp_path / "cluster.yaml"
    bad.write_text("cluster_name: x\n")
    with pytest.raises(UserError, match="no available_node_types"):
        capacity.cluster(s, bad, trials=4)
    with pytest.raises(UserError, match="cannot read it"):
        capacity.cluster(s, tmp_path / "missing.yaml", trials=4)
    tiny = tmp_path / "tiny.yaml"
    tiny.write_text(yaml.safe_dump({"head_node_type": "h", "available_node_types": {"h": {"resources": {"CPU": 1}}}}))
    big, _ = _spec(tiny_data, tmp_path, resources={"cpus_per_worker": 4})
    with pytest.raises(UserError, match="no node type fits one trial"):
        capacity.cluster(big, tiny, trials=4)


@pytest.mark.parametrize("node_types,message", [
    ({"w": {"resources": {"CPU": "four"}}}, "available_node_types.w.resources.CPU: must be a number >= 0, got 'four'"),
    ({"w": {"resources": {"CPU": 4}, "min_workers": "two"}}, "available_node_types.w.min_workers: must be a whole"),
    ({"w": "big"}, "available_node_types.w: needs a mapping with resources"),
])
def test_a_cluster_config_with_a_bad_value_names_it(tiny_data, tmp_path, node_types, message):
    s, _ = _spec(tiny_data, tmp_path)
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"head_node_type": "h", "available_node_types": {"h": {"resources": {}},
                                                                                     **node_types}}))
    with pytest.raises(UserError, match=message):
        capacity.cluster(s, config, trials=4)


def test_a_worker_type_without_max_workers_takes_the_clusters_as_ray_does(tiny_data, tmp_path):
    s, _ = _spec(tiny_data, tmp_path, resources={"cpus_per_worker": 1})
    config = tmp_path / "c.yaml"
    nodes = {"h": {"resources": {"CPU": 0}}, "w": {"resources": {"CPU": 4}}}
    config.write_text(yaml.safe_dump({"head_node_type": "h", "max_workers": 3, "available_node_types": nodes}))
    assert capacity.cluster(s, config, trials=40).nodes == {"h": 1, "w": 3}
    config.write_text(yaml.safe_dump({"head_node_type": "h", "available_node_types": nodes}))
    assert capacity.cluster(s, config, trials=40).nodes == {"h": 1, "w": capacity.DEFAULT_MAX_WORKERS}


def test_a_gpu_sweep_is_planned_for_a_cluster_whatever_this_machine_has(tiny_data, tmp_path, monkeypatch):
    s, _ = _spec(tiny_data, tmp_path, resources={"cpus_per_worker": 2, "gpus_per_worker": 1})
    monkeypatch.setattr(capacity, "local_gpus", lambda: 0)
    planned = plan.plan(s, cluster=CLUSTER)
    assert planned.slots == 2 and planned.nodes["gpu_worker"] == 2   # 2 trials (num_samples) on 2 GPU nodes
    with pytest.raises(UserError, match="plan for a cluster with --cluster"):
        plan.plan(s)   # this machine has no GPU: one line, not a traceback
    monkeypatch.setattr(capacity, "local_gpus", lambda: 2)
    # Ray would find the GPUs here, and so does the plan: the CPUs bound it (2 per trial)
    assert plan.plan(s).slots == max(1, min(2, (os.cpu_count() or 1) // 2))


def test_tuned_epochs_are_planned_at_their_mean_and_left_out_of_the_probe(tiny_data, tmp_path):
    fixed = {k: v for k, v in BASE_SPEC["fixed"].items() if k != "epochs"}
    s, _ = _spec(tiny_data, tmp_path, fixed=fixed, params={**BASE_SPEC["params"],
                                                           "epochs": {"type": "choice", "values": [2, 40]}})
    where = capacity.this_machine(s, 2, cpus=2, gpus=0)
    planned = forecast.predict(s, 2, where)
    assert planned.epochs == 42 and any("epochs is tuned (2, 40)" in a for a in planned.assumptions)
    probe = plan.probe_spec(s, 2)
    assert probe.epochs == plan.PROBE_EPOCHS and "epochs" not in [p.name for p in probe.params]


def test_prices_from_the_command_line_and_the_spec(tiny_data, tmp_path):
    assert plan.parse_prices(["cpu_worker=0.38", "head=0.19"]) == {"cpu_worker": 0.38, "head": 0.19}
    for bad in ("cpu_worker", "=1", "x=cheap", "x=-1", "x=nan", "x=inf"):
        with pytest.raises(UserError, match="NODE_TYPE=USD_PER_HOUR"):
            plan.parse_prices([bad])
    s, _ = _spec(tiny_data, tmp_path, cost={"local": 0.5})
    assert s.cost == {"local": 0.5}
    with pytest.raises(spec_module.SpecError, match="cost.local"):
        _spec(tiny_data, tmp_path, cost={"local": "free"})


def test_money_is_the_nodes_for_the_wall_time_and_needs_every_price(tiny_data, tmp_path):
    s, _ = _spec(tiny_data, tmp_path)
    where = forecast.Capacity(slots=2, cpus_per_trial=1, gpus_per_trial=0, nodes={"head": 1, "cpu_worker": 2},
                              where="test")
    measured = timing.Measured(budget.Timing(epoch_s=10.0, spread=0.0), overhead_s=0.0, source="test")
    priced = forecast.predict(s, 4, where, measured, {"head": 1.0, "cpu_worker": 2.0})
    # 4 trials of 3 epochs of 10 s, 2 at a time: 60 s; 3 nodes at 1 + 2 + 2 USD/h
    assert priced.wall_s == pytest.approx(60.0) and priced.cost_usd == pytest.approx(5.0 * 60 / 3600)
    assert priced.cpu_hours == pytest.approx(4 * 30 / 3600)
    unpriced = forecast.predict(s, 4, where, measured, {"head": 1.0})
    assert unpriced.cost_usd is None and any("no price for node type cpu_worker" in a for a in unpriced.assumptions)
    misspelt = forecast.predict(s, 4, where, measured, {"head": 1.0, "cpu_worker": 2.0, "cpu_workr": 2.0})
    assert any("price for cpu_workr: the plan needs no cpu_workr node" in a for a in misspelt.assumptions)
    untimed = forecast.predict(s, 4, where, None, {})
    assert untimed.wall_s is None and untimed.epochs == 12 and "unknown" in forecast.format_prediction(untimed)


def test_an_io_search_of_the_same_data_times_the_epochs(tiny_data, tmp_path, monkeypatch):
    monkeypatch.chdir(tiny_data.parent)   # the spec names its data by a relative path, as shipped specs do
    s, _ = _spec(tiny_data, tmp_path, data={"path": tiny_data.name}, fixed={**BASE_SPEC["fixed"], "batch_size": 64})
    searched = experiment.create(s, "io_search")
    pd.DataFrame({"rank": [1, 2], "batch_size": [256, 64], "samples_per_s": [8000.0, 2000.0],
                  "error": ["", ""]}).to_parquet(searched / "io_search.parquet")
    found = timing.from_io_search(s)
    rows = json.loads((tiny_data / "meta.json").read_text())["rows"]
    # the spec's own batch size (64) was timed at 2,000 samples/s: not the fastest setting's 8,000
    assert found.timing.epoch_s == pytest.approx((rows["train"] + rows["val"] / 3) / 2000.0)
    assert "at the spec's settings" in found.source and str(searched) in found.source


def test_the_gap_between_trials_is_what_fills_the_span():
    durations = [3.0, 1.0, 2.0, 2.5, 1.5]
    for gap in (0.0, 0.7, 4.0):
        span = timing.replay_span(durations, 2, gap)
        assert timing.fit_gap(durations, 2, span) == pytest.approx(gap, abs=1e-6)


def test_the_probe_is_the_baseline_for_a_few_epochs_without_early_stopping(tiny_data, tmp_path):
    s, _ = _spec(tiny_data, tmp_path, fixed={**BASE_SPEC["fixed"], "epochs": 8},
                 scheduler={"type": "asha", "grace_period": 1})
    probe = plan.probe_spec(s, at_once=2)
    assert probe.scheduler.type == "fifo" and probe.epochs == plan.PROBE_EPOCHS
    assert probe.search.num_samples == 4 and probe.resources.max_concurrent_trials == 2
    middle = (1e-3 * 1e-2) ** 0.5   # the middle of the range, on its log scale
    assert [p["learning_rate"] for p in probe.search.points_to_evaluate] == pytest.approx([middle] * 4)


def test_a_probe_of_model_families_times_each_family_once(cancer, tmp_path):
    s = spec_module.load(REPO / "search_spaces" / "model_families_optuna.yaml",
                         [f"data.path={cancer}", f"storage_path={tmp_path}"])
    probe = plan.probe_spec(s, at_once=2)
    families = [p["family"] for p in probe.search.points_to_evaluate]
    # a first wave that starts the trial processes, then each family once
    assert families == ["logistic_regression"] * 2 + ["logistic_regression", "random_forest", "lightgbm", "xgboost"]
    assert probe.search.points_to_evaluate[4]["lgbm_num_leaves"] == 34   # randint 4..64: its middle


def test_a_signature_ignores_what_the_plan_works_out(tiny_data, tmp_path):
    s, raw = _spec(tiny_data, tmp_path)
    other = copy.deepcopy(raw)
    other["search"]["num_samples"] = 40
    other["scheduler"] = {"type": "asha"}
    other["fixed"]["epochs"] = 9
    assert timing.signature(spec_module.validate(other)) == timing.signature(s)
    other["fixed"]["batch_size"] = 128
    assert timing.signature(spec_module.validate(other)) != timing.signature(s)


def test_the_plan_a_sweep_writes_as_it_starts_and_one_it_cannot_make(tiny_data, tmp_path, monkeypatch, caplog):
    s, _ = _spec(tiny_data, tmp_path)
    allocation = Allocation(trial={"cpu": 1}, max_concurrent=2, data_cpus=0, cpus_per_trial=1)
    sweep.write_plan(s, tmp_path, allocation)
    written = forecast.read(tmp_path)
    assert written["trials"] == 2 and written["slots"] == 2 and written["epochs"] == 6 and written["wall_s"] is None

    def broken(spec):
        raise RuntimeError("no")
    monkeypatch.setattr(timing, "reference", broken)
    (tmp_path / forecast.PLAN_FILE).unlink()
    sweep.write_plan(s, tmp_path, allocation)   # does not raise: the sweep goes on
    assert forecast.read(tmp_path) is None and "no plan for this sweep (RuntimeError: no)" in caplog.text


def _raysweep(*args, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "raysweep", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600)


@pytest.mark.slow
def test_plan_with_bad_input_says_one_line_and_exits_2(tiny_data, tmp_path):
    path = write_spec(tmp_path, {**copy.deepcopy(BASE_SPEC), "data": {"path": str(tiny_data)}})
    bad = tmp_path / "cluster.yaml"
    bad.write_text("cluster_name: x\n")
    for args, says in ((["--cluster", str(bad)], "no available_node_types"),
                       (["--price", "local"], "give NODE_TYPE=USD_PER_HOUR")):
        done = _raysweep("plan", str(path), *args, cwd=tmp_path)
        assert done.returncode == 2 and says in done.stderr and "Traceback" not in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_plan_probe_then_run_sets_the_plan_beside_what_happened(tiny_data, tmp_path):
    raw = copy.deepcopy(BASE_SPEC)
    raw["data"]["path"] = str(tiny_data)
    raw["storage_path"] = str(tmp_path / "results")
    raw["params"] = {"learning_rate": {"type": "grid", "values": [0.001, 0.003, 0.01, 0.03]}}
    raw["search"] = {"algorithm": "grid", "num_samples": 1, "seed": 0}   # 4 trials of 3 epochs, no early stop
    path = write_spec(tmp_path, raw)

    untimed = _raysweep("plan", str(path), cwd=tmp_path)
    assert untimed.returncode == 0, untimed.stderr
    assert "trials               4, 2 at a time" in untimed.stdout and "wall time            unknown" in untimed.stdout
    assert "Traceback" not in untimed.stderr

    probed = _raysweep("plan", str(path), "--probe", "--price", "local=3.6", cwd=tmp_path)
    assert probed.returncode == 0, probed.stderr
    assert "epochs               12 expected" in probed.stdout and "cost                 $" in probed.stdout
    assert "probe: 4 trials of the baseline, 2 at a time" in probed.stdout
    probes = list((tmp_path / "results").glob("tiny-probe-*"))
    assert len(probes) == 1 and timing.timeline(probes[0])[0]["signature"] == timing.signature(
        spec_module.load(path))

    ran = _raysweep("run", str(path), "--quiet", cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    experiment_dir = next(p for p in (tmp_path / "results").glob("tiny-2*"))
    predicted = forecast.read(experiment_dir)
    assert predicted["trials"] == 4 and predicted["epochs"] == 12 and predicted["wall_s"] > 0
    assert str(probes[0]) in predicted["timing_source"]
    table = plan_check.comparison(experiment_dir).set_index("")
    assert table.loc["trials", "actual"] == 4 and table.loc["epochs", "actual"] == 12
    assert table.loc["epochs", "error"] == "+0%" and table.loc["wall time (s)", "actual"] > 0

    ranked = _raysweep("rank", str(experiment_dir), cwd=tmp_path)
    assert "plan against actual" in ranked.stdout and "wall time (s)" in ranked.stdout
    reported = _raysweep("report", str(experiment_dir), cwd=tmp_path)
    assert reported.returncode == 0 and 'id="plan"' in (experiment_dir / "report.html").read_text()

    # the next plan is timed by the finished sweep, the newest measurement of the same spec
    again = _raysweep("plan", str(path), cwd=tmp_path)
    assert f"measured in {experiment_dir} (4 trials)" in again.stdout
    json.loads((experiment_dir / timing.TIMELINE_FILE).read_text())
