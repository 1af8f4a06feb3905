"""Benchmark: writing a full computed-trait run (history rows + publish into profiles) on the ClickHouse (chDB)
store: the bulk write (ClickHouse makes the history rows from the Arrow tables) against the row-by-row Python
encoding it replaced, both in the same process on the same tables, alternating.

Run: `PYTHONPATH=src python bench/traits_clickhouse.py --users 200000 --days 30 [--workspace DIR] [--reps 2]`
(prints Markdown) or `python -m bench.run traits_clickhouse`. The shop is generated into DuckDB (kept with
--workspace), copied into a fresh chDB store, every SQL family is computed once on DuckDB (not timed),
and then each method writes the same tables as a published run with its own run id. Timing: wall and CPU
of the process (chDB runs in-process, so its threads count).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

NOW = datetime(2026, 11, 25)

_CHILD = r"""
import json, sys, time, tempfile
from datetime import datetime
from segmint.workspace import Workspace
from segmint.store.base import TraitWrite
from segmint.store.clickhouse import ClickHouseEventStore
from segmint.traits import load_trait_config
from segmint.traits.catalog import FAMILIES
from segmint.traits.runner import compute_family
from bench.traits_clickhouse import rowwise_write_traits
ws = Workspace(sys.argv[1]); as_of = datetime.fromisoformat(sys.argv[2]); reps = int(sys.argv[3])
cfg = load_trait_config(ws.path)
duck = ws.open_store_read_only()
chdb_dir = tempfile.mkdtemp(prefix="segmint-bench-chtraits-")
ch = ClickHouseEventStore(chdb_dir, database="bench")
t = time.perf_counter(); ch.copy_from(duck); copy = time.perf_counter() - t
tables = [compute_family(duck, cfg, f, as_of)[0] for f in FAMILIES if f != "predict"]
tables = [t for t in tables if t.num_columns > 1]
out = {"copy": copy, "values": sum(t.num_rows * (t.num_columns - 1) for t in tables),
       "users": ch.query("SELECT count() AS n FROM profiles").column(0)[0].as_py(), "runs": []}
print("tables ready", file=sys.stderr, flush=True)
run_id, last = 0, None
for rep in range(reps):
    for method in ("row-by-row (before)", "bulk (after)"):
        run_id += 1
        run = {"run_id": run_id, "started_at": as_of, "finished_at": as_of, "as_of": as_of, "families": ["all"],
               "published": True, "users": 0, "rows": 0, "status": "ok", "error": None, "notes": "{}",
               "kind": "compute", "trigger": "manual"}
        w = TraitWrite(run, tables, publish=True)
        t, c = time.perf_counter(), time.process_time()
        rows = rowwise_write_traits(ch, w) if method.startswith("row") else ch.write_traits(w)
        wall, cpu = time.perf_counter() - t, time.process_time() - c
        prof = {r["user_id"]: json.loads(r["traits"], parse_int=float) for r in
                ch.query("SELECT user_id, traits FROM profiles").to_pylist()}  # 12 and 12.0: the same number
        same = None if not out["runs"] else prof == last
        last = prof
        print(method, rep + 1, round(wall, 1), round(cpu, 1), file=sys.stderr, flush=True)
        out["runs"].append({"method": method, "rep": rep + 1, "wall": wall, "cpu": cpu, "rows": rows,
                            "same": same, "load": __import__("os").getloadavg()[0]})
