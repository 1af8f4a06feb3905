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
import resource
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

_FAMILY = r"""
import json, resource, sys, time
from datetime import datetime
from segmint.workspace import Workspace
from segmint.traits import load_trait_config
from segmint.traits.runner import compute_family
ws = Workspace(sys.argv[1]); store = ws.store; cfg = load_trait_config(ws.path)
as_of, family = datetime.fromisoformat(sys.argv[2]), sys.argv[3]
t, c = time.perf_counter(), time.process_time()
if family == "baseline":
    rows = store.query("SELECT user_id, count(*), max(ts) FROM events WHERE ts <= $a GROUP BY user_id",
                       {"a": as_of}).num_rows
    note = None
else:
    table, note = compute_family(store, cfg, family, as_of, ws.path)
    rows = table.num_rows
out = {"wall": time.perf_counter() - t, "cpu": time.process_time() - c, "rows": rows, "note": note,
       "rss_mb": int(next(ln.split()[1] for ln in open("/proc/self/status") if ln.startswith("VmHWM"))) / 1024}
ws.close()
print(json.dumps(out, default=str))
"""

_CHILD = r"""
import json, sys, time
from datetime import datetime
from segmint.workspace import Workspace
from segmint.traits import compute_traits, load_trait_config
ws = Workspace(sys.argv[1]); store = ws.store; cfg = load_trait_config(ws.path)
as_of = datetime.fromisoformat(sys.argv[2])
out = {}
t, c = time.perf_counter(), time.process_time()
run = compute_traits(store, cfg, as_of=as_of, publish=True, workspace_path=ws.path)
out["all"] = {"wall": time.perf_counter() - t, "cpu": time.process_time() - c, "rows": run.rows}
out["_users"] = run.users
out["_clv"] = run.notes.get("clv")
for k in ("lifecycle_stage", "rfm_tier", "churn_risk", "purchase_regularity", "clv_tier"):
    rows = store.query("SELECT coalesce(traits->>$k, '(none)') AS v, count(*) AS n FROM profiles "
                       "GROUP BY v ORDER BY n DESC", {"k": "$." + k}).to_pylist()
    out["_dist_" + k] = {r["v"]: r["n"] for r in rows}
out["_rss_mb"] = int(next(ln.split()[1] for ln in open("/proc/self/status") if ln.startswith("VmHWM"))) / 1024
ws.close()
print(json.dumps(out))
"""


