"""Benchmark: recipients/s through guardrails + ledger into the webhook channel, with raw-posting baselines.

Run: `PYTHONPATH=src python bench/campaign_send.py --users 50000` (prints Markdown), or
`python -m bench.run campaign_send` (section in docs/benchmarks.md).

A reference webhook receiver (segmint.campaigns.receiver: verifies every HMAC signature, dedupes by
message id) runs in its own process on 127.0.0.1. Measured in one run, on the same messages:

- baseline: raw posting without guardrails or ledger: one POST per message (WebhookChannel.send) on a sample,
  and batches of 100 (campaigns/batch_webhook.py) for everyone;
- segmint plan: audience + profiles + every guardrail (consent, suppression list, frequency caps, ad-law
  checks) + Liquid rendering + ledger insert, in 1 and in 2 processes;
- segmint deliver: claim (queued -> sending) + batched signed POST + record, by 1 and by 2 worker processes;
- end to end = recipients / (plan with 2 processes + deliver with 2 workers).
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
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
SECRET = "whsec_bench"


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _campaign(cid: str) -> dict:
    return {
        "id": cid, "name": "벤치마크", "purpose": "advertising", "target": ["everyone"], "channels": ["webhook"],
        "holdout": 0.05, "sender": {"name": "데모몰", "contact": "02-123-4567", "opt_out": "무료수신거부 080-000-0000"},
        "policy": {"quiet_hours": {"enabled": False}, "korean_ad_law": True, "night_consent_trait": "consent_night",
                   "consent_traits": {"webhook": "consent_push"}, "batch_sizes": {"webhook": 100},
                   "frequency_caps": [{"channel": "*", "max": 50, "per": "day"}]},
        "variants": [
            {"key": "A", "messages": {"webhook": {
                "subject": "{{ user.name }}님을 위한 봄 세일",
                "text": "{{ user.name | josa: '은/는' }} 오늘 {{ 15000 | krw }} 할인"}}},
            {"key": "B", "messages": {"webhook": {
                "subject": "봄 세일", "text": "{{ user.name }}님 쿠폰이 도착했어요"}}}],
    }


def _setup(path: Path, url: str, n: int) -> None:
    import pyarrow as pa

    from segmint.channels.settings import WebhookSettings
    from segmint.segments import saved
    from segmint.workspace import Workspace

    ws = Workspace.init(path)
    ws.config.channels.webhook = WebhookSettings(url=url + "/hook", secret=SECRET, max_attempts=3)
    ws.save()
    ids = [f"u{i:07d}" for i in range(n)]
    traits = [json.dumps({"name": f"고객{i}", "email": f"u{i}@shop.kr", "consent_push": i % 10 != 0,
                          "consent_night": i % 2 == 0}) for i in range(n)]
    ws.store.load_profiles(pa.table({"user_id": ids, "traits": traits, "first_seen": [datetime(2026, 1, 1)] * n,
                                     "timezone": ["Asia/Seoul"] * n}))
    saved.create_segment(ws.appdb, "everyone", "trait email exists")
    ws.close()


def _proc_cpu(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _own_cpu() -> float:
    """CPU seconds of this process plus its reaped children."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def _reset(url: str) -> None:
    import httpx

    httpx.post(url + "/reset", timeout=10)


def _stats(url: str) -> dict:
    import httpx

    return httpx.get(url + "/stats", timeout=10).json()


def _plan(path: Path, cid: str, processes: int) -> tuple[float, dict]:
    from segmint.campaigns import repo
    from segmint.campaigns.plan import plan_occurrence
    from segmint.workspace import Workspace

    ws = Workspace(path)
    sc, _ = repo.save_campaign(ws.appdb, _campaign(cid), status="paused")
    t = time.perf_counter()
    result = plan_occurrence(ws, sc.campaign, "once", processes=processes)
    elapsed = time.perf_counter() - t
    ws.close()
    ws.appdb.dispose()
    return elapsed, result.statuses


def _deliver(path: Path, cid: str, workers: int) -> tuple[float, float]:
    from segmint.campaigns import repo
    from segmint.workspace import Workspace

    ws = Workspace(path)
    repo.set_status(ws.appdb, cid, "active")
    ws.appdb.dispose()
    cmd = [sys.executable, "-c", "from segmint.cli import main; main()", "-w", str(path), "campaign", "worker",
           "--campaign", cid, "--batch", "1000", "--concurrency", "4"]
    procs = [subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE) for _ in range(workers)]
    stats = []
    for p in procs:
        out, _ = p.communicate()
        if p.returncode != 0:
            raise RuntimeError("worker failed")
        stats.append(json.loads(out))
    wall = max(s["finished"] for s in stats) - min(s["started"] for s in stats if s["started"])
    return wall, sum(s["cpu_s"] for s in stats)


