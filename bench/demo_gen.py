"""Benchmark of the demo generator and bulk load: generate only, store write only, end to end.

Run: `python bench/demo_gen.py --users 50000 --days 90` (prints a Markdown table). The baseline in the
same run is the write-only row: the store's own insert speed for the very same Arrow batches.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
import time
from datetime import datetime
from pathlib import Path

from segmint.demo.generate import DemoSpec, Generator
from segmint.demo.load import build_demo, demo_taxonomy, resolve_identities
from segmint.store.base import WriteBatch
from segmint.workspace import Workspace

NOW = datetime(2026, 11, 25)


def _machine() -> str:
    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")), platform.processor())
    mem = next((int(ln.split()[1]) // 1024 // 1024 for ln in Path("/proc/meminfo").read_text().splitlines()
                if ln.startswith("MemTotal")), 0)
    return f"{os.cpu_count()} cores ({cpu}), {mem} GB RAM, Python {platform.python_version()}"


def main() -> None:
    """Run the three measurements and print the table."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", type=int, default=50_000)
    ap.add_argument("--days", type=int, default=90)
    args = ap.parse_args()
    spec = DemoSpec(users=args.users, days=args.days, now=NOW)
    rows = []

    t = time.perf_counter()
    chunks = list(Generator(spec).chunks())
    gen = time.perf_counter() - t
    events = sum(c.events.num_rows for c in chunks)
    rows.append(("generate only (numpy + Arrow)", gen))

    tmp = Path(tempfile.mkdtemp(prefix="segmint-bench-"))
    try:
        ws = Workspace.init(tmp / "w")
        ws.store.ensure_property_columns(demo_taxonomy().typed_columns())
        t = time.perf_counter()
        for c in chunks:
            ws.store.load_profiles(c.profiles)
            resolved = resolve_identities(c.events, c.identities)
            for start in range(0, resolved.num_rows, 1_000_000):
                ws.store.write(WriteBatch(events=resolved.slice(start, 1_000_000)))
        ws.close()
        rows.append(("store write only (baseline: same batches)", time.perf_counter() - t))
        del chunks

        t = time.perf_counter()
        ws, _ = build_demo(tmp / "e2e", spec, progress=False)
        ws.close()
        rows.append(("end to end (`segmint demo` load, overlapped)", time.perf_counter() - t))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"machine: {_machine()}; 1-min load average at the end: {os.getloadavg()[0]:.1f}")
    print(f"size: {args.users:,} users x {args.days} days = {events:,} events\n")
    print("| step | seconds | events/s |\n|---|---:|---:|")
    for name, secs in rows:
        print(f"| {name} | {secs:.1f} | {events / secs:,.0f} |")


if __name__ == "__main__":
    main()
