"""Campaign report: hand-built ledger + events with known answers, on DuckDB and on ClickHouse (chDB)."""

from __future__ import annotations

import tempfile
from datetime import datetime, timedelta

import pyarrow as pa
import pytest

from segmint.analytics.campaign_report import Goal, campaign_report, recipients_table
from segmint.errors import InvalidInput
from segmint.segments.errors import SegmentSyntaxError
from segmint.store.base import WriteBatch
from segmint.store.duckdb import DuckDBEventStore
from segmint.store.schema import events_to_arrow

T = datetime(2026, 3, 1, 10, 0)
H = timedelta(hours=1)
D = timedelta(days=1)


def _ev(n: int, event: str, user: str, ts: datetime, **props) -> dict:
    return {"message_id": f"m{n}", "type": "track", "event": event, "user_id": user, "ts": ts, "received_at": ts,
            "properties": props, "source": "test"}


def _events() -> pa.Table:
    c1 = {"campaign_id": "c1", "channel": "push"}
    rows = [
        ("message_opened", "u1", T + H, dict(c1, variant="A")),
        ("message_clicked", "u1", T + H + timedelta(minutes=1), dict(c1, variant="A")),
        ("order_completed", "u1", T - D, {"revenue": 99_000}),  # before the send: not a conversion
        ("order_completed", "u1", T + D, {"revenue": 30_000}),
        ("message_opened", "u2", T + 2 * H, dict(c1, variant="A")),
        ("order_completed", "u2", T + 4 * D, {"revenue": 50_000}),  # outside the 3-day window
        ("order_completed", "u3", T + H, {"revenue": 8_000}),  # suppressed user: not measured
        ("order_completed", "u4", T + 2 * D, {"revenue": 10_000}),  # failed send still counts (intent to treat)
        ("message_clicked", "u5", T + 3 * H, dict(c1, variant="B")),
        ("message_unsubscribed", "u5", T + 4 * H, dict(c1, variant="B")),
        ("order_completed", "u5", T - H, {"revenue": 5_000}),
        ("message_opened", "u6", T + H, {"campaign_id": "c2", "variant": "B", "channel": "push"}),  # other campaign
        ("order_completed", "u6", T + D, {"revenue": 5_000}),
        ("order_completed", "u6", T + D + H, {"revenue": 7_000}),
        ("order_completed", "u7", T + 2 * D, {"revenue": 20_000}),  # control converts on its own
        ("message_opened", "u10", T + H, dict(c1, variant="B")),  # wrong variant for u10
        ("message_opened", "u11", T - H, dict(c1, variant="A")),  # before u11's send
    ]
    return events_to_arrow(_ev(i, *r[:3], **r[3]) for i, r in enumerate(rows))


def _ledger() -> list[dict]:
    def row(user, variant, status, reason="", sent=T, queued=T):
        return {"campaign_id": "c1", "occurrence": 1, "user_id": user, "variant": variant, "channel": "push",
                "status": status, "reason": reason, "provider_id": None, "attempts": 1, "queued_at": queued,
                "sent_at": sent, "updated_at": T}
    return [
        row("u1", "A", "delivered"), row("u2", "A", "sent"), row("u3", "A", "suppressed", "no_consent", None),
        row("u4", "A", "failed", "provider_error", None), row("u9", "A", "bounced"), row("u10", "A", "sent"),
        row("u11", "A", "sent"), row("u12", "A", "suppressed", "frequency_cap", None),
        row("u13", "A", "suppressed", "no_consent", None),
        row("u5", "B", "delivered"), row("u6", "B", "sent"),
        row("u7", "control", "holdout", sent=None), row("u8", "control", "holdout", sent=None),
    ]


@pytest.fixture(scope="module")
def duck(tmp_path_factory):
    store = DuckDBEventStore(tmp_path_factory.mktemp("rep") / "events.duckdb")
    store.write(WriteBatch(events=_events()))
    yield store
    store.close()


