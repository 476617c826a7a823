"""Common interface of every denoising architecture, and the registry that builds them by name."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

ARCH_REGISTRY: dict[str, type[DenoiserNet]] = {}


def register_arch(name: str) -> Callable[[type[DenoiserNet]], type[DenoiserNet]]:
    """Class decorator adding an architecture to `ARCH_REGISTRY` under `name`."""

    def wrap(cls: type[DenoiserNet]) -> type[DenoiserNet]:
        if name in ARCH_REGISTRY:
            raise ValueError(f"architecture '{name}' registered twice")
        cls.arch_name = name
        ARCH_REGISTRY[name] = cls
        return cls

    return wrap


def build_arch(name: str, **config: Any) -> DenoiserNet:
    """Instantiate a registered architecture from its config (unknown names raise ValueError)."""
    try:
        cls = ARCH_REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown architecture '{name}' (known: {', '.join(ARCH_REGISTRY)})") from None
    takes = arch_options(name)
    unknown = sorted(set(config) - set(takes))
    if unknown:
        raise ValueError(f"unknown option{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} for architecture "
                         f"'{name}' (it takes {', '.join(takes)})")
    return cls(**config)


def arch_options(name: str) -> list[str]:
    """The options architecture `name` takes, so a misspelt one is refused rather than ignored."""
    params = inspect.signature(ARCH_REGISTRY[name].__init__).parameters
    return [p for p in params if p != "self"]


@dataclass
class ModelOutput:
    """A forward pass: the restored image and the code (bottleneck activations) it went through."""

    image: torch.Tensor
    code: torch.Tensor


class DenoiserNet(nn.Module):
    """Base of all architectures.

    `forward(x, sigma)` maps a noisy (B, C, H, W) image in [0, 1] to its restoration. `sigma` is the
    noise level as a fraction of full scale (σ/255): a (B,) tensor or a (B, 1, H, W) map; models
    without a noise-level input ignore it. `encode_decode` also returns the code, so the encoder-
    robustness and sparsity losses can use it.
    """

    arch_name: str = ""
    #: True when the code activations lie in (0, 1) (a sigmoid code layer), as KL sparsity assumes.
    code_in_unit_interval: bool = False
    #: Spatial size must be a multiple of this for a forward pass (inference pads to it).
    size_multiple: int = 1

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__()
        self.config = dict(config)
        self.in_channels = int(config.get("in_channels", 3))
        self.uses_noise_map = bool(config.get("noise_map", False))

    def encode_decode(self, x: torch.Tensor, sigma: torch.Tensor | None = None) -> ModelOutput:
        """Restore `x` and return the code as well."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor, sigma: torch.Tensor | None = None) -> torch.Tensor:
        """Restore `x` (see class docstring)."""
        return self.encode_decode(x, sigma).image

    def noise_map(self, x: torch.Tensor, sigma: torch.Tensor | float | None) -> torch.Tensor:
        """Broadcast the noise level to a (B, 1, H, W) map matching `x`."""
        if sigma is None:
            raise ValueError(f"{self.arch_name} takes a noise-level map: give sigma")
        s = torch.as_tensor(sigma, dtype=x.dtype, device=x.device)
        if s.dim() == 0:
            s = s.expand(x.shape[0])
        if s.dim() == 1:
            s = s.view(-1, 1, 1, 1)
        return s.expand(x.shape[0], 1, x.shape[2], x.shape[3])

    def encoder_modules(self) -> list[nn.Module]:
        """The modules that compute the code (frozen by fine-tuning's --freeze-encoder)."""
        return []

    def parameter_count(self) -> int:
        """Number of trainable parameters."""
        return sum(p.numel() for p in self.parameters())

    @torch.no_grad()
    def macs_per_pixel(self, size: int = 64) -> float:
        """Multiply-adds per input pixel, counted over the convolutions of a forward pass."""
        total = 0

        def hook(module: nn.Module, _inp: Any, out: torch.Tensor) -> None:
            nonlocal total
            if isinstance(module, nn.Conv2d):
                k = module.kernel_size[0] * module.kernel_size[1] * module.in_channels // module.groups
                total += out.numel() * k
            elif isinstance(module, nn.ConvTranspose2d):
                k = module.kernel_size[0] * module.kernel_size[1] * module.out_channels // module.groups
                total += _inp[0].numel() * k

        handles = [m.register_forward_hook(hook) for m in self.modules() if isinstance(m, nn.Conv2d | nn.ConvTranspose2d)]
        was_training = self.training
        self.eval()
        try:
            x = torch.zeros(1, self.in_channels, size, size)
            self(x, torch.zeros(1))
        finally:
            for h in handles:
                h.remove()
            self.train(was_training)
        return total / (size * size)
