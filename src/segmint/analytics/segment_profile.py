"""Segment profile: how the members' traits (profile traits and computed traits, both in `profiles.traits`)
are distributed against the whole population, with the traits where members diverge most flagged.

Categorical traits (text, booleans, and numbers with few distinct values) give each value's share among
members and among everyone, and the lift (member share / population share). Numeric traits give count,
mean and quantiles for both. Every trait gets one divergence score on one scale, the total variation
distance (half the sum of absolute share differences, 0 = same distribution, 1 = disjoint): over the values
shown for categorical traits (the top values by population, the rest as one "(other)" group), over the
population's decile bins for numeric ones; a missing trait is its own value or bin. Identifier-like traits
(almost one value per user) get no score. Traits are read in a few passes over `profiles` for all traits
at once (one for types, one for categorical values, two for numeric traits), not a query per trait."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine

from segmint.errors import InvalidInput
from segmint.segments.static import members_of, require_duckdb
from segmint.store.base import EventStore
from segmint.store.sqltext import json_path
from segmint.traits.catalog import TRAITS as COMPUTED

MISSING = "(missing)"
OTHER = "(other)"
NUMERIC_TYPES = {"BIGINT", "UBIGINT", "DOUBLE"}
QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9)
MAX_TRAITS = 60
CATEGORICAL_MAX_NUMBERS = 12  # a number trait with at most this many distinct values is shown per value
IDENTIFIER_SHARE = 0.9  # distinct values >= this share of the users having the trait (and > 12): identifier-like
DEFAULT_FLAG = 0.2

MEMBERS = "p.user_id IN (SELECT unnest(?::VARCHAR[]))"


@dataclass
class ValueShare:
    """One value of a categorical trait among members and among everyone."""

    value: str
    members: int
    population: int
    member_share: float
    population_share: float
    lift: float | None  # member_share / population_share


@dataclass
class NumericSummary:
    """Count (with a value), mean and quantiles of a numeric trait in one group."""

    count: int
    missing: int
    mean: float | None
    quantiles: dict[str, float | None]


@dataclass
class TraitProfile:
    """One trait of a segment profile."""

    name: str
    source: str  # computed | trait
    kind: str  # categorical | numeric | identifier
    divergence: float | None
    flagged: bool
    values: list[ValueShare] = field(default_factory=list)
    members: NumericSummary | None = None
    population: NumericSummary | None = None
    distinct: int = 0


@dataclass
class Profile:
    """A segment's members against the whole population, trait by trait (most divergent first)."""

    segment: str
    as_of: datetime | None
    members: int  # members with a profile
    members_without_profile: int
    population: int
    flag_threshold: float
    traits: list[TraitProfile]

    def flagged(self) -> list[str]:
        """Names of the traits where members diverge at or above the threshold."""
        return [t.name for t in self.traits if t.flagged]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {**asdict(self), "flagged": self.flagged()}


def _scalar(store: EventStore, sql: str, params: list[Any]) -> Any:
    row = store.query(sql, params).to_pylist()[0]
    return next(iter(row.values()))


def trait_names(store: EventStore, limit: int = MAX_TRAITS) -> list[str]:
    """Trait keys found in profiles, most common first."""
    rows = store.query("SELECT k, count(*) AS n FROM (SELECT unnest(json_keys(traits)) AS k FROM profiles) "
                       "GROUP BY k ORDER BY n DESC, k LIMIT ?", [limit]).to_pylist()
    return [str(r["k"]) for r in rows]


def _types(store: EventStore, names: list[str]) -> dict[str, tuple[bool, int, int]]:
    """Per trait, in one parse of each profile: whether every value is a JSON number, how many distinct values
    (HyperLogLog: exact at small counts, ~2% off at thousands), how many users have it."""
    rows = store.query(
        f"""SELECT k, coalesce(bool_and(t IN ({", ".join(f"'{x}'" for x in sorted(NUMERIC_TYPES))}))
                            FILTER (WHERE v IS NOT NULL), false) AS numeric,
                  approx_count_distinct(v) AS distinct_values, count(v) AS present
           FROM (SELECT k, json_type(j) AS t, json_extract_string(j, '$') AS v
                 FROM (SELECT unnest(?::VARCHAR[]) AS k, unnest(json_extract(traits, ?::VARCHAR[])) AS j
                       FROM profiles))
           GROUP BY k""", [names, [json_path(n) for n in names]]).to_pylist()
    return {str(r["k"]): (bool(r["numeric"]), int(r["distinct_values"]), int(r["present"])) for r in rows}


