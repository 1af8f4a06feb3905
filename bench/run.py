"""Run benchmark modules and rewrite docs/benchmarks.md: a header (machine, date), then one section each.

`python -m bench.run` runs every registered benchmark; `python -m bench.run ingest_load` runs some and
keeps the other sections already in the file. A section starts with `## ` and runs to the next one.
"""

from __future__ import annotations

import importlib
import os
import platform
import re
import subprocess
import sys
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"

# name -> module under bench/ exposing run() -> str (a markdown section starting with "## Title")
REGISTRY: dict[str, str] = {
    "ingest_load": "bench.ingest_load",
    "import_parquet": "bench.import_parquet",
    "demo_gen": "bench.demo_gen",
    "traits": "bench.traits",
    "traits_clickhouse": "bench.traits_clickhouse",
    "segment_analysis": "bench.segment_analysis",
    "campaign_send": "bench.campaign_send",
    "campaign_report": "bench.campaign_report",
    "segments": "bench.segments",
    "live": "bench.live",
    "live_timers": "bench.live_timers",
}


def machine() -> str:
    """Markdown lines describing this machine: cores, memory, CPU model, Python."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        mem = subprocess.run(["free", "-h"], capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        mem = "unknown"
    return (
        f"- CPU: {cpu}, `nproc` = {os.cpu_count()}\n- Python {platform.python_version()} on "
        f"{platform.platform()}\n- `free -h`:\n\n```\n{mem}\n```\n"
    )


def split_sections(text: str) -> dict[str, str]:
    """Sections of an existing benchmarks.md keyed by their `## ` title."""
    parts = re.split(r"(?m)^(?=## )", text)
    return {p.splitlines()[0][3:].strip(): p.rstrip() + "\n" for p in parts if p.startswith("## ")}


def main(names: list[str]) -> None:
    """Run the named benchmarks (all when none) and rewrite docs/benchmarks.md."""
    unknown = [n for n in names if n not in REGISTRY]
    if unknown:
        sys.exit(f"error: unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(REGISTRY)}")
    sections = split_sections(DOC.read_text()) if DOC.exists() else {}
    for name in names or list(REGISTRY):
        print(f"running {name} ...", flush=True)
        text = importlib.import_module(REGISTRY[name]).run().rstrip() + "\n"
        sections[split_sections(text).keys().__iter__().__next__()] = text
    header = (
        "# segmint benchmarks\n\nEach section names the command that produced it and when it ran; all ran on the "
        "machine below, most\nof them while other jobs shared its 2 cores (each section gives the load), so compare "
        f"figures within a section.\n\n## Machine\n\n{machine()}\n"
    )
    body = "\n".join(text for title, text in sections.items() if title != "Machine")
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text(header + body)
    print(f"wrote {DOC}")


if __name__ == "__main__":
    main(sys.argv[1:])
