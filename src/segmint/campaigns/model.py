"""The campaign model (pydantic; also the YAML form of `campaigns/*.yaml`): who, what, when, guardrails, goal."""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from segmint.campaigns.assignment import HOLDOUT, Split
from segmint.errors import InvalidInput

CHANNELS = ("email", "webhook", "push", "sms", "kakao", "kakao_brand", "in_app", "outbox")
# kakao = AlimTalk (informational template messages), kakao_brand = FriendTalk brand messages (advertising)
Channel = Literal["email", "webhook", "push", "sms", "kakao", "kakao_brand", "in_app", "outbox"]
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|seconds?|m|min|minutes?|h|hours?|d|days?|w|weeks?)\s*$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(value: Any) -> timedelta:
    """`90` (seconds), `"30m"`, `"2 hours"`, `"3d"`, `"1w"` or a timedelta -> timedelta."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return timedelta(seconds=float(value))
    match = _DURATION.match(str(value))
    if not match:
        raise ValueError(f"not a duration: {value!r} (write 30m, 2h, 3d, 1w or seconds)")
    unit = match.group(2)[0]
    return timedelta(seconds=float(match.group(1)) * _UNIT[unit])


def _duration_or_iso(value: Any) -> Any:
    """ISO 8601 durations ("P1D", as JSON dumps write them) pass to pydantic; the rest via parse_duration."""
    if isinstance(value, str) and value.strip().upper().startswith("P"):
        return value
    return parse_duration(value)


class _Model(BaseModel):
    model_config = {"extra": "forbid"}


class OnceSchedule(_Model):
    """One-off: now (no `at`), or at a UTC time; with `local_time`, `at` is a wall-clock time in each user's zone."""

    type: Literal["once"] = "once"
    at: datetime | None = None
    local_time: bool = False

    @model_validator(mode="after")
    def _local_needs_at(self) -> OnceSchedule:
        if self.local_time and self.at is None:
            raise ValueError("local_time needs `at` (a wall-clock time such as 2026-12-01T10:00)")
        return self


class RecurringSchedule(_Model):
    """Recurring on a cron expression, read in `timezone` (default: the workspace's); one occurrence per time."""

    type: Literal["recurring"] = "recurring"
    cron: str
    timezone: str | None = None
    # every cron time is its own occurrence; missed times (server down) up to this old are still planned,
    # oldest first; older ones are skipped
    catch_up: timedelta = timedelta(days=1)

    @field_validator("catch_up", mode="before")
    @classmethod
    def _catch_up(cls, value: Any) -> Any:
        return _duration_or_iso(value)

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        from cronsim import CronSim, CronSimError

        try:
            CronSim(value, datetime(2026, 1, 1))
        except CronSimError as exc:
            raise ValueError(f"bad cron expression {value!r}: {exc}") from None
        return value


