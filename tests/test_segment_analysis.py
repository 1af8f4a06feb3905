"""Segment growth (with the as-of backfill), overlap and profile on real DuckDB with small generated data."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from saved_fixtures import shop_workspace
from segmint.analytics.overlap import overlap
from segmint.analytics.segment_growth import (
    WATERMARK_KEY,
    backfill,
    day_end,
    growth,
    members_at,
    transition_id,
)
from segmint.analytics.segment_profile import profile
from segmint.errors import InvalidInput, NotFound
from segmint.segments import saved
from segmint.segments.evaluate import evaluate
from segmint.store.base import ProfileUpdate, WriteBatch
from segmint.store.schema import events_to_arrow, transitions_to_arrow
from segmint.workspace import Workspace

NOW = datetime(2026, 3, 31, 6, 0)  # naive UTC = 15:00 in Seoul
ACTIVE = "did app_opened in last 7 days"


def history(ws: Workspace, seed: int = 7, users: int = 30, days: int = 45) -> None:
    """Seeded random app opens and orders for `users` users over the `days` days before NOW."""
    rnd = random.Random(seed)
    rows = []
    for u in range(users):
        for _ in range(rnd.randint(0, 6)):
            ts = NOW - timedelta(seconds=rnd.randint(0, days * 86400))
            event = rnd.choice(["app_opened", "app_opened", "order_completed"])
            rows.append({"message_id": f"m{len(rows)}", "type": "track", "event": event, "user_id": f"u{u:02d}",
                         "anonymous_id": None, "ts": ts, "received_at": NOW, "properties": {}, "source": "test"})
    ws.store.write(WriteBatch(events=events_to_arrow(rows)))


@pytest.fixture
def hist(workspace: Workspace) -> Workspace:
    history(workspace)
    saved.create_segment(workspace.appdb, "활성", ACTIVE)
    return workspace


def _transitions(ws: Workspace, segment: str) -> list[dict]:
    return ws.store.query("SELECT * FROM segment_transitions WHERE segment = ? ORDER BY ts, user_id, kind",
                          [segment]).to_pylist()


@pytest.mark.parametrize("definition", [
    ACTIVE,
    "did order_completed at least 2 times in last 14 days",
    "did app_opened in last 3 days and did not order_completed in last 10 days",
    "last app_opened at least 5 days ago",
])
def test_backfill_growth_equals_as_of_evaluation_per_day(workspace: Workspace, definition: str) -> None:
    ws, zone = workspace, workspace.config.zone
    history(ws, seed=len(definition))
    saved.create_segment(ws.appdb, "활성", definition)
    tree = saved.segment_tree(ws.appdb, "활성")
    r = backfill(ws.appdb, ws.store, "활성", zone=zone, days=30, now=NOW)
    assert r.evaluated == 30 and r.skipped is None and r.live_since is None
    g = growth(ws.appdb, ws.store, "활성", zone=zone, days=30, now=NOW)
    assert len(g.days) == 30 and g.days[-1].day == NOW.date() and g.timezone == "Asia/Seoul"
    prev = set(evaluate(ws.store, tree, day_end(g.days[0].day - timedelta(days=1), zone)))
    for d in g.days[:-1]:  # complete days: the chart is exactly as-of evaluation at each local day end
        at = day_end(d.day, zone)
        now_members = set(evaluate(ws.store, tree, at))
        assert members_at(ws.store, "활성", at) == now_members
        assert (d.members, d.entries, d.exits) == (len(now_members), len(now_members - prev), len(prev - now_members))
        prev = now_members
    assert sum(d.entries for d in g.days) > 0 and sum(d.exits for d in g.days) > 0  # the fixture moves
    # Today: nothing recorded after the last day end yet, so yesterday's members carry over.
    assert (g.days[-1].members, g.days[-1].entries, g.days[-1].exits) == (g.days[-2].members, 0, 0)
    assert g.backfilled_until == day_end(NOW.date() - timedelta(days=1), zone)
    assert {t["cause"] for t in _transitions(ws, "활성")} == {"backfill"}


def test_day_ends_are_local_midnights() -> None:
    from zoneinfo import ZoneInfo

    assert day_end(datetime(2026, 3, 30).date(), ZoneInfo("Asia/Seoul")) == datetime(2026, 3, 30, 15, 0)
    assert day_end(datetime(2026, 3, 30).date(), ZoneInfo("UTC")) == datetime(2026, 3, 31, 0, 0)
    berlin = ZoneInfo("Europe/Berlin")  # summer time starts on 2026-03-29: that day has 23 hours
    assert day_end(datetime(2026, 3, 28).date(), berlin) == datetime(2026, 3, 28, 23, 0)
    assert day_end(datetime(2026, 3, 29).date(), berlin) == datetime(2026, 3, 29, 22, 0)


def test_backfill_is_idempotent_and_extends_day_by_day(hist: Workspace) -> None:
    ws, zone = hist, hist.config.zone
    backfill(ws.appdb, ws.store, "활성", zone=zone, days=20, now=NOW)
    first = _transitions(ws, "활성")
    again = backfill(ws.appdb, ws.store, "활성", zone=zone, days=20, now=NOW)
    assert again.evaluated == 0 and again.skipped and _transitions(ws, "활성") == first
    # Writing the same rows again (a crash between write and watermark, say) stores nothing twice.
    ws.store.write(WriteBatch(transitions=transitions_to_arrow(first)))
    assert len(_transitions(ws, "활성")) == len(first)
    assert first[0]["id"] == transition_id("활성", 1, first[0]["user_id"], first[0]["ts"], first[0]["kind"])
    later = NOW + timedelta(days=2)
    r = backfill(ws.appdb, ws.store, "활성", zone=zone, days=20, now=later)
    assert r.evaluated == 2  # only the two day ends after the watermark
    tree = saved.segment_tree(ws.appdb, "활성")
    g = growth(ws.appdb, ws.store, "활성", zone=zone, days=22, now=later)
    for d in g.days[:-1]:
        assert d.members == len(evaluate(ws.store, tree, day_end(d.day, zone)))


def test_an_interrupted_backfill_resumes_where_it_stopped(hist: Workspace) -> None:
    ws, zone = hist, hist.config.zone

    class Stop(Exception):
        pass

    def stop_after_five(done: int, total: int) -> None:
        if done == 5:
            raise Stop

    with pytest.raises(Stop):
        backfill(ws.appdb, ws.store, "활성", zone=zone, days=20, now=NOW, progress=stop_after_five)
    fifth = day_end(NOW.date() - timedelta(days=16), zone)  # points: ends of days -20 .. -1
    assert ws.store.get_state(WATERMARK_KEY + "활성") == fifth.isoformat()
    assert max(t["ts"] for t in _transitions(ws, "활성")) <= fifth
    r = backfill(ws.appdb, ws.store, "활성", zone=zone, days=20, now=NOW)
    assert r.evaluated == 15 and r.first > fifth
    tree = saved.segment_tree(ws.appdb, "활성")
    g = growth(ws.appdb, ws.store, "활성", zone=zone, days=20, now=NOW)
    for d in g.days[:-1]:
        assert d.members == len(evaluate(ws.store, tree, day_end(d.day, zone)))


def test_backfill_stops_before_the_first_live_transition(hist: Workspace) -> None:
    ws, zone = hist, hist.config.zone
    live_ts = NOW - timedelta(days=10, hours=3)
    ws.store.write(WriteBatch(transitions=transitions_to_arrow([{
        "id": "live-1", "segment": "활성", "version": 1, "user_id": "u00", "ts": live_ts, "kind": "enter",
        "cause": "event", "recorded_at": live_ts}])))
    r = backfill(ws.appdb, ws.store, "활성", zone=zone, days=30, now=NOW)
    assert r.live_since == live_ts and r.last is not None and r.last < live_ts
    assert r.last + timedelta(days=1) >= live_ts  # ... but every day end before it is filled
    assert r.evaluated == 20
    assert all(t["ts"] < live_ts for t in _transitions(ws, "활성") if t["cause"] == "backfill")


def test_repeated_enter_from_two_paths_counts_once(hist: Workspace) -> None:
    ws, zone = hist, hist.config.zone
    backfill(ws.appdb, ws.store, "활성", zone=zone, days=10, now=NOW)
    at = day_end(NOW.date() - timedelta(days=1), zone)
    inside = sorted(members_at(ws.store, "활성", at))[0]
    outside = next(f"u{u:02d}" for u in range(30) if f"u{u:02d}" not in members_at(ws.store, "활성", at))
    ts = NOW - timedelta(hours=1)
    ws.store.write(WriteBatch(transitions=transitions_to_arrow([
        {"id": f"live-{u}", "segment": "활성", "version": 1, "user_id": u, "ts": ts, "kind": "enter",
         "cause": "event", "recorded_at": ts} for u in (inside, outside)])))
    g = growth(ws.appdb, ws.store, "활성", zone=zone, days=10, now=NOW)
    assert (g.days[-1].entries, g.days[-1].exits) == (1, 0)
    assert g.days[-1].members == g.days[-2].members + 1
    assert g.live_since == ts


def test_growth_and_backfill_refuse_bad_input(hist: Workspace) -> None:
    ws, zone = hist, hist.config.zone
    with pytest.raises(InvalidInput) as e:
        growth(ws.appdb, ws.store, "활성", zone=zone, days=0)
    assert e.value.where == "days"
    with pytest.raises(NotFound):
        backfill(ws.appdb, ws.store, "없음", zone=zone, days=5)
    saved.create_segment(ws.appdb, "고정", ACTIVE, kind="static")
    saved.freeze_members(ws.appdb, ws.store, "고정")
    with pytest.raises(InvalidInput, match="static"):
        backfill(ws.appdb, ws.store, "고정", zone=zone, days=5)
    with pytest.raises(InvalidInput, match=r"static: its [0-9]+ members never change"):
        growth(ws.appdb, ws.store, "고정", zone=zone, days=5)
    with pytest.raises(NotFound):
        growth(ws.appdb, ws.store, "없음", zone=zone, days=5)
    assert ws.store.get_state(WATERMARK_KEY + "고정") is None


# ---------------------------------------------------------------- overlap and profile (hand-checked)


@pytest.fixture
def shop(tmp_path: Path) -> Workspace:
    """Four users: u1 F 25 서울, u2 M 31 부산, u3 F 44 경기 vip, u4 M 22 (no region)."""
    shop_workspace(tmp_path / "shop")
    ws = Workspace(tmp_path / "shop")
    saved.create_segment(ws.appdb, "여성", 'trait gender = "F"')
    saved.create_segment(ws.appdb, "30+", "trait age >= 30")
    saved.create_segment(ws.appdb, "구매", "did order_completed")
    yield ws
    ws.close()


def test_overlap_matrix_by_hand(shop: Workspace) -> None:
    # 여성 = {u1, u3}, 30+ = {u2, u3}, 구매 = {u2, u4}
    o = overlap(shop.appdb, shop.store, ["여성", "30+", "구매"])
    assert o.sizes == [2, 2, 2]
    assert o.shared == [[2, 1, 0], [1, 2, 1], [0, 1, 2]]
    assert o.percent == [[100.0, 50.0, 0.0], [50.0, 100.0, 50.0], [0.0, 50.0, 100.0]]
    assert o.jaccard[0][1] == round(1 / 3, 4) and o.jaccard[0][2] == 0.0
    assert o.union == 4
    past = overlap(shop.appdb, shop.store, ["여성", "구매"], as_of=datetime(2000, 1, 1))
    assert past.sizes == [2, 0] and past.percent == [[100.0, 0.0], [0.0, 0.0]]  # traits are not time-bound
    with pytest.raises(InvalidInput, match="2 to 20"):
        overlap(shop.appdb, shop.store, ["여성"])
    with pytest.raises(InvalidInput, match="twice"):
        overlap(shop.appdb, shop.store, ["여성", "여성"])


def test_profile_categorical_by_hand(shop: Workspace) -> None:
    p = profile(shop.appdb, shop.store, "여성", traits=["gender", "region", "age"])
    assert (p.members, p.population, p.members_without_profile) == (2, 4, 0)
    by = {t.name: t for t in p.traits}
    gender = {v.value: v for v in by["gender"].values}
    assert (gender["F"].members, gender["F"].population, gender["F"].member_share, gender["F"].lift) == (2, 2, 1.0, 2.0)
    assert (gender["M"].members, gender["M"].lift) == (0, 0.0)
    assert by["gender"].divergence == 0.5  # 0.5 * (|1 - 0.5| + |0 - 0.5|)
    region = {v.value: v for v in by["region"].values}
    assert region["(missing)"].population == 1 and region["(missing)"].members == 0
    assert region["서울"].lift == 2.0 and region["부산"].members == 0
    assert by["region"].divergence == 0.5  # 0.5 * 4 * 0.25
    # age has 4 distinct numbers: shown per value; {25, 44} vs {25, 31, 44, 22}
    assert by["age"].kind == "categorical" and by["age"].divergence == 0.5
    assert p.flagged() == ["age", "gender", "region"]  # all at 0.5, by name
    assert profile(shop.appdb, shop.store, "여성", traits=["gender"], flag=0.6).flagged() == []


def test_profile_numeric_and_discovered_traits(workspace: Workspace) -> None:
    ws = workspace
    ts = NOW - timedelta(days=1)
    ws.store.write(WriteBatch(profiles=[
        ProfileUpdate(f"n{i:02d}", {"score": i, "tier": "a" if i % 2 else "b", "email": f"n{i}@x.kr"}, ts)
        for i in range(1, 21)]))
    saved.create_segment(ws.appdb, "상위", "trait score >= 11")
    p = profile(ws.appdb, ws.store, "상위")
    by = {t.name: t for t in p.traits}
    assert set(by) == {"score", "tier", "email"} and by["score"].source == "trait"
    s = by["score"]
    assert s.kind == "numeric" and s.members.count == 10 and s.population.count == 20
    assert s.members.mean == 15.5 and s.population.mean == 10.5
    assert s.members.quantiles["0.5"] == 15.5 and s.population.quantiles["0.5"] == 10.5
    assert s.divergence == 0.5 and s.flagged  # members fill the top 5 of 10 equal bins
    assert by["tier"].divergence == 0.0 and not by["tier"].flagged  # half a, half b in both
    assert by["email"].kind == "identifier" and by["email"].divergence is None
    assert p.flagged() == ["score"] and p.traits[0].name == "score"
    with pytest.raises(InvalidInput):
        profile(ws.appdb, ws.store, "상위", traits=['bad"name'])
