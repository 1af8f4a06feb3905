"""The DuckDB event store: typed property columns, hostile names, transactions."""

from __future__ import annotations

from datetime import datetime

import pytest

from segmint.errors import InvalidInput
from segmint.store.base import WriteBatch
from segmint.store.schema import events_to_arrow
from segmint.workspace import Workspace

T0 = datetime(2026, 11, 1, 3, 0)


def _events(*props: dict) -> WriteBatch:
    return WriteBatch(events=events_to_arrow(
        {"message_id": f"m{i}", "type": "track", "event": "product_viewed", "user_id": "u1", "ts": T0,
         "received_at": T0, "properties": p} for i, p in enumerate(props)))


def test_typed_columns_backfilled_and_filled_on_insert(workspace: Workspace) -> None:
    store = workspace.store
    store.write(_events({"price": 15000, "category": "뷰티"}))
    assert store.ensure_property_columns({"price": "integer", "category": "string"}) == ["price", "category"]
    store.write(WriteBatch(events=events_to_arrow([
        {"message_id": "m9", "type": "track", "event": "product_viewed", "user_id": "u2", "ts": T0,
         "received_at": T0, "properties": {"price": "not a number", "category": "패션"}}])))
    rows = store.query('SELECT message_id, "p_price", "p_category" FROM events ORDER BY message_id').to_pylist()
    assert rows == [{"message_id": "m0", "p_price": 15000, "p_category": "뷰티"},
                    {"message_id": "m9", "p_price": None, "p_category": "패션"}]
    assert store.ensure_property_columns({"price": "integer"}) == []


@pytest.mark.parametrize("name", ['a"b', "x\x00y", ""])
def test_hostile_property_names_are_refused(workspace: Workspace, name: str) -> None:
    with pytest.raises(InvalidInput):
        workspace.store.ensure_property_columns({name: "string"})


def test_odd_but_safe_names_work(workspace: Workspace) -> None:
    name = "상품 가격; DROP TABLE events; --"
    workspace.store.write(_events({name: 3}))
    workspace.store.ensure_property_columns({name: "integer"})
    assert workspace.store.query(f'SELECT "p_{name}" AS v FROM events').to_pylist() == [{"v": 3}]
    assert workspace.store.summary()["events"] == 1


def test_failed_write_leaves_nothing_behind(workspace: Workspace) -> None:
    batch = _events({"a": 1})
    batch.state = {"journal_position": "1:10"}
    batch.rejected = "not a table"  # type: ignore[assignment]  # makes the write fail half-way
    with pytest.raises(AttributeError):
        workspace.store.write(batch)
    assert workspace.store.summary()["events"] == 0
    assert workspace.store.get_state("journal_position") is None
