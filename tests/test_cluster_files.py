"""cluster.yaml (AWS) and cluster.local.yaml pass Ray's own checks, offline, as `ray up` runs them,
and a planted mistake fails them."""

from __future__ import annotations

import copy
import re
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


def test_the_nodes_install_the_pinned_torch_and_ray(aws):
    torch_pin = re.search(r"^TORCH\s*\?=\s*(\S+)", (ROOT / "Makefile").read_text(), re.M).group(1)
    setup = "\n".join(aws["setup_commands"])
    assert torch_pin in setup, "the same torch as `make install`"
    assert "pip install -q -e ~/raysweep" in setup and aws["file_mounts"]["~/raysweep"] == "."
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
