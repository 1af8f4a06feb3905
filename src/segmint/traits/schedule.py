"""Trait refresh schedules: durations and cron expressions, which families are due, and the background
thread `segmint serve` runs due refreshes in (each one recorded in trait_runs like any other run)."""

from __future__ import annotations

import logging
import re
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

from segmint.traits.catalog import FAMILIES
from segmint.traits.config import Schedule, TraitConfig, load_trait_config
from segmint.traits.sql import TRAIT_DIALECTS, missing_table, trait_runs_table

log = logging.getLogger(__name__)
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
RETRY_AFTER = timedelta(minutes=10)  # a failed refresh is retried after this (or its interval, if shorter)
TRAIN = "train"


def parse_duration(text: str, *, positive: bool = True) -> timedelta:
    """`90s`, `30m`, `1h`, `1.5d`, `1w` as a timedelta (ValueError otherwise; zero only if not `positive`)."""
    m = _DURATION.match(str(text))
    if not m or (positive and float(m.group(1)) <= 0):
        raise ValueError(f"not a duration: {text!r} (a positive number and s, m, h, d or w, e.g. 30m, 1h, 1d)")
    return timedelta(**{_UNITS[m.group(2)]: float(m.group(1))})


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def next_after(schedule: Schedule, last: datetime) -> datetime | None:
    """The next time a schedule fires after a run started at `last`; None when it never fires."""
    if schedule.every:
        return last + parse_duration(schedule.every)
    if schedule.cron:
        from croniter import croniter

        return croniter(schedule.cron, last).get_next(datetime)
    return None


def schedule_for(cfg: TraitConfig, family: str) -> Schedule:
    """A family's schedule (refresh.families, else refresh.default); `train` is the retraining schedule."""
    if family == TRAIN:
        return cfg.refresh.train
    return cfg.refresh.families.get(family, cfg.refresh.default)


def last_attempts(store: Any) -> dict[str, dict[str, Any]]:
    """Per family (and `train`), the latest refresh attempt: a published compute as of its start, or a training."""
    out: dict[str, dict[str, Any]] = {}
    try:
        rows = store.query(f"SELECT run_id, started_at, status, families, kind, published FROM "
                           f"{trait_runs_table(store)} ORDER BY run_id DESC LIMIT 1000").to_pylist()
    except Exception as exc:
        if not missing_table(exc):
            raise
        rows = []  # no run yet
    for r in rows:
        started = r["started_at"]  # ClickHouse gives aware UTC times, DuckDB naive UTC ones
        r["started_at"] = started.astimezone(UTC).replace(tzinfo=None) if started.tzinfo else started
        keys = [TRAIN] if r["kind"] == TRAIN else (r["families"] or []) if r["published"] else []
        for k in keys:
            out.setdefault(k, r)
    return out


def has_models(workspace_path: Any) -> bool:
    """Whether any predictive model version is stored (a cheap look at the folder, no model library import)."""
    from pathlib import Path

    return any((Path(workspace_path) / "models").glob("*/*/metadata.json"))


def due_times(cfg: TraitConfig, store: Any, started: datetime, has_models: bool) -> dict[str, datetime | None]:
    """When each family (and `train`) is next due: never run -> server start + refresh.initial_delay; after a
    failure -> retried after RETRY_AFTER at the latest; `train` only once a model exists."""
    last = last_attempts(store)
    delay = parse_duration(cfg.refresh.initial_delay, positive=False)
    out: dict[str, datetime | None] = {}
    for name in [*FAMILIES, TRAIN]:
        sched = schedule_for(cfg, name)
        if not (sched.every or sched.cron) or (name == TRAIN and not has_models):
            out[name] = None
            continue
        prev = last.get(name)
        if prev is None:
            out[name] = started + delay
            continue
        nxt = next_after(sched, prev["started_at"])
        if prev["status"] == "failed":
            nxt = min(nxt, prev["started_at"] + RETRY_AFTER) if nxt else prev["started_at"] + RETRY_AFTER
        out[name] = nxt
    return out


