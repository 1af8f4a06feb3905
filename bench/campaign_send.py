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
- end to end, overlapped: planning (active campaign) while worker processes claim each committed chunk;
  and, for reference, plan then deliver.
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
from datetime import UTC, datetime, timedelta
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


def _warm(path: Path) -> None:
    """Import and compile once (segment evaluation pulls in sqlglot) so no timed step pays for it."""
    from segmint.segments.saved import segment_members
    from segmint.workspace import Workspace

    ws = Workspace(path)
    segment_members(ws, "everyone")
    ws.close()
    ws.appdb.dispose()


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


def _planning_time() -> datetime:
    """The latest 03:00 UTC (noon in Seoul) at or before now: planning "as of" it makes the outcome independent
    of the hour the benchmark runs (after 21:00 in Seoul the ad-law night rule would defer the half of the
    audience without night consent to 08:00), while every planned row is already due for the workers."""
    now = datetime.now(UTC).replace(tzinfo=None)
    noon = now.replace(hour=3, minute=0, second=0, microsecond=0)
    return noon if noon <= now else noon - timedelta(days=1)


def _guardrails_only(path: Path, cid: str) -> dict[str, tuple[float, float, float]]:
    """The guardrail step alone on the whole audience, in this process, both ways on the same inputs: the
    per-recipient `Guardrails.decide` loop (before) and the column-wise `decide_many` (after). Returns
    name -> (wall s, CPU s, load); checks both give the same decisions."""
    from segmint.campaigns import repo
    from segmint.campaigns.guardrail_columns import decide_many
    from segmint.campaigns.guardrails import Recipient, zone_of
    from segmint.campaigns.model import Campaign
    from segmint.campaigns.plan import guardrails_for, load_profiles, resolve_audience
    from segmint.workspace import Workspace

    ws = Workspace(path)
    campaign = Campaign.model_validate(_campaign(cid))
    repo.save_campaign(ws.appdb, campaign, status="paused")
    now = _planning_time()
    members = resolve_audience(ws, campaign)
    profiles = load_profiles(ws.store, [u for u, _ in members])
    recipients = [Recipient(u, profiles[u][0], zone_of(profiles[u][1], ws.config.zone), seg) for u, seg in members]
    dues = [now] * len(recipients)
    out: dict[str, tuple[float, float, float]] = {}
    results = {}
    for name in ("before", "after"):
        rails = guardrails_for(ws, campaign, [r.user_id for r in recipients], now)
        load, cpu0, t = os.getloadavg()[0], time.process_time(), time.perf_counter()
        if name == "before":
            got = [rails.decide(r, "once", d) for r, d in zip(recipients, dues, strict=True)]
        else:
            got = decide_many(rails, recipients, "once", dues)
        out[name] = (time.perf_counter() - t, time.process_time() - cpu0, load)
        results[name] = [(d.status, d.reason, d.channel, d.due_at, d.payload) for d in got]
    if results["before"] != results["after"]:
        raise RuntimeError("column-wise guardrails disagree with per-recipient decide")
    # the rendering part alone (the same renders both ways did), to split rule checks from rendering
    from segmint.campaigns.assignment import HOLDOUT, assign

    rails = guardrails_for(ws, campaign, [r.user_id for r in recipients], now)
    first = campaign.variants[0].key
    todo = []
    for r, (status, reason, channel, _due, _payload) in zip(recipients, results["after"], strict=True):
        if status in ("queued", "holdout") or reason in ("missing_variable", "template_error"):
            v = assign(campaign.id, r.user_id, campaign.split)
            v = first if v == HOLDOUT else v
            todo.append((r, v, channel, rails._address(r, v, channel)))
    load, cpu0, t = os.getloadavg()[0], time.process_time(), time.perf_counter()
    for r, v, ch, address in todo:
        rails.render(r, v, ch, "once", address)
    out["render"] = (time.perf_counter() - t, time.process_time() - cpu0, load)
    ws.close()
    ws.appdb.dispose()
    return out


def _plan(path: Path, cid: str, processes: int, status: str = "paused") -> tuple[float, dict]:
    from segmint.campaigns import repo
    from segmint.campaigns.plan import plan_occurrence
    from segmint.workspace import Workspace

    ws = Workspace(path)
    sc, _ = repo.save_campaign(ws.appdb, _campaign(cid), status=status)
    t = time.perf_counter()
    result = plan_occurrence(ws, sc.campaign, "once", processes=processes, now=_planning_time())
    elapsed = time.perf_counter() - t
    ws.close()
    ws.appdb.dispose()
    return elapsed, result.statuses


def _start_workers(path: Path, cid: str, workers: int) -> list[subprocess.Popen]:
    cmd = [sys.executable, "-c", "from segmint.cli import main; main()", "-w", str(path), "campaign", "worker",
           "--campaign", cid, "--batch", "1000", "--concurrency", "4"]
    return [subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE) for _ in range(workers)]


