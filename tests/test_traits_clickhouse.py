"""Computed traits on a ClickHouse (chDB) store: the same values as on DuckDB from the same events."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pytest

from chdb_util import process_chdb_path
from segmint.store.base import ProfileUpdate, WriteBatch
from segmint.store.clickhouse import ClickHouseEventStore
from segmint.store.schema import events_to_arrow
from segmint.traits import compute_traits, load_trait_config, user_traits
from segmint.traits import families as fam
from segmint.traits.catalog import FAMILIES
from segmint.traits.predict import labels, top_events, window_features
from segmint.traits.runner import compute_family, runs
from segmint.traits.sql import Query
from segmint.workspace import Workspace
from test_traits import AS_OF, _history

ROOT = Path(__file__).resolve().parents[1]
NOW = datetime(2026, 11, 25)
SQL_FAMILIES = [f for f in FAMILIES if f != "predict"]


def _same(a: Any, b: Any) -> bool:
    """Equal values; floats to 1e-9 relative (NaN equals NaN); lists element by element."""
    if isinstance(a, float) or isinstance(b, float):
        if a is None or b is None:
            return a is b
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return a == b and type(a) is type(b)


def _assert_tables_equal(what: str, duck: pa.Table, ch: pa.Table) -> None:
    assert duck.column_names == ch.column_names, what
    assert [f.type for f in duck.schema] == [f.type for f in ch.schema], (what, duck.schema, ch.schema)
    a, b = duck.sort_by("user_id").to_pylist(), ch.sort_by("user_id").to_pylist()
    assert [r["user_id"] for r in a] == [r["user_id"] for r in b], what
    bad = [(x["user_id"], k, x[k], y[k]) for x, y in zip(a, b, strict=True) for k in x if not _same(x[k], y[k])]
    assert not bad, f"{what}: {bad[:5]}"


@pytest.fixture(scope="module")
def engines(tmp_path_factory: pytest.TempPathFactory) -> tuple[Workspace, ClickHouseEventStore]:
    """A demo shop (300 users x 90 days) plus the hand-made histories in DuckDB, and a chDB copy of it."""
    from segmint.demo.generate import DemoSpec
    from segmint.demo.load import build_demo

    ws, _ = build_demo(tmp_path_factory.mktemp("engines") / "shop", DemoSpec(users=300, days=90, seed=7, now=NOW),
                       progress=False)
    moved = [{**e, "ts": e["ts"] + (NOW - AS_OF), "received_at": e["received_at"] + (NOW - AS_OF)}
             for e in _history()]  # the hand-made users, as of the shop's now
    ws.store.ensure_property_columns({"channel": "string"})
    ws.store.write(WriteBatch(events=events_to_arrow(moved),
                              profiles=[ProfileUpdate("u1", {"name": "Kim"}, NOW - timedelta(days=100))]))
    ch = ClickHouseEventStore(process_chdb_path(), database="traits_engines")  # chDB: one data path per process
    ch.copy_from(ws.store)
    yield ws, ch
    ws.close()


@pytest.mark.parametrize("family", SQL_FAMILIES)
def test_each_family_gives_the_same_values_on_both_engines(engines, family: str) -> None:
    ws, ch = engines
    cfg = load_trait_config(ws.path)
    duck, note_d = compute_family(ws.store, cfg, family, NOW)
    click, note_c = compute_family(ch, cfg, family, NOW)
    assert duck.num_rows > 2
    _assert_tables_equal(family, duck, click)
    if family == "clv":  # the same summary in, so the same fitted parameters out
        assert note_d["note"] is None and note_d["bgnbd"] and note_d["gamma_gamma"]
        for model in ("bgnbd", "gamma_gamma"):
            assert note_d[model].keys() == note_c[model].keys()
            assert all(math.isclose(note_d[model][k], note_c[model][k], rel_tol=1e-6) for k in note_d[model])


def test_json_properties_and_past_as_of_give_the_same_values(engines) -> None:
    """Properties read from the JSON instead of the typed columns, as of a past time, on both engines."""
    ws, ch = engines
    cfg = load_trait_config(ws.path)
    past = NOW - timedelta(days=37, hours=5)

    def untyped(store: Any) -> Query:
        q = Query(store, past)
        q.typed = {}  # as on a store without typed property columns
        return q

    for family in ("rfm", "purchase_cycle", "channels", "categories", "sentiment"):
        fn = getattr(fam, family)
        duck = fn(untyped(ws.store), cfg)
        assert duck.equals(compute_family(ws.store, cfg, family, past)[0])  # typed or not: same values
        _assert_tables_equal(f"{family} from JSON as of {past}", duck, fn(untyped(ch), cfg))


def test_prediction_features_and_labels_are_the_same(engines) -> None:
    ws, ch = engines
    cfg = load_trait_config(ws.path)
    cut = NOW - timedelta(days=30)
    events = top_events(ws.store, cfg, cut, 6)
    assert events == top_events(ch, cfg, cut, 6) and len(events) == 6
    _assert_tables_equal("window features", window_features(Query(ws.store, cut), cfg, events),
                         window_features(Query(ch, cut), cfg, events))
    d, c = labels(ws.store, cfg, cut, 30).sort_index(), labels(ch, cfg, cut, 30).sort_index()
    assert len(d) > 50 and d.equals(c)


def test_full_compute_publishes_the_same_traits(engines) -> None:
    """compute_traits end to end: run records, history rows and profiles.traits agree between the engines."""
    ws, ch = engines
    cfg = load_trait_config(ws.path)
    run_d = compute_traits(ws.store, cfg, as_of=NOW, publish=True, names=SQL_FAMILIES)
    run_c = compute_traits(ch, cfg, as_of=NOW, publish=True, names=SQL_FAMILIES)
    assert (run_d.status, run_d.users, run_d.rows) == (run_c.status, run_c.users, run_c.rows)
    assert run_c.rows > 1000
    assert runs(ch, 1)[0]["run_id"] == run_c.run_id and runs(ch, 1)[0]["status"] == "ok"

    def profiles(store: Any) -> dict[str, dict]:
        return {r["user_id"]: orjson.loads(r["traits"]) for r in
                store.query("SELECT user_id, CAST(traits AS VARCHAR) AS traits FROM profiles").to_pylist()}

    pd_, pc = profiles(ws.store), profiles(ch)
    assert pd_.keys() == pc.keys()
    bad = [(u, k) for u in pd_ for k in pd_[u].keys() | pc[u].keys() if not _same(pd_[u].get(k), pc[u].get(k))]
    assert not bad, [(u, k, pd_[u].get(k), pc[u].get(k)) for u, k in bad[:5]]
    assert pc["u1"]["name"] == "Kim" and pc["u1"]["lifecycle_stage"] == "loyal"
    shown = user_traits(ch, "u1")
    assert shown["traits"]["rfm_frequency"] == 4
    assert {h["name"] for h in shown["history"] if h["run_id"] == run_c.run_id} >= {"rfm_tier", "top_category"}


_SETUP = r"""
import sys, orjson
from pathlib import Path
from segmint.store.schema import events_to_arrow
from segmint.store.base import WriteBatch
from segmint.workspace import Workspace
from datetime import datetime
ws = Workspace.init(Path(sys.argv[1]))
ws.config.store.url = "clickhouse:///chdb"
ws.save()
ws = Workspace(Path(sys.argv[1]))
events = orjson.loads(Path(sys.argv[2]).read_bytes())
for e in events:
    e["ts"] = e["received_at"] = datetime.fromisoformat(e["ts"])
