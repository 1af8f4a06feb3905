"""A small shop workspace for saved-segment tests: four users, a few events and traits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from segmint.store.base import ProfileUpdate, WriteBatch
from segmint.store.schema import events_to_arrow
from segmint.workspace import Workspace

NOW = datetime.now(UTC).replace(tzinfo=None, microsecond=0)


def _ev(n: int, uid: str, event: str, days_ago: float, **props: object) -> dict:
    return {"message_id": f"m{n}", "type": "track", "event": event, "user_id": uid, "anonymous_id": None,
            "ts": NOW - timedelta(days=days_ago), "received_at": NOW, "properties": props, "source": "test"}


EVENTS = [
    ("u1", "app_opened", 2, {}), ("u1", "cart_added", 5, {"product_id": "p1", "category": "가전"}),
    ("u1", "product_viewed", 3, {"product_id": "p1", "category": "가전", "price": 1000}),
    ("u2", "order_completed", 40, {"order_id": "o1", "revenue": 50000}),
    ("u2", "app_opened", 45, {}),
    ("u3", "app_opened", 60, {}),
    ("u4", "app_opened", 1, {}), ("u4", "order_completed", 1, {"order_id": "o2", "revenue": 9000}),
]
TRAITS = {
    "u1": {"gender": "F", "age": 25, "region": "서울", "name": "Kim, \"Ji\"; 민"},
    "u2": {"gender": "M", "age": 31, "region": "부산"},
    "u3": {"gender": "F", "age": 44, "region": "경기", "vip": True},
    "u4": {"gender": "M", "age": 22},
}


def shop_workspace(path: Path) -> Workspace:
    """A new workspace at path with the small shop loaded (store closed again so a server can open it)."""
    ws = Workspace.init(path)
    rows = [_ev(i, uid, ev, d, **p) for i, (uid, ev, d, p) in enumerate(EVENTS)]
    profiles = [ProfileUpdate(uid, t, NOW - timedelta(days=90)) for uid, t in TRAITS.items()]
    ws.store.write(WriteBatch(events=events_to_arrow(rows), profiles=profiles))
    ws.close()
    return ws
