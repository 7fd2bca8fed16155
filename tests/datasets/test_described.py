"""Shards written elsewhere become a dataset in place: WebDataset shards as the webdataset library
writes them (.npy, .cls, .json, .txt, .pth, .png members) and Parquet files without a meta.json,
described by `raysweep data describe DIR --target COL` and swept without a copy."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
import webdataset as wds
import yaml
from PIL import Image

from raysweep import cli, spec
from raysweep.analysis import store
from raysweep.datasets import webdataset
from raysweep.phases import sweep

WORKLOAD = '''
from dataclasses import dataclass
import torch
from raysweep.workloads import DataCommand, TrainingConfig

TASK = "binary"
METRICS = {"val_loss": "min", "train_loss": "min"}
DATA = DataCommand("described", "shards written by the webdataset library", lambda out_dir, **_: {})

@dataclass(frozen=True)
class Config(TrainingConfig):
    hidden_units: int = 8

def build_model(cfg, meta):
    return torch.nn.Sequential(torch.nn.Linear(6, cfg.hidden_units), torch.nn.ReLU(), torch.nn.Linear(cfg.hidden_units, 1))

def predict(model, batch):
    image = batch["img"].float().mean(dim=(1, 2)) / 255          # (n, 3): the png, decoded
    return model(torch.cat([batch["input"], image[:, :2]], dim=1)).squeeze(1)

def compute_loss(model, batch, cfg):
    outputs = predict(model, batch)
    return torch.nn.functional.binary_cross_entropy_with_logits(outputs, batch["cls"].float()), outputs

def compute_metrics(outputs, labels, meta):
    p = 1 / (1 + torch.exp(-torch.as_tensor(outputs)))
    return {"val_loss": float(torch.nn.functional.binary_cross_entropy(p, torch.as_tensor(labels)))}

def model_inputs(meta):
    return ["input", "img"]
'''


def png(value: int) -> bytes:
    out = io.BytesIO()
    Image.fromarray(np.full((4, 4, 3), value, np.uint8)).save(out, format="PNG")
    return out.getvalue()


def write_with_the_webdataset_library(root: Path, rows: dict[str, int], seed: int = 0) -> None:
    g = np.random.default_rng(seed)
    for split, n in rows.items():
        (root / split).mkdir(parents=True)
        for shard in range(2):
            with wds.TarWriter(str(root / split / f"part-{shard:05d}.tar")) as sink:
                for i in range(n // 2):
                    x = g.normal(size=4).astype(np.float32)
                    label = int(x[0] + x[1] > 0)
                    sink.write({"__key__": f"{split}{shard}_{i:06d}", "input.npy": x, "cls": label,
                                "weight.json": [0.5, 1.0], "score.txt": f"{x[2]:.3f}",
                                "t.pth": torch.tensor([float(label), 2.0]), "img.png": png(40 * label + 10)})


def test_the_webdataset_librarys_members_decode_to_columns(tmp_path):
    write_with_the_webdataset_library(tmp_path, {"train": 8})
    table = webdataset.read_tar(tmp_path / "train" / "part-00000.tar")
    assert table.column_names == ["cls", "img", "input", "score", "t", "weight"]   # the library's member order
    assert np.asarray(table["input"].to_pylist()).shape == (4, 4) and table["cls"].type == pa.int64()
    assert table["weight"].to_pylist()[0] == [0.5, 1.0] and table["t"].to_pylist()[0][1] == 2.0
    assert np.asarray(table["img"].to_pylist()).shape == (4, 4, 4, 3)


def test_describe_writes_the_meta_json_and_validate_checks_it(tmp_path, capsys):
    data = tmp_path / "shards"
    write_with_the_webdataset_library(data, {"train": 40, "val": 20})
    assert cli.main(["data", "describe", str(data), "--target", "cls", "--task", "binary"]) == 0
    meta = json.loads((data / "meta.json").read_text())
    assert meta["columns"]["labels"] == "cls" and meta["rows"] == {"train": 40, "val": 20}
    assert meta["format"] == "webdataset" and "(webdataset; rows: train 40, val 20; target cls" in capsys.readouterr().out
    assert cli.main(["data", "describe", str(data), "--target", "cls"]) == 2
    assert "exists already" in capsys.readouterr().err
    assert cli.main(["data", "describe", str(data), "--target", "klass", "--overwrite"]) == 2
    assert "--target klass: the shards hold no such column; they hold cls, img, input, score" in capsys.readouterr().err


def test_a_parquet_directory_without_meta_json_is_described_in_place(tmp_path, capsys):
    for split, n in (("train", 30), ("val", 10)):
        (tmp_path / "p" / split).mkdir(parents=True)
        x = np.arange(n, dtype=np.float64)
        pq.write_table(pa.table({"x1": x, "x2": x * 2, "y": x + 1}), tmp_path / "p" / split / "a.parquet")
    before = sorted(p.name for p in (tmp_path / "p").rglob("*"))
    assert cli.main(["data", "describe", str(tmp_path / "p"), "--target", "y", "--task", "regression"]) == 0
    assert sorted(p.name for p in (tmp_path / "p").rglob("*")) == sorted(before + ["meta.json"]), "nothing copied"
    meta = json.loads((tmp_path / "p" / "meta.json").read_text())
    assert meta["columns"] == {"labels": "y", "x1": "x1", "x2": "x2"} and meta["feature_names"] == ["x1", "x2"]
    assert cli.main(["data", "describe", str(tmp_path / "nothing"), "--target", "y"]) == 2
    assert "no such directory" in capsys.readouterr().err


@pytest.mark.slow
def test_shards_the_webdataset_library_wrote_are_swept(ray_session, tmp_path):
    data = tmp_path / "shards"
    write_with_the_webdataset_library(data, {"train": 400, "val": 100})
    assert cli.main(["data", "describe", str(data), "--target", "cls", "--task", "binary"]) == 0
    (tmp_path / "described.py").write_text(WORKLOAD)
    raw = {"name": "described", "workload": "./described.py", "data": {"path": str(data)}, "metric": "val_loss",
           "mode": "min", "fixed": {"epochs": 3, "batch_size": 50, "learning_rate": 0.05},
           "params": {"hidden_units": {"type": "choice", "values": [4, 8]}}, "search": {"algorithm": "grid"},
           "storage_path": str(tmp_path / "results")}
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(raw))
    trials = store.load(sweep.run(spec.load(tmp_path / "spec.yaml"))).trials
    assert list(trials["status"]) == ["finished", "finished"], trials[["status", "error"]]
    assert (trials["best_val_loss"] < trials["last_train_loss"].max() + 1).all() and trials["best_val_loss"].min() < 0.6
