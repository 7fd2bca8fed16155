"""A PyTorch model as ONNX: exported, proven on the val split with onnxruntime, timed.

`model.onnx` takes the same inputs as `model.pt`, named after the batch columns
`model_inputs(meta)` lists (a dynamic first axis, `rows`), and gives one output, `outputs`:

    import onnxruntime
    session = onnxruntime.InferenceSession("model.onnx")
    outputs, = session.run(None, {"site_id": site_id, "features": features})

The graph comes from torch's TorchScript-based exporter (`dynamo=False`): the torch.export-based
one needs onnxscript, which `raysweep[onnx]` does not install, and tracing is how `model.pt` is
made too, so both files hold the same recorded graph. The export is refused unless onnxruntime's
outputs are within `TOLERANCE` of the eager model's on every row of the val split.

onnx and onnxruntime are imported when an ONNX export or prediction asks for them
(`pip install 'raysweep[onnx]'`), so the rest of raysweep runs without them.
"""

from __future__ import annotations

import importlib
import io
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from raysweep.errors import UserError
from raysweep.trainables import torchscript
from raysweep.trainables.session import Columns
from raysweep.training import loop

ONNX_FILE = "model.onnx"
OUTPUT_NAME = "outputs"
BATCH_AXIS = "rows"
OPSET = 17          # onnxruntime >= 1.20 (the extra's floor) runs it; LSTM, attention and LayerNorm export at it
TOLERANCE = 1e-4    # the largest absolute difference from the eager model an exported graph may show


def require() -> Any:
    """onnxruntime (after onnx), or the one line that says how to install them."""
    try:
        importlib.import_module("onnx")
        return importlib.import_module("onnxruntime")
    except ImportError as exc:
        raise UserError(f"ONNX export and prediction need onnx and onnxruntime ({exc.name} is not installed): "
                        "pip install 'raysweep[onnx]'") from None


@dataclass(frozen=True)
class Difference:
    """The largest absolute difference between the graph's outputs and the eager model's."""

    value: float
    row: int
    rows: int        # the rows compared


def session(graph: bytes | str, ort: Any):
    """An onnxruntime session on the CPU that logs only errors (its warnings name graph internals)."""
    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(graph, sess_options=options, providers=["CPUExecutionProvider"])


def _graph(model: torch.nn.Module, names: list[str], inputs: list[torch.Tensor]) -> bytes:
    """The ONNX graph of `model`, traced on `inputs`, with every input's first axis dynamic."""
    buffer = io.BytesIO()
    fastpath = torch.backends.mha.get_fastpath_enabled()
    try:
        # Without gradients, attention and transformer layers take fused kernels
        # (aten::_native_multi_head_attention) that have no ONNX form: traced without them, the
        # same layers export as the ops they are made of.
        torch.backends.mha.set_fastpath_enabled(False)
        with torch.no_grad(), warnings.catch_warnings():
            # The exporter warns that it is the legacy one (see the module docstring), that tracing
            # takes shapes as constants, and that an LSTM traced at one batch size may not run at
            # another: the comparison on the val split's batches and on one row is what proves it.
            warnings.simplefilter("ignore")
            torch.onnx.export(model, tuple(inputs), buffer, dynamo=False, opset_version=OPSET,
                              input_names=names, output_names=[OUTPUT_NAME],
                              dynamic_axes={name: {0: BATCH_AXIS} for name in [*names, OUTPUT_NAME]})
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)
    return buffer.getvalue()


