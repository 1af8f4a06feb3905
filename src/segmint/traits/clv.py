"""Customer lifetime value: historical revenue, and BG/NBD + Gamma-Gamma predictions (lifetimes library)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from segmint.traits.config import TraitConfig
from segmint.traits.sql import Query

HORIZONS = (90, 365)


@dataclass
class CLVFit:
    """Fitted model parameters (empty when the fit was skipped) and why it was skipped."""

    bgnbd: dict[str, float] = field(default_factory=dict)
    gamma_gamma: dict[str, float] = field(default_factory=dict)
    note: str | None = None


def rfm_summary(q: Query, cfg: TraitConfig) -> pd.DataFrame:
    """Per buyer in lifetimes' convention (daily periods): frequency (repeat days), recency, T, monetary."""
    rev = q.prop(cfg.purchase.revenue_property, "DOUBLE")
    return q.run(f"""
        WITH o AS (SELECT user_id, date_trunc('day', ts) AS d, coalesce(sum({rev}), 0) AS v FROM events
                   WHERE {q.events([cfg.purchase.event])} GROUP BY user_id, d)
        SELECT user_id, count(*) - 1 AS frequency, date_diff('day', min(d), max(d)) AS recency,
               date_diff('second', min(d), $as_of) / 86400.0 AS "T",
               coalesce((sum(v) - {q.arg_min('v', 'd')}) / nullif(count(*) - 1, 0), 0) AS monetary_value,
               sum(v) AS revenue_total
        FROM o GROUP BY user_id ORDER BY user_id""").to_pandas()


def fit_bgnbd(frequency: pd.Series, recency: pd.Series, t: pd.Series, penalizer: float):
    """Fit a BG/NBD model (lifetimes.BetaGeoFitter)."""
    from lifetimes import BetaGeoFitter

    bgf = BetaGeoFitter(penalizer_coef=penalizer)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bgf.fit(frequency, recency, t)
    return bgf


def fit_gamma_gamma(frequency: pd.Series, monetary: pd.Series, penalizer: float) -> tuple[Any, float]:
    """Fit Gamma-Gamma on values scaled to mean 1, returning the fitter and the scale (v in currency = v x scale).

    KRW amounts in the tens of thousands make the penalized fit collapse (q < 1, a negative population mean);
    the model is scale-equivariant in v, so fitting scaled values and scaling predictions back is exact."""
    from lifetimes import GammaGammaFitter

    scale = float(monetary.mean())
    ggf = GammaGammaFitter(penalizer_coef=penalizer)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ggf.fit(frequency, monetary / scale)
    return ggf, scale


def clv(q: Query, cfg: TraitConfig) -> tuple[pa.Table, CLVFit]:
    """Historical revenue for every buyer; predicted purchases, value and tier when there are enough buyers."""
    df = rfm_summary(q, cfg)
    out = pd.DataFrame({"user_id": df["user_id"], "revenue_total": df["revenue_total"].astype(float)})
    cols = ["clv_p_alive", *(f"clv_purchases_{h}d" for h in HORIZONS), "clv_avg_order_value",
            *(f"clv_{h}d" for h in HORIZONS)]
    for c in cols:
        out[c] = np.nan
    out["clv_tier"] = None
    fit = CLVFit()
    c = cfg.clv
    if len(df) < c.min_customers:
        fit.note = f"{len(df)} buyers, fewer than clv.min_customers={c.min_customers}: predictions skipped"
    elif (df["frequency"] > 0).sum() < 2:
        fit.note = "fewer than 2 repeat buyers: predictions skipped"
    else:
        f, r, t, m = df["frequency"], df["recency"].astype(float), df["T"], df["monetary_value"]
        try:
            bgf = fit_bgnbd(f, r, t, c.penalizer)
            fit.bgnbd = {k: float(v) for k, v in bgf.params_.items()}
            out["clv_p_alive"] = bgf.conditional_probability_alive(f, r, t)
            for h in HORIZONS:
                out[f"clv_purchases_{h}d"] = bgf.conditional_expected_number_of_purchases_up_to_time(h, f, r, t)
            rep = (f > 0) & (m > 0)
            ggf, scale = fit_gamma_gamma(f[rep], m[rep], c.penalizer)
            fit.gamma_gamma = {**{k: float(v) for k, v in ggf.params_.items()}, "scale": scale}
            value = ggf.conditional_expected_average_profit(f, m / scale) * scale
            if ggf.params_["q"] <= 1:  # population mean undefined: one-order buyers get the observed mean
                value = value.where(f > 0, scale)
            out["clv_avg_order_value"] = value
            for h in HORIZONS:
                out[f"clv_{h}d"] = out[f"clv_purchases_{h}d"] * out["clv_avg_order_value"]
            pr = out["clv_365d"].rank(method="min")
            pr = (pr - 1) / max(len(out) - 1, 1)
            out["clv_tier"] = np.where(pr >= 1 - c.high_share, "high", np.where(pr < c.low_share, "low", "medium"))
        except Exception as exc:  # any numerical failure of the fit leaves predictions empty
            fit.note = f"CLV model fit failed: {type(exc).__name__}: {exc}"
            for col in cols:
                out[col] = np.nan
            out["clv_tier"] = None
    table = pa.Table.from_pandas(out, preserve_index=False)
    return table, fit
