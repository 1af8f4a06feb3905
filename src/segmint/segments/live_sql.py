"""Compiled members queries reused across as-of times, and their per-user restriction.

Compiling a tree with sqlglot costs ~10-30 ms, too much to repeat for 20 segments on every live step. The
as-of time only enters the query through bound parameters that are `as_of - constant`, so a `Template`
compiles a tree at two odd reference times, keeps the SQL text, learns which parameters move with as_of
(times, and epochs in microseconds), and checks the rule at a third time; from then on a new as-of time costs a
dict comprehension. A tree whose parameters do not follow the rule (calendar windows: local midnights) is
compiled afresh every time.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

import sqlglot
from sqlglot import exp

from segmint.segments.compile import compile_segment

_A = datetime(1987, 7, 13, 3, 17, 29, 123457)  # odd instants unlikely to equal a constant of a tree
_B = _A + timedelta(days=1, seconds=7, microseconds=13)
_C = _A + timedelta(days=3, hours=5, microseconds=101)
U_EVENTS, U_PROFILES = "_live_events", "_live_profiles"


_US = timedelta(microseconds=1)


def _shifted(a: Any, b: Any) -> bool:
    """Whether a parameter moved with the as-of time from _A to _B: a datetime by the same amount, or an integer
    count of microseconds (an epoch in microseconds) by as many microseconds."""
    if isinstance(a, datetime) and isinstance(b, datetime):
        return b - a == _B - _A
    return type(a) is int and type(b) is int and b - a == (_B - _A) // _US


class Template:
    """The members query of one tree for any as-of time (DuckDB or ClickHouse dialect)."""

    def __init__(self, tree: Any, *, dialect: str = "duckdb", typed: dict[str, str] | None = None,
                 workspace_tz: str = "Asia/Seoul") -> None:
        self.tree, self.dialect, self.typed, self.workspace_tz = tree, dialect, dict(typed or {}), workspace_tz
        sql_a, pa = self._compile(_A)
        sql_b, pb = self._compile(_B)
        self.sql, self.base = sql_a, pa
        self.moving = {k for k in pa if pa[k] != pb.get(k)}
        self.ok = sql_a == sql_b and pa.keys() == pb.keys() and all(_shifted(pa[k], pb[k]) for k in self.moving)
        if self.ok:
            sql_c, pc = self._compile(_C)
            self.ok = sql_c == sql_a and pc == self._params(_C)

    def _compile(self, as_of: datetime) -> tuple[str, dict[str, Any]]:
        return compile_segment(self.tree, as_of, dialect=self.dialect, typed=self.typed,
                               workspace_tz=self.workspace_tz)

    def _params(self, as_of: datetime) -> dict[str, Any]:
        shift = as_of - _A
        micros = shift // _US
        return {k: (v if k not in self.moving else v + shift if isinstance(v, datetime) else v + micros)
                for k, v in self.base.items()}

    def at(self, as_of: datetime) -> tuple[str, dict[str, Any]]:
        """(sql, params) of the members query as of a time (naive UTC)."""
        if not self.ok:
            return self._compile(as_of)
        return self.sql, self._params(as_of)


USERS_PARAM = "live_u"  # per part: the users whose events can change that segment


@lru_cache(maxsize=512)
def restricted(sql: str, prefix: str) -> str:
    """A DuckDB members query reading only its users' rows of the `_live_*` CTEs (`$<prefix>live_u`), other
    parameters prefixed."""
    users = exp.Placeholder(this=prefix + USERS_PARAM)

    def swap(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Table) and not node.args.get("db") and node.name in ("events", "profiles"):
            source = U_EVENTS if node.name == "events" else U_PROFILES
            mine = exp.select("*").from_(source).where(
                exp.column("user_id").isin(query=exp.select(exp.Unnest(expressions=[users.copy()]))))
            return mine.subquery(node.alias or node.name)
        if isinstance(node, exp.Placeholder):
            return exp.Placeholder(this=prefix + node.name)
        return node

    return sqlglot.parse_one(sql, read="duckdb").transform(swap).sql(dialect="duckdb")


def users_query(parts: list[tuple[str, str, dict[str, Any], list[str]]], *,
                extra: tuple[str, ...] = ()) -> tuple[str, dict[str, Any]]:
    """One query evaluating several members queries (key, sql, params, users) each over its own users: rows
    (s, user_id, *extra columns of the parts), s = the part's position. The touched users' rows (`$live_users`,
    the union of the parts' users) are read from the store once. The key (stable per segment version) prefixes
    a part's parameters, so the rewritten text of each part is cached across steps."""
    selects, params = [], {}
    everyone: set[str] = set()
    for i, (key, sql, p, users) in enumerate(parts):
        cols = "".join(f", q{i}.{c}" for c in extra)
        selects.append(f"SELECT {i} AS s, q{i}.user_id{cols} FROM ({restricted(sql, f'{key}_')}) AS q{i}")
        params.update({f"{key}_{k}": v for k, v in p.items()})
        params[f"{key}_{USERS_PARAM}"] = users
        everyone.update(users)
    params["live_users"] = sorted(everyone)
    sql = (f"WITH {U_EVENTS} AS MATERIALIZED (SELECT * FROM events WHERE user_id IN (SELECT unnest($live_users))), "
           f"{U_PROFILES} AS MATERIALIZED (SELECT * FROM profiles WHERE user_id IN (SELECT unnest($live_users))) "
           + " UNION ALL ".join(selects))
    return sql, params