def _collect(procs: list[subprocess.Popen]) -> list[dict]:
    stats = []
    for p in procs:
        out, _ = p.communicate()
        if p.returncode != 0:
            raise RuntimeError("worker failed")
        stats.append(json.loads(out))
    return stats


def _deliver(path: Path, cid: str, workers: int) -> tuple[float, float]:
    from segmint.campaigns import repo
    from segmint.workspace import Workspace

    ws = Workspace(path)
    repo.set_status(ws.appdb, cid, "active")
    ws.appdb.dispose()
    stats = _collect(_start_workers(path, cid, workers))
    wall = max(s["finished"] for s in stats) - min(s["started"] for s in stats if s["started"])
    return wall, sum(s["cpu_s"] for s in stats)


def _overlapped(path: Path, cid: str, processes: int, workers: int) -> tuple[float, float, float, dict]:
    """Plan an active campaign while already-running worker processes (`--forever`, as in production) claim
    each chunk the planner commits. Returns (wall seconds from plan start until every queued row is sent,
    planner CPU s, worker CPU s during that time, statuses)."""
    from sqlalchemy import func, select
    from sqlalchemy.orm import Session

    from segmint.appdb.campaigns import LedgerRow
    from segmint.workspace import Workspace

    cmd = [sys.executable, "-c", "from segmint.cli import main; main()", "-w", str(path), "campaign", "worker",
           "--campaign", cid, "--batch", "1000", "--concurrency", "4", "--forever", "--poll", "0.25"]
    procs = [subprocess.Popen(cmd, env=_env(), stdout=subprocess.DEVNULL) for _ in range(workers)]
    try:
        last = [-1.0] * workers
        while True:  # wait until every worker is up and idle-polling (CPU time no longer growing)
            time.sleep(0.5)
            now = [_proc_cpu(p.pid) for p in procs]
            if all(c > 0.3 and c - prev < 0.05 for c, prev in zip(now, last, strict=True)):
                break
            last = now
        wcpu0 = sum(_proc_cpu(p.pid) for p in procs)
        cpu0 = _own_cpu()
        t = time.perf_counter()
        _elapsed, statuses = _plan(path, cid, processes, status="active")
        plan_cpu = _own_cpu() - cpu0
        ws = Workspace(path)
        pending = ("queued", "sending", "scheduled")
        while True:
            with Session(ws.appdb) as s:
                left = s.execute(select(func.count()).where(LedgerRow.campaign_id == cid,
                                                            LedgerRow.status.in_(pending))).scalar()
            if not left:
                break
            time.sleep(0.02)
        wall = time.perf_counter() - t
        from segmint.campaigns.runtime import status_counts

        statuses = status_counts(ws, cid)  # final: what was sent, held out, suppressed
        ws.appdb.dispose()
        worker_cpu = sum(_proc_cpu(p.pid) for p in procs) - wcpu0
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(30)
    return wall, plan_cpu, worker_cpu, statuses


def _check(url: str, queued: int) -> None:
    got = _stats(url)
    if got["unique"] != queued or got["users_twice"] or got["bad_signature"]:
        raise RuntimeError(f"receiver saw {got}, expected {queued} unique")


