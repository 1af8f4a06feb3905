"""Computed traits on hand-made histories with worked-out values, the CDNOW check, the CLI and the API."""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import orjson
import pytest
from typer.testing import CliRunner

from segmint.cli import app
from segmint.errors import InvalidInput, NotFound
from segmint.store.base import ProfileUpdate, WriteBatch
from segmint.store.schema import events_to_arrow
from segmint.traits import compute_traits, load_trait_config, user_traits
from segmint.traits.clv import fit_bgnbd, fit_gamma_gamma
from segmint.workspace import Workspace
from server_util import Server

AS_OF = datetime(2026, 6, 1)


def _ev(user: str, event: str, day: float, **props: object) -> dict:
    ts = AS_OF + timedelta(days=day)
    return {"message_id": f"{user}-{event}-{day}-{random.random()}", "type": "track", "event": event,
            "user_id": user, "ts": ts, "received_at": ts, "properties": props, "source": "import"}


def _history() -> list[dict]:
    e = []
    for d in (-100, -70, -40, -10):  # u1: regular every 30 days, loyal
        e.append(_ev("u1", "order_completed", d, revenue=10000))
    e += [_ev("u2", "order_completed", -5, revenue=50000), _ev("u3", "order_completed", -5, revenue=50000)]
    e.append(_ev("u3", "message_sent", -1, channel="push"))  # not the user's activity
    e += [_ev("u4", "order_completed", -200, revenue=20000), _ev("u4", "order_completed", -190, revenue=20000),
          _ev("u4", "app_opened", -20), _ev("u4", "order_completed", -15, revenue=20000)]  # back after 170 days
    e.append(_ev("u5", "app_opened", -120))  # dormant
    e += [_ev("u6", "signed_up", -3), _ev("u6", "app_opened", -3)]  # new
    e += [_ev("u7", "order_completed", -50, revenue=5000), _ev("u7", "app_opened", -45)]  # at risk
    e += [_ev("u8", "app_opened", -60), _ev("u8", "app_opened", -20)]  # active, no purchase
    e += [_ev("u9", "order_completed", -40, revenue=1000), _ev("u9", "order_completed", -25, revenue=1000)]
    e += [_ev("u10", "app_opened", d) for d in (-55, -50, -45, -40, -35, -5)]  # visits falling off
    e += [_ev("u10", "message_sent", -30 + i, channel="push") for i in range(5)]  # never opened
    # channels
    e += [_ev("u1", "message_sent", -30 + i, channel="push") for i in range(4)]
    e.append(_ev("u1", "message_opened", -29, channel="push"))
    e += [_ev("u1", "message_sent", -20 + i, channel="email") for i in range(3)]
    e += [_ev("u1", "message_opened", -19, channel="email"), _ev("u1", "message_opened", -18, channel="email"),
          _ev("u1", "message_clicked", -18, channel="email")]
    e += [_ev("u1", "message_sent", -9, channel="sms"), _ev("u1", "message_opened", -9, channel="sms")]
    for ch in ("push", "kakao"):
        e += [_ev("u2", "message_sent", -9 + i, channel=ch) for i in range(3)]
        e += [_ev("u2", "message_opened", -9 + i, channel=ch) for i in range(3)]
    # categories
    e += [_ev("u1", "product_viewed", -12 + i, category="뷰티") for i in range(3)]
    e += [_ev("u1", "product_viewed", -11, category="식품"), _ev("u1", "product_purchased", -10, category="식품")]
    # per-category cycle: 식품 on three purchase days 10 days apart (two items on one day count once)
    e += [_ev("u11", "product_purchased", d, category="식품") for d in (-50, -40.2, -40.1, -30)]
    e += [_ev("u11", "product_purchased", d, category="생활용품") for d in (-35, -5)]
    # sentiment
    e += [_ev("u1", "survey_answered", -50, nps=6), _ev("u1", "survey_answered", -5, nps=9),
          _ev("u1", "review_written", -8, rating=4), _ev("u1", "review_written", -7, rating=5),
          _ev("u2", "survey_answered", -4, nps=7), _ev("u3", "survey_answered", -6, nps=0)]
    return e


