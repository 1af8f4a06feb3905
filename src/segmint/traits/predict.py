"""Predictive traits: probability to churn and to purchase in the next N days.

Gradient boosting (LightGBM, one thread, pandas categorical dtypes) trained on the workspace's own history
with a time-based split: features are the other trait families computed as of a cut time t plus activity
counts in windows before t; the label comes from events in (t, t + N]. Models are trained on earlier cuts
and evaluated on a later holdout cut (AUC, Brier score, a reliability table by decile, and a recency-only
baseline in the same run); then refit on all cuts and stored as a new version under
<workspace>/models/<target>_<N>d/<version>/ (model.txt, metadata.json).
"""

from __future__ import annotations

import re
import shutil
import time
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa

from segmint.errors import InvalidInput, NotFound
from segmint.store.base import EventStore
from segmint.traits import families as fam
from segmint.traits.clv import clv
from segmint.traits.config import TraitConfig
from segmint.traits.sql import Query

TARGETS = ("churn", "purchase")
MODELS_DIR = "models"
FEATURE_FAMILIES = ("rfm", "lifecycle", "purchase_cycle", "churn", "channels", "categories", "sentiment", "clv")
CATEGORICAL = ("lifecycle_stage", "churn_risk", "preferred_channel", "top_category", "purchase_regularity",
               "rfm_tier", "clv_tier")
# family columns that are not features: ids, text forms of other features, absolute times (turned into days)
NOT_FEATURES = {"user_id", "rfm_segment", "top_categories", "last_active_at", "reactivated_at",
                "next_purchase_expected_at", "rfm_r_score", "rfm_f_score", "rfm_m_score"}
BASELINE_FEATURES = ("days_since_last_activity", "rfm_recency_days")
# features whose value depends on all the history before the cut (they grow with it): a user's tenure, totals,
# stages defined by long dormancy, CLV fitted on the whole history
LIFETIME_FEATURES = {"tenure_days", "days_since_first_seen", "active_days_total", "active_day_share",
                     "rfm_frequency", "rfm_monetary", "rfm_score", "rfm_tier", "revenue_total", "review_count",
                     "lifecycle_stage", "clv_p_alive", "clv_purchases_90d", "clv_purchases_365d",
                     "clv_avg_order_value", "clv_90d", "clv_365d", "clv_tier"}
# counts over a fixed window before the cut: the days they look back
WINDOW_FEATURES = {"events_7d": 7, "events_30d": 30, "active_days_30d": 30, "purchases_30d": 30,
                   "messages_engaged_30d": 30, "messages_sent_30d": 30, "events_90d": 90, "active_days_90d": 90,
                   "purchases_90d": 90}
ONCE_PER_USER = 1.1  # a top event with at most this many events per user (sign-up, install) dates the user
_NAME = re.compile(r"[^0-9a-z_]+")
_TRAIT = re.compile(r"^(churn|purchase)_probability_(\d+)d$")


def trait_name(target: str, horizon: int) -> str:
    """The trait a model writes, e.g. churn_probability_30d."""
    return f"{target}_probability_{horizon}d"


def model_name(target: str, horizon: int) -> str:
    """The model folder name, e.g. churn_30d."""
    return f"{target}_{horizon}d"


def is_prediction_trait(name: str) -> bool:
    """Whether a name is a predictive trait (any horizon)."""
    return bool(_TRAIT.match(name))


# -- features and labels ----------------------------------------------------------------------------------


def top_events(store: EventStore, cfg: TraitConfig, as_of: datetime, k: int) -> list[str]:
    """The k most frequent activity events up to a time (their 30-day counts become features)."""
    q = Query(store, as_of)
    excl = cfg.activity.exclude_events
    not_excl = f"AND event NOT IN {q.names(excl)}" if excl else ""
    rows = q.run(f"""SELECT event, count(*) AS n FROM events WHERE user_id IS NOT NULL AND ts <= $as_of {not_excl}
                     GROUP BY event ORDER BY n DESC, event LIMIT {int(k)}""").to_pylist()
    return [r["event"] for r in rows]


