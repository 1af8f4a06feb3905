"""Benchmark: all computed-trait families on a generated demo shop; time per family, end to end, peak memory;
and training the predictive churn / purchase models (time-based split) with their holdout metrics.

Run: `PYTHONPATH=src python bench/traits.py --users 200000 --days 120 [--horizon 30]` (prints Markdown), or
`python -m bench.run traits` (section in docs/benchmarks.md). The baseline in the
same run is one plain scan aggregation over the events table (count, max ts, per user), the floor any
per-user trait query pays. Training and computing run in separate child processes so each peak RSS is
that step's own: VmHWM from /proc/self/status (ru_maxrss would carry over the parent's peak from
building the shop, since Linux keeps it across exec).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

NOW = datetime(2026, 11, 25)

_TRAIN = r"""
import json, sys, time
from segmint.workspace import Workspace
from segmint.traits import load_trait_config
from segmint.traits.runner import train
ws = Workspace(sys.argv[1]); cfg = load_trait_config(ws.path)
t = time.perf_counter()
run, reports, scored = train(ws.store, cfg, ws.path, horizon=int(sys.argv[2]))
out = {"seconds": time.perf_counter() - t, "train_seconds": run.seconds, "score_seconds": scored.seconds,
       "scored": scored.users, "models": {r.name: {
           "rows": r.metadata["rows"], "seconds": r.metadata["seconds"], "metrics": {
           k: v for k, v in r.metadata["metrics"].items() if k != "reliability"},
           "top": [f["feature"] for f in r.metadata["feature_importance"][:5]]} for r in reports},
       "rss_mb": int(next(ln.split()[1] for ln in open("/proc/self/status") if ln.startswith("VmHWM"))) / 1024}
ws.close()
print(json.dumps(out))
"""

_CHILD = r"""
import json, sys, time
from datetime import datetime
from segmint.workspace import Workspace
from segmint.traits import FAMILIES, compute_traits, load_trait_config
from segmint.traits.runner import compute_family
ws = Workspace(sys.argv[1]); store = ws.store; cfg = load_trait_config(ws.path)
as_of = datetime.fromisoformat(sys.argv[2])
out = {}
t = time.perf_counter()
store.query("SELECT user_id, count(*), max(ts) FROM events WHERE ts <= $a GROUP BY user_id", {"a": as_of})
out["baseline: per-user count/max scan"] = [time.perf_counter() - t, None]
for f in FAMILIES:
    t = time.perf_counter()
    table, note = compute_family(store, cfg, f, as_of, ws.path)
    out[f"family {f} (query only)"] = [time.perf_counter() - t, table.num_rows]
    if f == "clv":
        out["_clv"] = note
t = time.perf_counter()
run = compute_traits(store, cfg, as_of=as_of, publish=True, workspace_path=ws.path)
out["all families: compute + history + publish"] = [time.perf_counter() - t, run.rows]
out["_users"] = run.users
for k in ("lifecycle_stage", "rfm_tier", "churn_risk", "purchase_regularity", "clv_tier"):
    rows = store.query("SELECT coalesce(traits->>$k, '(none)') AS v, count(*) AS n FROM profiles "
                       "GROUP BY v ORDER BY n DESC", {"k": "$." + k}).to_pylist()
    out["_dist_" + k] = {r["v"]: r["n"] for r in rows}
