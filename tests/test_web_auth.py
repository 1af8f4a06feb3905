"""Web UI sign-in, sessions, CSRF, language choice, and that write keys open neither UI nor admin API."""

from __future__ import annotations

import base64

import pytest
from fastapi.testclient import TestClient

from segmint.api.app import create_app
from segmint.appdb.keys import create_key, list_keys
from segmint.appdb.users import (
    authenticate,
    check_password,
    create_user,
    ensure_user,
    hash_password,
    list_users,
)
from segmint.config import load_config
from segmint.errors import Conflict, InvalidInput
from segmint.web.i18n import from_accept_language
from segmint.web.session import COOKIE, WebSession, decode, encode
from segmint.workspace import Workspace
from web_login import EMAIL, PASSWORD, csrf_of, sign_in


def test_password_hashes_are_salted_and_checked(workspace: Workspace) -> None:
    h1, h2 = hash_password("pw-123456"), hash_password("pw-123456")
    assert h1 != h2 and h1.startswith("scrypt$") and "pw-123456" not in h1
    assert check_password("pw-123456", h1) and not check_password("pw-123457", h1)
    assert not check_password("x", "garbage")
    create_user(workspace.appdb, "A@Example.com", "longenough", role="admin")
    with pytest.raises(Conflict):
        create_user(workspace.appdb, "a@example.com", "longenough")
    with pytest.raises(InvalidInput, match="8 characters"):
        create_user(workspace.appdb, "b@example.com", "short")
    with pytest.raises(InvalidInput, match="role"):
        create_user(workspace.appdb, "b@example.com", "longenough", role="root")
    assert authenticate(workspace.appdb, "a@example.com", "wrong-password") is None
    user = authenticate(workspace.appdb, " A@EXAMPLE.COM ", "longenough")
    assert user is not None and user.role == "admin" and user.last_login_at is not None
    # `segmint demo` gives its UI user a fresh password on every run
    demo, pw1 = ensure_user(workspace.appdb, "demo@localhost")
    again, pw2 = ensure_user(workspace.appdb, "demo@localhost")
    assert demo.id == again.id and pw1 != pw2 and demo.role == "admin"
    assert authenticate(workspace.appdb, "demo@localhost", pw1) is None
    assert authenticate(workspace.appdb, "demo@localhost", pw2) is not None


def test_pages_need_sign_in_and_redirect_back(workspace: Workspace) -> None:
    with TestClient(create_app(workspace)) as client:
        for path in ("/", "/events", "/settings", "/ui/events/volume?event=x"):
            resp = client.get(path, follow_redirects=False)
            assert resp.status_code == 303, path
            assert resp.headers["location"].startswith("/login?next=%2F"), path
        create_user(workspace.appdb, EMAIL, PASSWORD)
        token = csrf_of(client.get("/login?next=/events").text)
        resp = client.post("/login", data={"email": EMAIL, "password": PASSWORD, "csrf_token": token,
                                           "next": "/events"}, follow_redirects=False)
        assert resp.status_code == 303 and resp.headers["location"] == "/events"
        cookie = resp.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie.replace("Lax", "lax")
        assert client.get("/events").status_code == 200
        again = client.get("/login?next=/settings", follow_redirects=False)
        assert again.status_code == 303 and again.headers["location"] == "/settings"
        # an outside `next` is not followed
        client.cookies.clear()
        token = csrf_of(client.get("/login").text)
        resp = client.post("/login", data={"email": EMAIL, "password": PASSWORD, "csrf_token": token,
                                           "next": "https://evil.example/"}, follow_redirects=False)
        assert resp.headers["location"] == "/"