def once_per_user_events(store: EventStore, cfg: TraitConfig, as_of: datetime, events: list[str]) -> list[str]:
    """Which of the events users do about once in their life (sign-up, install): their 30-day count says
    "joined in the last 30 days", a lifetime feature, not a recent-activity one."""
    if not events:
        return []
    q = Query(store, as_of)
    rows = q.run(f"""SELECT event, count(*) AS n, count(DISTINCT user_id) AS users FROM events
                     WHERE user_id IS NOT NULL AND ts <= $as_of AND event IN {q.names(events)}
                     GROUP BY event""").to_pylist()
    return sorted(r["event"] for r in rows if r["n"] <= ONCE_PER_USER * r["users"])


def feature_lookback(cfg: TraitConfig, events: list[str], once: list[str]) -> dict[str, float | None]:
    """Days of history before a cut each history-bound feature looks at (None: all of it)."""
    w = cfg.churn.window_days
    out: dict[str, float | None] = {**dict.fromkeys(LIFETIME_FEATURES), **WINDOW_FEATURES,
                                    "visits_last_window": w, "visits_prev_window": 2 * w, "activity_trend": 2 * w,
                                    "churn_risk": 2 * w}
    for e, c in zip(events, _event_columns(events), strict=True):
        out[c] = None if e in once else 30
    return out


def supported_features(columns: list[str], history_days: float, cfg: TraitConfig, events: list[str],
                       once: list[str]) -> tuple[list[str], dict[str, str]]:
    """The features every training cut has the history for, and why the others are left out.

    A feature looking back D days is used when the earliest training cut has at least D x
    predict.min_window_coverage days of history; a lifetime feature when it has population_days x that.
    Otherwise the training cuts see it truncated (a 30-vs-30-day trend with 16 days of history, tenure capped
    at a month) while the holdout and the scoring see it whole, and the model learns relations that do not
    hold there (on a 90-day shop: users dormant longer than any training user scored as safe)."""
    cover = cfg.predict.min_window_coverage
    lookback = feature_lookback(cfg, events, once)
    keep, dropped = [], {}
    for c in columns:
        days = lookback.get(c, 0.0)
        need = (cfg.predict.population_days if days is None else days) * cover
        if history_days >= need:
            keep.append(c)
        else:
            dropped[c] = (f"looks back {'over the whole history' if days is None else f'{days:g} days'}; the "
                          f"earliest training cut has {history_days:.0f} days of history, needs {need:.0f}")
    return keep, dropped


def _event_columns(events: list[str]) -> list[str]:
    """Feature names for the per-event counts: n30_<event as [a-z0-9_]>, unique."""
    out: list[str] = []
    for i, e in enumerate(events):
        base = "n30_" + (_NAME.sub("_", e.lower()).strip("_") or f"event{i}")
        out.append(base if base not in out else f"{base}_{i}")
    return out


