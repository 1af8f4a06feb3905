"""The demo's campaign comparison: for each seed A1-A4, a campaign on the advanced segment against one on the
basic segment, each with a holdout, responses simulated from the demo shop's behavioural model.

Design (docs/experiments.md): the campaigns are sent at `now - window` of the demo shop (so the shop's own
orders after that time are the organic baseline both arms share). Each seed's eligible users are split by a
hash into a basic arm and an advanced arm (a strategy-level randomization, so no user gets both messages);
the basic campaign targets basic-segment members of its arm, the advanced one advanced-segment members of
its arm. Each campaign keeps a holdout (campaigns.assignment). A demo consent check suppresses users without
consent for the channel (reason `no_consent`; real campaigns get this from the campaigns guardrails).
Responses come from demo.responses (labelled simulated). The report is analytics.campaign_report.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
import pyarrow as pa

from segmint.analytics.campaign_report import CampaignReport, DialectSql, Goal, campaign_report, query_with_table
from segmint.campaigns.assignment import HOLDOUT, Split, Variant, assign, bucket
from segmint.demo.responses import simulate_responses
from segmint.errors import InvalidInput
from segmint.segments.compile import Compiler
from segmint.segments.dsl import parse
from segmint.segments.evaluate import evaluate
from segmint.segments.seeds import SEEDS
from segmint.store.base import EventStore

CONSENT_TRAIT = {"push": "consent_push", "email": "consent_email", "sms": "consent_sms", "kakao": "consent_sms"}


@dataclass(frozen=True)
class SeedCampaign:
    """The message a seed's campaigns send: channel, and what makes it relevant to a user."""

    seed: str
    title: str
    channel: str
    target: str | None = None  # "cart": the user's last cart item's category; "repurchase": most-bought category
    target_event: str | None = None  # users who did this event before find the message relevant


SEED_CAMPAIGNS = [
    SeedCampaign("A1", "쿠폰 다운로드 유도 푸시", "push"),
    SeedCampaign("A2", "장바구니 리마인드 카카오톡", "kakao", target="cart"),
    SeedCampaign("A3", "휴면 고객 이벤트 푸시", "push", target_event="comment_event_joined"),
    SeedCampaign("A4", "재구매 넛지 이메일", "email", target="repurchase"),
]


@dataclass
class ArmResult:
    """One campaign of a seed (basic or advanced): sizes, rates and uplift vs its holdout."""

    kind: str
    campaign_id: str
    segment_size: int
    report: CampaignReport

    def row(self, variant: str) -> Any:
        """The report row of a variant (or the holdout), all segments."""
        rows = sorted((r for r in self.report.rows if r.variant == variant), key=lambda r: r.segment is not None)
        return rows[0] if rows else None

    def uplift(self) -> dict[str, Any] | None:
        """Variant A vs holdout comparison."""
        found = sorted((c for c in self.report.comparisons if c["baseline"] == HOLDOUT),
                       key=lambda c: c["segment"] is not None)
        return found[0] if found else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"kind": self.kind, "campaign_id": self.campaign_id, "segment_size": self.segment_size,
                "report": self.report.to_dict()}


@dataclass
class SeedResult:
    """Basic and advanced campaigns of one seed."""

    seed: SeedCampaign
    basic: ArmResult
    advanced: ArmResult

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"seed": self.seed.seed, "title": self.seed.title, "channel": self.seed.channel,
                "basic": self.basic.to_dict(), "advanced": self.advanced.to_dict()}


def _targets(store: EventStore, users: list[str], kind: str, as_of: datetime) -> dict[str, str]:
    """Per user, the category a message is about: last cart item's, or the most-bought category."""
    return {u: cat for u, (cat, _) in _target_items(store, users, kind, as_of).items()}


def _target_items(store: EventStore, users: list[str], kind: str, as_of: datetime) -> dict[str, tuple[str, str]]:
    """Per user, (category, product_id) a message is about: the last cart item, or the most-bought product."""
    event = "cart_added" if kind == "cart" else "product_purchased"
    comp = Compiler(store.dialect, as_of, store.property_columns())
    q = DialectSql(store.dialect)
    cat = comp.prop("e", ["category"], "str").sql(dialect=store.dialect)
    pid = comp.prop("e", ["product_id"], "str").sql(dialect=store.dialect)
    ev = comp.param(event, "str").sql(dialect=store.dialect)
    q.params.update(comp.params)
    t = q.param("c_t", as_of, "DateTime64(6, 'UTC')")
    base = f"""WITH r AS (SELECT DISTINCT user_id FROM {q.rcp}),
x AS (SELECT e.user_id AS user_id, {cat} AS cat, {pid} AS pid, e.ts AS ts, e.message_id AS mid FROM events e
      WHERE e.event = {ev} AND e.ts < {t} AND e.user_id IN (SELECT user_id FROM r))"""
    if kind == "cart":
        sql = base + """
SELECT user_id, cat, pid FROM (SELECT user_id, cat, pid, row_number() OVER (PARTITION BY user_id
  ORDER BY ts DESC, mid DESC) AS k FROM x WHERE cat IS NOT NULL) y WHERE k = 1"""
    else:
        sql = base + """
SELECT user_id, cat, pid FROM (SELECT user_id, cat, pid, row_number() OVER (PARTITION BY user_id
  ORDER BY n DESC, last DESC, pid) AS k FROM (SELECT user_id, cat, pid, count(*) AS n, max(ts) AS last FROM x
  WHERE cat IS NOT NULL GROUP BY user_id, cat, pid) z) y WHERE k = 1"""
    (table,) = query_with_table(store, pa.table({"user_id": pa.array(users, pa.string())}), [(sql, q.params)])
    return {r["user_id"]: (r["cat"], r["pid"] or "") for r in table.to_pylist()}


