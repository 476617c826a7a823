"""Matplotlib figures of the lab, drawn without pyplot (no GUI backend) and written as PNG."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch


def new_figure(width: float, height: float) -> Any:
    """A matplotlib Figure on the Agg canvas (matplotlib is imported only when the lab draws)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def save(fig: Any, path: Path) -> str:
    """Write the figure as PNG and return its file name."""
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path.name


def to_gray(image: torch.Tensor | np.ndarray) -> np.ndarray:
    """A (C, H, W) tensor or (H, W) array as an (H, W) float array in [0, 1] for imshow."""
    a = image.detach().cpu().numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
    if a.ndim == 3:
        a = a.mean(axis=0)
    return np.clip(a, 0.0, 1.0)


def image_grid(path: Path, rows: Sequence[Sequence[np.ndarray]], row_titles: Sequence[str],
               col_titles: Sequence[str] = (), cell: float = 1.4, cmap: str = "gray",
               vmax: float | None = 1.0) -> str:
    """A grid of images (one list per row) with row and column titles."""
    n_rows, n_cols = len(rows), max(len(r) for r in rows)
    fig = new_figure(cell * n_cols + 1.2, cell * n_rows + 0.4)
    for r, row in enumerate(rows):
        for c in range(n_cols):
            ax = fig.add_subplot(n_rows, n_cols, r * n_cols + c + 1)
            ax.set_xticks([])
            ax.set_yticks([])
            if c < len(row):
                ax.imshow(row[c], cmap=cmap, vmin=0.0, vmax=vmax, interpolation="nearest")
            else:
                ax.axis("off")
            if c == 0:
                ax.set_ylabel(row_titles[r], fontsize=7)
            if r == 0 and c < len(col_titles):
                ax.set_title(col_titles[c], fontsize=7)
    return save(fig, path)
