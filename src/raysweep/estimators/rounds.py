"""Fit a family in a trial and report as the PyTorch loop does: epochs, metrics, checkpoints.

A boosted family reports every `rounds_per_epoch` rounds (an "epoch" of boosting), so a
scheduler's rungs are rounds and ASHA stops a weak booster after its first few. A family that
fits once (logistic regression, random forest) reports once, at its last epoch: it is a model
trained on the whole budget, and ASHA records it at its top rung only (the highest milestone at
or below that epoch), beside the boosters that got that far, rather than at the first rung
against boosters of a few rounds.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Callable

from raysweep.estimators import checkpoint
from raysweep.estimators.contract import Table
from raysweep.estimators.registry import FAMILIES
from raysweep.training import metrics

# report(metrics, write): write(directory) puts the checkpoint of this report into a directory.
Report = Callable[[dict[str, Any], Callable[[Path], None]], None]


class FitError(RuntimeError):
    """The model's validation predictions are not numbers: the trial fails with this message."""


def validation_metrics(family: str, model: Any, table: Table, beta: float) -> dict[str, float]:
    outputs = FAMILIES[family].predict(model, table.features, table.task, table.n_classes)
    return metrics.for_task(table.task, table.labels, outputs, beta=beta)


def run(cfg: Any, train: Table, val: Table, report: Report, *, threads: int, resume: Path | None = None) -> None:
    """Fit `cfg.family` on `train`, validate on `val`, report; continue from a checkpoint directory."""
    family = FAMILIES[cfg.family]
    model, done = None, 0
    if resume is not None:
        _, model, state = checkpoint.load(resume)
        done = int(state["epoch"])
    epochs = range(done, cfg.epochs) if family.BOOSTED else ([cfg.epochs - 1] if done < cfg.epochs else [])
    for epoch in epochs:
        start = time.perf_counter()
        model = family.fit(cfg, train, threads=threads, rounds=cfg.rounds_per_epoch, model=model)
        fit_seconds = time.perf_counter() - start
        scores = validation_metrics(cfg.family, model, val, cfg.fbeta_beta)
        if not math.isfinite(scores["val_loss"]):
            raise FitError(f"{cfg.family} predicted values that are not numbers at epoch {epoch + 1}; "
                           "check the table for extreme values, or narrow the family's search ranges")
        rounds = (epoch + 1) * cfg.rounds_per_epoch if family.BOOSTED else None
        fitted = model

        def write(directory: Path, fitted=fitted, epoch=epoch, rounds=rounds, scores=scores) -> None:
            checkpoint.save(directory, cfg.family, fitted, epoch=epoch + 1, rounds=rounds, metrics=scores)

        report({"epoch": epoch + 1, **({"rounds": rounds} if rounds else {}), "fit_seconds": fit_seconds,
                **scores}, write)
