"""Write the demo events to a file: flat Parquet (EVENT_SCHEMA) or Segment-spec JSON lines."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from segmint.demo.generate import DemoSpec, Generator
from segmint.errors import InvalidInput
from segmint.store.schema import EVENT_SCHEMA


def segment_jsonl(events: pa.Table) -> pa.Array:
    """One Segment-spec JSON message per event (track with `event`, page without, identify with traits)."""
    is_track = pc.equal(events["type"], "track")
    event_field = pc.if_else(is_track, pc.binary_join_element_wise('"event":"', events["event"], '",', ""), "")
    user = pc.fill_null(pc.binary_join_element_wise('"userId":"', events["user_id"], '",', ""), "")
    anon = pc.fill_null(pc.binary_join_element_wise('"anonymousId":"', events["anonymous_id"], '",', ""), "")
    body = pc.if_else(pc.equal(events["type"], "identify"), ',"traits":', ',"properties":')
    stamp = pc.strftime(events["ts"], format="%Y-%m-%dT%H:%M:%S")
    return pc.binary_join_element_wise(
        '{"type":"',
        events["type"],
        '",',
        event_field,
        user,
        anon,
        '"messageId":"',
        events["message_id"],
        '","timestamp":"',
        stamp,
        'Z"',
        body,
        events["properties"],
        ',"context":',
        events["context"],
        "}",
        "",
    )


def write_file(spec: DemoSpec, out: Path) -> int:
    """Generate the demo and write it to `out` (.parquet or .jsonl); returns the number of events."""
    out = Path(out)
    suffix = out.suffix.lower()
    if suffix not in (".parquet", ".jsonl"):
        raise InvalidInput("use a .parquet or .jsonl file name", where="--out")
    total = 0
    if suffix == ".parquet":
        with pq.ParquetWriter(out, EVENT_SCHEMA, compression="zstd") as writer:
            for chunk in Generator(spec).chunks():
                writer.write_table(chunk.events)
                total += chunk.events.num_rows
        return total
    with out.open("w", encoding="utf-8") as fh:
        for chunk in Generator(spec).chunks():
            lines = segment_jsonl(chunk.events).to_pylist()
            fh.write("\n".join(lines) + "\n")
            total += len(lines)
    return total
