"""Accelerator names and specs, price offers, importers and the shipped default catalog."""

from suanli.catalog.accelerators import accelerator_names, canonical_accelerator

__all__ = ["accelerator_names", "canonical_accelerator"]
