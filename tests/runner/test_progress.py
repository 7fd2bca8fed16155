"""The progress callback travels with Tune's experiment state, so it must pickle."""

from __future__ import annotations

import builtins

from ray import cloudpickle

from raysweep.runner.progress import ProgressLines


def test_progress_callback_pickles_even_when_print_is_replaced(monkeypatch):
    # Ray and test runners swap builtins.print; a stored reference to it then cannot pickle.
    monkeypatch.setattr(builtins, "print", lambda *a, **k: None)
    callback = ProgressLines(metric="val_loss", mode="min", params=(), total=2, planned_epochs=3)
    restored = cloudpickle.loads(cloudpickle.dumps(callback))
    assert restored.metric == "val_loss" and restored.total == 2
