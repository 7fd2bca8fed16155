"""Where a dataset lives: a local directory, or a URI (`s3://`, `gs://`, `file://`) that pyarrow's
filesystems read.

Paths stay strings: a local path as the user gave it, a URI as a URI, so that Ray Data and
pyarrow resolve the same filesystem again wherever a path travels (a Ray worker, a trial).
Credentials come from the environment as pyarrow reads them (an instance profile, AWS_* or
GOOGLE_* variables, `AWS_ENDPOINT_URL` for an S3-compatible server); none is ever written down.
"""

from __future__ import annotations

import os
import re
import socket
import threading
from pathlib import Path
from typing import BinaryIO

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from raysweep.errors import UserError

URI_HELP = ("A dataset is a local directory or a URI such as s3://bucket/data, gs://bucket/data or "
            "file:///absolute/path, readable with this machine's credentials.")


# A storage that does not answer within this long is out of reach (pyarrow's S3 client retries
# a refused connection for about 6 s, and an address that drops packets for minutes).
REACH_TIMEOUT_S = 15.0


def is_uri(path: str | Path) -> bool:
    return "://" in str(path)


def storage_error(exc: BaseException) -> str:
    """A storage error in a few words: pyarrow's AWS errors run to several clauses and a request id."""
    text = " ".join(str(exc).split())
    if "AWS Error " in text:
        text = text.split("AWS Error ", 1)[1].split(" (Request ID")[0]
        return re.sub(r" during \w+ operation", "", text, count=1)
    return f"{type(exc).__name__}: {text}"


def _with_timeout(call, timeout_s: float):
    """`call()` in a thread of its own, given `timeout_s` to answer (TimeoutError otherwise)."""
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["value"] = call()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller as it is
            outcome["error"] = exc

    worker = threading.Thread(target=run, daemon=True, name="raysweep-storage-probe")
    worker.start()
    worker.join(timeout_s)
    if worker.is_alive():
        raise TimeoutError(f"no answer within {timeout_s:.0f} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


def reach(path: str | Path, what: str, *, write: bool, timeout_s: float = REACH_TIMEOUT_S) -> None:
    """Check, before anything starts, that storage at a URI answers (and, with `write`, takes a
    file); a local path is left to the callers' own checks.

    Raises:
        UserError: one line naming `what`, the URI and what failed (wrong endpoint, no such
            bucket, no credentials, no answer within `timeout_s`).
    """
    if not is_uri(path):
        return
    uri = str(path).rstrip("/")

    def probe() -> None:
        filesystem, inner = pafs.FileSystem.from_uri(uri)
        if write:
            probe_file = f"{inner}/.raysweep-probe-{socket.gethostname()}-{os.getpid()}"
            with filesystem.open_output_stream(probe_file) as out:
                out.write(b"raysweep checks it can write here\n")
            filesystem.delete_file(probe_file)
        else:
            filesystem.get_file_info(inner)

    try:
        _with_timeout(probe, timeout_s)
    except (ValueError, pa.ArrowInvalid) as exc:   # an unknown scheme, a malformed URI
        raise UserError(f"{what} {uri}: not a storage this machine can open ({storage_error(exc)}). {URI_HELP}") from None
    except (OSError, pa.ArrowException) as exc:   # TimeoutError is an OSError; so is a bucket's region not found
        endpoint = os.environ.get("AWS_ENDPOINT_URL")
        raise UserError(f"{what} {uri}: cannot {'write' if write else 'read'} there ({storage_error(exc)}); check "
                        "the bucket's name, the endpoint" + (f" (AWS_ENDPOINT_URL={endpoint})" if endpoint else "")
                        + " and the credentials in this environment") from None


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
