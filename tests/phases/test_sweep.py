"""Real sweeps on a local Ray: ASHA, both executors, reproducibility, failures, resume."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from raysweep import experiment, spec
from raysweep.analysis import leaderboard, store
from raysweep.phases import sweep

pytestmark = pytest.mark.slow


def run_spec(raw, *overrides):
    experiment_dir = sweep.run(spec.validate(raw, overrides=list(overrides)))
    return experiment_dir, leaderboard.leaderboard(experiment_dir)


def histories(experiment_dir, metric="val_loss"):
    from ray.tune import ExperimentAnalysis

    analysis = ExperimentAnalysis(str(experiment_dir))
    return {t.config["learning_rate"]: list(analysis.trial_dataframes[t.trial_id][metric])
            for t in analysis.trials}


def test_asha_sweep_stops_early_and_ranks(ray_session, raw_spec):
    raw_spec["params"]["learning_rate"] = {"type": "loguniform", "low": 1e-5, "high": 3e-2}
    raw_spec["params"]["cross_layers"] = {"type": "randint", "low": 1, "high": 2}
    raw_spec["fixed"]["epochs"] = 4
    raw_spec["scheduler"] = {"type": "asha", "grace_period": 1, "reduction_factor": 2}
    experiment_dir, table = run_spec(raw_spec, "search.num_samples=8")

    assert len(table) == 8
    assert (table["status"] == "stopped by ASHA").sum() >= 1
    assert (table["status"] == "finished").sum() >= 1
    stopped = table[table["status"] == "stopped by ASHA"]
    assert (stopped["epochs"] < 4).all()
    best = table["best_val_loss"].tolist()
    assert best == sorted(best), "leaderboard is ordered by the metric"
    assert table["rank"].tolist() == list(range(1, 9))
    # The best value is the minimum of that trial's curve, and the epoch it came at.
    curves = histories(experiment_dir)
    top = table.iloc[0]
    curve = curves[top["learning_rate"]]
    assert top["best_val_loss"] == pytest.approx(min(curve))
    assert top["best_epoch"] == curve.index(min(curve)) + 1
    paths = leaderboard.write(table, experiment_dir)
    assert pd.read_parquet(paths[1])["trial"].tolist() == table["trial"].tolist()


def test_same_seed_same_configs_and_metrics(ray_session, raw_spec):
    _, first = run_spec(raw_spec, "fixed.epochs=2")
    _, second = run_spec(raw_spec, "fixed.epochs=2")
    columns = ["learning_rate", "best_val_loss", "epochs"]
    pd.testing.assert_frame_equal(first[columns], second[columns])
    _, other_seed = run_spec(raw_spec, "fixed.epochs=2", "search.seed=1")
    assert sorted(other_seed["learning_rate"]) != sorted(first["learning_rate"])


def test_both_executors_give_the_same_metrics(ray_session, raw_spec):
    overrides = ["fixed.epochs=2", "search.num_samples=1"]
    in_trial, _ = run_spec(raw_spec, *overrides, "resources.executor=in_trial")
    trainer, table = run_spec(raw_spec, *overrides, "resources.executor=torch_trainer")
    assert table["status"].tolist() == ["finished"]
    a, b = histories(in_trial), histories(trainer)
    assert a.keys() == b.keys()
    for lr in a:
        assert a[lr] == pytest.approx(b[lr], rel=1e-5)
    assert list((trainer / "train_runs").iterdir()), "TorchTrainer checkpoints live in the experiment"


@pytest.mark.parametrize("executor", ["in_trial", "torch_trainer"])
def test_early_stopping_ends_the_trial_with_its_best_epoch(ray_session, raw_spec, executor):
    """min_delta 10 counts no later epoch as better: patience 1 stops at epoch 2 with epoch 1's model."""
    import torch
    from ray.tune import ExperimentAnalysis

    raw_spec["fixed"].update(epochs=5, early_stopping_patience=1, early_stopping_min_delta=10.0)
    experiment_dir, table = run_spec(raw_spec, "search.num_samples=1", f"resources.executor={executor}")
    assert table["status"].tolist() == ["early stopped"] and table["epochs"].tolist() == [2]
    analysis = ExperimentAnalysis(str(experiment_dir))
    trial = analysis.trials[0]
    curve = analysis.trial_dataframes[trial.trial_id]
    assert curve["epoch"].tolist() == [1, 2] and curve["restored_best_epoch"].iloc[-1] == 1
    assert curve["val_loss"].iloc[1] == pytest.approx(curve["val_loss"].iloc[0], rel=1e-6)
    directory = experiment.checkpoint_dir(experiment_dir, trial.trial_id)
    best = torch.load(directory / "best.pt", weights_only=True)
    last = torch.load(directory / "last.pt", weights_only=True)
    assert best["epoch"] == 1 and last["epoch"] == 2
    assert not all(torch.equal(best["model"][k], last["model"][k]) for k in best["model"])


def test_diverging_trial_does_not_take_the_sweep_down(ray_session, raw_spec):
    raw_spec["params"]["learning_rate"] = {"type": "grid", "values": [3e-3, 1e30]}
    experiment_dir, table = run_spec(raw_spec, "search.num_samples=1", "fixed.epochs=2")
    by_lr = table.set_index("learning_rate")["status"].to_dict()
    assert by_lr == {3e-3: "finished", 1e30: "diverged"}
    assert table.iloc[0]["learning_rate"] == 3e-3
    errors = list(experiment_dir.glob("*/error.txt"))
    assert errors and "Lower learning_rate" in errors[0].read_text()


def test_resume_after_interrupt(ray_session, raw_spec, tmp_path):
    """Interrupt `raysweep run` (SIGINT, as Ctrl-C would) mid-sweep, then resume it."""
    raw_spec["fixed"]["epochs"] = 6
    raw_spec["search"]["num_samples"] = 5
    raw_spec["resources"]["max_concurrent_trials"] = 1
    spec_path = tmp_path / "spec.yaml"
    spec_path.write_text(yaml.safe_dump(raw_spec))
    log = tmp_path / "run.log"
    address = ray_session.get_runtime_context().gcs_address
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "raysweep.cli", "run", str(spec_path), "--address", address],
                                stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and log.read_text().count("finished 6 epochs") < 2:
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=120) == 130
    text = log.read_text()
    assert "raysweep resume" in text
    (experiment_dir,) = Path(raw_spec["storage_path"]).iterdir()
    before = leaderboard.leaderboard(experiment_dir)
    done = before[before["status"] == "finished"]
    assert len(done) >= 2 and len(done) < 5
    lines = {t: len((next(experiment_dir.glob(f"*{t}*")) / "result.json").read_text().splitlines())
             for t in done["trial"]}

    interrupted = store.load(experiment_dir)
    assert set(done["trial"]) <= set(interrupted.trials["trial"])
    assert (interrupted.trials["status"] == "unfinished").any() or len(interrupted.trials) < 5

    sweep.resume(experiment_dir)
    after = leaderboard.leaderboard(experiment_dir)
    assert len(after) == 5 and set(after["status"]) == {"finished"}
    assert set(after["epochs"]) == {6}
    resumed = store.load(experiment_dir)
    assert set(resumed.trials["status"]) == {"finished"} and len(resumed.trials) == 5
    epochs = resumed.curves.groupby("trial")["epoch"].apply(sorted)
    assert all(e == list(range(1, 7)) for e in epochs), f"every epoch once per trial, across the interruption: {epochs}"
    for trial, n in lines.items():
        result = next(experiment_dir.glob(f"*{trial}*")) / "result.json"
        assert len(result.read_text().splitlines()) == n, f"finished trial {trial} was re-run"

