"""Benchmark: taxonomy inference in DuckDB SQL vs a Python loop over every event (the baseline).

Run: PYTHONPATH=src python bench/taxonomy_infer.py [--events 1000000] [--runs 3]
Prints a markdown table (median of the runs) for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import platform
import random
import statistics
import tempfile
import time
from collections import Counter, defaultdict
from datetime import datetime, timedelta
from pathlib import Path

import orjson
import pyarrow as pa

from segmint.store.base import WriteBatch
from segmint.store.duckdb import DuckDBEventStore
from segmint.store.schema import EVENT_SCHEMA
from segmint.taxonomy.infer import infer_taxonomy

CATEGORIES = ["뷰티", "패션", "식품", "생활용품", "가전", "도서", "스포츠", "유아동"]


def _props(rng: random.Random, event: str, i: int) -> dict:
    if event == "product_viewed":
        return {"product_id": f"p{rng.randrange(5000)}", "category": rng.choice(CATEGORIES),
                "price": rng.randrange(1000, 300000), "brand": f"b{rng.randrange(200)}"}
    if event == "cart_added":
        return {"product_id": f"p{rng.randrange(5000)}", "quantity": rng.randrange(1, 4),
                "price": rng.randrange(1000, 300000) if i % 1000 else "free"}
    if event == "order_completed":
        return {"order_id": f"o{i}", "revenue": rng.randrange(5000, 900000) * 1.0, "item_count": rng.randrange(1, 6),
                "coupon_id": f"c{rng.randrange(30)}" if i % 3 == 0 else None}
    if event == "app_opened":
        return {"platform": rng.choice(["iOS", "Android", "web"])}
    return {"channel": rng.choice(["push", "email", "sms", "kakao"]), "campaign_id": f"cmp{rng.randrange(50)}",
            "sent_at": "2026-11-01T09:00:00Z"}


def build(store: DuckDBEventStore, n: int) -> None:
    """Write n synthetic shop events in Arrow batches."""
    rng = random.Random(7)
    names = ["product_viewed"] * 5 + ["app_opened"] * 3 + ["cart_added"] * 2 + ["order_completed", "message_sent"]
    start = datetime(2026, 1, 1)
    step = 200_000
    for base in range(0, n, step):
        rows = range(base, min(n, base + step))
        events = [rng.choice(names) for _ in rows]
        times = [start + timedelta(seconds=i) for i in rows]
        cols = {
            "message_id": [f"m{i}" for i in rows], "type": ["track"] * len(rows), "event": events,
            "user_id": [f"u{rng.randrange(50_000)}" for _ in rows], "anonymous_id": [None] * len(rows),
            "ts": times, "received_at": times,
            "properties": [orjson.dumps(_props(rng, e, i)).decode() for e, i in zip(events, rows, strict=True)],
            "context": ["{}"] * len(rows), "source": ["bench"] * len(rows),
        }
        store.write(WriteBatch(events=pa.table(cols, schema=EVENT_SCHEMA)))


def python_baseline(store: DuckDBEventStore) -> int:
    """The naive way: fetch every event, parse its JSON in Python, count types and values per key."""
    types: dict[tuple[str, str], Counter] = defaultdict(Counter)
    values: dict[tuple[str, str], set] = defaultdict(set)
    res = store._cursor().execute("SELECT event, properties FROM events WHERE type = 'track'")
    while chunk := res.fetchmany(100_000):
        for event, props in chunk:
            for k, v in orjson.loads(props).items():
                if v is None:
                    continue
                types[(event, k)][type(v).__name__] += 1
                values[(event, k)].add(orjson.dumps(v))
    return len(types)


def timed(fn, runs: int) -> float:
    """Median wall time of `runs` calls."""
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    """Build the store, time both ways, print the table."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = DuckDBEventStore(Path(tmp) / "bench.duckdb")
        t0 = time.perf_counter()
        build(store, args.events)
        print(f"built {args.events:,} events in {time.perf_counter() - t0:.1f} s")
        rows = [
            ("Python loop over every event (baseline)", timed(lambda: python_baseline(store), args.runs)),
            ("infer_taxonomy, DuckDB SQL, all events", timed(lambda: infer_taxonomy(store), args.runs)),
            ("infer_taxonomy, DuckDB SQL, --sample 10000", timed(lambda: infer_taxonomy(store, 10_000), args.runs)),
        ]
        store.close()
    print(f"\nmachine: {platform.machine()}, {platform.processor() or platform.system()}, "
          f"python {platform.python_version()}; {args.events:,} events, median of {args.runs}\n")
    print("| method | seconds | vs baseline |\n|---|---|---|")
    base = rows[0][1]
    for name, secs in rows:
        print(f"| {name} | {secs:.2f} | {base / secs:.1f}x |")


if __name__ == "__main__":
    main()
