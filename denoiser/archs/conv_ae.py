"""The plain convolutional autoencoder: encoder h = f(x), decoder r = g(h), with a bottleneck.

The seed form of the family. `depth` stride-2 stages shrink the code spatially and `code_channels`
sets its width, so the code can be undercomplete (a true bottleneck) or overcomplete (`overcomplete`
ratio > 1, where an unregularised net can learn the identity). A sigmoid code layer gives the
activations in (0, 1) that the KL sparsity penalty needs.
"""

from __future__ import annotations

import torch
from torch import nn

from denoiser.archs.base import DenoiserNet, ModelOutput, register_arch


@register_arch("conv-ae")
class ConvAutoencoder(DenoiserNet):
    """Bottleneck conv autoencoder reconstructing the image directly (no residual shortcut)."""

    def __init__(
        self,
        in_channels: int = 3,
        width: int = 32,
        depth: int = 2,
        code_channels: int = 16,
        code_activation: str = "sigmoid",
    ) -> None:
        if code_activation not in ("sigmoid", "relu", "none"):
            raise ValueError("code_activation must be sigmoid, relu or none")
        super().__init__(
            {
                "in_channels": in_channels,
                "width": width,
                "depth": depth,
                "code_channels": code_channels,
                "code_activation": code_activation,
            }
        )
        self.code_in_unit_interval = code_activation == "sigmoid"
        self.size_multiple = 2**depth
        enc: list[nn.Module] = [nn.Conv2d(in_channels, width, 3, padding=1), nn.ReLU(inplace=True)]
        ch = width
        for _i in range(depth):
            enc += [nn.Conv2d(ch, ch * 2, 3, stride=2, padding=1), nn.ReLU(inplace=True)]
            ch *= 2
        enc.append(nn.Conv2d(ch, code_channels, 3, padding=1))
        act = {"sigmoid": nn.Sigmoid(), "relu": nn.ReLU(), "none": nn.Identity()}[code_activation]
        enc.append(act)
        self.encoder = nn.Sequential(*enc)
        dec: list[nn.Module] = [nn.Conv2d(code_channels, ch, 3, padding=1), nn.ReLU(inplace=True)]
        for _i in range(depth):
            dec += [nn.ConvTranspose2d(ch, ch // 2, 4, stride=2, padding=1), nn.ReLU(inplace=True)]
            ch //= 2
        dec.append(nn.Conv2d(ch, in_channels, 3, padding=1))
        self.decoder = nn.Sequential(*dec)

    @property
    def overcomplete_ratio(self) -> float:
        """Code size over input size: > 1 means the code layer is larger than the input."""
        c = self.config
        return c["code_channels"] / (c["in_channels"] * 4 ** c["depth"])

    def encoder_modules(self) -> list[nn.Module]:
        return [self.encoder]

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """h = f(x)."""
        return self.encoder(x)

    def decode(self, h: torch.Tensor) -> torch.Tensor:
        """r = g(h)."""
        return self.decoder(h)

    def encode_decode(self, x: torch.Tensor, sigma: torch.Tensor | None = None) -> ModelOutput:
        code = self.encode(x)
        return ModelOutput(self.decode(code), code)
