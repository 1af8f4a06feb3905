"""Compute trait families as of a time, record the run, keep history, and merge values into profiles.traits."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa

from segmint.errors import InvalidInput, NotFound
from segmint.store.base import EventStore, TraitWrite
from segmint.store.schema import to_utc_naive
from segmint.traits import families as fam
from segmint.traits.catalog import FAMILIES, TRAITS
from segmint.traits.clv import clv
from segmint.traits.config import TraitConfig
from segmint.traits.predict import is_prediction_trait
from segmint.traits.sql import TRAIT_DIALECTS, Query, missing_table, run_sql, trait_runs_table

_RUN_LOCK = threading.RLock()  # one trait run at a time per process (API, CLI, scheduler): run ids, CPU
PREDICT = "predict"


@dataclass
class TraitRun:
    """What one compute (or training) run did."""

    run_id: int
    as_of: datetime
    families: list[str]
    published: bool
    users: int = 0
    rows: int = 0
    status: str = "running"
    seconds: float = 0.0
    notes: dict[str, Any] = field(default_factory=dict)
    kind: str = "compute"
    trigger: str = "manual"
    error: str | None = None


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _require_trait_engine(store: EventStore) -> None:
    """Trait queries have DuckDB and ClickHouse forms (traits.sql); other engines are refused."""
    if getattr(store, "dialect", None) not in TRAIT_DIALECTS:
        raise InvalidInput("computed traits need the DuckDB or ClickHouse event store", where="store")


def _run_rows(store: EventStore, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows from trait_runs; none before the first run created the table."""
    try:
        return run_sql(store, sql, params).to_pylist()
    except Exception as exc:
        if missing_table(exc):
            return []
        raise


def _record(store: EventStore, run: TraitRun, started: datetime, finished: datetime | None,
            tables: list[pa.Table] | None = None, keep_runs: int | None = None) -> int:
    """Write the run record (and, with tables, its values) through the store's write_traits."""
    row = {"run_id": run.run_id, "started_at": started, "finished_at": finished, "as_of": run.as_of,
           "families": run.families, "published": run.published, "users": run.users, "rows": run.rows,
           "status": run.status, "error": run.error, "notes": orjson.dumps(run.notes, default=str).decode(),
           "kind": run.kind, "trigger": run.trigger}
    return store.write_traits(TraitWrite(row, tables or [], publish=run.published and bool(tables),
                                         keep_runs=keep_runs))


def start_run(store: EventStore, as_of: datetime, families: list[str], *, published: bool = False,
              kind: str = "compute", trigger: str = "manual") -> tuple[TraitRun, datetime]:
    """Allocate a run id and record the run as running."""
    rows = _run_rows(store, "SELECT coalesce(max(run_id), 0) + 1 AS id FROM trait_runs", {})
    run = TraitRun(rows[0]["id"] if rows else 1, as_of, families, published, kind=kind, trigger=trigger)
    started = _now()
    _record(store, run, started, None)
    return run, started


def fail_run(store: EventStore, run: TraitRun, started: datetime, exc: BaseException) -> None:
    """Record a run as failed with the error."""
    run.status, run.error = "failed", f"{type(exc).__name__}: {exc}"
    _record(store, run, started, _now())


def record_failure(store: EventStore, families: list[str], exc: BaseException, *, kind: str = "compute",
                   trigger: str = "schedule") -> TraitRun:
    """Record a run that failed before it could start (e.g. a broken traits.yaml)."""
    with _RUN_LOCK:
        run, started = start_run(store, _now(), families, kind=kind, trigger=trigger)
        fail_run(store, run, started, exc)
    return run


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
        elif is_prediction_trait(n):
            out.append(PREDICT)
        else:
            raise NotFound(f"no trait or trait family {n!r}; families: {', '.join(FAMILIES)}", where="traits")
    return [f for f in FAMILIES if f in out]


def compute_family(store: EventStore, cfg: TraitConfig, family: str, as_of: datetime,
                   workspace_path: Path | None = None, have: dict[str, pa.Table] | None = None) -> tuple[pa.Table, Any]:
    """One family's table (user_id + traits) and a note (CLV fit, models used) or None; `have` holds families
    already computed as of the same time (the predict family reuses them as features)."""
    q = Query(store, as_of)
    if family == "clv":
        table, fit = clv(q, cfg)
        return table, {"bgnbd": fit.bgnbd, "gamma_gamma": fit.gamma_gamma, "note": fit.note}
    if family == PREDICT:
        from segmint.traits.predict import score

        return score(store, cfg, workspace_path, as_of, have)
    return getattr(fam, family)(q, cfg), None