def window_features(q: Query, cfg: TraitConfig, events: list[str]) -> pa.Table:
    """Activity counts in windows before as-of, tenure, and 30-day counts of the top events."""
    as_of = q.params["as_of"]
    excl = cfg.activity.exclude_events
    not_excl = f"AND event NOT IN {q.names(excl)}" if excl else ""
    d7, d30, d90 = (q.bind(as_of - timedelta(days=d)) for d in (7, 30, 90))
    sent = q.bind(cfg.channels.sent_event)
    engaged = q.names(cfg.channels.engaged_events)
    per_event = "".join(f", count(*) FILTER (WHERE event = {q.bind(e)} AND ts > {d30}) AS {c}"
                        for e, c in zip(events, _event_columns(events), strict=True))
    purchase = q.bind(cfg.purchase.event)
    # distinct active days from (user, day) buckets: a day counts in a window when its last event is inside it
    # (one cheap GROUP BY instead of three count(DISTINCT ...) hash sets per user)
    return q.run(f"""
        WITH d AS (SELECT user_id, date_trunc('day', ts) AS day, max(ts) AS hi FROM events
                   WHERE user_id IS NOT NULL AND ts <= $as_of {not_excl} GROUP BY user_id, day),
        dd AS (SELECT user_id, count(*) AS active_days_total, count(*) FILTER (WHERE hi > {d30}) AS active_days_30d,
                      count(*) FILTER (WHERE hi > {d90}) AS active_days_90d FROM d GROUP BY user_id),
        e AS (SELECT user_id, {q.days_since('min(ts)')} AS tenure_days,
               date_diff('second', min(ts), max(ts)) / 86400.0 AS span_days,
               count(*) FILTER (WHERE ts > {d7}) AS events_7d, count(*) FILTER (WHERE ts > {d30}) AS events_30d,
               count(*) FILTER (WHERE ts > {d90}) AS events_90d,
               count(*) FILTER (WHERE event = {purchase} AND ts > {d30}) AS purchases_30d,
               count(*) FILTER (WHERE event = {purchase} AND ts > {d90}) AS purchases_90d,
               count(*) FILTER (WHERE event IN {engaged} AND ts > {d30}) AS messages_engaged_30d
               {per_event}
            FROM events WHERE user_id IS NOT NULL AND ts <= $as_of {not_excl} GROUP BY user_id),
        a AS (SELECT e.user_id, e.tenure_days, dd.active_days_total,
                     e.span_days / nullif(dd.active_days_total - 1, 0) AS active_day_mean_gap,
                     e.events_7d, e.events_30d, e.events_90d, dd.active_days_30d, dd.active_days_90d,
                     e.purchases_30d, e.purchases_90d, e.messages_engaged_30d
                     {"".join(", e." + c for c in _event_columns(events))}
              FROM e JOIN dd ON dd.user_id = e.user_id),
        m AS (SELECT user_id, count(*) AS messages_sent_30d FROM events
              WHERE user_id IS NOT NULL AND ts <= $as_of AND ts > {d30} AND event = {sent} GROUP BY user_id)
        SELECT a.*, coalesce(m.messages_sent_30d, 0) AS messages_sent_30d FROM a LEFT JOIN m USING (user_id)""")


def family_tables(store: EventStore, cfg: TraitConfig, as_of: datetime,
                  have: dict[str, pa.Table] | None = None) -> dict[str, pa.Table]:
    """The feature families as of a time (reusing tables already computed for that time)."""
    out = dict(have or {})
    for f in FEATURE_FAMILIES:
        if f not in out:
            q = Query(store, as_of)
            if f == "clv":
                with warnings.catch_warnings(), np.errstate(all="ignore"):
                    warnings.simplefilter("ignore")  # lifetimes on a short early history: log(0) and the like
                    out[f] = clv(q, cfg)[0]
            else:
                out[f] = getattr(fam, f)(q, cfg)
    return out


def _by_user(table: pa.Table) -> pd.DataFrame:
    """A table as a frame indexed by user_id, a plain object index (joins on pandas' Arrow-backed string index
    rebuild its hash table for every join: 11 s of 80 on a 600,000-user frame)."""
    df = table.to_pandas()
    return df.drop(columns="user_id").set_index(pd.Index(df["user_id"].to_numpy(dtype=object), name="user_id"))


def feature_frame(store: EventStore, cfg: TraitConfig, as_of: datetime, events: list[str],
                  have: dict[str, pa.Table] | None = None) -> pd.DataFrame:
    """One row per user active within predict.population_days before as-of: every feature, indexed by user_id."""
    tables = family_tables(store, cfg, as_of, have)
    frame = _by_user(tables["lifecycle"])
    frame = frame[frame["days_since_last_activity"] <= cfg.predict.population_days]
    frame = frame.join(_by_user(window_features(Query(store, as_of), cfg, events)), how="left")
    for f in FEATURE_FAMILIES:
        if f != "lifecycle":
            frame = frame.join(_by_user(tables[f]), how="left")
    for col, new in (("reactivated_at", "days_since_reactivation"), ("next_purchase_expected_at",
                                                                      "days_until_next_purchase")):
        ts = pd.to_datetime(frame[col])
        days = (ts - pd.Timestamp(as_of)).dt.total_seconds() / 86400.0
        frame[new] = -days if new == "days_since_reactivation" else days
    # the user's own rhythm: time since the last activity in units of their usual gap between active days
    frame["activity_gap_ratio"] = frame["days_since_last_activity"] / frame["active_day_mean_gap"]
    frame["active_day_share"] = frame["active_days_total"] / frame["tenure_days"].clip(lower=1.0)
    frame = frame.drop(columns=[c for c in NOT_FEATURES if c in frame.columns])
    for c in frame.columns:
        if c in CATEGORICAL:
            frame[c] = frame[c].astype("object")
        elif pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c]):
            frame[c] = frame[c].astype(float)  # numbers already (NaN for missing): no detour through objects
        else:
            frame[c] = pd.to_numeric(frame[c].astype("object").where(frame[c].notna(), np.nan), errors="coerce") \
                .astype(float)
    zero = [c for c in frame.columns if c.startswith(("events_", "active_days_", "purchases_", "messages_", "n30_"))]
    frame[zero] = frame[zero].fillna(0.0)
    return frame