out["_rss_mb"] = int(next(ln.split()[1] for ln in open("/proc/self/status") if ln.startswith("VmHWM"))) / 1024
ws.close()
print(json.dumps(out))
"""


def _machine() -> str:
    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")), platform.processor())
    mem = next((int(ln.split()[1]) // 1024 // 1024 for ln in Path("/proc/meminfo").read_text().splitlines()
                if ln.startswith("MemTotal")), 0)
    return (f"{os.cpu_count()} cores ({cpu}), {mem} GB RAM, Python {platform.python_version()}, "
            f"load {os.getloadavg()[0]:.1f}")


def run(users: int = 200_000, days: int = 90, horizon: int = 30) -> str:
    """Build a demo shop, compute every trait family, return a Markdown report."""
    from segmint.demo.generate import DemoSpec
    from segmint.demo.load import build_demo

    tmp = Path(tempfile.mkdtemp(prefix="segmint-bench-traits-"))
    try:
        t = time.perf_counter()
        ws, _ = build_demo(tmp / "w", DemoSpec(users=users, days=days, now=NOW), progress=False)
        events = ws.store.summary()["events"]
        ws.close()
        build = time.perf_counter() - t
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
        res = subprocess.run([sys.executable, "-c", _TRAIN, str(tmp / "w"), str(horizon)], env=env,
                             capture_output=True, text=True, check=True)
        trained = json.loads(res.stdout.strip().splitlines()[-1])
        res = subprocess.run([sys.executable, "-c", _CHILD, str(tmp / "w"), NOW.isoformat()], env=env,
                             capture_output=True, text=True, check=True)
        out = json.loads(res.stdout.strip().splitlines()[-1])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    lines = ["## Computed traits: all families on a demo shop", "", f"Machine: {_machine()}", "",
             f"Demo shop: {users:,} users x {days} days = {events:,} events (built in {build:.1f} s), "
             f"as of {NOW:%Y-%m-%d}; {out['_users']:,} users got traits.", "",
             "| step | seconds | rows |", "|---|---:|---:|"]
    for k, (sec, rows) in ((k, v) for k, v in out.items() if not k.startswith("_")):
        lines.append(f"| {k} | {sec:.2f} | {'' if rows is None else f'{rows:,}'} |")
    lines += ["", f"Peak RSS of the compute process: {out['_rss_mb']:.0f} MB.",
              f"CLV fit: {json.dumps(out.get('_clv'), ensure_ascii=False)}", "", "Distributions over profiles:", ""]
    lines += [f"- {k[6:]}: " + ", ".join(f"{v} {n:,}" for v, n in d.items())
              for k, d in out.items() if k.startswith("_dist_")]
    lines += ["", f"Predictive models (`traits train --horizon {horizon}`, separate process, before the compute "
              "above): "
              f"{trained['seconds']:.1f} s in all ({trained['train_seconds']:.1f} s features for every cut + "
              f"training + evaluation, {trained['score_seconds']:.1f} s scoring {trained['scored']:,} users as of "
              f"now), peak RSS {trained['rss_mb']:.0f} MB. Features for all cuts (SQL + pandas): "
              f"{next(iter(trained['models'].values()))['seconds']['features_all_cuts']:.1f} s; per model, fit + "
              "evaluate + baselines + refit: " + ", ".join(f"{n} {m['seconds']['fit_evaluate_refit']:.1f} s"
                                                          for n, m in trained["models"].items()) + ".", "",
              "| model | training rows | holdout rows | holdout AUC | recency baseline AUC | Brier | baseline Brier "
              "| base-rate Brier | top features |", "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for name, m in trained["models"].items():
        met = m["metrics"]
        lines.append(f"| {name} | {m['rows']['train']:,} | {m['rows']['holdout']:,} | {met['auc']:.4f} | "
                     f"{met['baseline_auc']:.4f} ({met['baseline_feature']}) | {met['brier']:.4f} | "
                     f"{met['baseline_brier']:.4f} | {met['prevalence_brier']:.4f} | {', '.join(m['top'])} |")
    return "\n".join(lines)


def main() -> None:
    """Command-line entry: print the report."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", type=int, default=200_000)
    ap.add_argument("--days", type=int, default=90)
    ap.add_argument("--horizon", type=int, default=30, help="Days ahead the predictive models look.")
    args = ap.parse_args()
    print(run(args.users, args.days, args.horizon))


if __name__ == "__main__":
    main()
