"""Campaign report: hand-built ledger + events with known answers, on DuckDB and on ClickHouse (chDB)."""

from __future__ import annotations

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
    from chdb_util import process_chdb_path
    from segmint.store import clickhouse as ch

    store = ch.ClickHouseEventStore(process_chdb_path(), database="campaign_report_test")
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


# -- simulated responses, the demo comparison, the CLI and the API ------------------------------------------------

NOW = datetime(2026, 11, 20)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """A small demo shop (1,000 users, 60 days up to NOW)."""
    from segmint.demo.generate import DemoSpec
    from segmint.demo.load import build_demo

    ws, _ = build_demo(tmp_path_factory.mktemp("demo") / "ws", DemoSpec(users=1000, days=60, now=NOW),
                          progress=False)
    yield ws
    ws.close()


def _members(store, seed_id: str, as_of: datetime) -> list[str]:
    from segmint.segments.dsl import parse
    from segmint.segments.evaluate import evaluate
    from segmint.segments.seeds import SEEDS

    return evaluate(store, parse(next(s.text for s in SEEDS if s.id == seed_id)), as_of)


def _sent(cid: str, users: list[str], at: datetime, channel: str = "kakao") -> list[dict]:
    return [{"campaign_id": cid, "occurrence": "once", "user_id": u, "variant": "A", "channel": channel,
             "status": "sent", "sent_at": at} for u in users]


def test_simulated_responses_are_labelled_seeded_and_idempotent(demo) -> None:
    import json

    from segmint.demo.responses import simulate_responses

    at = NOW - 3 * D
    users = _members(demo.store, "A1-advanced", at)
    control = {"campaign_id": "sim-test", "occurrence": "once", "user_id": "u9999999", "variant": "control",
               "channel": "push", "status": "holdout", "sent_at": at}
    ledger = [*_sent("sim-test", users, at, "push"), control]
    dry = simulate_responses(demo.store, ledger, seed=7, write=False)
    again = simulate_responses(demo.store, ledger, seed=7, write=False)
    assert dry.events.equals(again.events) and dry.written == 0
    assert dry.counts["sent"] == len(users) and 0 < dry.counts["clicked"] < dry.counts["opened"] < len(users)
    other = simulate_responses(demo.store, ledger, seed=8, write=False)
    assert other.counts != dry.counts or not other.events.equals(dry.events)
    rows = dry.events.to_pylist()
    assert all(json.loads(r["properties"])["simulated"] is True for r in rows)
    assert all(json.loads(r["context"])["library"]["name"] == "segmint-simulator" for r in rows)
    assert "u9999999" not in {r["user_id"] for r in rows}  # the holdout gets no message and no response
    assert all(at <= r["ts"] <= at + 3 * D for r in rows)
    written = simulate_responses(demo.store, ledger, seed=7)
    assert written.written == dry.events.num_rows
    assert simulate_responses(demo.store, ledger, seed=7).written == 0  # same ids: stored once
    report = campaign_report(demo.store, ledger, Goal(), simulated=True)
    a = next(r for r in report.rows if r.variant == "A")
    assert (a.opened, a.clicked) == (dry.counts["opened"], dry.counts["clicked"])
    assert a.converted >= dry.counts["converted"]  # simulated orders plus the shop's own


def test_a2_advanced_users_respond_better_to_their_cart_category(demo) -> None:
    from segmint.demo.campaign_compare import _target_items
    from segmint.demo.responses import response_probabilities, simulate_responses

    at = NOW - 3 * D
    advanced = _members(demo.store, "A2-advanced", at)
    basic_only = sorted(set(_members(demo.store, "A2-basic", at)) - set(advanced))
    assert len(advanced) > 100 and len(basic_only) > 30

    def message(users: list[str]) -> dict:
        items = _target_items(demo.store, users, "cart", at)
        return {"targets": {u: c for u, (c, _) in items.items()}, "products": {u: p for u, (_, p) in items.items()}}

    def mean(users: list[str], key) -> float:
        probs = response_probabilities(demo.store, _sent("a2", users, at), **message(users))
        return sum(key(p) for p in probs) / len(probs)

    # relevance = recent affinity for the cart item's category, lowered when its reviews were read already
    assert mean(advanced, lambda p: p["relevance"]) > 1.1 * mean(basic_only, lambda p: p["relevance"])
    assert mean(advanced, lambda p: p["open"] * p["click_given_open"]) > mean(
        basic_only, lambda p: p["open"] * p["click_given_open"])
    # a message about nothing in particular is equally relevant to everyone
    flat = response_probabilities(demo.store, _sent("a2", advanced[:50], at))
    assert {p["relevance"] for p in flat} == {1.0}
    # the draws follow those probabilities: realized clicks within 4 standard deviations of the expectation
    probs = response_probabilities(demo.store, _sent("a2", advanced, at), **message(advanced))
    p_click = [p["open"] * p["click_given_open"] for p in probs]
    sim = simulate_responses(demo.store, _sent("a2", advanced, at), seed=1, write=False, **message(advanced))
    sd = sum(p * (1 - p) for p in p_click) ** 0.5
    assert abs(sim.counts["clicked"] - sum(p_click)) < 4 * sd


