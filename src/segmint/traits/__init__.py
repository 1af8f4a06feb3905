"""Computed traits: RFM, lifecycle, purchase cycle, churn risk, CLV, channel/category affinity, sentiment."""

from segmint.traits.catalog import FAMILIES, TRAITS
from segmint.traits.config import TraitConfig, load_trait_config
from segmint.traits.runner import TraitRun, compute_traits, runs, user_traits

__all__ = ["FAMILIES", "TRAITS", "TraitConfig", "TraitRun", "compute_traits", "load_trait_config", "runs",
           "user_traits"]
