"""cluster.yaml (AWS) and cluster.local.yaml pass Ray's own checks, offline, as `ray up` runs them,
and a planted mistake fails them."""

from __future__ import annotations

import copy
import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

from raysweep.runner.resources import DRIVER_RESOURCE

ROOT = Path(__file__).resolve().parents[1]


def checked(config: dict) -> dict:
    """What `ray up` does with a cluster file before it contacts any machine."""
    config = prepare_config(copy.deepcopy(config))
    validate_config(config)
    return config


@pytest.fixture
def aws() -> dict:
    return yaml.safe_load((ROOT / "cluster.yaml").read_text())


def test_the_aws_cluster_file_passes_rays_checks(aws):
    config = checked(aws)
    types = config["available_node_types"]
    head = types[config["head_node_type"]]
    assert head["resources"]["CPU"] == 0 and head["resources"][DRIVER_RESOURCE] >= 1, \
        "the head runs drivers, never a trial"
    gpu = types["gpu_worker"]
    assert gpu["min_workers"] == 0 and gpu["resources"]["GPU"] >= 1
    assert gpu["node_config"]["InstanceMarketOptions"]["MarketType"] == "spot"
    assert types["cpu_worker"]["resources"]["CPU"] >= 1 and "GPU" not in types["cpu_worker"]["resources"]


WHEEL = '"$(ls ~/raysweep-dist/raysweep-*.whl)'


def wheel_folder() -> str:
    """Where `make wheel` writes the wheel (the folder the cluster files ship to every node)."""
    recipe = re.search(r"^wheel:.*\n((?:\t.*\n)+)", (ROOT / "Makefile").read_text(), re.M).group(1)
    return re.search(r"--outdir (\S+)", recipe).group(1)


@pytest.mark.parametrize("name", ["cluster.yaml", "cluster.local.yaml"])
def test_every_node_installs_the_wheel_make_wheel_builds(name):
    config = yaml.safe_load((ROOT / name).read_text())
    assert Path(config["file_mounts"]["~/raysweep-dist"]) == Path(wheel_folder()), "the folder `make wheel` writes"
    setup = config["setup_commands"]
    installs = [c for c in setup if "raysweep" in c and "pip install" in c]
    assert len(installs) == 2 and installs[0].endswith(f'{WHEEL}[tracking,wandb,comet,lightning]"'), installs
    assert "--no-deps --force-reinstall" in installs[1] and installs[1].endswith(f'{WHEEL}"'), \
        "a rebuilt wheel of the same version replaces the installed one"
    assert not [c for c in setup if re.search(r"\s-e\s|--editable", c)], "no editable checkout on any node"
    assert "~/raysweep" not in config["file_mounts"], "the checkout no longer travels"


@pytest.mark.parametrize("name", ["cluster.yaml", "cluster.local.yaml"])
def test_the_install_commands_name_the_shipped_wheel_in_a_nodes_shell(name, tmp_path):
    """What pip is given once bash expands the commands on a node: the one wheel's path, with the extras."""
    wheel = tmp_path / "raysweep-dist" / "raysweep-0.1.0-py3-none-any.whl"
    wheel.parent.mkdir()
    wheel.touch()
    installs = [c for c in yaml.safe_load((ROOT / name).read_text())["setup_commands"] if "raysweep-dist" in c]
    given = [subprocess.run(["bash", "-c", c.replace("python3 -m pip install", "printf '%s\\n'")],
                            env={"HOME": str(tmp_path), "PATH": os.environ["PATH"]}, capture_output=True, text=True).stdout
             for c in installs]
    assert given == [f"-q\n{wheel}[tracking,wandb,comet,lightning]\n", f"-q\n--no-deps\n--force-reinstall\n{wheel}\n"]


def test_the_nodes_install_the_pinned_torch_and_ray(aws):
    torch_pin = re.search(r"^TORCH\s*\?=\s*(\S+)", (ROOT / "Makefile").read_text(), re.M).group(1)
    setup = "\n".join(aws["setup_commands"])
    assert torch_pin in setup, "the same torch as `make install`"
    assert setup.index(torch_pin) < setup.index("raysweep-dist"), "torch first: else pip picks its own build for the wheel"
    # The wheel brings Ray: the range runner/ray_fixes was verified on.
    assert '"ray[default,data,train,tune]==2.60.0"' in (ROOT / "pyproject.toml").read_text()


@pytest.mark.parametrize("mistake, expected", [
    (lambda c: c.update(setup_command=c.pop("setup_commands")), "Additional properties"),
    (lambda c: c.update(head_node_type="head_node"), "head_node"),
    (lambda c: c["available_node_types"]["gpu_worker"]["resources"].update(GPU="one"), "'one' is not of type"),
    (lambda c: c["available_node_types"]["cpu_worker"].update(min_workers=9), "max_workers"),
    (lambda c: c["available_node_types"]["gpu_worker"].pop("node_config"), "node_config"),
])
def test_a_planted_mistake_fails(aws, mistake, expected):
    mistake(aws)
    with pytest.raises(Exception, match=re.escape(expected)):
        checked(aws)


def test_the_local_cluster_file_passes_rays_checks():
    config = checked(yaml.safe_load((ROOT / "cluster.local.yaml").read_text()))
    assert config["provider"]["type"] == "local"
    assert config["provider"]["head_ip"] == "127.0.0.1" and config["provider"]["worker_ips"] == ["127.0.0.2"]
