"""Compute trait families as of a time, record the run, keep history, and merge values into profiles.traits."""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import duckdb
import orjson
import pyarrow as pa

from segmint.errors import InvalidInput, NotFound
from segmint.store.base import EventStore
from segmint.store.schema import to_utc_naive
from segmint.traits import families as fam
from segmint.traits.catalog import FAMILIES, TRAITS
from segmint.traits.clv import clv
from segmint.traits.config import TraitConfig
from segmint.traits.sql import Query

DDL = [
    """CREATE TABLE IF NOT EXISTS trait_runs (
        run_id BIGINT PRIMARY KEY, started_at TIMESTAMP NOT NULL, finished_at TIMESTAMP, as_of TIMESTAMP NOT NULL,
        families VARCHAR[], published BOOLEAN, users BIGINT, rows BIGINT, status VARCHAR NOT NULL,
        error VARCHAR, notes VARCHAR)""",
    """CREATE TABLE IF NOT EXISTS computed_traits (
        run_id BIGINT NOT NULL, user_id VARCHAR NOT NULL, name VARCHAR NOT NULL, value JSON,
        as_of TIMESTAMP NOT NULL, computed_at TIMESTAMP NOT NULL)""",
]
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass
class TraitRun:
    """What one compute did."""

    run_id: int
    as_of: datetime
    families: list[str]
    published: bool
    users: int = 0
    rows: int = 0
    status: str = "running"
    seconds: float = 0.0
    notes: dict[str, Any] = field(default_factory=dict)


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _duck(store: EventStore) -> Any:
    """The DuckDB connection and lock of the store (computed traits are written there)."""
    if getattr(store, "dialect", None) != "duckdb" or not hasattr(store, "_con"):
        raise InvalidInput("computed traits need the DuckDB event store", where="store")
    return store._con, store._lock  # the store has no public write-SQL entry point yet


def ensure_tables(store: EventStore) -> None:
    """Create trait_runs and computed_traits if missing."""
    con, lock = _duck(store)
    with lock:
        for stmt in DDL:
            con.execute(stmt)


def resolve_families(names: Iterable[str] | None) -> list[str]:
    """Family names from a mix of family and trait names (all families when none given)."""
    names = list(names or [])
    if not names:
        return list(FAMILIES)
    out = []
    for n in names:
        if n in FAMILIES:
            out.append(n)
        elif n in TRAITS:
            out.append(TRAITS[n][0])
        else:
            raise NotFound(f"no trait or trait family {n!r}; families: {', '.join(FAMILIES)}", where="traits")
    return [f for f in FAMILIES if f in out]


def compute_family(store: EventStore, cfg: TraitConfig, family: str, as_of: datetime) -> tuple[pa.Table, Any]:
    """One family's table (user_id + traits) and a note (CLV fit parameters) or None."""
    q = Query(store, as_of)
    if family == "clv":
        table, fit = clv(q, cfg)
        return table, {"bgnbd": fit.bgnbd, "gamma_gamma": fit.gamma_gamma, "note": fit.note}
    return getattr(fam, family)(q, cfg), None


def compute_traits(store: EventStore, cfg: TraitConfig, *, as_of: datetime | None = None,
                   names: Iterable[str] | None = None, publish: bool | None = None) -> TraitRun:
    """Compute the chosen families as of a time (default now); publish to profiles.traits by default only
    when computing as of now (a past as-of goes to the computed_traits history only)."""
    families = resolve_families(names)
    as_of = to_utc_naive(as_of) if as_of else _now()
    publish = (as_of >= _now().replace(microsecond=0)) if publish is None else publish
    ensure_tables(store)
    con, lock = _duck(store)
    start = time.perf_counter()
    with lock:
        run_id = con.execute("SELECT coalesce(max(run_id), 0) + 1 FROM trait_runs").fetchall()[0][0]
        con.execute("INSERT INTO trait_runs (run_id, started_at, as_of, families, published, status) "
                    "VALUES (?, ?, ?, ?, ?, 'running')", [run_id, _now(), as_of, families, publish])
    run = TraitRun(run_id, as_of, families, publish)
    try:
        tables = {}
        for family in families:
            tables[family], note = compute_family(store, cfg, family, as_of)
            if note is not None:
                run.notes[family] = note
        with lock:
            con.begin()
            try:
                run.rows = _store(con, run_id, list(tables.values()), as_of, publish)
                con.execute("DELETE FROM computed_traits WHERE run_id <= ?",
                            [run_id - cfg.history.keep_runs]).fetchall()
                run.users = len(set().union(*(t.column("user_id").to_pylist() for t in tables.values())))
                con.commit()
            except BaseException:
                con.rollback()
                raise
        run.status = "ok"
    except Exception as exc:
        run.status = "failed"
        with lock:
            con.execute("UPDATE trait_runs SET finished_at = ?, status = 'failed', error = ? WHERE run_id = ?",
                        [_now(), f"{type(exc).__name__}: {exc}", run_id])
        raise
    run.seconds = time.perf_counter() - start
    with lock:
        con.execute("UPDATE trait_runs SET finished_at = ?, status = 'ok', users = ?, rows = ?, notes = ? "
                    "WHERE run_id = ?", [_now(), run.users, run.rows, orjson.dumps(run.notes).decode(), run_id])
    return run


