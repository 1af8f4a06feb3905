"""Every computed trait: its family and a one-line definition (the list `segmint traits list` shows)."""

from __future__ import annotations

import re
from pathlib import Path

_MODEL_DIR = re.compile(r"^(churn|purchase)_(\d+)d$")

TRAITS: dict[str, tuple[str, str]] = {
    "rfm_recency_days": ("rfm", "days since the last purchase event"),
    "rfm_frequency": ("rfm", "number of purchase events"),
    "rfm_monetary": ("rfm", "sum of the revenue property over purchase events"),
    "rfm_r_score": ("rfm", "recency score 1-5 (5 = most recent)"),
    "rfm_f_score": ("rfm", "frequency score 1-5"),
    "rfm_m_score": ("rfm", "monetary score 1-5"),
    "rfm_score": ("rfm", "r + f + m scores (3-15)"),
    "rfm_segment": ("rfm", "the three scores as text, e.g. '545'"),
    "rfm_tier": ("rfm", "named tier from rfm.tiers rules (default VIP/platinum/gold/silver)"),
    "lifecycle_stage": ("lifecycle", "stage from lifecycle.stages rules (new, active, first_time_buyer, repeat, "
                                     "loyal, at_risk, dormant, reactivated)"),
    "days_since_last_activity": ("lifecycle", "days since the last event that counts as activity"),
    "last_active_at": ("lifecycle", "time of the last activity event"),
    "reactivated_at": ("lifecycle", "last return after a gap longer than lifecycle.reactivation_gap_days"),
    "purchase_median_gap_days": ("purchase_cycle", "median days between consecutive purchases"),
    "purchase_gap_cv": ("purchase_cycle", "coefficient of variation of the gaps (stddev_pop / mean)"),
    "purchase_regularity": ("purchase_cycle", "regular / irregular by purchase_cycle.regular_max_cv"),
    "next_purchase_expected_at": ("purchase_cycle", "last purchase + median gap"),
    "purchase_overdue": ("purchase_cycle", "days since last purchase > median gap x overdue_factor"),
    "cycle_category": ("purchase_cycle", "the user's most re-bought category (by purchase days), e.g. a consumable"),
    "cycle_category_gap_days": ("purchase_cycle", "median days between purchase days in that category"),
    "cycle_category_next_expected_at": ("purchase_cycle", "last purchase day in that category + its median gap"),
    "cycle_category_overdue": ("purchase_cycle", "days since that category's last purchase > its gap x overdue_factor"),
    "visit_median_gap_days": ("churn", "median days between visits"),
    "days_since_last_visit": ("churn", "days since the last visit event"),
    "visit_gap_ratio": ("churn", "days since last visit / usual gap (median gap, or the window if unknown)"),
    "visits_last_window": ("churn", "visits in the last churn.window_days"),
    "visits_prev_window": ("churn", "visits in the window before that"),
    "activity_trend": ("churn", "(last - previous) / previous window visits"),
    "churn_risk": ("churn", "high / medium / low from the gap ratio and the trend"),
    "revenue_total": ("clv", "historical revenue (sum of the revenue property)"),
    "clv_p_alive": ("clv", "BG/NBD probability the buyer is still active"),
    "clv_purchases_90d": ("clv", "BG/NBD expected purchases in the next 90 days"),
    "clv_purchases_365d": ("clv", "BG/NBD expected purchases in the next 365 days"),
    "clv_avg_order_value": ("clv", "Gamma-Gamma expected value per purchase"),
    "clv_90d": ("clv", "expected purchases x expected value, 90 days (undiscounted)"),
    "clv_365d": ("clv", "expected purchases x expected value, 365 days (undiscounted)"),
    "clv_tier": ("clv", "high / medium / low by rank of clv_365d among buyers"),
    "preferred_channel": ("channels", "channel with the best (opens + clicks) / sent"),
    "preferred_channel_rate": ("channels", "that engagement rate"),
    "top_category": ("categories", "category with the highest weighted views + purchases"),
    "top_categories": ("categories", "the top categories, best first"),
    "nps_score": ("sentiment", "latest NPS answer 0-10"),
    "nps_category": ("sentiment", "promoter 9-10 / passive 7-8 / detractor 0-6"),
    "avg_rating": ("sentiment", "average review rating"),
    "review_count": ("sentiment", "number of reviews with a rating"),
    "churn_probability_30d": ("predict", "probability of no activity in the next 30 days (LightGBM model; other "
                                         "horizons add churn_probability_<N>d)"),
    "purchase_probability_30d": ("predict", "probability of a purchase in the next 30 days (LightGBM model; other "
                                            "horizons add purchase_probability_<N>d)"),
}
FAMILIES = list(dict.fromkeys(f for f, _ in TRAITS.values()))


def trait_names(workspace_path: Path | None = None) -> set[str]:
    """Every computed trait name the segment language may use: the catalog, plus the probability traits of the
    models stored in the workspace (e.g. churn_probability_14d after `segmint traits train --horizon 14`)."""
    names = set(TRAITS)
    models = Path(workspace_path) / "models" if workspace_path is not None else None
    if models is not None and models.is_dir():
        for d in models.iterdir():
            m = _MODEL_DIR.match(d.name)
            if m and d.is_dir():
                names.add(f"{m.group(1)}_probability_{m.group(2)}d")
    return names