print(json.dumps(out))
__import__("shutil").rmtree(chdb_dir, ignore_errors=True)
"""


def rowwise_write_traits(store: Any, write: Any) -> int:
    """The ClickHouse store's write_traits before the bulk rewrite (values encoded one by one in Python):
    the baseline of this benchmark, kept here verbatim but for the names it imports."""
    import orjson
    import pyarrow as pa

    from segmint.store.clickhouse import PROFILE_COLUMNS, TRAIT_DDL, _merge_patch, _now

    with store._lock:
        for stmt in TRAIT_DDL:
            store._exec(stmt)
        run, now = dict(write.run), _now()
        hist: dict[str, list[Any]] = {"user_id": [], "name": [], "value": []}
        patches: dict[str, dict[str, Any]] = {}
        for table in write.tables:
            names = [n for n in table.column_names if n != "user_id"]
            for row in table.to_pylist():
                patch = patches.setdefault(row["user_id"], {})
                for n in names:
                    v = _old_json_value(row[n])
                    patch[n] = v
                    if v is not None:
                        hist["user_id"].append(row["user_id"])
                        hist["name"].append(n)
                        hist["value"].append(orjson.dumps(v).decode())
        k = len(hist["user_id"])
        store._insert("computed_traits", pa.table({
            "run_id": pa.array([run["run_id"]] * k, pa.int64()), **{c: pa.array(v, pa.string())
                                                                    for c, v in hist.items()},
            "as_of": pa.array([run["as_of"]] * k, pa.timestamp("us")),
            "computed_at": pa.array([now] * k, pa.timestamp("us"))}))
        if write.publish and write.tables:
            keys = {n: None for t in write.tables for n in t.column_names if n != "user_id"}
            current = store._profiles_for(None)
            table = pa.Table.from_pylist(list(current.values())) if current else None
            if table is not None:
                traits = [orjson.dumps(_merge_patch(orjson.loads(r["traits"] or "{}"),
                                                    {**keys, **patches.get(u, {})})).decode()
                          for u, r in current.items()]
                table = table.set_column(table.column_names.index("traits"), "traits", pa.array(traits))
                store._exec("TRUNCATE TABLE profiles")
                store._insert("profiles", table.select(PROFILE_COLUMNS))
        if write.keep_runs:
            store._exec("DELETE FROM computed_traits WHERE run_id <= {r:Int64}",
                        {"r": run["run_id"] - write.keep_runs})
        run["version"] = now
        store._insert("trait_runs", pa.Table.from_pylist([run]).cast(store._trait_run_schema(list(run))))
        return k


def _old_json_value(v: Any) -> Any:
    if isinstance(v, float) and v != v:
        return None
    if isinstance(v, datetime):
        text = str(v.replace(tzinfo=None))
        return text.rstrip("0") if "." in text else text
    if isinstance(v, list):
        return [_old_json_value(x) for x in v]
    return v


def run(users: int = 200_000, days: int = 30, workspace: Path | None = None, reps: int = 2) -> str:
    """Build (or reuse) a demo shop, then time both write methods in one child process; a Markdown section."""
    from bench.traits import _machine
    from segmint.demo.generate import DemoSpec
    from segmint.demo.load import build_demo, read_demo_info

    tmp = None
    if workspace is None:
        tmp = Path(tempfile.mkdtemp(prefix="segmint-bench-chtraits-"))
        workspace = tmp / "w"
    try:
        info = read_demo_info(workspace)
        if info and info.complete:
            users, days = info.spec.users, info.spec.days
        else:
            ws, _ = build_demo(workspace, DemoSpec(users=users, days=days, now=NOW), progress=False)
            ws.close()
        root = Path(__file__).resolve().parents[1]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root / "src"), str(root), *sys.path])}
        started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        res = subprocess.run([sys.executable, "-c", _CHILD, str(workspace), NOW.isoformat(), str(reps)], env=env,
                             capture_output=True, text=True)
        if res.returncode != 0:
            raise SystemExit(f"error: benchmark child failed:\n{res.stderr[-3000:]}")
        out = json.loads(res.stdout.strip().splitlines()[-1])
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    lines = ["## Computed traits on ClickHouse (chDB): writing a run", "",
             f"Command: `python -m bench.run traits_clickhouse` (or `PYTHONPATH=src python bench/traits_clickhouse.py "
             f"--users {users} --days {days}`), {started}. Machine: {_machine()}.", "",
             f"Demo shop {users:,} users x {days} days copied into chDB ({out['copy']:.1f} s); every SQL family "
             f"computed once ({out['values']:,} cells over {out['users']:,} profiles), then the same tables written "
             "as a published run (history rows into `computed_traits`, merge into `profiles.traits`) by each method "
             "in turn, in one process. Baseline in the same run: the row-by-row write it replaced "
             "(`bench.traits_clickhouse.rowwise_write_traits`, the old code verbatim).", "",
             "| method | rep | wall s | CPU s | history rows | load (1 min) | profiles equal to the previous write's |",
             "|---|---:|---:|---:|---:|---:|---|"]
    for r in out["runs"]:
        lines.append(f"| {r['method']} | {r['rep']} | {r['wall']:.2f} | {r['cpu']:.2f} | {r['rows']:,} | "
                     f"{r['load']:.1f} | {_yes(r['same'])} |")
    lines.append(f"\nLoad average at the end: {' / '.join(f'{x:.1f}' for x in os.getloadavg())} (1 / 5 / 15 min).")
    return "\n".join(lines)


def _yes(same: bool | None) -> str:
    return "(first)" if same is None else "yes" if same else "**no**"


def main() -> None:
    """Command-line entry: print the report."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", type=int, default=200_000)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--workspace", type=Path, default=None, help="reuse the demo shop here (built when missing)")
    args = ap.parse_args()
    print(run(args.users, args.days, args.workspace, args.reps))


if __name__ == "__main__":
    main()
