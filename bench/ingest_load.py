"""Load generator for ingestion through /v1/batch: separate processes x threads on keep-alive
connections post pre-built batches to a real `segmint serve`; counts only 2xx events, reports
events/s and p50/p95/p99 request latency, then checks the store holds exactly the acknowledged events.

Baselines in the same run: the same load against a FastAPI endpoint that only reads the body
(bench/_null_app.py), and fsync-only journal appends per second on this disk.

    python -m bench.ingest_load --seconds 8 --procs 2 --threads 2 --batch 200
"""

from __future__ import annotations

import argparse
import base64
import http.client
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.server_util starts `segmint serve` the same way the tests do

from tests.server_util import Server, free_port  # noqa: E402

EVENT_NAMES = ("Product Viewed", "Product Added", "Checkout Started", "Order Completed")
RATE_CEILING = 40_000  # events/s the pre-built body pool is sized for


def _bodies(proc: int, thread: int, count: int, batch: int, run: int = 0) -> list[bytes]:
    """Pre-built batch bodies with unique message ids, so building them costs nothing during the run."""
    out = []
    for b in range(count):
        events = [
            {
                "type": "track",
                "userId": f"user-{(b * batch + j) % 50_000}",
                "event": EVENT_NAMES[j % 4],
                "messageId": f"{run}-{proc}-{thread}-{b}-{j}",
                "timestamp": "2026-11-20T10:00:00+09:00",
                "properties": {
                    "sku": f"SKU-{j % 900}",
                    "price": 19_900 + j,
                    "currency": "KRW",
                    "category": "beauty",
                    "qty": 1 + j % 3,
                },
                "context": {"library": {"name": "bench", "version": "1"}, "locale": "ko-KR"},
            }
            for j in range(batch)
        ]
        out.append(orjson.dumps({"batch": events}))
    return out


def _proc(
    url: str,
    key: str,
    proc: int,
    threads: int,
    batch: int,
    seconds: float,
    start_at: float,
    queue: Any,
    run: int,
) -> None:
    """One load process: `threads` keep-alive connections posting until the deadline."""
    host, port = url.removeprefix("http://").split(":")
    per_thread = int(RATE_CEILING * seconds / batch / threads / max(1, os.cpu_count() or 1)) + 20
    auth = "Basic " + base64.b64encode(f"{key}:".encode()).decode()
    results: list[tuple[float, float, int, int]] = []  # (end time, latency, status, events)
    lock = threading.Lock()

    def worker(t: int) -> None:
        bodies = _bodies(proc, t, per_thread, batch, run)
        conn = http.client.HTTPConnection(host, int(port), timeout=60)
        mine = []
        while time.time() < start_at:
            time.sleep(0.001)
        deadline = start_at + seconds
        for body in bodies:
            if time.time() >= deadline:
                break
            t0 = time.perf_counter()
            conn.request(
                "POST",
                "/v1/batch",
                body=body,
                headers={"Content-Type": "application/json", "Authorization": auth},
            )
            resp = conn.getresponse()
            resp.read()
            mine.append((time.time(), time.perf_counter() - t0, resp.status, batch))
        conn.close()
        with lock:
            results.extend(mine)

    pool = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    for th in pool:
        th.start()
    for th in pool:
        th.join()
    queue.put(results)