class TriggeredSchedule(_Model):
    """Triggered by an event (or `segment_entered` of a segment), sent after a delay, re-checked at send time.

    `delay_max` spreads sends uniformly between `delay` and `delay_max` ("1-3 days after the cart add"),
    fixed per user by a hash. At send time the user must still match the target segments (when `recheck`)
    and must not have done any `cancel_on` event since the trigger (a user who bought gets no cart reminder).
    """

    type: Literal["triggered"] = "triggered"
    event: str = Field(min_length=1, max_length=256)
    segment: str | None = None  # with event = segment_entered: which segment
    where: dict[str, Any] = Field(default_factory=dict)  # property equals filters on the trigger event
    delay: timedelta = timedelta(0)
    delay_max: timedelta | None = None
    recheck: bool = True
    cancel_on: list[str] = Field(default_factory=list)

    @field_validator("delay", "delay_max", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        return None if value is None else _duration_or_iso(value)

    @model_validator(mode="after")
    def _check(self) -> TriggeredSchedule:
        if self.event == "segment_entered" and not self.segment:
            raise ValueError("a segment_entered trigger needs `segment`")
        if self.delay_max is not None and self.delay_max < self.delay:
            raise ValueError("delay_max must be at least delay")
        return self


Schedule = Annotated[OnceSchedule | RecurringSchedule | TriggeredSchedule, Field(discriminator="type")]


class Goal(_Model):
    """The conversion a campaign is measured by: an event with property filters within a window.

    `where` is a mapping of property equals value, or a list of the segment model's property filters
    (`{path: [..], op: gte, value: {kind: value, value: 50000}}`: any operator, as the segment builder writes)."""

    event: str = Field(min_length=1, max_length=256)
    where: dict[str, Any] | list[dict[str, Any]] = Field(default_factory=dict)
    window: timedelta = timedelta(days=3)
    revenue_property: str | None = "revenue"

    @field_validator("window", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        return _duration_or_iso(value)

    @field_validator("where")
    @classmethod
    def _filters(cls, value: Any) -> Any:
        if isinstance(value, list):
            from segmint.segments.model import PropertyFilter

            for i, f in enumerate(value):
                try:
                    PropertyFilter.model_validate(f)
                except ValidationError as exc:
                    err = exc.errors()[0]
                    raise ValueError(f"filter {i + 1}: {str(err['msg']).removeprefix('Value error, ')}") from None
        return value


class Message(_Model):
    """One message of one variant on one channel; every text field is a Liquid template."""

    subject: str = ""
    text: str = ""
    html: str | None = None
    to: str | None = None  # address template; default per channel (user.email, user.phone, user.push_token ...)
    # kakao (AlimTalk): template_code, template_parameters (name -> Liquid), buttons;
    # kakao_brand (FriendTalk): image_url, buttons ([{type WL|AL, name, linkMo, linkPc, schemeIos, schemeAndroid}])
    data: dict[str, Any] = Field(default_factory=dict)
    links: dict[str, str] = Field(default_factory=dict)  # name -> URL, tracked as links.<name>


class VariantSpec(_Model):
    """A variant: its key, its weight in the split and its message per channel."""

    key: str = Field(pattern=r"^[A-Za-z0-9_-]{1,32}$")
    weight: float = Field(default=1.0, gt=0)
    messages: dict[Channel, Message]


class Sender(_Model):
    """Who sends: name and contact are required on advertising under the Korean ad law policy."""

    name: str = ""
    contact: str = ""
    opt_out: str = ""  # free opt-out line, e.g. "무료수신거부 080-123-4567"


class FrequencyCap(_Model):
    """At most `max` messages per `per` (a calendar day or week in the user's zone) on `channel` ("*" = all)."""

    channel: str = "*"
    max: int = Field(ge=1)
    per: Literal["day", "week"] = "day"


class QuietHours(_Model):
    """Local hours when nothing is sent: `delay` to the end of them, or `drop` the message."""

    enabled: bool = True
    start: time = time(21, 0)
    end: time = time(8, 0)
    action: Literal["delay", "drop"] = "delay"


class Policy(_Model):
    """Guardrail settings; the defaults are the Korean advertising law (정보통신망법 제50조) profile."""

    consent_traits: dict[str, str] = Field(default_factory=lambda: {
        "email": "consent_email", "push": "consent_push", "sms": "consent_sms", "kakao": "consent_sms",
        "kakao_brand": "consent_sms"})
    informational_needs_consent: bool = False
    night_consent_trait: str = "consent_night"
    korean_ad_law: bool = True
    ad_prefix: str = "(광고)"
    night_start: time = time(21, 0)
    night_end: time = time(8, 0)
    quiet_hours: QuietHours = Field(default_factory=QuietHours)
    frequency_caps: list[FrequencyCap] = Field(default_factory=lambda: [FrequencyCap(channel="*", max=3, per="day")])
    rate_limits: dict[str, float] = Field(default_factory=dict)  # channel -> messages per second per worker
    batch_sizes: dict[str, int] = Field(default_factory=dict)  # channel -> messages per request (webhook)
    max_attempts: int = Field(default=5, ge=1)


class Campaign(_Model):
    """A campaign: audience (target minus exclusions, capped), schedule, variants and split, goal, policy."""

    id: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,128}$")
    name: str = ""
    description: str = ""
    purpose: Literal["informational", "advertising"] = "advertising"
    target: list[str] = Field(default_factory=list)  # saved segment names; a user in any of them
    exclude: list[str] = Field(default_factory=list)
    audience_cap: int | None = Field(default=None, ge=1)
    schedule: Schedule = Field(default_factory=OnceSchedule)
    channels: list[Channel] = Field(min_length=1)  # in order of preference: the first usable one is used
    variants: list[VariantSpec] = Field(min_length=1)
    holdout: float = Field(default=0.0, ge=0.0, lt=1.0)
    goal: Goal | None = None
    sender: Sender = Field(default_factory=Sender)
    policy: Policy = Field(default_factory=Policy)

    @model_validator(mode="after")
    def _check(self) -> Campaign:
        keys = [v.key for v in self.variants]
        if len(set(keys)) != len(keys) or HOLDOUT in keys:
            raise ValueError(f"variant keys must be unique and not {HOLDOUT!r}: {keys}")
        for v in self.variants:
            missing = [c for c in self.channels if c not in v.messages]
            if missing:
                raise ValueError(f"variant {v.key!r} has no message for channel(s) {missing}")
        if not self.target and not isinstance(self.schedule, TriggeredSchedule):
            raise ValueError("target: name at least one segment (only triggered campaigns may omit it)")
        if self.purpose == "advertising" and self.policy.korean_ad_law and not (self.sender.name and
                                                                                self.sender.contact):
            raise ValueError("advertising under the Korean ad law policy needs sender.name and sender.contact "
                             "(정보통신망법 제50조); or set policy.korean_ad_law: false")
        if isinstance(self.schedule, RecurringSchedule) and self.schedule.timezone:
            try:
                ZoneInfo(self.schedule.timezone)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"unknown time zone {self.schedule.timezone!r}") from None
        return self

    @property
    def split(self) -> Split:
        """The assignment split (variants with weights, holdout share)."""
        return Split.model_validate({"variants": [{"key": v.key, "weight": v.weight} for v in self.variants],
                                     "holdout": self.holdout})

    @property
    def advertising(self) -> bool:
        """Whether the messages are advertising (ad law and marketing consent apply)."""
        return self.purpose == "advertising"

    def variant(self, key: str) -> VariantSpec:
        """The variant with this key."""
        return next(v for v in self.variants if v.key == key)


