"""Spec text -> a raw mapping: YAML with sweep-friendly numbers, and `--set KEY=VALUE` overrides."""

from __future__ import annotations

import re
from typing import Any

import yaml


# PyYAML follows YAML 1.1, where `1e-4` (no dot) is a string; sweep specs are full of them.
class _Loader(yaml.SafeLoader):
    pass


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                   |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
                   |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
                   |[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."))


def parse_yaml(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)


def apply_overrides(raw: dict, overrides: list[str]) -> list[str]:
    """Apply `key.path=value` overrides in place (values parsed as YAML); returns problems."""
    problems = []
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key:
            problems.append(f"--set {item}: expected KEY=VALUE, e.g. --set search.num_samples=4")
            continue
        parts = key.split(".")
        node = raw
        for i, part in enumerate(parts[:-1]):
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                problems.append(f"--set {item}: {'.'.join(parts[:i + 1])} is not a mapping")
                break
        else:
            node[parts[-1]] = parse_yaml(value)
    return problems
