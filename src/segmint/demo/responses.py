"""Simulated responses to a campaign in the demo shop: opens, clicks, unsubscribes and orders, labelled simulated.

The demo generator (demo/generate.py) gives every user latent traits that the store only shows through
behaviour: a category affinity (Dirichlet, alpha 0.35 per category), a push-open propensity (Beta(2, 5), with
18% who never open), an activity state (inactive users open 0.3x as often), and a session funnel (cart 0.3 x
checkout 0.6 x order 0.8). This module estimates those traits for each recipient from the events before the
send (posterior means under the generator's own priors) and draws responses from them:

- open: push = (2 + past push opens) / (7 + past push sends); email 0.2, kakao 0.45, in_app 0.5 (the
  generator's rates); x0.3 when the user has not visited in the last 14 days. SMS opens are not observable:
  a read is drawn with p 0.45 but no message_opened event is written.
- relevance of the message to the user: with a target category, K x the posterior affinity for it
  ((views in category + 0.35) / (views + 0.35 K)), clipped to [0.25, 4]; with a target event (e.g. a comment
  event for an event push), 2.0 if the user did it before, else 0.7; 1 with no target; x0.4 when the message
  is about a product whose reviews the user already read without buying (an assumption of this simulator,
  not of the generator: they weighed it and passed). Affinity uses the views of the last 30 days.
- click given open: min(0.9, 0.25 x relevance); order given click: min(0.9, 0.144 x relevance);
  unsubscribe given open without click: min(0.1, 0.02 / relevance).

Only rows the provider accepted (sent, delivered) respond; holdout users get no message and no simulated
events, so their conversions are whatever the shop's own data holds after the would-be send time.
Every event written carries `simulated: true` in its properties and `segmint-simulator` as its library;
message ids are `sim:<seed>:<campaign>:<occurrence>:<user>:<event>`, so simulating twice writes once.
Draws are uniform numbers hashed from (seed, campaign, occurrence, user): the same seed gives the same
responses whatever else is in the recipients table.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from segmint.analytics.campaign_report import DialectSql, query_with_table, recipients_table
from segmint.demo.catalog import CATEGORY_NAMES
from segmint.segments.compile import Compiler
from segmint.store.base import EventStore, WriteBatch
from segmint.store.schema import events_to_arrow

SIMULATOR = "segmint-simulator"
RESPONDING = ("sent", "delivered")
_EPOCH = datetime(1970, 1, 1)


@dataclass(frozen=True)
class ResponseModel:
    """The response parameters, taken from the demo generator's behavioural model."""

    open_rate: Mapping[str, float] = field(default_factory=lambda: {
        "email": 0.2, "kakao": 0.45, "kakao_brand": 0.45, "in_app": 0.5, "sms": 0.45, "webhook": 0.3,
        "outbox": 0.3})
    untracked_opens: tuple[str, ...] = ("sms",)  # channels whose reads leave no message_opened event
    push_prior: tuple[float, float] = (2.0, 5.0)  # Beta prior of the per-user push-open propensity
    affinity_alpha: float = 0.35  # Dirichlet prior per category
    inactive_factor: float = 0.3
    active_days: int = 14
    considered_factor: float = 0.4  # user read the target product's reviews before and still did not buy
    interest_days: int = 30  # category affinity is read from the views of the last 30 days (current interest)
    click_given_open: float = 0.25
    order_given_click: float = 0.3 * 0.6 * 0.8  # the generator's session funnel
    unsubscribe_given_open: float = 0.02
    open_delay_hours: float = 2.0
    fallback_revenue: float = 35_000.0


@dataclass
class Simulation:
    """What was drawn: the events (written unless dry) and counts per kind."""

    events: pa.Table
    counts: dict[str, int]
    written: int = 0


def _uniforms(seed: int, campaign: str, occurrence: str, user: str) -> list[float]:
    digest = hashlib.sha256(f"{seed}\x1f{campaign}\x1f{occurrence}\x1f{user}".encode()).digest()
    return [int.from_bytes(digest[i:i + 4], "big") / 2**32 for i in range(0, 32, 4)]