def labels(store: EventStore, cfg: TraitConfig, start: datetime, horizon: int) -> pd.DataFrame:
    """Per user: any activity, and any purchase, in (start, start + horizon days]."""
    q = Query(store, start)
    end = q.bind(start + timedelta(days=horizon))
    excl = cfg.activity.exclude_events
    not_excl = f"AND event NOT IN {q.names(excl)}" if excl else ""
    t = q.run(f"""SELECT user_id, true AS active, {q.any_true(f'event = {q.bind(cfg.purchase.event)}')} AS purchased
                  FROM events WHERE user_id IS NOT NULL AND ts > $as_of AND ts <= {end} {not_excl}
                  GROUP BY user_id""")
    return t.to_pandas().set_index("user_id")


def labelled(frame: pd.DataFrame, lab: pd.DataFrame, target: str) -> pd.Series:
    """The 0/1 label of each row of a feature frame: churn = no activity in the horizon; purchase = a purchase."""
    j = frame[[]].join(lab, how="left")
    if target == "churn":
        return (~j["active"].eq(True)).astype(int)
    return j["purchased"].eq(True).astype(int)


# -- metrics ----------------------------------------------------------------------------------------------


def auc(y: np.ndarray, p: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U with mid-ranks for ties)."""
    from scipy.stats import rankdata

    y = np.asarray(y).astype(bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if not n_pos or not n_neg:
        return float("nan")
    ranks = rankdata(p)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def brier(y: np.ndarray, p: np.ndarray) -> float:
    """Mean squared difference between predicted probability and outcome."""
    return float(np.mean((np.asarray(p, float) - np.asarray(y, float)) ** 2))


def reliability(y: np.ndarray, p: np.ndarray, bins: int = 10) -> list[dict[str, float]]:
    """Calibration table: rows sorted by prediction, cut into deciles; mean predicted vs observed rate."""
    order = np.argsort(p, kind="stable")
    out = []
    for i, idx in enumerate(np.array_split(order, bins), start=1):
        if len(idx):
            out.append({"decile": i, "n": len(idx), "mean_predicted": float(np.mean(p[idx])),
                        "observed_rate": float(np.mean(y[idx])), "min_predicted": float(np.min(p[idx])),
                        "max_predicted": float(np.max(p[idx]))})
    return out


# -- training ---------------------------------------------------------------------------------------------


def _params(cfg: TraitConfig, n_rows: int) -> dict[str, Any]:
    p = cfg.predict
    return {"objective": "binary", "learning_rate": p.learning_rate, "num_leaves": p.num_leaves,
            "min_data_in_leaf": max(5, min(p.min_data_in_leaf, n_rows // 50)), "feature_fraction": 0.8,
            "bagging_fraction": 0.8, "bagging_freq": 1, "lambda_l2": 1.0, "num_threads": 1, "seed": p.seed,
            "deterministic": True, "force_row_wise": True, "verbosity": -1, "max_cat_to_onehot": 8,
            "cat_smooth": 10.0}


def _as_categories(frames: list[pd.DataFrame]) -> list[pd.DataFrame]:
    """Same categorical dtype (the union of levels, sorted) for a column across frames."""
    frames = [f.copy() for f in frames]
    for c in CATEGORICAL:
        if c in frames[0].columns:
            levels = sorted(set().union(*(set(f[c].dropna().astype(str)) for f in frames)))
            for f in frames:
                f[c] = pd.Categorical(f[c].where(f[c].isna(), f[c].astype(str)), categories=levels)
    return frames


def fit(x: pd.DataFrame, y: pd.Series, cfg: TraitConfig, monotone: list[int] | None = None) -> Any:
    """A LightGBM booster on these rows (one thread, deterministic)."""
    import lightgbm as lgb

    params = _params(cfg, len(x))
    if monotone is not None:
        params["monotone_constraints"] = monotone
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = lgb.Dataset(x, label=y.to_numpy(), categorical_feature="auto", free_raw_data=True)
        return lgb.train(params, ds, num_boost_round=cfg.predict.rounds)


def predict_proba(booster: Any, x: pd.DataFrame) -> np.ndarray:
    """Predicted probabilities (the model remaps pandas categories to its training levels)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.asarray(booster.predict(x[booster.feature_name()]), float)


