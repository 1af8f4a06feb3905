"""Segment profile: how the members' traits (profile traits and computed traits, both in `profiles.traits`)
are distributed against the whole population, with the traits where members diverge most flagged.

Categorical traits (text, booleans, and numbers with few distinct values) give each value's share among
members and among everyone, and the lift (member share / population share). Numeric traits give count,
mean and quantiles for both. Every trait gets one divergence score on one scale, the total variation
distance (half the sum of absolute share differences, 0 = same distribution, 1 = disjoint): over values for
categorical traits, over the population's decile bins for numeric ones; a missing trait is its own value or
bin. Identifier-like traits (almost one value per user) get no score."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine

from segmint.errors import InvalidInput
from segmint.segments.static import members_of
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


def _types(store: EventStore, names: list[str]) -> dict[str, tuple[set[str], int, int]]:
    """Per trait: the JSON types of its non-null values, how many distinct values, how many users have it."""
    rows = store.query(
        """SELECT k, list(DISTINCT t) FILTER (WHERE t IS NOT NULL AND t <> 'NULL') AS types,
                  count(DISTINCT v) AS distinct_values, count(v) AS present
           FROM (SELECT unnest(?::VARCHAR[]) AS k, unnest(json_type(traits, ?::VARCHAR[])) AS t,
                        unnest(json_extract_string(traits, ?::VARCHAR[])) AS v FROM profiles)
           GROUP BY k""", [names, [json_path(n) for n in names], [json_path(n) for n in names]]).to_pylist()
    return {str(r["k"]): (set(r["types"] or []), int(r["distinct_values"]), int(r["present"])) for r in rows}


def _tvd(pairs: list[tuple[int, int]], members: int, population: int) -> float:
    if not members or not population:
        return 0.0
    return round(0.5 * sum(abs(m / members - p / population) for m, p in pairs), 4)


def _categorical(store: EventStore, name: str, ids: list[str], n_mem: int, n_pop: int,
                 top: int) -> tuple[list[ValueShare], float]:
    rows = store.query(
        f"""SELECT coalesce(json_extract_string(p.traits, ?), ?) AS v, count(*) AS pop,
                   count(*) FILTER (WHERE {MEMBERS}) AS mem
            FROM profiles p GROUP BY v ORDER BY pop DESC, v""", [json_path(name), MISSING, ids]).to_pylist()
    score = _tvd([(int(r["mem"]), int(r["pop"])) for r in rows], n_mem, n_pop)
    shown = [r for r in rows if r["v"] != MISSING][:top]
    rest = [r for r in rows if r["v"] != MISSING][top:]
    missing = [r for r in rows if r["v"] == MISSING]
    groups = [(str(r["v"]), int(r["mem"]), int(r["pop"])) for r in shown]
    if rest:
        groups.append((OTHER, sum(int(r["mem"]) for r in rest), sum(int(r["pop"]) for r in rest)))
    groups += [(MISSING, int(r["mem"]), int(r["pop"])) for r in missing]
    out = []
    for value, mem, pop in groups:
        ms = mem / n_mem if n_mem else 0.0
        ps = pop / n_pop if n_pop else 0.0
        out.append(ValueShare(value, mem, pop, round(ms, 4), round(ps, 4), round(ms / ps, 3) if ps else None))
    return out, score


def _numeric(store: EventStore, name: str, ids: list[str]) -> tuple[NumericSummary, NumericSummary, float]:
    path = json_path(name)
    qs = list(QUANTILES)
    rows = store.query(
        f"""WITH x AS (SELECT TRY_CAST(json_extract(p.traits, ?) AS DOUBLE) AS v, {MEMBERS} AS m FROM profiles p)
            SELECT g, count(v) AS n, count(*) - count(v) AS missing, avg(v) AS mean,
                   quantile_cont(v, ?::DOUBLE[]) AS q
            FROM (SELECT v, 'population' AS g FROM x UNION ALL SELECT v, 'members' FROM x WHERE m)
            GROUP BY g""", [path, ids, qs]).to_pylist()
    by = {r["g"]: r for r in rows}

    def summary(r: dict[str, Any] | None) -> NumericSummary:
        if r is None:
            return NumericSummary(0, 0, None, {str(q): None for q in qs})
        q = r["q"] or [None] * len(qs)
        return NumericSummary(int(r["n"]), int(r["missing"]), None if r["mean"] is None else round(r["mean"], 4),
                              {str(k): (None if v is None else round(v, 4)) for k, v in zip(qs, q, strict=True)})

    # Population decile edges; bin = how many edges lie below the value; a missing value is bin -1.
    edges = store.query("SELECT DISTINCT unnest(quantile_disc(TRY_CAST(json_extract(traits, ?) AS DOUBLE), "
                        "[0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9])) AS e FROM profiles ORDER BY e",
                        [path]).column(0).to_pylist()
    edges = [e for e in edges if e is not None]
    bins = store.query(
        f"""SELECT b, count(*) AS pop, count(*) FILTER (WHERE m) AS mem FROM (
              SELECT CASE WHEN v IS NULL THEN -1 ELSE len(list_filter(?::DOUBLE[], lambda e: e < v)) END AS b, m
              FROM (SELECT TRY_CAST(json_extract(p.traits, ?) AS DOUBLE) AS v, {MEMBERS} AS m FROM profiles p))
            GROUP BY b""", [edges, path, ids]).to_pylist()
    n_pop = sum(int(r["pop"]) for r in bins)
    n_mem = sum(int(r["mem"]) for r in bins)
    score = _tvd([(int(r["mem"]), int(r["pop"])) for r in bins], n_mem, n_pop)
    return summary(by.get("members")), summary(by.get("population")), score


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
    ids = members_of(engine, store, name, as_of)
    n_pop = int(_scalar(store, "SELECT count(*) FROM profiles", []))
    n_mem = int(_scalar(store, f"SELECT count(*) FROM profiles p WHERE {MEMBERS}", [ids]))
    names = list(dict.fromkeys(traits)) or trait_names(store)
    for t in names:
        json_path(t)  # a quote or control character is refused here with where=name
    types = _types(store, names) if names else {}
    out: list[TraitProfile] = []
    for t in names:
        kinds, distinct, present = types.get(t, (set(), 0, 0))
        source = "computed" if t in COMPUTED else "trait"
        numeric = bool(kinds) and kinds <= NUMERIC_TYPES and distinct > CATEGORICAL_MAX_NUMBERS
        if not numeric and distinct > CATEGORICAL_MAX_NUMBERS and distinct >= IDENTIFIER_SHARE * present:
            out.append(TraitProfile(t, source, "identifier", None, False, distinct=distinct))
            continue
        if numeric:
            mem, pop, score = _numeric(store, t, ids)
            out.append(TraitProfile(t, source, "numeric", score, score >= flag, members=mem, population=pop,
                                    distinct=distinct))
        else:
            values, score = _categorical(store, t, ids, n_mem, n_pop, top)
            out.append(TraitProfile(t, source, "categorical", score, score >= flag, values=values,
                                    distinct=distinct))
    out.sort(key=lambda x: (x.divergence is None, -(x.divergence or 0), x.name))
    return Profile(name, as_of, n_mem, len(ids) - n_mem, n_pop, flag, out)
