"""Dialogs: batch processing, save options, about."""