ws.store.ensure_property_columns({"revenue": "number"})
ws.store.write(WriteBatch(events=events_to_arrow(events)))
print(ws.store.dialect, ws.store.summary()["events"])
"""


def test_cli_traits_compute_and_show_on_a_clickhouse_workspace(tmp_path: Path) -> None:
    """`segmint traits compute` / `traits show` on a workspace whose store is chDB (child processes: chDB
    allows one data path per process)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "SEGMINT_WORKSPACE": str(tmp_path / "ws")}
    events = tmp_path / "events.json"
    events.write_bytes(orjson.dumps(_history(), default=str))
    res = subprocess.run([sys.executable, "-c", _SETUP, str(tmp_path / "ws"), str(events)], env=env,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.split() == ["clickhouse", str(len(_history()))]
    segmint = [sys.executable, "-c", "from segmint.cli import main; main()"]
    res = subprocess.run([*segmint, "traits", "compute", "--as-of", AS_OF.isoformat(), "--publish"], env=env,
                         capture_output=True, text=True, timeout=180)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    assert "published to profiles" in res.stdout
    res = subprocess.run([*segmint, "traits", "show", "u1", "--json"], env=env, capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    shown = json.loads(res.stdout)
    t = shown["traits"]
    assert t["rfm_frequency"] == 4 and t["rfm_monetary"] == 40000 and t["lifecycle_stage"] == "loyal"
    assert t["purchase_regularity"] == "regular" and t["preferred_channel"] == "email" and t["nps_score"] == 9
    assert t["purchase_overdue"] is False  # a boolean, not ClickHouse's 0/1


def _trait_tables(as_of: datetime) -> list[pa.Table]:
    """Hand-made trait tables with every value type a family returns (and the awkward ones: NaN, a null list,
    times with and without a fraction of a second, text with quotes, slashes and Korean)."""
    ts = pa.timestamp("us")
    return [
        pa.table({"user_id": ["a", "b", "c"],
                  "score": pa.array([1.5, float("nan"), None], pa.float64()),
                  "count": pa.array([3, 2**40, None], pa.int64()),
                  "flag": pa.array([True, False, None]),
                  "tier": pa.array(['say "hi"/bye', "골드", None]),
                  "tops": pa.array([["a/b", "뷰티"], [], None], pa.list_(pa.string())),
                  "when": pa.array([as_of, as_of + timedelta(seconds=1, microseconds=500_000), None], ts)}),
        pa.table({"user_id": ["b", "d"], "stage": ["loyal", "new"]}),
    ]


def _stored(store: Any, run_id: int) -> tuple[dict, dict]:
    """A run's history (user, name) -> (parsed value, as_of) and every profile's parsed traits."""
    hist = store.query(f"SELECT user_id, name, CAST(value AS VARCHAR) AS value, as_of FROM computed_traits "
                       f"WHERE run_id = {int(run_id)}").to_pylist()
    prof = store.query("SELECT user_id, CAST(traits AS VARCHAR) AS traits FROM profiles").to_pylist()
    return ({(h["user_id"], h["name"]): (orjson.loads(h["value"]), h["as_of"].replace(tzinfo=None)) for h in hist},
            {p["user_id"]: orjson.loads(p["traits"]) for p in prof})


def test_bulk_trait_writes_match_duckdb(tmp_path: Path) -> None:
    """The same TraitWrites into DuckDB and chDB leave the same history rows and profiles: published runs
    replace the run's keys (a value gone since the last run is removed, other traits are kept), a past as-of
    run goes to the history only, and keep_runs drops old runs' history."""
    from segmint.store.base import TraitWrite
    from segmint.store.duckdb import DuckDBEventStore

    duck = DuckDBEventStore(tmp_path / "duck.db")
    ch = ClickHouseEventStore(process_chdb_path(), database="traits_bulk_write")
    profiles = [ProfileUpdate(u, {"name": f"N{u}", "score": 99, "keep": {"x": [1, None]}}, NOW - timedelta(days=3))
                for u in ("a", "b", "c", "d", "e")]
    for store in (duck, ch):
        store.write(WriteBatch(profiles=profiles))
    past = NOW - timedelta(days=10, hours=3)
    writes = [  # run 1 published now, run 2 as of a past time (history only), run 3 published: b lost its stage
        (1, NOW, _trait_tables(NOW), True, None),
        (2, past, _trait_tables(past), False, None),
        (3, NOW, [_trait_tables(NOW)[0], pa.table({"user_id": ["d"], "stage": ["active"]})], True, 2),
    ]
    for run_id, as_of, tables, publish, keep in writes:
        run = {"run_id": run_id, "started_at": NOW, "finished_at": NOW, "as_of": as_of, "families": ["x"],
               "published": publish, "users": 4, "rows": 0, "status": "ok", "error": None, "notes": "{}",
               "kind": "compute", "trigger": "manual"}
        n_duck = duck.write_traits(TraitWrite(run, tables, publish=publish, keep_runs=keep))
        n_ch = ch.write_traits(TraitWrite(run, tables, publish=publish, keep_runs=keep))
        assert n_duck == n_ch == (13 if run_id < 3 else 12), run_id
        hist_d, prof_d = _stored(duck, run_id)
        hist_c, prof_c = _stored(ch, run_id)
        assert hist_c == hist_d, run_id
        assert prof_c == prof_d, run_id
    assert hist_c[("a", "when")] == (str(NOW), NOW) and hist_c[("b", "when")][0] == f"{NOW + timedelta(seconds=1)}.5"
    assert ("b", "score") not in hist_c and ("c", "tops") not in hist_c and hist_c[("b", "tops")][0] == []
    assert prof_c["a"] == {"name": "Na", "keep": {"x": [1, None]}, "score": 1.5, "count": 3, "flag": True,
                           "tier": 'say "hi"/bye', "tops": ["a/b", "뷰티"], "when": str(NOW)}
    assert prof_c["b"] == {"name": "Nb", "keep": {"x": [1, None]}, "count": 2**40, "flag": False, "tier": "골드",
                           "tops": [], "when": f"{NOW + timedelta(seconds=1)}.5"}  # NaN score, stale stage: gone
    assert prof_c["d"] == {"name": "Nd", "keep": {"x": [1, None]}, "stage": "active"}
    assert prof_c["e"] == {"name": "Ne", "keep": {"x": [1, None]}}
    kept = {r["run_id"] for r in ch.query("SELECT DISTINCT run_id FROM computed_traits").to_pylist()}
    assert kept == {2, 3} == {r["run_id"] for r in duck.query("SELECT DISTINCT run_id FROM computed_traits")
                              .to_pylist()}
    duck.close()