def compute_traits(store: EventStore, cfg: TraitConfig, *, as_of: datetime | None = None,
                   names: Iterable[str] | None = None, publish: bool | None = None,
                   workspace_path: Path | None = None, trigger: str = "manual") -> TraitRun:
    """Compute the chosen families as of a time (default now); publish to profiles.traits by default only
    when computing as of now (a past as-of goes to the computed_traits history only). The predict family
    scores with the models stored under workspace_path (none given: nothing to score)."""
    families = resolve_families(names)
    _require_trait_engine(store)
    as_of = to_utc_naive(as_of) if as_of else _now()
    publish = (as_of >= _now().replace(microsecond=0)) if publish is None else publish
    with _RUN_LOCK:
        run, started = start_run(store, as_of, families, published=publish, trigger=trigger)
        t0 = time.perf_counter()
        try:
            tables: dict[str, pa.Table] = {}
            for family in families:
                tables[family], note = compute_family(store, cfg, family, as_of, workspace_path, tables)
                if note is not None:
                    run.notes[family] = note
            written = [t for t in tables.values() if t.num_columns > 1]
            run.users = _distinct_users(written)
            run.status = "ok"
            run.seconds = time.perf_counter() - t0
            run.rows = _count_values(written)
            _record(store, run, started, _now(), written, keep_runs=cfg.history.keep_runs)
        except Exception as exc:
            fail_run(store, run, started, exc)
            raise
    return run


def _distinct_users(tables: list[pa.Table]) -> int:
    """Users with a value in any of the tables (in Arrow: no Python strings for millions of ids)."""
    import pyarrow.compute as pc

    ids = [t.column("user_id").cast(pa.string()) for t in tables]
    return len(pc.unique(pa.chunked_array([c for col in ids for c in col.chunks], pa.string()))) if ids else 0


def _count_values(tables: list[pa.Table]) -> int:
    """Non-null trait values in the tables (the history rows a run writes)."""
    return sum(t.num_rows - t.column(n).null_count - _nan_count(t.column(n))
               for t in tables for n in t.column_names if n != "user_id")


def _nan_count(col: pa.ChunkedArray) -> int:
    if pa.types.is_floating(col.type):
        import pyarrow.compute as pc

        return int(pc.sum(pc.is_nan(col.fill_null(0.0))).as_py() or 0)
    return 0


def train(store: EventStore, cfg: TraitConfig, workspace_path: Path, *, horizon: int | None = None,
          trigger: str = "manual") -> tuple[TraitRun, list[Any], TraitRun]:
    """Train, evaluate and store new churn / purchase model versions, then score every user as of now and
    publish the probabilities; both steps are recorded as trait runs. Returns (training run, models, scoring run)."""
    from segmint.traits.predict import train_models

    _require_trait_engine(store)
    horizon = horizon or cfg.predict.horizon_days
    with _RUN_LOCK:
        run, started = start_run(store, _now(), [PREDICT], kind="train", trigger=trigger)
        t0 = time.perf_counter()
        try:
            reports = train_models(store, cfg, workspace_path, horizon)
        except Exception as exc:
            fail_run(store, run, started, exc)
            raise
        run.status, run.seconds = "ok", time.perf_counter() - t0
        run.notes = {r.name: {"version": r.version, **{k: r.metadata["metrics"][k] for k in
                                                        ("auc", "baseline_auc", "brier", "baseline_brier")}}
                     for r in reports}
        run.users = max(r.metadata["rows"]["holdout"] for r in reports)  # users at the latest cut
        _record(store, run, started, _now())
        scored = compute_traits(store, cfg, names=[PREDICT], publish=True, workspace_path=workspace_path,
                                trigger=trigger)
    return run, reports, scored


def runs(store: EventStore, limit: int = 20) -> list[dict[str, Any]]:
    """Most recent trait runs (computes and trainings), newest first."""
    rows = _run_rows(store, f"SELECT * FROM {trait_runs_table(store)} ORDER BY run_id DESC LIMIT $limit",
                     {"limit": limit})
    for r in rows:
        r["notes"] = orjson.loads(r["notes"]) if r.get("notes") else {}
    return rows


def user_traits(store: EventStore, user_id: str) -> dict[str, Any]:
    """A user's computed traits as segments see them (profiles.traits), with the history of values."""
    prof = run_sql(store, "SELECT traits FROM profiles WHERE user_id = $u", {"u": user_id}).to_pylist()
    if not prof:
        raise NotFound(f"no profile for user {user_id!r}", where="user_id")
    traits = orjson.loads(prof[0]["traits"]) if prof[0]["traits"] else {}
    current = {k: v for k, v in traits.items() if k in TRAITS or is_prediction_trait(k)}
    try:
        hist = run_sql(store,
            "SELECT c.run_id, c.name, c.value, c.as_of FROM computed_traits c WHERE c.user_id = $u "
            "ORDER BY c.run_id DESC, c.name", {"u": user_id}).to_pylist()
    except Exception as exc:  # no trait run yet (store opened read-only, tables not created)
        if not missing_table(exc):
            raise
        hist = []
    history = [{**h, "value": orjson.loads(h["value"])} for h in hist]
    return {"user_id": user_id, "traits": current, "history": history}
