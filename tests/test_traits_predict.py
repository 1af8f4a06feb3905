"""Predictive traits (metrics, features and labels as of a time, training on a demo shop against a recency
baseline, versions, scores in profiles), trait seed segments and the catalog, the public trait write."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import orjson
import pytest
from typer.testing import CliRunner

from segmint.cli import app
from segmint.errors import InvalidInput, NotFound
from segmint.segments import saved
from segmint.segments.errors import SegmentSyntaxError
from segmint.segments.evaluate import evaluate
from segmint.store.base import TraitWrite, WriteBatch
from segmint.store.schema import events_to_arrow
from segmint.traits import compute_traits, load_trait_config
from segmint.traits import predict as P
from segmint.traits.runner import runs, train
from segmint.workspace import Workspace

ROOT = Path(__file__).resolve().parents[1]
NOW = datetime(2026, 11, 25)
T = datetime(2026, 6, 1)


def _ev(user: str, event: str, day: float, **props: object) -> dict:
    ts = T + timedelta(days=day)
    return {"message_id": f"{user}-{event}-{day}", "type": "track", "event": event, "user_id": user, "ts": ts,
            "received_at": ts, "properties": props, "source": "import"}


def test_auc_brier_and_reliability_by_hand() -> None:
    y = np.array([0, 0, 1, 1])
    # pairs (pos, neg): (0.35 > 0.1) yes, (0.35 > 0.4) no, 0.8 beats both -> 3 of 4
    assert P.auc(y, np.array([0.1, 0.4, 0.35, 0.8])) == 0.75
    assert P.auc(y, np.array([0.5, 0.5, 0.5, 0.5])) == 0.5  # ties count half
    assert np.isnan(P.auc(np.array([1, 1]), np.array([0.2, 0.3])))
    assert P.brier(y, np.array([0.0, 0.5, 0.5, 1.0])) == pytest.approx((0 + 0.25 + 0.25 + 0) / 4)
    p = np.arange(20) / 20
    table = P.reliability((p >= 0.5).astype(int), p)
    assert [r["n"] for r in table] == [2] * 10
    assert [r["observed_rate"] for r in table] == [0.0] * 5 + [1.0] * 5
    assert table[0]["mean_predicted"] == pytest.approx(0.025) and table[-1]["max_predicted"] == 0.95


def test_features_and_labels_as_of_a_time(workspace: Workspace) -> None:
    e = [_ev("a", "app_opened", d) for d in (-40, -20, -5, -1)] + [_ev("a", "order_completed", -1, revenue=9000)]
    e += [_ev("a", "app_opened", 3), _ev("a", "order_completed", 10, revenue=5000)]  # after t: labels only
    e += [_ev("b", "app_opened", d) for d in (-60, -50)] + [_ev("b", "message_sent", -2, channel="push")]
    e += [_ev("c", "app_opened", -200)]  # outside the 90-day population
    e += [_ev("d", "app_opened", -3), _ev("d", "app_opened", 40)]  # back only after the 30-day horizon
    workspace.store.write(WriteBatch(events=events_to_arrow(e)))
    cfg = load_trait_config()
    frame = P.feature_frame(workspace.store, cfg, T, ["app_opened", "order_completed"])
    assert sorted(frame.index) == ["a", "b", "d"]
    a, b = frame.loc["a"], frame.loc["b"]
    assert (a["events_7d"], a["events_30d"], a["events_90d"], a["active_days_30d"]) == (3, 4, 5, 3)
    assert (a["n30_app_opened"], a["n30_order_completed"], a["purchases_30d"]) == (3, 1, 1)
    assert a["tenure_days"] == 40 and a["rfm_frequency"] == 1 and a["rfm_monetary"] == 9000  # nothing after t
    assert a["active_day_mean_gap"] == pytest.approx(39 / 3)  # 4 active days over 39 days
    assert a["activity_gap_ratio"] == pytest.approx(1 / 13)
    assert a["lifecycle_stage"] == "first_time_buyer"
    assert b["days_since_last_activity"] == 50 and b["messages_sent_30d"] == 1 and b["events_30d"] == 0
    lab = P.labels(workspace.store, cfg, T, 30)
    churn = P.labelled(frame, lab, "churn").to_dict()
    buy = P.labelled(frame, lab, "purchase").to_dict()
    assert churn == {"a": 0, "b": 1, "d": 1} and buy == {"a": 1, "b": 0, "d": 0}


def test_cut_times_and_too_little_history() -> None:
    cfg = load_trait_config()
    cuts, holdout = P.cut_times(NOW, NOW - timedelta(days=200), 30, cfg)
    assert holdout == NOW - timedelta(days=30)
    # training label windows end by the holdout cut: newest training cut = holdout - horizon, then every 7 days
    assert cuts == [holdout - timedelta(days=30 + 7 * i) for i in (4, 3, 2, 1, 0)]
    with pytest.raises(InvalidInput, match=r"not enough history to train a 30-day model: 50 days of events, need "
                                           r"at least 74"):
        P.cut_times(NOW, NOW - timedelta(days=50), 30, cfg)


def test_features_a_short_history_cannot_support_are_left_out(workspace: Workspace) -> None:
    """Training cuts with 16 days of history (a 90-day shop, 30-day horizon) see 90-day counts, 30-vs-30-day
    trends, tenure and totals truncated: those features are left out; 180-day shops keep everything."""
    e = [_ev(u, "signed_up", -d) for u, d in (("a", 50), ("b", 20), ("c", 5))]
    e += [_ev(u, "app_opened", -d) for u, d in (("a", 50), ("a", 10), ("a", 1), ("b", 20), ("b", 2), ("c", 5))]
    workspace.store.write(WriteBatch(events=events_to_arrow(e)))
    cfg = load_trait_config()
    events = ["app_opened", "signed_up"]
    once = P.once_per_user_events(workspace.store, cfg, T, events)
    assert once == ["signed_up"]  # a sign-up count dates the user: a lifetime feature, not recent activity
    cols = ["days_since_last_activity", "events_7d", "events_30d", "events_90d", "activity_trend", "churn_risk",
            "tenure_days", "rfm_frequency", "clv_90d", "lifecycle_stage", "n30_app_opened", "n30_signed_up",
            "visit_gap_ratio", "nps_score"]
    keep, dropped = P.supported_features(cols, 16.0, cfg, events, once)
    assert keep == ["days_since_last_activity", "events_7d", "events_30d", "n30_app_opened", "visit_gap_ratio",
                    "nps_score"]
    assert set(dropped) == set(cols) - set(keep)
    assert dropped["events_90d"] == ("looks back 90 days; the earliest training cut has 16 days of history, "
                                     "needs 45")
    assert dropped["tenure_days"].startswith("looks back over the whole history")
    assert P.supported_features(cols, 92.0, cfg, events, once) == (cols, {})
    strict = load_trait_config(override={"predict": {"min_window_coverage": 1.0}})
    assert P.supported_features(cols, 16.0, strict, events, once)[0] == ["days_since_last_activity", "events_7d",
                                                                           "visit_gap_ratio", "nps_score"]


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A demo shop (2,000 users x 180 days) with every trait computed and churn / purchase models trained."""
    from segmint.demo.generate import DemoSpec
    from segmint.demo.load import build_demo

    path = tmp_path_factory.mktemp("predict") / "shop"
    ws, _ = build_demo(path, DemoSpec(users=2000, days=180, seed=42, now=NOW), progress=False)
    try:
        cfg = load_trait_config(ws.path)
        compute_traits(ws.store, cfg, as_of=NOW, publish=True, workspace_path=ws.path)
        train(ws.store, cfg, ws.path, horizon=30)
    finally:
        ws.close()
    return path