@pytest.fixture
def shop(workspace: Workspace) -> Workspace:
    """A workspace holding the hand-made histories; revenue and channel as typed columns."""
    workspace.store.ensure_property_columns({"revenue": "number", "channel": "string"})
    workspace.store.write(WriteBatch(events=events_to_arrow(_history()),
                                     profiles=[ProfileUpdate("u1", {"name": "Kim"}, AS_OF - timedelta(days=100))]))
    return workspace


def _traits(ws: Workspace) -> dict[str, dict]:
    rows = ws.store.query("SELECT user_id, traits FROM profiles").to_pylist()
    return {r["user_id"]: orjson.loads(r["traits"]) for r in rows}


def test_rfm_scores_ties_and_tiers(shop: Workspace) -> None:
    run = compute_traits(shop.store, load_trait_config(), as_of=AS_OF, names=["rfm"], publish=True)
    assert run.status == "ok" and run.families == ["rfm"]
    t = _traits(shop)
    assert t["u1"]["name"] == "Kim"  # identify traits are kept
    assert (t["u1"]["rfm_recency_days"], t["u1"]["rfm_frequency"], t["u1"]["rfm_monetary"]) == (10, 4, 40000)
    # six buyers; percent_rank = (rank - 1) / 5, score = 1 + floor(5 x percent_rank), capped at 5.
    # recency (most recent best): u7 50d, u9 25d, u4 15d, u1 10d, u2 = u3 5d (tie) -> 1, 2, 3, 4, 5, 5
    # frequency: u2 = u3 = u7 one order (tie, rank 1) -> 1; u9 2 (rank 4) -> 4; u4 3 -> 5; u1 4 -> 5
    # monetary: u9 2k, u7 5k, u1 40k, u2 = u3 50k, u4 60k -> 1, 2, 3, 4, 4, 5
    scores = {u: (t[u]["rfm_r_score"], t[u]["rfm_f_score"], t[u]["rfm_m_score"])
              for u in ("u1", "u2", "u3", "u4", "u7", "u9")}
    assert scores == {"u1": (4, 5, 3), "u2": (5, 1, 4), "u3": (5, 1, 4), "u4": (3, 5, 5), "u7": (1, 1, 2),
                      "u9": (2, 4, 1)}
    assert t["u1"]["rfm_segment"] == "453" and t["u1"]["rfm_score"] == 12
    assert {u: t[u]["rfm_tier"] for u in scores} == {"u1": "platinum", "u2": "platinum", "u3": "platinum",
                                                     "u4": "VIP", "u7": "silver", "u9": "gold"}
    assert "rfm_tier" not in t["u5"]  # no purchase, no tier


def test_rfm_is_deterministic_and_threshold_method(shop: Workspace) -> None:
    cfg = load_trait_config()
    compute_traits(shop.store, cfg, as_of=AS_OF, names=["rfm"], publish=True)
    first = _traits(shop)
    compute_traits(shop.store, cfg, as_of=AS_OF, names=["rfm"], publish=True)
    assert _traits(shop) == first
    cfg = load_trait_config(override={"rfm": {"method": "thresholds", "tiers": [
        {"name": "big", "when": {"rfm_monetary": {"ge": 50000}, "rfm_f_score": {"ge": 2}}}], "default_tier": "small"}})
    compute_traits(shop.store, cfg, as_of=AS_OF, names=["rfm"], publish=True)
    t = _traits(shop)
    # recency cut-offs 180/90/30/7 days: u2 5d passes all four -> 5; u7 50d passes 180 and 90 -> 3
    assert t["u2"]["rfm_r_score"] == 5 and t["u7"]["rfm_r_score"] == 3
    assert t["u4"]["rfm_f_score"] == 3  # 3 orders pass 2 and 3
    assert t["u4"]["rfm_tier"] == "big" and t["u2"]["rfm_tier"] == "small"  # u2: one order, f score 1