def parse_campaign(data: Any, where: str = "campaign") -> Campaign:
    """A Campaign from a mapping; a validation error becomes InvalidInput naming the field."""
    if not isinstance(data, dict):
        raise InvalidInput("a campaign is a mapping (id, target, schedule, channels, variants ...)", where=where)
    try:
        return Campaign.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        msg = str(err["msg"]).removeprefix("Value error, ")
        raise InvalidInput(msg, where=f"{where}: {loc}" if loc else where) from None


def read_campaign_file(path: Path) -> Campaign:
    """Read one campaign YAML file."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"not readable YAML: {exc}", where=str(path)) from None
    return parse_campaign(data, where=str(path))


def read_campaign_dir(path: Path) -> list[Campaign]:
    """Every *.yaml / *.yml campaign of a folder, sorted by file name; duplicate ids are an error."""
    folder = Path(path)
    if not folder.is_dir():
        raise InvalidInput(f"no folder {str(folder)!r}", where="path")
    out: list[Campaign] = []
    seen: dict[str, Path] = {}
    for f in sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]):
        c = read_campaign_file(f)
        if c.id in seen:
            raise InvalidInput(f"campaign {c.id!r} is also defined in {seen[c.id]}", where=str(f))
        seen[c.id] = f
        out.append(c)
    return out
