"""Random trees x random histories: reference evaluator == DuckDB SQL == ClickHouse (chDB) SQL.

Each hypothesis example loads one batch of users into both engines (the same events: ClickHouse gets a
copy of the DuckDB tables) and compares the member sets of several trees. SEGMINT_DEEP=1 runs 100k cases.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chdb_util import process_chdb_path
from segeval_strategies import AS_OF, TYPED, WORKSPACE_ZONES, histories, resolve, trees
from segmint.segments import reference
from segmint.segments.compile import compile_segment
from segmint.segments.evaluate import evaluate
from segmint.segments.saved import inline_segments
from segmint.store.base import ProfileUpdate, WriteBatch
from segmint.store.clickhouse import ClickHouseEventStore
from segmint.store.duckdb import DuckDBEventStore
from segmint.store.schema import events_to_arrow

DEEP = os.environ.get("SEGMINT_DEEP") == "1"
TREES_PER_EXAMPLE = 10
# x TREES_PER_EXAMPLE = 2,000 cases (100k deep); SEGMINT_EQUIV_EXAMPLES=N overrides (quick runs while developing)
EXAMPLES = int(os.environ.get("SEGMINT_EQUIV_EXAMPLES", 10_000 if DEEP else 200))
# hypothesis warns when it builds the (large, unused unless failing) repr of a history
pytestmark = pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisWarning")


@pytest.fixture(scope="module")
def ch() -> ClickHouseEventStore:
    """One chDB store per test process (chDB allows one data path per process)."""
    return ClickHouseEventStore(process_chdb_path(), database="equivalence")


def load(users: dict[str, Any]) -> DuckDBEventStore:
    """The users' events and profiles in a fresh in-memory DuckDB store with typed columns."""
    duck = DuckDBEventStore(":memory:")
    duck.ensure_property_columns(TYPED)
    rows = []
    profiles = []
    for uid, u in users.items():
        for e in u["events"]:
            rows.append(
                {
                    "message_id": e["message_id"],
                    "type": "track",
                    "event": e["event"],
                    "user_id": uid,
                    "anonymous_id": None,
                    "ts": e["ts"],
                    "received_at": AS_OF,
                    "properties": e["properties"],
                    "source": "test",
                }
            )
        if u["has_profile"]:
            profiles.append(ProfileUpdate(uid, u["traits"], u["profile_ts"], u["timezone"]))
    duck.write(WriteBatch(events=events_to_arrow(rows) if rows else None, profiles=profiles))
    return duck


def oracle(
    duck: DuckDBEventStore, users: dict[str, Any], tree: Any, as_of: datetime, workspace_tz: str = "Asia/Seoul"
) -> set[str]:
    """Members by the reference evaluator, given the profiles exactly as the store holds them."""
    profs = {
        r["user_id"]: r
        for r in duck.query(
            "SELECT user_id, CAST(traits AS VARCHAR) AS traits, first_seen, last_seen, timezone FROM profiles"
        ).to_pylist()
    }
    data = {}
    for uid, p in profs.items():
        profile = reference.Profile(uid, json.loads(p["traits"]), p["first_seen"], p["last_seen"], p["timezone"])
        data[uid] = (users[uid]["events"], profile)
    return reference.members(tree, data, as_of, resolve=resolve, workspace_tz=workspace_tz)


def check(
    ch: ClickHouseEventStore,
    users: dict[str, Any],
    tree_list: list[Any],
    as_of: datetime,
    workspace_tz: str = "Asia/Seoul",
) -> None:
    """Reference == DuckDB == ClickHouse for every tree on one loaded batch (calendar windows in workspace_tz)."""
    duck = load(users)
    try:
        ch.copy_from(duck)
        for tree in tree_list:
            want = oracle(duck, users, tree, as_of, workspace_tz)
            inlined = inline_segments(tree, resolve)  # what saved.segment_tree hands to evaluate
            got_duck = set(evaluate(duck, inlined, as_of, workspace_tz=workspace_tz))
            got_ch = set(evaluate(ch, inlined, as_of, workspace_tz=workspace_tz))
            if got_duck != want:  # compile once more only to show the SQL
                sql, params = compile_segment(
                    tree, as_of, dialect="duckdb", typed=TYPED, resolve=resolve, workspace_tz=workspace_tz
                )
                raise AssertionError(f"DuckDB differs ({workspace_tz}): tree={tree!r}\nsql={sql}\nparams={params}")
            assert got_ch == want, f"ClickHouse differs ({workspace_tz}): tree={tree!r}"
    finally:
        duck.close()


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    users=histories(),
    tree_list=st.lists(trees, min_size=TREES_PER_EXAMPLE, max_size=TREES_PER_EXAMPLE),
    workspace_tz=st.sampled_from(WORKSPACE_ZONES),
)
def test_reference_duckdb_clickhouse_agree(
    ch: ClickHouseEventStore, users: dict[str, Any], tree_list: list[Any], workspace_tz: str
) -> None:
    """Member sets agree on random trees over histories with edge timestamps and mixed-type values, users in
    several zones (some unknown), and workspaces in several zones."""
    check(ch, users, tree_list, AS_OF, workspace_tz)


def test_hostile_values_are_parameters(ch: ClickHouseEventStore) -> None:
    """Quotes, semicolons and unicode in names and values stay data: both engines find the one match."""
    from segmint.segments import model as m

    bad = "\"; DROP TABLE events; --'"
    users = {
        "u'1": {
            "events": [{"message_id": "m1", "event": bad, "ts": AS_OF, "properties": {"k;ey 한": bad}}],
            "traits": {},
            "profile_ts": AS_OF,
            "timezone": None,
            "has_profile": True,
        },
        "u2": {"events": [], "traits": {}, "profile_ts": AS_OF, "timezone": None, "has_profile": True},
    }
    tree = m.Performed(event=bad, where=[m.PropertyFilter(path=["k;ey 한"], op="eq", value=m.Value(value=bad))])
    check(ch, users, [tree], AS_OF)
    duck = load(users)
    assert evaluate(duck, tree, AS_OF) == ["u'1"]
    assert duck.query("SELECT count(*) FROM events").column(0)[0].as_py() == 1


def test_in_segment_resolves_and_rejects_cycles(ch: ClickHouseEventStore) -> None:
    """compile_segment inlines saved segments through `resolve`; a cycle is a segment_cycle error."""
    from segmint.segments import model as m
    from segmint.segments.reference import SegmentCycleError

    users = {
        "buyer": {"events": [{"message_id": "m1", "event": "order_completed", "ts": AS_OF, "properties": {}}],
                  "traits": {}, "profile_ts": AS_OF, "timezone": None, "has_profile": True},
        "other": {"events": [], "traits": {}, "profile_ts": AS_OF, "timezone": None, "has_profile": True},
    }
    duck = load(users)
    try:
        tree = m.Not(item=m.InSegment(segment="buyers"))
        sql, params = compile_segment(tree, AS_OF, typed=TYPED, resolve=resolve)
        assert [r["user_id"] for r in duck.query(sql, params).to_pylist()] == ["other"]
        assert oracle(duck, users, tree, AS_OF) == {"other"}
    finally:
        duck.close()
    loop = {"a": m.InSegment(segment="b"), "b": m.Or(items=[m.InSegment(segment="a"), m.InSegment(segment="b")])}
    with pytest.raises(SegmentCycleError, match="a -> b -> a"):
        compile_segment(m.InSegment(segment="a"), AS_OF, resolve=loop.__getitem__)