def test_lifecycle_stages(shop: Workspace) -> None:
    compute_traits(shop.store, load_trait_config(), as_of=AS_OF, names=["lifecycle"], publish=True)
    t = _traits(shop)
    stages = {u: t[u].get("lifecycle_stage") for u in t}
    assert stages == {"u1": "loyal", "u2": "first_time_buyer", "u3": "first_time_buyer", "u4": "reactivated",
                      "u5": "dormant", "u6": "new", "u7": "at_risk", "u8": "active", "u9": "repeat",
                      "u10": "active", "u11": "active"}  # u11 bought items but completed no order
    assert t["u3"]["days_since_last_activity"] == 5  # the message we sent on day -1 is not activity
    assert t["u4"]["reactivated_at"].startswith("2026-05-12")


def test_purchase_cycle(shop: Workspace) -> None:
    compute_traits(shop.store, load_trait_config(), as_of=AS_OF, names=["purchase_cycle"], publish=True)
    t = _traits(shop)
    u1 = t["u1"]
    assert (u1["purchase_median_gap_days"], u1["purchase_gap_cv"], u1["purchase_regularity"]) == (30, 0, "regular")
    assert u1["next_purchase_expected_at"].startswith("2026-06-21") and u1["purchase_overdue"] is False
    # u4: gaps 10 and 175 -> median 92.5, cv 82.5 / 92.5
    assert t["u4"]["purchase_median_gap_days"] == 92.5
    assert t["u4"]["purchase_gap_cv"] == pytest.approx(82.5 / 92.5) and t["u4"]["purchase_regularity"] == "irregular"
    # u9: two orders 15 days apart, last 25 days ago > 15 x 1.5 -> overdue; too few for regularity
    assert t["u9"]["purchase_overdue"] is True and "purchase_regularity" not in t["u9"]
    assert "purchase_median_gap_days" not in t["u2"]  # one order: no cycle
    # u11's most re-bought category: 식품 on 3 days (생활용품 on 2), gaps 10 and 10, last 30 days ago > 10 x 1.5
    u11 = t["u11"]
    assert (u11["cycle_category"], u11["cycle_category_gap_days"], u11["cycle_category_overdue"]) == ("식품", 10, True)
    assert u11["cycle_category_next_expected_at"].startswith("2026-05-12")
    assert "cycle_category" not in t["u1"]  # one item purchase: no category cycle


def test_churn_risk(shop: Workspace) -> None:
    compute_traits(shop.store, load_trait_config(), as_of=AS_OF, names=["churn"], publish=True)
    t = _traits(shop)
    assert t["u5"]["churn_risk"] == "high" and t["u5"]["visit_gap_ratio"] == pytest.approx(4.0)  # 120 / 30 window
    u10 = t["u10"]
    assert (u10["visit_median_gap_days"], u10["visits_last_window"], u10["visits_prev_window"]) == (5, 1, 5)
    assert u10["activity_trend"] == pytest.approx(-0.8) and u10["churn_risk"] == "medium"
    assert t["u8"]["visit_gap_ratio"] == pytest.approx(0.5) and t["u8"]["churn_risk"] == "low"
    assert "churn_risk" not in t["u2"]  # never visited


def test_channels_categories_sentiment(shop: Workspace) -> None:
    compute_traits(shop.store, load_trait_config(), as_of=AS_OF, names=["channels", "categories", "sentiment"],
                   publish=True)
    t = _traits(shop)
    assert t["u1"]["preferred_channel"] == "email" and t["u1"]["preferred_channel_rate"] == 1.0  # sms: too few sent
    assert t["u2"]["preferred_channel"] == "kakao"  # tie on rate and volume: by name
    assert "preferred_channel" not in t["u10"]  # never engaged: no preference
    assert t["u1"]["top_categories"] == ["식품", "뷰티"] and t["u1"]["top_category"] == "식품"  # 1 + 3 vs 3 views
    assert (t["u1"]["nps_score"], t["u1"]["nps_category"]) == (9, "promoter")  # the latest answer
    assert (t["u1"]["avg_rating"], t["u1"]["review_count"]) == (4.5, 2)
    assert t["u2"]["nps_category"] == "passive" and t["u3"]["nps_category"] == "detractor"


