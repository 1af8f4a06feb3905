"""Benchmark: POST /api/segments/preview (the live builder) for every seed segment on the demo shop.

Run (needs the demo generator, branch `demo`):
  PYTHONPATH=src python bench/segment_preview.py [--users 5000] [--days 90] [--runs 5]
Baseline in the same run: a hand-written DuckDB count for "did app_opened in last 30 days".
Prints a markdown table (median of the runs, end-to-end HTTP through the app) for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from fastapi.testclient import TestClient

from segmint.api.app import create_app
from segmint.demo.generate import DemoSpec
from segmint.demo.load import build_demo
from segmint.segments.seeds import SEEDS
from segmint.workspace import Workspace


def main() -> None:
    """Build a demo workspace, then time preview per seed segment."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", type=int, default=5000)
    ap.add_argument("--days", type=int, default=90)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    path = Path(tempfile.mkdtemp(prefix="segbench-")) / "demo"
    ws, info = build_demo(path, DemoSpec(users=args.users, days=args.days), progress=False)
    events = ws.store.summary()["events"]
    ws.close()
    ws = Workspace(path)
    now = info.spec.now
    rows = []
    with TestClient(create_app(ws)) as c:
        c.headers["Authorization"] = f"Bearer {ws.config.admin_token}"
        c.post("/api/segments/preview", json={"definition": "did app_opened"})  # warm the catalog cache
        base = []
        for _ in range(args.runs):
            t = time.perf_counter()
            ws.store.query("SELECT count(DISTINCT user_id) FROM events WHERE event = $e AND ts > $t AND ts <= $n",
                           {"e": "app_opened", "t": now - timedelta(days=30), "n": now})
            base.append((time.perf_counter() - t) * 1000)
        for s in SEEDS:
            times, sql_ms, status, count = [], [], 0, None
            for _ in range(args.runs):
                t = time.perf_counter()
                r = c.post("/api/segments/preview", json={"definition": s.text, "as_of": now.isoformat()})
                times.append((time.perf_counter() - t) * 1000)
                status = r.status_code
                if status == 200:
                    sql_ms.append(r.json()["elapsed_ms"])
                    count = r.json()["count"]
            rows.append((s.id, status, count, statistics.median(times),
                         statistics.median(sql_ms) if sql_ms else None))
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"{platform.python_version()}; demo {args.users} users x {args.days} days = {events} events; "
          f"median of {args.runs}")
    print(f"baseline (hand-written count, did app_opened in last 30 days): {statistics.median(base):.1f} ms\n")
    print("| seed | status | members | preview HTTP ms | query ms |")
    print("|---|---|---|---|---|")
    for sid, st, n, ms, q in rows:
        print(f"| {sid} | {st} | {'' if n is None else n} | {ms:.1f} | {'' if q is None else f'{q:.1f}'} |")


if __name__ == "__main__":
    main()
