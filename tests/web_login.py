"""Test helper: sign a TestClient in to the web UI."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from fastapi.testclient import TestClient

from segmint.appdb.users import create_user
from segmint.workspace import Workspace

EMAIL = "marketer@example.com"
PASSWORD = "correct horse battery"


def csrf_of(html: str) -> str:
    """The CSRF token a page's forms carry."""
    m = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert m, "page has no CSRF field"
    return m.group(1)


def sign_in(client: TestClient, ws: Workspace, email: str = EMAIL, password: str = PASSWORD) -> str:
    """Create the user if needed, sign in through the form, return the session's CSRF token."""
    from segmint.appdb.users import list_users

    if email not in {u.email for u in list_users(ws.appdb)}:
        create_user(ws.appdb, email, password)
    token = csrf_of(client.get("/login").text)
    resp = client.post("/login", data={"email": email, "password": password, "csrf_token": token, "next": "/"},
                       follow_redirects=False)
    assert resp.status_code == 303, resp.text
    return csrf_of(client.get("/settings").text)


@contextmanager
def second_session(client: TestClient) -> Iterator[TestClient]:
    """Another browser (own cookies) on the same running app: no second app, so no second set of background
    threads on the workspace, and nothing closes the workspace the first client's app is still using."""
    other = TestClient(client.app, headers=dict(client.headers))
    try:
        yield other
    finally:
        other.close()
