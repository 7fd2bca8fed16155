"""The model card every export writes (`model_card.json`), and the deployment threshold.

A PyTorch champion (deploy/export.py) and a model family's (deploy/family_export.py) share the
card's head (the champion trial, the threshold it passed, its metrics and config) and tail (the
data, versions, the experiment); each adds what its model format needs to be loaded.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from raysweep import experiment
from raysweep.analysis import champion
from raysweep.checks import is_missing
from raysweep.datasets import location, shards
from raysweep.trainables.model_families import inputs_of

META_FILE, CARD_FILE = "meta.json", "model_card.json"
EVALUATION_FILE = "test_evaluation.json"   # in the experiment directory, written by raysweep evaluate


class ThresholdMissed(Exception):
    """The champion does not reach the deployment threshold; nothing was exported."""


def card_head(experiment_dir: Path, best: champion.Champion, min_metric: float | None) -> dict:
    """What every model card begins with: the champion trial, the threshold it passed, its metrics,
    and, with several objectives, constraints or a pick, how it was chosen (`choice`: the pick,
    the constraints, the front it was chosen from with each trial's objectives, where several)."""
    s = experiment.load_spec(experiment_dir)
    top = {"trial": best.trial, "metric": best.metric, "mode": best.mode, "value": best.value,
           "best_epoch": _plain(best.row.get("best_epoch")), "status": best.row.get("status")}
    if s.multi_objective or s.constraints:   # judged at best_epoch, the weights exported (analysis.pareto)
        top.update({key: _plain(best.row.get(key)) for key in ("feasible", "pareto_rank") if key in best.row})
    return {
        "champion": top,
        **({"choice": best.choice} if best.choice is not None else {}),
        "threshold": None if min_metric is None else {"metric": best.metric, "value": min_metric, "passed": True},
        "metrics": {k: _plain(v) for k, v in best.row.items() if k.startswith(("best_", "last_", "at_best_"))},
        "config": best.config,
        "workload": s.workload,
        "test": test_result(experiment_dir, best.trial),
    }


def test_result(experiment_dir: Path, trial: str) -> dict | None:
    """The champion's score on the test split, where `raysweep evaluate` scored this trial."""
    path = Path(experiment_dir) / EVALUATION_FILE
    if not path.is_file():
        return None
    record = json.loads(path.read_text())
    if record.get("champion", {}).get("trial") != trial:
        return None
    return {"scored": record["scored"], "rows": record["rows"], "metrics": record["champion"]["test"]}


def card_tail(experiment_dir: Path, s, meta: dict) -> dict:
    """What every model card ends with: the data, versions, the experiment and the time."""
    return {
        "data": {"path": location.absolute(s.data.path), "rows": meta.get("rows"),
                 "made_by": meta.get("generator") or meta.get("source"), "split": meta.get("split")},
        "versions": experiment.versions(),
        "experiment": {"dir": str(experiment_dir.resolve()), "spec": s.raw},
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def data_misfit(card: dict, model_dir, data_dir, problems: list[str]) -> shards.DataError:
    """The one error for data that does not fit an exported model (another workload's, another
    table's): what is missing or shaped otherwise, and what the model was trained on."""
    trained = card.get("data", {}).get("path", "its training data")
    return shards.DataError(f"{data_dir} does not fit the model in {model_dir}: {'; '.join(problems)}. The model was "
                            f"trained on {trained} (workload {card.get('workload')}); predict on data written the "
                            "same way")


def family_input_problems(card: dict, meta: dict) -> list[str]:
    """How a dataset's input columns differ from those the model family was trained on, which
    it takes as one matrix: the same columns, in the same order."""
    have = [c for i in inputs_of(meta) for c in i["columns"]]
    trained = [c for i in card["inputs"] for c in i.get("columns", [])]
    if have == trained:
        return []
    missing = [c for c in trained if c not in have]
    extra = [c for c in have if c not in trained]

    def shown(names: list[str]) -> str:
        return ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")

    problems = [f"it lacks the column(s) {shown(missing)}"] if missing else []
    problems += [f"it has column(s) the model was not trained on: {shown(extra)}"] if extra else []
    return problems or [f"its columns come in another order than the model's ({shown(trained)})"]


def tensor_input_problems(card: dict, rows: dict) -> list[str]:
    """An exported PyTorch model's inputs that a split lacks, or holds in another shape per row."""
    problems = []
    for wanted in card["inputs"]:
        name, shape = wanted["name"], list(wanted.get("shape", [])[1:])
        if name not in rows:
            problems.append(f"it has no column {name!r} (it has {', '.join(sorted(rows))})")
        elif shape and list(rows[name].shape[1:]) != shape:
            problems.append(f"its column {name!r} holds {list(rows[name].shape[1:])} per row, the model takes {shape}")
    return problems


def outputs_of(meta: dict) -> list | None:
    """The names of a model's output columns: the targets, or the classes of a multiclass table."""
    return meta.get("target_names") if meta.get("task") != "multiclass" else meta.get("classes")


def threshold_check(best: champion.Champion, min_metric: float | None) -> None:
    """Raise ThresholdMissed where the champion does not reach the deployment threshold."""
    if min_metric is None:
        return
    passed = best.value >= min_metric if best.mode == "max" else best.value <= min_metric
    if not passed:
        bound = "at least" if best.mode == "max" else "at most"
        raise ThresholdMissed(f"the champion, trial {best.trial}, has {best.metric} {best.value:.4g}; the "
                              f"threshold asks for {bound} {min_metric:g}. Nothing exported.")


def _plain(value):
    if isinstance(value, (np.generic,)):
        return value.item()
    return None if is_missing(value) or value is pd.NA else value
