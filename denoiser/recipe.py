"""Training recipes as files: `denoiser train --config recipe.toml` reads the whole `TrainConfig` from one.

A recipe is TOML (or JSON) with the config's fields at the top and the `[noise]`, `[loss]` and
`[arch_config]` tables nested, exactly as `TrainConfig.to_dict` writes them, so a checkpoint's stored
config and a committed recipe are the same thing. Options given on the command line win over the
recipe's values; every other field comes from the recipe, then from the config's defaults.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from denoiser.errors import DenoiserError

NESTED = ("noise", "loss", "arch_config")


def read_recipe(path: str | Path) -> dict[str, Any]:
    """The settings in a .toml (or .json) recipe; DenoiserError (one line) for an unreadable or malformed one."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DenoiserError(f"cannot read recipe '{p}': {getattr(exc, 'strerror', None) or exc}") from None
    try:
        data = json.loads(text) if p.suffix.lower() == ".json" else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        kind = "JSON" if p.suffix.lower() == ".json" else "TOML"
        raise DenoiserError(f"recipe '{p}' is not valid {kind}: {exc}") from None
    if not isinstance(data, dict):
        raise DenoiserError(f"recipe '{p}' must hold a table of settings")
    return data


def merge_recipe(recipe: Mapping[str, Any], flags: Mapping[str, Any], given: set[str]) -> dict[str, Any]:
    """The config dict: `flags` (a full `to_dict` built from the command line) with the recipe's values
    wherever the option was not `given` ('lr', 'noise.jpeg_prob', …). Arch options merge key by key."""
    merged = {k: (dict(v) if k in NESTED and isinstance(v, Mapping) else v) for k, v in flags.items()}
    for key, value in recipe.items():
        if key in NESTED and isinstance(value, Mapping):
            table = merged.setdefault(key, {})
            for sub, v in value.items():
                if f"{key}.{sub}" not in given:
                    table[sub] = v
        elif key not in given:
            merged[key] = value
    return merged


def write_recipe(config: Mapping[str, Any]) -> str:
    """A config dict as TOML text (the inverse of `read_recipe` for what `TrainConfig.to_dict` gives)."""
    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int | float):
            return repr(v)
        if isinstance(v, str):
            return json.dumps(v, ensure_ascii=False)
        if isinstance(v, list | tuple):
            return "[" + ", ".join(value(x) for x in v) + "]"
        raise DenoiserError(f"a recipe cannot hold {type(v).__name__} values")

    top = [f"{k} = {value(v)}" for k, v in config.items() if k not in NESTED and v is not None]
    lines = top
    for table in NESTED:
        items = config.get(table) or {}
        if items:
            lines += ["", f"[{table}]", *(f"{k} = {value(v)}" for k, v in items.items() if not isinstance(v, Mapping))]
            for k, v in items.items():
                if isinstance(v, Mapping) and v:
                    lines += ["", f"[{table}.{k}]", *(f"{kk} = {value(vv)}" for kk, vv in v.items())]
    return "\n".join(lines) + "\n"
