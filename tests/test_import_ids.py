"""Imported rows without a message id get `imp_` + md5 of the mapped row, whatever the batch size or the
timestamp column's type: re-importing data imported by an earlier version stores nothing twice."""

from __future__ import annotations

import hashlib
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from segmint.ingest.files import import_table_file
from segmint.ingest.tabular import load_mapping
from segmint.workspace import Workspace


def _expected_id(event: str, user: str, ts: str, props: str) -> str:
    raw = "\x1f".join(["track", event, user, "", ts, props])
    return "imp_" + hashlib.md5(raw.encode()).hexdigest()  # an id, not security


def test_ids_are_md5_of_the_mapped_row_for_timestamp_and_text_columns(workspace: Workspace,
                                                                      tmp_path: Path) -> None:
    typed = tmp_path / "typed.parquet"
    text = tmp_path / "text.parquet"
    rows = {"user_id": ["u1", "u2", "u3"], "event": ["cart_added", "cart_added", "order_completed"],
            "price": [1000, 2500, None]}
    times = [datetime(2026, 10, 1, 9, 30), datetime(2026, 10, 2), datetime(2026, 10, 3, 12, 0, 0, 500)]
    pq.write_table(pa.table({**rows, "ts": pa.array(times, pa.timestamp("us"))}), typed)
    pq.write_table(pa.table({**rows, "ts": [t.isoformat() for t in times]}), text)
    mapping = load_mapping(None)
    res = import_table_file(workspace.store, typed, "parquet", mapping, batch_rows=2)  # two batches
    assert (res.rows, res.imported, res.rejected) == (3, 3, 0)
    got = workspace.store.query("SELECT message_id, ts::VARCHAR AS ts FROM events ORDER BY ts").to_pylist()
    assert [r["message_id"] for r in got] == [
        _expected_id("cart_added", "u1", "2026-10-01 09:30:00", '{"price":1000}'),
        _expected_id("cart_added", "u2", "2026-10-02 00:00:00", '{"price":2500}'),
        _expected_id("order_completed", "u3", "2026-10-03 12:00:00.0005", '{"price":null}'),
    ]
    # the same rows with ISO text timestamps are the same events
    again = import_table_file(workspace.store, text, "parquet", mapping)
    assert (again.imported, again.duplicates) == (0, 3)
