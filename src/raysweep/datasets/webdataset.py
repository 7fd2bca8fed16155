"""Read a WebDataset `.tar` shard as one Arrow table, decoding each column in one vectorised step.

A shard holds one member per sample and column (`<key>.<column>.npy`, or `<key>.<column>.cls` for
an integer scalar; `shards._write_tar`). Decoding it sample by sample, one Python object per
member as Ray's `read_webdataset` does, ran at about 850 rows/s on the demo data, thousands of
times slower than the same rows as Parquet. Here the shard is read into memory once and:

- the member headers are checked all at once: the writer gives every sample the same members of
  the same sizes in blocks, so the headers sit at a fixed stride and numpy compares them in one
  pass (`_regular_layout`). A shard laid out otherwise (another writer, long names) is walked
  with `tarfile` instead, which also finds what is wrong with a corrupt or truncated one;
- the `.npy` members of one column share a header (same dtype and shape), checked byte for byte
  across rows; the values behind it become one array through a strided view of the shard;
- `.cls` text labels are parsed by one numpy cast.

The table has the column names, types and shapes `pyarrow.parquet.read_table` gives for the same
rows written as Parquet (tensors as nested fixed-size lists), with one exception the format
forces: a `.cls` label is text without a width, so it reads as int64 whatever integer type it was
written from (Parquet keeps int32 as int32).

This module imports neither Ray nor torch; `ray_data.py` reads shards through it in Ray Data.
"""

from __future__ import annotations

import io
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from raysweep.datasets import location
from raysweep.datasets.shards import DataError

BLOCK = 512          # tar header and payload granularity, bytes
_USTAR = b"ustar"
_REGULAR = (ord("0"), 0)   # typeflags of a regular file
HEAD_BYTES = 2**20   # read to size a shard: its first sample must lie within
FIX = "rewrite the shard (raysweep data ... or shards.write_split)"


@dataclass(frozen=True)
class _Column:
    """Where one column's members lie in the shard: one per sample, in file order."""
    name: str
    ext: str               # "npy" or "cls"
    offsets: np.ndarray    # payload start, bytes from the shard's start
    sizes: np.ndarray      # payload length, bytes
    keys: list[str]        # sample keys, for messages (filled on the tarfile walk only)


def read_tar(path: str | Path, columns: list[str] | None = None) -> pa.Table:
    """One WebDataset shard (a local path or a URI) as an Arrow table, one row per sample.

    Args:
        path: the `.tar` shard.
        columns: the columns to return, in this order; None returns all, in the order of the
            members within a sample (the writer's column order, as in the Parquet shards).

    Returns:
        The table `pyarrow.parquet.read_table` would give for the same rows in Parquet, except
        that integer `.cls` labels read as int64.

    Raises:
        DataError: the shard is corrupt or truncated, a sample lacks a member, a column's rows
            differ in shape or type, or a requested column is not in the shard.
    """
    try:
        with location.open_input(path) as stream:
            data = stream.read_buffer()
    except OSError as exc:
        raise DataError(f"cannot read shard {path}: {exc}. {location.URI_HELP}") from None
    return decode_tar(data, columns, where=str(path))


def estimate(path: str | Path, columns: list[str]) -> tuple[int, int] | None:
    """(samples, bytes per sample that `columns` take in memory) of a shard, from its size and
    its first sample's headers alone; None where the first sample is not laid out as the
    writer lays it out (then only reading the shard tells)."""
    with location.open_input(path) as stream:
        size = stream.size()
        head = stream.read(min(size, HEAD_BYTES))
    members = _first_sample(np.frombuffer(head, np.uint8))
    stride = sum(BLOCK * (1 + _blocks(m[3])) for m in members or ())
    if not members or stride > len(head):
        return None
    width, offset = 0, 0
    for _, column, ext, payload in members:
        if column in columns:
            start = offset + BLOCK
            width += 8 if ext == "cls" else payload - _npy_header(head[start:start + payload])[3]
        offset += BLOCK * (1 + _blocks(payload))
    return size // stride, width