@dataclass
class ModelReport:
    """One trained model version: where it is and how it scored on the holdout."""

    name: str
    version: int
    path: Path
    metadata: dict[str, Any] = field(default_factory=dict)


def cut_times(end: datetime, first: datetime, horizon: int, cfg: TraitConfig) -> tuple[list[datetime], datetime]:
    """Training cuts (oldest first) and the holdout cut: holdout = end - horizon; training cuts end their label
    window by the holdout cut, every predict.cut_step_days, each with predict.min_history_days of history."""
    holdout = end - timedelta(days=horizon)
    p = cfg.predict
    cuts = [holdout - timedelta(days=horizon + i * p.cut_step_days) for i in range(p.train_cuts)]
    cuts = sorted(c for c in cuts if c - first >= timedelta(days=p.min_history_days))
    if not cuts:
        need = 2 * horizon + p.min_history_days
        have = (end - first).total_seconds() / 86400
        raise InvalidInput(f"not enough history to train a {horizon}-day model: {have:.0f} days of events, "
                           f"need at least {need} (2 x horizon + predict.min_history_days)", where="--horizon")
    return cuts, holdout


def train_models(store: EventStore, cfg: TraitConfig, workspace_path: Path, horizon: int,
                 end: datetime | None = None) -> list[ModelReport]:
    """Train, evaluate and store a churn and a purchase model for the horizon; returns the new versions."""
    if horizon < 1 or horizon > 365:
        raise InvalidInput(f"horizon must be 1-365 days, not {horizon}", where="--horizon")
    span = store.query("SELECT min(ts) AS lo, max(ts) AS hi FROM events WHERE user_id IS NOT NULL").to_pylist()[0]
    if span["hi"] is None:
        raise InvalidInput("the store has no events of known users to learn from", where="store")
    end = end or span["hi"]
    cuts, holdout = cut_times(end, span["lo"], horizon, cfg)
    events = top_events(store, cfg, holdout, cfg.predict.top_events)
    frames, labs = [], []
    cap = cfg.predict.max_rows_per_cut
    t0 = time.perf_counter()
    for t in [*cuts, holdout]:
        frame = feature_frame(store, cfg, t, events)
        if len(frame) > cap:  # a seeded sample bounds memory and training time on big shops
            frame = frame.sample(n=cap, random_state=cfg.predict.seed).sort_index()
        frames.append(frame)
        labs.append(labels(store, cfg, t, horizon))
    frames = _as_categories(frames)
    history = (cuts[0] - span["lo"]).total_seconds() / 86400
    once = once_per_user_events(store, cfg, holdout, events)
    keep, dropped = supported_features(list(frames[0].columns), history, cfg, events, once)
    frames = [f[keep] for f in frames]
    warn = []
    if history < 2 * horizon:
        warn.append(f"the earliest training cut has only {history:.0f} days of history (less than 2 x the "
                    f"{horizon}-day horizon): its users are younger than the holdout's, so the model may not beat "
                    "the recency baseline; use a shorter --horizon or wait for more history")
    feature_seconds = time.perf_counter() - t0
    reports = []
    for target in TARGETS:
        t1 = time.perf_counter()
        ys = [labelled(f, lab, target) for f, lab in zip(frames, labs, strict=True)]
        rep = _train_one(cfg, workspace_path, target, horizon, frames, ys, cuts, holdout, events, warn)
        rep.metadata["dropped_features"] = dropped
        rep.metadata["history_days"] = history
        rep.metadata["seconds"] = {"features_all_cuts": feature_seconds, "fit_evaluate_refit": time.perf_counter() - t1}
        (rep.path / "metadata.json").write_bytes(orjson.dumps(rep.metadata, option=orjson.OPT_INDENT_2))
        reports.append(rep)
    return reports