def _features_sql(dialect: str, anchor_max: datetime, typed: dict[str, str],
                  interest: timedelta) -> tuple[str, dict[str, Any]]:
    comp = Compiler(dialect, anchor_max, dict(typed))
    q = DialectSql(dialect)
    s = {name: comp.param(name, "str").sql(dialect=dialect)
         for name in ("product_viewed", "message_sent", "message_opened", "app_opened", "$page", "order_completed",
                      "review_viewed")}
    cat = comp.prop("e", ["category"], "str").sql(dialect=dialect)
    pid = comp.prop("e", ["product_id"], "str").sql(dialect=dialect)
    chan = comp.prop("e", ["channel"], "str").sql(dialect=dialect)
    rev = comp.prop("e", ["revenue"], "num").sql(dialect=dialect)
    q.params.update(comp.params)
    t1 = q.param("s_t1", anchor_max, "DateTime64(6, 'UTC')")
    recent = q.param("s_recent", int(interest / timedelta(microseconds=1)), "Int64")
    sql = f"""
WITH r AS (SELECT rid, user_id, channel, anchor_us, target_category, target_product, target_event FROM {q.rcp}),
ev AS (
  SELECT e.user_id AS user_id, e.event AS event, {q.epoch_us('e.ts')} AS t, {cat} AS cat, {pid} AS pid, {chan} AS chan,
         {rev} AS rev
  FROM events e
  WHERE (e.event IN ({', '.join(s.values())}) OR e.event IN (SELECT target_event FROM r))
    AND e.ts < {t1} AND e.user_id IN (SELECT user_id FROM r)),
f AS (
  SELECT r.rid AS rid,
    sum(CASE WHEN ev.event = {s['product_viewed']} AND ev.t >= r.anchor_us - {recent} THEN 1 ELSE 0 END) AS views,
    sum(CASE WHEN ev.event = {s['product_viewed']} AND ev.t >= r.anchor_us - {recent} AND ev.cat = r.target_category
        THEN 1 ELSE 0 END) AS views_target,
    sum(CASE WHEN ev.event = {s['message_sent']} AND ev.chan = r.channel THEN 1 ELSE 0 END) AS sends,
    sum(CASE WHEN ev.event = {s['message_opened']} AND ev.chan = r.channel THEN 1 ELSE 0 END) AS opens,
    max(CASE WHEN ev.event IN ({s['app_opened']}, {s['$page']}) THEN ev.t ELSE NULL END) AS last_visit_us,
    sum(CASE WHEN ev.event = {s['order_completed']} THEN 1 ELSE 0 END) AS orders,
    sum(CASE WHEN ev.event = {s['order_completed']} THEN coalesce(ev.rev, 0) ELSE 0 END) AS order_revenue,
    max(CASE WHEN ev.event = r.target_event THEN 1 ELSE 0 END) AS did_target,
    max(CASE WHEN ev.event = {s['review_viewed']} AND ev.pid = r.target_product THEN 1 ELSE 0 END) AS considered
  FROM r JOIN ev ON ev.user_id = r.user_id
  WHERE ev.t < r.anchor_us
  GROUP BY r.rid)
SELECT r.rid AS rid, CAST(coalesce(f.views, 0) AS BIGINT) AS views,
  CAST(coalesce(f.views_target, 0) AS BIGINT) AS views_target, CAST(coalesce(f.sends, 0) AS BIGINT) AS sends,
  CAST(coalesce(f.opens, 0) AS BIGINT) AS opens, f.last_visit_us AS last_visit_us,
  CAST(coalesce(f.orders, 0) AS BIGINT) AS orders, CAST(coalesce(f.order_revenue, 0) AS DOUBLE) AS order_revenue,
  CAST(coalesce(f.did_target, 0) AS BIGINT) AS did_target, CAST(coalesce(f.considered, 0) AS BIGINT) AS considered
FROM r LEFT JOIN f ON f.rid = r.rid ORDER BY r.rid"""
    if q.ch:
        sql += " SETTINGS join_use_nulls = 1"
    return sql, q.params


