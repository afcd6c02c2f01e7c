"""``--config run.yaml``: a mapping whose keys equal the long flags of a verb."""

from __future__ import annotations

from babelscope.runs import read_yaml_mapping


def read_config_file(path: str) -> dict:
    """The YAML mapping in ``path``; unreadable, malformed or non-mapping files are one-line errors."""
    return read_yaml_mapping(path, "--config", "flag: value")