def _consent(store: EventStore, users: list[str], channel: str) -> set[str]:
    """Users whose profile grants consent for the channel (the demo's stand-in for the campaigns guardrails)."""
    trait = CONSENT_TRAIT.get(channel)
    q = DialectSql(store.dialect)
    sql = f"""SELECT p.user_id AS user_id, CAST(p.traits AS VARCHAR) AS traits FROM profiles p
WHERE p.user_id IN (SELECT user_id FROM {q.rcp})"""
    (table,) = query_with_table(store, pa.table({"user_id": pa.array(users, pa.string())}), [(sql, {})])
    if trait is None:
        return set(users)
    return {r["user_id"] for r in table.to_pylist() if orjson.loads(r["traits"] or "{}").get(trait) is True}


def _ledger(campaign_id: str, seed: SeedCampaign, users: list[str], consented: set[str], split: Split,
            sent_at: datetime, segment: str) -> list[dict[str, Any]]:
    rows = []
    for u in users:
        group = assign(campaign_id, u, split)
        ok = u in consented
        status = ("holdout" if group == HOLDOUT else "sent") if ok else "suppressed"
        rows.append({"campaign_id": campaign_id, "occurrence": "once", "user_id": u, "variant": group,
                     "channel": seed.channel, "segment": segment, "status": status,
                     "reason": "" if ok else "no_consent", "queued_at": sent_at,
                     "sent_at": sent_at if ok else None})
    return rows


def compare_seed_campaigns(store: EventStore, now: datetime, *, seed: int = 42, holdout: float = 0.3,
                           window: timedelta = timedelta(days=3), seeds: list[str] | None = None,
                           write: bool = True) -> list[SeedResult]:
    """Run the A1-A4 basic-vs-advanced comparison on a demo store whose data ends at `now` (naive UTC)."""
    if not 0 < holdout < 1:
        raise InvalidInput(f"holdout must be between 0 and 1, not {holdout}", where="holdout")
    chosen = [s for s in SEED_CAMPAIGNS if seeds is None or s.seed in seeds]
    if seeds is not None and len(chosen) != len(set(seeds)):
        known = ", ".join(s.seed for s in SEED_CAMPAIGNS)
        raise InvalidInput(f"unknown seed in {seeds} (known: {known})", where="seeds")
    texts = {s.id: s.text for s in SEEDS}
    sent_at = now - window
    split = Split(variants=[Variant(key="A")], holdout=holdout)
    goal = Goal(window=window)
    # Everything the campaigns are based on is read before any simulated event is written.
    plans = []
    for sc in chosen:
        members = {kind: evaluate(store, parse(texts[f"{sc.seed}-{kind}"]), sent_at) for kind in ("basic", "advanced")}
        arm = {u: "advanced" if bucket(f"demo-{sc.seed}", u, "strategy") < 0.5 else "basic"
               for u in set(members["basic"]) | set(members["advanced"])}
        for kind in ("basic", "advanced"):
            cid = f"demo-{sc.seed.lower()}-{kind}"
            users = sorted(u for u in members[kind] if arm[u] == kind)
            consented = _consent(store, users, sc.channel) if users else set()
            items = _target_items(store, users, sc.target, sent_at) if sc.target and users else {}
            targets = ({u: c for u, (c, _) in items.items()}, {u: p for u, (_, p) in items.items()}) if items \
                else (None, None)
            plans.append((sc, kind, cid, len(members[kind]), _ledger(cid, sc, users, consented, split, sent_at,
                                                                     f"{sc.seed}-{kind}"), targets))
    for sc, _kind, _cid, _size, ledger, (targets, products) in plans:
        if ledger:
            simulate_responses(store, ledger, seed=seed, targets=targets, products=products,
                               target_event=sc.target_event, window=window, write=write)
    arms: dict[tuple[str, str], ArmResult] = {}
    for sc, kind, cid, size, ledger, _ in plans:
        if not ledger:
            raise InvalidInput(f"{sc.seed}-{kind} has no members in this demo shop's arm; use more users",
                               where=f"{sc.seed}-{kind}")
        report = campaign_report(store, ledger, goal, simulated=True)
        arms[sc.seed, kind] = ArmResult(kind, cid, size, report)
    return [SeedResult(sc, arms[sc.seed, "basic"], arms[sc.seed, "advanced"]) for sc in chosen]


