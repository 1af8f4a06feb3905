"""Role checks: viewers look but do not change anything (UI pages and the admin API with a UI session)."""

from __future__ import annotations

import re

from sqlalchemy import Engine

from segmint.appdb.users import can_edit, get_user
from segmint.errors import Forbidden, NotFound

# POSTs that only read (count, parse, explain, a draft campaign's preview, a report): viewers may call them.
READ_ONLY_POSTS = re.compile(r"^/api/(segments/(preview|parse|.+/explain)|campaigns/preview|campaign-reports)$")
VIEWER_MESSAGE = "your role is viewer: you can look at segments but not save or change anything (ask an admin)"


def check_session_write(engine: Engine, user_id: int, method: str, path: str) -> None:
    """Refuse a state-changing admin API call made with a viewer's UI session (403, clear message)."""
    if method in ("GET", "HEAD", "OPTIONS") or READ_ONLY_POSTS.match(path):
        return
    try:
        user = get_user(engine, int(user_id))
    except NotFound:
        raise Forbidden("the signed-in user no longer exists", where="session") from None
    if not can_edit(user):
        raise Forbidden(VIEWER_MESSAGE, where="role")