def _profiles(ws: Workspace) -> dict[str, dict]:
    return {r["user_id"]: orjson.loads(r["traits"])
            for r in ws.store.query("SELECT user_id, traits FROM profiles").to_pylist()}


def test_models_beat_the_recency_baseline_on_the_demo_shop(shop: Path) -> None:
    models = {m["name"]: m for m in P.list_models(shop)}
    assert set(models) == {"churn_30d", "purchase_30d"}
    for m in models.values():
        met = m["metrics"]
        # a clear margin: the demo's users differ in visit rate, and the model reads recency against it
        assert met["auc"] > met["baseline_auc"] + 0.02 and met["baseline_auc"] > 0.75, (m["name"], met)
        assert m["warnings"] == [] and m["dropped_features"] == {}  # 92 days of history at the first cut
        assert len(met["baseline_reliability"]) == 10
        assert set(met["baselines"]) == {"days_since_last_activity", "rfm_recency_days"}
        assert met["baseline_auc"] == max(b["auc"] for b in met["baselines"].values())
        assert met["brier"] < met["prevalence_brier"]  # better calibrated than always predicting the base rate
        rel = met["reliability"]
        assert len(rel) == 10 and sum(r["n"] for r in rel) == m["rows"]["holdout"]
        assert all(abs(r["mean_predicted"] - r["observed_rate"]) < 0.2 for r in rel)
        assert m["features"] and m["feature_importance"][0]["gain_share"] > 0.05
        assert sum(r["gain_share"] for r in m["feature_importance"]) == pytest.approx(1.0)
        assert (shop / "models" / m["name"] / "1" / "model.txt").exists()
        # time-based split: the training cuts are before the holdout cut, whose labels end at the data's end
        assert max(m["train_cuts"]) < m["holdout_cut"] and m["version"] == 1