def test_demo_comparison_table(demo) -> None:
    from segmint.demo.campaign_compare import advanced_vs_basic, compare_seed_campaigns, comparison_rows

    results = compare_seed_campaigns(demo.store, NOW, seeds=["A1", "A2"], holdout=0.3)
    rows = comparison_rows(results)
    assert [(r["seed"], r["kind"]) for r in rows] == [("A1", "basic"), ("A1", "advanced"), ("A2", "basic"),
                                                      ("A2", "advanced")]
    for res in results:
        assert res.basic.report.simulated and res.advanced.report.simulated
        for arm in (res.basic, res.advanced):
            a, c = arm.row("A"), arm.row("control")
            assert a.audience + c.audience == a.sent + c.measured + a.suppressed + c.suppressed
            assert c.sent == 0 and c.opened == 0 and a.sent > 0
            assert set(a.suppressed_by_reason) <= {"no_consent"}
            up = arm.uplift()["conversion"]
            assert up["diff"] == pytest.approx(a.conversion_rate - c.conversion_rate)
    summary = advanced_vs_basic(results)
    for r in summary:
        res = next(x for x in results if x.seed.seed == r["seed"])
        assert r["ctr_ratio"] == pytest.approx(res.advanced.row("A").ctr / res.basic.row("A").ctr)
    # the same seed gives the same table (simulated events are stored once)
    assert comparison_rows(compare_seed_campaigns(demo.store, NOW, seeds=["A1"], holdout=0.3)) == rows[:2]
    with pytest.raises(InvalidInput, match="unknown seed"):
        compare_seed_campaigns(demo.store, NOW, seeds=["A9"])


def test_cli_report_and_demo_compare(demo, tmp_path) -> None:
    import json

    from typer.testing import CliRunner

    from segmint.cli import app

    runner = CliRunner()
    res = runner.invoke(app, ["-w", str(demo.path), "demo", "compare", "--only", "A1", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["simulated"] is True and [r["kind"] for r in out["rows"]] == ["basic", "advanced"]
    (tmp_path / "ledger.json").write_text(json.dumps(_ledger(), default=str))
    res = runner.invoke(app, ["-w", str(demo.path), "report", "campaign", "c1", "--recipients",
                              str(tmp_path / "ledger.json"), "--json", "--goal", "order_completed", "--window", "2d"])
    assert res.exit_code == 0, res.output
    report = json.loads(res.output)
    assert report["goal"]["window_seconds"] == 2 * 86_400
    assert {r["variant"] for r in report["rows"]} == {"A", "B", "control"}
    table = runner.invoke(app, ["-w", str(demo.path), "report", "campaign", "c1", "--recipients",
                                str(tmp_path / "ledger.json")])
    assert table.exit_code == 0 and "uplift" in table.output and "no_consent 2" in table.output
    bad = runner.invoke(app, ["-w", str(demo.path), "report", "campaign", "c1", "--recipients",
                              str(tmp_path / "ledger.json"), "--window", "soon"])
    assert bad.exit_code == 2 and "window" in bad.output
    missing = runner.invoke(app, ["-w", str(demo.path), "report", "campaign", "nope", "--recipients",
                                  str(tmp_path / "ledger.json")])
    assert missing.exit_code == 2 and "no ledger rows for campaign 'nope'" in missing.output


def test_api_and_cli_through_a_running_server(tmp_path) -> None:
    import json

    import httpx
    from typer.testing import CliRunner

    from segmint.cli import app
    from segmint.workspace import Workspace
    from server_util import Server

    ws = Workspace.init(tmp_path / "served")
    ws.store.write(WriteBatch(events=_events()))
    token = ws.config.admin_token
    ws.close()
    server = Server(ws.path, token).start()
    try:
        auth = {"Authorization": f"Bearer {token}"}
        rows = [dict(r, sent_at=r["sent_at"].isoformat() if r["sent_at"] else None,
                     queued_at=r["queued_at"].isoformat(), updated_at=None) for r in _ledger()]
        resp = httpx.post(server.url + "/api/campaign-reports", headers=auth, timeout=60,
                          json={"recipients": rows, "goal": "order_completed where revenue >= 20000"})
        assert resp.status_code == 200, resp.text
        got = {r["variant"]: r for r in resp.json()["rows"]}
        assert (got["A"]["converted"], got["B"]["converted"], got["control"]["converted"]) == (1, 0, 1)
        assert got["A"]["suppressed_by_reason"] == {"no_consent": 2, "frequency_cap": 1}
        bad = httpx.post(server.url + "/api/campaign-reports", headers=auth, timeout=60,
                         json={"recipients": [dict(rows[0], status="lost")]})
        assert bad.status_code == 400 and bad.json()["where"] == "recipients[0].status"
        assert httpx.post(server.url + "/api/campaign-reports", json={"recipients": rows}).status_code == 401
        unknown = httpx.get(server.url + "/api/campaigns/nope/report", headers=auth, timeout=60)
        assert unknown.status_code in (400, 404) and unknown.json()["message"]
        (tmp_path / "ledger.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
        res = CliRunner().invoke(app, ["-w", str(ws.path), "report", "campaign", "--recipients",
                                       str(tmp_path / "ledger.jsonl"), "--json"])
        assert res.exit_code == 0, res.output
        assert {r["variant"]: r["converted"] for r in json.loads(res.output)["rows"]} == {"A": 2, "B": 1, "control": 1}
    finally:
        server.stop()


def test_report_joins_a_campaign_cli_group() -> None:
    import typer

    from segmint.cli.campaign_report import register

    app = typer.Typer()
    campaign = typer.Typer()
    app.add_typer(campaign, name="campaign")
    register(app)
    register(app)  # idempotent
    assert [c.name for c in campaign.registered_commands] == ["report"]
    assert [g.name for g in app.registered_groups] == ["campaign", "report"]
