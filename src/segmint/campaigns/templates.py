"""Message templates in Liquid (the language of Braze, Customer.io, Iterable and Dittofeed).

Variables a template sees (see docs/channels.md, "Templates"):

- `user.id`, `user.traits.<trait>`, `user.computed.<computed trait>`, and every trait also directly as
  `user.<trait>` (`user.name`, `user.email`) unless it is named id, traits or computed;
- `event.<property>` for the triggering event's properties (`event.product_name`), plus `event.event`
  (its name) and `event.timestamp` when known;
- `campaign.id`, `campaign.name`, `unsubscribe_url` and `links.<name>`.

Rendering is strict: a variable that does not exist either has a declared fallback
(`{{ user.name | default: "고객" }}`) or the send is suppressed with a reason ("missing variable
user.name"); output never reads "Hello ,". HTML templates are autoescaped. Output size, loop iterations
and context depth are bounded by python-liquid's resource limits.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from liquid import Environment, FalsyStrictUndefined
from liquid.exceptions import (
    FilterError,
    LiquidError,
    LiquidSyntaxError,
    ResourceLimitError,
    UndefinedError,
)
from liquid.filter import with_context

from segmint.campaigns import korean
from segmint.errors import InvalidInput

DEFAULT_TIMEZONE = "Asia/Seoul"
MAX_OUTPUT_CHARS = 256 * 1024
MAX_LOOP_ITERATIONS = 10_000
MAX_CONTEXT_DEPTH = 20


class _MissingVariable(FalsyStrictUndefined):
    """Strict undefined that still works with `default` and in tests (`{% if user.nickname %}`, `== nil`).

    Printing it (or using it in a filter other than `default`) raises, which suppresses the send.
    """

    force_liquid_default = True

    def __eq__(self, other: object) -> bool:
        return other is False or other is None

    def __hash__(self) -> int:
        return 0


class _BoundedEnvironment(Environment):
    """A Liquid environment with segmint's resource limits."""

    context_depth_limit = MAX_CONTEXT_DEPTH
    loop_iteration_limit = MAX_LOOP_ITERATIONS
    output_stream_limit = MAX_OUTPUT_CHARS
    local_namespace_limit = 64 * 1024


def _krw(value: object) -> str:
    """Liquid filter `krw`: 15000 -> "15,000원"."""
    try:
        return korean.krw(value)
    except InvalidInput as exc:
        raise FilterError(exc.message, token=None) from exc


def _josa(value: object, pair: object = "을/를") -> str:
    """Liquid filter `josa`: "샴푸" | josa: "을/를" -> "샴푸를"."""
    try:
        return korean.josa(value, str(pair))
    except InvalidInput as exc:
        raise FilterError(exc.message, token=None) from exc


def _parse_instant(value: object) -> datetime:
    """A datetime from a datetime, date, ISO-8601 string or epoch seconds (naive means UTC)."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        moment = datetime.fromtimestamp(value, tz=UTC)
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as exc:
            raise FilterError(f"local_date: not a date or time: {value!r}", token=None) from exc
    else:
        raise FilterError(f"local_date: not a date or time: {value!r}", token=None)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@with_context
def _local_date(value: object, fmt: object = "%Y년 %m월 %d일", *, context: Any) -> str:
    """Liquid filter `local_date`: format an instant in the user's time zone (default Asia/Seoul)."""
    zone_name = DEFAULT_TIMEZONE
    user = context.globals.get("user")
    if isinstance(user, Mapping):
        zone_name = user.get("timezone") or (user.get("traits") or {}).get("timezone") or zone_name
    try:
        zone = ZoneInfo(str(zone_name))
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo(DEFAULT_TIMEZONE)
    return _parse_instant(value).astimezone(zone).strftime(str(fmt))


def _make_env(html: bool) -> Environment:
    env = _BoundedEnvironment(undefined=_MissingVariable, autoescape=html)
    env.filters["krw"] = _krw
    env.filters["josa"] = _josa
    env.filters["local_date"] = _local_date
    return env


_TEXT_ENV = _make_env(html=False)
_HTML_ENV = _make_env(html=True)


def _line_col(source: str, index: int | None) -> str:
    """`line:column` (1-based) of a character index in `source` (the end when unknown)."""
    if index is None or index < 0:
        index = len(source)
    line = source.count("\n", 0, index) + 1
    column = index - (source.rfind("\n", 0, index) + 1) + 1
    return f"{line}:{column}"


def _location(source: str, exc: LiquidError) -> str:
    """`line:column` of a Liquid error in `source`."""
    token = getattr(exc, "token", None)
    return _line_col(source, getattr(token, "start_index", -1) if token is not None else -1)


class _Fallback(Exception):
    """The fast renderer met something only the full Liquid renderer handles (the result then comes from it)."""


_MISSING = object()
_SPECIAL_PROPERTIES = frozenset({"size", "first", "last"})  # Liquid properties of arrays, hashes and strings
_FAST_FILTERS = frozenset({"default", "josa", "krw", "upcase", "downcase", "capitalize", "strip", "lstrip",
                           "rstrip", "append", "prepend"})