def test_wrong_password_shows_a_clear_message_and_is_rate_limited(workspace: Workspace) -> None:
    create_user(workspace.appdb, EMAIL, PASSWORD)
    with TestClient(create_app(workspace), headers={"accept-language": "ko-KR,ko;q=0.9"}) as client:
        token = csrf_of(client.get("/login").text)
        bad = client.post("/login", data={"email": EMAIL, "password": "nope-nope", "csrf_token": token})
        assert bad.status_code == 401 and "이메일 또는 비밀번호가 올바르지 않습니다." in bad.text
        client.cookies.set("lang", "en")
        bad = client.post("/login", data={"email": "nobody@x.io", "password": "nope", "csrf_token": token})
        assert bad.status_code == 401 and "Wrong email or password." in bad.text
        for _ in range(8):
            client.post("/login", data={"email": EMAIL, "password": "nope-nope", "csrf_token": token})
        # even the right password is refused while this address is throttled
        limited = client.post("/login", data={"email": EMAIL, "password": PASSWORD, "csrf_token": token},
                              follow_redirects=False)
        assert limited.status_code == 429 and "Too many sign-in attempts" in limited.text


def test_csrf_is_required_on_every_state_changing_request(workspace: Workspace) -> None:
    with TestClient(create_app(workspace)) as client:
        token = sign_in(client, workspace)
        before = len(list_keys(workspace.appdb))
        refused = client.post("/settings/keys", data={"label": "x"})
        assert refused.status_code == 403 and "보안 토큰이 없거나 올바르지 않습니다" in refused.text
        assert client.post("/settings/keys", data={"label": "x", "csrf_token": "wrong"}).status_code == 403
        assert client.post("/settings/keys", data={"label": "x"},
                           headers={"X-CSRF-Token": "wrong"}).status_code == 403
        assert len(list_keys(workspace.appdb)) == before
        ok = client.post("/settings/keys", data={"label": "shop-web", "csrf_token": token})
        assert ok.status_code == 200 and 'id="new-key">wk_' in ok.text
        # htmx sends the token as a header
        key_id = list_keys(workspace.appdb)[0].id
        assert client.post(f"/settings/keys/{key_id}/revoke").status_code == 403
        assert list_keys(workspace.appdb)[0].revoked_at is None
        ok = client.post(f"/settings/keys/{key_id}/revoke", headers={"X-CSRF-Token": token})
        assert ok.status_code == 200 and list_keys(workspace.appdb)[0].revoked_at is not None
        # logout needs the token too
        assert client.post("/logout", follow_redirects=False).status_code == 403
        assert client.get("/settings", follow_redirects=False).status_code == 200
        out = client.post("/logout", data={"csrf_token": token}, follow_redirects=False)
        assert out.status_code == 303
        assert client.get("/settings", follow_redirects=False).status_code == 303


def test_session_cookie_is_signed_and_bound_to_the_workspace_secret(workspace: Workspace) -> None:
    secret = "s" * 32
    sess = WebSession(user_id=1)
    value = encode(secret, sess)
    assert decode(secret, value) == sess
    assert decode("other-secret", value) is None
    body, sig = value.rsplit(".", 1)
    forged = base64.urlsafe_b64encode(base64.urlsafe_b64decode(body).replace(b'"u":1', b'"u":2')).decode()
    assert decode(secret, forged + "." + sig) is None
    with TestClient(create_app(workspace)) as client:
        create_user(workspace.appdb, EMAIL, PASSWORD)
        client.cookies.set(COOKIE, encode("guessed", WebSession(user_id=1)))
        assert client.get("/", follow_redirects=False).status_code == 303


def test_old_workspace_gets_a_session_secret_on_first_serve(workspace: Workspace) -> None:
    workspace.config.session_secret = ""
    from segmint.config import save_config

    save_config(workspace.path, workspace.config)
    create_app(workspace)
    saved = load_config(workspace.path).session_secret
    assert len(saved) >= 32 and saved == workspace.config.session_secret


