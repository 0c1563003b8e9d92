"""Reading the experiments and metrics YAML files: every failure is a ValueError naming the file.

PyYAML's ``safe_load`` keeps the last of two equal keys of a mapping (``end:`` twice: the first
is silently dropped) and raises a bare ``ValueError("day is out of range for month")`` for a
date such as ``2026-02-30``. :func:`read_yaml` refuses duplicated keys with their line, and
leaves an impossible date as its text, so the config validators name the field that holds it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import ConstructorError


class _StrictLoader(yaml.SafeLoader):
    """``SafeLoader`` that refuses duplicated mapping keys and keeps impossible dates as text."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[object] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)  # type: ignore[no-untyped-call]
            try:
                duplicated = key in seen
            except TypeError:  # an unhashable key: the base class reports it
                break
            if duplicated:
                raise ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    f"found duplicated key {key!r}",
                    key_node.start_mark,
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)

    def lenient_timestamp(self, node: yaml.ScalarNode) -> object:
        """A date or datetime; the scalar's text when it is no real day (2026-02-30), so that
        the config validator names the field and shows the text."""
        try:
            return self.construct_yaml_timestamp(node)  # type: ignore[no-untyped-call]
        except ValueError:
            return self.construct_scalar(node)


_StrictLoader.add_constructor(
    "tag:yaml.org,2002:timestamp",
    _StrictLoader.lenient_timestamp,  # type: ignore[arg-type]
)


def read_yaml(path: str | Path) -> object:
    """The parsed content of a YAML file (None for an empty file).

    Raises:
        ValueError: the file is missing, is not UTF-8 text, is not valid YAML, or repeats a key
            of a mapping; the message names the file (and the line, for YAML errors).
    """
    file = Path(path)
    if not file.is_file():
        raise ValueError(f"path: no such file {str(path)!r}")
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise ValueError(f"path: {str(path)!r} is not UTF-8 text: {err}") from None
    try:
        return yaml.load(text, Loader=_StrictLoader)  # a SafeLoader subclass
    except yaml.YAMLError as err:
        raise ValueError(f"path: {str(path)!r} is not valid YAML: {err}") from None
