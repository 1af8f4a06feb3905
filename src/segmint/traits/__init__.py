"""Computed traits: RFM, lifecycle, purchase cycle, churn risk, CLV, channel/category affinity, sentiment, and
predictive churn / purchase probabilities."""

from __future__ import annotations

from typing import Any

from segmint.traits.catalog import FAMILIES, TRAITS

_LAZY = {"TraitConfig": "config", "load_trait_config": "config", "TraitRun": "runner", "compute_traits": "runner",
         "runs": "runner", "user_traits": "runner"}

__all__ = ["FAMILIES", "TRAITS", "TraitConfig", "TraitRun", "compute_traits", "load_trait_config", "runs",
           "user_traits"]


def __getattr__(name: str) -> Any:
    """Import the runner (pandas, lifetimes) only when it is used: the segment catalog needs just the names."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"segmint.traits.{_LAZY[name]}"), name)
    raise AttributeError(name)