def _pct(x: float | None, digits: int = 1) -> str:
    return "-" if x is None else f"{100 * x:.{digits}f}%"


def comparison_rows(results: list[SeedResult]) -> list[dict[str, Any]]:
    """Flat rows for the printed table: one per seed x (basic, advanced)."""
    out = []
    for res in results:
        for arm in (res.basic, res.advanced):
            a, c, up = arm.row("A"), arm.row(HOLDOUT), arm.uplift()
            conv = (up or {}).get("conversion") or {}
            lo, hi = conv.get("diff_ci") or (None, None)
            out.append({
                "seed": res.seed.seed, "campaign": res.seed.title, "channel": res.seed.channel, "kind": arm.kind,
                "segment_size": arm.segment_size, "audience": (a.audience if a else 0) + (c.audience if c else 0),
                "suppressed": (a.suppressed if a else 0) + (c.suppressed if c else 0),
                "sent": a.sent if a else 0, "holdout": c.measured if c else 0,
                "open_rate": a.open_rate if a else None, "ctr": a.ctr if a else None,
                "conversion_rate": a.conversion_rate if a else None,
                "holdout_conversion_rate": c.conversion_rate if c else None,
                "uplift": conv.get("diff"), "uplift_ci": [lo, hi], "p_value": conv.get("p_value"),
                "revenue_per_recipient": a.revenue_per_recipient if a else None,
            })
    return out


def advanced_vs_basic(results: list[SeedResult]) -> list[dict[str, Any]]:
    """Per seed: CTR ratio and conversion-uplift difference of the advanced campaign over the basic one."""
    out = []
    for res in results:
        b, a = res.basic.row("A"), res.advanced.row("A")
        ub = ((res.basic.uplift() or {}).get("conversion") or {}).get("diff")
        ua = ((res.advanced.uplift() or {}).get("conversion") or {}).get("diff")
        out.append({"seed": res.seed.seed,
                    "ctr_ratio": (a.ctr / b.ctr) if a and b and a.ctr is not None and b.ctr else None,
                    "conversion_ratio": (a.conversion_rate / b.conversion_rate)
                    if a and b and a.conversion_rate is not None and b.conversion_rate else None,
                    "uplift_basic": ub, "uplift_advanced": ua,
                    "uplift_gain": ua - ub if ua is not None and ub is not None else None})
    return out


def render_table(results: list[SeedResult]) -> Any:
    """The comparison as a Rich table (labelled simulated)."""
    from rich.table import Table

    table = Table(title="시드 캠페인 비교: advanced vs basic (SIMULATED responses, demo shop behavioural model)")
    for col in ("seed", "kind", "channel", "audience", "sent", "holdout", "open", "CTR", "conv", "conv (holdout)",
                "uplift vs holdout [95% CI]", "p", "rev/recipient"):
        table.add_column(col, justify="left" if col in ("seed", "kind", "channel") else "right")
    for r in comparison_rows(results):
        lo, hi = r["uplift_ci"]
        ci = f"{_pct(r['uplift'])} [{_pct(lo)}, {_pct(hi)}]" if r["uplift"] is not None else "-"
        table.add_row(r["seed"], r["kind"], r["channel"], f"{r['audience']:,}", f"{r['sent']:,}",
                      f"{r['holdout']:,}", _pct(r["open_rate"]), _pct(r["ctr"]), _pct(r["conversion_rate"]),
                      _pct(r["holdout_conversion_rate"]), ci,
                      "-" if r["p_value"] is None else f"{r['p_value']:.3f}",
                      "-" if r["revenue_per_recipient"] is None else f"₩{r['revenue_per_recipient']:,.0f}")
    return table


def render_summary(results: list[SeedResult]) -> Any:
    """Advanced over basic per seed, as a Rich table."""
    from rich.table import Table

    table = Table(title="advanced / basic (SIMULATED)")
    for col in ("seed", "CTR x", "conversion x", "uplift basic", "uplift advanced", "uplift gain"):
        table.add_column(col, justify="left" if col == "seed" else "right")
    for r in advanced_vs_basic(results):
        table.add_row(r["seed"], "-" if r["ctr_ratio"] is None else f"{r['ctr_ratio']:.2f}",
                      "-" if r["conversion_ratio"] is None else f"{r['conversion_ratio']:.2f}",
                      _pct(r["uplift_basic"]), _pct(r["uplift_advanced"]), _pct(r["uplift_gain"]))
    return table
