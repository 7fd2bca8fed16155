"""An ended trial lets go of Tune's per-metric windows: less memory and a smaller snapshot."""

from __future__ import annotations

from types import SimpleNamespace

from ray.tune.trainable.metadata import _TrainingRunMetadata

from raysweep.runner.ended_trials import EndedTrialTrimmer


def test_an_ended_trial_keeps_only_the_statistics_of_the_metric_pruning_ranks_on():
    metadata = _TrainingRunMetadata()
    for epoch in range(1, 11):
        for name in ("val_loss", "val_auc", "train_loss", "time_this_iter_s", "lr"):
            metadata.update_metric(name, 1.0 / epoch, step=epoch)
    before = len(metadata.get_json_state())   # the snapshot Tune writes caches this
    trial = SimpleNamespace(run_metadata=metadata)

    EndedTrialTrimmer("val_loss").on_trial_complete(0, [], trial)
    assert set(metadata.metric_analysis) == {"val_loss"} and metadata.metric_analysis["val_loss"]["min"] == 0.1
    assert set(metadata.metric_n_steps) == {"val_loss"}
    after = len(metadata.get_json_state())
    assert after < before / 3, (before, after)
    assert '"val_auc"' not in metadata.get_json_state(), "the cached snapshot was refreshed"
    metadata.update_metric("val_loss", 0.05, step=11)   # Tune could go on with the objective
    assert metadata.metric_analysis["val_loss"]["min"] == 0.05

    EndedTrialTrimmer("val_loss").on_trial_error(0, [], SimpleNamespace(run_metadata=_TrainingRunMetadata()))