def test_as_of_in_the_past_keeps_profiles_and_records_history(shop: Workspace) -> None:
    compute_traits(shop.store, load_trait_config(), as_of=AS_OF, names=["lifecycle", "rfm"], publish=True)
    past = AS_OF - timedelta(days=30)
    run = compute_traits(shop.store, load_trait_config(), as_of=past, names=["lifecycle", "rfm"])
    assert run.published is False
    assert _traits(shop)["u4"]["lifecycle_stage"] == "reactivated"  # unchanged
    hist = shop.store.query("SELECT user_id, name, value FROM computed_traits WHERE run_id = ?",
                            [run.run_id]).to_pylist()
    vals = {(h["user_id"], h["name"]): orjson.loads(h["value"]) for h in hist}
    assert vals[("u4", "lifecycle_stage")] == "dormant"  # 30 days ago: last seen 160 days before
    assert ("u2", "rfm_frequency") not in vals  # u2 had not bought yet
    assert vals[("u1", "rfm_frequency")] == 3
    info = user_traits(shop.store, "u4")
    assert info["traits"]["lifecycle_stage"] == "reactivated"
    assert {h["value"] for h in info["history"] if h["name"] == "lifecycle_stage"} == {"reactivated", "dormant"}
    runs = shop.store.query("SELECT status, rows FROM trait_runs ORDER BY run_id").to_pylist()
    assert [r["status"] for r in runs] == ["ok", "ok"] and all(r["rows"] > 0 for r in runs)


def test_stale_values_are_removed_when_recomputed(shop: Workspace) -> None:
    compute_traits(shop.store, load_trait_config(), as_of=AS_OF, names=["rfm"], publish=True)
    compute_traits(shop.store, load_trait_config(), as_of=AS_OF - timedelta(days=30), names=["rfm"], publish=True)
    assert "rfm_tier" not in _traits(shop)["u2"]  # no purchase yet at that time


def test_history_keeps_the_last_runs(shop: Workspace) -> None:
    cfg = load_trait_config(override={"history": {"keep_runs": 2}})
    ids = [compute_traits(shop.store, cfg, as_of=AS_OF - timedelta(days=d), names=["sentiment"]).run_id
           for d in (2, 1, 0)]
    kept = shop.store.query("SELECT DISTINCT run_id FROM computed_traits ORDER BY run_id").to_pylist()
    assert [r["run_id"] for r in kept] == ids[1:]
    assert len(shop.store.query("SELECT * FROM trait_runs").to_pylist()) == 3


def test_bad_rules_and_names_are_clear_errors(shop: Workspace, tmp_path: Path) -> None:
    cfg = load_trait_config(override={"rfm": {"tiers": [{"name": "x", "when": {"nope": {"ge": 1}}}]}})
    with pytest.raises(InvalidInput, match=r"rfm.tiers\[0\].when: unknown field 'nope'"):
        compute_traits(shop.store, cfg, as_of=AS_OF, names=["rfm"])
    assert shop.store.query("SELECT status FROM trait_runs").to_pylist()[-1]["status"] == "failed"
    with pytest.raises(InvalidInput, match="unknown operator"):
        load_trait_config(override={"rfm": {"tiers": [{"name": "x", "when": {"rfm_score": {">=": 1}}}]}})
    (tmp_path / "traits.yaml").write_text("churn:\n  window_days: -3\n")
    with pytest.raises(InvalidInput, match=r"traits.yaml: churn.window_days"):
        load_trait_config(tmp_path)
    with pytest.raises(NotFound, match="no trait or trait family 'bogus'"):
        compute_traits(shop.store, load_trait_config(), names=["bogus"])


def test_cdnow_bgnbd_parameters_match_published() -> None:
    from lifetimes.datasets import load_cdnow_summary

    d = load_cdnow_summary(index_col=[0])
    p = fit_bgnbd(d["frequency"], d["recency"], d["T"], 0.0).params_
    assert p["r"] == pytest.approx(0.243, abs=0.001) and p["alpha"] == pytest.approx(4.414, abs=0.002)
    assert p["a"] == pytest.approx(0.793, abs=0.001) and p["b"] == pytest.approx(2.426, abs=0.002)


