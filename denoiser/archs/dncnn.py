"""DnCNN (Zhang et al. 2017): a plain residual conv net, the classic reference denoiser."""

from __future__ import annotations

import torch
from torch import nn

from denoiser.archs.base import DenoiserNet, ModelOutput, register_arch


def plain_stack(c_in: int, features: int, depth: int, batch_norm: bool) -> nn.ModuleList:
    """conv-ReLU, then (depth-2) × conv-[BN]-ReLU: the body of DnCNN and FFDNet (the tail is the caller's)."""
    layers: list[nn.Module] = [nn.Conv2d(c_in, features, 3, padding=1), nn.ReLU(inplace=True)]
    for _i in range(depth - 2):
        layers.append(nn.Conv2d(features, features, 3, padding=1, bias=not batch_norm))
        if batch_norm:
            layers.append(nn.BatchNorm2d(features))
        layers.append(nn.ReLU(inplace=True))
    return nn.ModuleList(layers)


@register_arch("dncnn")
class DnCNN(DenoiserNet):
    """conv-ReLU, (depth-2) × conv-BN-ReLU, conv; predicts the noise. The middle layer is the code."""

    def __init__(
        self,
        in_channels: int = 3,
        depth: int = 17,
        features: int = 64,
        batch_norm: bool = True,
        noise_map: bool = False,
    ) -> None:
        super().__init__(
            {
                "in_channels": in_channels,
                "depth": depth,
                "features": features,
                "batch_norm": batch_norm,
                "noise_map": noise_map,
            }
        )
        self.layers = plain_stack(in_channels + (1 if noise_map else 0), features, depth, batch_norm)
        self.mid = len(self.layers) // 2
        self.tail = nn.Conv2d(features, in_channels, 3, padding=1)

    def encoder_modules(self) -> list[nn.Module]:
        return list(self.layers[: self.mid + 1])

    def encode_decode(self, x: torch.Tensor, sigma: torch.Tensor | None = None) -> ModelOutput:
        h = torch.cat([x, self.noise_map(x, sigma)], dim=1) if self.uses_noise_map else x
        code = h
        for i, layer in enumerate(self.layers):
            h = layer(h)
            if i == self.mid:
                code = h
        return ModelOutput(x - self.tail(h), code)
