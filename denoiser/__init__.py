"""Denoiser Studio engine: convolutional denoising autoencoders in pure PyTorch (never imports Qt)."""

__version__ = "0.1.0"
