"""Benchmark: looking at segments on a demo shop: the 90-day backfill, growth, overlap, profile, snapshot and
CSV upload, against one as-of evaluation of the same segment measured in the same run (the backfill is one
evaluation per day end plus diffs, so its floor is 90 x that baseline). The profile reads every trait of
every profile a few times; its baseline is one such pass (JSON parse of all traits, nothing grouped).

Run: `PYTHONPATH=src python bench/segment_analysis.py --users 50000` (prints Markdown), or
`python -m bench.run segment_analysis` (section in docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

NOW = datetime(2026, 11, 25, 3, 0)
ACTIVE = "did app_opened in last 7 days"


def _machine() -> str:
    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")), platform.processor())
    mem = next((int(ln.split()[1]) // 1024 // 1024 for ln in Path("/proc/meminfo").read_text().splitlines()
                if ln.startswith("MemTotal")), 0)
    return (f"{os.cpu_count()} cores ({cpu}), {mem} GB RAM, Python {platform.python_version()}, "
            f"load {os.getloadavg()[0]:.1f}")


def _median(fn: Callable[[], Any], n: int = 5) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(n):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def run(users: int = 50_000, days: int = 90) -> str:
    """Build a demo shop, time each analysis, return a Markdown report."""
    from segmint.analytics.overlap import overlap
    from segmint.analytics.segment_growth import backfill, growth
    from segmint.analytics.segment_profile import profile
    from segmint.demo.generate import DemoSpec
    from segmint.demo.load import build_demo
    from segmint.segments import saved
    from segmint.segments import static as st
    from segmint.segments.evaluate import evaluate
    from segmint.traits import compute_traits, load_trait_config

    tmp = Path(tempfile.mkdtemp(prefix="segmint-bench-seglook-"))
    rows: list[tuple[str, float, str]] = []
    try:
        t = time.perf_counter()
        ws, _ = build_demo(tmp / "w", DemoSpec(users=users, days=days, now=NOW), progress=False)
        store, engine, zone = ws.store, ws.appdb, ws.config.zone
        events = store.summary()["events"]
        compute_traits(store, load_trait_config(ws.path), as_of=NOW, publish=True)
        build = time.perf_counter() - t
        for i in range(3):
            saved.create_segment(engine, f"active{i}", ACTIVE)
        saved.create_segment(engine, "buyers", "did order_completed in last 30 days")
        saved.create_segment(engine, "women", 'trait gender = "F"')
        tree = saved.segment_tree(engine, "active0")
        base, ids = _median(lambda: evaluate(store, tree, NOW))
        rows.append(("baseline: one as-of evaluation of the segment", base, f"{len(ids):,} members"))
        runs = []
        for i in range(3):
            t = time.perf_counter()
            r = backfill(engine, store, f"active{i}", zone=zone, days=90, now=NOW)
            runs.append(time.perf_counter() - t)
        rows.append(("backfill 90 days (90 as-of evaluations + diffs + a write per day)", statistics.median(runs),
                     f"{r.entries:,} entries, {r.exits:,} exits; {statistics.median(runs) / base:.0f}x baseline"))
        sec, _ = _median(lambda: backfill(engine, store, "active0", zone=zone, days=90, now=NOW))
        rows.append(("backfill again (idempotent: nothing to do)", sec, ""))
        sec, g = _median(lambda: growth(engine, store, "active0", zone=zone, days=90, now=NOW))
        rows.append(("growth: 90 days from segment_transitions", sec, f"last day {g.days[-1].members:,} members"))
        sec, o = _median(lambda: overlap(engine, store, ["active0", "buyers", "women"], NOW))
        rows.append(("overlap of 3 segments (3 evaluations + set maths)", sec, f"union {o.union:,}"))
        from segmint.analytics.segment_profile import trait_names
        from segmint.store.sqltext import json_path

        keys = trait_names(store)
        sec, _ = _median(lambda: store.query(
            "SELECT count(j) FROM (SELECT unnest(json_extract(traits, ?::VARCHAR[])) AS j FROM profiles)",
            [[json_path(k) for k in keys]]), 3)
        rows.append(("baseline: one pass reading every trait of every profile", sec, f"{len(keys)} traits"))
        sec, p = _median(lambda: profile(engine, store, "active0", as_of=NOW), 3)
        rows.append(("profile: every trait vs everyone", sec,
                     f"{len(p.traits)} traits, {len(p.flagged())} flagged"))
        names = iter(range(100))
        sec, _ = _median(lambda: st.snapshot(engine, store, f"snap{next(names)}", source="active0", as_of=NOW), 3)
        rows.append(("snapshot (one evaluation + freeze in the app DB)", sec, ""))
        csv = ("user_id\n" + "\n".join(ids[:10_000]) + "\nghost\n").encode()
        sec, u = _median(lambda: st.upload(engine, store, f"up{next(names)}", csv), 3)
        rows.append(("CSV upload of 10,001 ids (parse, check against profiles, freeze)", sec,
                     f"{u.detail['unknown']} unknown"))
        ws.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    lines = ["## Segment analysis: backfill, growth, overlap, profile, static segments", "",
             f"Machine: {_machine()}", "",
             f"Demo shop: {users:,} users x {days} days = {events:,} events, computed traits published "
             f"(built in {build:.1f} s); segment `{ACTIVE}` as of {NOW:%Y-%m-%d %H:%M} UTC, time zone "
             f"Asia/Seoul. Medians of 5 runs (3 for backfill, profile, snapshot, upload). "
             "Command: `python -m bench.run segment_analysis`.", "",
             "| step | seconds | notes |", "|---|---:|---|"]
    lines += [f"| {k} | {s:.3f} | {n} |" for k, s, n in rows]
    return "\n".join(lines) + "\n"


def main() -> None:
    """Command-line entry: print the report."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", type=int, default=50_000)
    ap.add_argument("--days", type=int, default=90)
    args = ap.parse_args()
    print(run(args.users, args.days))


if __name__ == "__main__":
    main()