def _tvd(pairs: list[tuple[int, int]], members: int, population: int) -> float:
    if not members or not population:
        return 0.0
    return round(0.5 * sum(abs(m / members - p / population) for m, p in pairs), 4)


def _shares(groups: list[tuple[str, int, int]], n_mem: int, n_pop: int) -> list[ValueShare]:
    out = []
    for value, mem, pop in groups:
        ms = mem / n_mem if n_mem else 0.0
        ps = pop / n_pop if n_pop else 0.0
        out.append(ValueShare(value, mem, pop, round(ms, 4), round(ps, 4), round(ms / ps, 3) if ps else None))
    return out


def _categorical(store: EventStore, names: list[str], ids: list[str], n_mem: int, n_pop: int,
                 top: int) -> dict[str, tuple[list[ValueShare], float]]:
    """Value counts of several traits in one pass over the profiles."""
    rows = store.query(
        f"""SELECT k, coalesce(v, ?) AS v, count(*) AS pop, count(*) FILTER (WHERE m) AS mem
            FROM (SELECT {MEMBERS} AS m, unnest(?::VARCHAR[]) AS k,
                         unnest(json_extract_string(p.traits, ?::VARCHAR[])) AS v FROM profiles p)
            GROUP BY k, v ORDER BY k, pop DESC, v""",
        [MISSING, ids, names, [json_path(n) for n in names]]).to_pylist()
    by: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
    for r in rows:
        by[str(r["k"])].append(r)
    out: dict[str, tuple[list[ValueShare], float]] = {}
    for name, vals in by.items():
        present = [r for r in vals if r["v"] != MISSING]
        groups = [(str(r["v"]), int(r["mem"]), int(r["pop"])) for r in present[:top]]
        if len(present) > top:
            rest = present[top:]
            groups.append((OTHER, sum(int(r["mem"]) for r in rest), sum(int(r["pop"]) for r in rest)))
        groups += [(MISSING, int(r["mem"]), int(r["pop"])) for r in vals if r["v"] == MISSING]
        # Scored over the groups shown (top values, other, missing): over hundreds of rare values the distance
        # would mostly measure sampling noise.
        out[name] = _shares(groups, n_mem, n_pop), _tvd([(m, p) for _, m, p in groups], n_mem, n_pop)
    return out


def _long_numbers(ids: list[str], names: list[str]) -> tuple[str, list[Any]]:
    """SQL of (m, k, v) rows: member flag, trait name, value as DOUBLE (NULL when missing), and its params."""
    sql = f"""SELECT m, k, TRY_CAST(j AS DOUBLE) AS v
              FROM (SELECT {MEMBERS} AS m, unnest(?::VARCHAR[]) AS k,
                           unnest(json_extract(p.traits, ?::VARCHAR[])) AS j FROM profiles p)"""
    return sql, [ids, names, [json_path(n) for n in names]]


# How many of a trait's (up to 9, sorted) decile edges lie below the value: plain comparisons, no lambda.
_BIN = " + ".join(f"coalesce((e.edges[{i}] < x.v)::INTEGER, 0)" for i in range(1, 10))


