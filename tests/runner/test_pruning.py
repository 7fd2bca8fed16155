"""Checkpoints of ended trials that can no longer matter are deleted (`checkpoints.keep_top`)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pyarrow.fs
import pytest

from raysweep import cli, spec
from raysweep.analysis import diagnose, store
from raysweep.experiment import journal
from raysweep.phases import sweep
from raysweep.runner.pruning import CheckpointPruner


def trial(root: Path, name: str, losses: list[float] | None, torch_trainer: bool = False,
          journaled: bool = True) -> SimpleNamespace:
    """A trial as Tune's callbacks see it: its reports in its directory, a checkpoint where its
    executor leaves one, and (`journaled`) its end in the experiment's journal, as the journal
    callback writes it before the pruner hears of the end."""
    experiment_dir = root / "experiment"
    trial_dir = experiment_dir / f"trial_{name}"
    saved = (experiment_dir / "train_runs" / f"train-{name}" if torch_trainer else trial_dir) / "checkpoint_000001"
    saved.mkdir(parents=True)
    trial_dir.mkdir(exist_ok=True)
    (saved / "best.pt").write_bytes(b"weights")
    reports = [{"epoch": i + 1, "val_loss": loss} for i, loss in enumerate(losses or [])]
    (trial_dir / "result.json").write_text("".join(json.dumps(r) + "\n" for r in reports))
    if journaled:
        journal.write(pyarrow.fs.LocalFileSystem(), str(experiment_dir), {"trial_id": name})
    return SimpleNamespace(
        trial_id=name, status="RUNNING", local_path=None, path=str(trial_dir),
        experiment_tag=f"{ord(name[0]) - ord('a')}_width=8",
        run_metadata=SimpleNamespace(last_result_time=float(len(name))),
        storage=SimpleNamespace(storage_filesystem=pyarrow.fs.LocalFileSystem(), trial_fs_path=str(trial_dir),
                                experiment_fs_path=str(experiment_dir)))


def has_checkpoint(root: Path, name: str) -> bool:
    return any((root / "experiment").glob(f"*{name}/checkpoint_*")) or \
        any((root / "experiment/train_runs").glob(f"train-{name}/checkpoint_*"))


def kept(root: Path, names: str) -> str:
    return "".join(n for n in names if has_checkpoint(root, n))


def test_the_best_trials_keep_their_checkpoints_and_the_others_lose_them_once_tune_saved_them_ended(tmp_path):
    pruner = CheckpointPruner("val_loss", "min", keep_top=2)
    trials = {name: trial(tmp_path, name, losses, torch_trainer=name == "c")
              for name, losses in [("a", [0.6, 0.5]), ("b", [0.3]), ("c", [0.5, 0.4]), ("d", [0.4, 0.2, 0.9]),
                                   ("e", None), ("f", [0.1]), ("g", [0.25, float("nan")])]}
    pruner.on_step_begin(0, [])
    for name in "abc":
        pruner.on_trial_complete(0, [], trials[name])
    assert kept(tmp_path, "abc") == "abc", "nothing goes before Tune has saved the trial as ended"
    pruner.get_state()   # Tune saved its state, with a ended
    assert kept(tmp_path, "abc") == "abc", "...and that save may still be on its way to the experiment"
    pruner.get_state()
    assert kept(tmp_path, "abc") == "bc"   # a (best 0.5) dropped out
    pruner.on_trial_complete(0, [], trials["d"])    # best 0.2 (epoch 2) pushes out c, a TorchTrainer trial
    pruner.on_trial_complete(0, [], trials["e"])    # reported no val_loss: never the champion
    pruner.on_trial_error(0, [], trials["f"])       # the best value, but it failed
    pruner.on_trial_complete(0, [], trials["g"])    # NaN at the end: ranked on its best, 0.25, pushes out b
    pruner.on_experiment_end([])                     # Tune saved its final state just before
    assert kept(tmp_path, "abcdefg") == "dg"


def test_a_trial_whose_end_is_not_in_the_journal_keeps_its_checkpoints(tmp_path):
    """Where the journal could not be written, `resume` goes by Tune's state, which may still
    have the trial running: its checkpoints must stay."""
    pruner = CheckpointPruner("val_loss", "min", keep_top=1)
    trials = {"a": trial(tmp_path, "a", [0.1]), "b": trial(tmp_path, "b", [0.5], journaled=False),
              "c": trial(tmp_path, "c", [0.6])}
    pruner.on_step_begin(0, [])
    for name in "abc":
        pruner.on_trial_complete(0, [], trials[name])
    pruner.on_experiment_end([])
    assert kept(tmp_path, "abc") == "ab"


def test_of_equal_trials_the_first_made_keeps_its_checkpoints_as_the_leaderboard_ranks_it_first(tmp_path):
    pruner = CheckpointPruner("val_loss", "min", keep_top=1)
    trials = {name: trial(tmp_path, name, [0.5]) for name in "ab"}
    pruner.on_step_begin(0, [])
    for name in "ba":   # b ends first; a was made first
        pruner.on_trial_complete(0, [], trials[name])
    pruner.on_experiment_end([])
    assert kept(tmp_path, "ab") == "a"


def test_the_best_trial_of_each_scientific_value_keeps_its_checkpoints_too(tmp_path):
    """keep_top 1 over two families: the overall best and the best forest stay, a worse forest goes."""
    pruner = CheckpointPruner("val_loss", "min", keep_top=1, scientific=("family",))
    trials = {name: trial(tmp_path, name, losses) for name, losses in
              [("a", [0.3]), ("b", [0.1]), ("c", [0.2]), ("d", [0.25]), ("e", [0.05])]}
    for name, family in zip("abcde", ["forest", "boost", "forest", "forest", "boost"]):
        trials[name].config = {"family": family}
    pruner.on_step_begin(0, [])
    for name in "abcde":
        pruner.on_trial_complete(0, [], trials[name])
    pruner.on_experiment_end([])
    # e: the best overall (and of boost); c: the best forest; a, d (worse forests) and b (a boost beaten by e) go
    assert kept(tmp_path, "abcde") == "ce"


def test_a_resumed_sweep_counts_the_trials_its_first_run_finished(tmp_path):
    earlier = [trial(tmp_path, name, losses) for name, losses in [("a", [0.1]), ("bb", [0.2]), ("ccc", [0.3])]]
    for t in earlier:
        t.status = "TERMINATED"
    running = trial(tmp_path, "d", [0.15])
    pruner = CheckpointPruner("val_loss", "min", keep_top=2)
    pruner.on_step_begin(0, [*earlier, running])
    assert has_checkpoint(tmp_path, "ccc"), "the first run's own business: not listed again"
    pruner.on_trial_complete(0, [], running)
    pruner.on_experiment_end([])
    assert [n for n in ("a", "bb", "d") if has_checkpoint(tmp_path, n)] == ["a", "d"]


@pytest.mark.slow
def test_a_sweep_keeps_the_checkpoints_of_its_best_trials_and_exports_the_champion(raw_spec, tmp_path, capsys):
    raw_spec["params"]["learning_rate"] = {"type": "grid", "values": [1e30, 1e-4, 1e-3, 3e-3, 1e-2]}
    raw_spec["fixed"]["epochs"] = 2
    raw_spec["checkpoints"] = {"keep_top": 2}
    experiment_dir = sweep.run(spec.validate(raw_spec, overrides=["search.num_samples=1"]))
    trials = store.load(experiment_dir).trials
    ok = trials[~trials["status"].isin(diagnose.FAILED_STATUSES)].sort_values("best_val_loss")
    assert len(ok) == 4 and len(trials) == 5   # the 1e30 trial diverged
    kept = {t for t in trials["trial"] if any(Path(experiment_dir).glob(f"*_{t}_*/checkpoint_*"))}
    assert kept == set(ok["trial"].iloc[:2])

    assert cli.main(["export", str(experiment_dir), "--to", str(tmp_path / "champion")]) == 0
    assert (tmp_path / "champion" / "model.pt").is_file()
    worst = ok["trial"].iloc[-1]   # a trial outside the best two (export --trial, or another --metric) lost its weights
    assert cli.main(["export", str(experiment_dir), "--to", str(tmp_path / "other"), "--trial", worst]) == 2
    err = capsys.readouterr().err
    assert f"trial {worst} has no checkpoint: its checkpoints were deleted" in err and "Traceback" not in err
