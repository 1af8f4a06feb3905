"""The demo shop: deterministic, holds every seed segment of catalog section A, and the CLI builds it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import defaultdict
from datetime import datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import Result
from typer.testing import CliRunner

from segmint.cli import app
from segmint.demo.checks import seed_segments
from segmint.demo.generate import DemoSpec, Generator
from segmint.demo.load import build_demo, demo_taxonomy
from segmint.workspace import Workspace

NOW = datetime(2026, 11, 25, 0, 0)
SRC = str(Path(__file__).resolve().parents[1] / "src")
SEGMINT = str(Path(sys.executable).with_name("segmint"))


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    """The default-size demo (5,000 users x 90 days) at a fixed now."""
    ws, _ = build_demo(tmp_path_factory.mktemp("demo") / "ws", DemoSpec(users=5_000, days=90, now=NOW), progress=False)
    yield ws
    ws.close()


@pytest.fixture(scope="module")
def segments(shop: Workspace) -> dict[str, set[str]]:
    """Members of every seed segment on the default demo."""
    return seed_segments(shop.store, NOW)


def test_same_seed_same_data_other_seed_other_data() -> None:
    spec = DemoSpec(users=300, days=60, seed=7, now=NOW)
    a = list(Generator(spec).chunks())
    b = list(Generator(spec).chunks())
    assert len(a) == len(b) == 1
    assert a[0].events.num_rows > 5_000
    assert a[0].events.equals(b[0].events)
    assert a[0].profiles.equals(b[0].profiles)
    assert a[0].events.slice(0, 5).to_pylist() == b[0].events.slice(0, 5).to_pylist()
    c = next(Generator(DemoSpec(users=300, days=60, seed=8, now=NOW)).chunks())
    assert not c.events.equals(a[0].events)


def test_message_ids_are_unique_and_deterministic_across_chunks() -> None:
    spec = DemoSpec(users=30_000, days=3, seed=3, now=NOW)  # two chunks
    chunks = list(Generator(spec).chunks())
    assert len(chunks) == 2
    ids = [i for c in chunks for i in c.events.column("message_id").to_pylist()]
    assert len(ids) == len(set(ids))
    assert ids[0] == "demo-3-0" and ids[-1] == f"demo-3-{len(ids) - 1}"


def test_events_cover_the_vocabulary_within_the_window(shop: Workspace) -> None:
    counts = {c.event: c for c in shop.store.event_counts()}
    assert set(counts) - {"$identify"} == set(demo_taxonomy().events)
    start = NOW - timedelta(days=90)
    assert all(start <= c.first and c.last < NOW for c in counts.values())
    # typed columns are filled from the properties
    row = shop.store.query(
        "SELECT count(*) FILTER (WHERE p_product_id IS NULL OR p_category IS NULL OR p_price IS NULL), "
        "min(p_price), max(p_price) FROM events WHERE event = 'product_viewed'"
    ).to_pylist()[0]
    nulls, low, high = row.values()
    assert nulls == 0 and low >= 1_000 and high <= 3_000_000
    s = shop.store.summary()
    assert s["users"] == s["profiles"] == 5_000


def test_anonymous_browsing_is_attributed_after_identify(shop: Workspace) -> None:
    row = shop.store.query(
        "SELECT count(*) FILTER (WHERE anonymous_id IS NOT NULL) AS anon, count(*) FILTER (WHERE user_id IS NULL) "
        "AS orphan, count(DISTINCT anonymous_id) AS people FROM events"
    ).to_pylist()[0]
    assert row["anon"] > 0 and row["orphan"] == 0
    assert len(shop.store.identities()) == row["people"] > 500
    # the anonymous history comes before the signup of the same user
    bad = shop.store.query(
        "SELECT count(*) AS n FROM events a JOIN events s ON s.user_id = a.user_id AND s.event = 'signed_up' "
        "WHERE a.anonymous_id IS NOT NULL AND a.type = 'track' AND a.ts >= s.ts"
    ).to_pylist()[0]["n"]
    assert bad == 0


def test_profiles_carry_the_contract_traits(shop: Workspace) -> None:
    traits = json.loads(shop.store.query("SELECT traits FROM profiles LIMIT 1").to_pylist()[0]["traits"])
    assert set(traits) >= {
        "name",
        "email",
        "phone",
        "age",
        "gender",
        "region",
        "device",
        "signup_channel",
        "timezone",
        "consent_push",
        "consent_email",
        "consent_sms",
        "consent_night",
    }
    rows = shop.store.query("SELECT timezone, count(*) AS n FROM profiles GROUP BY 1").to_pylist()
    zones = {r["timezone"]: r["n"] for r in rows}
    assert zones["Asia/Seoul"] > 0.9 * 5_000 and len(zones) > 1


def test_every_seed_segment_is_non_empty_and_advanced_within_basic(segments: dict[str, set[str]]) -> None:
    for case in ("A1", "A2", "A3", "A4"):
        basic, advanced = segments[f"{case}_basic"], segments[f"{case}_advanced"]
        assert advanced, f"{case} advanced is empty"
        assert advanced < basic, f"{case} advanced is not a proper subset of basic"
        assert 0.002 < len(advanced) / 5_000 < 0.4, (case, len(advanced))
    for name in ("B_android", "B_push_ignored_5", "B_event_page_3x", "B_new_7d", "B_dormant_30d"):
        assert 0 < len(segments[name]) < 5_000, name


def _rows(ws: Workspace, sql: str) -> list[dict]:
    return ws.store.query(sql, {"now": NOW}).to_pylist()


def test_a2_advanced_matches_a_python_reading_of_the_rule(shop: Workspace, segments: dict) -> None:
    carts, bought, views, reviews = defaultdict(list), defaultdict(list), defaultdict(list), defaultdict(set)
    for r in _rows(
        shop,
        "SELECT event, user_id, ts, message_id, p_product_id AS pid, p_category AS cat FROM events "
        "WHERE event IN ('cart_added', 'product_purchased', 'product_viewed', 'review_viewed') "
        "AND ts < $now",
    ):
        u = r["user_id"]
        if r["event"] == "cart_added":
            carts[u].append((r["ts"], r["message_id"], r["pid"], r["cat"]))
        elif r["event"] == "product_purchased":
            bought[u].append((r["ts"], r["pid"]))
        elif r["event"] == "product_viewed":
            views[u].append((r["ts"], r["cat"]))
        else:
            reviews[u].add(r["pid"])
    expected = set()
    for u, cs in carts.items():
        ts, _, pid, cat = max(cs)
        if ts > NOW - timedelta(days=3):
            continue
        if any(bt >= ts and bp == pid for bt, bp in bought[u]):
            continue
        if sum(1 for vt, vc in views[u] if vt > ts and vc == cat) < 2 or pid in reviews[u]:
            continue
        expected.add(u)
    assert expected == segments["A2_advanced"]


def test_a4_advanced_matches_a_python_reading_of_the_rule(shop: Workspace, segments: dict) -> None:
    last_order, lines, recent_cats = {}, defaultdict(lambda: defaultdict(set)), defaultdict(set)
    for r in _rows(
        shop,
        "SELECT event, user_id, ts, p_product_id AS pid, p_category AS cat, p_order_id AS oid "
        "FROM events WHERE event IN ('order_completed', 'product_purchased', 'product_viewed') "
        "AND ts < $now",
    ):
        u = r["user_id"]
        if r["event"] == "order_completed":
            last_order[u] = max(last_order.get(u, r["ts"]), r["ts"])
        elif r["event"] == "product_purchased":
            lines[u][(r["pid"], r["cat"])].add(r["oid"])
        elif r["ts"] >= NOW - timedelta(days=14):
            recent_cats[u].add(r["cat"])
    expected = {
        u
        for u, last in last_order.items()
        if last <= NOW - timedelta(days=30)
        and any(len(orders) >= 2 and cat not in recent_cats[u] for (_, cat), orders in lines[u].items())
    }
    assert expected == segments["A4_advanced"]


def test_a3_advanced_matches_a_python_reading_of_the_rule(shop: Workspace, segments: dict) -> None:
    recent_active, commenters, ordered_90 = set(), set(), set()
    month, quarter = NOW - timedelta(days=30), NOW - timedelta(days=90)
    for r in _rows(
        shop,
        "SELECT event, user_id, ts FROM events WHERE event IN "
        "('app_opened', '$page', 'order_completed', 'comment_event_joined') AND ts < $now",
    ):
        if r["event"] in ("app_opened", "$page", "order_completed") and r["ts"] >= month:
            recent_active.add(r["user_id"])
        if r["event"] == "comment_event_joined":
            commenters.add(r["user_id"])
        if r["event"] == "order_completed" and r["ts"] >= quarter:
            ordered_90.add(r["user_id"])
    assert (commenters & ordered_90) - recent_active == segments["A3_advanced"]


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": SRC, "COLUMNS": "200"}
    env.pop("SEGMINT_WORKSPACE", None)
    return subprocess.run([SEGMINT, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_cli_demo_builds_reuses_and_events_stats_counts(tmp_path: Path) -> None:
    ws_dir = tmp_path / "shop"
    first = _cli(
        "-w",
        str(ws_dir),
        "demo",
        "--users",
        "300",
        "--days",
        "60",
        "--now",
        "2026-11-25T09:00:00+09:00",
        "--no-serve",
        cwd=tmp_path,
    )
    assert first.returncode == 0, first.stderr
    assert "write key: wk_" in first.stdout and "A2_advanced" in first.stdout
    info = json.loads((ws_dir / "demo.json").read_text())
    assert info["complete"] and info["now"] == "2026-11-25T00:00:00"
    stats = _cli("-w", str(ws_dir), "events", "stats", "--json", cwd=tmp_path)
    assert stats.returncode == 0, stats.stderr
    rows = json.loads(stats.stdout)
    store = Workspace(ws_dir).open_store_read_only()
    try:
        total = store.summary()["events"]
    finally:
        store.close()
    assert sum(r["count"] for r in rows) == total > 5_000
    assert {r["event"] for r in rows} >= {"signed_up", "product_viewed", "order_completed", "message_sent"}
    again = _run("-w", str(ws_dir), "demo", "--users", "300", "--days", "60", "--no-serve")
    assert again.exit_code == 0 and "reusing" in again.stdout
    assert f"{total:,} events" in again.stdout.replace("\n", " ")


def _run(*args: str) -> Result:
    """The real CLI, in process (faster than a subprocess for the cases that need no server)."""
    return CliRunner().invoke(app, list(args), env={"SEGMINT_WORKSPACE": None, "COLUMNS": "200"})


def test_cli_demo_never_overwrites_a_real_workspace(tmp_path: Path) -> None:
    Workspace.init(tmp_path / "real").close()
    res = _run("-w", str(tmp_path / "real"), "demo", "--users", "50", "--no-serve", "--fresh")
    assert res.exit_code == 2
    assert "not a demo" in res.stderr
    assert (tmp_path / "real" / "segmint.toml").exists()


def test_cli_demo_rejects_a_bad_now(tmp_path: Path) -> None:
    res = _run("-w", str(tmp_path / "x"), "demo", "--now", "yesterday", "--no-serve")
    assert res.exit_code == 2 and "--now" in res.stderr
    assert not (tmp_path / "x").exists()


def test_demo_generate_writes_parquet_and_segment_jsonl(tmp_path: Path) -> None:
    spec = DemoSpec(users=100, days=30, seed=5, now=NOW)
    expected = next(Generator(spec).chunks()).events
    res = _run(
        "demo",
        "generate",
        "--users",
        "100",
        "--days",
        "30",
        "--seed",
        "5",
        "--now",
        "2026-11-25T00:00:00",
        "--out",
        str(tmp_path / "e.parquet"),
    )
    assert res.exit_code == 0, res.output
    assert pq.read_table(tmp_path / "e.parquet").equals(expected)
    res = _run(
        "demo",
        "generate",
        "--users",
        "100",
        "--days",
        "30",
        "--seed",
        "5",
        "--now",
        "2026-11-25T00:00:00",
        "--out",
        str(tmp_path / "e.jsonl"),
    )
    assert res.exit_code == 0, res.output
    lines = (tmp_path / "e.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == expected.num_rows
    msg = json.loads(lines[0])
    assert msg["messageId"] == "demo-5-0" and msg["userId"].startswith("u") and msg["timestamp"].endswith("Z")
    pages = [json.loads(x) for x in lines if '"type":"page"' in x]
    assert pages and all("event" not in p and p["properties"]["name"] for p in pages)
    messages = [json.loads(x) for x in lines]
    assert all(m.get("userId") or m.get("anonymousId") for m in messages)
    identify = [m for m in messages if m["type"] == "identify"]
    assert identify and all(m["userId"] and m["anonymousId"] and "traits" in m for m in identify)


def test_load_profiles_merges_traits_and_keeps_the_earliest_first_seen(workspace: Workspace) -> None:
    import pyarrow as pa

    from segmint.store.base import ProfileUpdate, WriteBatch
    from segmint.store.schema import TS

    store = workspace.store
    store.write(WriteBatch(profiles=[ProfileUpdate("u1", {"age": 30, "vip": True}, datetime(2026, 1, 5))]))
    table = pa.table(
        {
            "user_id": ["u1", "u2"],
            "traits": ['{"age": 31, "region": "부산"}', '{"age": 22}'],
            "first_seen": pa.array([datetime(2026, 1, 1), datetime(2026, 2, 1)], type=TS),
            "timezone": ["Asia/Seoul", None],
        }
    )
    assert store.load_profiles(table) == 2
    rows = {
        r["user_id"]: r
        for r in store.query("SELECT user_id, traits, first_seen, timezone FROM profiles ORDER BY user_id").to_pylist()
    }
    assert json.loads(rows["u1"]["traits"]) == {"age": 31, "vip": True, "region": "부산"}
    assert rows["u1"]["first_seen"] == datetime(2026, 1, 1) and rows["u1"]["timezone"] == "Asia/Seoul"
    assert json.loads(rows["u2"]["traits"]) == {"age": 22} and rows["u2"]["timezone"] is None


def test_cli_demo_refuses_a_workspace_a_live_server_holds(tmp_path: Path) -> None:
    ws_dir = tmp_path / "shop"
    assert _run("-w", str(ws_dir), "demo", "--users", "50", "--days", "10", "--no-serve").exit_code == 0
    (ws_dir / "server.json").write_text(json.dumps({"pid": os.getpid(), "url": "http://127.0.0.1:9"}))
    res = _run("-w", str(ws_dir), "demo", "--fresh", "--no-serve")
    assert res.exit_code == 2 and "server is running" in res.stderr
    assert (ws_dir / "events.duckdb").exists()
