"""`python -m build` makes a wheel and an sdist of raysweep, and the wheel works where the checkout is not.

The wheel is what a cluster's nodes install (cluster.yaml, cluster.local.yaml), so this proves
it holds every module and nothing else, and that `raysweep data` and `raysweep validate` run
from it in a fresh venv: the README's first commands, on a shipped spec copied out of the
checkout, in a directory outside it.

The fresh venv gets torch, Ray and the rest from this venv's site-packages, through a directory
of links that leaves raysweep itself out (reinstalling them would take minutes and a registry),
and pip installs the wheel into it with `--no-index`: every dependency the wheel declares must
already be satisfied there, so a dependency missing from this venv fails here too.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SPEC = "glideator_asha_random.yaml"   # a shipped spec; the README's first sweep


def run(*command, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in command], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def modules(package: Path) -> set[str]:
    return {p.relative_to(package.parent).as_posix() for p in package.rglob("*.py") if "__pycache__" not in p.parts}


def clean_checkout(where: Path) -> Path:
    """The checkout's files as a fresh clone (plus files not yet committed) would have them.

    Built in place, setuptools would also pack whatever a stale src/raysweep.egg-info/SOURCES.txt
    lists, hiding a file MANIFEST.in no longer names; and it writes that folder into the checkout.
    """
    listed = run("git", "ls-files", "-z", "--cached", "--others", "--exclude-standard", cwd=ROOT).stdout.split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():   # a file deleted but not yet committed is listed too
            (where / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, where / name)
    return where


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, Path]:
    """`python -m build` as the README runs it: the sdist, then the wheel built from that sdist.

    --no-isolation uses this venv's setuptools instead of downloading one; -x skips checking
    build-system.requires, whose `wheel` setuptools >= 70.1 no longer needs (it builds wheels itself).
    """
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("builds from the files git lists; this is not a git checkout")
    source, out = clean_checkout(tmp_path_factory.mktemp("checkout")), tmp_path_factory.mktemp("dist")
    done = run(sys.executable, "-m", "build", "--no-isolation", "-x", "--outdir", out, source, cwd=source)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    wheels, sdists = list(out.glob("raysweep-*.whl")), list(out.glob("raysweep-*.tar.gz"))
    assert len(wheels) == 1 and len(sdists) == 1, sorted(p.name for p in out.iterdir())
    return {"wheel": wheels[0], "sdist": sdists[0], "source": source}


@pytest.mark.slow
def test_the_wheel_holds_the_package_and_nothing_else(built):
    names = zipfile.ZipFile(built["wheel"]).namelist()
    dist_info = "-".join(built["wheel"].name.split("-")[:2]) + ".dist-info"
    assert {name.split("/")[0] for name in names} == {"raysweep", dist_info}, sorted(names)[:20]
    assert {n for n in names if n.endswith(".py")} == modules(built["source"] / "src" / "raysweep"), \
        "every module of src/raysweep, no other"
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    entry_points = zipfile.ZipFile(built["wheel"]).read(f"{dist_info}/entry_points.txt").decode()
    assert "raysweep = raysweep.cli:console" in entry_points


@pytest.mark.slow
def test_the_sdist_holds_what_the_wheel_and_the_readme_need(built):
    with tarfile.open(built["sdist"]) as sdist:
        names = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
    assert {"pyproject.toml", "README.md", "src/raysweep/__init__.py", "src/raysweep/cli/__init__.py"} <= names
    assert {f"search_spaces/{p.name}" for p in (ROOT / "search_spaces").glob("*.yaml")} <= names
    assert "examples/linear/linear.py" in names and "examples/linear/spec.yaml" in names
    junk = [n for n in names if n.split("/")[0] in {"tests", ".venv", ".git", "data", "results", "dist", "build"}
            or "__pycache__" in n]
    assert not junk, junk


def fresh_venv(where: Path) -> Path:
    """A venv without raysweep that sees this venv's other packages (torch, Ray, ...) through a .pth."""
    site_packages = Path(sysconfig.get_paths()["purelib"])
    links = where / "dependencies"
    links.mkdir(parents=True)
    for entry in site_packages.iterdir():
        if not entry.name.startswith(("raysweep", "__editable__")) and entry.suffix != ".pth":
            (links / entry.name).symlink_to(entry)
    venv = where / "venv"
    done = run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=where)
    assert done.returncode == 0, done.stderr
    new_site_packages = Path(run(venv / "bin" / "python", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])",
                                 cwd=where).stdout.strip())
    (new_site_packages / "dependencies.pth").write_text(f"{links}\n")
    return venv


@pytest.mark.slow
def test_the_wheel_installed_in_a_fresh_venv_validates_a_shipped_spec(built, tmp_path):
    venv = fresh_venv(tmp_path)
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"}}
    before = run(venv / "bin" / "python", "-c", "import raysweep", cwd=tmp_path, env=env)
    assert before.returncode != 0 and "No module named 'raysweep'" in before.stderr, "the venv starts without raysweep"

    done = run(sys.executable, "-m", "pip", "--python", venv / "bin" / "python", "install", "--no-index",
               "--disable-pip-version-check", built["wheel"], cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "Successfully installed raysweep" in done.stdout

    user = tmp_path / "user"   # a directory of a user's, outside the checkout
    user.mkdir()
    found = run(venv / "bin" / "python", "-c", "import raysweep; print(raysweep.__file__)", cwd=user, env=env)
    assert Path(found.stdout.strip()).resolve().is_relative_to(venv.resolve()), found.stdout + found.stderr

    # The README's commands, through the wheel's console script: demo data, then the shipped spec as is.
    raysweep = venv / "bin" / "raysweep"
    data = run(raysweep, "data", "glideator", "--out", "data/glideator", "--sites", "6", "--days", "150", cwd=user, env=env)
    assert data.returncode == 0 and "wrote glideator data" in data.stdout, data.stdout + data.stderr
    shutil.copy(ROOT / "search_spaces" / SPEC, user / SPEC)
    valid = run(raysweep, "validate", SPEC, cwd=user, env=env)
    assert valid.returncode == 0, valid.stdout + valid.stderr
    assert valid.stdout.startswith(f"{SPEC}: OK. glideator: random search"), valid.stdout

    # And a mistake is one error line with exit code 2, as from the checkout.
    wrong = run(raysweep, "validate", SPEC, "--set", "data.path=no/such/data", cwd=user, env=env)
    assert wrong.returncode == 2 and wrong.stderr.startswith("error:") and "Traceback" not in wrong.stderr, wrong.stderr
