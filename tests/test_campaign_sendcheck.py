"""Claim-time re-check of triggered campaigns: a cancel event stored after the planner queued a row and before a
worker claims it still cancels the row (driven step by step at fixed times, no sleeps)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from segmint.campaigns import repo
from segmint.campaigns.deliver import Worker
from segmint.campaigns.ledger import ledger_rows
from segmint.campaigns.plan import prepare_due, scan_triggers
from segmint.campaigns.sendcheck import SendTimeCheck
from segmint.channels.base import DeliveryResult, OutboundMessage
from segmint.segments import saved
from segmint.workspace import Workspace
from test_campaign_send import events, profiles

T0 = datetime(2026, 3, 2, 2, 0)  # 11:00 in Seoul: no quiet hours, no night rule, whatever the clock says


class Recorder:
    """A push channel that records what it was asked to send."""

    name = "push"

    def __init__(self) -> None:
        self.sent: list[OutboundMessage] = []

    def send(self, message: OutboundMessage) -> DeliveryResult:
        self.sent.append(message)
        return DeliveryResult("sent", provider_message_id=f"p-{len(self.sent)}")


def _cart(ws: Workspace, cid: str, users: list[str], **sched: Any) -> Any:
    profiles(ws, {u: {"name": u, "push_token": f"t-{u}", "consent_push": True} for u in users})
    saved.create_segment(ws.appdb, "has_token", "trait push_token exists")
    saved.create_segment(ws.appdb, "push_off", "trait push_off exists")
    events(ws, [(u, "cart_added", T0, {"product_name": "샴푸"}) for u in users])
    c = {"id": cid, "name": "장바구니", "purpose": "informational", "target": ["has_token"], "exclude": ["push_off"],
         "channels": ["push"], "policy": {"quiet_hours": {"enabled": False}},
         "schedule": {"type": "triggered", "event": "cart_added", "delay": "1h", "cancel_on": ["order_completed"],
                      **sched},
         "variants": [{"key": "A", "messages": {"push": {"subject": "s", "text": "{{ event.product_name }}"}}}]}
    sc, _ = repo.save_campaign(ws.appdb, c, status="active")
    scan_triggers(ws, sc.campaign, (T0 - timedelta(minutes=1)).isoformat(), now=T0)
    return sc.campaign


def _statuses(ws: Workspace, cid: str) -> dict[str, tuple[str, str | None, str | None]]:
    return {r["user_id"]: (r["status"], r["reason"], r["detail"]) for r in ledger_rows(ws.appdb, cid)}


def test_cancel_event_between_planning_and_claim_cancels_the_row(workspace: Workspace) -> None:
    ws = workspace
    campaign = _cart(ws, "cart", ["a", "b"])
    due = T0 + timedelta(hours=1, minutes=1)
    assert prepare_due(ws, campaign, now=due) == 2
    assert {s for s, _, _ in _statuses(ws, "cart").values()} == {"queued"}  # the planner saw no purchase
    # b buys after the planner's check and before any worker claims the row
    events(ws, [("b", "order_completed", T0 + timedelta(minutes=50), {})])
    channel = Recorder()
    check = SendTimeCheck(ws)
    worker = Worker(ws.appdb, {"push": channel}, campaign_id="cart", checker=check)
    try:
        rows = worker.claim(now=due + timedelta(seconds=1))
        assert sorted(r.user_id for r in rows) == ["a", "b"]
        assert {s for s, _, _ in _statuses(ws, "cart").values()} == {"sending"}
        worker.process(rows)
    finally:
        worker.close()
    got = _statuses(ws, "cart")
    assert got["a"][0] == "sent"
    assert got["b"] == ("suppressed", "cancelled", "did order_completed after the trigger")  # as the planner says
    assert [m.user_id for m in channel.sent] == ["a"]
    assert check.queries == 1 and worker.stats.suppressed == 1


def test_cancel_before_the_trigger_does_not_cancel(workspace: Workspace) -> None:
    """Only a cancel event after the trigger counts: an earlier purchase leaves the reminder due."""
    ws = workspace
    events(ws, [("a", "order_completed", T0 - timedelta(days=1), {})])
    campaign = _cart(ws, "cart", ["a"])
    due = T0 + timedelta(hours=1, minutes=1)
    assert prepare_due(ws, campaign, now=due) == 1
    channel = Recorder()
    worker = Worker(ws.appdb, {"push": channel}, campaign_id="cart", checker=SendTimeCheck(ws))
    try:
        worker.process(worker.claim(now=due))
    finally:
        worker.close()
    assert _statuses(ws, "cart")["a"][0] == "sent" and len(channel.sent) == 1


def test_one_event_query_per_claimed_batch_and_target_recheck_at_claim(workspace: Workspace) -> None:
    """A batch of many users costs one cancel query; a user who left the target after planning is vetoed
    with `recheck_failed`, as the planner would have."""
    ws = workspace
    users = [f"u{i:02d}" for i in range(30)]
    campaign = _cart(ws, "cart", users)
    due = T0 + timedelta(hours=1, minutes=1)
    assert prepare_due(ws, campaign, now=due) == 30
    events(ws, [(u, "order_completed", T0 + timedelta(minutes=30), {}) for u in users[:10]])
    profiles(ws, {"u29": {"push_off": True}})  # turned push off: now in the exclusion segment
    calls: list[str] = []
    real = ws.store.query

    def counting(sql: str, params: Any = None) -> Any:
        calls.append(sql)
        return real(sql, params)

    ws.store.query = counting  # type: ignore[method-assign]
    channel = Recorder()
    worker = Worker(ws.appdb, {"push": channel}, campaign_id="cart", checker=SendTimeCheck(ws), batch=100)
    try:
        worker.process(worker.claim(now=due))
    finally:
        worker.close()
        ws.store.query = real  # type: ignore[method-assign]
    got = _statuses(ws, "cart")
    assert {u for u, (s, r, _) in got.items() if r == "cancelled"} == set(users[:10])
    assert got["u29"] == ("suppressed", "recheck_failed", "no longer in the target segments at send time")
    assert sorted(m.user_id for m in channel.sent) == users[10:29]
    # for 30 users: one query for the cancel events of the whole batch, one per target/exclusion segment
    assert sum("GROUP BY user_id, event" in q for q in calls) == 1 and len(calls) == 3


def test_campaign_without_cancel_on_needs_no_event_query(workspace: Workspace) -> None:
    ws = workspace
    campaign = _cart(ws, "cart", ["a"], cancel_on=[], recheck=False)
    due = T0 + timedelta(hours=1, minutes=1)
    assert prepare_due(ws, campaign, now=due) == 1
    check = SendTimeCheck(ws)
    worker = Worker(ws.appdb, {"push": Recorder()}, campaign_id="cart", checker=check)
    try:
        worker.process(worker.claim(now=due))
    finally:
        worker.close()
    assert _statuses(ws, "cart")["a"][0] == "sent" and check.queries == 0


def test_separate_worker_process_checks_through_a_read_only_store(workspace: Workspace) -> None:
    """`segmint campaign worker` opens the store read-only per batch; while another handle holds a DuckDB store
    it cannot, and says so (the rows keep the planner's check only)."""
    ws = workspace
    campaign = _cart(ws, "cart", ["a", "b", "c"])
    due = T0 + timedelta(hours=1, minutes=1)
    assert prepare_due(ws, campaign, now=due) == 3
    events(ws, [("b", "order_completed", T0 + timedelta(minutes=50), {})])
    held = SendTimeCheck(Workspace(ws.path), read_only=True)
    worker = Worker(ws.appdb, {"push": Recorder()}, campaign_id="cart", checker=held, batch=1)
    try:
        worker.process(worker.claim(now=due))  # a: the store is held by `ws` (this test's writer)
    finally:
        worker.close()
    assert held.unchecked == 1 and _statuses(ws, "cart")["a"][0] == "sent"
    ws.close()  # the writer lets go, as when no server runs
    check = SendTimeCheck(Workspace(ws.path), read_only=True)
    worker = Worker(ws.appdb, {"push": Recorder()}, campaign_id="cart", checker=check)
    try:
        worker.process(worker.claim(now=due))
    finally:
        worker.close()
    got = _statuses(ws, "cart")
    assert got["b"][:2] == ("suppressed", "cancelled") and got["c"][0] == "sent" and check.unchecked == 0


def test_a_failing_re_check_gives_the_batch_back_unsent(workspace: Workspace) -> None:
    """When the event store fails during the claim-time check, nothing is sent and the rows are queued again
    (not left `sending` for a dead-worker recovery that might fail them as uncertain)."""
    ws = workspace
    campaign = _cart(ws, "cart", ["a", "b"])
    due = T0 + timedelta(hours=1, minutes=1)
    assert prepare_due(ws, campaign, now=due) == 2

    def broken(rows: Any, now: datetime) -> dict[int, tuple[str, str]]:
        raise RuntimeError("event store unavailable")

    channel = Recorder()
    worker = Worker(ws.appdb, {"push": channel}, campaign_id="cart", checker=broken)
    try:
        worker.process(worker.claim(now=due))
    finally:
        worker.close()
    rows = ledger_rows(ws.appdb, "cart")
    assert channel.sent == [] and {(r["status"], r["attempts"]) for r in rows} == {("queued", 0)}


def test_the_servers_delivery_worker_cancels_at_claim_time(workspace: Workspace) -> None:
    """The server runtime's worker (what `segmint serve` runs) carries the claim-time re-check."""
    from segmint.campaigns.runtime import CampaignRuntime
    from test_campaign_send import outbox_lines

    ws = workspace
    profiles(ws, {u: {"name": u, "email": f"{u}@x.kr"} for u in ("a", "b")})
    saved.create_segment(ws.appdb, "everyone", "trait email exists")
    events(ws, [(u, "cart_added", T0, {"product_name": "샴푸"}) for u in ("a", "b")])
    c = {"id": "cart", "name": "장바구니", "purpose": "informational", "target": ["everyone"], "channels": ["outbox"],
         "policy": {"quiet_hours": {"enabled": False}},
         "schedule": {"type": "triggered", "event": "cart_added", "delay": "1h", "cancel_on": ["order_completed"]},
         "variants": [{"key": "A", "messages": {"outbox": {"subject": "s", "text": "{{ event.product_name }}"}}}]}
    sc, _ = repo.save_campaign(ws.appdb, c, status="active")
    scan_triggers(ws, sc.campaign, (T0 - timedelta(minutes=1)).isoformat(), now=T0)
    assert prepare_due(ws, sc.campaign, now=T0 + timedelta(hours=1, minutes=1)) == 2
    events(ws, [("a", "order_completed", T0 + timedelta(minutes=20), {})])
    runtime = CampaignRuntime(ws, lambda rows: None)
    runtime.worker = runtime.make_worker()
    try:
        runtime.deliver_step()  # claims every due row (all are: T0 is in the past) and sends
    finally:
        runtime.worker.close()
    got = _statuses(ws, "cart")
    assert got["a"][:2] == ("suppressed", "cancelled") and got["b"][0] == "sent"
    assert [line["user_id"] for line in outbox_lines(ws)] == ["b"]
