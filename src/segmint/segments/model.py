"""The typed segment condition tree: every node type in one place (pydantic v2, tagged by `kind`).

The exact meaning of every node is written in docs/segment-language.md; the reference evaluator
(reference.py) implements it and the SQL compiler (compile.py) must agree with it.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Unit = Literal["seconds", "minutes", "hours", "days", "weeks", "months"]
UNIT_SECONDS: dict[str, int] = {
    "seconds": 1,
    "minutes": 60,
    "hours": 3600,
    "days": 86400,
    "weeks": 7 * 86400,
    "months": 30 * 86400,  # a month is exactly 30 days, in every engine
}

MAX_SPAN_SECONDS = 1000 * 365 * 86400  # no window reaches before year 1 or overflows a timedelta
Scalar = str | bool | int | float


def _utc_naive(v: datetime | None) -> datetime | None:
    """Aware datetimes become naive UTC; naive ones are taken as UTC already."""
    if v is None or v.tzinfo is None:
        return v
    return v.astimezone(UTC).replace(tzinfo=None)


def _finite(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        raise ValueError("numbers must be finite")
    if isinstance(v, int) and not isinstance(v, bool) and not -(2**63) <= v < 2**63:
        raise ValueError("whole numbers must fit in 64 bits")
    return v


class _Node(BaseModel):
    """Base of every tree node: immutable, no unknown fields."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Duration(_Node):
    """A span of time: amount x unit (a month is 30 days)."""

    amount: int = Field(ge=0)
    unit: Unit

    @model_validator(mode="after")
    def _not_huge(self) -> Duration:
        if self.amount * UNIT_SECONDS[self.unit] > MAX_SPAN_SECONDS:
            raise ValueError("a duration can be at most 1000 years")
        return self

    def to_timedelta(self) -> timedelta:
        """The span as a timedelta (exact seconds)."""
        return timedelta(seconds=self.amount * UNIT_SECONDS[self.unit])


# ---------------------------------------------------------------- operands (right-hand sides)


class Value(_Node):
    """A literal scalar; its type decides how the left side is compared (number, string, bool)."""

    kind: Literal["value"] = "value"
    value: Scalar

    _v = field_validator("value")(_finite)


class ValueList(_Node):
    """A literal list for `in` / `not in` (all items of one type)."""

    kind: Literal["values"] = "values"
    values: list[Scalar] = Field(min_length=1)

    @field_validator("values")
    @classmethod
    def _one_type(cls, v: list[Scalar]) -> list[Scalar]:
        kinds = {"bool" if isinstance(x, bool) else "number" if isinstance(x, int | float) else "string"
                 for x in v}
        if len(kinds) > 1:
            raise ValueError("all values of a list must have one type (strings, numbers or booleans)")
        for x in v:
            _finite(x)
        return v


class DateTimeValue(_Node):
    """An absolute time (naive = UTC)."""

    kind: Literal["datetime"] = "datetime"
    value: datetime

    _v = field_validator("value")(_utc_naive)


class AnchorRef(_Node):
    """A property of the event bound by an enclosing `with ... as NAME` (e.g. cart.category), x factor."""

    kind: Literal["anchor_ref"] = "anchor_ref"
    anchor: str
    path: list[str] = Field(min_length=1)
    factor: float | None = None


class TraitRef(_Node):
    """The user's own trait value, x factor."""

    kind: Literal["trait_ref"] = "trait_ref"
    name: str
    factor: float | None = None


class AggregateExpr(_Node):
    """fn(property) over this user's events named `event` matching `where` inside `window`."""

    kind: Literal["aggregate_expr"] = "aggregate_expr"
    fn: Literal["count", "sum", "avg", "min", "max", "count_distinct"]
    event: str
    property: list[str] | None = None  # required except for count
    where: list[PropertyFilter] = Field(default_factory=list)
    window: Window = Field(default_factory=lambda: EverWindow())
    factor: float | None = None  # used when the expression is a right-hand side: factor x value

    @model_validator(mode="after")
    def _needs_property(self) -> AggregateExpr:
        if self.fn != "count" and not self.property:
            raise ValueError(f"{self.fn} needs a property")
        if self.fn == "count" and self.property:
            raise ValueError("count counts events and takes no property (use count_distinct)")
        return self


