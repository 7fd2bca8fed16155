"""The pieces of `raysweep champion` that need no sweep: data fingerprints, the folder registry,
where a registry is found, and the arguments' rules."""

from __future__ import annotations

import json
import shutil
from datetime import timedelta
from pathlib import Path

import pytest

from raysweep.datasets import fingerprint, glideator
from raysweep.deploy import champions, registry
from raysweep.deploy.local_registry import LocalRegistry
from raysweep.errors import UserError

TINY = dict(n_sites=3, n_days=60, rows_per_shard=40, test_fraction=0.2)


@pytest.fixture
def data(tmp_path) -> Path:
    out = tmp_path / "glideator"
    glideator.write(out, **TINY)
    return out


def test_a_copy_has_the_same_fingerprint_and_a_changed_shard_another(data, tmp_path):
    first = fingerprint.fingerprints(data)
    assert len(first["val"]) == 64 and first["test"] and first["val"] != first["test"]
    copy = tmp_path / "elsewhere"
    shutil.copytree(data, copy)
    again = fingerprint.fingerprints(copy)
    assert (again["val"], again["test"]) == (first["val"], first["test"]) and again["path"] != first["path"]
    shard = sorted((copy / "val").iterdir())[0]
    shard.write_bytes(shard.read_bytes() + b"\0")
    changed = fingerprint.fingerprints(copy)
    assert changed["val"] != first["val"] and changed["test"] == first["test"]
    for path in (copy / "test").iterdir():
        path.unlink()
    shutil.rmtree(copy / "test")
    assert fingerprint.fingerprints(copy)["test"] is None


def test_the_meta_is_part_of_the_val_fingerprint(data):
    before = fingerprint.fingerprints(data)["val"]
    meta = json.loads((data / "meta.json").read_text())
    (data / "meta.json").write_text(json.dumps({**meta, "note": "scalers refitted"}))
    assert fingerprint.fingerprints(data)["val"] != before


def record(trial: str, test: float, **more) -> dict:
    return {"experiment": "/r/exp", "trial": trial, "workload": "families", "metric": "val_fbeta", "mode": "max",
            "validation": 0.9, "test_metric": "fbeta_at_threshold", "test": test,
            "test_scores": {"fbeta_at_threshold": test}, "data": {"path": "/d", "val": "v", "test": "t"}, **more}


def model_dir(tmp_path: Path, text: str) -> Path:
    folder = tmp_path / f"model-{text}"
    folder.mkdir()
    (folder / "model_card.json").write_text(json.dumps({"made": text}))
    return folder


def test_the_folder_registry_keeps_versions_and_moves_the_alias(tmp_path):
    kept = LocalRegistry(tmp_path / "registry")
    assert kept.current("families-t") is None and kept.versions() == []
    first = kept.register("families-t", record("a", 0.8), model_dir(tmp_path, "a"))
    second = kept.register("families-t", record("b", 0.9), model_dir(tmp_path, "b"))
    other = kept.register("mlp-t", record("c", 0.5), model_dir(tmp_path, "c"))
    assert (first.version, second.version, other.version) == (1, 2, 1)
    again = LocalRegistry(tmp_path / "registry")   # read back from the file
    assert again.current("families-t").version == 2 and again.current("families-t").record["trial"] == "b"
    listed = again.versions()
    assert [(v.name, v.version, v.champion) for v in listed] == [("families-t", 1, False), ("families-t", 2, True),
                                                                 ("mlp-t", 1, True)]
    version, folder = again.fetch("families-t")
    assert version.version == 2 and json.loads((folder / "model_card.json").read_text()) == {"made": "b"}
    assert json.loads((Path(listed[0].model) / "model_card.json").read_text()) == {"made": "a"}   # kept, not replaced
    with pytest.raises(UserError, match="no registered model 'nope'.*families-t, mlp-t"):
        again.fetch("nope")


def test_a_corrupt_registry_file_is_one_clear_error(tmp_path):
    (tmp_path / "registry.json").write_text("{not json")
    with pytest.raises(UserError, match="registry.json is not valid JSON"):
        LocalRegistry(tmp_path).versions()


def test_where_the_registry_is_found(tmp_path, monkeypatch):
    monkeypatch.delenv(registry.ENVIRONMENT, raising=False)
    results = tmp_path / "results"
    with pytest.raises(UserError, match="no registry found"):
        registry.find(None, results)
    (results / "mlflow.db").parent.mkdir()
    (results / "mlflow.db").write_text("")
    assert registry.find(None, results) == f"sqlite:///{(results / 'mlflow.db').resolve()}"
    LocalRegistry(results / "registry").register("m", record("a", 1.0), model_dir(tmp_path, "a"))
    assert registry.find(None, results) == str(results / "registry")
    monkeypatch.setenv(registry.ENVIRONMENT, "/elsewhere")
    assert registry.find(None, results) == "/elsewhere" and registry.find("sqlite:///x.db", results) == "sqlite:///x.db"
    assert registry.is_mlflow("http://127.0.0.1:5000") and not registry.is_mlflow("results/registry")
    with pytest.raises(UserError, match="a bucket is not one"):
        registry.open_registry("s3://bucket/registry")


def test_one_registered_model_per_workload_and_dataset():
    assert registry.model_name("families", "/data/my_table/") == "families-my_table"
    assert registry.model_name("/home/me/brake model.py", "s3://b/runs v2") == "brake_model-runs_v2"
    assert registry.model_name("my_project.models.brake", "/d/x") == "brake-x"


def test_the_test_split_names_a_metric_as_evaluate_scores_it():
    scores = {"auc": 0.9, "fbeta_at_best_test_threshold": 0.95, "fbeta_at_threshold": 0.93, "loss": 0.2}
    assert champions.test_metric_of("val_fbeta", scores) == "fbeta_at_threshold"
    assert champions.test_metric_of("val_auc", scores) == "auc"
    assert champions.test_metric_of("val_loss", {"loss": 1.0, "mae": 2.0}) == "loss"
    with pytest.raises(UserError, match="hold no r2.*--metric one of val_auc"):
        champions.test_metric_of("val_r2", scores)


@pytest.mark.parametrize("text, span", [("14d", timedelta(days=14)), ("36h", timedelta(hours=36)),
                                        ("2w", timedelta(weeks=2)), ("90m", timedelta(minutes=90))])
def test_since_takes_a_number_and_a_unit(text, span):
    assert champions.parse_since(text) == span


def test_a_since_without_a_unit_is_refused():
    with pytest.raises(UserError, match="--since 14: give a number and a unit"):
        champions.parse_since("14")
