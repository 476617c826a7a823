"""The application's persistent settings (QSettings under one organisation and application name)."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QSettings

ORGANISATION = "DenoiserStudio"
APPLICATION = "Denoiser Studio"


def app_settings() -> QSettings:
    """The user's settings, in QSettings' default format (tests point that format at a temp folder)."""
    return QSettings(QSettings.defaultFormat(), QSettings.Scope.UserScope, ORGANISATION, APPLICATION)


def read(key: str, default: Any = None, kind: type | None = None) -> Any:
    """One value, converted to `kind` when given (QSettings' INI backend returns strings)."""
    s = app_settings()
    if kind is None:
        return s.value(key, default)
    try:
        value = s.value(key, default, type=kind)
    except (TypeError, ValueError):
        return default
    return default if value is None else value


def write(key: str, value: Any) -> None:
    """Store one value."""
    s = app_settings()
    s.setValue(key, value)
    s.sync()


def read_list(key: str) -> list[str]:
    """A list of strings (empty when missing); INI files store a one-item list as a plain string."""
    value = app_settings().value(key, [])
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value else []
    return [str(v) for v in value]
