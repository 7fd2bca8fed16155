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
from pathlib import Path

import pandas as pd
import torch

from raysweep import experiment
from raysweep.analysis import champion
from raysweep.datasets import shards
from raysweep.deploy import family_export, model_card
from raysweep.deploy.model_card import (  # noqa: F401 - ThresholdMissed and the file names are export's API too
    CARD_FILE,
    META_FILE,
    ThresholdMissed,
    card_head,
    card_tail,
    outputs_of,
    threshold_check,
)
from raysweep.training import loop
from raysweep.training.metrics import BETA_KEY
from raysweep.workloads import fits_estimators, load_workload

MODEL_FILE, STATE_FILE = "model.pt", "state_dict.pt"
EXAMPLE_ROWS = 8


class _Positional(torch.nn.Module):
    """Tensors in, in the order of `names`, so TorchScript needs no dict and no raysweep."""

    def __init__(self, model: torch.nn.Module, names: list[str], predict):
        super().__init__()
        self.model, self.names, self._predict = model, names, predict

    def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
        return self._predict(self.model, dict(zip(self.names, tensors)))


def export(experiment_dir: str | Path, to: str | Path, *, metric: str | None = None, mode: str | None = None,
           min_metric: float | None = None, trial: str | None = None) -> Path:
    """Write the champion's model directory; raises ThresholdMissed below `min_metric`.

    The champion is chosen by `raysweep.analysis.champion.select` (failed trials never win), or
    is the `trial` asked for.
    """
    experiment_dir = Path(experiment_dir)
    s = experiment.load_spec(experiment_dir)
    best = champion.select(experiment_dir, metric, mode, trial=trial)
    threshold_check(best, min_metric)
    if fits_estimators(load_workload(s.workload)):
        return family_export.export(experiment_dir, Path(to), best, min_metric)
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
        **card_head(experiment_dir, best, min_metric),
        "files": [MODEL_FILE, STATE_FILE, META_FILE, CARD_FILE],
        "weights": {"epoch": payload.get("epoch"), "metrics": payload.get("metrics", {}),
                    "note": "the best epoch's weights by the trial's early_stopping_metric"},
        "inputs": [{"name": n, "dtype": str(t.dtype).replace("torch.", ""), "shape": [-1, *t.shape[1:]]}
                   for n, t in zip(names, inputs)],
        "outputs": outputs_of(meta),
        "inference": {"device": "cpu", "torch_threads": torch.get_num_threads(),
                      "latency_ms_one_row": round(latency_s * 1e3, 4),
                      "throughput_rows_per_s": round(1024 / batch_s, 1)},
        **card_tail(experiment_dir, s, meta),
    }
    (to / CARD_FILE).write_text(json.dumps(card, indent=2, default=str) + "\n")
    return to


def scoring_meta(card: dict, meta: dict) -> dict:
    """The dataset's meta with the champion's F-beta beta, as its trial scored (metrics.BETA_KEY)."""
    return {**meta, BETA_KEY: card.get("config", {}).get("fbeta_beta", 1.0)}


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
    if "family" in card or "ensemble" in card:
        return family_export.predict(model_dir, card, data_dir, meta, split=split, out=out)
    rows = champion.read_rows(data_dir, meta, split)
    names = [i["name"] for i in card["inputs"]]
    problems = model_card.tensor_input_problems(card, rows)
    if problems:
        raise model_card.data_misfit(card, model_dir, data_dir, problems)
    model = torch.jit.load(str(model_dir / MODEL_FILE))
    model.eval()
    outputs = champion.in_chunks(lambda chunk: model(*[chunk[n] for n in names]), rows)
    columns = card.get("outputs") or [f"output_{k}" for k in range(outputs.shape[1])]
    frame = pd.DataFrame(outputs.reshape(len(outputs), -1), columns=[str(c) for c in columns][:outputs.shape[-1]])
    metrics = {}
    if "labels" in rows:
        metrics = load_workload(card["workload"]).compute_metrics(outputs, rows["labels"].float().numpy(),
                                                                  scoring_meta(card, meta))
    if out:
        frame.to_parquet(out, index=False)
    return frame, metrics
