"""Self-ensemble: run the network on flipped and quarter-turned copies of its input and average.

White noise has the same statistics in every orientation but the network's errors differ between
orientations, so averaging the passes mapped back cancels part of those errors, at N times the
compute (the gain is measured in docs/bench/quality.md, the ×8 rows). The first N of
`TRANSFORMS` are used, so two passes add the mirror image and four add the quarter turn of both.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

# (quarter turns, mirror left-right) of the dihedral group of the square, in the order passes add them.
TRANSFORMS: tuple[tuple[int, bool], ...] = (
    (0, False), (0, True), (1, False), (1, True), (2, False), (2, True), (3, False), (3, True),
)
ENSEMBLE_SIZES = (1, 2, 4, 8)


def check_ensemble(passes: int) -> int:
    """`passes` if it is an allowed ensemble size, else a ValueError that says which are."""
    if passes not in ENSEMBLE_SIZES:
        raise ValueError(f"ensemble must be one of {', '.join(map(str, ENSEMBLE_SIZES))} passes, got {passes}")
    return passes


def forward(x: torch.Tensor, turns: int, mirror: bool) -> torch.Tensor:
    """An (N, C, H, W) batch mirrored left-right (if asked), then turned `turns` quarter turns."""
    if mirror:
        x = torch.flip(x, (3,))
    return torch.rot90(x, turns, (2, 3)) if turns else x


def inverse(y: torch.Tensor, turns: int, mirror: bool) -> torch.Tensor:
    """Undo `forward(·, turns, mirror)`."""
    if turns:
        y = torch.rot90(y, -turns, (2, 3))
    return torch.flip(y, (3,)) if mirror else y


def one_pass(
    net: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], x: torch.Tensor, sigma: torch.Tensor, turns: int, mirror: bool
) -> torch.Tensor:
    """The network's output for the transformed batch, mapped back to the batch's orientation."""
    if not turns and not mirror:
        return net(x, sigma)
    return inverse(net(forward(x, turns, mirror).contiguous(memory_format=torch.channels_last), sigma), turns, mirror)

