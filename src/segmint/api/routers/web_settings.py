"""The UI settings pages: write keys and users (`/settings`), channel providers (`/settings/channels`, admins
edit, secrets masked) and the default campaign policy (`/settings/policy`)."""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse

from segmint.api.deps import AppState, get_state
from segmint.api.ingest_common import key_cache
from segmint.appdb.keys import create_key, list_keys, revoke_key
from segmint.appdb.users import ROLES, User, create_user, get_user, list_users, set_role
from segmint.campaigns.model import CHANNELS, Policy
from segmint.errors import InvalidInput, SegmintError
from segmint.web.channel_forms import SECTIONS, apply_section, remove_section, section_fields
from segmint.web.policy_defaults import load_policy, parse_policy, save_policy
from segmint.web.render import AdminOnly, current_user, editor_user, render, require_csrf

router = APIRouter(tags=["web"], include_in_schema=False)
MAX_CAPS = 4  # empty frequency-cap rows the policy form shows at least (one more than the policy has, when more)
MAX_CAP_ROWS = 100  # a form with more cap rows than this is refused


def _page(request: Request, state: AppState, *, status_code: int = 200, **extra: object) -> HTMLResponse:
    engine = state.workspace.appdb
    return render(request, "settings.html", {"keys": list_keys(engine), "users": list_users(engine), "roles": ROLES,
                                             "tab": "keys", **extra}, status_code=status_code)


@router.get("/settings", response_class=HTMLResponse)
def settings_page(request: Request, state: AppState = Depends(get_state),
                  _user: User = Depends(current_user)) -> HTMLResponse:
    """Write keys and users."""
    return _page(request, state)


@router.post("/settings/keys", response_class=HTMLResponse, dependencies=[Depends(require_csrf)])
def settings_create_key(request: Request, label: str = Form(""), state: AppState = Depends(get_state),
                        _user: User = Depends(editor_user)) -> HTMLResponse:
    """Create a write key and show its secret once."""
    key = create_key(state.workspace.appdb, label=label.strip()[:200])
    return _page(request, state, new_key=key)


@router.post("/settings/keys/{key_id}/revoke", response_class=HTMLResponse,
             dependencies=[Depends(require_csrf)])
def settings_revoke_key(request: Request, key_id: int, state: AppState = Depends(get_state),
                        _user: User = Depends(editor_user)) -> HTMLResponse:
    """Revoke a write key; it stops working at once (this server's key cache is cleared)."""
    revoke_key(state.workspace.appdb, str(key_id))
    key_cache(state).clear()
    return _page(request, state, revoked=True)


@router.post("/settings/users/{user_id}/role", response_class=HTMLResponse, dependencies=[Depends(require_csrf)])
def settings_set_role(request: Request, user_id: int, role: str = Form(...), state: AppState = Depends(get_state),
                      me: User = Depends(current_user)) -> HTMLResponse:
    """Change another user's role (admins only; nobody changes their own, so an admin always remains)."""
    if me.role != "admin" or me.id == user_id:
        raise AdminOnly()
    target = get_user(state.workspace.appdb, user_id)
    set_role(state.workspace.appdb, target.email, role)
    return _page(request, state, role_changed=target.email)


@router.post("/settings/users", response_class=HTMLResponse, dependencies=[Depends(require_csrf)])
def settings_create_user(request: Request, email: str = Form(...), display_name: str = Form(""),
                         role: str = Form("marketer"), password: str = Form(...),
                         state: AppState = Depends(get_state), me: User = Depends(current_user)) -> HTMLResponse:
    """Add a UI user (admins only) with a first password they give the person; errors are shown on the page."""
    if me.role != "admin":
        raise AdminOnly()
    try:
        made = create_user(state.workspace.appdb, email, password, role=role, display_name=display_name.strip()[:200])
    except SegmintError as exc:
        return _page(request, state, user_error=str(exc), status_code=exc.status_code)
    return _page(request, state, user_created=made.email)


# ---------------------------------------------------------------- channels and providers


def _channels_page(request: Request, state: AppState, *, status_code: int = 200, **extra: object) -> HTMLResponse:
    cfg = state.workspace.config.channels
    sections = [{"name": s, "configured": getattr(cfg, s) is not None,
                 "fields": section_fields(cfg, s)} for s in SECTIONS]
    return render(request, "settings_channels.html", {"sections": sections, "outbox_dir": cfg.outbox_dir,
                                                      "tab": "channels", **extra}, status_code=status_code)


def _admin(me: User) -> None:
    if me.role != "admin":
        raise AdminOnly()


@router.get("/settings/channels", response_class=HTMLResponse)
def channels_page(request: Request, state: AppState = Depends(get_state),
                  _user: User = Depends(current_user)) -> HTMLResponse:
    """Channel providers (SMTP, webhook, FCM, NHN SMS / AlimTalk, Kakao brand): configured or not, secrets masked."""
    return _channels_page(request, state)