def recipient_features(store: EventStore, rcp: pa.Table,
                       interest: timedelta = timedelta(days=30)) -> list[dict[str, Any]]:
    """Per recipient row (in rid order): recent views overall and in the target category (within `interest`
    before the send), past sends and opens on
    the row's channel, last visit, orders and their revenue, and whether the user did the target event."""
    latest = pc.max(rcp["anchor"]).as_py()
    anchor_max = (latest or datetime(1970, 1, 1)) + timedelta(microseconds=1)
    sql, params = _features_sql(store.dialect, anchor_max, store.property_columns(), interest)
    (table,) = query_with_table(store, rcp, [(sql, params)])
    return table.to_pylist()


def _with_targets(rcp: pa.Table, users: list[str], targets: Mapping[str, str] | str | None,
                  target_event: str | None, products: Mapping[str, str] | None = None) -> pa.Table:
    cats = [targets.get(u) or "" for u in users] if isinstance(targets, Mapping) else [targets or ""] * len(users)
    rcp = rcp.append_column("target_category", pa.array(cats, pa.string()))
    rcp = rcp.append_column("target_product", pa.array([(products or {}).get(u) or "" for u in users], pa.string()))
    return rcp.append_column("target_event", pa.array([target_event or ""] * len(users), pa.string()))


@dataclass
class _Prepared:
    rcp: pa.Table
    users: list[str]
    cols: dict[str, list[Any]]
    probabilities: list[dict[str, float]]
    revenue: list[float]


def _prepare(store: EventStore, recipients: pa.Table | Sequence[Mapping[str, Any]],
             targets: Mapping[str, str] | str | None, target_event: str | None, model: ResponseModel,
             products: Mapping[str, str] | None = None) -> _Prepared:
    rcp = recipients_table(recipients)
    users = rcp["user_id"].to_pylist()
    rcp = _with_targets(rcp, users, targets, target_event, products)
    feats = recipient_features(store, rcp, timedelta(days=model.interest_days))
    k = len(CATEGORY_NAMES)
    buyers = [f["order_revenue"] / f["orders"] for f in feats if f["orders"]]
    typical = sum(buyers) / len(buyers) if buyers else model.fallback_revenue
    cols = {c: rcp[c].to_pylist() for c in ("campaign_id", "occurrence", "variant", "channel", "status", "anchor",
                                               "target_category", "target_event")}
    probs, revenue = [], []
    for i, f in enumerate(feats):
        channel, anchor = cols["channel"][i], cols["anchor"][i]
        if channel == "push":
            a, b = model.push_prior
            p_open = (a + f["opens"]) / (a + b + f["sends"])
        else:
            p_open = model.open_rate.get(channel, 0.3)
        last = f["last_visit_us"]
        cutoff = anchor - timedelta(days=model.active_days) if anchor is not None else None
        active = last is not None and cutoff is not None and last >= (cutoff - _EPOCH) / timedelta(microseconds=1)
        p_open *= 1.0 if active else model.inactive_factor
        relevance = 1.0
        if cols["target_category"][i]:
            affinity = (f["views_target"] + model.affinity_alpha) / (f["views"] + model.affinity_alpha * k)
            relevance *= min(4.0, max(0.25, affinity * k))
        if cols["target_event"][i]:
            relevance *= 2.0 if f["did_target"] else 0.7
        if f["considered"]:  # already read this product's reviews and did not buy: the reminder adds little
            relevance *= model.considered_factor
        probs.append({"open": p_open, "relevance": relevance,
                      "click_given_open": min(0.9, model.click_given_open * relevance),
                      "order_given_click": min(0.9, model.order_given_click * relevance),
                      "unsubscribe_given_open": min(0.1, model.unsubscribe_given_open / relevance)})
        revenue.append(f["order_revenue"] / f["orders"] if f["orders"] else typical)
    return _Prepared(rcp, users, cols, probs, revenue)


