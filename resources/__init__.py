"""Bundled data: pretrained weights and their model card, icons, a sample image."""
