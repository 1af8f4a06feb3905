"""UI campaign pages: the list (`/campaigns`), the composer (`/campaigns/new`) and a campaign's report
(`/campaigns/ID/report`: funnel, suppression reasons, metrics and uplift per variant x segment).

Saving, previewing and sending go to the campaign REST API (/api/campaigns) with the UI session and its
CSRF header; that API refuses viewers (web/roles.py lets them call only the read-only draft preview)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import quote

import orjson
from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import HTMLResponse, JSONResponse
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from segmint.analytics.campaign_report import workspace_report
from segmint.api.deps import AppState, get_state
from segmint.appdb.campaigns import LedgerRow
from segmint.appdb.users import User
from segmint.campaigns import repo
from segmint.campaigns.assignment import HOLDOUT
from segmint.campaigns.model import CHANNELS, Campaign, TriggeredSchedule, parse_campaign
from segmint.errors import NotFound, SegmintError
from segmint.segments import saved
from segmint.taxonomy.runtime import workspace_taxonomy
from segmint.web.campaign_dryrun import dry_run
from segmint.web.i18n import CATALOG, request_lang, translator
from segmint.web.kakao_fields import check_kakao, vendor_request
from segmint.web.policy_defaults import load_policy
from segmint.web.render import current_user, render, require_csrf

router = APIRouter(tags=["web"], include_in_schema=False)
CID = Path(..., pattern=r"^[A-Za-z0-9_.-]{1,128}$")
FUNNEL = ("audience", "suppressed", "sent", "delivered", "opened", "clicked", "converted")
SAMPLE_USERS = 30
ZONES = ("Asia/Seoul", "UTC", "Asia/Tokyo", "Asia/Shanghai", "Asia/Singapore", "America/Los_Angeles",
         "America/New_York", "Europe/London")  # offered for recurring schedules (any IANA name may be typed)
MIN_GROUP = 30  # below this many measured users per group an uplift is not worth reading


def report_url(campaign_id: str) -> str:
    """The report page of a campaign."""
    return "/campaigns/" + quote(campaign_id, safe="") + "/report"


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else ""


def last_sends(engine: Any) -> dict[str, datetime]:
    """The latest send time per campaign (from the delivery ledger; holdout rows do not count)."""
    with Session(engine) as s:
        q = (select(LedgerRow.campaign_id, func.max(LedgerRow.sent_at))
             .where(LedgerRow.status.in_(("sent", "delivered", "bounced")))
             .group_by(LedgerRow.campaign_id))
        return {cid: at for cid, at in s.execute(q) if at is not None}


def schedule_text(c: Campaign, t: Any) -> str:
    """A campaign's schedule in a few words: now, at a time (UTC or local), cron, or trigger + delay."""
    sc = c.schedule
    if isinstance(sc, TriggeredSchedule):
        what = t("sched.on_entry") + " " + (sc.segment or "") if sc.event == "segment_entered" else sc.event
        delay = window_text(sc.delay.total_seconds(), t) if sc.delay.total_seconds() else "0"
        return f"{t('sched.triggered_short')}: {what} +{delay}"
    if sc.type == "recurring":
        return f"cron {sc.cron} ({sc.timezone or t('sched.workspace_zone')})"
    if sc.at is None:
        return t("camp.schedule_now")
    at = sc.at.strftime("%Y-%m-%d %H:%M")
    return f"{at} {t('sched.local_short') if sc.local_time else 'UTC'}"


@router.get("/campaigns", response_class=HTMLResponse)
def campaigns_page(request: Request, state: AppState = Depends(get_state),
                   _user: User = Depends(current_user)) -> HTMLResponse:
    """Every campaign: name, status, channel, target segments, created, last send, link to its report."""
    engine = state.workspace.appdb
    t = translator(request_lang(request))
    sent = last_sends(engine)
    rows = [{"id": sc.campaign.id, "name": sc.campaign.name or sc.campaign.id, "status": sc.status,
             "channels": sc.campaign.channels, "target": sc.campaign.target, "exclude": sc.campaign.exclude,
             "created": _when(sc.created_at), "last_send": _when(sent.get(sc.campaign.id)),
             "schedule": schedule_text(sc.campaign, t), "report_url": report_url(sc.campaign.id),
             "edit_url": "/campaigns/new?from=" + quote(sc.campaign.id, safe="")} for sc in repo.list_campaigns(engine)]
    rows.sort(key=lambda r: r["created"], reverse=True)
    return render(request, "campaigns.html", {"campaigns": rows})


