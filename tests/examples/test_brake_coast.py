"""The brake/coast example (examples/brake_coast/, seed 003): a user's workload with multi-input
batches, loaded by file as a spec names it, and swept end to end with its own spec."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from raysweep import spec
from raysweep.analysis import store
from raysweep.datasets import batching, shards
from raysweep.deploy import export
from raysweep.phases import sweep
from raysweep.workloads import Workload, load_workload

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "brake_coast"
SMALL = {"n_drives": 12, "seconds": 60}


@pytest.fixture(scope="module")
def workload():
    return load_workload(str(EXAMPLE / "brake_coast.py"))


@pytest.fixture(scope="module")
def data(workload, tmp_path_factory):
    out = tmp_path_factory.mktemp("brake_coast") / "data"
    workload.DATA.write(out_dir=out, **SMALL)
    return out


def split_rows(data: Path, split: str) -> dict[str, torch.Tensor]:
    return batching.arrow_to_torch(pq.read_table(shards.shard_paths(data, split, "parquet")))


def test_it_keeps_the_contract_and_writes_tensor_columns(workload, data):
    assert isinstance(workload, Workload)
    meta = shards.read_meta(data)
    rows = split_rows(data, "train")
    n = meta["rows"]["train"]
    assert rows["telemetry"].shape == (n, 20, 10) and rows["detections"].shape == (n, 20, 12, 6)
    assert rows["detection_mask"].dtype == torch.bool and rows["detection_mask"].shape == (n, 20, 12)
    assert rows["labels"].shape == (n, 10) and meta["target_names"][0] == "brake_1s"
    # masked slots hold nothing; a detection's box lies in the image
    assert not rows["detections"][~rows["detection_mask"]].any()
    assert rows["detections"].min() >= 0 and rows["detections"].max() <= 1


def test_drives_split_whole_rare_brakes_and_nested_horizons(workload, data, tmp_path):
    meta = shards.read_meta(data)
    train, val = split_rows(data, "train"), split_rows(data, "val")
    assert not set(train["drive"].tolist()) & set(val["drive"].tolist()), "a drive is in one split only"
    assert 0.01 < meta["brake_frame_rate"] < 0.06, "about 3% of frames brake, as in the seed"
    labels = train["labels"]
    assert (labels[:, 1:5] >= labels[:, 0:4]).all() and (labels[:, 6:10] >= labels[:, 5:9]).all(), \
        "an event within 1 s is also within 2 s"
    again = workload.DATA.write(out_dir=tmp_path / "again", **SMALL)
    assert again == meta and torch.equal(split_rows(tmp_path / "again", "val")["detections"], val["detections"])


@pytest.mark.parametrize("encoder,fusion,decoder", list(itertools.product(
    ("simple", "attention"), ("concat", "cross_attention", "query"), ("lstm", "transformer"))))
def test_each_architecture_trains_every_parameter_and_ignores_masked_boxes(workload, data, encoder, fusion, decoder):
    meta = shards.read_meta(data)
    cfg = workload.Config(encoder=encoder, fusion=fusion, decoder=decoder, dropout=0.0)
    batch = {k: v[:16] for k, v in split_rows(data, "train").items()}
    torch.manual_seed(0)
    model = workload.build_model(cfg, meta)
    loss, logits = workload.compute_loss(model, batch, cfg)
    assert logits.shape == (16, 10) and torch.isfinite(loss)
    loss.backward()
    idle = [name for name, p in model.named_parameters() if p.grad is None]
    assert not idle, f"parameters without a gradient break DDP: {idle}"
    model.eval()
    hidden = torch.rand_like(batch["detections"])
    noisy = dict(batch, detections=torch.where(batch["detection_mask"][..., None], batch["detections"], hidden))
    assert torch.allclose(workload.predict(model, batch), workload.predict(model, noisy), atol=1e-6), \
        "what the mask hides must not change the prediction"


def test_focal_loss_per_task_follows_the_spec(workload, data):
    meta = shards.read_meta(data)
    batch = {k: v[:64] for k, v in split_rows(data, "train").items()}
    cfg = workload.Config()
    settings = workload.focal_settings(cfg)
    assert settings["alpha"][:5] == [0.2] * 5 and settings["gamma"][:2] == [3.0, 2.75]
    assert settings["task_weights"][0] == 1.0 and settings["task_weights"][5] == 0.85
    torch.manual_seed(0)
    model = workload.build_model(cfg, meta)
    base = workload.compute_loss(model, batch, cfg)[0]
    assert not torch.isclose(base, workload.compute_loss(model, batch, workload.Config(brake_gamma=0.5))[0])


def test_metrics_per_task_and_their_means(workload, data):
    meta = shards.read_meta(data)
    labels = split_rows(data, "val")["labels"].numpy()
    perfect = workload.compute_metrics(labels.copy(), labels, meta)
    present = [t for k, t in enumerate(meta["target_names"]) if labels[:, k].any()]
    assert all(perfect[f"val_auc_pr_{t}"] == 1.0 and perfect[f"val_f1_{t}"] == 1.0 for t in present)
    noise = workload.compute_metrics(np.random.default_rng(0).random(labels.shape), labels, meta)
    assert noise["val_auc_pr"] < 0.6 and noise["val_loss"] > perfect["val_loss"]
    assert set(noise) <= set(workload.METRICS)


@pytest.mark.slow
def test_the_shipped_spec_sweeps_all_twelve_architectures(ray_session, data, tmp_path):
    s = spec.load(EXAMPLE / "spec.yaml", [f"data.path={data}", f"storage_path={tmp_path / 'results'}",
                                          "search.num_samples=1", "fixed.epochs=2", "scheduler.grace_period=1",
                                          "fixed.warmup_epochs=0"])
    experiment_dir = sweep.run(s)
    trials = store.load(experiment_dir).trials
    assert len(trials) == 12
    assert len(set(zip(trials["encoder"], trials["fusion"], trials["decoder"]))) == 12
    assert set(trials["status"]) <= {"finished", "stopped by ASHA"}, trials[["status", "error"]]
    assert np.isfinite(trials["best_val_auc_pr"]).all()
    # a constant score's AUC-PR is the positive rate: the champion must rank better than that
    chance = float(split_rows(data, "val")["labels"].mean(dim=0).mean())
    assert trials["best_val_auc_pr"].max() > chance + 0.05, (trials["best_val_auc_pr"].max(), chance)
    # The champion exports with its three inputs and predicts the validation split again.
    export.export(experiment_dir, tmp_path / "champion")
    _, scores = export.predict(tmp_path / "champion", data)
    assert scores["val_auc_pr"] == pytest.approx(trials["best_val_auc_pr"].max(), abs=1e-4)


@pytest.mark.slow
def test_a_torch_trainer_with_two_ddp_workers_trains_it(ray_session, data, tmp_path):
    s = spec.load(EXAMPLE / "spec.yaml", [
        f"data.path={data}", f"storage_path={tmp_path / 'results'}", "search.num_samples=1", "fixed.epochs=2",
        "scheduler.type=fifo", "resources.workers_per_trial=2", "resources.max_concurrent_trials=1",
        "params.encoder.values=[attention]", "params.fusion.values=[query]", "params.decoder.values=[transformer]"])
    assert s.executor == "torch_trainer"
    trials = store.load(sweep.run(s)).trials
    assert list(trials["status"]) == ["finished"], trials[["status", "error"]]
    assert trials["epochs_run"].tolist() == [2] and np.isfinite(trials["best_val_auc_pr"]).all()
