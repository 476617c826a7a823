"""FFDNet (Zhang, Zuo & Zhang 2018): a plain conv net on the pixel-unshuffled image plus a noise map.

Down-sampling by 2 first makes it about four times cheaper per pixel than DnCNN at the same depth;
it predicts the clean down-sampled image directly. The published colour model has 12 layers of 96
features, the grey one 15 of 64; the speed benchmark uses it as the reference workload for FFDNet.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from denoiser.archs.base import DenoiserNet, ModelOutput, register_arch
from denoiser.archs.dncnn import plain_stack


@register_arch("ffdnet")
class FFDNet(DenoiserNet):
    """conv-ReLU, (depth-2) × conv-[BN]-ReLU, conv at half resolution; the middle layer is the code."""

    def __init__(
        self,
        in_channels: int = 3,
        depth: int | None = None,
        features: int | None = None,
        batch_norm: bool = True,
        noise_map: bool = True,
    ) -> None:
        depth = depth or (12 if in_channels == 3 else 15)
        features = features or (96 if in_channels == 3 else 64)
        config = {"in_channels": in_channels, "depth": depth, "features": features, "batch_norm": batch_norm}
        super().__init__({**config, "noise_map": noise_map})
        self.size_multiple = 2
        self.layers = plain_stack(in_channels * 4 + (1 if noise_map else 0), features, depth, batch_norm)
        self.mid = len(self.layers) // 2
        self.tail = nn.Conv2d(features, in_channels * 4, 3, padding=1)

    def encoder_modules(self) -> list[nn.Module]:
        return list(self.layers[: self.mid + 1])

    def encode_decode(self, x: torch.Tensor, sigma: torch.Tensor | None = None) -> ModelOutput:
        h = F.pixel_unshuffle(x, 2)
        if self.uses_noise_map:
            h = torch.cat([h, self.noise_map(x, sigma)[:, :, ::2, ::2]], dim=1)
        code = h
        for i, layer in enumerate(self.layers):
            h = layer(h)
            if i == self.mid:
                code = h
        return ModelOutput(F.pixel_shuffle(self.tail(h), 2), code)