def test_cdnow_gamma_gamma_on_scaled_values_matches_published() -> None:
    from lifetimes.datasets import load_cdnow_summary_data_with_monetary_value

    d = load_cdnow_summary_data_with_monetary_value()
    d = d[d["frequency"] > 0]
    ggf, scale = fit_gamma_gamma(d["frequency"], d["monetary_value"], 0.0)
    p = ggf.params_  # Fader, Hardie & Lee (2005) "RFM and CLV": p = 6.25, q = 3.74, gamma (v) = 15.44
    assert p["p"] == pytest.approx(6.25, abs=0.02) and p["q"] == pytest.approx(3.74, abs=0.02)
    assert p["v"] * scale == pytest.approx(15.44, abs=0.05)


def test_clv_predictions_on_a_population(workspace: Workspace) -> None:
    rng = random.Random(7)
    events = []
    for i in range(300):
        start = -rng.uniform(100, 360)
        day, rate = start, rng.uniform(0.005, 0.08)
        while day < 0:
            events.append(_ev(f"c{i}", "order_completed", round(day, 3), revenue=rng.choice([15000, 30000, 60000])))
            day += rng.expovariate(rate)
            if rng.random() < 0.15:
                break
    workspace.store.write(WriteBatch(events=events_to_arrow(events)))
    run = compute_traits(workspace.store, load_trait_config(), as_of=AS_OF, names=["clv"], publish=True)
    assert run.notes["clv"]["note"] is None and set(run.notes["clv"]["bgnbd"]) == {"r", "alpha", "a", "b"}
    t = _traits(workspace)
    assert all(0 <= v["clv_p_alive"] <= 1 and v["clv_365d"] >= v["clv_90d"] >= 0 for v in t.values())
    assert {v["clv_tier"] for v in t.values()} == {"high", "medium", "low"}
    assert sum(v["revenue_total"] for v in t.values()) == sum(orjson.loads(orjson.dumps(e["properties"]))["revenue"]
                                                             for e in events)


def test_clv_skips_predictions_with_few_buyers(shop: Workspace) -> None:
    run = compute_traits(shop.store, load_trait_config(), as_of=AS_OF, names=["clv_90d"], publish=True)
    assert "fewer than clv.min_customers" in run.notes["clv"]["note"]
    t = _traits(shop)
    assert t["u1"]["revenue_total"] == 40000 and "clv_90d" not in t["u1"]