@pytest.fixture(scope="module")
def clickhouse():
    from segmint.store import clickhouse as ch

    path = next(iter(ch._SESSIONS), None) or tempfile.mkdtemp(prefix="report-chdb-")  # one chDB path per process
    store = ch.ClickHouseEventStore(path, database="campaign_report_test")
    store._exec("TRUNCATE TABLE events")
    store.write(WriteBatch(events=_events()))
    return store


def _rows(report) -> dict:
    return {(r.variant, r.segment): r for r in report.rows}


def test_report_counts_and_rates_by_hand(duck) -> None:
    rows = _rows(campaign_report(duck, _ledger(), Goal()))
    a, b, c = rows["A", None], rows["B", None], rows["control", None]
    assert (a.audience, a.suppressed, a.measured, a.sent, a.delivered, a.bounced, a.failed) == (9, 3, 6, 5, 1, 1, 1)
    assert a.suppressed_by_reason == {"no_consent": 2, "frequency_cap": 1}
    assert (a.opened, a.clicked, a.unsubscribed) == (2, 1, 0)  # u1, u2 opened; u10's open is variant B; u11's early
    assert (a.converted, a.conversions, a.revenue) == (2, 2, 40_000)  # u1 (30k) and u4 (10k)
    assert a.open_rate == pytest.approx(2 / 5) and a.ctr == pytest.approx(1 / 5)
    assert a.conversion_rate == pytest.approx(2 / 6) and a.revenue_per_recipient == pytest.approx(40_000 / 6)
    assert (b.sent, b.opened, b.clicked, b.unsubscribed) == (2, 0, 1, 1)  # u6's open belongs to campaign c2
    assert (b.converted, b.conversions, b.revenue, b.revenue_sq) == (1, 2, 12_000, 12_000**2)
    assert b.unsubscribe_rate == pytest.approx(0.5)
    assert (c.audience, c.measured, c.sent, c.opened, c.converted, c.revenue) == (2, 2, 0, 0, 1, 20_000)
    assert c.open_rate is None and c.conversion_rate == pytest.approx(0.5)


def test_goal_filters_and_window(duck) -> None:
    big = _rows(campaign_report(duck, _ledger(), Goal.parse("order_completed where revenue >= 20000", "3d")))
    assert (big["A", None].converted, big["B", None].converted, big["control", None].converted) == (1, 0, 1)
    long = _rows(campaign_report(duck, _ledger(), Goal.parse("order_completed", "5d")))
    assert long["A", None].converted == 3  # u2's order on day 4 now counts
    short = _rows(campaign_report(duck, _ledger(), Goal.parse("order_completed", "1d")))
    assert short["A", None].converted == 1 and short["B", None].converted == 1  # u6's first order at exactly 1 day
    no_revenue = _rows(campaign_report(duck, _ledger(), Goal(revenue_property=None)))
    assert no_revenue["A", None].revenue == 0 and no_revenue["A", None].converted == 2


def test_comparisons_vs_control_and_between_variants(duck) -> None:
    report = campaign_report(duck, _ledger())
    kinds = {(c["variant"], c["baseline"]): c for c in report.comparisons}
    assert set(kinds) == {("A", "control"), ("B", "control"), ("A", "B")}
    a_vs_c = kinds["A", "control"]["conversion"]
    assert a_vs_c["rate"] == pytest.approx(2 / 6) and a_vs_c["baseline_rate"] == pytest.approx(0.5)
    assert a_vs_c["diff"] == pytest.approx(2 / 6 - 0.5) and a_vs_c["p_value"] is not None
    assert kinds["A", "control"]["sample_size_per_group"] > 0
    assert report.to_dict()["rows"][0].keys() >= {"open_rate", "ctr", "conversion_rate", "revenue_per_recipient"}


