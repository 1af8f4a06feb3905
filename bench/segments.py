"""Benchmark: the seed segments A1-A4 advanced and an RFM top tier on the demo shop, three ways.

For each segment, in the same run and on the same store: (a) segmint's compiled SQL
(`segments.evaluate.compile_for`), (b) hand-written SQL for the same engine (`bench/segments_sql.py`),
(c) a pandas baseline (`bench/segments_pandas.py`). All three must return the same member set (asserted).
Times are the median of `--runs` runs; a run slower than `--slow` seconds is not repeated.

Run:
  PYTHONPATH=src python -m bench.segments --users 2000000 --events 50000000      # the issue's size
  PYTHONPATH=src python -m bench.segments --users 200000 --events 5000000        # a quicker run
  PYTHONPATH=src python -m bench.segments --users 60000 --days 90 --engine clickhouse
  PYTHONPATH=src python -m bench.segments --users 600000 --days 90 --workspace /tmp/shop --segments A2,A4 --no-pandas
`--events` picks the number of days of history that gives that many events for `--users` (measured on a
sample of the generator); `--days` fixes it instead. `--workspace DIR` keeps the built store for re-runs
(a complete demo of the same size there is reused, so a re-run of chosen `--segments` takes seconds).
The demo is built in a child process, so this process's peak RSS is the query phase's.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import shutil
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from bench import segments_pandas, segments_sql
from segmint.demo.generate import DemoSpec, Generator
from segmint.demo.load import build_demo, read_demo_info
from segmint.segments import dsl
from segmint.segments.evaluate import compile_for
from segmint.workspace import Workspace

NOW = datetime(2026, 11, 25)
EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "segments"
RFM_TEXT = """last order_completed in last 30 days
and did order_completed at least 3 times in last 90 days
and sum revenue of order_completed in last 90 days >= 300000"""
SEGMENTS = {
    "A1": "a1-advanced.yaml",
    "A2": "a2-advanced.yaml",
    "A3": "a3-advanced.yaml",
    "A4": "a4-advanced.yaml",
    "RFM": None,
}
TARGET_RATIO, TARGET_PANDAS, TARGET_GIB = 1.2, 30.0, 4.0


def segment_text(key: str) -> str:
    """The segment-language text of a benchmarked segment."""
    import yaml

    name = SEGMENTS[key]
    return RFM_TEXT if name is None else yaml.safe_load((EXAMPLES / name).read_text(encoding="utf-8"))["definition"]


def events_per_user(days: int, sample: int = 5000) -> float:
    """Events per user the generator makes for a history of `days` days (one chunk of `sample` users)."""
    chunk = next(Generator(DemoSpec(users=sample, days=days, now=NOW)).chunks())
    return chunk.events.num_rows / sample


def days_for(users: int, events: int) -> int:
    """The number of days of history giving about `events` events for `users` users (bisection)."""
    want = events / users
    lo, hi = 1, 365
    while lo < hi:
        mid = (lo + hi) // 2
        if events_per_user(mid) < want:
            lo = mid + 1
        else:
            hi = mid
    return lo


def _build(path: str, users: int, days: int, seed: int) -> None:
    """Child process: build the demo workspace."""
    ws, _ = build_demo(Path(path), DemoSpec(users=users, days=days, seed=seed, now=NOW), progress=False)
    ws.close()


def ensure_demo(path: Path, users: int, days: int, seed: int) -> float:
    """Build the demo at `path` unless a complete one of the same spec is there; returns build seconds."""
    info = read_demo_info(path)
    if info and info.complete and (info.spec.users, info.spec.days, info.spec.seed, info.spec.now) == (
        users,
        days,
        seed,
        NOW,
    ):
        return 0.0
    if path.exists():
        if info is None and any(path.iterdir()):
            raise SystemExit(f"error: {path}: not a demo workspace; choose another --workspace")
        shutil.rmtree(path)
    start = time.perf_counter()
    proc = mp.get_context("spawn").Process(target=_build, args=(str(path), users, days, seed))
    proc.start()
    proc.join()
    if proc.exitcode != 0:
        raise SystemExit(f"error: building the demo failed (exit {proc.exitcode})")
    return time.perf_counter() - start


def rss_gib() -> float:
    """Peak resident set size of this process so far, GiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024


