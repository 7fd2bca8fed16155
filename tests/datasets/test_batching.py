"""Arrow blocks -> torch batches: sizes, coverage, shuffling, reproducibility, column types."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
import torch

from raysweep.datasets.batching import arrow_to_torch, torch_batches


def blocks(sizes, width=3):
    start = 0
    for n in sizes:
        ids = np.arange(start, start + n, dtype=np.int64)
        vectors = np.repeat(ids[:, None].astype(np.float32), width, axis=1)
        yield pa.table({"id": ids, "x": pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel()), width)})
        start += n


@pytest.mark.parametrize("shuffle", [0, 50])
def test_every_row_once_in_full_batches(shuffle):
    out = list(torch_batches(blocks([37, 0, 64, 5]), batch_size=16, shuffle_buffer=shuffle, seed=1))
    sizes = [len(b["id"]) for b in out]
    assert sizes[:-1] == [16] * (len(sizes) - 1) and sum(sizes) == 106
    ids = torch.cat([b["id"] for b in out])
    assert sorted(ids.tolist()) == list(range(106))
    for b in out:  # rows stay aligned across columns
        assert torch.equal(b["x"][:, 0].long(), b["id"]) and b["x"].shape[1] == 3


def test_unshuffled_keeps_order_and_shuffled_does_not():
    plain = torch.cat([b["id"] for b in torch_batches(blocks([40, 40]), batch_size=16)])
    assert plain.tolist() == list(range(80))
    mixed = torch.cat([b["id"] for b in torch_batches(blocks([40, 40]), batch_size=16, shuffle_buffer=80, seed=3)])
    assert mixed.tolist() != list(range(80))


def test_same_seed_same_batches():
    def ids(seed):
        return [b["id"].tolist() for b in torch_batches(blocks([30, 30]), batch_size=8, shuffle_buffer=20, seed=seed)]
    assert ids(5) == ids(5)
    assert ids(5) != ids(6)


def test_tensor_extension_and_read_only_columns():
    from ray.data._internal.tensor_extensions.arrow import ArrowTensorArray

    values = np.arange(12, dtype=np.float32).reshape(4, 3)
    table = pa.table({"x": ArrowTensorArray.from_numpy(values)})
    batch = arrow_to_torch(table)
    assert torch.equal(batch["x"], torch.from_numpy(values))
    # Arrow's zero-copy views are read-only; the batch must own writable memory instead.
    source = np.arange(4, dtype=np.float32)
    owned = arrow_to_torch(pa.table({"v": pa.array(source)}))["v"]
    assert owned.numpy().flags.writeable
    owned.add_(1)
    assert source.tolist() == [0, 1, 2, 3], "an in-place op must not reach the source buffer"