def _numeric(store: EventStore, names: list[str],
             ids: list[str]) -> dict[str, tuple[NumericSummary, NumericSummary, float]]:
    """Count, mean, quantiles and the decile-bin divergence of several numeric traits in two passes."""
    qs = list(QUANTILES)
    long_sql, long_params = _long_numbers(ids, names)
    rows = store.query(
        f"""SELECT k, m, grouping(m) AS everyone, count(v) AS n, count(*) - count(v) AS missing, avg(v) AS mean,
                   quantile_cont(v, ?::DOUBLE[]) AS q,
                   quantile_disc(v, [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]) AS edges
            FROM ({long_sql}) GROUP BY GROUPING SETS ((k), (k, m))""", [qs, *long_params]).to_pylist()

    def summary(r: dict[str, Any] | None) -> NumericSummary:
        if r is None:
            return NumericSummary(0, 0, None, {str(q): None for q in qs})
        q = r["q"] or [None] * len(qs)
        return NumericSummary(int(r["n"]), int(r["missing"]), None if r["mean"] is None else round(r["mean"], 4),
                              {str(k): (None if v is None else round(v, 4)) for k, v in zip(qs, q, strict=True)})

    pop = {str(r["k"]): r for r in rows if r["everyone"]}
    mem = {str(r["k"]): r for r in rows if not r["everyone"] and r["m"]}
    # Population decile edges per trait; bin = how many edges lie below the value; a missing value is bin -1.
    edges = {k: sorted({e for e in (r["edges"] or []) if e is not None}) for k, r in pop.items()}
    bins = store.query(
        f"""WITH e AS (SELECT unnest(?::VARCHAR[]) AS k, unnest(?::DOUBLE[][]) AS edges)
            SELECT x.k, CASE WHEN x.v IS NULL THEN -1 ELSE {_BIN} END AS b,
                   count(*) AS pop, count(*) FILTER (WHERE x.m) AS mem
            FROM ({long_sql}) x JOIN e ON e.k = x.k GROUP BY x.k, b""",
        [list(edges), list(edges.values()), *long_params]).to_pylist()
    out: dict[str, tuple[NumericSummary, NumericSummary, float]] = {}
    for name in names:
        pairs = [(int(r["mem"]), int(r["pop"])) for r in bins if r["k"] == name]
        score = _tvd(pairs, sum(m for m, _ in pairs), sum(p for _, p in pairs))
        out[name] = summary(mem.get(name)), summary(pop.get(name)), score
    return out


def profile(engine: Engine, store: EventStore, name: str, *, traits: Sequence[str] = (),
            as_of: datetime | None = None, top: int = 10, flag: float = DEFAULT_FLAG) -> Profile:
    """Profile a segment's members (now, or as of a time: membership then, traits as they are now) against
    every profile; `traits` picks traits (default: the most common keys, up to MAX_TRAITS)."""
    if not 1 <= top <= 100:
        raise InvalidInput(f"top is {top}; expected 1..100", where="top")
    if not 0 < flag <= 1:
        raise InvalidInput(f"flag threshold is {flag}; expected a share in (0, 1]", where="flag")
    if len(traits) > MAX_TRAITS:
        raise InvalidInput(f"at most {MAX_TRAITS} traits per profile", where="traits")
    require_duckdb(store, "segment profile")
    ids = members_of(engine, store, name, as_of)
    n_pop = int(_scalar(store, "SELECT count(*) FROM profiles", []))
    n_mem = int(_scalar(store, f"SELECT count(*) FROM profiles p WHERE {MEMBERS}", [ids]))
    names = list(dict.fromkeys(traits)) or trait_names(store)
    for t in names:
        json_path(t)  # a quote or control character is refused here with where=name
    types = _types(store, names) if names else {}
    kind: dict[str, str] = {}
    for t in names:
        numbers, distinct, present = types.get(t, (False, 0, 0))
        if numbers and distinct > CATEGORICAL_MAX_NUMBERS:
            kind[t] = "numeric"
        elif distinct > CATEGORICAL_MAX_NUMBERS and distinct >= IDENTIFIER_SHARE * present:
            kind[t] = "identifier"
        else:
            kind[t] = "categorical"
    cats = [t for t in names if kind[t] == "categorical"]
    nums = [t for t in names if kind[t] == "numeric"]
    cat = _categorical(store, cats, ids, n_mem, n_pop, top) if cats else {}
    num = _numeric(store, nums, ids) if nums else {}
    out: list[TraitProfile] = []
    for t in names:
        source, distinct = "computed" if t in COMPUTED else "trait", types.get(t, (False, 0, 0))[1]
        if kind[t] == "numeric":
            mem, pop, score = num[t]
            out.append(TraitProfile(t, source, "numeric", score, score >= flag, members=mem, population=pop,
                                    distinct=distinct))
        elif kind[t] == "categorical":
            values, score = cat[t]
            out.append(TraitProfile(t, source, "categorical", score, score >= flag, values=values,
                                    distinct=distinct))
        else:
            out.append(TraitProfile(t, source, "identifier", None, False, distinct=distinct))
    out.sort(key=lambda x: (x.divergence is None, -(x.divergence or 0), x.name))
    return Profile(name, as_of, n_mem, len(ids) - n_mem, n_pop, flag, out)
