"""Deterministic, stable A/B/n + holdout assignment: hash(campaign, user) -> bucket -> group."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from pydantic import BaseModel, Field, model_validator

from segmint.errors import InvalidInput

HOLDOUT = "control"
BUCKETS = 10_000


class Variant(BaseModel):
    """One message variant of a campaign and its share of the non-holdout audience."""

    key: str = Field(pattern=r"^[A-Za-z0-9_-]{1,32}$")
    weight: float = Field(default=1.0, gt=0)


class Split(BaseModel):
    """How a campaign's audience is split: variants with weights, and a holdout share kept unsent."""

    variants: list[Variant] = Field(default_factory=lambda: [Variant(key="A")], min_length=1)
    holdout: float = Field(default=0.0, ge=0.0, lt=1.0)  # share of the audience in the control group

    @model_validator(mode="after")
    def _unique(self) -> Split:
        keys = [v.key for v in self.variants]
        if len(set(keys)) != len(keys) or HOLDOUT in keys:
            raise InvalidInput(f"variant keys must be unique and not {HOLDOUT!r}: {keys}", where="variants")
        return self

    def groups(self) -> list[str]:
        """Every group a user can land in: the variant keys, then the control group if there is one."""
        return [v.key for v in self.variants] + ([HOLDOUT] if self.holdout > 0 else [])


def bucket(campaign_id: str, user_id: str, salt: str = "") -> float:
    """A uniform number in [0, 1) fixed by (campaign, user, salt): the same user always gets the same one."""
    digest = hashlib.sha256(f"{campaign_id}\x1f{salt}\x1f{user_id}".encode()).digest()
    return (int.from_bytes(digest[:8], "big") % BUCKETS) / BUCKETS


def assign(campaign_id: str, user_id: str, split: Split) -> str:
    """The group of a user in a campaign: HOLDOUT for the control share, else a variant key by weight.

    The holdout decision and the variant choice use independent hashes, so changing variant weights never
    moves users in or out of the control group.
    """
    if split.holdout > 0 and bucket(campaign_id, user_id, "holdout") < split.holdout:
        return HOLDOUT
    return _pick(bucket(campaign_id, user_id, "variant"), split.variants)


def _pick(u: float, variants: Sequence[Variant]) -> str:
    total = sum(v.weight for v in variants)
    acc = 0.0
    for v in variants:
        acc += v.weight / total
        if u < acc:
            return v.key
    return variants[-1].key