def load(
    url: str, key: str, *, procs: int, threads: int, batch: int, seconds: float, run: int = 0
) -> dict[str, Any]:
    """Drive the load and summarize: 2xx events/s, request latency percentiles, errors."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    start_at = time.time() + 4.0 + 0.5 * procs  # time for the processes to pre-build their bodies
    workers = [
        ctx.Process(target=_proc, args=(url, key, p, threads, batch, seconds, start_at, queue, run))
        for p in range(procs)
    ]
    for w in workers:
        w.start()
    results: list[tuple[float, float, int, int]] = []
    for _ in workers:
        results.extend(queue.get())
    for w in workers:
        w.join()
    ok = [r for r in results if 200 <= r[2] < 300]
    lat = sorted(r[1] for r in ok) or [0.0]
    elapsed = (max(r[0] for r in results) - start_at) if results else seconds

    def pct(p: float) -> float:
        return lat[min(len(lat) - 1, int(p * len(lat)))] * 1000

    return {
        "events": sum(r[3] for r in ok),
        "requests": len(ok),
        "errors": len(results) - len(ok),
        "seconds": elapsed,
        "events_per_s": sum(r[3] for r in ok) / elapsed,
        "p50_ms": pct(0.50),
        "p95_ms": pct(0.95),
        "p99_ms": pct(0.99),
        "mean_ms": statistics.fmean(lat) * 1000,
    }


def fsync_rate(folder: Path, seconds: float = 2.0, size: int = 64 * 1024) -> float:
    """Appends+fsync per second of `size`-byte records on this disk (one thread): the per-request floor."""
    path = folder / "fsync.bin"
    payload = os.urandom(size)
    n = 0
    with open(path, "ab") as f:
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
            n += 1
    elapsed = time.perf_counter() - t0
    path.unlink()
    return n / elapsed


def _null_server(folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "bench._null_app:app",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("baseline server did not start")


def measure(
    *, seconds: float = 6.0, procs: int = 2, threads: int = 2, batch: int = 200, repeats: int = 3
) -> dict[str, Any]:
    """Run segmint and the baselines under the same load; verify the store afterwards."""
    from segmint.appdb.keys import create_key
    from segmint.workspace import Workspace

    out: dict[str, Any] = {
        "params": {"seconds": seconds, "procs": procs, "threads": threads, "batch": batch, "repeats": repeats}
    }
    runs: dict[str, list[dict[str, Any]]] = {"segmint": [], "null": []}
    with tempfile.TemporaryDirectory(prefix="segmint-bench-") as tmp:
        ws = Workspace.init(Path(tmp) / "ws")
        key = create_key(ws.appdb).secret or ""
        token = ws.config.admin_token
        ws.appdb.dispose()
        ws.close()
        server = Server(ws.path, token).start()
        try:
            for i in range(repeats):
                runs["segmint"].append(
                    load(server.url, key, procs=procs, threads=threads, batch=batch, seconds=seconds, run=i)
                )
            t0 = time.perf_counter()
            server.wait_caught_up(timeout=300)
            out["catch_up_s"] = time.perf_counter() - t0
            out["stored"] = server.event_count()
            summary = server.admin("/api/summary")
            out["writer"] = summary.get("ingest", {})
        finally:
            server.stop()
        proc, url = _null_server(Path(tmp))
        try:
            for i in range(repeats):
                runs["null"].append(
                    load(url, key, procs=procs, threads=threads, batch=batch, seconds=seconds, run=i)
                )
        finally:
            proc.terminate()
            proc.wait()
        out["fsync_per_s"] = fsync_rate(Path(tmp))
    for name, results in runs.items():
        ranked = sorted(results, key=lambda r: r["events_per_s"])
        out[name] = {
            **ranked[len(ranked) // 2],
            "all_events_per_s": [r["events_per_s"] for r in results],
            "acknowledged": sum(r["events"] for r in results),
        }
    return out


def report(res: dict[str, Any]) -> str:
    """The markdown section for docs/benchmarks.md."""
    p = res["params"]
    s, n = res["segmint"], res["null"]
    ok = "yes" if res["stored"] == s["acknowledged"] else f"NO (stored {res['stored']:,})"

    def spread(r: dict[str, Any]) -> str:
        return ", ".join(f"{x:,.0f}" for x in r["all_events_per_s"])

    rows = [
        ("segmint `POST /v1/batch` (validate, journal + fsync, 2xx)", s),
        ("baseline: FastAPI endpoint that only reads the body", n),
    ]
    table = "\n".join(
        f"| {name} | {r['events_per_s']:,.0f} | {r['requests'] / r['seconds']:,.0f} | {r['p50_ms']:.1f} | "
        f"{r['p95_ms']:.1f} | {r['p99_ms']:.1f} | {r['errors']} |"
        for name, r in rows
    )
    return f"""## Ingestion through /v1/batch

Load: {p["procs"]} processes x {p["threads"]} keep-alive connections, batches of {p["batch"]} track events
(~400 bytes each, unique message ids), {p["seconds"]:.0f} s per run, against `segmint serve`
(uvicorn, httptools, uvloop; one process) on a fresh workspace. Only 2xx answers are counted. The load
generator runs on the same machine and competes for the same cores.
Command: `python -m bench.run ingest_load`.

| target | events/s (2xx) | requests/s | p50 ms | p95 ms | p99 ms | non-2xx |
|---|---:|---:|---:|---:|---:|---:|
{table}

- Each row is the median of {p["repeats"]} runs by events/s (all runs: {spread(s)} and {spread(n)} events/s).
- Store check after the runs: {res["stored"]:,} events stored for {s["acknowledged"]:,} acknowledged ->
  exactly once: {ok}; the writer caught up {res["catch_up_s"]:.1f} s after the load stopped
  (writer stats: {res["writer"]}).
- fsync-only baseline on this disk: {res["fsync_per_s"]:,.0f} appends+fsync of 64 KB per second (one thread);
  the journal's group commit lets concurrent requests share one fsync, so the request rate is not capped
  by it.
- Targets: >= 20,000 events/s sustained, p99 batch latency < 100 ms. Latency is measured at this load's
  4 requests in flight; with more concurrent senders it grows as in-flight requests / throughput.
- `segmint serve` freezes its startup objects and raises the GC thresholds (`cli/serve.py: tune_gc`).
  A one-off interleaved A/B on this machine (2026-11-25 05:23 UTC, 4 s runs, not repeated by this
  benchmark) gave 13.5k / 12.6k events/s and p99 248 / 359 ms without it, 23.0k / 19.1k events/s and
  p99 83 / 106 ms with it.
- The machine was shared with other sessions' builds and tests during this run (load average shown
  by `uptime` before the run: {res.get("load_before", "?")}); figures are indicative, to be re-run on a
  quiet machine.
"""


def run() -> str:
    """Benchmark entry point for bench.run."""
    load_before = os.getloadavg()
    res = measure()
    res["load_before"] = " ".join(f"{x:.2f}" for x in load_before)
    return report(res)


def main() -> None:
    """CLI: run with custom parameters and print the section."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--procs", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=200)
    args = ap.parse_args()
    load_before = os.getloadavg()
    res = measure(seconds=args.seconds, procs=args.procs, threads=args.threads, batch=args.batch)
    res["load_before"] = " ".join(f"{x:.2f}" for x in load_before)
    print(report(res))


if __name__ == "__main__":
    main()
