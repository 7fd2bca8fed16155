"""raysweep's own model registry: a folder, for teams that do not track with MLflow.

    <registry>/
        registry.json          {"models": {NAME: {"champion": 2, "versions": [{version, model, record}, ...]}}}
        NAME/v1/, NAME/v2/     each version's model directory, as `raysweep export` wrote it

The same record MLflow's Model Registry keeps (deploy/registry.py): versions, the alias
`champion`, what each version was chosen on and scored on test. The file is replaced whole
(written beside it, then renamed) under an flock, so two `raysweep champion` commands at once
neither corrupt it nor give two versions the same number.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
from pathlib import Path
from typing import Iterator

from raysweep.deploy.model_versions import Version, not_registered
from raysweep.errors import UserError

RECORD_FILE = "registry.json"
LOCK_FILE = ".registry.lock"


class LocalRegistry:
    def __init__(self, folder: Path):
        self.folder = Path(folder).resolve()
        self.location = str(self.folder)

    def _read(self) -> dict:
        path = self.folder / RECORD_FILE
        if not path.is_file():
            return {"models": {}}
        try:
            return json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise UserError(f"{path} is not valid JSON ({exc}); restore it from a backup, or move it away to start "
                            "a new registry") from None

    @contextlib.contextmanager
    def _locked(self) -> Iterator[dict]:
        """The registry's contents, to change in place; written back when the block ends."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            handle = (self.folder / LOCK_FILE).open("a")
        except OSError as exc:
            raise UserError(f"--registry {self.folder}: cannot write there ({exc.strerror or exc}); name a folder "
                            "you can write") from None
        with handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            contents = self._read()
            yield contents
            draft = self.folder / f".{RECORD_FILE}.{os.getpid()}"
            draft.write_text(json.dumps(contents, indent=2, default=str) + "\n")
            os.replace(draft, self.folder / RECORD_FILE)

    def _version(self, name: str, entry: dict, champion: int | None) -> Version:
        return Version(name, entry["version"], str(self.folder / entry["model"]), entry["record"],
                       entry["version"] == champion)

    def current(self, name: str) -> Version | None:
        model = self._read()["models"].get(name)
        if not model or model.get("champion") is None:
            return None
        entry = next(v for v in model["versions"] if v["version"] == model["champion"])
        return self._version(name, entry, model["champion"])

    def register(self, name: str, record: dict, model_dir: Path) -> Version:
        with self._locked() as contents:
            model = contents["models"].setdefault(name, {"champion": None, "versions": []})
            number = max((v["version"] for v in model["versions"]), default=0) + 1
            kept = Path(name) / f"v{number}"
            shutil.rmtree(self.folder / kept, ignore_errors=True)   # a copy a crash left half-written
            shutil.copytree(model_dir, self.folder / kept)
            entry = {"version": number, "model": str(kept), "record": record}
            model["versions"].append(entry)
            model["champion"] = number
        return self._version(name, entry, number)

    def versions(self, name: str | None = None) -> list[Version]:
        models = self._read()["models"]
        if name is not None and name not in models:
            raise not_registered(name, self.location, sorted(models))
        return [self._version(n, entry, model.get("champion"))
                for n, model in sorted(models.items()) if name in (None, n) for entry in model["versions"]]

    def fetch(self, name: str) -> tuple[Version, Path]:
        found = self.current(name)
        if found is None:
            raise not_registered(name, self.location, sorted(self._read()["models"]))
        return found, Path(found.model)
