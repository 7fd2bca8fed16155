"""Spec text -> a raw mapping: YAML with sweep-friendly numbers, and `--set KEY=VALUE` overrides."""

from __future__ import annotations

import re
from pathlib import Path
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


def _mapping_without_repeats(loader: _Loader, node: yaml.MappingNode, deep: bool = False) -> dict:
    """A mapping whose keys each appear once: YAML keeps the last of a repeated key, so the
    first value (a range, a whole `params` block) would vanish without a word."""
    seen: dict = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":   # `<<: *base`: YAML's merge, not a key
            continue
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(None, None, "a key must be a plain value, not a list or mapping",
                                                    key_node.start_mark) from None
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"the key {key!r} appears twice (first on line {seen[key] + 1}); keep one",
                key_node.start_mark)
        seen[key] = key_node.start_mark.line
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_repeats)


def parse_yaml(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)


def yaml_problem(source: str, exc: yaml.YAMLError) -> str:
    """A YAML error in one line: `FILE:LINE:COLUMN: what is wrong` (PyYAML's own is several lines)."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark is not None else source
    return f"{where}: not valid YAML: {_yaml_what(exc)}"


def _yaml_what(exc: yaml.YAMLError) -> str:
    what = " ".join(part for part in (getattr(exc, "context", None), getattr(exc, "problem", None)) if part) or str(exc)
    return " ".join(what.split())


def read_mapping(path: Path) -> dict:
    """A spec file's YAML mapping.

    Raises:
        ValueError: one line, naming the file (and line and column) and what to do, for a file
            that is not UTF-8 text, is empty, is not valid YAML, repeats a key, or is not a mapping.
    """
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
                         "a spec is a YAML text file: save it as UTF-8") from None
    try:
        raw = parse_yaml(text)
    except yaml.YAMLError as exc:
        raise ValueError(yaml_problem(str(path), exc)) from None
    if raw is None:
        raise ValueError(f"{path}: the file is empty; a spec is a YAML mapping of keys such as name, workload, "
                         "params (copy one from search_spaces/)")
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: the spec must be a YAML mapping of keys such as name, workload, params, "
                         f"but the file holds a {_kind(raw)}")
    return raw


def _kind(value: Any) -> str:
    return {list: "list", str: "string", int: "number", float: "number", bool: "boolean"}.get(type(value), type(value).__name__)


def apply_overrides(raw: dict, overrides: list[str]) -> tuple[dict[str, str], list[str]]:
    """Apply `key.path=value` overrides in place (values parsed as YAML).

    Returns:
        The key paths set, each with the item as typed (a later item replaces what an earlier one
        set at or inside its key), so a problem with a value can blame the command line; and the
        problems, one line each, led by `--set ITEM:`.
    """
    set_by: dict[str, str] = {}
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
            try:
                node[parts[-1]] = parse_yaml(value)
            except yaml.YAMLError as exc:
                problems.append(f"--set {item}: not valid YAML: {_yaml_what(exc)}")
                continue
            set_by = {k: v for k, v in set_by.items() if k != key and not k.startswith(key + ".")}
            set_by[key] = item
    return set_by, problems