def test_cli_list_compute_show(shop: Workspace) -> None:
    shop.close()
    runner = CliRunner()
    base = ["--workspace", str(shop.path), "traits"]
    res = runner.invoke(app, [*base, "list", "--json"])
    assert res.exit_code == 0, res.output
    assert {"name": "rfm_tier", "family": "rfm"}.items() <= json.loads(res.output)[8].items()
    res = runner.invoke(app, [*base, "compute", "--as-of", "2026-06-01", "--publish", "lifecycle", "rfm_tier"])
    assert res.exit_code == 0, res.output
    assert "lifecycle" in res.output and "rfm" in res.output
    res = runner.invoke(app, [*base, "show", "u4", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["traits"]["lifecycle_stage"] == "reactivated"
    res = runner.invoke(app, [*base, "compute", "nope"])
    assert res.exit_code == 2 and "no trait or trait family 'nope'" in res.output
    res = runner.invoke(app, [*base, "compute", "--as-of", "yesterday-ish"])
    assert res.exit_code == 2 and "--as-of" in res.output


def test_api_through_a_running_server(shop: Workspace) -> None:
    shop.close()
    server = Server(shop.path, shop.config.admin_token).start()
    base = server.url
    try:
        auth = {"Authorization": f"Bearer {shop.config.admin_token}"}
        assert httpx.get(base + "/api/traits").status_code == 401
        res = httpx.post(base + "/api/traits/compute", params={"name": ["lifecycle", "sentiment"],
                                                              "as_of": "2026-06-01T00:00:00Z", "publish": "true"},
                         headers=auth, timeout=60)
        assert res.status_code == 200, res.text
        assert res.json()["families"] == ["lifecycle", "sentiment"] and res.json()["published"] is True
        listed = httpx.get(base + "/api/traits", headers=auth).json()
        assert len(listed["traits"]) > 30 and listed["runs"][0]["status"] == "ok"
        user = httpx.get(base + "/api/users/u1/traits", headers=auth).json()
        assert user["traits"]["lifecycle_stage"] == "loyal" and user["traits"]["nps_category"] == "promoter"
        shown = CliRunner().invoke(app, ["-w", str(shop.path), "traits", "show", "u1", "--json"])
        assert shown.exit_code == 0 and json.loads(shown.output)["traits"]["avg_rating"] == 4.5
        missing = httpx.get(base + "/api/users/nobody/traits", headers=auth)
        assert missing.status_code == 404 and missing.json()["where"] == "user_id"
        bad = httpx.post(base + "/api/traits/compute", params={"name": "bogus"}, headers=auth)
        assert bad.status_code == 404 and "bogus" in bad.json()["message"]
    finally:
        server.stop()


def test_json_properties_without_typed_columns_give_the_same_values(workspace: Workspace) -> None:
    workspace.store.write(WriteBatch(events=events_to_arrow(_history())))
    assert workspace.store.property_columns() == {}
    compute_traits(workspace.store, load_trait_config(), as_of=AS_OF, names=["rfm", "channels"], publish=True)
    t = _traits(workspace)
    assert t["u1"]["rfm_monetary"] == 40000 and t["u4"]["rfm_tier"] == "VIP"
    assert t["u1"]["preferred_channel"] == "email"


def test_workspace_traits_yaml_overrides_rules(shop: Workspace) -> None:
    (shop.path / "traits.yaml").write_text(
        "lifecycle:\n  stages:\n    - name: sleeping\n      when: {days_since_last_activity: {gt: 100}}\n"
        "  default_stage: awake\n", encoding="utf-8")
    shop.close()
    res = CliRunner().invoke(app, ["-w", str(shop.path), "traits", "compute", "--as-of", "2026-06-01T00:00:00",
                                   "--publish", "lifecycle"])
    assert res.exit_code == 0, res.output
    ws = Workspace(shop.path)
    try:
        stages = {u: v.get("lifecycle_stage") for u, v in _traits(ws).items()}
    finally:
        ws.close()
    assert stages["u5"] == "sleeping" and stages["u1"] == "awake" and set(stages.values()) == {"sleeping", "awake"}


def test_empty_store_computes_every_family(workspace: Workspace) -> None:
    run = compute_traits(workspace.store, load_trait_config())
    assert run.status == "ok" and run.rows == 0 and run.published is True
    assert "fewer than clv.min_customers" in run.notes["clv"]["note"]


def test_demo_shop_gets_consistent_traits(tmp_path: Path) -> None:
    from segmint.demo.generate import DemoSpec
    from segmint.demo.load import build_demo

    now = datetime(2026, 11, 25)
    ws, _ = build_demo(tmp_path / "demo", DemoSpec(users=800, days=90, seed=5, now=now), progress=False)
    try:
        run = compute_traits(ws.store, load_trait_config(ws.path), as_of=now, publish=True)
        assert run.status == "ok" and run.notes["clv"]["note"] is None
        t = _traits(ws)
        orders = {r["user_id"]: r["n"] for r in ws.store.query(
            "SELECT user_id, count(*) AS n FROM events WHERE event = 'order_completed' GROUP BY user_id").to_pylist()}
        assert orders and all(t[u]["rfm_frequency"] == n and "rfm_tier" in t[u] for u, n in orders.items())
        assert all("rfm_tier" not in v for u, v in t.items() if u not in orders)
        stages = {v["lifecycle_stage"] for v in t.values() if "lifecycle_stage" in v}
        assert stages <= {"new", "active", "first_time_buyer", "repeat", "loyal", "at_risk", "dormant", "reactivated"}
        assert {"loyal", "first_time_buyer"} <= stages
        assert all(t[u]["lifecycle_stage"] == "first_time_buyer" for u, n in orders.items()
                   if n == 1 and t[u]["days_since_last_activity"] <= 30 and "reactivated_at" not in t[u])
        assert {v.get("preferred_channel") for v in t.values()} - {None} <= {"push", "email", "sms", "kakao", "in_app"}
    finally:
        ws.close()