Operand = Annotated[
    Value | ValueList | DateTimeValue | AnchorRef | TraitRef | AggregateExpr, Field(discriminator="kind")
]

CompareOp = Literal["eq", "ne", "gt", "gte", "lt", "lte", "between", "in", "not_in", "contains",
                    "starts_with", "exists", "not_exists"]
NO_OPERAND_OPS = ("exists", "not_exists")


class PropertyFilter(_Node):
    """A test on one event property (nested JSON path allowed): path op value [and value2]."""

    path: list[str] = Field(min_length=1)
    op: CompareOp
    value: Operand | None = None
    value2: Operand | None = None  # upper bound for between

    @model_validator(mode="after")
    def _operands(self) -> PropertyFilter:
        _check_operands(self.op, self.value, self.value2)
        return self


def _check_operands(op: str, value: Any, value2: Any) -> None:
    if op in NO_OPERAND_OPS:
        if value is not None or value2 is not None:
            raise ValueError(f"{op} takes no value")
        return
    if value is None:
        raise ValueError(f"{op} needs a value")
    if (op == "between") != (value2 is not None):
        raise ValueError("between needs two values; other operators one")
    if (op in ("in", "not_in")) != isinstance(value, ValueList):
        raise ValueError("in / not in need a list of values; other operators a single value")


# ---------------------------------------------------------------- windows


class EverWindow(_Node):
    """Any time up to as_of."""

    kind: Literal["ever"] = "ever"


class LastWindow(_Node):
    """as_of - duration < ts <= as_of ("in last 30 days")."""

    kind: Literal["last"] = "last"
    duration: Duration


class AgoWindow(_Node):
    """ts <= as_of - duration ("at least 3 days ago")."""

    kind: Literal["ago"] = "ago"
    duration: Duration


class BetweenWindow(_Node):
    """start <= ts < end (absolute; either side may be open), and ts <= as_of."""

    kind: Literal["between"] = "between"
    start: datetime | None = None
    end: datetime | None = None

    _v = field_validator("start", "end")(_utc_naive)

    @model_validator(mode="after")
    def _a_bound(self) -> BetweenWindow:
        if self.start is None and self.end is None:
            raise ValueError("a between window needs a start or an end")
        if self.start is not None and self.end is not None and self.end < self.start:
            raise ValueError("a between window's end is before its start")
        return self


class AfterAnchorWindow(_Node):
    """anchor.ts < ts [<= anchor.ts + within], and ts <= as_of."""

    kind: Literal["after"] = "after"
    anchor: str
    within: Duration | None = None


class BeforeAnchorWindow(_Node):
    """[anchor.ts - within <=] ts < anchor.ts."""

    kind: Literal["before"] = "before"
    anchor: str
    within: Duration | None = None


class EachWindow(_Node):
    """Regularly: the count test holds in each of the last `periods` spans of `unit` (performed only)."""

    kind: Literal["each"] = "each"
    periods: int = Field(ge=1)
    unit: Unit

    @model_validator(mode="after")
    def _not_huge(self) -> EachWindow:
        if self.periods * UNIT_SECONDS[self.unit] > MAX_SPAN_SECONDS:
            raise ValueError("the periods can span at most 1000 years")
        return self


class CalendarWindow(_Node):
    """From the start of the current calendar day/week(Mon)/month in a zone, up to as_of."""

    kind: Literal["calendar"] = "calendar"
    unit: Literal["day", "week", "month"]
    zone: Literal["user", "workspace"] = "user"  # user = the profile's timezone when known


Window = Annotated[
    EverWindow | LastWindow | AgoWindow | BetweenWindow | AfterAnchorWindow | BeforeAnchorWindow
    | EachWindow | CalendarWindow,
    Field(discriminator="kind"),
]