class _FastText:
    """A text template made only of literal text and `{{ path | filter: literal ... }}` outputs, rendered
    without building a Liquid context: one dict walk per output and direct calls of the same filter
    functions Liquid would call. Anything outside that (a value that is not a string or integer, a missing
    variable without `| default`, a filter error, the output limit) raises _Fallback, and the caller renders
    that recipient with Liquid itself, so results and error messages are exactly Liquid's."""

    __slots__ = ("pieces",)

    def __init__(self, pieces: list[Any]) -> None:
        self.pieces = pieces

    @classmethod
    def build(cls, parsed: Any, env: Environment) -> _FastText | None:
        """The fast form of a parsed template, or None when it uses anything beyond plain outputs."""
        from liquid.builtin.content import ContentNode
        from liquid.builtin.expressions.arguments import PositionalArgument
        from liquid.builtin.expressions.filtered import FilteredExpression
        from liquid.builtin.expressions.path import Path
        from liquid.builtin.expressions.primitive import IntegerLiteral, StringLiteral
        from liquid.builtin.output import OutputNode

        pieces: list[Any] = []
        for node in parsed.nodes:
            if type(node) is ContentNode:
                pieces.append(node.text)
                continue
            if type(node) is not OutputNode or type(node.expression) is not FilteredExpression:
                return None
            expr = node.expression
            left = expr.left
            if type(left) is Path and all(type(seg) in (str, int) for seg in left.path):
                source: Any = tuple(left.path)
            elif type(left) in (StringLiteral, IntegerLiteral):
                source = ("", left.value)
            else:
                return None
            filters = []
            for f in expr.filters:
                if f.name not in _FAST_FILTERS or f.name not in env.filters:
                    return None
                if not all(type(a) is PositionalArgument and type(a.value) in (StringLiteral, IntegerLiteral)
                           for a in f.args):
                    return None
                filters.append((f.name, env.filters[f.name], tuple(a.value.value for a in f.args)))
            if filters and filters[0][0] == "default" and len(filters[0][2]) > 1:
                return None
            pieces.append((source, tuple(filters)))
        return cls(pieces)

    def render(self, variables: Mapping[str, Any]) -> str:
        """The output, or _Fallback."""
        out: list[str] = []
        size = 0
        for piece in self.pieces:
            if type(piece) is str:
                out.append(piece)
                size += len(piece)
                continue
            source, filters = piece
            if source[0] == "":
                value: Any = source[1]
            else:
                value = variables
                for seg in source:
                    if type(value) is dict:
                        if seg in value:
                            value = value[seg]
                        elif seg in _SPECIAL_PROPERTIES:
                            raise _Fallback
                        else:
                            value = _MISSING
                            break
                    else:
                        raise _Fallback
            start = 0
            if value is _MISSING:
                if not filters or filters[0][0] != "default":
                    raise _Fallback  # Liquid raises the missing-variable error with its own wording
                value = filters[0][2][0] if filters[0][2] else ""
                start = 1
            for _name, func, args in filters[start:]:
                if type(value) not in (str, int):
                    raise _Fallback
                try:
                    value = func(value, *args)
                except Exception as exc:
                    raise _Fallback from exc
            if type(value) is str:
                text = value
            elif type(value) is int:
                text = str(value)
            else:
                raise _Fallback
            out.append(text)
            size += len(text)
        if size > MAX_OUTPUT_CHARS:
            raise _Fallback
        return "".join(out)


@dataclass(frozen=True)
class CompiledTemplate:
    """A parsed template ready to render; `html` means autoescaped output."""

    name: str
    source: str
    html: bool
    _template: Any = field(repr=False, compare=False)
    _fast: _FastText | None = field(default=None, repr=False, compare=False)
    # memo of full Liquid renders keyed by the values of the global variables the template reads (None: the
    # template cannot be memoized, e.g. it reads the clock through `date`)
    _memo_paths: tuple[tuple[str | int, ...], ...] | None = field(default=None, repr=False, compare=False)
    _memo: dict[tuple[Any, ...], str] = field(default_factory=dict, repr=False, compare=False)

    def variables(self) -> list[str]:
        """Dotted paths of the variables the template reads (`user.name`, `event.price`), sorted."""
        found = self._template.analyze().variables
        return sorted({".".join(str(seg) for seg in v.segments) for uses in found.values() for v in uses})


def compile_template(source: str, *, name: str = "body", html: bool = False) -> CompiledTemplate:
    """Parse a template; a syntax error raises InvalidInput at `name:line:column`."""
    env = _HTML_ENV if html else _TEXT_ENV
    try:
        parsed = env.from_string(source)
    except LiquidError as exc:
        message = getattr(exc, "message", None) or str(exc).splitlines()[0]
        raise InvalidInput(f"template syntax error: {message}", where=f"{name}:{_location(source, exc)}") from exc
    for filter_name, spans in parsed.analyze().filters.items():
        if filter_name not in env.filters:
            where = f"{name}:{_line_col(source, spans[0].index)}"
            raise InvalidInput(f"unknown filter {filter_name!r}", where=where)
    fast = None if html else _FastText.build(parsed, env)
    return CompiledTemplate(name=name, source=source, html=html, _template=parsed, _fast=fast,
                            _memo_paths=_memo_paths(parsed))


