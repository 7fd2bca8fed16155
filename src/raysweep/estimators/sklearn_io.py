"""scikit-learn models on disk with skops: a file that loads without unpickling arbitrary code.

skops refuses, when loading, any type outside its trusted set (scikit-learn's estimators and
numpy among them), so a tampered file fails to load instead of running code. A family names the
few more types its models hold and raysweep wrote itself (a forest's tree storage), and only those.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def save(model: Any, path: Path) -> None:
    import skops.io  # imported when a scikit-learn model is written: see raysweep.estimators

    skops.io.dump(model, path)


def load(path: Path, trusted: tuple[str, ...] = ()) -> Any:
    import skops.io

    return skops.io.load(path, trusted=list(trusted) or None)