def test_scores_are_published_and_recorded(shop: Path) -> None:
    ws = Workspace(shop)
    try:
        t = _profiles(ws)
        recorded = runs(ws.store, 5)
        since = recorded[0]["as_of"] - timedelta(days=90)  # scoring as of now: users active within 90 days
        scored = {u: v for u, v in t.items() if "churn_probability_30d" in v}
        active = {u for u, v in t.items()
                  if "last_active_at" in v and datetime.fromisoformat(v["last_active_at"]) >= since}
        assert set(scored) == active and len(scored) > 500
        assert all(0 <= v["churn_probability_30d"] <= 1 and 0 <= v["purchase_probability_30d"] <= 1
                   for v in scored.values())
        # the scores order users sensibly: recently active users are less likely to churn
        recent = [v["churn_probability_30d"] for v in scored.values() if v["days_since_last_activity"] < 3]
        stale = [v["churn_probability_30d"] for v in scored.values() if v["days_since_last_activity"] > 45]
        assert np.mean(recent) + 0.3 < np.mean(stale)
        assert [(r["kind"], r["families"], r["status"]) for r in recorded[:2]] == [
            ("compute", ["predict"], "ok"), ("train", ["predict"], "ok")]
        assert recorded[1]["notes"]["churn_30d"]["version"] == 1 and recorded[0]["users"] == len(scored)
        hist = ws.store.query("SELECT count(*) AS n FROM computed_traits WHERE run_id = ? AND name = ?",
                              [recorded[0]["run_id"], "purchase_probability_30d"]).to_pylist()[0]["n"]
        assert hist == len(scored)
    finally:
        ws.close()


def test_trait_seed_segments_have_members_and_validate(shop: Path) -> None:
    ws = Workspace(shop)
    try:
        result = saved.apply_dir(ws, ROOT / "examples" / "segments" / "traits")
        assert result.counts()["created"] == 18
        sizes = {s.name: len(evaluate(ws.store, saved.segment_tree(ws.appdb, s.name), NOW))
                 for s in saved.list_segments(ws.appdb) if "traits" in s.labels}
        assert len(sizes) == 18 and [n for n, c in sizes.items() if c == 0] == []
        buyers = sum(1 for v in _profiles(ws).values() if "rfm_tier" in v)
        assert sum(sizes[f"RFM {t}"] for t in ("VIP", "플래티넘", "골드", "실버")) == buyers  # tiers partition buyers
        cat = saved.workspace_catalog(ws)
        assert {"rfm_tier", "lifecycle_stage", "churn_probability_30d", "clv_tier"} <= cat.traits
        with pytest.raises(SegmentSyntaxError, match=r"unknown trait 'rfm_teir' \(did you mean rfm_tier\?\)"):
            saved.parse_definition('trait rfm_teir = "VIP"', cat)
    finally:
        ws.close()


def test_computed_traits_validate_before_their_first_run(workspace: Workspace) -> None:
    workspace.store.write(WriteBatch(events=events_to_arrow([_ev("a", "app_opened", -1)])))
    cat = saved.workspace_catalog(workspace)
    assert "rfm_tier" in cat.traits and "purchase_probability_30d" in cat.traits
    _tree, text = saved.parse_definition('trait rfm_tier = "VIP" and trait churn_probability_30d > 0.5', cat)
    assert "rfm_tier" in text
    (workspace.path / "models" / "churn_14d").mkdir(parents=True)  # another horizon's model adds its trait
    assert "churn_probability_14d" in saved.workspace_catalog(workspace).traits


def test_cli_train_models_runs_and_versions(shop: Path) -> None:
    runner = CliRunner()
    base = ["-w", str(shop), "traits"]
    # the workspace's settings apply: fewer rounds, one training cut, populations sampled to 500 users per cut
    (shop / "traits.yaml").write_text("predict:\n  rounds: 20\n  train_cuts: 1\n  max_rows_per_cut: 500\n")
    res = runner.invoke(app, [*base, "train", "--horizon", "30", "--top", "5"])
    assert res.exit_code == 0, res.output
    assert "churn_30d v2" in res.output and "purchase_30d v2" in res.output
    assert "recency-only baseline" in res.output and "Brier" in res.output and "calibration" in res.output
    res = runner.invoke(app, [*base, "models", "--json"])
    rows = json.loads(res.output)
    assert [(m["name"], m["version"]) for m in rows] == [("churn_30d", 2), ("churn_30d", 1), ("purchase_30d", 2),
                                                         ("purchase_30d", 1)]
    assert rows[0]["params"]["rounds"] == 20 and len(rows[0]["train_cuts"]) == 1 and rows[1]["params"]["rounds"] == 150
    assert rows[0]["rows"] == {"train": 500, "holdout": 500, "final": 1000} and rows[1]["rows"]["holdout"] > 500
    res = runner.invoke(app, [*base, "models", "churn_30d", "--version", "1"])
    assert res.exit_code == 0 and "churn_30d v1" in res.output
    res = runner.invoke(app, [*base, "models", "churn_90d"])
    assert res.exit_code == 2 and "no model 'churn_90d'" in res.output
    res = runner.invoke(app, [*base, "runs", "--json", "-n", "3"])
    out = json.loads(res.output)
    assert [r["kind"] for r in out["runs"]] == ["compute", "train", "compute"]
    assert out["runs"][1]["trigger"] == "cli"
    assert {r["name"]: r["schedule"] for r in out["schedule"]["families"]}["churn"] == "every 1h"
    res = runner.invoke(app, [*base, "train", "--horizon", "100"])
    assert res.exit_code == 2 and "not enough history to train a 100-day model" in res.output
    res = runner.invoke(app, [*base, "runs"])
    assert res.exit_code == 0 and "failed" in res.output and "not enough history" in res.output