def test_admin_api_takes_bearer_or_a_session_but_never_a_write_key(workspace: Workspace) -> None:
    key = create_key(workspace.appdb, label="sdk").secret
    basic = "Basic " + base64.b64encode(f"{key}:".encode()).decode()
    with TestClient(create_app(workspace)) as client:
        for headers in ({"Authorization": f"Bearer {key}"}, {"Authorization": basic}, {}):
            assert client.get("/api/summary", headers=headers).status_code == 401, headers
            assert client.get("/", headers=headers, follow_redirects=False).status_code == 303, headers
            assert client.get("/settings", headers=headers, follow_redirects=False).status_code == 303
        bearer = {"Authorization": f"Bearer {workspace.config.admin_token}"}
        assert client.get("/api/summary", headers=bearer).status_code == 200
        assert client.post("/api/taxonomy/infer", headers=bearer).status_code == 200
        token = sign_in(client, workspace)
        assert client.get("/api/summary").json()["events"] == 0
        # a state-changing admin call from the browser needs the CSRF header
        refused = client.post("/api/taxonomy/infer")
        assert refused.status_code == 403 and refused.json()["where"] == "X-CSRF-Token"
        assert client.post("/api/taxonomy/infer", headers={"X-CSRF-Token": "wrong"}).status_code == 403
        assert client.post("/api/taxonomy/infer", headers={"X-CSRF-Token": token}).status_code == 200
        # a wrong bearer is refused even with a valid session
        assert client.get("/api/summary", headers={"Authorization": "Bearer nope"}).status_code == 401


@pytest.mark.parametrize(("header", "lang"), [
    (None, "ko"), ("ko-KR,ko;q=0.9,en;q=0.8", "ko"), ("en-US,en;q=0.9", "en"),
    ("en-US,en;q=0.9,ko;q=0.8", "en"), ("ko;q=0.5,en;q=0.4", "ko"), ("fr-FR", "ko"), ("en;q=0.2,ko;q=0.9", "ko"),
])
def test_language_default_from_accept_language(header: str | None, lang: str) -> None:
    assert from_accept_language(header) == lang


def test_language_switch_sets_a_cookie_and_changes_the_ui(workspace: Workspace) -> None:
    with TestClient(create_app(workspace), headers={"accept-language": "en-US,en;q=0.9"}) as client:
        page = client.get("/login")
        assert '<html lang="en">' in page.text and ">Sign in<" in page.text
        sign_in(client, workspace)
        resp = client.get("/lang/ko?next=/settings", follow_redirects=False)
        assert resp.status_code == 303 and resp.headers["location"] == "/settings"
        assert "lang=ko" in resp.headers["set-cookie"]
        page = client.get("/settings")
        assert '<html lang="ko">' in page.text and "쓰기 키" in page.text and ">로그아웃<" in page.text
        assert client.get("/lang/en?next=//evil.example", follow_redirects=False).headers["location"] == "/"
        assert ">Sign out<" in client.get("/settings").text
        assert client.get("/lang/xx").status_code == 200  # ignored, back home
        assert ">Sign out<" in client.get("/settings").text


def test_users_cli_and_init_admin(tmp_path) -> None:
    from typer.testing import CliRunner

    from segmint.cli import app

    runner = CliRunner()
    ws_path = tmp_path / "w"
    out = runner.invoke(app, ["-w", str(ws_path), "init"])
    assert out.exit_code == 0, out.output
    assert "Web UI admin: admin@localhost" in out.output and "shown once" in out.output
    password = out.output.split("password: ")[1].split()[0]
    ws = Workspace(ws_path)
    assert authenticate(ws.appdb, "admin@localhost", password) is not None
    out = runner.invoke(app, ["-w", str(ws_path), "users", "create", "kim@shop.kr", "--password", "pw-12345678",
                              "--role", "marketer", "--name", "김마케터"])
    assert out.exit_code == 0, out.output
    out = runner.invoke(app, ["-w", str(ws_path), "users", "create", "kim@shop.kr", "--password", "pw-12345678"])
    assert out.exit_code == 2 and "already exists" in out.output
    out = runner.invoke(app, ["-w", str(ws_path), "users", "create", "x@shop.kr", "--password", "pw-12345678",
                              "--role", "owner"])
    assert out.exit_code == 2 and "--role" in out.output
    out = runner.invoke(app, ["-w", str(ws_path), "users", "list"])
    assert "kim@shop.kr" in out.output and "admin@localhost" in out.output
    assert [u.role for u in list_users(ws.appdb)] == ["admin", "marketer"]
    out = runner.invoke(app, ["-w", str(tmp_path / "w2"), "init", "--admin-email", "boss@shop.kr",
                              "--admin-password", "short"])
    assert out.exit_code == 2 and "--admin-password" in out.output and not (tmp_path / "w2").exists()
    ws.close()
