"""Benchmark: `segmint import` of a flat Parquet file of events, against DuckDB's raw load of the same file.

Run `python -m bench.import_parquet [ROWS]`; the data file is generated under bench/data/ (not committed).
"""

from __future__ import annotations

import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

DATA = Path(__file__).parent / "data"
ROWS = int(os.environ.get("SEGMINT_BENCH_IMPORT_ROWS", "5000000"))
EVENTS = ["product_viewed", "cart_added", "order_completed", "review_viewed", "app_opened"]
CATEGORIES = ["beauty", "fashion", "food", "digital", "home", "sports", "kids", "books"]


def make_file(rows: int, path: Path) -> Path:
    """Write `rows` flat events (user_id, event, ts, product_id, category, price) to a Parquet file."""
    if path.exists() and pq.ParquetFile(path).metadata.num_rows == rows:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    writer = None
    chunk = 1_000_000
    start = np.datetime64("2026-01-01T00:00:00", "us")
    for off in range(0, rows, chunk):
        n = min(chunk, rows - off)
        users = rng.integers(0, max(rows // 25, 1), n)
        table = pa.table(
            {
                "user_id": pa.array([f"u{u}" for u in users]),
                "event": pa.array(np.array(EVENTS)[rng.integers(0, len(EVENTS), n)]),
                "ts": pa.array(start + rng.integers(0, 300 * 86_400_000_000, n).astype("timedelta64[us]")),
                "product_id": pa.array([f"p{p}" for p in rng.integers(0, 50_000, n)]),
                "category": pa.array(np.array(CATEGORIES)[rng.integers(0, len(CATEGORIES), n)]),
                "price": pa.array(rng.integers(10, 2000, n) * 100, pa.int64()),
            }
        )
        if writer is None:
            writer = pq.ParquetWriter(path, table.schema)
        writer.write_table(table)
    if writer is not None:
        writer.close()
    return path


def _time_import(path: Path, folder: Path) -> tuple[float, float, int]:
    from segmint.ingest.files import import_table_file
    from segmint.ingest.tabular import load_mapping
    from segmint.workspace import Workspace

    ws = Workspace.init(folder / "ws")
    mapping = load_mapping(None)
    t0, c0 = time.perf_counter(), time.process_time()
    res = import_table_file(ws.store, path, "parquet", mapping)
    ws.close()
    return time.perf_counter() - t0, time.process_time() - c0, res.imported


def _time_raw(path: Path, folder: Path) -> tuple[float, float]:
    con = duckdb.connect(str(folder / "raw.duckdb"))
    t0, c0 = time.perf_counter(), time.process_time()
    con.execute("CREATE TABLE t AS SELECT * FROM read_parquet(?)", [str(path)])
    con.execute("CHECKPOINT")
    took = time.perf_counter() - t0, time.process_time() - c0
    con.close()
    return took


def _time_mapped_ctas(path: Path, folder: Path) -> tuple[float, float]:
    """Second baseline: the same mapping SQL written straight into a DuckDB file (no dedupe, no profiles)."""
    from datetime import UTC, datetime

    from segmint.ingest.tabular import load_mapping, mapping_sql, resolve

    con = duckdb.connect(str(folder / "mapped.duckdb"))
    con.execute("SET TimeZone = 'UTC'")
    con.read_parquet(str(path)).create_view("src")
    types = {r[0]: r[1] for r in con.execute("DESCRIBE SELECT * FROM src").fetchall()}
    mapping = load_mapping(None)
    sql, params = mapping_sql(
        mapping, resolve(mapping, list(types), "bench"), types, source="import", received_at=datetime.now(UTC)
    )
    t0, c0 = time.perf_counter(), time.process_time()
    con.execute(f"CREATE TABLE t AS {sql}", params)
    con.execute("CHECKPOINT")
    took = time.perf_counter() - t0, time.process_time() - c0
    con.close()
    return took


def _time_reimport(path: Path, folder: Path) -> tuple[float, float]:
    from segmint.ingest.files import import_table_file
    from segmint.ingest.tabular import load_mapping
    from segmint.workspace import Workspace

    ws = Workspace(folder / "ws")
    t0, c0 = time.perf_counter(), time.process_time()
    res = import_table_file(ws.store, path, "parquet", load_mapping(None))
    ws.close()
    assert res.imported == 0, res
    return time.perf_counter() - t0, time.process_time() - c0


def run(rows: int = ROWS) -> str:
    """Run the benchmark and return a markdown section with the figures."""
    path = make_file(rows, DATA / f"events_{rows}.parquet")
    folder = Path(tempfile.mkdtemp(prefix="segmint-bench-import-"))
    try:
        raw = _time_raw(path, folder)
        mapped = _time_mapped_ctas(path, folder)
        took, cpu, imported = _time_import(path, folder)
        again = _time_reimport(path, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    machine = (
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"DuckDB {duckdb.__version__}; load average {os.getloadavg()[0]:.1f} at the end"
    )

    def line(what: str, wall: float, cpu: float) -> str:
        return f"| {what} | {wall:.2f} | {rows / wall:,.0f} | {cpu:.2f} | {rows / cpu:,.0f} |"

    return "\n".join(
        [
            "## Import from Parquet",
            "",
            f"{rows:,} flat events (user_id, event, ts, product_id, category, price); machine: {machine}. "
            "CPU seconds are the process's own (all threads): on this shared machine they are steadier "
            "than wall time; `rows / CPU s` x cores is what an idle machine would reach at best.",
            "",
            "| what | wall s | rows/s | CPU s | rows / CPU s |",
            "|---|---:|---:|---:|---:|",
            line("baseline: DuckDB `CREATE TABLE AS SELECT * FROM read_parquet`", *raw),
            line("baseline: the import's mapping SQL written by DuckDB `CREATE TABLE AS`", *mapped),
            line(f"`segmint import` into a fresh workspace ({imported:,} stored)", took, cpu),
            line("`segmint import` of the same file again (all duplicates)", *again),
            "",
        ]
    )


if __name__ == "__main__":
    print(run(int(sys.argv[1]) if len(sys.argv) > 1 else ROWS))
