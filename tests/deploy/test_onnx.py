"""ONNX export (`raysweep export --format onnx|both`): every workload that exports TorchScript
exports an ONNX graph that onnxruntime runs within 1e-4 of the eager model on the val split, and
`predict` runs an ONNX-only export as it runs the TorchScript one."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime
import pandas as pd
import pytest
import torch

from raysweep import cli
from raysweep.analysis import champion
from raysweep.datasets import glideator, shards
from raysweep.datasets import tabular as tabular_data
from raysweep.datasets import trajectory as trajectory_data
from raysweep.deploy import export
from raysweep.errors import UserError
from raysweep.trainables import kind_of, onnx_export, torchscript
from raysweep.trainables.own_loop import STATE_FILE as OWN_STATE_FILE
from raysweep.training import checkpoint, loop
from raysweep.workloads import load_workload

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
TOLERANCE = 1e-4   # the bound, asserted here as well as at export time
MODELLING = '''
def build_model(cfg, meta):
    return torch.nn.Sequential(torch.nn.Linear(4, cfg.hidden_units), torch.nn.Tanh(), torch.nn.Linear(cfg.hidden_units, 1))

def predict(model, batch):
    return model(batch["features"])

def model_inputs(meta):
    return ["features"]
'''


def _table(out: Path, task: str, targets: list[str]) -> None:
    """A small table with a categorical column, imported for the tabular workload."""
    rng = np.random.default_rng(0)
    n = 240
    frame = pd.DataFrame({"x1": rng.normal(size=n), "x2": rng.uniform(-2, 2, n),
                          "city": rng.choice(["oslo", "rome", "lima"], n), "day": np.repeat(np.arange(24), n // 24)})
    signal = 2 * frame.x1 + 0.5 * frame.x2
    frame["y"] = signal + rng.normal(0, 0.2, n)
    frame["band"] = pd.cut(signal, [-np.inf, -1, 1, np.inf], labels=["low", "mid", "high"]).astype(str)
    frame["gt0"], frame["gt1"] = (signal > 0).astype(int), (signal > 1).astype(int)
    frame[["x1", "x2", "city", "day", *targets]].to_csv(out.with_suffix(".csv"), index=False)
    tabular_data.import_table(out.with_suffix(".csv"), out, target=targets, task=task, categorical=["city"],
                              split_by="day", val_fraction=0.25)


def _own_loop(tmp: Path) -> str:
    (tmp / "own_model.py").write_text((EXAMPLES / "own_loop" / "own_loop.py").read_text() + MODELLING)
    return str(tmp / "own_model.py")


def _example(name: str):
    return lambda tmp: str(EXAMPLES / name / f"{name}.py")


# Each workload that exports TorchScript, in the architectures it can be swept over:
# (the workload's reference, its data written into a directory, the Config's fields).
CASES = {
    "glideator": (lambda tmp: "glideator", lambda out, module: glideator.write(out, n_sites=3, n_days=80, seed=1),
                  {"deep_hidden_units": [16, 8], "site_embedding_dim": 4}),
    "tabular-multiclass": (lambda tmp: "tabular", lambda out, module: _table(out, "multiclass", ["band"]),
                           {"hidden_units": (16, 8)}),
    "tabular-multilabel": (lambda tmp: "tabular", lambda out, module: _table(out, "multilabel", ["gt0", "gt1"]),
                           {"hidden_units": (16,)}),
    "tabular-regression": (lambda tmp: "tabular", lambda out, module: _table(out, "regression", ["y"]),
                           {"hidden_units": (16,)}),
    "trajectory": (lambda tmp: "trajectory", lambda out, module: trajectory_data.write(
        out, seed=5, layers_per_part=3, seconds_per_layer=16.0, sequence_length=10, stride=8), {"hidden_size": 8}),
    "battery-lstm": (_example("battery"), lambda out, module: module.DATA.write(
        out_dir=out, n_cells=12, window=10, horizon=4, stride=10), {"model": "lstm", "hidden_size": 8}),
    "battery-mlp": (_example("battery"), lambda out, module: module.DATA.write(
        out_dir=out, n_cells=12, window=10, horizon=4, stride=10), {"model": "mlp", "hidden_size": 8}),
    "linear": (_example("linear"), lambda out, module: module.DATA.write(out_dir=out), {}),
    "own_loop-with-a-model": (_own_loop, lambda out, module: module.DATA.write(out_dir=out), {}),
    **{f"brake_coast-{e}-{f}-{d}": (_example("brake_coast"), lambda out, module: module.DATA.write(
        out_dir=out, n_drives=6, seconds=30), {"encoder": e, "fusion": f, "decoder": d, "embedding_dim": 8,
                                               "hidden_dim": 8, "attention_heads": 2, "decoder_layers": 1})
       for e, f, d in (("simple", "concat", "transformer"), ("attention", "cross_attention", "lstm"),
                       ("attention", "query", "transformer"))},   # each encoder, fusion and decoder
}


def _checkpoint(kind_name: str, model: torch.nn.Module, directory: Path) -> Path:
    """A trial's checkpoint holding `model`, as the kind's trials write it."""
    directory.mkdir()
    if kind_name == "own_loop":
        torch.save({"model": model.state_dict(), "epoch": 1}, directory / OWN_STATE_FILE)
        checkpoint.seal(directory, [{"epoch": 1}])
    else:
        checkpoint.save(directory, {checkpoint.BEST_FILE: {"model": model.state_dict(), "epoch": 1, "metrics": {}}})
    return directory


def _timed_once(call, *, repeats: int, warmup: int = 3) -> float:
    """loop.median_seconds for these tests: one timed call (the export's latency is not under test)."""
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


@pytest.mark.slow   # twelve models exported and checked: seconds each
@pytest.mark.parametrize("case", list(CASES))
def test_every_torchscript_workload_exports_onnx_within_1e4_of_the_eager_model(case, tmp_path, monkeypatch):
    monkeypatch.setattr(loop, "median_seconds", _timed_once)
    reference, write, fields = CASES[case]
    workload = load_workload(reference(tmp_path))
    write(tmp_path / "data", workload)
    meta = shards.read_meta(tmp_path / "data")
    cfg = workload.Config(**fields)
    torch.manual_seed(0)
    model = workload.build_model(cfg, meta).eval()
    kind = kind_of(workload)
    val = champion.read_columns(tmp_path / "data", meta, "val")
    to = tmp_path / "model"
    entries = kind.export(workload, cfg, meta, _checkpoint(kind.name, model, tmp_path / "checkpoint"), to,
                          {k: v[:8] for k, v in val.items()}, formats=("torchscript", "onnx"), check=val)

    names = workload.model_inputs(meta)
    assert entries["formats"] == ["torchscript", "onnx"]
    assert entries["files"] == ["model.pt", "model.onnx", "state_dict.pt"]
    assert set(entries["loading"]) == set(entries["files"]) and "onnxruntime.InferenceSession" in entries["loading"]["model.onnx"]
    assert entries["onnx"]["input_names"] == names and entries["onnx"]["check"]["rows"] == len(val[names[0]])
    # onnxruntime against the eager model on every val row, checked here as well as by the export.
    session = onnxruntime.InferenceSession(str(to / "model.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == names and [o.name for o in session.get_outputs()] == ["outputs"]
    graph, = session.run(None, {n: val[n] for n in names})
    eager = torchscript.in_chunks(lambda chunk: workload.predict(model, chunk), torchscript.tensors(val))
    assert graph.shape == eager.shape and len(graph) > 8, "traced on 8 rows, the graph runs all val rows at once"
    assert np.abs(graph - eager).max() <= TOLERANCE
    assert entries["onnx"]["check"]["max_abs_diff"] == pytest.approx(float(np.abs(graph - eager).max()), abs=TOLERANCE)
    # What predict runs from either file agrees.
    card = {"inputs": entries["inputs"]}
    assert np.abs(onnx_export.run_exported(to, card, val) - torchscript.run_exported(to, card, val)).max() <= TOLERANCE


def test_a_graph_off_the_eager_model_is_refused_with_its_difference_and_nothing_written(tmp_path, monkeypatch):
    workload = load_workload(str(EXAMPLES / "linear" / "linear.py"))
    workload.DATA.write(out_dir=tmp_path / "data")
    meta = shards.read_meta(tmp_path / "data")
    val = champion.read_columns(tmp_path / "data", meta, "val")
    model = workload.build_model(workload.Config(), meta).eval()
    monkeypatch.setattr(onnx_export, "TOLERANCE", -1.0)   # any graph is "off" by more than a negative bound
    with pytest.raises(RuntimeError, match=r"max absolute difference \S+ \(row \d+ of 1000\) > -1; export TorchScript"):
        onnx_export.export(workload, model, meta, val, val, tmp_path / "model")
    assert not (tmp_path / "model").exists()


def test_onnx_without_its_packages_says_how_to_install_them(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)   # `import onnxruntime` raises ImportError
    with pytest.raises(UserError, match=r"onnxruntime is not installed\): pip install 'raysweep\[onnx\]'"):
        export.export(tmp_path, tmp_path / "model", export_format="onnx")
    assert not (tmp_path / "model").exists()


@pytest.mark.slow
def test_export_both_and_onnx_only_predict_alike(experiment, tiny_data, tmp_path, capsys):
    both, only = tmp_path / "both", tmp_path / "onnx"
    assert cli.main(["export", str(experiment), "--to", str(both), "--format", "both"]) == 0
    assert "ONNX within" in capsys.readouterr().out
    assert cli.main(["export", str(experiment), "--to", str(only), "--format", "onnx"]) == 0
    card = json.loads((both / "model_card.json").read_text())
    assert card["files"] == ["model.pt", "model.onnx", "state_dict.pt", "meta.json", "model_card.json"]
    assert set(card["loading"]) == set(card["files"]) == {p.name for p in both.iterdir()}
    val_rows = len(champion.read_columns(tiny_data, shards.read_meta(tiny_data), "val")["labels"])
    assert card["onnx"]["check"]["rows"] == val_rows and card["onnx"]["check"]["max_abs_diff"] <= TOLERANCE
    only_card = json.loads((only / "model_card.json").read_text())
    assert only_card["formats"] == ["onnx"] and not (only / "model.pt").exists()
    assert only_card["inference"] == only_card["onnx"]["inference"]

    scripted, scripted_metrics = export.predict(both, tiny_data)
    graph, graph_metrics = export.predict(only, tiny_data)
    assert list(graph.columns) == list(scripted.columns) and len(graph) == val_rows
    assert np.abs(graph.to_numpy() - scripted.to_numpy()).max() <= TOLERANCE
    assert graph_metrics["val_loss"] == pytest.approx(scripted_metrics["val_loss"], abs=1e-5)
    chosen, _ = export.predict(both, tiny_data, runtime_format="onnx")
    assert np.array_equal(chosen.to_numpy(), graph.to_numpy()), "--format onnx runs model.onnx where both are"
    assert cli.main(["predict", str(only), "--data", str(tiny_data), "--format", "torchscript"]) == 2
    assert "holds no torchscript model (model.pt); it holds onnx" in capsys.readouterr().err

    # The card's ONNX line, in a fresh interpreter that never imports raysweep or torch.
    snippet = ("import numpy as np, onnxruntime\ns = onnxruntime.InferenceSession(%r)\n"
               "print(s.run(None, {'site_id': np.zeros(3, np.int32), 'features': np.zeros((3, 45), np.float32)})[0].shape)"
               ) % str(only / "model.onnx")
    result = subprocess.run([sys.executable, "-c", snippet], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "(3, 11)"


@pytest.mark.slow
def test_a_refused_onnx_export_leaves_no_directory(experiment, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(onnx_export, "TOLERANCE", -1.0)
    assert cli.main(["export", str(experiment), "--to", str(tmp_path / "refused"), "--format", "both"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "its model cannot be exported: the ONNX graph disagrees" in err
    assert list(tmp_path.iterdir()) == [], "neither the directory nor its draft is left"