class TraitScheduler:
    """Background thread of `segmint serve`: every refresh.check_seconds, compute the families that are due
    (one run, published) and retrain when due. Failures are recorded in trait_runs, never silent."""

    def __init__(self, workspace: Any) -> None:
        self.ws = workspace
        self.started = _now()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_config_error: tuple[str, datetime] | None = None

    def start(self) -> None:
        """Start the thread (a daemon: it never keeps the process alive)."""
        self._thread = threading.Thread(target=self._loop, name="segmint-trait-refresh", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 60.0) -> None:
        """Ask the thread to stop and wait for a refresh in progress to finish (up to `timeout` seconds)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.is_set():
            wait = 30.0
            try:
                wait = self.tick()
            except Exception:  # a tick never kills the thread; failed runs are already recorded
                log.exception("trait refresh tick failed")
            self._stop.wait(wait)

    def _config(self) -> TraitConfig | None:
        """The trait definitions; a broken traits.yaml is recorded as a failed refresh (once per error per hour)."""
        try:
            return load_trait_config(self.ws.path)
        except Exception as exc:
            now = _now()
            last = self._last_config_error
            if last is None or last[0] != str(exc) or now - last[1] > timedelta(hours=1):
                self._last_config_error = (str(exc), now)
                from segmint.traits import runner

                runner.record_failure(self.ws.store, list(FAMILIES), exc, trigger="schedule")
            return None

    def tick(self, now: datetime | None = None) -> float:
        """Run whatever is due now; returns the seconds to wait before the next check."""
        if getattr(self.ws.store, "dialect", None) not in TRAIT_DIALECTS:  # no trait SQL for this engine
            return 3600.0
        cfg = self._config()
        if cfg is None:
            return 60.0
        if not cfg.refresh.enabled:
            return cfg.refresh.check_seconds
        now = now or _now()
        due = due_times(cfg, self.ws.store, self.started, has_models(self.ws.path))
        families = [f for f in FAMILIES if due[f] is not None and due[f] <= now]
        if (families or (due[TRAIN] is not None and due[TRAIN] <= now)) and not self._stop.is_set():
            from segmint.traits import runner  # pandas, lifetimes, LightGBM: only once something is due
        if families and not self._stop.is_set():
            try:
                runner.compute_traits(self.ws.store, cfg, names=families, publish=True,
                                      workspace_path=self.ws.path, trigger="schedule")
            except Exception:
                log.exception("scheduled trait refresh failed (recorded in trait_runs)")
        if due[TRAIN] is not None and due[TRAIN] <= now and not self._stop.is_set():
            try:
                runner.train(self.ws.store, cfg, self.ws.path, trigger="schedule")
            except Exception:
                log.exception("scheduled model training failed (recorded in trait_runs)")
        return cfg.refresh.check_seconds


def _describe(s: Schedule) -> str | None:
    return f"every {s.every}" if s.every else f"cron {s.cron}" if s.cron else None


def schedule_status(workspace: Any, store: Any, started: datetime | None) -> dict[str, Any]:
    """Each family's (and training's) schedule, latest attempt and next due time; `started` is the server's
    start (None when no server runs: never-run families then have no due time)."""
    cfg = load_trait_config(workspace.path)
    last = last_attempts(store)
    due = due_times(cfg, store, started or _now(), has_models(workspace.path))
    rows = []
    for name in [*FAMILIES, TRAIN]:
        prev = last.get(name)
        rows.append({"name": name, "schedule": _describe(schedule_for(cfg, name)),
                     "last_run_id": prev["run_id"] if prev else None, "last_status": prev["status"] if prev else None,
                     "next_due": due[name] if (prev or started) and cfg.refresh.enabled else None})
    return {"enabled": cfg.refresh.enabled, "server": started is not None, "families": rows}