def _store(con: Any, run_id: int, tables: list[pa.Table], as_of: datetime, publish: bool) -> int:
    """Append the families' values to computed_traits and (if publishing) merge them into profiles.traits
    in one UPDATE (one per family is several times slower on a large profiles table)."""
    aliases = [f"_trait_w{i}" for i in range(len(tables))]
    cols: list[tuple[str, str]] = []  # (alias, trait name)
    for alias, table in zip(aliases, tables, strict=True):
        for n in table.column_names:
            if n == "user_id":
                continue
            if not _NAME.match(n):  # names come from our own queries; checked because they are pasted as SQL
                raise InvalidInput(f"bad trait column name {n!r}", where="traits")
            cols.append((alias, n))
        con.register(alias, table)
    try:
        rows = 0
        for alias, table in zip(aliases, tables, strict=True):
            names = [n for a, n in cols if a == alias]
            if not names or not table.num_rows:
                continue
            as_json = ", ".join(f"to_json({n}) AS {n}" for n in names)
            rows += con.execute(
                f"""INSERT INTO computed_traits
                SELECT ?, user_id, name, value, ?, ? FROM (
                  UNPIVOT (SELECT user_id, {as_json} FROM {alias}) ON {', '.join(names)}
                  INTO NAME name VALUE value)""",
                [run_id, as_of, _now()],
            ).fetchall()[0][0]
        if publish and cols:
            obj = ", ".join(f"'{n}', {a}.{n}" for a, n in cols)
            joins = " ".join(f"LEFT JOIN {a} USING (user_id)" for a in aliases)
            # Every profile gets the families' keys; a user without a value loses a stale one (null removes).
            con.execute(
                f"""UPDATE profiles SET traits = json_merge_patch(profiles.traits, x.obj)
                FROM (SELECT p.user_id, json_object({obj}) AS obj FROM profiles p {joins}) x
                WHERE profiles.user_id = x.user_id"""
            ).fetchall()
    finally:
        for alias in aliases:
            con.unregister(alias)
    return int(rows)


def runs(store: EventStore, limit: int = 20) -> list[dict[str, Any]]:
    """Most recent trait runs, newest first."""
    ensure_tables(store)
    return store.query("SELECT * FROM trait_runs ORDER BY run_id DESC LIMIT ?", [limit]).to_pylist()


def user_traits(store: EventStore, user_id: str) -> dict[str, Any]:
    """A user's computed traits as segments see them (profiles.traits), with the history of values."""
    prof = store.query("SELECT traits FROM profiles WHERE user_id = ?", [user_id]).to_pylist()
    if not prof:
        raise NotFound(f"no profile for user {user_id!r}", where="user_id")
    traits = orjson.loads(prof[0]["traits"]) if prof[0]["traits"] else {}
    current = {k: traits[k] for k in TRAITS if k in traits}
    try:
        hist = store.query(
            "SELECT c.run_id, c.name, c.value, c.as_of FROM computed_traits c WHERE c.user_id = ? "
            "ORDER BY c.run_id DESC, c.name", [user_id]).to_pylist()
    except duckdb.CatalogException:  # no trait run yet (store opened read-only, tables not created)
        hist = []
    history = [{**h, "value": orjson.loads(h["value"])} for h in hist]
    return {"user_id": user_id, "traits": current, "history": history}