class CountSpec(_Node):
    """How many matching events: op n [and n2]; `eq 0` is "did not"."""

    op: Literal["gte", "lte", "eq", "between"] = "gte"
    n: int = Field(default=1, ge=0)
    n2: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _between(self) -> CountSpec:
        if (self.op == "between") != (self.n2 is not None):
            raise ValueError("between needs two counts; other operators one")
        if self.n2 is not None and self.n2 < self.n:
            raise ValueError(f"between {self.n} and {self.n2}: the second count is smaller than the first")
        return self

    def holds(self, n: int) -> bool:
        """Whether a count of n matching events satisfies this test."""
        if self.op == "gte":
            return n >= self.n
        if self.op == "lte":
            return n <= self.n
        if self.op == "eq":
            return n == self.n
        return self.n <= n <= (self.n2 if self.n2 is not None else self.n)


# ---------------------------------------------------------------- conditions


class And(_Node):
    """All items hold."""

    kind: Literal["and"] = "and"
    items: list[Condition] = Field(min_length=2)


class Or(_Node):
    """At least one item holds."""

    kind: Literal["or"] = "or"
    items: list[Condition] = Field(min_length=2)


class Not(_Node):
    """The item does not hold."""

    kind: Literal["not"] = "not"
    item: Condition


PROFILE_FIELDS = ("first_seen", "last_seen", "timezone")
TraitOp = Literal["eq", "ne", "gt", "gte", "lt", "lte", "between", "in", "not_in", "contains",
                  "starts_with", "exists", "not_exists", "within_last", "older_than"]


class TraitCondition(_Node):
    """A profile trait (or built-in profile field) compared with a value; dates relative or absolute."""

    kind: Literal["trait"] = "trait"
    name: str
    source: Literal["trait", "profile"] = "trait"  # profile = built-in first_seen/last_seen/timezone
    op: TraitOp
    value: Operand | None = None
    value2: Operand | None = None
    duration: Duration | None = None  # for within_last / older_than

    @model_validator(mode="after")
    def _operands(self) -> TraitCondition:
        if self.source == "profile" and self.name not in PROFILE_FIELDS:
            raise ValueError(f"unknown profile field {self.name!r} (known: {', '.join(PROFILE_FIELDS)})")
        if self.op in ("within_last", "older_than"):
            if self.duration is None or self.value is not None or self.value2 is not None:
                raise ValueError(f"{self.op} needs a duration and no value")
        else:
            if self.duration is not None:
                raise ValueError(f"{self.op} takes no duration")
            _check_operands(self.op, self.value, self.value2)
        return self


class Performed(_Node):
    """Did event [where filters] count-op N times inside a window ("did not" = eq 0)."""

    kind: Literal["performed"] = "performed"
    event: str
    where: list[PropertyFilter] = Field(default_factory=list)
    count: CountSpec = Field(default_factory=CountSpec)
    window: Window = Field(default_factory=EverWindow)
    new_profiles: Literal["include", "exclude"] = "include"  # exclude: false if profile younger than window


class AggregateCondition(_Node):
    """An aggregate of a property over matching events compared with a value, trait or other aggregate."""

    kind: Literal["aggregate"] = "aggregate"
    agg: AggregateExpr
    op: Literal["eq", "ne", "gt", "gte", "lt", "lte", "between"]
    value: Operand
    value2: Operand | None = None

    @model_validator(mode="after")
    def _operands(self) -> AggregateCondition:
        _check_operands(self.op, self.value, self.value2)
        if self.agg.factor is not None:
            raise ValueError("the compared aggregate takes no factor (put the factor on the right side)")
        return self


class FirstCondition(_Node):
    """The user's first matching event (as of as_of) exists and falls inside the window."""

    kind: Literal["first"] = "first"
    event: str
    where: list[PropertyFilter] = Field(default_factory=list)
    window: Window


class LastCondition(_Node):
    """The user's last matching event (as of as_of) exists and falls inside the window (recency)."""

    kind: Literal["last"] = "last"
    event: str
    where: list[PropertyFilter] = Field(default_factory=list)
    window: Window


