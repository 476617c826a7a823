"""Denoiser Studio's desktop application: a thin PySide6 layer over the `denoiser` engine."""
