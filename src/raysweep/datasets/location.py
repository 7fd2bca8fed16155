"""Where a dataset lives: a local directory, or a URI (`s3://`, `gs://`, `file://`) that pyarrow's
filesystems read.

Paths stay strings: a local path as the user gave it, a URI as a URI, so that Ray Data and
pyarrow resolve the same filesystem again wherever a path travels (a Ray worker, a trial).
Credentials come from the environment as pyarrow reads them (an instance profile, AWS_* or
GOOGLE_* variables, `AWS_ENDPOINT_URL` for an S3-compatible server); none is ever written down.
"""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

URI_HELP = ("A dataset is a local directory or a URI such as s3://bucket/data, gs://bucket/data or "
            "file:///absolute/path, readable with this machine's credentials.")


def is_uri(path: str | Path) -> bool:
    return "://" in str(path)


def _resolved(path: str | Path) -> tuple[pafs.FileSystem, str, str]:
    """(filesystem, the path inside it, the prefix that turns such a path back into a URI)."""
    path = str(path)
    if not is_uri(path):
        return pafs.LocalFileSystem(), str(Path(path).expanduser().absolute()), ""
    filesystem, inner = pafs.FileSystem.from_uri(path)
    scheme = path.split("://", 1)[0]
    return filesystem, inner, "" if scheme == "file" else f"{scheme}://"


def absolute(path: str | Path) -> str:
    """A URI as it is; a local path made absolute (what an experiment's snapshot records)."""
    return str(path) if is_uri(path) else str(Path(path).expanduser().resolve())


def join(base: str | Path, *parts: str) -> str:
    if is_uri(base):
        return "/".join([str(base).rstrip("/"), *parts])
    return str(Path(base, *parts))


def exists(path: str | Path, *, directory: bool = False) -> bool:
    filesystem, inner, _ = _resolved(path)
    kind = filesystem.get_file_info(inner).type
    return kind == pafs.FileType.Directory if directory else kind != pafs.FileType.NotFound


def read_text(path: str | Path) -> str:
    filesystem, inner, _ = _resolved(path)
    with filesystem.open_input_stream(inner) as stream:
        return stream.read().decode("utf-8")


def open_input(path: str | Path) -> BinaryIO:
    """A seekable binary file (tar shards are read through it)."""
    filesystem, inner, _ = _resolved(path)
    return filesystem.open_input_file(inner)


def files(directory: str | Path, suffix: str) -> list[str]:
    """The files directly in `directory` whose names end with `suffix`, sorted, as paths or URIs."""
    filesystem, inner, prefix = _resolved(directory)
    if filesystem.get_file_info(inner).type != pafs.FileType.Directory:
        return []
    found = filesystem.get_file_info(pafs.FileSelector(inner, recursive=False))
    return sorted(prefix + info.path for info in found
                  if info.type == pafs.FileType.File and info.base_name.endswith(suffix))


def read_parquet(paths: list[str], columns: list[str]) -> pa.Table:
    """Parquet files (local paths or URIs of one filesystem) as one table."""
    filesystem, _, _ = _resolved(paths[0])
    return pq.read_table([_resolved(p)[1] for p in paths], columns=columns, filesystem=filesystem)
