"""`raysweep evaluate`: the held-out test split, scored once, after the choosing is done.

    raysweep evaluate results/<experiment> [--model champion] [--model ensemble] [--again]

Nothing else reads a dataset's `test` split: sweeps train on train and rank on val, and
`validate`, `rank`, `report` and the plots look at those two only. `evaluate` scores the
champion (the trial `export` picks) and each exported model directory given (`export`,
`ensemble`) on it, writes `test_evaluation.json` in the experiment directory and a `test`
entry in each model card; `export` copies the champion's into the card of a later export. A
second look is refused without `--again`: a test split that one goes back to and chooses by has
become a second validation split, and its score no longer estimates the deployed model's.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

from raysweep import experiment
from raysweep.analysis import champion
from raysweep.datasets import location, shards
from raysweep.deploy import export
from raysweep.deploy.model_card import CARD_FILE, EVALUATION_FILE  # noqa: F401 - EVALUATION_FILE: the CLI's too
from raysweep.errors import UserError
from raysweep.training import metrics
from raysweep.training.metrics import BETA_KEY

TEST_SPLIT = "test"


def test_scores(scores: dict[str, float], labels, probs, threshold: float | None, beta: float) -> dict[str, float]:
    """A test split's metrics under plain names (`auc`, `loss`: no `val_` on a test score) and, for
    a binary task, `fbeta_at_threshold`: F-beta at the threshold chosen on validation, the score a
    deployment gets, beside `fbeta_at_best_test_threshold`, which picks its threshold on the test
    split itself: an optimistic figure, there to show how far the chosen threshold is from it."""
    # A threshold that maximises F-beta on the test split is one chosen by the test split: left out,
    # and the F-beta at it named for what it is, beside the F-beta at val's threshold.
    out = {k.removeprefix("val_"): v for k, v in scores.items() if k != metrics.THRESHOLD}
    if threshold is not None and "fbeta" in out:
        out["fbeta_at_best_test_threshold"] = out.pop("fbeta")
    if threshold is not None and probs is not None:
        out["fbeta_at_threshold"] = metrics.fbeta_at(labels, probs, threshold, beta)
        out["threshold_from_val"] = float(threshold)
    return out


def evaluate(experiment_dir: str | Path, models: tuple[str | Path, ...] = (), *, again: bool = False,
             metric: str | None = None, mode: str | None = None) -> dict:
    """Score the champion (the best trial on `metric`, default the spec's) and `models` on the
    test split; returns what test_evaluation.json records."""
    experiment_dir = Path(experiment_dir)
    record_path = experiment_dir / EVALUATION_FILE
    if record_path.is_file() and not again:
        when = json.loads(record_path.read_text()).get("scored", "before")
        raise UserError(f"{experiment_dir} was scored on its test split already ({when}; {record_path}). "
                        "Choosing by the test split again makes it a second validation split; if you mean to, "
                        "add --again")
    s = experiment.load_spec(experiment_dir)
    meta = shards.read_meta(s.data.path)
    rows = (meta.get("rows") or {}).get(TEST_SPLIT, 0)
    if not rows or not shards.shard_paths(s.data.path, TEST_SPLIT, meta.get("format", "parquet")):
        raise UserError(f"{s.data.path} has no test split. Re-import the table with --test-fraction 0.2 (or "
                        "--split-by a column that names test rows); the demo generators write one")
    best, workload, _, predict = champion.predictor(experiment_dir, metric, mode)   # the model, loaded once
    if not callable(getattr(workload, "compute_metrics", None)):
        raise UserError(f"{s.workload} has no compute_metrics(outputs, labels, meta) to score the test split with; "
                        "add it to the workload (an own loop scores val itself, but evaluate scores test here)")
    outputs, labels = predict(TEST_SPLIT)
    beta = float(best.config.get("fbeta_beta", 1.0))
    threshold = None
    if meta.get("task") == "binary":   # the champion's operating point, chosen on val as a deployment would
        val_outputs, val_labels = predict("val")
        threshold = metrics.best_fbeta(val_labels, champion.probabilities(workload, val_outputs), beta)[1]
    scores = workload.compute_metrics(outputs, labels, {**meta, BETA_KEY: beta})
    probs = champion.probabilities(workload, outputs) if threshold is not None else None
    scored = datetime.now(timezone.utc).isoformat(timespec="seconds")
    record = {"scored": scored, "split": TEST_SPLIT, "rows": rows, "data": location.absolute(s.data.path),
              "champion": {"trial": best.trial, "validation": {best.metric: best.value}, "mode": best.mode,
                           "test": test_scores(scores, labels, probs, threshold, beta)},
              "models": {}}
    for model_dir in map(Path, models):
        frame, scores = export.predict(model_dir, s.data.path, split=TEST_SPLIT)
        card = json.loads((model_dir / CARD_FILE).read_text())
        model_probs = frame.iloc[:, :1].to_numpy() if card.get("decision_threshold") is not None else None
        found = test_scores(scores, labels, model_probs, card.get("decision_threshold"),
                            float(card.get("config", {}).get("fbeta_beta", 1.0)))
        card["test"] = {"scored": scored, "rows": rows, "metrics": found}
        (model_dir / CARD_FILE).write_text(json.dumps(card, indent=2, default=str) + "\n")
        record["models"][str(model_dir)] = found
    record_path.write_text(json.dumps(record, indent=2, default=str) + "\n")
    return record
