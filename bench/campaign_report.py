"""Campaign report speed: ledger validation and the report query on DuckDB, against a bare join baseline.

A synthetic store: N recipients (3 variants + 20% holdout, 5% suppressed), engagement events for a share of
them, orders for 12%, and 10 unrelated events per recipient. Median of 5 runs each, in one process.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa

from segmint.analytics.campaign_report import Goal, campaign_report, query_with_table, recipients_table
from segmint.store.base import WriteBatch
from segmint.store.duckdb import DuckDBEventStore
from segmint.store.schema import EVENT_SCHEMA

T0 = datetime(2026, 3, 1, 10)
SIZES = (100_000, 1_000_000)


def _ledger(n: int, rng: np.random.Generator) -> pa.Table:
    users = np.char.add("u", np.arange(n).astype(str))
    group = rng.choice(["A", "B", "C", "control"], size=n, p=[0.3, 0.25, 0.25, 0.2])
    suppressed = rng.random(n) < 0.05
    status = np.where(suppressed, "suppressed", np.where(group == "control", "holdout", "sent"))
    sent = pa.array([T0] * n, pa.timestamp("us"))
    return pa.table({"campaign_id": ["bench"] * n, "occurrence": ["once"] * n, "user_id": users, "variant": group,
                     "channel": ["push"] * n, "status": status,
                     "reason": np.where(suppressed, "frequency_cap", ""), "queued_at": sent,
                     "sent_at": pa.array([None if s else T0 for s in suppressed], pa.timestamp("us"))})


def _events(ledger: pa.Table, rng: np.random.Generator) -> pa.Table:
    users = np.asarray(ledger["user_id"].to_pylist())
    variants = np.asarray(ledger["variant"].to_pylist())
    n = len(users)
    blocks = []

    def add(event: str, idx: np.ndarray, hours: np.ndarray, props: list[str]) -> None:
        blocks.append((event, users[idx], hours, props))

    opened = np.flatnonzero(rng.random(n) < 0.3)
    add("message_opened", opened, rng.uniform(0, 24, len(opened)),
        [f'{{"campaign_id":"bench","variant":"{v}","channel":"push"}}' for v in variants[opened]])
    clicked = opened[rng.random(len(opened)) < 0.25]
    add("message_clicked", clicked, rng.uniform(0, 24, len(clicked)),
        [f'{{"campaign_id":"bench","variant":"{v}","channel":"push"}}' for v in variants[clicked]])
    buyers = np.flatnonzero(rng.random(n) < 0.12)
    add("order_completed", buyers, rng.uniform(-48, 96, len(buyers)),
        [f'{{"revenue":{r}}}' for r in rng.integers(5, 200, len(buyers)) * 1000])
    other = rng.integers(0, n, 10 * n)
    add("product_viewed", other, rng.uniform(-240, 96, len(other)), ['{"category":"뷰티"}'] * len(other))
    cols: dict[str, list] = {f.name: [] for f in EVENT_SCHEMA}
    k = 0
    for event, who, hours, props in blocks:
        m = len(who)
        ts = [T0 + timedelta(hours=float(h)) for h in hours]
        cols["message_id"] += [f"b{k + i}" for i in range(m)]
        cols["type"] += ["track"] * m
        cols["event"] += [event] * m
        cols["user_id"] += who.tolist()
        cols["anonymous_id"] += [None] * m
        cols["ts"] += ts
        cols["received_at"] += ts
        cols["properties"] += props
        cols["context"] += ["{}"] * m
        cols["source"] += ["bench"] * m
        k += m
    return pa.table(cols, schema=EVENT_SCHEMA)


def _median(fn, runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


BASELINE = """SELECT r.variant, count(*) AS n, count(DISTINCT g.user_id) AS buyers
FROM _segmint_rcp r LEFT JOIN (SELECT user_id, ts FROM events WHERE event = 'order_completed') g
  ON g.user_id = r.user_id AND g.ts > r.anchor AND g.ts <= r.anchor + INTERVAL 3 DAY
GROUP BY r.variant"""


def run() -> str:
    """Time the report for each size; a markdown section."""
    rows = []
    for n in SIZES:
        rng = np.random.default_rng(n)
        ledger = _ledger(n, rng)
        with tempfile.TemporaryDirectory() as tmp:
            store = DuckDBEventStore(Path(tmp) / "bench.duckdb")
            events = _events(ledger, rng)
            store.write(WriteBatch(events=events))
            rcp = recipients_table(ledger)
            validate = _median(lambda ledger=ledger: recipients_table(ledger), 3)
            report = _median(lambda ledger=ledger, store=store: campaign_report(store, ledger, Goal()), 3)
            baseline = _median(lambda rcp=rcp, store=store: query_with_table(store, rcp, [(BASELINE, {})]), 3)
            rows.append((n, events.num_rows, validate, report, baseline))
            store.close()
    lines = ["## Campaign report", "",
             "Ledger of N recipients (A/B/C + 20% holdout, 5% suppressed), opens/clicks for 30%/7.5%, orders for "
             "12%, 10 unrelated events per recipient; DuckDB, median of 3. Baseline: one bare join of the "
             "ledger with order events in the window, counting buyers per variant (no engagement, no revenue, "
             "no validation).", "",
             "| recipients | events | ledger validation | full report | baseline join |", "|---|---|---|---|---|"]
    for n, ev, v, r, b in rows:
        lines.append(f"| {n:,} | {ev:,} | {v:.2f} s | {r:.2f} s | {b:.2f} s |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(run())