_SCALARS = (str, int, float, bool, type(None))
MEMO_LIMIT = 4096  # distinct variable-value combinations remembered per template


def _memo_paths(parsed: Any) -> tuple[tuple[str | int, ...], ...] | None:
    """The global variable paths a template's output depends on, or None when it cannot be memoized."""
    analysis = parsed.analyze()
    if "date" in analysis.filters:  # `"now" | date` reads the clock
        return None
    paths: set[tuple[str | int, ...]] = set()
    for uses in analysis.globals.values():
        for v in uses:
            if not all(type(seg) in (str, int) for seg in v.segments):
                return None  # an index computed from another variable
            paths.add(tuple(v.segments))
    if "local_date" in analysis.filters:  # reads the user's zone from the context
        paths |= {("user", "timezone"), ("user", "traits", "timezone")}
    return tuple(sorted(paths, key=str))


def _memo_key(paths: tuple[tuple[str | int, ...], ...], variables: Mapping[str, Any]) -> tuple[Any, ...] | None:
    """(type, value) of every path (a missing one as None type); None when a value is not a scalar."""
    key: list[Any] = []
    for path in paths:
        value: Any = variables
        for seg in path:
            if type(value) is not dict or seg in _SPECIAL_PROPERTIES:
                return None  # a property of a string or list (`.size`, `[0]`): not a plain lookup
            if seg not in value:
                value = _MISSING
                break
            value = value[seg]
        if value is _MISSING:
            key.append(None)
        elif type(value) in _SCALARS:
            key.append((type(value), value))
        else:
            return None  # a list or object: the output may depend on all of it
    return tuple(key)


@dataclass(frozen=True)
class Rendered:
    """The outcome of rendering one message: its parts, or why it must not be sent."""

    parts: dict[str, str]
    suppressed: str | None = None

    @property
    def ok(self) -> bool:
        """True when the message may be sent."""
        return self.suppressed is None


def build_variables(
    *,
    user_id: str,
    traits: Mapping[str, Any] | None = None,
    computed: Mapping[str, Any] | None = None,
    event: Mapping[str, Any] | None = None,
    event_name: str | None = None,
    event_timestamp: Any = None,
    campaign: Mapping[str, Any] | None = None,
    unsubscribe_url: str | None = None,
    links: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The documented variable shape for a render (user, event, campaign, unsubscribe_url, links)."""
    traits = dict(traits or {})
    user: dict[str, Any] = {k: v for k, v in traits.items() if k not in {"id", "traits", "computed"}}
    user.update(id=user_id, traits=traits, computed=dict(computed or {}))
    variables: dict[str, Any] = {"user": user, "campaign": dict(campaign or {}), "links": dict(links or {})}
    if event is not None or event_name is not None:
        ev = dict(event or {})
        if event_name is not None:
            ev.setdefault("event", event_name)
        if event_timestamp is not None:
            ev.setdefault("timestamp", event_timestamp)
        variables["event"] = ev
    if unsubscribe_url is not None:
        variables["unsubscribe_url"] = unsubscribe_url
        variables["links"].setdefault("unsubscribe", unsubscribe_url)
    return variables


def _undefined_name(exc: UndefinedError) -> str:
    message = getattr(exc, "message", "") or str(exc).splitlines()[0]
    return message.removesuffix(" is undefined").strip("'")


def render(templates: Mapping[str, CompiledTemplate], variables: Mapping[str, Any]) -> Rendered:
    """Render every part (subject, html, text ...); a missing variable or limit suppresses the send."""
    parts: dict[str, str] = {}
    for part, template in templates.items():
        if template._fast is not None:
            try:
                parts[part] = template._fast.render(variables)
                continue
            except _Fallback:
                pass
        key = _memo_key(template._memo_paths, variables) if template._memo_paths is not None else None
        if key is not None and key in template._memo:
            parts[part] = template._memo[key]
            continue
        try:
            parts[part] = template._template.render(**variables)
            if key is not None and len(template._memo) < MEMO_LIMIT:
                template._memo[key] = parts[part]
        except UndefinedError as exc:
            return Rendered(parts={}, suppressed=f"missing variable {_undefined_name(exc)} (in {template.name})")
        except ResourceLimitError as exc:
            reason = getattr(exc, "message", None) or str(exc).splitlines()[0]
            return Rendered(parts={}, suppressed=f"template limit exceeded in {template.name}: {reason}")
        except LiquidError as exc:
            reason = getattr(exc, "message", None) or str(exc).splitlines()[0]
            return Rendered(parts={}, suppressed=f"template error in {template.name}: {reason}")
    return Rendered(parts=parts)


def render_string(source: str, variables: Mapping[str, Any], *, html: bool = False) -> Rendered:
    """Compile and render one template (convenience for previews and tests)."""
    return render({"body": compile_template(source, html=html)}, variables)


__all__ = [
    "CompiledTemplate",
    "LiquidSyntaxError",
    "Rendered",
    "build_variables",
    "compile_template",
    "render",
    "render_string",
]