@router.get("/campaigns/new", response_class=HTMLResponse)
def composer_page(request: Request, state: AppState = Depends(get_state),
                  from_id: str | None = Query(None, alias="from", pattern=r"^[A-Za-z0-9_.-]{1,128}$"),
                  _user: User = Depends(current_user)) -> HTMLResponse:
    """The campaign composer, empty or filled from a stored campaign (`?from=ID`: edit, or copy under a new id);
    viewers see it read-only (the API refuses their save and send)."""
    ws = state.workspace
    prefill = None
    if from_id:
        try:
            prefill = repo.get_campaign(ws.appdb, from_id).campaign.model_dump(mode="json")
        except NotFound:
            t = translator(request_lang(request))
            return render(request, "error.html", {"message": t("camp.unknown").format(id=from_id)},
                          status_code=404)
    users = [r["user_id"] for r in ws.store.query(
        "SELECT user_id FROM profiles ORDER BY last_seen DESC NULLS LAST, user_id LIMIT ?",
        [SAMPLE_USERS]).to_pylist()]
    try:
        events = [r["event"] for r in ws.store.query(
            "SELECT DISTINCT event FROM events ORDER BY event LIMIT 500").to_pylist()]
    except SegmintError:
        events = []
    try:
        policy = load_policy(ws).model_dump(mode="json")
    except SegmintError:
        policy = None  # the model's defaults apply; the settings page shows the file's problem
    qh = ((prefill or {}).get("policy") or policy or {}).get("quiet_hours") or {}
    quiet = (str(qh.get("start", "21:00"))[:5], str(qh.get("end", "08:00"))[:5])
    try:
        tax = workspace_taxonomy(ws)
    except SegmintError:
        tax = None
    names = {e: (tax.events[e].display_name or "") if tax and e in tax.events else "" for e in events}
    from segmint.api.routers.web_segments import builder_data

    picked = builder_data(state, request_lang(request))  # the segment builder's pickers, for the goal's filters
    filter_data = orjson.dumps({"events": picked["events"], "i18n": picked["i18n"]}).decode().replace("<", "\\u003c")
    context = {"filter_data": filter_data,
               "segments": [s.name for s in saved.list_segments(ws.appdb)], "channels": CHANNELS, "quiet": quiet,
               "users": users, "events": events or ["order_completed"], "event_names": names, "prefill": prefill,
               "policy_defaults": policy, "zone": ws.config.timezone, "zones": ZONES}
    return render(request, "campaign_new.html", context)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def _won(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def uplift_cell(cmp: dict[str, Any] | None, t: Any) -> dict[str, Any]:
    """Conversion uplift vs control as display text, with a note when the groups are too small to tell."""
    if cmp is None:
        return {"text": "-", "ci": "", "p": "", "note": t("camp.no_control")}
    conv = cmp["conversion"]
    n, base_n = conv["n"], conv["baseline_n"]
    need = cmp.get("sample_size_per_group")
    note = ""
    if min(n, base_n) < MIN_GROUP:
        note = t("camp.too_small").format(n=min(n, base_n), min=MIN_GROUP)
    elif conv["p_value"] is None:
        note = t("camp.no_test")
    elif need and min(n, base_n) < need:
        note = t("camp.underpowered").format(need=f"{need:,}", mde=f"{cmp.get('mde_relative', 0.2) * 100:.0f}")
    diff, (lo, hi) = conv["diff"], conv["diff_ci"]
    pp = (lambda v: f"{v * 100:+.1f}%p")  # noqa: E731
    rev = cmp.get("revenue_per_recipient") or {}
    rlo, rhi = (rev.get("diff_ci") or [None, None])[:2]
    return {"text": "-" if diff is None else pp(diff),
            "ci": "" if lo is None or hi is None else f"[{pp(lo)}, {pp(hi)}]",
            "p": "" if conv["p_value"] is None else f"{conv['p_value']:.3f}",
            "significant": conv["p_value"] is not None and conv["p_value"] < 0.05 and not note, "note": note,
            "rpr": "" if rev.get("diff") is None else f"{rev['diff']:+,.0f}",
            "rpr_ci": "" if rlo is None or rhi is None else f"[{rlo:+,.0f}, {rhi:+,.0f}]",
            "rpr_p": "" if rev.get("p_value") is None else f"{rev['p_value']:.3f}"}


def window_text(seconds: float, t: Any = None) -> str:
    """A duration in seconds as 3d / 12h / 90m, or in the page's language with `t` (3일 / 12시간 / 90분)."""
    for unit, size in (("d", 86_400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            n = int(seconds // size)
            return t("win." + unit).format(n=n) if t else f"{n}{unit}"
    return t("win.s").format(n=f"{seconds:g}") if t else f"{seconds:g}s"


def report_view(report: dict[str, Any], t: Any) -> dict[str, Any]:
    """The report API's JSON turned into table rows and chart data for the page."""
    rows = report["rows"]
    segments = {r["segment"] for r in rows}
    overall = [r for r in rows if r["segment"] is None] or rows  # one segment: the rows are the totals
    order = sorted({r["variant"] for r in rows}, key=lambda v: (v == HOLDOUT, v))
    overall.sort(key=lambda r: order.index(r["variant"]))
    cmps = {(c["segment"], c["variant"]): c for c in report["comparisons"] if c["kind"] == "vs_control"}
    has_control = any(r["variant"] == HOLDOUT for r in rows)
    table = []
    for r in sorted(rows, key=lambda r: (r["segment"] is None, r["segment"] or "", order.index(r["variant"]))):
        control = r["variant"] == HOLDOUT
        table.append({
            "variant": t("camp.control") if control else r["variant"], "control": control,
            "segment": r["segment"] if r["segment"] is not None else t("camp.all_segments"),
            "audience": f"{r['audience']:,}", "suppressed": f"{r['suppressed']:,}", "sent": f"{r['sent']:,}",
            "measured": f"{r['measured']:,}", "open_rate": _pct(r["open_rate"]), "ctr": _pct(r["ctr"]),
            "conversion_rate": _pct(r["conversion_rate"]), "rpr": _won(r["revenue_per_recipient"]),
            "unsubscribe_rate": _pct(r["unsubscribe_rate"]),
            "uplift": None if control else uplift_cell(cmps.get((r["segment"], r["variant"])) if has_control
                                                       else None, t)})
    reasons = sorted({k for r in overall for k in r["suppressed_by_reason"]})
    chart = {
        "stages": [t("camp.stage_" + s) for s in FUNNEL],
        "series": [{"name": t("camp.control") if r["variant"] == HOLDOUT else r["variant"],
                    "data": [r[s] for s in FUNNEL]} for r in overall],
        "reasons": [t("reason." + k) if "reason." + k in CATALOG["ko"] else k for k in reasons],
        "reason_series": [{"name": t("camp.control") if r["variant"] == HOLDOUT else r["variant"],
                           "data": [r["suppressed_by_reason"].get(k, 0) for k in reasons]} for r in overall],
        "labels": {"count": t("camp.users")},
    }
    return {"table": table, "chart": chart, "has_control": has_control, "multi_segment": len(segments) > 1,
            "suppressed_total": sum(r["suppressed"] for r in overall), "goal": report["goal"],
            "pending": sum(r["pending"] for r in overall),
            "window": window_text(report["goal"]["window_seconds"], t),
            "where": goal_where_text(report["goal"]["where"])}


def event_display_name(ws: Any, event: str) -> str:
    """The taxonomy's display name of an event ("" when it has none or the taxonomy cannot be read)."""
    try:
        tax = workspace_taxonomy(ws)
    except SegmintError:
        return ""
    spec = tax.events.get(event) if tax else None
    return (spec.display_name or "") if spec else ""


def goal_where_text(filters: list[Any]) -> str:
    """A goal's property filters in the segment language (`revenue >= 50000, coupon_id exists`)."""
    from segmint.segments import model as m
    from segmint.segments.dsl import to_text

    if not filters:
        return ""
    try:
        parsed = [m.PropertyFilter.model_validate(f) for f in filters]
        return to_text(m.Performed(event="x", where=parsed)).split(" where ", 1)[1]
    except (ValueError, IndexError):
        return ", ".join(str(f) for f in filters)


@router.get("/campaigns/{campaign_id}/report", response_class=HTMLResponse)
async def report_page(request: Request, campaign_id: str = CID, state: AppState = Depends(get_state),
                      _user: User = Depends(current_user)) -> HTMLResponse:
    """A campaign's funnel, suppression reasons and per variant x segment metrics with uplift vs control."""
    t = translator(request_lang(request))
    try:
        sc = repo.get_campaign(state.workspace.appdb, campaign_id)
    except NotFound:
        return render(request, "error.html", {"message": t("camp.unknown").format(id=campaign_id)},
                      status_code=404)
    try:
        report = await run_in_threadpool(workspace_report, state.workspace, campaign_id)
    except NotFound:
        report = None  # nothing planned yet
    except SegmintError as exc:
        return render(request, "campaign_report.html",
                      {"c": sc, "view": None, "error": getattr(exc, "message", str(exc))})
    view = report_view(report, t) if report else None
    if view:
        view["goal_label"] = event_display_name(state.workspace, view["goal"]["event"])
    return render(request, "campaign_report.html", {"c": sc, "view": view, "error": "",
                                                    "report_api": f"/api/campaigns/{quote(campaign_id)}/report"})



# ---------------------------------------------------------------- dry run (composer)


def guardrail_rows(c: Campaign, result: dict[str, Any], t: Any) -> list[dict[str, Any]]:
    """The guardrails that apply to a campaign, each with how many users the dry run says it stops or delays."""
    pol = c.policy
    reasons, delayed = result.get("reasons", {}), result.get("delayed", {})
    needs_consent = c.advertising or pol.informational_needs_consent
    consent = ", ".join(f"{t('chan.s_' + ch)} → {pol.consent_traits[ch]}" for ch in c.channels
                        if ch in pol.consent_traits)
    ad_law = c.advertising and pol.korean_ad_law
    hhmm = (lambda v: v.strftime("%H:%M"))  # noqa: E731
    rows = [
        ("no_address", True, t("rail.address")),
        ("no_consent", needs_consent and bool(consent), t("rail.consent") + (f": {consent}" if consent else "")),
        ("unsubscribed", True, t("rail.unsubscribed")),
        ("ad_law_alimtalk", ad_law and "kakao" in c.channels, t("rail.alimtalk")),
        ("frequency_cap", bool(pol.frequency_caps), t("rail.caps") + ": " + ", ".join(
            f"{t('pol.all_channels') if f.channel == '*' else t('chan.s_' + f.channel)} {f.max}/{t('pol.per_' + f.per)}"
            for f in pol.frequency_caps) or "-"),
        ("ad_law_night", ad_law, t("rail.night").format(start=hhmm(pol.night_start), end=hhmm(pol.night_end),
                                                        trait=pol.night_consent_trait)),
        ("quiet_hours", pol.quiet_hours.enabled, t("rail.quiet").format(
            start=hhmm(pol.quiet_hours.start), end=hhmm(pol.quiet_hours.end),
            action=t("pol.action_" + pol.quiet_hours.action))),
        ("missing_variable", True, t("rail.render")),
        ("audience_cap", c.audience_cap is not None,
         t("rail.audience_cap").format(n=f"{c.audience_cap:,}" if c.audience_cap else "-")),
    ]
    if ad_law:
        rows.insert(6, ("ad_law_content", True, t("rail.ad_content").format(prefix=pol.ad_prefix)))
    if isinstance(c.schedule, TriggeredSchedule):
        rows.append(("recheck_failed", c.schedule.recheck and bool(c.target), t("rail.recheck")))
        rows.append(("cancelled", bool(c.schedule.cancel_on),
                     t("rail.cancel_on") + ": " + (", ".join(c.schedule.cancel_on) or "-")))
    recheck = result.get("recheck") or {}  # the send-time re-check, simulated on recent triggers
    out = []
    for code, on, text in rows:
        stopped = reasons.get(code, 0) + (reasons.get("template_error", 0) if code == "missing_variable" else 0)
        if code in ("recheck_failed", "cancelled"):
            stopped += recheck.get(code, 0)
        out.append({"code": code, "on": bool(on), "text": text, "suppressed": stopped,
                    "delayed": delayed.get(code, 0)})
    return out


async def _json_body(request: Request) -> Any:
    """The request's JSON body, or None when it is not JSON (the campaign model then says what is missing)."""
    try:
        return await request.json()
    except ValueError:
        return None


@router.post("/ui/campaigns/dry-run", response_class=HTMLResponse, dependencies=[Depends(require_csrf)])
async def dry_run_fragment(request: Request, state: AppState = Depends(get_state),
                           _user: User = Depends(current_user)) -> HTMLResponse:
    """The composer's dry run (JSON campaign in, HTML out): audience, outcomes, and per guardrail how many it
    would suppress or delay, from the campaign library's audience and guardrails; nothing is written."""
    t = translator(request_lang(request))
    body = await _json_body(request)
    try:
        c = parse_campaign(body)
        result = await run_in_threadpool(dry_run, state.workspace, c)
    except SegmintError as exc:
        return render(request, "campaign_dryrun.html", {"error": str(exc)}, status_code=exc.status_code)
    return render(request, "campaign_dryrun.html", {
        "error": "", "r": result, "rails": guardrail_rows(c, result, t),
        "due": result["due_at"][:16].replace("T", " "), "holdout_name": t("camp.control"), "HOLDOUT": HOLDOUT})


# ---------------------------------------------------------------- KakaoTalk fields (composer)


def _draft(body: Any) -> Campaign:
    if isinstance(body, dict) and not body.get("id"):
        body = {**body, "id": "preview"}
    return parse_campaign(body)


@router.post("/ui/campaigns/check", dependencies=[Depends(require_csrf)])
async def check_fragment(request: Request, _user: User = Depends(current_user)) -> JSONResponse:
    """The composer's inline checks (JSON campaign in): KakaoTalk fields by variant, channel and row, each with
    its message in the page's language; a definition the model refuses comes back as one `invalid` text."""
    t = translator(request_lang(request))
    body = await _json_body(request)
    if isinstance(body, dict):  # fields the KakaoTalk checks do not read may still be empty while composing
        sender = body.get("sender") if isinstance(body.get("sender"), dict) else {}
        body = {**body, "target": body.get("target") or ["-"],
                "sender": {**sender, "name": sender.get("name") or "-", "contact": sender.get("contact") or "-"}}
    try:
        c = _draft(body)
    except SegmintError as exc:
        return JSONResponse({"errors": [], "invalid": str(exc)})
    return JSONResponse({"errors": [e.as_dict(t) for e in check_kakao(c)], "invalid": None})


@router.post("/ui/campaigns/preview", dependencies=[Depends(require_csrf)])
async def preview_fragment(request: Request, user_id: str = Query(..., min_length=1, max_length=512),
                           state: AppState = Depends(get_state), _user: User = Depends(current_user)) -> JSONResponse:
    """A draft's preview for one user (as the campaign API's) plus, for KakaoTalk, the NHN Cloud request each
    variant would send and the composer's inline checks."""
    from segmint.campaigns.preview import preview_user

    t = translator(request_lang(request))
    body = await _json_body(request)
    try:
        c = _draft(body)
        out = await run_in_threadpool(preview_user, state.workspace, c, user_id)
    except SegmintError as exc:
        return JSONResponse({"message": exc.message, "where": exc.where}, status_code=exc.status_code)
    for v in out["variants"]:
        msg = v.get("message")
        v["request"] = vendor_request(v["channel"], msg, user_id=user_id, campaign_id=c.id) if msg else None
    out["errors"] = [e.as_dict(t) for e in check_kakao(c)]
    return JSONResponse(jsonable_encoder(out))
