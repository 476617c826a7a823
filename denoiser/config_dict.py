"""Configs as plain dicts and back: what a checkpoint stores, what `--config` reads, what a resume compares.

A config dataclass is rebuilt from its dict with every key checked (a misspelt key is refused, not
ignored), lists turned back into the tuples the dataclass holds, and nested configs rebuilt by their
own class. `config_changes` names the settings two configs disagree on, flattened as `noise.jpeg_prob`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from denoiser.errors import DenoiserError

C = TypeVar("C")


def config_from_dict(cls: type[C], data: Mapping[str, Any], nested: Mapping[str, type] | None = None) -> C:
    """An instance of dataclass `cls` from `data`; DenoiserError naming unknown or missing keys."""
    if not isinstance(data, Mapping):
        raise DenoiserError(f"a {cls.__name__} must be a table of settings, not {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise DenoiserError(f"unknown {cls.__name__} setting{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} "
                            f"(known: {', '.join(fields)})")
    missing = [n for n, f in fields.items() if n not in data and f.default is dataclasses.MISSING
               and f.default_factory is dataclasses.MISSING]
    if missing:
        raise DenoiserError(f"{cls.__name__} needs {', '.join(missing)}")
    values: dict[str, Any] = {}
    for name, value in data.items():
        if nested and name in nested and isinstance(value, Mapping):
            value = config_from_dict(nested[name], value)
        elif isinstance(fields[name].default, tuple) and isinstance(value, list):
            value = tuple(value)
        values[name] = value
    return cls(**values)


def _flat(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, Mapping) and v and all(isinstance(x, str) for x in v):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = list(v) if isinstance(v, tuple) else v
    return out


def config_changes(stored: Mapping[str, Any], new: Mapping[str, Any], ignore: Iterable[str] = ()) -> list[str]:
    """'name (stored A, now B)' for each setting that differs; keys in `ignore` (or under them) are skipped."""
    skip = tuple(ignore)
    a, b = _flat(stored), _flat(new)
    changes = []
    for key in sorted(set(a) | set(b)):
        if any(key == s or key.startswith(s + ".") for s in skip):
            continue
        old, now = a.get(key, "unset"), b.get(key, "unset")
        if old != now:
            changes.append(f"{key} (stored {old!r}, now {now!r})")
    return changes