def timed(fn: Callable[[], set[str]], runs: int, slow: float) -> tuple[tuple[float, float], int, set[str]]:
    """Median (wall, CPU) seconds over `runs` runs (one run when it takes longer than `slow`), runs made,
    result. CPU is the process's own, all threads (DuckDB, chDB and pandas all run in this process)."""
    walls, cpus, result = [], [], set()
    for _ in range(runs):
        start, cpu = time.perf_counter(), time.process_time()
        result = fn()
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - cpu)
        if walls[-1] > slow:
            break
    return (statistics.median(walls), statistics.median(cpus)), len(walls), result


def _copy_to_chdb(path: str) -> None:
    """Child process: make the workspace's chDB copy hold the same events as its DuckDB store."""
    from segmint.store.clickhouse import ClickHouseEventStore

    ws = Workspace(Path(path))
    duck = ws.open_store_read_only()
    ch = ClickHouseEventStore(ws.path / "chdb-bench", database="segmint")
    if ch.summary()["events"] != duck.summary()["events"]:
        ch.copy_from(duck)


class Engine:
    """Runs SQL on the benchmark store: DuckDB (a cursor that a timer can interrupt) or chDB."""

    def __init__(self, ws: Workspace, name: str, timeout: float) -> None:
        self.name, self.timeout = name, timeout
        self.duck = ws.open_store_read_only()
        self.store: Any = self.duck
        if name == "clickhouse":
            from segmint.store.clickhouse import ClickHouseEventStore

            # Copy in a child process, so this process's peak RSS is the queries', not the copy's.
            proc = mp.get_context("spawn").Process(target=_copy_to_chdb, args=(str(ws.path),))
            proc.start()
            proc.join()
            if proc.exitcode != 0:
                raise SystemExit(f"error: copying the store into chDB failed (exit {proc.exitcode})")
            self.store = ClickHouseEventStore(ws.path / "chdb-bench", database="segmint")

    def members(self, sql: str, params: dict[str, Any]) -> set[str]:
        """The first column of a query's rows, as a set of strings."""
        if self.name == "clickhouse":  # the same limit, as a query setting
            limit = f"max_execution_time = {int(self.timeout)}"
            sql = f"{sql}, {limit}" if "SETTINGS" in sql else f"{sql} SETTINGS {limit}"
            return {str(u) for u in self.store.query(sql, params).column(0).to_pylist()}
        cur = self.duck._cursor()  # a cursor of our own, so a timer can interrupt it
        timer = threading.Timer(self.timeout, cur.interrupt)
        timer.start()
        try:
            rows = cur.execute(sql, params).fetchall()
        finally:
            timer.cancel()
            cur.close()
        return {str(r[0]) for r in rows}