@router.post("/settings/channels/{section}", response_class=HTMLResponse, dependencies=[Depends(require_csrf)])
async def channels_save(request: Request, section: str, state: AppState = Depends(get_state),
                        me: User = Depends(current_user)) -> HTMLResponse:
    """Save one provider section to segmint.toml (admins only); an empty secret field keeps the stored one."""
    _admin(me)
    form = {k: str(v) for k, v in (await request.form()).items() if k != "csrf_token"}
    try:
        if form.get("_action") == "remove":
            remove_section(state.workspace, section)
        else:
            apply_section(state.workspace, section, form)
    except SegmintError as exc:
        return _channels_page(request, state, status_code=exc.status_code, error=str(exc),
                              error_section=section)
    return _channels_page(request, state, saved_section=section)


# ---------------------------------------------------------------- campaign policy defaults

CONSENT_CHANNELS = ("email", "push", "sms", "kakao", "kakao_brand")


def _policy_page(request: Request, state: AppState, *, status_code: int = 200, **extra: object) -> HTMLResponse:
    pol = extra.pop("policy", None) or load_policy(state.workspace)
    cap_rows = max(MAX_CAPS, len(pol.frequency_caps) + 1)
    return render(request, "settings_policy.html", {"policy": pol, "consent_channels": CONSENT_CHANNELS,
                                                    "cap_channels": ("*", *CHANNELS), "cap_rows": cap_rows,
                                                    "tab": "policy", **extra},
                  status_code=status_code)


@router.get("/settings/policy", response_class=HTMLResponse)
def policy_page(request: Request, state: AppState = Depends(get_state),
                _user: User = Depends(current_user)) -> HTMLResponse:
    """Default campaign guardrails: consent traits, ad law, quiet hours, frequency caps."""
    try:
        return _policy_page(request, state)
    except SegmintError as exc:
        return _policy_page(request, state, policy=Policy(), error=str(exc))


def policy_from_form(form: dict[str, str]) -> dict[str, Any]:
    """The Policy mapping of the settings form (checkboxes absent = off; cap rows with an empty max dropped)."""
    caps = []
    rows = sorted(int(m.group(1)) for k in form if (m := re.fullmatch(r"cap_max_(\d{1,3})", k)))
    if len(rows) > MAX_CAP_ROWS:
        raise InvalidInput(f"at most {MAX_CAP_ROWS} frequency caps", where="frequency_caps")
    for i in rows:
        raw = (form.get(f"cap_max_{i}") or "").strip()
        if raw:
            caps.append({"channel": form.get(f"cap_channel_{i}") or "*", "max": raw,
                         "per": form.get(f"cap_per_{i}") or "day"})
    on = (lambda k: form.get(k) == "on")  # noqa: E731
    return {
        "consent_traits": {ch: form.get(f"consent_{ch}", "").strip() for ch in CONSENT_CHANNELS
                           if form.get(f"consent_{ch}", "").strip()},
        "informational_needs_consent": on("informational_needs_consent"),
        "korean_ad_law": on("korean_ad_law"), "ad_prefix": form.get("ad_prefix", "(광고)"),
        "night_consent_trait": form.get("night_consent_trait", "").strip() or "consent_night",
        "night_start": form.get("night_start") or "21:00", "night_end": form.get("night_end") or "08:00",
        "quiet_hours": {"enabled": on("quiet_enabled"), "start": form.get("quiet_start") or "21:00",
                        "end": form.get("quiet_end") or "08:00", "action": form.get("quiet_action") or "delay"},
        "frequency_caps": caps,
        "max_attempts": form.get("max_attempts") or 5,
    }


@router.post("/settings/policy", response_class=HTMLResponse, dependencies=[Depends(require_csrf)])
async def policy_save(request: Request, state: AppState = Depends(get_state),
                      _user: User = Depends(editor_user)) -> HTMLResponse:
    """Save the default campaign policy (new campaigns in the composer start from it)."""
    form = {k: str(v) for k, v in (await request.form()).items()}
    try:
        current = load_policy(state.workspace).model_dump(mode="json")
        data = policy_from_form(form)
        # what the form does not show (rate limits, batch sizes, consent traits of other channels) is kept
        data["consent_traits"] = {**{ch: tr for ch, tr in current["consent_traits"].items()
                                     if ch not in CONSENT_CHANNELS}, **data["consent_traits"]}
        pol = parse_policy({**current, **data})
    except SegmintError as exc:
        return _policy_page(request, state, status_code=exc.status_code, error=str(exc))
    save_policy(state.workspace, pol)
    return _policy_page(request, state, policy=pol, saved=True)