class Step(_Node):
    """One step of a sequence: an event with optional property filters."""

    event: str
    where: list[PropertyFilter] = Field(default_factory=list)


class Sequence(_Node):
    """steps[0] (inside window) then steps[1] then ... each strictly later, all within `within` of step 0.

    followed=False ("not followed by") takes exactly two steps: some steps[0] event has no later steps[1]
    event within `within` (or ever, up to as_of, when within is None).
    """

    kind: Literal["sequence"] = "sequence"
    steps: list[Step] = Field(min_length=2)
    within: Duration | None = None
    window: Window = Field(default_factory=EverWindow)
    followed: bool = True

    @model_validator(mode="after")
    def _two_for_not(self) -> Sequence:
        if not self.followed and len(self.steps) != 2:
            raise ValueError("'not followed by' takes exactly two steps")
        return self


class Anchor(_Node):
    """Binds one of the user's events as NAME: the first, the last, or any one matching event."""

    name: str
    pick: Literal["first", "last", "any"]
    event: str
    where: list[PropertyFilter] = Field(default_factory=list)
    window: Window = Field(default_factory=EverWindow)


class Correlated(_Node):
    """with PICK EVENT as NAME: condition — true if the (some, for any) bound event satisfies condition."""

    kind: Literal["with"] = "with"
    anchor: Anchor
    condition: Condition


class Streak(_Node):
    """The last N `sent_event`s of a channel all lack a matching `response_event` (not opened N in a row)."""

    kind: Literal["streak"] = "streak"
    channel: str
    n: int = Field(ge=1)
    sent_event: str = "message_sent"
    response_event: str = "message_opened"


class IntervalRatio(_Node):
    """Time since the last matching event >= factor x the median gap between consecutive matching events."""

    kind: Literal["interval_ratio"] = "interval_ratio"
    event: str
    where: list[PropertyFilter] = Field(default_factory=list)
    factor: float = Field(gt=0)
    min_gaps: int = Field(default=2, ge=1)  # fewer gaps than this: false


class InSegment(_Node):
    """Member of another saved segment (by name); negate with not."""

    kind: Literal["in_segment"] = "in_segment"
    segment: str


Condition = Annotated[
    And | Or | Not | TraitCondition | Performed | AggregateCondition | FirstCondition | LastCondition
    | Sequence | Correlated | Streak | IntervalRatio | InSegment,
    Field(discriminator="kind"),
]


class Segment(BaseModel):
    """A saved segment: a name, a description, the condition tree, and dynamic (live) or static."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=128)
    description: str = ""
    definition: Condition
    dynamic: bool = True

    @field_validator("name")
    @classmethod
    def _clean_name(cls, v: str) -> str:
        if v != v.strip() or any(ord(c) < 32 for c in v):
            raise ValueError("segment name may not have surrounding spaces or control characters")
        return v


for _m in (AggregateExpr, PropertyFilter, And, Or, Not, TraitCondition, Performed, AggregateCondition,
           FirstCondition, LastCondition, Step, Sequence, Anchor, Correlated, Segment):
    _m.model_rebuild()


class _ConditionRoot(BaseModel):
    """Wrapper used to validate a bare condition from JSON."""

    condition: Condition


def condition_from_json(data: Any) -> Condition:
    """Validate a JSON-like value (dict) into a condition tree."""
    return _ConditionRoot.model_validate({"condition": data}).condition


def segment_json_schema() -> dict[str, Any]:
    """JSON Schema of a saved Segment (and, through it, of every node type)."""
    schema = Segment.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://segmint.dev/schema/segment.schema.json"
    return schema


def write_json_schema(path: Path) -> None:
    """Write the Segment JSON Schema to a file (docs/segment.schema.json)."""
    path.write_text(json.dumps(segment_json_schema(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":  # python -m segmint.segments.model docs/segment.schema.json
    import sys

    write_json_schema(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/segment.schema.json"))
