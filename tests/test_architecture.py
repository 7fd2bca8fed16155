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
# raysweep imports inside a function: none (the CLI picks a command's handlers by name with
# importlib, once the arguments parse; see cli/__init__.py).
FUNCTION_LEVEL: set = set()


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


def test_no_function_level_import_of_raysweep():
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


def test_no_import_cycle_between_modules():
    """Tarjan's strongly connected components over raysweep's own import graph (grimp's)."""
    import grimp

    graph = grimp.build_graph("raysweep")
    modules = sorted(graph.modules)
    index, low, on_stack, stack, cycles, counter = {}, {}, set(), [], [], [0]

    def visit(module):
        index[module] = low[module] = counter[0]
        counter[0] += 1
        stack.append(module)
        on_stack.add(module)
        for imported in graph.find_modules_directly_imported_by(module):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == module:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in modules:
        if module not in index:
            visit(module)
    assert cycles == []


def test_validate_and_data_never_import_ray(tmp_path):
    """The commands before a run stay light: no Ray in the process, end to end."""
    spec_file = ROOT / "search_spaces" / "glideator_asha_random.yaml"
    script = ("import sys\nfrom raysweep.cli import main\n"
              f"main(['data', 'glideator', '--out', {str(tmp_path / 'd')!r}, '--sites', '4', '--days', '200'])\n"
              f"main(['validate', {str(spec_file)!r}, '--set', 'data.path={tmp_path / 'd'}'])\n"
              "print('RAY IMPORTED' if 'ray' in sys.modules else 'NO RAY')\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert ": OK." in result.stdout and result.stdout.strip().endswith("NO RAY")
