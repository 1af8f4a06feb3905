"""The seed segments shipped as code (examples/segments/*.yaml) apply to a small demo shop and each has members."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest

from chdb_util import process_chdb_path
from segmint.segments import reference, saved
from segmint.segments.evaluate import evaluate
from segmint.segments.seeds import SEEDS
from segmint.store.clickhouse import ClickHouseEventStore

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "segments"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory):
    """A small demo workspace with the example segments applied (the demo generator is on branch `demo`)."""
    from segmint.demo.generate import DemoSpec
    from segmint.demo.load import build_demo

    ws, info = build_demo(tmp_path_factory.mktemp("demo") / "ws", DemoSpec(users=1000, days=120), progress=False)
    result = saved.apply_dir(ws, EXAMPLES)
    yield ws, info, result
    ws.close()


def _users(store) -> dict[str, tuple[list, reference.Profile]]:
    events: dict[str, list] = defaultdict(list)
    for r in store.query("SELECT message_id, event, ts, properties, user_id FROM events "
                         "WHERE user_id IS NOT NULL ORDER BY ts, message_id").to_pylist():
        events[r.pop("user_id")].append(r)
    out = {}
    for p in store.query("SELECT user_id, CAST(traits AS VARCHAR) AS traits, first_seen, last_seen, timezone "
                         "FROM profiles").to_pylist():
        prof = reference.Profile(p["user_id"], json.loads(p["traits"]), p["first_seen"], p["last_seen"], p["timezone"])
        out[p["user_id"]] = (reference.to_events(events.get(p["user_id"], [])), prof)
    return out


def test_every_seed_has_a_file() -> None:
    files = saved.read_segment_dir(EXAMPLES)
    assert sorted(f.name for f in files) == sorted(s.name for s in SEEDS)
    assert {f.path.stem for f in files} == {s.id.lower() for s in SEEDS}


def test_apply_creates_all_and_each_seed_has_members(demo) -> None:
    ws, info, result = demo
    assert result.counts()["created"] == len(SEEDS)
    assert saved.apply_dir(ws, EXAMPLES, dry_run=True).counts()["unchanged"] == len(SEEDS)
    all_users = _users(ws.store)
    users = {u: all_users[u] for u in sorted(all_users)[::3]}  # the reference on a third keeps this test quick
    resolve = saved.resolver(ws.appdb)
    ch = ClickHouseEventStore(process_chdb_path(), database="examples")  # chDB: one data path per process
    ch.copy_from(ws.store)
    counts = {}
    for seg in saved.list_segments(ws.appdb):
        # every seed compiles to SQL (no reference fallback) and agrees with the reference evaluator
        tree = saved.segment_tree(ws.appdb, seg.name)
        got = evaluate(ws.store, tree, info.spec.now, workspace_tz=ws.config.timezone)
        assert evaluate(ch, tree, info.spec.now, workspace_tz=ws.config.timezone) == got, seg.name
        want = reference.members(seg.tree(), users, info.spec.now, workspace_tz=ws.config.timezone,
                                 resolve=resolve)
        assert set(got) & users.keys() == want, seg.name
        counts[seg.name] = len(got)
    assert [n for n, c in counts.items() if c == 0] == []
