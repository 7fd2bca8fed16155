"""The layers hold (import-linter), an upward import breaks them, and no import hides a cycle."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "raysweep"
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
# The only raysweep imports inside a function: the CLI imports its commands (and so Ray) once
# the arguments parse, so that `raysweep --help` does not wait seconds for Ray.
FUNCTION_LEVEL = {("cli/__init__.py", "raysweep.cli.commands"), ("cli/__init__.py", "raysweep.runner.resources")}


def lint_imports(project: Path, src: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(src)}
    return subprocess.run([str(LINT_IMPORTS), "--no-logo", "--no-cache"], cwd=project, env=env,
                          capture_output=True, text=True, timeout=120)


def test_the_layer_contracts_are_kept():
    result = lint_imports(ROOT, ROOT / "src")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 kept, 0 broken" in result.stdout


def test_an_upward_import_breaks_the_layers(tmp_path):
    shutil.copytree(SRC, tmp_path / "src" / "raysweep", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    planted = tmp_path / "src" / "raysweep" / "training" / "losses.py"
    planted.write_text(planted.read_text() + "\nfrom raysweep.analysis import leaderboard  # noqa: E402,F401\n")
    result = lint_imports(tmp_path, tmp_path / "src")
    assert result.returncode != 0
    assert "raysweep.training.losses -> raysweep.analysis.leaderboard" in result.stdout


def test_no_function_level_import_of_raysweep_but_the_cli_commands():
    found = set()
    for path in SRC.rglob("*.py"):
        for function in ast.walk(ast.parse(path.read_text())):
            if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(function):
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("raysweep"):
                    found.add((path.relative_to(SRC).as_posix(), node.module))
                elif isinstance(node, ast.Import):
                    found |= {(path.relative_to(SRC).as_posix(), a.name) for a in node.names
                              if a.name.startswith("raysweep")}
    assert found == FUNCTION_LEVEL
