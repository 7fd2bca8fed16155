"""`raysweep export` and `raysweep predict`: the champion trial as a model directory to deploy.

    raysweep export results/<experiment> --to champion [--format torchscript|onnx|both] [--min-metric 0.8]
    raysweep export results/<experiment> --to champion --pick 'min val_loss where latency_ms <= 5'
    raysweep predict champion --data data/glideator [--split val] [--format onnx] [--out predictions.parquet]

The directory holds the best epoch's weights of the best trial (the `best.pt` its checkpoints
carry) as TorchScript (`model.pt`, no raysweep needed to run it; the default), as ONNX
(`model.onnx`, checked with onnxruntime against the eager model on the val split) or both, and
as a state_dict, the dataset's `meta.json` (feature names, scalers fitted on train; the model
also carries its scalers as buffers), and `model_card.json`: config, metrics, data, versions,
the measured inference latency and how to load each file (`loading`). Below a deployment
threshold (seed 002 picks its champion against one) nothing is written and the command exits 1;
an export that fails its checks leaves nothing either: it is written beside `to` and moved there
whole. With several objectives or constraints the champion comes from the feasible Pareto front
(analysis.picks: the front's best on the first objective, or what `--pick` asks), the card
records how (`choice`), and a pick nobody meets writes nothing either (exit 1).

Loading it takes three lines (inputs in the order `model_card.json` lists them):

    import torch
    model = torch.jit.load("champion/model.pt")
    logits = model(site_id, features)

or, from the ONNX file, `onnxruntime.InferenceSession("champion/model.onnx").run(None,
{"site_id": site_id, "features": features})[0]`.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import pandas as pd

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
from raysweep.errors import UserError
from raysweep.trainables import kind_of, onnx_export, pytorch_export, torchscript
from raysweep.training.metrics import BETA_KEY
from raysweep.workloads import load_workload

MODEL_FILE, STATE_FILE = torchscript.MODEL_FILE, torchscript.STATE_FILE
EXAMPLE_ROWS = 64   # the rows an export is traced on and proven to predict alike
ONNX_FILE = onnx_export.ONNX_FILE
# `raysweep export --format`: the PyTorch formats each choice writes (None: the kind's own).
EXPORT_FORMATS = {"torchscript": (pytorch_export.TORCHSCRIPT,), "onnx": (pytorch_export.ONNX,),
                  "both": (pytorch_export.TORCHSCRIPT, pytorch_export.ONNX)}


def export(experiment_dir: str | Path, to: str | Path, *, metric: str | None = None, mode: str | None = None,
           min_metric: float | None = None, trial: str | None = None, export_format: str | None = None,
           pick: champion.Pick | None = None) -> Path:
    """Write the champion's model directory; raises ThresholdMissed below `min_metric`.

    The champion is chosen by `raysweep.analysis.champion.select` (failed trials never win, nor
    trials that break the spec's constraints), is the one `pick` chooses (analysis.picks), or is
    the `trial` asked for; its workload's kind writes the model (trainables: TorchScript
    and/or ONNX as `export_format` asks, a model family's own file, an own loop's state) and says
    what the card records of it. Nothing reaches `to` unless all of it was written and checked.

    Raises:
        champion.NoneMeets: no trial meets the constraints (the spec's or the pick's).
        UserError: an unknown format, ONNX without onnxruntime installed, or a model that cannot
            be exported as asked (an ONNX graph off the eager model by more than 1e-4 on val).
    """
    experiment_dir, to = Path(experiment_dir), Path(to)
    if export_format is not None and export_format not in EXPORT_FORMATS:
        raise UserError(f"--format {export_format!r} is not one raysweep exports; known: {', '.join(EXPORT_FORMATS)}")
    formats = EXPORT_FORMATS.get(export_format) if export_format else None
    if formats and pytorch_export.ONNX in formats:
        onnx_export.require()
    s = experiment.load_spec(experiment_dir)
    best = champion.select(experiment_dir, metric, mode, trial=trial, pick=pick)
    threshold_check(best, min_metric)
    workload = load_workload(s.workload)
    kind = kind_of(workload)
    meta = shards.read_meta(s.data.path)
    example = champion.read_columns(s.data.path, meta, "val", EXAMPLE_ROWS)
    check = champion.read_columns(s.data.path, meta, "val") if formats and pytorch_export.ONNX in formats else None
    with _staged(to) as draft:
        try:
            entries = kind.export(workload, champion.trial_config(experiment_dir, best), meta,
                                  champion.best_checkpoint_dir(experiment_dir, best), draft, example,
                                  formats=formats, check=check)
        except (ValueError, FileNotFoundError, RuntimeError) as exc:   # an own loop's state without a model, weights gone
            raise UserError(f"trial {best.trial}: its model cannot be exported: {exc}") from None
        shards.write_meta(draft, meta)
        if "loading" in entries:
            entries["loading"] = {**entries["loading"],
                                  META_FILE: f"json.load(open({META_FILE!r})): feature names, scalers, splits",
                                  CARD_FILE: f"json.load(open({CARD_FILE!r})): this card"}
        card = {
            **card_head(experiment_dir, best, min_metric),
            "kind": kind.name,
            **entries,
            "files": [*entries["files"], META_FILE, CARD_FILE],
            "outputs": outputs_of(meta),
            **card_tail(experiment_dir, s, meta),
        }
        (draft / CARD_FILE).write_text(json.dumps(card, indent=2, default=str) + "\n")
    return to


@contextlib.contextmanager
def _staged(to: Path):
    """A hidden directory beside `to` that the export is written into, moved to `to` only once
    the block ends without an error (and removed either way): a refused export leaves nothing.

    Into an earlier export's directory, the files are replaced one by one, and a model file of
    a format this export did not write is removed, so the directory holds what its card lists.
    """
    to.parent.mkdir(parents=True, exist_ok=True)
    draft = Path(tempfile.mkdtemp(prefix=f".{to.name}.", suffix=".partial", dir=to.parent))
    try:
        yield draft
        if not to.exists():
            umask = os.umask(0)
            os.umask(umask)
            draft.chmod(0o777 & ~umask)   # mkdtemp's 0700 would hide the model from a server run as another user
            draft.rename(to)
            return
        for path in draft.iterdir():
            os.replace(path, to / path.name)
        listed = json.loads((to / CARD_FILE).read_text())["files"]
        for stale in set(pytorch_export.FILES.values()) - set(listed):
            (to / stale).unlink(missing_ok=True)
    finally:
        shutil.rmtree(draft, ignore_errors=True)


def scoring_meta(card: dict, meta: dict) -> dict:
    """The dataset's meta with the champion's F-beta beta, as its trial scored (metrics.BETA_KEY)."""
    return {**meta, BETA_KEY: card.get("config", {}).get("fbeta_beta", 1.0)}


def model_format(model_dir: Path, card: dict, asked: str | None = None) -> str:
    """The format `predict` runs: the one asked for, else TorchScript where the directory holds
    it, else ONNX (cards written before ONNX export list no formats: TorchScript).

    Raises:
        UserError: the directory holds no model of the format asked for, or no model at all.
    """
    listed = card.get("formats", [pytorch_export.TORCHSCRIPT])
    held = [f for f in pytorch_export.FORMATS if f in listed and (model_dir / pytorch_export.FILES[f]).is_file()]
    if asked is not None and asked not in held:
        having = f"it holds {' and '.join(held)}" if held else "it holds no model"
        raise UserError(f"{model_dir} holds no {asked} model ({pytorch_export.FILES.get(asked, asked)}); {having}: "
                        f"export it with raysweep export EXPERIMENT_DIR --to DIR --format {asked}")
    if not held:
        raise UserError(f"{model_dir} holds no TorchScript model ({MODEL_FILE}): its trial's state is what it holds "
                        f"(model_card.json says how to load it); predict runs exported models")
    return asked or held[0]


def predict(model_dir: str | Path, data_dir: str | Path, *, split: str = "val", out: str | Path | None = None,
            runtime_format: str | None = None) -> tuple[pd.DataFrame, dict[str, float]]:
    """Predictions of an exported model on a dataset split; metrics too where it has labels.

    A PyTorch export runs as `runtime_format` ("torchscript": model.pt, "onnx": model.onnx with
    onnxruntime) or, by default, as TorchScript where it holds it and as ONNX otherwise.
    """
    model_dir = Path(model_dir)
    card_path = model_dir / CARD_FILE
    if not card_path.is_file():
        raise shards.DataError(f"{model_dir} is not an exported model ({CARD_FILE} is missing); "
                               "make one with raysweep export EXPERIMENT_DIR --to DIR")
    card = json.loads(card_path.read_text())
    meta = shards.read_meta(data_dir)
    if "family" in card or "ensemble" in card:
        if runtime_format is not None:
            raise UserError(f"{model_dir} holds a model family's own file ({', '.join(card['files'][:1])}), which predict "
                            f"runs with its library: leave --format {runtime_format} out")
        return family_export.predict(model_dir, card, data_dir, meta, split=split, out=out)
    chosen = model_format(model_dir, card, runtime_format)
    rows = champion.read_rows(data_dir, meta, split)
    problems = model_card.tensor_input_problems(card, rows)
    if problems:
        raise model_card.data_misfit(card, model_dir, data_dir, problems)
    run = onnx_export.run_exported if chosen == pytorch_export.ONNX else torchscript.run_exported
    outputs = run(model_dir, card, {k: v.numpy() for k, v in rows.items()})
    columns = card.get("outputs") or [f"output_{k}" for k in range(outputs.shape[1])]
    frame = pd.DataFrame(outputs.reshape(len(outputs), -1), columns=[str(c) for c in columns][:outputs.shape[-1]])
    metrics = {}
    scoring = getattr(load_workload(card["workload"]), "compute_metrics", None)   # an own loop may score itself
    labels = shards.label_column(meta)
    if labels in rows and scoring is not None:
        metrics = scoring(outputs, rows[labels].float().numpy(), scoring_meta(card, meta))
    if out:
        frame.to_parquet(out, index=False)
    return frame, metrics
