"""A PyTorch model as TorchScript: traced, proven to predict what the eager model predicts, timed.

The built-in loop's models and an own loop's (where it gives `build_model`, `predict` and
`model_inputs`) are exported this way (trainables/pytorch_export.py, beside ONNX where asked):
`model.pt` runs without raysweep, its inputs positional in the order `model_inputs(meta)` names them.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from raysweep.trainables.session import Columns
from raysweep.training import loop

MODEL_FILE, STATE_FILE = "model.pt", "state_dict.pt"
PREDICT_CHUNK_ROWS = 4096


class Positional(torch.nn.Module):
    """Tensors in, in the order of `names`, so TorchScript needs no dict and no raysweep."""

    def __init__(self, model: torch.nn.Module, names: list[str], predict):
        super().__init__()
        self.model, self.names, self._predict = model, names, predict
        # In the model's mode: the ONNX exporter puts the wrapper back in its mode afterwards,
        # and a wrapper left in training mode would switch the model's dropout on with it.
        self.train(model.training)

    def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
        return self._predict(self.model, dict(zip(self.names, tensors)))


def tensors(columns: Columns) -> dict[str, torch.Tensor]:
    return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in columns.items()}


def in_chunks(predict_chunk, rows: dict[str, torch.Tensor], size: int = PREDICT_CHUNK_ROWS) -> np.ndarray:
    """Predictions over all rows, `size` at a time, without gradients, as float32 numpy."""
    n = len(next(iter(rows.values())))
    with torch.no_grad():
        return torch.cat([predict_chunk({k: v[i:i + size] for k, v in rows.items()})
                          for i in range(0, n, size)]).float().numpy()


def export(module: Any, model: torch.nn.Module, meta: dict, example: Columns, to: Path) -> dict:
    """Trace `model` on the example rows, check it against the eager model, save it into `to`;
    returns the card's entries (files, inputs, inference)."""
    names = module.model_inputs(meta)
    rows = tensors(example)
    inputs = [rows[n] for n in names]
    with torch.no_grad(), warnings.catch_warnings():
        # Tracing an LSTM or a transformer warns about shapes taken as constants; the comparison
        # with the eager model below is the check that matters, and it fails loudly. It runs on
        # the traced batch and on a smaller one, so a batch size baked into the trace shows.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        scripted = torch.jit.trace(Positional(model, names, module.predict), tuple(inputs), check_trace=False)
        for n in (len(inputs[0]), max(1, len(inputs[0]) // 2 - 1)):
            part = {k: t[:n] for k, t in rows.items()}
            if not torch.allclose(scripted(*[part[k] for k in names]), module.predict(model, part), rtol=1e-4, atol=1e-5):
                raise RuntimeError("the traced model disagrees with the eager one; please report this workload")
    to.mkdir(parents=True, exist_ok=True)
    scripted.save(str(to / MODEL_FILE))
    one = [t[:1] for t in inputs]
    latency_s = loop.median_seconds(lambda: scripted(*one), repeats=50, warmup=5)
    batch = [t.repeat((128,) + (1,) * (t.dim() - 1))[:1024] for t in inputs]
    batch_s = loop.median_seconds(lambda: scripted(*batch), repeats=5, warmup=1)
    return {"files": [MODEL_FILE],
            "inputs": inputs_of(names, inputs),
            "inference": {"device": "cpu", "runtime": f"torch {torch.__version__}", "torch_threads": torch.get_num_threads(),
                          "latency_ms_one_row": round(latency_s * 1e3, 4),
                          "throughput_rows_per_s": round(1024 / batch_s, 1)}}


def inputs_of(names: list[str], inputs: list[torch.Tensor]) -> list[dict]:
    """The card's `inputs`: each tensor's name, dtype and shape per row (first axis: any number of rows)."""
    return [{"name": n, "dtype": str(t.dtype).replace("torch.", ""), "shape": [-1, *t.shape[1:]]}
            for n, t in zip(names, inputs)]


def run_exported(model_dir: Path, card: dict, columns: Columns) -> np.ndarray:
    """An exported TorchScript model's outputs on a split's columns."""
    model = torch.jit.load(str(Path(model_dir) / MODEL_FILE))
    model.eval()
    names = [i["name"] for i in card["inputs"]]
    return in_chunks(lambda chunk: model(*[chunk[n] for n in names]), tensors(columns))


def sigmoid(outputs: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-outputs))
