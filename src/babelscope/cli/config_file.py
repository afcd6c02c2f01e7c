"""``--config run.yaml``: a mapping whose keys equal the long flags of a verb."""

from __future__ import annotations

import yaml

from babelscope.errors import UsageError


def read_config_file(path: str) -> dict:
    """The YAML mapping in ``path``; unreadable, malformed or non-mapping files are one-line errors."""
    try:
        with open(path, encoding="utf-8-sig") as f:
            values = yaml.safe_load(f)
    except OSError as exc:
        raise UsageError(f"cannot read --config {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise UsageError(f"--config {path} is not UTF-8 text; pass a YAML file") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise UsageError(f"--config {path}{where}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise UsageError(f"--config {path} must be a mapping of flag: value, not a {type(values).__name__}")
    return values
