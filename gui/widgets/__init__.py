"""Widgets of the main window: image views, compare view, side panels, status bar."""
