"""Trait definitions: the YAML defaults shipped with segmint, deep-merged with the workspace's traits.yaml."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from segmint.errors import InvalidInput

WORKSPACE_FILE = "traits.yaml"
OPS = {"lt": "<", "le": "<=", "gt": ">", "ge": ">=", "eq": "=", "ne": "<>"}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Rule(_Model):
    """A named outcome and the conditions (all must hold) that give it: {field: {op: value}}."""

    name: str
    when: dict[str, dict[str, float]] = Field(default_factory=dict)

    @field_validator("when")
    @classmethod
    def _ops(cls, v: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
        for fld, conds in v.items():
            for op in conds:
                if op not in OPS:
                    raise ValueError(f"{fld}: unknown operator {op!r}; use one of {sorted(OPS)}")
        return v


class PurchaseDef(_Model):
    """Which event is a purchase and which property holds its revenue."""

    event: str
    revenue_property: str


class VisitDef(_Model):
    """Which event is a visit."""

    event: str


class ActivityDef(_Model):
    """Events that do not count as the user's own activity."""

    exclude_events: list[str] = Field(default_factory=list)


class Thresholds(_Model):
    """Fixed RFM cut-offs (method: thresholds)."""

    recency_days: list[float]
    frequency: list[float]
    monetary: list[float]


class RFMDef(_Model):
    """RFM scoring method and tier rules."""

    method: Literal["rank", "thresholds"] = "rank"
    thresholds: Thresholds
    tiers: list[Rule]
    default_tier: str | None = None


class LifecycleDef(_Model):
    """Lifecycle stage rules."""

    reactivation_gap_days: float
    stages: list[Rule]
    default_stage: str


class CycleDef(_Model):
    """Purchase-cycle regularity and overdue rules."""

    min_purchases: int = Field(ge=2)
    regular_max_cv: float
    overdue_factor: float
    item_event: str = "product_purchased"  # one event per purchased item (for the per-category cycle)
    group_property: str = "category"  # the item property whose values have their own cycle (consumables)
    min_group_purchases: int = Field(default=2, ge=2)  # purchase days in a group needed for its cycle


class ChurnDef(_Model):
    """Churn-risk windows and thresholds."""

    window_days: int = Field(gt=0)
    medium_ratio: float
    high_ratio: float
    declining_trend: float


class CLVDef(_Model):
    """BG/NBD + Gamma-Gamma settings."""

    min_customers: int = Field(ge=2)
    penalizer: float = Field(ge=0)
    high_share: float = Field(gt=0, lt=1)
    low_share: float = Field(gt=0, lt=1)


class ChannelDef(_Model):
    """Message events and channel property for channel preference."""

    sent_event: str
    engaged_events: list[str]
    channel_property: str
    min_sent: int = Field(ge=1)


class CategoryDef(_Model):
    """Category affinity: which property, how each event type weighs, how many to keep."""

    property: str
    weights: dict[str, float]
    top: int = Field(ge=1)


class SentimentDef(_Model):
    """Survey and review events and their properties."""

    survey_event: str
    nps_property: str
    review_event: str
    rating_property: str


class PredictDef(_Model):
    """Predictive churn / purchase models: default horizon, the time-based split, LightGBM settings."""

    horizon_days: int = Field(ge=1, le=365)
    population_days: float = Field(gt=0)
    train_cuts: int = Field(ge=1, le=12)
    cut_step_days: int = Field(ge=1)
    min_history_days: int = Field(ge=0)
    top_events: int = Field(ge=0, le=50)
    rounds: int = Field(ge=10, le=5000)
    learning_rate: float = Field(gt=0, le=1)
    num_leaves: int = Field(ge=2, le=1024)
    min_data_in_leaf: int = Field(ge=1)
    max_rows_per_cut: int = Field(ge=100)
    min_window_coverage: float = Field(default=0.5, gt=0, le=1)
    seed: int = 7


class Schedule(_Model):
    """When to run: `every` (a duration such as 30m, 1h, 1d) or `cron` (five-field cron, UTC); null = never."""

    every: str | None = None
    cron: str | None = None

    @field_validator("every")
    @classmethod
    def _every(cls, v: str | None) -> str | None:
        if v is not None:
            from segmint.traits.schedule import parse_duration

            parse_duration(v)
        return v

    @field_validator("cron")
    @classmethod
    def _cron(cls, v: str | None) -> str | None:
        if v is not None:
            from croniter import croniter

            if not croniter.is_valid(v):
                raise ValueError(f"not a valid cron expression: {v!r}")
        return v


class RefreshDef(_Model):
    """Refresh schedules `segmint serve` runs: per family (others use `default`) and for retraining models."""

    enabled: bool = True
    check_seconds: float = Field(gt=0)
    initial_delay: str
    default: Schedule
    families: dict[str, Schedule] = Field(default_factory=dict)
    train: Schedule

    @field_validator("initial_delay")
    @classmethod
    def _delay(cls, v: str) -> str:
        from segmint.traits.schedule import parse_duration

        parse_duration(v, positive=False)
        return v


class HistoryDef(_Model):
    """How much of the computed_traits history to keep."""

    keep_runs: int = Field(ge=1)


class TraitConfig(_Model):
    """All trait definitions."""

    purchase: PurchaseDef
    visit: VisitDef
    activity: ActivityDef
    rfm: RFMDef
    lifecycle: LifecycleDef
    purchase_cycle: CycleDef
    churn: ChurnDef
    clv: CLVDef
    channels: ChannelDef
    categories: CategoryDef
    sentiment: SentimentDef
    predict: PredictDef
    refresh: RefreshDef
    history: HistoryDef


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def default_dict() -> dict[str, Any]:
    """The shipped defaults as a plain dict."""
    return yaml.safe_load(resources.files("segmint.traits").joinpath("defaults.yaml").read_text(encoding="utf-8"))


def load_trait_config(workspace_path: Path | None = None, override: dict[str, Any] | None = None) -> TraitConfig:
    """Defaults, then <workspace>/traits.yaml, then an explicit override dict; errors name the bad key."""
    data = default_dict()
    where = "traits defaults"
    if workspace_path is not None and (workspace_path / WORKSPACE_FILE).exists():
        where = str(workspace_path / WORKSPACE_FILE)
        try:
            user = yaml.safe_load((workspace_path / WORKSPACE_FILE).read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise InvalidInput(f"not valid YAML: {exc}", where=where) from None
        if not isinstance(user, dict):
            raise InvalidInput("expected a mapping of trait families", where=where)
        data = _deep_merge(data, user)
    if override:
        data = _deep_merge(data, override)
    try:
        return TraitConfig.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        raise InvalidInput(err["msg"], where=f"{where}: {loc}") from None
