"""Every searcher runs its ready spec end to end at tiny size, reproducibly for a seed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from raysweep import experiment, spec
from raysweep.analysis import leaderboard
from raysweep.phases import sweep
from raysweep.search import space

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def tiny(name: str, tiny_data, tmp_path, *extra: str) -> spec.Spec:
    return spec.load(ROOT / "search_spaces" / name, [
        f"data.path={tiny_data}", f"storage_path={tmp_path / 'results'}", "fixed.epochs=2",
        "fixed.batch_size=128", "scheduler.grace_period=1", "resources.max_concurrent_trials=1", *extra])


def configs(experiment_dir: Path, names: list[str]) -> list[str]:
    """Each trial's tuned values (decoded, as JSON text so they hash), in suggestion order."""
    from ray.tune import ExperimentAnalysis

    params = experiment.load_spec(experiment_dir).params
    # In the order the searcher suggested them: experiment_tag starts with the trial's index
    # (trial ids are random hashes under Optuna and HyperOpt).
    trials = sorted(ExperimentAnalysis(str(experiment_dir)).trials,
                    key=lambda t: int(t.experiment_tag.split("_")[0]))
    best = leaderboard.leaderboard(experiment_dir).set_index("trial")["best_val_loss"]
    return [json.dumps([space.decode(t.config, params).get(n, best[t.trial_id] if n == "best_val_loss" else None)
                        for n in names]) for t in trials]


@pytest.mark.parametrize("name", ["glideator_asha_random.yaml", "glideator_optuna.yaml",
                                  "glideator_hyperopt.yaml"])
def test_same_seed_same_configs(ray_session, tiny_data, tmp_path, name):
    s = tiny(name, tiny_data, tmp_path, "search.num_samples=3")
    names = s.tuned + ["best_val_loss"]   # on CPU the metrics repeat too
    first, second = (configs(sweep.run(s), names) for _ in range(2))
    assert len(first) == 3 and len(set(first)) == 3
    assert first == second
    other = configs(sweep.run(tiny(name, tiny_data, tmp_path, "search.num_samples=3", "search.seed=7")), names)
    assert other != first


def test_grid_spec_enumerates_every_combination(ray_session, tiny_data, tmp_path):
    s = tiny("glideator_asha_grid.yaml", tiny_data, tmp_path, "fixed.epochs=1",
             "params.learning_rate={type: choice, values: [1.0e-4, 1.0e-3]}")
    experiment_dir = sweep.run(s)
    grid = configs(experiment_dir, ["deep_hidden_units", "cross_layers", "site_embedding_dim", "learning_rate"])
    assert len(set(grid)) == len(grid) == 2 * 3 * 2 * 2
