"""Synthetic sample exports in the raw data contract's layout, with known injected defects."""

from orchestration.sample_data.generator import generate

__all__ = ["generate"]