def measure(n: int) -> dict:
    """Run every step; returns timings, CPU seconds, load averages and counts."""
    from segmint.campaigns.batch_webhook import send_batch
    from segmint.channels.base import OutboundMessage
    from segmint.channels.webhook import WebhookChannel

    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    receiver = subprocess.Popen([sys.executable, "-m", "segmint.campaigns.receiver", "--port", str(port),
                                 "--secret", SECRET], env=_env())
    tmp = Path(tempfile.mkdtemp(prefix="segmint-bench-campaign-"))
    out: dict = {"users": n, "rows": []}

    def row(name: str, rate: float, wall: float, cpu: float | None, load: float) -> None:
        out["rows"].append((name, rate, wall, cpu, load))

    try:
        time.sleep(1.0)
        t = time.perf_counter()
        _setup(tmp / "ws", url, n)
        _warm(tmp / "ws")
        out["setup_s"] = time.perf_counter() - t
        channel = WebhookChannel(url=url + "/hook", secret=SECRET)
        footer = "\n\n데모몰 02-123-4567\n무료수신거부 080-000-0000"
        messages = [OutboundMessage(message_id=f"raw:once:u{i:07d}", user_id=f"u{i:07d}", subject="봄 세일",
                                    text=f"(광고) 고객{i}님 쿠폰이 도착했어요{footer}", campaign_id="raw",
                                    advertising=True) for i in range(n)]
        sample = messages[: min(n, 5000)]
        load, cpu0, t = os.getloadavg()[0], _own_cpu(), time.perf_counter()
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(channel.send, sample))
        wall = time.perf_counter() - t
        row("baseline: raw webhook, one POST per message (no guardrails, no ledger)", len(sample) / wall, wall,
            _own_cpu() - cpu0, load)
        _reset(url)
        load, cpu0, t = os.getloadavg()[0], _own_cpu(), time.perf_counter()
        chunks = [messages[i:i + 100] for i in range(0, n, 100)]
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda c: send_batch(channel, c), chunks))
        wall = time.perf_counter() - t
        row("baseline: raw webhook, batches of 100 (no guardrails, no ledger)", n / wall, wall, _own_cpu() - cpu0,
            load)
        assert _stats(url)["unique"] == n
        labels = {"before": "guardrails + render only, per recipient (`Guardrails.decide` loop, before), 1 process",
                  "after": "guardrails + render only, column-wise (`decide_many`, after), 1 process",
                  "render": "of which: Liquid rendering of the eligible recipients (the same both ways)"}
        for name, (wall, cpu, load) in _guardrails_only(tmp / "ws", "bench-g").items():
            row(labels[name], n / wall, wall, cpu, load)
            out[f"guard_{name}"] = (wall, cpu)
        from segmint.campaigns import plan as plan_module

        plan_module.COLUMN_WISE = False
        _reset(url)
        load, cpu0 = os.getloadavg()[0], _own_cpu()
        elapsed, _st = _plan(tmp / "ws", "bench-before", 1)
        row("segmint plan, per-recipient guardrails (before), 1 process", n / elapsed, elapsed, _own_cpu() - cpu0,
            load)
        plan_module.COLUMN_WISE = True
        for procs in (1, 2):
            cid = f"bench-p{procs}"
            _reset(url)
            load, cpu0 = os.getloadavg()[0], _own_cpu()
            elapsed, statuses = _plan(tmp / "ws", cid, procs)
            plan_cpu = _own_cpu() - cpu0
            out["statuses"] = statuses
            row(f"segmint plan: guardrails + render + ledger, {procs} process{'es' if procs > 1 else ''}",
                n / elapsed, elapsed, plan_cpu, load)
            queued = statuses.get("queued", 0)
            rcpu0, load = _proc_cpu(receiver.pid), os.getloadavg()[0]
            d, deliver_cpu = _deliver(tmp / "ws", cid, procs)
            receiver_cpu = _proc_cpu(receiver.pid) - rcpu0
            _check(url, queued)
            row(f"segmint deliver: claim + batched POST + record, {procs} worker{'s' if procs > 1 else ''}",
                queued / d, d, deliver_cpu, load)
            out[f"cpu_{procs}"] = (plan_cpu, deliver_cpu, receiver_cpu)
            out[f"seq_{procs}"] = (n / (elapsed + d), elapsed + d, plan_cpu + deliver_cpu + receiver_cpu)
        for procs, workers in ((1, 1), (2, 2)):
            cid = f"bench-o{procs}{workers}"
            _reset(url)
            rcpu0, load = _proc_cpu(receiver.pid), os.getloadavg()[0]
            wall, plan_cpu, deliver_cpu, statuses = _overlapped(tmp / "ws", cid, procs, workers)
            receiver_cpu = _proc_cpu(receiver.pid) - rcpu0
            _check(url, statuses.get("sent", 0))
            total = plan_cpu + deliver_cpu + receiver_cpu
            out[f"overlap_{procs}{workers}"] = (n / wall, wall, total, load, plan_cpu, deliver_cpu, receiver_cpu)
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
    rows = list(r["rows"])
    for procs, workers in ((1, 1), (2, 2)):
        rate, wall, cpu, load, *_ = r[f"overlap_{procs}{workers}"]
        bold = "**" if (procs, workers) == (2, 2) else ""
        rows.append((f"{bold}segmint end to end, planning and delivery overlapped ({procs} planner "
                     f"process{'es' if procs > 1 else ''}, {workers} worker{'s' if workers > 1 else ''}){bold}",
                     rate, wall, cpu, load))
    for procs in (1, 2):
        rate, wall, cpu = r[f"seq_{procs}"]
        rows.append((f"segmint end to end, plan then deliver ({procs} + {procs})", rate, wall, cpu, None))

    def fmt(name: str, rate: float, wall: float, cpu: float | None, load: float | None) -> str:
        per = f"{cpu / n * 1e6:,.0f}" if cpu is not None and "baseline" not in name else "-"
        cpu_s = f"{cpu:.1f}" if cpu is not None else "-"
        return f"| {name} | {rate:,.0f} | {wall:.1f} | {cpu_s} | {per} | {load:.1f} |" if load is not None else \
            f"| {name} | {rate:,.0f} | {wall:.1f} | {cpu_s} | {per} | (as above) |"

    table = "\n".join(fmt(*row) for row in rows)
    (_, gb_cpu), (_, ga_cpu), (_, gr_cpu) = r["guard_before"], r["guard_after"], r["guard_render"]
    rb, ra = max(gb_cpu - gr_cpu, 1e-9), max(ga_cpu - gr_cpu, 1e-9)
    guard = (f"Guardrails before/after (issue 7, measured in this run on the same {n:,} recipients, decisions checked "
             f"equal): per-recipient `decide` {gb_cpu:.2f} CPU-s ({gb_cpu / n * 1e6:,.0f} µs/recipient), column-wise "
             f"`decide_many` {ga_cpu:.2f} CPU-s ({ga_cpu / n * 1e6:,.0f} µs/recipient): {gb_cpu / ga_cpu:.2f}x for the "
             f"step. Liquid rendering, per recipient both ways, is {gr_cpu:.2f} CPU-s of it; the rule checks alone "
             f"(step minus rendering) went from {rb:.2f} to {ra:.2f} CPU-s ({rb / ra:.1f}x).")
    rate, wall, total, load, plan_cpu, deliver_cpu, receiver_cpu = r["overlap_22"]
    capacity = 2 * n / total
    if rate >= 5000:
        verdict = (f"Reading: the >= 5k recipients/s target on 2 cores is met on the wall clock ({rate:,.0f}/s end to "
                   f"end in the bold row, load {load:.1f}) and by the CPU-time estimate ({capacity:,.0f}/s).")
    else:
        verdict = (f"Honest reading: the >= 5k recipients/s target on 2 cores is met by the CPU-time estimate above "
                   f"only ({capacity:,.0f}/s if the 2 cores were ours); the wall-clock rate, with the load average "
                   f"shown (other jobs on the same 2 cores), is the bold row: {rate:,.0f}/s. Re-run on a quiet "
                   f"machine for a wall-clock figure.")
    return f"""## Campaign send (guardrails + ledger -> webhook)

`python -m bench.run campaign_send` ({n:,} recipients; machine: {machine}). The receiver
(`segmint.campaigns.receiver`, uvicorn + httptools, verifies each HMAC signature, dedupes by message id)
runs on the same 2 cores. Campaign: advertising (Korean ad-law text added), consent per channel, night
consent, frequency cap, 5% holdout, two variants with Liquid (josa, krw filters), webhook batches of 100.
Outcome per run: {st}. Every segmint run checks the receiver got each queued message exactly once.

CPU s is process CPU time (user + system, threads and child processes included) of the step's own
processes: planner (and its pool), workers (their send loops, without interpreter start-up) and, for the
end-to-end rows, the receiver too. µs CPU per recipient = CPU s / {n:,}. Load is the 1-minute load average
when the step started (the machine is shared; wall-clock rates drop with the load, CPU time much less).

| step | recipients/s (wall) | wall s | CPU s | µs CPU / recipient | load |
|---|---:|---:|---:|---:|---:|
{table}

Overlapped 2 + 2 run: planner {plan_cpu:.1f} CPU-s, workers {deliver_cpu:.1f}, receiver {receiver_cpu:.1f}: {total:.1f}
CPU-seconds for {n:,} recipients, i.e. **{n / total:,.0f} recipients per CPU-second, about {capacity:,.0f}
recipients/s on 2 otherwise idle cores**. The wall-clock rate of the bold row is what this run saw at the
load average shown. Planning commits every 5,000 rows and keeps a heartbeat on its occurrence; workers
claim each chunk as it lands and wait while an occurrence in their scope is being planned, so delivery
overlaps planning (`segmint campaign send` does the same in one process with a sending thread).
{verdict}
{guard}
One POST per message is bounded by HTTP round trips (the baseline's first row); the ledger path reaches
its rate only with the batched webhook contract (`policy.batch_sizes`, docs/campaigns.md). Differences
under ~20% between runs are noise on this shared machine.

Before the send-path rework (issue 7, same benchmark, load 13.6): planning 8.8 CPU-s for 50,000
recipients (2 processes; 151 µs per recipient in 1 process), delivery 3.3 CPU-s, 4,076 recipients per
CPU-second, 1.4-1.5k/s wall end to end (plan, then deliver). What changed: a fast renderer for plain-output
Liquid templates (and a memo for the rest), guardrail time windows cached per zone, per-check explanations
only for previews, ledger rows serialized once (SQLite executemany per 5,000-row chunk; PostgreSQL COPY),
cap counts and suppressions read for the audience only, planning and delivery overlapped. Delivery now
also re-checks frequency caps at send time (one aggregated query per claimed batch), which it did not do
before: that is most of the delivery CPU added since.
"""


def main() -> None:
    """CLI entry."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=50000)
    print(run(parser.parse_args().users))


if __name__ == "__main__":
    main()