def decode_tar(data, columns: list[str] | None = None, *, where: str = "shard") -> pa.Table:
    """A shard's bytes (anything with the buffer protocol) as a table; see `read_tar`.

    `where` names the shard in error messages.
    """
    buf = np.frombuffer(data, dtype=np.uint8)
    found = _regular_layout(buf) or _walk(buf, where)
    by_name = {c.name: c for c in found}
    wanted = list(by_name) if columns is None else list(columns)
    missing = [c for c in wanted if c not in by_name]
    if missing:
        raise DataError(f"shard {where} has no column {', '.join(map(repr, missing))}; "
                        f"its members hold {', '.join(by_name)}")
    return pa.table({name: _decode(buf, by_name[name], where) for name in wanted})


# --- Finding the members ----------------------------------------------------------------------

def split_name(name: str) -> tuple[str, str, str]:
    """`./000001.features.npy` -> ("000001", "features", "npy"); a member named by its
    extension alone, as the webdataset library writes `{"cls": 3}`: `000001.cls` -> ("000001",
    "cls", "cls")."""
    key, _, rest = name.removeprefix("./").partition(".")
    column, _, ext = rest.rpartition(".")
    return (key, column, ext) if column else (key, rest, rest)


def _blocks(size: int) -> int:
    return -(-size // BLOCK)


def _octal(field: np.ndarray) -> np.ndarray | None:
    """Header number fields (rows of octal ASCII digits, NUL or space ended) as int64, or None
    when one is written otherwise (GNU base-256), which the tarfile walk then reads."""
    digits = field[:, :-1].astype(np.int64) - ord("0")
    if digits.min(initial=0) < 0 or digits.max(initial=0) > 7:
        return None
    return digits @ (8 ** np.arange(digits.shape[1] - 1, -1, -1, dtype=np.int64))


def _first_sample(buf: np.ndarray) -> list[tuple[bytes, str, str, int]] | None:
    """The first sample's members as (raw name, column, ext, size), from their ustar headers;
    None when they are not plain ustar file headers (pax, GNU long names, directories)."""
    members, offset, first_key = [], 0, None
    while offset + BLOCK <= len(buf):
        header = buf[offset:offset + BLOCK].tobytes()
        if not any(header):   # the end-of-archive marker: a shard of one sample
            break
        if header[257:262] != _USTAR or header[156] not in _REGULAR or any(header[345:500]):
            return None
        raw = header[:100].split(b"\0", 1)[0]
        key, column, ext = split_name(raw.decode("utf-8", "replace"))
        size = _octal(np.frombuffer(header[124:136], np.uint8)[None])
        if first_key is not None and key != first_key:
            break
        if size is None or not column or column in {m[1] for m in members}:
            return None
        first_key = key
        members.append((raw, column, ext, int(size[0])))
        offset += BLOCK * (1 + _blocks(int(size[0])))
    return members or None


def _regular_layout(buf: np.ndarray) -> list[_Column] | None:
    """The columns of a shard whose samples all hold the first sample's members, in its order,
    each taking the same number of blocks: then the shard is a (samples, stride) array, every
    header at a fixed place in its row, and the header bytes that matter are checked a word
    column at a time (one strided numpy pass per 8 bytes of header). None when any check fails
    (the tarfile walk then says which)."""
    first = _first_sample(buf)
    if first is None:
        return None
    starts = np.cumsum([0] + [BLOCK * (1 + _blocks(size)) for *_, size in first])
    stride, n_rows = int(starts[-1]), _sample_count(buf, int(starts[-1]))
    if n_rows is None:
        return None
    words = buf[:n_rows * stride].reshape(n_rows, stride).view(np.uint64)
    raw = first[0][0]
    key_end = raw.index(b".", 2 if raw.startswith(b"./") else 0)
    columns = []
    for (name, column, ext, size), start in zip(first, starts):
        header = words[:, start // 8:start // 8 + BLOCK // 8]
        if not _same_member(header, words[:, :BLOCK // 8], key_end, len(name), ext):
            return None
        sizes = _sizes(header, ext, size)
        if sizes is None:
            return None
        columns.append(_Column(column, ext, start + BLOCK + stride * np.arange(n_rows), sizes, []))
    keys = words[:, :-(-key_end // 8)] & _masks(key_end, 0, "cls")[1][:-(-key_end // 8)]
    if n_rows > 1 and not (keys[1:] != keys[:-1]).any(axis=1).all():
        return None   # a key twice in a row: tarfile readers would make it one sample
    return columns


def _masks(key_end: int, name_end: int, ext: str) -> tuple[np.ndarray, np.ndarray]:
    """Over a header's 64 words: the bytes every sample's header must share with the first
    sample's (the name after the key up to its NUL, a tensor's size, regular file, ustar, no
    name prefix), and the key's bytes, which must match the sample's first member's."""
    fixed, key = np.zeros(BLOCK, np.uint8), np.zeros(BLOCK, np.uint8)
    fixed[key_end:min(name_end + 1, 100)] = fixed[156] = fixed[257:262] = fixed[345] = 0xFF
    if ext != "cls":   # a label's digits vary in number, a tensor's size does not
        fixed[124:136] = 0xFF
    key[:key_end] = 0xFF
    return fixed.view(np.uint64), key.view(np.uint64)


def _same_member(header: np.ndarray, first: np.ndarray, key_end: int, name_end: int, ext: str) -> bool:
    """Each sample's header (rows of 64 words) names the first sample's member under its own
    sample's key (`first`: the headers of each sample's first member). A word column at a time:
    numpy then runs down the rows in its inner loop, far faster than across a few bytes each."""
    fixed, key = _masks(key_end, name_end, ext)
    for k in np.flatnonzero(fixed | key):
        column = header[:, k]
        if ((column ^ column[0]) & fixed[k]).any() or (key[k] and ((column ^ first[:, k]) & key[k]).any()):
            return False
    return True


def _sample_count(buf: np.ndarray, stride: int) -> int | None:
    """Samples before the end-of-archive marker, or None when zero blocks do not follow the last
    one. The last non-zero byte lies in the last sample: its last member's header is never zero."""
    end = len(buf)
    while end > 0 and not buf[max(0, end - (1 << 16)):end].any():
        end -= 1 << 16
    if end <= 0:
        return None
    last = max(0, end - (1 << 16)) + int(np.flatnonzero(buf[max(0, end - (1 << 16)):end])[-1])
    n_rows = last // stride + 1
    return n_rows if n_rows * stride + 2 * BLOCK <= len(buf) else None


def _sizes(header: np.ndarray, ext: str, size: int) -> np.ndarray | None:
    """Payload sizes; a text label's vary, but must take as many blocks as the first row's (a
    tensor's equal it, checked with the other fixed bytes). None otherwise."""
    if ext != "cls":
        return np.full(len(header), size, dtype=np.int64)
    sizes = _octal(np.ascontiguousarray(header[:, 15:17]).view(np.uint8)[:, 4:16])   # bytes 124-135
    return None if sizes is None or (-(-sizes // BLOCK) != _blocks(size)).any() else sizes


def _walk(buf: np.ndarray, where: str) -> list[_Column]:
    """Every member's place through `tarfile` (any tar dialect), grouped by sample key; checks
    what `tarfile` lets pass: members cut short, a header it cannot read mid-shard (it stops
    there silently) and samples lacking a column."""
    samples: list[tuple[str, dict[str, tuple[str, int, int]]]] = []
    try:
        with tarfile.open(fileobj=io.BytesIO(buf), mode="r:") as tar:
            for info in tar:
                if not info.isfile():
                    continue
                if info.offset_data + info.size > len(buf):
                    raise DataError(f"shard {where} is truncated: member {info.name} ends past the shard's "
                                    f"{len(buf)} bytes; {FIX}")
                key, column, ext = split_name(info.name)
                if not samples or samples[-1][0] != key:
                    samples.append((key, {}))
                if column in samples[-1][1]:
                    raise DataError(f"shard {where}: sample {key} holds column {column!r} twice; {FIX}")
                samples[-1][1][column] = (ext, info.offset_data, info.size)
            end = tar.offset
    except tarfile.TarError as exc:
        raise DataError(f"shard {where} is not a readable tar ({exc}); {FIX}") from None
    if buf[end:end + BLOCK].size < BLOCK or buf[end:end + BLOCK].any():
        raise DataError(f"shard {where} is corrupt or truncated at byte {end} of {len(buf)} "
                        f"(no readable member header nor end-of-archive there); {FIX}")
    if not samples:
        raise DataError(f"shard {where} holds no samples; {FIX}")
    return _columns(samples, where)


def _columns(samples: list[tuple[str, dict]], where: str) -> list[_Column]:
    """Per-sample members as per-column arrays; every sample must hold the first one's columns."""
    first_key, first = samples[0]
    for key, members in samples:
        if members.keys() != first.keys():
            lacks = [c for c in first if c not in members]
            extra = [c for c in members if c not in first]
            raise DataError(f"shard {where}: sample {key} " + (f"lacks column(s) {lacks}" if lacks else
                            f"has column(s) {extra}") + f" unlike sample {first_key}; {FIX}")
    keys = [key for key, _ in samples]
    columns = []
    for name, (ext, _, _) in first.items():
        exts = {members[name][0] for _, members in samples}
        if len(exts) > 1:
            raise DataError(f"shard {where}: column {name!r} is stored as {sorted(exts)} in different samples; {FIX}")
        places = np.array([members[name][1:] for _, members in samples], dtype=np.int64).reshape(-1, 2)
        columns.append(_Column(name, ext, places[:, 0], places[:, 1], keys))
    return columns


# --- Decoding a column ------------------------------------------------------------------------

def _payloads(buf: np.ndarray, column: _Column, width: int) -> np.ndarray:
    """(rows, width) bytes from each member's payload start: a strided view when the members are
    evenly spaced (the regular layout), else a gather. May run past a payload; callers mask."""
    offsets = column.offsets
    if width == 0 or len(offsets) == 0:
        return np.zeros((len(offsets), width), np.uint8)
    if int(offsets.max()) + width > len(buf):
        raise DataError(f"column {column.name!r}: a member runs past the end of the shard; {FIX}")
    step = int(offsets[1] - offsets[0]) if len(offsets) > 1 else 0
    if step > 0 and (np.diff(offsets) == step).all():
        return np.lib.stride_tricks.as_strided(buf[int(offsets[0]):], (len(offsets), width), (step, 1))
    return buf[offsets[:, None] + np.arange(width)]


LABELS = ("cls", "cls2", "index", "id")   # integer labels as decimal text (the webdataset library's `cls`)
IMAGES = ("png", "jpg", "jpeg")
TENSORS = ("pth", "pt")


def _decode(buf: np.ndarray, column: _Column, where: str) -> pa.Array:
    """A column's members as one array: `.npy` and integer labels in one vectorised step (the
    fast path for raysweep's own shards), the other formats the webdataset library writes one
    member at a time."""
    if column.ext in LABELS:
        return pa.array(_labels(buf, column, where))
    if column.ext == "npy":
        return _arrow(_npy_column(buf, column, where))
    decode = {"json": _json, "txt": _text, "text": _text, **dict.fromkeys(TENSORS, _tensor),
              **dict.fromkeys(IMAGES, _image)}.get(column.ext)
    if decode is None:
        raise DataError(f"shard {where}: column {column.name!r} is stored as .{column.ext}; raysweep reads .npy, "
                        f".json, .txt (numbers), .pth/.pt tensors, .png/.jpg images and {'/'.join(LABELS)} labels "
                        "(not pickles, which would run code as they load)")
    return _arrow(_stacked([_safely(decode, column.ext, buf[o:o + n].tobytes())
                            for o, n in zip(column.offsets, column.sizes)], column, where))


def _safely(decode, ext: str, payload: bytes):
    """The decoded row, or the error decoding it (named with its row by `_stacked`)."""
    try:
        return decode(payload)
    except Exception as exc:  # noqa: BLE001 - json, PIL and torch each raise their own
        return ValueError(str(exc) if isinstance(exc, ValueError) and "text" in str(exc)
                          else f"not a readable .{ext} member ({type(exc).__name__}: {str(exc)[:200]})")


def _json(payload: bytes) -> np.ndarray:
    return np.asarray(json.loads(payload))


def _text(payload: bytes) -> np.ndarray:
    try:
        return np.asarray(float(payload.decode("utf-8").strip()))
    except ValueError:
        raise ValueError("holds text, not a number: raysweep's batches are tensors (map text to ids, or "
                         "store it as .cls)") from None


def _tensor(payload: bytes) -> np.ndarray:
    import torch  # only where a shard holds torch tensors: the readers import no torch otherwise

    return torch.load(io.BytesIO(payload), weights_only=True).numpy()


def _image(payload: bytes) -> np.ndarray:
    from PIL import Image  # only where a shard holds images

    with Image.open(io.BytesIO(payload)) as image:
        return np.asarray(image)


def _stacked(rows: list, column: _Column, where: str) -> np.ndarray:
    """Rows decoded one by one as one (rows, *shape) array; they must share shape and kind."""
    for i, row in enumerate(rows):
        if isinstance(row, Exception):
            raise DataError(f"shard {where}: column {column.name!r}, {_row(column, i)}: {row}") from None
        if row.dtype.kind not in "biuf":
            raise DataError(f"shard {where}: column {column.name!r}, {_row(column, i)}: {row.dtype} values; a "
                            "column holds numbers of one fixed shape per row")
        if row.shape != rows[0].shape:
            raise DataError(f"shard {where}: column {column.name!r}, {_row(column, i)}: shape {row.shape}, the first "
                            f"row's is {rows[0].shape}; a column holds one fixed shape per row (pad ragged rows "
                            "and add a mask)")
    return np.stack(rows)


def _labels(buf: np.ndarray, column: _Column, where: str) -> np.ndarray:
    """`.cls` payloads (decimal text) as int64, parsed in one cast over NUL-padded strings."""
    width = max(1, int(column.sizes.max(initial=0)))
    text = _payloads(buf, column, width) * (np.arange(width) < column.sizes[:, None])
    try:
        return np.ascontiguousarray(text).view(f"S{width}").ravel().astype(np.int64)
    except (ValueError, OverflowError) as exc:
        raise DataError(f"shard {where}: column {column.name!r} holds a .cls label that is not an int64 "
                        f"({exc}); {FIX}") from None


def _npy_header(payload: bytes) -> tuple[tuple, bool, np.dtype, int]:
    stream = io.BytesIO(payload)
    version = np.lib.format.read_magic(stream)
    read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, fortran, dtype = read(stream)
    return shape, fortran, dtype, stream.tell()


def _npy_column(buf: np.ndarray, column: _Column, where: str) -> np.ndarray:
    """All rows of an `.npy` column as one (rows, *shape) array.

    Rows of one column share dtype and shape, hence the same header and payload length: the
    first header is parsed once and compared byte for byte with every other row's, then the
    values behind the headers are viewed as one array. Payloads of unequal length are loaded
    one by one, to name the row that differs.
    """
    size = int(column.sizes[0])
    if (column.sizes != size).any():
        return _npy_rows(buf, column, where)
    payloads = _payloads(buf, column, size)
    try:
        shape, fortran, dtype, start = _npy_header(payloads[0].tobytes())
    except ValueError as exc:
        raise DataError(f"shard {where}: column {column.name!r} holds a member that is not a .npy array "
                        f"({exc}); {FIX}") from None
    if dtype.hasobject or start + dtype.itemsize * int(np.prod(shape)) != size \
            or (payloads[:, :start] != payloads[0, :start]).any():
        return _npy_rows(buf, column, where)
    values = payloads[:, start:].copy().view(dtype)   # a copy: the table must not hold the shard
    if fortran:
        values = values.reshape(len(column.offsets), *shape[::-1]).transpose(0, *range(len(shape), 0, -1))
    values = values.reshape(len(column.offsets), *shape)
    return values if dtype.isnative else values.astype(dtype.newbyteorder("="))


def _npy_rows(buf: np.ndarray, column: _Column, where: str) -> np.ndarray:
    """The slow, exact path: each member through `np.load`; rows of another shape or dtype
    than the first one's are an error (a column holds one fixed shape per row)."""
    rows = []
    for i, (offset, size) in enumerate(zip(column.offsets, column.sizes)):
        try:
            row = np.load(io.BytesIO(buf[offset:offset + size].tobytes()), allow_pickle=False)
        except ValueError as exc:
            raise DataError(f"shard {where}: column {column.name!r}, {_row(column, i)}: not a .npy array "
                            f"without pickled objects ({exc}); {FIX}") from None
        if rows and (row.shape, row.dtype) != (rows[0].shape, rows[0].dtype):
            raise DataError(f"shard {where}: column {column.name!r}, {_row(column, i)}: {row.dtype} {row.shape}, "
                            f"the first row holds {rows[0].dtype} {rows[0].shape}; a column holds one fixed "
                            f"shape and type per row (ragged rows: pad them and add a mask)")
        rows.append(row)
    return np.stack(rows)


def _row(column: _Column, i: int) -> str:
    return f"sample {column.keys[i]}" if column.keys else f"row {i}"


def _arrow(values: np.ndarray) -> pa.Array:
    """(rows, *shape) values as Parquet reads a tensor column back: nested fixed-size lists whose
    items are named "element", built over the one flat buffer."""
    array = pa.array(values.reshape(-1))
    for width in reversed(values.shape[1:]):
        array = pa.FixedSizeListArray.from_arrays(array, type=pa.list_(pa.field("element", array.type), width))
    return array