def measure(
    users: int,
    events: int | None,
    days: int | None,
    *,
    engine: str = "duckdb",
    runs: int = 5,
    slow: float = 60.0,
    timeout: float = 900.0,
    workspace: Path | None = None,
    seed: int = 42,
    pandas: bool = True,
    only: list[str] | None = None,
) -> str:
    """Build (or reuse) the demo, time every segment (or the `only` ones) three ways; the markdown section."""
    keys = only or list(SEGMENTS)
    unknown = [k for k in keys if k not in SEGMENTS]
    if unknown:
        raise SystemExit(f"error: --segments: unknown {', '.join(unknown)}; choose from {', '.join(SEGMENTS)}")
    t = time.perf_counter()
    if days is None:
        days = days_for(users, events or 25 * users)
    calibrate = time.perf_counter() - t
    tmp = None
    if workspace is None:
        tmp = Path(tempfile.mkdtemp(prefix="segbench-"))
        workspace = tmp / "demo"
    try:
        build = ensure_demo(workspace, users, days, seed)
        build_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024 / 1024
        ws = Workspace(workspace)
        eng = Engine(ws, engine, timeout)
        summary = eng.duck.summary()
        hand = segments_sql.DUCKDB if engine == "duckdb" else segments_sql.CLICKHOUSE
        values = segments_sql.params(NOW)
        rows: list[dict[str, Any]] = []
        rss_before = rss_gib()
        for key in keys:
            print(f"  {key} ...", flush=True)
            tree = dsl.parse(segment_text(key))
            sql, params = compile_for(eng.duck, tree, NOW, engine)
            row: dict[str, Any] = {"key": key}
            try:
                row["compiled"], row["compiled_runs"], got = timed(
                    lambda s=sql, p=params: eng.members(s, p), runs, slow
                )
            except Exception as exc:  # a failed or interrupted compiled query is a result
                row["compiled_error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}"
                got = None
            h = hand[key]
            row["hand"], row["hand_runs"], want = timed(
                lambda s=h: eng.members(s, segments_sql.bound(s, values)), runs, slow
            )
            row["members"], row["want"] = len(want), want
            if got is not None and got != want:
                raise AssertionError(
                    f"{key}: compiled and hand-written SQL differ: {len(got - want)} only compiled, "
                    f"{len(want - got)} only hand-written"
                )
            rows.append(row)
            comp = _fmt(row["compiled"], row["compiled_runs"]) if "compiled" in row else row["compiled_error"]
            print(f"  {key}: {row['members']:,} members; compiled {comp}; hand-written "  # as it goes
                  f"{_fmt(row['hand'], row['hand_runs'])} (wall s / CPU s)", flush=True)
        sql_rss = rss_gib()
        frame_load = None
        if pandas:
            start, cpu = time.perf_counter(), time.process_time()
            df = eng.duck.query(segments_pandas.LOAD_SQL).to_pandas()
            df["event"] = df["event"].astype("category")
            frame_load = (time.perf_counter() - start, time.process_time() - cpu, len(df))
            population = {str(u) for u in eng.duck.query("SELECT user_id FROM profiles").column(0).to_pylist()}
            for row in rows:
                fn = segments_pandas.SEGMENTS[row["key"]]
                row["pandas"], row["pandas_runs"], got = timed(
                    lambda f=fn: f(df, population, NOW), max(1, min(runs, 3)), slow
                )
                if got != row["want"]:
                    raise AssertionError(
                        f"{row['key']}: pandas and SQL differ: {len(got - row['want'])} only pandas, "
                        f"{len(row['want'] - got)} only SQL"
                    )
            del df
        pandas_rss = rss_gib()
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    return report(
        rows,
        users=users,
        days=days,
        events=summary["events"],
        engine=engine,
        runs=runs,
        build=build,
        build_rss=build_rss,
        calibrate=calibrate,
        rss=(rss_before, sql_rss, pandas_rss if pandas else None),
        frame_load=frame_load,
    )


def _fmt(t: tuple[float, float] | None, n: int | None) -> str:
    if t is None:
        return "n/a"
    return f"{t[0]:.3f} / {t[1]:.3f}" + ("" if n is None or n > 1 else " (1 run)")


def _ratio(a: tuple[float, float] | None, b: tuple[float, float] | None) -> str:
    if a is None or b is None:
        return "n/a"
    return f"{a[0] / b[0]:.2f}x / {a[1] / b[1]:.2f}x"


def report(rows: list[dict[str, Any]], **m: Any) -> str:
    """The markdown section for docs/benchmarks.md."""
    load1, load5, _ = os.getloadavg()
    lines = [
        f"## Segments at scale ({m['engine']}, {m['users']:,} users x {m['days']} days)",
        "",
        f"`bench/segments.py --engine {m['engine']} --users {m['users']} --days {m['days']}`: demo shop "
        f"{m['users']:,} users x {m['days']} days = {m['events']:,} events (seed 42, as of {NOW:%Y-%m-%d}). "
        f"Each cell is wall s / CPU s (the process's CPU time, all threads), median of {m['runs']} runs "
        f"(1 run when a run takes over the `--slow` limit); pandas: median of up to 3 runs on a DataFrame "
        f"loaded before timing. Every row's three member sets were asserted equal. Load average at the end: "
        f"{load1:.1f} (1 min) / {load5:.1f} (5 min) on {os.cpu_count()} cores.",
        "",
        "| segment | members | compiled | hand-written | compiled / hand | pandas | pandas / compiled |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        c, h, p = r.get("compiled"), r["hand"], r.get("pandas")
        comp = _fmt(c, r.get("compiled_runs")) if c is not None else f"failed: {r['compiled_error']}"
        lines.append(
            f"| {r['key']} | {r['members']:,} | {comp} | {_fmt(h, r['hand_runs'])} | {_ratio(c, h)} | "
            f"{_fmt(p, r.get('pandas_runs'))} | {_ratio(p, c)} |"
        )
    before, sql_rss, pandas_rss = m["rss"]
    lines += [
        "",
        f"Targets: compiled / hand <= {TARGET_RATIO}x, pandas / compiled >= {TARGET_PANDAS:.0f}x, peak memory < "
        f"{TARGET_GIB:.0f} GiB. Peak RSS of the benchmark process: {before:.2f} GiB after opening the store, "
        f"**{sql_rss:.2f} GiB** after all SQL runs"
        + (f", {pandas_rss:.2f} GiB with the pandas frame loaded" if pandas_rss is not None else "")
        + f". Building the demo (child process): {m['build']:.0f} s"
        + (f", peak RSS {m['build_rss']:.2f} GiB" if m["build"] else " (reused)")
        + f"; choosing the history length took {m['calibrate']:.1f} s."
        + (
            f" Loading the pandas frame ({m['frame_load'][2]:,} events of the 8 types used) took "
            f"{m['frame_load'][0]:.1f} s wall / {m['frame_load'][1]:.1f} s CPU (not in the pandas times)."
            if m.get("frame_load")
            else ""
        ),
    ]
    return "\n".join(lines)


def run() -> str:
    """The `bench.run` entry point: the issue's size, or SEGBENCH_USERS / SEGBENCH_EVENTS / SEGBENCH_DAYS;
    SEGBENCH_WORKSPACE keeps (and reuses) the shop, SEGBENCH_SEGMENTS=A2,A4 times only those."""
    users = int(os.environ.get("SEGBENCH_USERS", 2_000_000))
    events = int(os.environ.get("SEGBENCH_EVENTS", 50_000_000))
    days = int(os.environ["SEGBENCH_DAYS"]) if os.environ.get("SEGBENCH_DAYS") else None
    workspace = Path(os.environ["SEGBENCH_WORKSPACE"]) if os.environ.get("SEGBENCH_WORKSPACE") else None
    only = [k.strip() for k in os.environ.get("SEGBENCH_SEGMENTS", "").split(",") if k.strip()] or None
    return measure(users, events, days, workspace=workspace, only=only)


def main() -> None:
    """Command line: choose the size and engine, print the markdown section."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--users", type=int, default=2_000_000)
    ap.add_argument("--events", type=int, default=50_000_000)
    ap.add_argument("--days", type=int, default=None, help="history length (default: from --events)")
    ap.add_argument("--engine", choices=["duckdb", "clickhouse"], default="duckdb")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--slow", type=float, default=60.0, help="do not repeat a run slower than this (s)")
    ap.add_argument("--timeout", type=float, default=900.0, help="interrupt a DuckDB query after this (s)")
    ap.add_argument("--workspace", type=Path, default=None, help="build/reuse the demo here (kept)")
    ap.add_argument("--no-pandas", action="store_true")
    ap.add_argument("--segments", default="", help="comma-separated subset, e.g. A2,A4 (default: all)")
    a = ap.parse_args()
    print(
        measure(
            a.users,
            a.events,
            a.days,
            engine=a.engine,
            runs=a.runs,
            slow=a.slow,
            timeout=a.timeout,
            workspace=a.workspace,
            pandas=not a.no_pandas,
            only=[k.strip() for k in a.segments.split(",") if k.strip()] or None,
        )
    )


if __name__ == "__main__":
    main()