def response_probabilities(store: EventStore, recipients: pa.Table | Sequence[Mapping[str, Any]], *,
                           targets: Mapping[str, str] | str | None = None, target_event: str | None = None,
                           products: Mapping[str, str] | None = None,
                           model: ResponseModel | None = None) -> list[dict[str, Any]]:
    """Per ledger row: user_id and the model's open, click-given-open, order-given-click probabilities."""
    prep = _prepare(store, recipients, targets, target_event, model or ResponseModel(), products)
    return [{"user_id": u, **p} for u, p in zip(prep.users, prep.probabilities, strict=True)]


def simulate_responses(store: EventStore, recipients: pa.Table | Sequence[Mapping[str, Any]], *, seed: int = 0,
                       targets: Mapping[str, str] | str | None = None, target_event: str | None = None,
                       products: Mapping[str, str] | None = None, window: timedelta = timedelta(days=3),
                       model: ResponseModel | None = None, include_sends: bool = True,
                       write: bool = True) -> Simulation:
    """Draw simulated responses for a campaign's ledger rows and write them as events (see module docstring).

    `targets`: the category the message is about, one for everyone or per user id (e.g. the category of the
    user's cart item); `target_event`: an event that makes the message relevant (e.g. comment_event_joined);
    `products`: per user, the product the message is about (e.g. the cart item).
    """
    model = model or ResponseModel()
    prep = _prepare(store, recipients, targets, target_event, model, products)
    cols, users = prep.cols, prep.users
    records: list[dict[str, Any]] = []
    counts = {"sent": 0, "opened": 0, "clicked": 0, "unsubscribed": 0, "converted": 0}
    for i, p in enumerate(prep.probabilities):
        if cols["status"][i] not in RESPONDING:
            continue
        cid, occ, user, variant, channel = (cols["campaign_id"][i], cols["occurrence"][i], users[i],
                                            cols["variant"][i], cols["channel"][i])
        anchor: datetime = cols["anchor"][i]
        u = _uniforms(seed, cid, occ, user)
        props = {"campaign_id": cid, "variant": variant, "channel": channel, "occurrence": occ, "simulated": True}

        def emit(event: str, ts: datetime, extra: Mapping[str, Any] | None = None, *, _user: str = user,
                 _props: dict[str, Any] = props, _cid: str = cid, _occ: str = occ) -> None:
            records.append({"message_id": f"sim:{seed}:{_cid}:{_occ}:{_user}:{event}", "type": "track",
                            "event": event, "user_id": _user, "ts": ts, "received_at": ts,
                            "properties": {**_props, **(extra or {})},
                            "context": {"library": {"name": SIMULATOR}, "simulated": True}, "source": "segmint"})

        counts["sent"] += 1
        if include_sends:
            emit("message_sent", anchor)
        if u[0] >= p["open"]:
            continue
        opened_at = anchor + timedelta(hours=min(-math.log(1 - u[4]) * model.open_delay_hours,
                                                 window.total_seconds() / 7200))
        if channel not in model.untracked_opens:
            counts["opened"] += 1
            emit("message_opened", opened_at)
        if u[1] >= p["click_given_open"]:
            if u[2] < p["unsubscribe_given_open"]:
                counts["unsubscribed"] += 1
                emit("message_unsubscribed", opened_at + timedelta(seconds=60))
            continue
        clicked_at = opened_at + timedelta(seconds=20 + 100 * u[5])
        counts["clicked"] += 1
        emit("message_clicked", clicked_at)
        if u[3] >= p["order_given_click"]:
            continue
        remaining = anchor + window - clicked_at
        ordered_at = clicked_at + remaining * (0.05 + 0.75 * u[6])
        revenue = int(round(prep.revenue[i] * (0.6 + 0.8 * u[7]), -2))
        counts["converted"] += 1
        emit("order_completed", ordered_at, {"order_id": f"SIM-{seed}-{cid}-{occ}-{user}", "revenue": revenue,
                                             "item_count": 1})
    events = events_to_arrow(records)
    written = store.write(WriteBatch(events=events, skip_stored=True)) if write and records else 0
    return Simulation(events, counts, written)
