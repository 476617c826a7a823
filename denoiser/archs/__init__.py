"""The autoencoder family, registered by name: `build_arch("unet", **config)`.

Importing this package registers every architecture module below.
"""

from denoiser.archs import conv_ae, dncnn, ffdnet, unet  # noqa: F401,E402  (registration side effects)
from denoiser.archs.base import ARCH_REGISTRY, DenoiserNet, ModelOutput, build_arch, register_arch

__all__ = ["ARCH_REGISTRY", "DenoiserNet", "ModelOutput", "build_arch", "register_arch"]