def _check_classes(y: pd.Series, what: str, target: str) -> None:
    pos, neg = int(y.sum()), int((1 - y).sum())
    if min(pos, neg) < 10:
        raise InvalidInput(f"{target} model: {pos} positive and {neg} negative examples in {what}; need at least "
                           "10 of each (more users or more history)", where="--horizon")


def _train_one(cfg: TraitConfig, workspace_path: Path, target: str, horizon: int, frames: list[pd.DataFrame],
               ys: list[pd.Series], cuts: list[datetime], holdout: datetime, events: list[str],
               warnings_: list[str]) -> ModelReport:
    x_tr, y_tr = pd.concat(frames[:-1]), pd.concat(ys[:-1])
    x_ho, y_ho = frames[-1], ys[-1]
    _check_classes(y_tr, "the training cuts", target)
    _check_classes(y_ho, "the holdout cut", target)
    features = list(x_tr.columns)
    model = fit(x_tr, y_tr, cfg)
    p_ho = predict_proba(model, x_ho)
    y = y_ho.to_numpy()
    baselines = {}
    for col in BASELINE_FEATURES:  # recency-only models, monotone in recency, same cuts
        sign = 1 if target == "churn" else -1
        b = fit(x_tr[[col]], y_tr, cfg, monotone=[sign])
        pb = predict_proba(b, x_ho[[col]])
        baselines[col] = {"auc": auc(y, pb), "brier": brier(y, pb), "reliability": reliability(y, pb)}
    best = max(baselines, key=lambda k: baselines[k]["auc"])
    final = fit(pd.concat(frames), pd.concat(ys), cfg)  # refit on every cut, holdout included
    gain = final.feature_importance("gain")
    total = float(gain.sum()) or 1.0
    importance = sorted(({"feature": f, "gain_share": float(g) / total} for f, g in zip(features, gain, strict=True)),
                        key=lambda r: -r["gain_share"])
    name = model_name(target, horizon)
    folder = workspace_path / MODELS_DIR / name
    folder.mkdir(parents=True, exist_ok=True)
    version = 1 + max((int(p.name) for p in folder.iterdir() if p.name.isdigit()), default=0)
    path = folder / str(version)
    tmp = folder / f".{version}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    final.save_model(str(tmp / "model.txt"))
    meta = {
        "name": name, "version": version, "target": target, "horizon_days": horizon,
        "trait": trait_name(target, horizon),
        "label": ("no activity in (t, t + horizon]" if target == "churn" else
                  f"a {cfg.purchase.event} event in (t, t + horizon]"),
        "population": f"users active within {cfg.predict.population_days} days before t",
        "trained_at": datetime.now().astimezone().isoformat(timespec="seconds"),
        "train_cuts": [c.isoformat() for c in cuts], "holdout_cut": holdout.isoformat(),
        "rows": {"train": len(x_tr), "holdout": len(x_ho), "final": len(x_tr) + len(x_ho)},
        "positive_rate": {"train": float(y_tr.mean()), "holdout": float(y_ho.mean())},
        "features": features, "categorical": [c for c in CATEGORICAL if c in features], "top_events": events,
        "params": {**_params(cfg, len(x_tr)), "rounds": cfg.predict.rounds},
        "metrics": {"auc": auc(y, p_ho), "brier": brier(y, p_ho), "baseline_auc": baselines[best]["auc"],
                    "baseline_brier": baselines[best]["brier"], "baseline_feature": best,
                    "baseline_reliability": baselines[best]["reliability"],
                    "baselines": baselines, "prevalence_brier": brier(y, np.full(len(y), float(y_tr.mean()))),
                    "reliability": reliability(y, p_ho)},
        "feature_importance": importance,
        "warnings": warnings_ + ([] if auc(y, p_ho) > baselines[best]["auc"] else [
            f"the model does not beat the recency-only baseline on the holdout ({auc(y, p_ho):.4f} vs "
            f"{baselines[best]['auc']:.4f}): prefer rules on {best}"]),
        "note": "metrics are of the model trained on the training cuts and scored on the holdout cut; the "
                "stored model is refit on all cuts with the same settings",
    }
    (tmp / "metadata.json").write_bytes(orjson.dumps(meta, option=orjson.OPT_INDENT_2))
    tmp.rename(path)
    return ModelReport(name, version, path, meta)