def _child(script: str, *args: str) -> dict:
    """Run a benchmark step in a child process (its own peak RSS); its JSON result."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    res = subprocess.run([sys.executable, "-c", script, *args], env=env, capture_output=True, text=True)
    if res.returncode != 0:
        raise SystemExit(f"error: benchmark step {args[2:] or args} failed:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def _machine() -> str:
    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")), platform.processor())
    mem = next((int(ln.split()[1]) // 1024 // 1024 for ln in Path("/proc/meminfo").read_text().splitlines()
                if ln.startswith("MemTotal")), 0)
    return (f"{os.cpu_count()} cores ({cpu}), {mem} GB RAM, Python {platform.python_version()}, "
            f"load {os.getloadavg()[0]:.1f}")


def run(users: int = 200_000, days: int = 90, horizon: int = 30, workspace: Path | None = None,
        train: bool = True) -> str:
    """Build (or reuse, with `workspace`) a demo shop, train the models, time every family alone and the full
    compute, each in a child process; return a Markdown report."""
    from segmint.demo.generate import DemoSpec
    from segmint.demo.load import build_demo, read_demo_info
    from segmint.traits import FAMILIES

    tmp = None
    if workspace is None:
        tmp = Path(tempfile.mkdtemp(prefix="segmint-bench-traits-"))
        workspace = tmp / "w"
    try:
        t = time.perf_counter()
        info = read_demo_info(workspace)
        if info and info.complete:
            users, days = info.spec.users, info.spec.days
            build = None
        else:
            ws, _ = build_demo(workspace, DemoSpec(users=users, days=days, now=NOW), progress=False)
            ws.close()
            build = time.perf_counter() - t
        from segmint.workspace import Workspace

        ws = Workspace(workspace)
        store = ws.open_store_read_only()
        events = store.summary()["events"]
        store.close()
        trained = None
        if train:
            print("  training ...", file=sys.stderr, flush=True)
            t, c = time.perf_counter(), _children_cpu()
            trained = _child(_TRAIN, str(workspace), str(horizon))
            trained["cpu"] = _children_cpu() - c
        steps = {}
        for f in ["baseline", *FAMILIES]:
            print(f"  {f} ...", file=sys.stderr, flush=True)
            steps[f] = _child(_FAMILY, str(workspace), NOW.isoformat(), f)
        print("  all families ...", file=sys.stderr, flush=True)
        out = _child(_CHILD, str(workspace), NOW.isoformat())
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    built = "reused" if build is None else f"built in {build:.1f} s"
    lines = ["## Computed traits: all families on a demo shop", "", f"Machine: {_machine()}", "",
             f"Demo shop: {users:,} users x {days} days = {events:,} events ({built}), "
             f"as of {NOW:%Y-%m-%d}; {out['_users']:,} users got traits. Each step runs in its own child process "
             "(wall s, CPU s of that process incl. threads, its peak RSS = VmHWM).", "",
             "| step | wall s | CPU s | rows | peak RSS MB |", "|---|---:|---:|---:|---:|"]
    for f, r in steps.items():
        name = "baseline: per-user count/max scan" if f == "baseline" else f"family {f} (alone)"
        lines.append(f"| {name} | {r['wall']:.2f} | {r['cpu']:.2f} | {r['rows']:,} | {r['rss_mb']:.0f} |")
    a = out["all"]
    lines.append(f"| all families: compute + history + publish | {a['wall']:.2f} | {a['cpu']:.2f} | {a['rows']:,} | "
                 f"{out['_rss_mb']:.0f} |")
    lines += ["", f"CLV fit: {json.dumps(out.get('_clv'), ensure_ascii=False)}", "", "Distributions over profiles:",
              ""]
    lines += [f"- {k[6:]}: " + ", ".join(f"{v} {n:,}" for v, n in d.items())
              for k, d in out.items() if k.startswith("_dist_")]
    if trained is not None:
        lines += _train_lines(trained, horizon)
    lines.append(f"\nLoad average at the end: {' / '.join(f'{x:.1f}' for x in os.getloadavg())} (1 / 5 / 15 min).")
    return "\n".join(lines)


def _children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def _train_lines(trained: dict, horizon: int) -> list[str]:
    lines = ["", f"Predictive models (`traits train --horizon {horizon}`, separate process, before the compute "
             "above): "
             f"{trained['seconds']:.1f} s wall / {trained['cpu']:.1f} s CPU in all ({trained['train_seconds']:.1f} s "
             f"features for every cut + training + evaluation, {trained['score_seconds']:.1f} s scoring "
             f"{trained['scored']:,} users as of now), peak RSS {trained['rss_mb']:.0f} MB. Features for all cuts "
             f"(SQL + pandas): {next(iter(trained['models'].values()))['seconds']['features_all_cuts']:.1f} s; per "
             "model, fit + evaluate + baselines + refit: "
             + ", ".join(f"{n} {m['seconds']['fit_evaluate_refit']:.1f} s" for n, m in trained["models"].items())
             + ".", "",
             "| model | training rows | holdout rows | holdout AUC | recency baseline AUC | Brier | baseline Brier "
             "| base-rate Brier | top features |", "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for name, m in trained["models"].items():
        met = m["metrics"]
        lines.append(f"| {name} | {m['rows']['train']:,} | {m['rows']['holdout']:,} | {met['auc']:.4f} | "
                     f"{met['baseline_auc']:.4f} ({met['baseline_feature']}) | {met['brier']:.4f} | "
                     f"{met['baseline_brier']:.4f} | {met['prevalence_brier']:.4f} | {', '.join(m['top'])} |")
    return lines


def main() -> None:
    """Command-line entry: print the report."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", type=int, default=200_000)
    ap.add_argument("--days", type=int, default=90)
    ap.add_argument("--horizon", type=int, default=30, help="Days ahead the predictive models look.")
    ap.add_argument("--workspace", type=Path, default=None,
                    help="reuse the demo shop here (built there when missing; kept); its size wins over --users/--days")
    ap.add_argument("--no-train", action="store_true", help="skip training (the predict family then scores "
                    "with the models already stored in the workspace, if any)")
    args = ap.parse_args()
    print(run(args.users, args.days, args.horizon, args.workspace, train=not args.no_train))


if __name__ == "__main__":
    main()
