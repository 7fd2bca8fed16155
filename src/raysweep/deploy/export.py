"""`raysweep export` and `raysweep predict`: the champion trial as a model directory to deploy.

    raysweep export results/<experiment> --to champion [--metric val_auc --min-metric 0.8]
    raysweep predict champion --data data/glideator [--split val] [--out predictions.parquet]

The directory holds the best epoch's weights of the best trial (the `best.pt` its checkpoints
carry) as TorchScript (`model.pt`, no raysweep needed to run it) and as a state_dict, the
dataset's `meta.json` (feature names, scalers fitted on train; the model also carries its
scalers as buffers), and `model_card.json`: config, metrics, data, versions and the measured
inference latency. Below a deployment threshold (seed 002 picks its champion against one)
nothing is written and the command exits 1.

Loading it takes three lines (inputs in the order `model_card.json` lists them):

    import torch
    model = torch.jit.load("champion/model.pt")
    logits = model(site_id, features)
"""

from __future__ import annotations

import json
import warnings
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from raysweep import experiment
from raysweep.analysis import champion
from raysweep.checks import is_missing
from raysweep.datasets import location, shards
from raysweep.training import loop
from raysweep.workloads import load_workload

MODEL_FILE, STATE_FILE, META_FILE, CARD_FILE = "model.pt", "state_dict.pt", "meta.json", "model_card.json"
EXAMPLE_ROWS = 8


class ThresholdMissed(Exception):
    """The champion does not reach the deployment threshold; nothing was exported."""


class _Positional(torch.nn.Module):
    """Tensors in, in the order of `names`, so TorchScript needs no dict and no raysweep."""

    def __init__(self, model: torch.nn.Module, names: list[str], predict):
        super().__init__()
        self.model, self.names, self._predict = model, names, predict

    def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
        return self._predict(self.model, dict(zip(self.names, tensors)))


def export(experiment_dir: str | Path, to: str | Path, *, metric: str | None = None, mode: str | None = None,
           min_metric: float | None = None) -> Path:
    """Write the champion's model directory; raises ThresholdMissed below `min_metric`.

    The champion is chosen by `raysweep.analysis.champion.select` (failed trials never win).
    """
    experiment_dir = Path(experiment_dir)
    s = experiment.load_spec(experiment_dir)
    best = champion.select(experiment_dir, metric, mode)
    if min_metric is not None:
        passed = best.value >= min_metric if best.mode == "max" else best.value <= min_metric
        if not passed:
            bound = "at least" if best.mode == "max" else "at most"
            raise ThresholdMissed(f"the champion, trial {best.trial}, has {best.metric} {best.value:.4g}; the "
                                  f"threshold asks for {bound} {min_metric:g}. Nothing exported.")
    workload, meta, model, payload = champion.load_model(experiment_dir, best)

    names = workload.model_inputs(meta)
    example = champion.read_rows(s.data.path, meta, "val", EXAMPLE_ROWS)
    inputs = [example[n] for n in names]
    with torch.no_grad(), warnings.catch_warnings():
        # Tracing an LSTM or a transformer warns about shapes taken as constants; the comparison
        # with the eager model below is the check that matters, and it fails loudly. It runs on
        # the traced batch and on a smaller one, so a batch size baked into the trace shows.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        scripted = torch.jit.trace(_Positional(model, names, workload.predict), tuple(inputs), check_trace=False)
        for rows in (len(inputs[0]), max(1, len(inputs[0]) // 2 - 1)):
            part = {n: t[:rows] for n, t in example.items()}
            if not torch.allclose(scripted(*[part[n] for n in names]), workload.predict(model, part),
                                  rtol=1e-4, atol=1e-5):
                raise RuntimeError("the traced model disagrees with the eager one; please report this workload")
    to = Path(to)
    to.mkdir(parents=True, exist_ok=True)
    scripted.save(str(to / MODEL_FILE))
    torch.save(model.state_dict(), to / STATE_FILE)
    shards.write_meta(to, meta)

    one = [t[:1] for t in inputs]
    latency_s = loop.median_seconds(lambda: scripted(*one), repeats=50, warmup=5)
    batch = [t.repeat((128,) + (1,) * (t.dim() - 1))[:1024] for t in inputs]
    batch_s = loop.median_seconds(lambda: scripted(*batch), repeats=5, warmup=1)
    card = {
        "champion": {"trial": best.trial, "metric": best.metric, "mode": best.mode, "value": best.value,
                     "best_epoch": _plain(best.row.get("best_epoch")), "status": best.row.get("status")},
        "threshold": None if min_metric is None else {"metric": best.metric, "value": min_metric, "passed": True},
        "weights": {"epoch": payload.get("epoch"), "metrics": payload.get("metrics", {}),
                    "note": "the best epoch's weights by the trial's early_stopping_metric"},
        "metrics": {k: _plain(v) for k, v in best.row.items() if k.startswith(("best_", "last_"))},
        "config": best.config,
        "workload": s.workload,
        "inputs": [{"name": n, "dtype": str(t.dtype).replace("torch.", ""), "shape": [-1, *t.shape[1:]]}
                   for n, t in zip(names, inputs)],
        "outputs": meta.get("target_names") if meta.get("task") != "multiclass" else meta.get("classes"),
        "data": {"path": location.absolute(s.data.path), "rows": meta.get("rows"),
                 "made_by": meta.get("generator") or meta.get("source"), "split": meta.get("split")},
        "inference": {"device": "cpu", "torch_threads": torch.get_num_threads(),
                      "latency_ms_one_row": round(latency_s * 1e3, 4),
                      "throughput_rows_per_s": round(1024 / batch_s, 1)},
        "versions": experiment.versions(),
        "experiment": {"dir": str(experiment_dir.resolve()), "spec": s.raw},
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    (to / CARD_FILE).write_text(json.dumps(card, indent=2, default=str) + "\n")
    return to


def _plain(value):
    if isinstance(value, (np.generic,)):
        return value.item()
    return None if is_missing(value) or value is pd.NA else value


def predict(model_dir: str | Path, data_dir: str | Path, *, split: str = "val",
            out: str | Path | None = None) -> tuple[pd.DataFrame, dict[str, float]]:
    """Predictions of an exported model on a dataset split; metrics too where it has labels."""
    model_dir = Path(model_dir)
    card_path = model_dir / CARD_FILE
    if not card_path.is_file():
        raise shards.DataError(f"{model_dir} is not an exported model ({CARD_FILE} is missing); "
                               "make one with raysweep export EXPERIMENT_DIR --to DIR")
    card = json.loads(card_path.read_text())
    meta = shards.read_meta(data_dir)
    rows = champion.read_rows(data_dir, meta, split)
    names = [i["name"] for i in card["inputs"]]
    missing = [n for n in names if n not in rows]
    if missing:
        raise shards.DataError(f"{data_dir} lacks the model's input column(s) {', '.join(missing)}")
    model = torch.jit.load(str(model_dir / MODEL_FILE))
    model.eval()
    outputs = champion.in_chunks(lambda chunk: model(*[chunk[n] for n in names]), rows)
    columns = card.get("outputs") or [f"output_{k}" for k in range(outputs.shape[1])]
    frame = pd.DataFrame(outputs.reshape(len(outputs), -1), columns=[str(c) for c in columns][:outputs.shape[-1]])
    metrics = {}
    if "labels" in rows:
        metrics = load_workload(card["workload"]).compute_metrics(outputs, rows["labels"].float().numpy(), meta)
    if out:
        frame.to_parquet(out, index=False)
    return frame, metrics