# -- stored models and scoring ----------------------------------------------------------------------------


def list_models(workspace_path: Path) -> list[dict[str, Any]]:
    """Every stored model version's metadata, newest version first within each model."""
    root = workspace_path / MODELS_DIR
    out = []
    if root.is_dir():
        for folder in sorted(p for p in root.iterdir() if p.is_dir()):
            for v in sorted((p for p in folder.iterdir() if p.name.isdigit()), key=lambda p: -int(p.name)):
                meta_file = v / "metadata.json"
                if meta_file.exists():
                    out.append(orjson.loads(meta_file.read_bytes()))
    return out


def latest_models(workspace_path: Path) -> dict[str, tuple[Path, dict[str, Any]]]:
    """The newest version of each stored model: name -> (folder, metadata)."""
    out: dict[str, tuple[Path, dict[str, Any]]] = {}
    for meta in list_models(workspace_path):
        if meta["name"] not in out:
            out[meta["name"]] = (workspace_path / MODELS_DIR / meta["name"] / str(meta["version"]), meta)
    return out


def get_model(workspace_path: Path, name: str, version: int | None = None) -> dict[str, Any]:
    """One model version's metadata (the latest when no version is given)."""
    for meta in list_models(workspace_path):
        if meta["name"] == name and (version is None or meta["version"] == version):
            return meta
    raise NotFound(f"no model {name!r}" + (f" version {version}" if version else ""), where="model")


def score(store: EventStore, cfg: TraitConfig, workspace_path: Path | None, as_of: datetime,
          have: dict[str, pa.Table] | None = None) -> tuple[pa.Table, dict[str, Any]]:
    """Every stored model's latest version applied to the users active as of a time: user_id + one
    probability column per model, and a note naming the versions used (or why nothing was scored)."""
    import lightgbm as lgb

    models = latest_models(workspace_path) if workspace_path is not None else {}
    if not models:
        return pa.table({"user_id": pa.array([], pa.string())}), {
            "note": "no trained model: run `segmint traits train` (or POST /api/traits/train)"}
    by_events: dict[tuple[str, ...], pd.DataFrame] = {}
    out: pd.DataFrame | None = None
    used = {}
    for name, (folder, meta) in sorted(models.items()):
        key = tuple(meta["top_events"])
        if key not in by_events:
            by_events[key] = feature_frame(store, cfg, as_of, list(key), have)
        frame = by_events[key]
        x = frame.reindex(columns=meta["features"])
        for c in meta["categorical"]:
            x[c] = x[c].astype("category")
        booster = lgb.Booster(model_file=str(folder / "model.txt"))
        col = pd.Series(predict_proba(booster, x) if len(x) else np.array([]), index=frame.index,
                        name=meta["trait"])
        out = col.to_frame() if out is None else out.join(col, how="outer")
        used[meta["trait"]] = {"model": name, "version": meta["version"], "auc": meta["metrics"]["auc"]}
    assert out is not None
    out = out.reset_index().rename(columns={"index": "user_id"})
    return pa.Table.from_pandas(out, preserve_index=False), {"models": used, "users": len(out)}