def test_scoring_without_a_model_says_so(workspace: Workspace) -> None:
    workspace.store.write(WriteBatch(events=events_to_arrow([_ev("a", "app_opened", -1)])))
    run = compute_traits(workspace.store, load_trait_config(), names=["churn_probability_30d"],
                         workspace_path=workspace.path)
    assert run.families == ["predict"] and "no trained model" in run.notes["predict"]["note"]
    assert run.status == "ok" and run.rows == 0
    with pytest.raises(NotFound, match="no model 'churn_30d'"):
        P.get_model(workspace.path, "churn_30d")


def test_duckdb_write_traits_is_one_transaction(workspace: Workspace) -> None:
    import pyarrow as pa

    workspace.store.write(WriteBatch(events=events_to_arrow([_ev("a", "app_opened", -1), _ev("b", "app_opened", -2)])))
    run = {"run_id": 1, "started_at": T, "finished_at": T, "as_of": T, "families": ["x"], "status": "ok"}
    table = pa.table({"user_id": ["a"], "score x": [0.5]})  # any name: quoted, never pasted
    assert workspace.store.write_traits(TraitWrite(run, [table], publish=True)) == 1
    t = _profiles(workspace)
    assert t["a"]["score x"] == 0.5 and "score x" not in t["b"]
    bad = pa.table({"user_id": ["a"], 'evil"name': [1]})
    with pytest.raises(InvalidInput, match="quote"):
        workspace.store.write_traits(TraitWrite({**run, "run_id": 2}, [bad], publish=True))
    assert [r["run_id"] for r in runs(workspace.store)] == [1]  # the failed write left no run record


_CH_SCRIPT = r"""
import sys, orjson, pyarrow as pa
from datetime import datetime
from segmint.store.base import TraitWrite, WriteBatch, ProfileUpdate
from segmint.store.clickhouse import ClickHouseEventStore
s = ClickHouseEventStore(sys.argv[1], database="traits")
t = datetime(2026, 6, 1)
s.write(WriteBatch(profiles=[ProfileUpdate("a", {"name": "Kim", "rfm_tier": "gold"}, t),
                             ProfileUpdate("b", {"rfm_tier": "VIP"}, t)]))
run = {"run_id": 1, "started_at": t, "finished_at": None, "as_of": t, "families": ["rfm"], "status": "running"}
s.write_traits(TraitWrite(run))
table = pa.table({"user_id": ["a"], "rfm_tier": ["silver"], "rfm_score": [float("nan")],
                  "last": [datetime(2026, 5, 1)]})
n = s.write_traits(TraitWrite({**run, "status": "ok", "finished_at": t}, [table], publish=True, keep_runs=5))
prof = {r["user_id"]: orjson.loads(r["traits"]) for r in s.query("SELECT user_id, traits FROM profiles").to_pylist()}
runs = s.query("SELECT run_id, status FROM trait_runs FINAL").to_pylist()
hist = s.query("SELECT user_id, name, value FROM computed_traits ORDER BY name").to_pylist()
print(orjson.dumps({"n": n, "prof": prof, "runs": runs, "hist": hist}).decode())
"""


def test_clickhouse_write_traits(tmp_path: Path) -> None:
    """In a child process: chDB allows one data path per process (another test module holds one)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    res = subprocess.run([sys.executable, "-c", _CH_SCRIPT, str(tmp_path / "ch")], env=env, capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["n"] == 2 and out["runs"] == [{"run_id": 1, "status": "ok"}]
    # published: a gets the new values (NaN is no value), b loses its stale tier; other traits are kept
    assert out["prof"] == {"a": {"name": "Kim", "rfm_tier": "silver", "last": "2026-05-01 00:00:00"},
                           "b": {}}
    assert [(h["name"], h["value"]) for h in out["hist"]] == [("last", '"2026-05-01 00:00:00"'),
                                                              ("rfm_tier", '"silver"')]
