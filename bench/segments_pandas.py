"""pandas baseline for the segment benchmark: the same members as the segment language, from a DataFrame.

The frame holds the events the five segments read (user_id, event, ts, product_id, category, revenue),
loaded once from the store before timing; each function computes one segment's members with ordinary
pandas (boolean masks, groupby, merge), the way an analyst would without a segment engine.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import pandas as pd

EVENTS = (
    "coupon_downloaded",
    "app_opened",
    "product_viewed",
    "cart_added",
    "product_purchased",
    "review_viewed",
    "order_completed",
    "comment_event_joined",
)
LOAD_SQL = f"""
    SELECT user_id, event, ts, p_product_id AS product_id, p_category AS category, p_revenue AS revenue
    FROM events WHERE user_id IS NOT NULL AND event IN ({", ".join(f"'{e}'" for e in EVENTS)})"""


def _upto(df: pd.DataFrame, now: datetime) -> pd.DataFrame:
    return df[df["ts"] <= now]


def a1(df: pd.DataFrame, users: set[str], now: datetime) -> set[str]:
    """A1 advanced: no coupon download ever; app open, >= 2 product views, a cart add in the last month."""
    e = _upto(df, now)
    coupon = set(e.loc[e["event"] == "coupon_downloaded", "user_id"])
    w = e[e["ts"] > now - timedelta(days=30)]
    opened = set(w.loc[w["event"] == "app_opened", "user_id"])
    views = w[w["event"] == "product_viewed"].groupby("user_id").size()
    carts = set(w.loc[w["event"] == "cart_added", "user_id"])
    return (opened & set(views.index[views >= 2]) & carts & users) - coupon


def a2(df: pd.DataFrame, users: set[str], now: datetime) -> set[str]:
    """A2 advanced: some cart add >= 3 days ago with no purchase of its product after it, >= 2 views of
    its category, and no review view of its product."""
    e = _upto(df, now)
    carts = e[(e["event"] == "cart_added") & (e["ts"] <= now - timedelta(days=3))]
    carts = carts.groupby(["user_id", "product_id", "category"], dropna=False)["ts"].max().reset_index()
    buys = e[(e["event"] == "product_purchased") & e["product_id"].notna()]
    buys = buys.groupby(["user_id", "product_id"])["ts"].max().rename("last_buy").reset_index()
    views = e[(e["event"] == "product_viewed") & e["category"].notna()]
    views = views.groupby(["user_id", "category"]).size().rename("views").reset_index()
    reviews = e[(e["event"] == "review_viewed") & e["product_id"].notna()][["user_id", "product_id"]]
    reviews = reviews.drop_duplicates().assign(reviewed=True)
    x = (
        carts.merge(views, on=["user_id", "category"])
        .merge(buys, on=["user_id", "product_id"], how="left")
        .merge(reviews, on=["user_id", "product_id"], how="left")
    )
    ok = (x["views"] >= 2) & (x["last_buy"].isna() | (x["last_buy"] <= x["ts"])) & x["reviewed"].isna()
    return set(x.loc[ok, "user_id"]) & users


def a3(df: pd.DataFrame, users: set[str], now: datetime) -> set[str]:
    """A3 advanced: no app open and no order in the last month, a comment event ever, an order in 3 months."""
    e = _upto(df, now)
    m1, m3 = now - timedelta(days=30), now - timedelta(days=90)
    recent = set(e.loc[e["event"].isin(["app_opened", "order_completed"]) & (e["ts"] > m1), "user_id"])
    comment = set(e.loc[e["event"] == "comment_event_joined", "user_id"])
    ordered = set(e.loc[(e["event"] == "order_completed") & (e["ts"] > m3), "user_id"])
    return (comment & ordered & users) - recent


def a4(df: pd.DataFrame, users: set[str], now: datetime) -> set[str]:
    """A4 advanced: last order >= 1 month ago; some product bought >= 2 times whose category was not
    viewed in the last 2 weeks."""
    e = _upto(df, now)
    last = e[e["event"] == "order_completed"].groupby("user_id")["ts"].max()
    lapsed = set(last.index[last <= now - timedelta(days=30)])
    pp = e[(e["event"] == "product_purchased") & e["product_id"].notna()]
    pp = pp.groupby(["user_id", "product_id", "category"], dropna=False).size().rename("n").reset_index()
    pp["bought"] = pp.groupby(["user_id", "product_id"])["n"].transform("sum")
    rep = pp[pp["bought"] >= 2]
    seen = e[(e["event"] == "product_viewed") & (e["ts"] > now - timedelta(days=14)) & e["category"].notna()]
    seen = seen[["user_id", "category"]].drop_duplicates().assign(seen=True)
    x = rep.merge(seen, on=["user_id", "category"], how="left")
    return set(x.loc[x["seen"].isna(), "user_id"]) & lapsed & users


def rfm(df: pd.DataFrame, users: set[str], now: datetime) -> set[str]:
    """RFM top tier: last order in the last 30 days, >= 3 orders and >= 300,000 revenue in 90 days."""
    e = _upto(df, now)
    o = e[e["event"] == "order_completed"]
    last = o.groupby("user_id")["ts"].max()
    q = o[o["ts"] > now - timedelta(days=90)]
    n = q.groupby("user_id").size()
    revenue = q.groupby("user_id")["revenue"].sum()
    ok = set(last.index[last > now - timedelta(days=30)]) & set(n.index[n >= 3])
    return ok & set(revenue.index[revenue >= 300_000]) & users


SEGMENTS: dict[str, Callable[[pd.DataFrame, set[str], datetime], set[str]]] = {
    "A1": a1,
    "A2": a2,
    "A3": a3,
    "A4": a4,
    "RFM": rfm,
}
