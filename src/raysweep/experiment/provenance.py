"""Who ran an experiment, what, when and with which versions: `provenance.json`, one entry per run or resume.

So a result can be traced to the command and the versions that made it, a resume included: the
report shows the entries, and `directory.created` dates an experiment by its first one. The
versions are read from package metadata, so recording them imports nothing.
"""

from __future__ import annotations

import json
import platform
import shlex
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

from raysweep import __version__
from raysweep.experiment.names import PROVENANCE_FILE
from raysweep.experiment.working_copy import push


def versions() -> dict[str, str]:
    """Versions of raysweep and what it runs on, read from package metadata (nothing imported)."""
    found = {"raysweep": __version__}
    for package in ("ray", "torch", "numpy", "pyarrow"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "not installed"
    return {**found, "python": platform.python_version()}


def record_provenance(experiment_dir: Path, event: str) -> None:
    """Append who ran what, when and with which versions to `provenance.json` (report reads it)."""
    runs = read_provenance(experiment_dir)
    command = (shlex.join(["raysweep", *sys.argv[1:]]) if sys.argv[0].endswith("raysweep")
               else shlex.join(sys.argv))
    runs.append({"event": event, "command": command,
                 "started": datetime.now(timezone.utc).isoformat(timespec="seconds"), "versions": versions()})
    (experiment_dir / PROVENANCE_FILE).write_text(json.dumps(runs, indent=2) + "\n")
    push(experiment_dir, [PROVENANCE_FILE])


def read_provenance(experiment_dir: Path) -> list[dict]:
    path = Path(experiment_dir) / PROVENANCE_FILE
    return json.loads(path.read_text()) if path.is_file() else []