def measure(n: int) -> dict:
    """Run every step; returns timings and counts."""
    from segmint.campaigns.batch_webhook import send_batch
    from segmint.channels.base import OutboundMessage
    from segmint.channels.webhook import WebhookChannel

    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    receiver = subprocess.Popen([sys.executable, "-m", "segmint.campaigns.receiver", "--port", str(port),
                                 "--secret", SECRET], env=_env())
    tmp = Path(tempfile.mkdtemp(prefix="segmint-bench-campaign-"))
    out: dict = {"users": n}
    try:
        time.sleep(1.0)
        t = time.perf_counter()
        _setup(tmp / "ws", url, n)
        out["setup_s"] = time.perf_counter() - t
        channel = WebhookChannel(url=url + "/hook", secret=SECRET)
        footer = "\n\n데모몰 02-123-4567\n무료수신거부 080-000-0000"
        messages = [OutboundMessage(message_id=f"raw:once:u{i:07d}", user_id=f"u{i:07d}", subject="봄 세일",
                                    text=f"(광고) 고객{i}님 쿠폰이 도착했어요{footer}", campaign_id="raw",
                                    advertising=True) for i in range(n)]
        sample = messages[: min(n, 5000)]
        t = time.perf_counter()
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(channel.send, sample))
        out["raw_single"] = len(sample) / (time.perf_counter() - t)
        _reset(url)
        t = time.perf_counter()
        chunks = [messages[i:i + 100] for i in range(0, n, 100)]
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda c: send_batch(channel, c), chunks))
        out["raw_batch"] = n / (time.perf_counter() - t)
        assert _stats(url)["unique"] == n
        for procs in (1, 2):
            cid = f"bench-p{procs}"
            _reset(url)
            cpu0 = _own_cpu()
            elapsed, statuses = _plan(tmp / "ws", cid, procs)
            plan_cpu = _own_cpu() - cpu0
            out[f"plan_{procs}"] = n / elapsed
            out["statuses"] = statuses
            queued = statuses.get("queued", 0)
            rcpu0 = _proc_cpu(receiver.pid)
            d, deliver_cpu = _deliver(tmp / "ws", cid, procs)
            receiver_cpu = _proc_cpu(receiver.pid) - rcpu0
            out[f"cpu_{procs}"] = (plan_cpu, deliver_cpu, receiver_cpu)
            got = _stats(url)
            if got["unique"] != queued or got["users_twice"] or got["bad_signature"]:
                raise RuntimeError(f"receiver saw {got}, expected {queued} unique")
            out[f"deliver_{procs}"] = queued / d
            out[f"deliver_{procs}_s"], out[f"plan_{procs}_s"] = d, elapsed
            out[f"e2e_{procs}"] = n / (elapsed + d)
    finally:
        receiver.terminate()
        receiver.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def _machine() -> str:
    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")), platform.processor())
    load = os.getloadavg()[0]
    return f"{cpu}, {os.cpu_count()} cores, load average {load:.1f} at the start"


def run(users: int | None = None) -> str:
    """The Markdown section for docs/benchmarks.md."""
    n = users or int(os.environ.get("SEGMINT_BENCH_CAMPAIGN_USERS", "50000"))
    machine = _machine()
    r = measure(n)
    st = r["statuses"]
    rows = [
        ("baseline: raw webhook, one POST per message (no guardrails, no ledger)", r["raw_single"]),
        ("baseline: raw webhook, batches of 100 (no guardrails, no ledger)", r["raw_batch"]),
        ("segmint plan: guardrails + render + ledger, 1 process", r["plan_1"]),
        ("segmint plan: guardrails + render + ledger, 2 processes", r["plan_2"]),
        ("segmint deliver: claim + batched POST + record, 1 worker", r["deliver_1"]),
        ("segmint deliver: claim + batched POST + record, 2 workers", r["deliver_2"]),
        ("**segmint end to end (plan 2 processes, then 2 workers)**", r["e2e_2"]),
        ("segmint end to end (1 process, then 1 worker)", r["e2e_1"]),
    ]
    table = "\n".join(f"| {name} | {rate:,.0f} |" for name, rate in rows)
    plan_cpu, deliver_cpu, receiver_cpu = r["cpu_2"]
    total_cpu = plan_cpu + deliver_cpu + receiver_cpu
    capacity = 2 * n / total_cpu
    return f"""## Campaign send (guardrails + ledger -> webhook)

`python -m bench.run campaign_send` ({n:,} recipients; machine: {machine}). The receiver
(`segmint.campaigns.receiver`, uvicorn + httptools, verifies each HMAC signature, dedupes by message id)
runs on the same 2 cores. Campaign: advertising (Korean ad-law text added), consent per channel, night
consent, frequency cap, 5% holdout, two variants with Liquid (josa, krw filters), webhook batches of 100.
Outcome per run: {st}. Every run checks the receiver got each queued message exactly once.

| step | recipients/s |
|---|---:|
{table}

CPU used for the {n:,} recipients (2-process run): plan {plan_cpu:.1f} s, deliver {deliver_cpu:.1f} s (worker
loops, excluding process start-up), receiver {receiver_cpu:.1f} s: {total_cpu:.1f} CPU-seconds, i.e.
**{n / total_cpu:,.0f} recipients per CPU-second, {capacity:,.0f} recipients/s on 2 otherwise idle cores**
(the wall-clock rates above are depressed by the other jobs sharing this machine during the run).
Honest reading: the >= 5k/s target is met by this CPU-time estimate only; the wall-clock end-to-end rate
measured here, on a machine running other jobs, is the bold row.

Planning (plan 2 processes: {r['plan_2_s']:.1f} s) and delivery (2 workers: {r['deliver_2_s']:.1f} s) are separate
steps here; with worker processes running next to a planner they overlap (planning commits every 5,000 rows
and workers claim them at once). One POST per
message is bounded by HTTP round trips (the baseline's first row); the ledger path reaches its rate only with
the batched webhook contract (`policy.batch_sizes`, docs/campaigns.md). Differences under ~20% between runs
are noise on this shared machine.
"""


def main() -> None:
    """CLI entry."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=50000)
    print(run(parser.parse_args().users))


if __name__ == "__main__":
    main()
