"""The default denoiser: a noise-level-conditioned residual UNet sized for a 2-core CPU.

Pixel-unshuffle first halves the resolution (as FFDNet does), so every convolution runs at 1/2, 1/4
or 1/8 of the image size; the bottleneck at 1/8 is the code. The net predicts the noise and
subtracts it (residual learning), and takes σ as an extra input map so one model covers σ 0–75 and
the user can steer its strength.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from denoiser.archs.base import DenoiserNet, ModelOutput, register_arch


class ResBlock(nn.Module):
    """conv-ReLU-conv with an identity shortcut (no normalisation: it hurts low-level restoration)."""

    def __init__(self, ch: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(ch, ch, 3, padding=1)
        self.conv2 = nn.Conv2d(ch, ch, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.relu(self.conv1(x), inplace=True))


def _blocks(ch: int, n: int) -> nn.Sequential:
    return nn.Sequential(*[ResBlock(ch) for _ in range(n)])


@register_arch("unet")
class UNet(DenoiserNet):
    """Residual UNet autoencoder with a noise-level map input."""

    def __init__(
        self,
        in_channels: int = 3,
        channels: tuple[int, ...] | list[int] = (32, 64, 128),
        blocks: int = 2,
        bottleneck_blocks: int = 2,
        noise_map: bool = True,
    ) -> None:
        channels = [int(c) for c in channels]
        super().__init__(
            {
                "in_channels": in_channels,
                "channels": channels,
                "blocks": blocks,
                "bottleneck_blocks": bottleneck_blocks,
                "noise_map": noise_map,
            }
        )
        self.size_multiple = 2 * 2 ** (len(channels) - 1)
        c_in = in_channels * 4 + (1 if noise_map else 0)
        self.head = nn.Conv2d(c_in, channels[0], 3, padding=1)
        self.encoders = nn.ModuleList()
        self.downs = nn.ModuleList()
        for c, c_next in zip(channels[:-1], channels[1:], strict=True):
            self.encoders.append(_blocks(c, blocks))
            self.downs.append(nn.Conv2d(c, c_next, 2, stride=2))
        self.bottleneck = _blocks(channels[-1], bottleneck_blocks)
        self.ups = nn.ModuleList()
        self.decoders = nn.ModuleList()
        for c, c_next in zip(reversed(channels[1:]), reversed(channels[:-1]), strict=True):
            self.ups.append(nn.ConvTranspose2d(c, c_next, 2, stride=2))
            self.decoders.append(_blocks(c_next, blocks))
        self.tail = nn.Conv2d(channels[0], in_channels * 4, 3, padding=1)

    def encoder_modules(self) -> list[nn.Module]:
        return [self.head, self.encoders, self.downs, self.bottleneck]

    def encode_decode(self, x: torch.Tensor, sigma: torch.Tensor | None = None) -> ModelOutput:
        h = F.pixel_unshuffle(x, 2)
        if self.uses_noise_map:
            m = self.noise_map(x, sigma)
            h = torch.cat([h, m[:, :, ::2, ::2] if m.shape[-1] == x.shape[-1] else m], dim=1)
        h = self.head(h)
        skips = []
        for enc, down in zip(self.encoders, self.downs, strict=True):
            h = enc(h)
            skips.append(h)
            h = down(h)
        code = self.bottleneck(h)
        h = code
        for up, dec, skip in zip(self.ups, self.decoders, reversed(skips), strict=True):
            h = dec(up(h) + skip)
        noise = F.pixel_shuffle(self.tail(h), 2)
        return ModelOutput(x - noise, code)


def unet_to_gray(net: UNet) -> UNet:
    """A 1-channel UNet that on a gray image computes what `net` computes on it replicated to RGB.

    The head sums its RGB input weights (gray in all three channels), the tail averages its RGB noise
    outputs; everything else is shared. Used to start the gray model from the colour one.
    """
    if net.in_channels != 3:
        raise ValueError("unet_to_gray converts a 3-channel UNet")
    cfg = {**net.config, "in_channels": 1}
    gray = UNet(**cfg)
    state = {k: v for k, v in net.state_dict().items() if not k.startswith(("head.weight", "tail."))}
    w = net.head.weight.data  # (C0, 3·4 [+1], 3, 3), unshuffled channel index = c·4 + k
    head = w[:, :12].reshape(w.shape[0], 3, 4, 3, 3).sum(dim=1)
    state["head.weight"] = torch.cat([head, w[:, 12:]], dim=1)
    tw, tb = net.tail.weight.data, net.tail.bias.data  # (3·4, C0, 3, 3)
    state["tail.weight"] = tw.reshape(3, 4, *tw.shape[1:]).mean(dim=0)
    state["tail.bias"] = tb.reshape(3, 4).mean(dim=0)
    gray.load_state_dict(state)
    return gray