def test_segments_and_rollup(duck) -> None:
    ledger = _ledger()
    for i, r in enumerate(ledger):
        r["segment"] = "advanced" if i % 2 else "basic"
    rows = _rows(campaign_report(duck, ledger))
    assert {s for _, s in rows} == {"advanced", "basic", None}
    for v in ("A", "B", "control"):
        parts = [rows[v, s] for s in ("advanced", "basic") if (v, s) in rows]
        assert rows[v, None].audience == sum(p.audience for p in parts)
        assert rows[v, None].converted == sum(p.converted for p in parts)
    assert rows["A", None].suppressed_by_reason == {"no_consent": 2, "frequency_cap": 1}


def test_recurring_occurrences_split_engagement(duck) -> None:
    ledger = [{"campaign_id": "c1", "occurrence": "1", "user_id": "u1", "variant": "A", "status": "sent",
               "sent_at": T - 2 * D},
              {"campaign_id": "c1", "occurrence": "2", "user_id": "u1", "variant": "A", "status": "sent",
               "sent_at": T}]
    rows = campaign_report(duck, ledger).rows
    assert sorted(r.opened for r in rows) == [1]  # one row per variant: the open after T belongs to occurrence 2
    assert rows[0].sent == 2 and rows[0].measured == 2


def test_clickhouse_gives_the_same_report(duck, clickhouse) -> None:
    ledger = _ledger()
    for i, r in enumerate(ledger):
        r["segment"] = "advanced" if i % 3 else "basic"
    for goal in (Goal(), Goal.parse("order_completed where revenue >= 20000", "2d")):
        assert campaign_report(clickhouse, ledger, goal).to_dict() == campaign_report(duck, ledger, goal).to_dict()


def test_bad_ledgers_are_named(duck) -> None:
    with pytest.raises(InvalidInput, match="missing columns") as exc:
        campaign_report(duck, [{"campaign_id": "c1", "user_id": "u1"}])
    assert exc.value.where == "recipients"
    with pytest.raises(InvalidInput, match="unknown status 'opened'") as exc:
        recipients_table([{"campaign_id": "c", "user_id": "u", "variant": "A", "status": "opened", "sent_at": T}])
    assert exc.value.where == "recipients[0].status"
    with pytest.raises(InvalidInput, match="appears twice"):
        recipients_table([{"campaign_id": "c", "user_id": "u", "variant": "A", "status": "sent", "sent_at": T}] * 2)
    with pytest.raises(InvalidInput, match="would have been sent"):
        recipients_table([{"campaign_id": "c", "user_id": "u", "variant": "control", "status": "holdout"}])
    with pytest.raises(InvalidInput, match="no recipients"):
        recipients_table([])
    with pytest.raises(InvalidInput, match="not a duration"):
        Goal.parse("order_completed", "three days")
    with pytest.raises(InvalidInput, match="no counts or windows"):
        Goal.parse("order_completed at least 2 times")
    with pytest.raises(SegmentSyntaxError):
        Goal.parse("order_completed where")


def test_goal_from_campaign_model_shape_and_ledger_columns(duck) -> None:
    class CampaignGoal:  # the campaign model's goal: `where` is a mapping of property == value
        event = "order_completed"
        where = {"revenue": 30_000}
        window = timedelta(days=3)
        revenue_property = "revenue"

    goal = Goal.coerce(CampaignGoal())
    assert goal.where[0].op == "eq" and goal.window == timedelta(days=3)
    # ledger rows as the campaigns ledger writes them: due_at, scheduled rows, segment column
    ledger = _ledger()
    for r in ledger:
        r |= {"segment": None, "due_at": r["queued_at"], "detail": None, "message_id": f"c1:1:{r['user_id']}"}
    ledger.append({"campaign_id": "c1", "occurrence": 1, "user_id": "u20", "variant": "A", "status": "scheduled",
                   "due_at": T + D, "queued_at": T, "sent_at": None})
    rows = _rows(campaign_report(duck, ledger, goal))
    assert rows["A", None].converted == 1 and rows["A", None].pending == 1 and rows["A", None].audience == 10
    assert _rows(campaign_report(duck, ledger, {"event": "order_completed", "window": "1d"}))["A", None].converted == 1
    with pytest.raises(InvalidInput, match="event name"):
        Goal.coerce({"where": {}})