def _feed(names: list[str], chunk: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    return {name: np.ascontiguousarray(chunk[name].numpy()) for name in names}


def difference(graph_session, module: Any, model: torch.nn.Module, names: list[str],
               rows: dict[str, torch.Tensor]) -> Difference:
    """The graph against the eager model (`module.predict`) over `rows`, a chunk at a time, and
    on one row alone (a batch size baked into the graph shows there)."""
    n = len(rows[names[0]])
    starts = [(i, min(i + torchscript.PREDICT_CHUNK_ROWS, n)) for i in range(0, n, torchscript.PREDICT_CHUNK_ROWS)]
    worst = Difference(0.0, 0, n)
    with torch.no_grad():
        for start, end in [*starts, (0, 1)]:
            chunk = {k: v[start:end] for k, v in rows.items()}
            eager = module.predict(model, chunk).float().numpy().reshape(end - start, -1)
            graph = graph_session.run([OUTPUT_NAME], _feed(names, chunk))[0].astype(np.float32).reshape(eager.shape)
            # NaN where both give NaN is agreement; NaN on one side only is as far apart as can be.
            gaps = np.where(np.isnan(graph) & np.isnan(eager), 0.0, np.nan_to_num(np.abs(graph - eager), nan=np.inf))
            if gaps.size and gaps.max() > worst.value:
                worst = Difference(float(gaps.max()), start + int(gaps.max(axis=1).argmax()), n)
    return worst


def export(module: Any, model: torch.nn.Module, meta: dict, example: Columns, check: Columns, to: Path) -> dict:
    """Export `model` as ONNX (traced on the example rows), check it with onnxruntime against the
    eager model on every row of `check` (the val split), save it into `to`, time it; returns the
    card's entries (files, onnx).

    Raises:
        UserError: onnx or onnxruntime is not installed.
        RuntimeError: the graph's outputs differ from the eager model's by more than TOLERANCE;
            nothing is written.
    """
    ort = require()
    names = module.model_inputs(meta)
    rows = torchscript.tensors(example)
    graph = _graph(torchscript.Positional(model, names, module.predict), names, [rows[n] for n in names])
    graph_session = session(graph, ort)
    worst = difference(graph_session, module, model, names, torchscript.tensors(check))
    if not worst.value <= TOLERANCE:
        raise RuntimeError(f"the ONNX graph disagrees with the eager model on the val split: max absolute difference "
                           f"{worst.value:.3g} (row {worst.row} of {worst.rows}) > {TOLERANCE:g}; "
                           "export TorchScript instead (--format torchscript)")
    to.mkdir(parents=True, exist_ok=True)
    (to / ONNX_FILE).write_bytes(graph)
    one = _feed(names, {k: v[:1] for k, v in rows.items()})
    latency_s = loop.median_seconds(lambda: graph_session.run(None, one), repeats=50, warmup=5)
    batch = {k: np.resize(v, (1024, *v.shape[1:])) for k, v in one.items()}
    batch_s = loop.median_seconds(lambda: graph_session.run(None, batch), repeats=3, warmup=1)
    return {"files": [ONNX_FILE],
            "onnx": {"file": ONNX_FILE, "opset": OPSET, "exporter": f"torch.onnx.export(dynamo=False), torch {torch.__version__}",
                     "input_names": names, "output_name": OUTPUT_NAME, "batch_axis": BATCH_AXIS,
                     "load": how_to_load(names),
                     "check": {"split": "val", "rows": worst.rows, "max_abs_diff": worst.value, "tolerance": TOLERANCE,
                               "against": "the eager PyTorch model (the workload's predict)"},
                     "inference": {"device": "cpu", "runtime": f"onnxruntime {ort.__version__}",
                                   "latency_ms_one_row": round(latency_s * 1e3, 4),
                                   "throughput_rows_per_s": round(1024 / batch_s, 1)}}}


def how_to_load(names: list[str]) -> str:
    """One line that loads and runs model.onnx, its inputs by name."""
    feed = ", ".join(f"{n!r}: {n}" for n in names)
    return f"onnxruntime.InferenceSession({ONNX_FILE!r}).run(None, {{{feed}}})[0]"


def run_exported(model_dir: Path, card: dict, columns: Columns) -> np.ndarray:
    """An exported ONNX model's outputs on a split's columns (as onnxruntime gives them, float32)."""
    graph_session = session(str(Path(model_dir) / ONNX_FILE), require())
    inputs = card["inputs"]
    rows = {i["name"]: np.asarray(columns[i["name"]], dtype=i.get("dtype")) for i in inputs}
    n = len(next(iter(rows.values())))
    return np.concatenate([graph_session.run([OUTPUT_NAME], {k: np.ascontiguousarray(v[i:i + torchscript.PREDICT_CHUNK_ROWS])
                                                             for k, v in rows.items()})[0]
                           for i in range(0, n, torchscript.PREDICT_CHUNK_ROWS)]).astype(np.float32)
