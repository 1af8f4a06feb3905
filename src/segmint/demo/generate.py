"""The demo shop generator: seeded, vectorized with numpy, emitting Arrow tables in EVENT_SCHEMA.

Every user has a latent lifecycle (signup time, churn hazard, a chance to come back), a visit rate and a
category affinity. Sessions are drawn per active period; each session runs a view -> cart -> checkout ->
order funnel. Consumables are re-bought on a per-user cycle; campaigns send push/email/SMS/Kakao
messages whose opens depend on a per-user propensity (some users never open pushes).
Users are generated in fixed-size chunks, each with its own seeded generator, so the same seed gives the
same data whatever the machine.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from segmint.demo.catalog import CATEGORY_NAMES, Catalog, build_catalog
from segmint.store.schema import EVENT_SCHEMA, TS

CHUNK_USERS = 25_000
DAY = 86_400.0
KST = 9 * 3600.0

REGIONS = [
    "서울",
    "경기",
    "부산",
    "인천",
    "대구",
    "대전",
    "광주",
    "울산",
    "강원",
    "충북",
    "충남",
    "전북",
    "전남",
    "경북",
    "경남",
    "제주",
]
REGION_P = [
    0.19,
    0.26,
    0.065,
    0.058,
    0.046,
    0.028,
    0.028,
    0.021,
    0.029,
    0.031,
    0.041,
    0.034,
    0.035,
    0.05,
    0.064,
    0.013,
]
CHANNELS = ["organic", "kakao", "naver", "instagram", "referral"]
CHANNEL_P = [0.35, 0.2, 0.22, 0.15, 0.08]
ABROAD = ["America/Los_Angeles", "America/New_York", "Asia/Tokyo", "Europe/London", "Australia/Sydney"]
SURNAMES = list("김이박최정강조윤장임한오서신권황안송류홍")
GIVEN = [
    "민준",
    "서연",
    "도윤",
    "지우",
    "하준",
    "서윤",
    "시우",
    "지민",
    "예준",
    "하은",
    "주원",
    "수아",
    "지호",
    "지유",
    "은우",
    "채원",
    "유진",
    "현우",
    "다은",
    "승민",
]
COUPONS = ["WELCOME10", "SALE20", "FREESHIP", "BEAUTY15", "VIP30"]
COUPON_P = [0.2, 0.45, 0.2, 0.09, 0.06]
COMMENT_EVENTS = ["EV-REVIEW-FALL", "EV-QUIZ-01", "EV-PHOTO-02", "EV-COMMENT-03"]
PAGES = [("홈", "/"), ("이벤트 페이지", "/event"), ("기획전", "/exhibition"), ("장바구니", "/cart")]
MESSAGE_CHANNELS = ["push", "email", "kakao", "push", "sms", "in_app", "push", "email"]
# KST hour-of-day weights: lunch and evening peaks, quiet at night.
HOUR_P = np.array([2, 1, 0.5, 0.3, 0.3, 0.5, 1, 2, 3, 4, 4, 5, 7, 6, 4, 4, 4, 5, 6, 7, 8, 9, 8, 5], dtype=float)
HOUR_P /= HOUR_P.sum()
SOURCE = "import"
KNOWN, ANONYMOUS, BOTH = 0, 1, 2  # which ids an event carries: user_id, anonymous_id, or both (identify)


def default_now() -> datetime:
    """The demo's reference time by default: the current UTC time floored to the hour (naive UTC)."""
    return datetime.now(UTC).replace(tzinfo=None, minute=0, second=0, microsecond=0)


@dataclass
class DemoSpec:
    """What to generate: how many users over how many days up to `now` (naive UTC), from which seed."""

    users: int = 5_000
    days: int = 90
    seed: int = 42
    now: datetime = field(default_factory=default_now)

    @property
    def start(self) -> datetime:
        """First instant of the generated period."""
        return self.now - timedelta(days=self.days)


@dataclass
class Chunk:
    """One chunk of generated data: events (EVENT_SCHEMA, grouped by event name), profiles, identity links."""

    events: pa.Table
    profiles: pa.Table  # user_id, traits (JSON text), first_seen, timezone
    identities: dict[str, str] = field(default_factory=dict)  # anonymous_id -> user_id


def _s(values: np.ndarray | list) -> pa.Array:
    """An Arrow string array from numbers or strings."""
    arr = pa.array(values)
    return arr if pa.types.is_string(arr.type) else pc.cast(arr, pa.string())


def _json(*parts: str | pa.Array | np.ndarray) -> pa.Array:
    """Concatenate literal JSON pieces and value arrays element-wise (values are our own, quote-free)."""
    args = [p if isinstance(p, str) else _s(p) if isinstance(p, np.ndarray) else p for p in parts]
    return pc.binary_join_element_wise(*args, "")


def _choice(rng: np.random.Generator, options: list, p: list | np.ndarray, n: int) -> np.ndarray:
    return np.asarray(options)[rng.choice(len(options), size=n, p=np.asarray(p) / np.sum(p))]


class _Events:
    """Accumulates blocks of events (chunk-local user index, seconds since start, properties)."""

    def __init__(self) -> None:
        self.blocks: list[tuple[str, str, np.ndarray, np.ndarray, pa.Array, int]] = []

    def add(
        self,
        event: str,
        user: np.ndarray,
        t: np.ndarray,
        props: pa.Array | str,
        typ: str = "track",
        who: int = KNOWN,
    ) -> None:
        """Add one block; `who` says which ids the events carry (KNOWN, ANONYMOUS or BOTH)."""
        if len(user) == 0:
            return
        if isinstance(props, str):
            props = pa.array([props] * len(user))
        self.blocks.append((event, typ, user.astype(np.int64), t.astype(np.float64), props, who))


class Generator:
    """Generates the demo shop chunk by chunk."""

    def __init__(self, spec: DemoSpec) -> None:
        self.spec = spec
        self.catalog: Catalog = build_catalog(spec.seed)
        cat = self.catalog
        frag = _json(
            '"product_id":"',
            pa.array(cat.product_id),
            '","product_name":"',
            pa.array(cat.name),
            '","category":"',
            pa.array(np.asarray(CATEGORY_NAMES)[cat.category]),
            '","brand":"',
            pa.array(cat.brand),
            '","price":',
            cat.price,
        )
        self.product_frag = frag
        self.view_props = _json("{", frag, "}")
        self.review_view_props = _json(
            '{"product_id":"',
            pa.array(cat.product_id),
            '","category":"',
            pa.array(np.asarray(CATEGORY_NAMES)[cat.category]),
            '"}',
        )
        self.consumables = np.flatnonzero(cat.consumable)
        self.period = spec.days * DAY
        self.start_us = int((spec.start - datetime(1970, 1, 1)).total_seconds()) * 1_000_000
        # seconds from the start of the Unix day the period starts in, so clock hours are real KST hours
        self.day_offset = (self.start_us // 1_000_000) % int(DAY)
        self.n_campaigns = max(1, spec.days // 2)

    def chunks(self) -> Iterator[Chunk]:
        """All chunks in order; message ids continue across chunks (demo-{seed}-{n})."""
        counter = 0
        for ci, first in enumerate(range(0, self.spec.users, CHUNK_USERS)):
            n = min(CHUNK_USERS, self.spec.users - first)
            chunk = self._chunk(ci, first, n, counter)
            counter += chunk.events.num_rows
            yield chunk

    # -- one chunk -------------------------------------------------------------------------------
    def _chunk(self, ci: int, first: int, n: int, counter: int) -> Chunk:
        rng = np.random.default_rng([self.spec.seed, ci])
        T = self.period
        ev = _Events()
        uid = np.char.add("u", np.char.zfill(np.arange(first, first + n).astype(str), 7))

        # -- who they are
        gender = _choice(rng, ["F", "M"], [0.56, 0.44], n)
        age = np.clip(rng.normal(34, 10, n), 16, 72).astype(np.int64)
        region = _choice(rng, REGIONS, REGION_P, n)
        device = _choice(rng, ["Android", "iOS"], [0.68, 0.32], n)
        channel = _choice(rng, CHANNELS, CHANNEL_P, n)
        tz = np.where(rng.random(n) < 0.03, _choice(rng, ABROAD, [1] * len(ABROAD), n), "Asia/Seoul")
        consent_push = rng.random(n) < 0.7
        consent_email = rng.random(n) < 0.55
        consent_sms = rng.random(n) < 0.45
        consent_night = consent_push & (rng.random(n) < 0.3)
        web_user = rng.random(n) < 0.12

        # -- lifecycle: signup, churn, maybe a comeback
        signup = np.where(rng.random(n) < 0.35, rng.uniform(0, 0.04 * T, n), rng.uniform(0, T, n))
        hazard = np.exp(rng.normal(np.log(1 / 45), 0.6, n))  # per day
        end1 = signup + rng.exponential(1 / hazard) * DAY
        comeback = (end1 < T - 5 * DAY) & (rng.random(n) < 0.3)
        start2 = np.where(comeback, end1 + rng.uniform(15, 45, n) * DAY, np.inf)
        end2 = np.where(comeback, start2 + rng.exponential(25, n) * DAY, np.inf)
        rate = np.exp(rng.normal(np.log(0.4), 0.6, n))  # sessions per active day

        alpha = np.full((n, len(CATEGORY_NAMES)), 0.35)
        alpha[gender == "F", 0] += 0.6  # 뷰티
        alpha[(age >= 28) & (age <= 42), 7] += 0.3  # 유아동
        affinity = rng.gamma(alpha)
        affinity /= affinity.sum(axis=1, keepdims=True)
        cum_aff = affinity.cumsum(axis=1)

        # -- signup, install
        users = np.arange(n)
        ev.add("signed_up", users, signup, _json('{"channel":"', channel, '"}'))
        platform = np.char.lower(device)
        app = ~web_user | (rng.random(n) < 0.3)
        ev.add("app_installed", users[app], signup[app] - 90, _json('{"platform":"', platform[app], '"}'))

        # -- some users browsed anonymously before signing up, then were identified at signup
        anon = rng.random(n) < 0.2
        a_users = users[anon]
        au = np.repeat(a_users, rng.integers(1, 4, len(a_users)))
        at = signup[au] - rng.uniform(600, 3 * DAY, len(au))
        ev.add("app_opened", au, at, _json('{"platform":"', platform[au], '"}'), who=ANONYMOUS)
        ev.add(
            "product_viewed",
            au,
            at + 20,
            self.view_props.take(pa.array(self._pick_products(rng, au, cum_aff))),
            who=ANONYMOUS,
        )
        ev.add(
            "$identify",
            a_users,
            signup[anon] - 1,
            _json('{"signup_channel":"', channel[anon], '","device":"', device[anon], '"}'),
            typ="identify",
            who=BOTH,
        )
        identities = {f"anon-{u}": u for u in uid[anon].tolist()}

        # -- sessions per active period (the signup session included)
        s_user, s_t = [users], [signup + 30]
        for a, b in ((signup, end1), (start2, end2)):
            lo, hi = np.minimum(a, T), np.minimum(b, T)
            length = np.maximum(hi - lo, 0)
            k = rng.poisson(rate * length / DAY)
            u = np.repeat(users, k)
            t = lo[u] + rng.random(len(u)) * length[u]
            s_user.append(u)
            s_t.append(t)
        su = np.concatenate(s_user)
        st = np.concatenate(s_t)
        # put the session at a plausible KST hour of the day it falls on (signup sessions stay put)
        kst_day = np.floor((st + self.day_offset + KST) / DAY)
        hour = rng.choice(24, size=len(st), p=HOUR_P)
        moved = kst_day * DAY - KST - self.day_offset + hour * 3600 + rng.uniform(0, 3600, len(st))
        moved[:n] = st[:n]
        st = np.where((moved > signup[su]) & (moved < T), moved, st)
        web = rng.random(len(su)) < np.where(web_user[su], 0.7, 0.04)
        app_s = ~web
        ev.add("app_opened", su[app_s], st[app_s], _json('{"platform":"', platform[su[app_s]], '"}'))
        self._pages(rng, ev, su[web], st[web])

        # -- browsing
        nviews = np.minimum(rng.geometric(0.38, len(su)), 9) * (rng.random(len(su)) > 0.15)
        vu = np.repeat(su, nviews)
        vs = np.repeat(np.arange(len(su)), nviews)
        vk = np.arange(len(vu)) - np.repeat(np.cumsum(nviews) - nviews, nviews)  # index within session
        vt = st[vs] + 20 + vk * 45 + rng.uniform(0, 30, len(vu))
        vprod = self._pick_products(rng, vu, cum_aff)
        ev.add("product_viewed", vu, vt, self.view_props.take(pa.array(vprod)))
        rv = rng.random(len(vu)) < 0.1
        ev.add("review_viewed", vu[rv], vt[rv] + 15, self.review_view_props.take(pa.array(vprod[rv])))

        # -- funnel on the last product viewed in the session
        has_view = nviews > 0
        last_view = np.cumsum(nviews) - 1
        cart = has_view & (rng.random(len(su)) < 0.3)
        cs = np.flatnonzero(cart)
        cprod = vprod[last_view[cs]]
        cu, ct = su[cs], vt[last_view[cs]] + 30
        qty = rng.choice([1, 2, 3], size=len(cs), p=[0.8, 0.15, 0.05])
        co = rng.random(len(cs)) < 0.6
        buy = co & (rng.random(len(cs)) < 0.8)
        self._funnel(rng, ev, cu, ct, cprod, qty, co, buy, tag=f"{self.spec.seed}-{ci}-s")

        # -- consumables re-bought on a cycle while the user is active
        has_c = rng.random(n) < 0.5
        cprod_u = rng.choice(self.consumables, size=n)
        cycle = np.clip(rng.normal(30, 4, n), 20, 45) * DAY
        kmax = int(T / (20 * DAY)) + 2
        first_buy = signup + rng.uniform(0.1, 1.0, n) * cycle
        times = first_buy[:, None] + np.arange(kmax)[None, :] * cycle[:, None] + rng.normal(0, 2 * DAY, (n, kmax))
        active = ((times > signup[:, None]) & (times < np.minimum(end1, T)[:, None])) | (
            (times > start2[:, None]) & (times < np.minimum(end2, T)[:, None])
        )
        ok = active & has_c[:, None]
        ru = np.broadcast_to(users[:, None], ok.shape)[ok]
        rt = times[ok]
        rprod = cprod_u[ru]
        ev.add("app_opened", ru, rt, _json('{"platform":"', platform[ru], '"}'))
        ev.add("product_viewed", ru, rt + 20, self.view_props.take(pa.array(rprod)))
        ones = np.ones(len(ru), dtype=bool)
        rqty = rng.choice([1, 2], size=len(ru), p=[0.85, 0.15])
        self._funnel(rng, ev, ru, rt + 60, rprod, rqty, ones, ones, tag=f"{self.spec.seed}-{ci}-r")

        # -- engagement: coupons, comment events, NPS
        cp = rng.random(len(su)) < 0.09
        ev.add(
            "coupon_downloaded",
            su[cp],
            st[cp] + 10,
            _json('{"coupon_id":"', _choice(rng, COUPONS, COUPON_P, int(cp.sum())), '"}'),
        )
        ce = rng.random(len(su)) < 0.03
        ev.add(
            "comment_event_joined",
            su[ce],
            st[ce] + 12,
            _json('{"event_id":"', _choice(rng, COMMENT_EVENTS, [1] * 4, int(ce.sum())), '"}'),
        )
        sv = rng.random(n) < 0.25
        sv_t = signup + rng.random(n) * np.maximum(np.minimum(end1, T) - signup, 0)
        nps = rng.choice(11, size=n, p=np.array([1, 1, 1, 1, 2, 3, 4, 8, 12, 10, 9]) / 52)
        ev.add("survey_answered", users[sv], sv_t[sv] + 300, _json('{"nps":', nps[sv], "}"))

        # -- our own messages
        push_open = np.where(rng.random(n) < 0.18, 0.0, rng.beta(2, 5, n))
        self._messages(
            rng,
            ev,
            n,
            uid,
            signup,
            end1,
            start2,
            end2,
            consent_push & app,
            consent_email,
            consent_sms,
            push_open,
        )

        events = self._assemble(ev, uid, platform, tz, counter)
        traits = _json(
            '{"name":"',
            np.char.add(_choice(rng, SURNAMES, [1] * len(SURNAMES), n), _choice(rng, GIVEN, [1] * len(GIVEN), n)),
            '","email":"',
            np.char.add(uid, "@example.kr"),
            '","phone":"010-',
            np.char.zfill(rng.integers(0, 10_000, n).astype(str), 4),
            "-",
            np.char.zfill(rng.integers(0, 10_000, n).astype(str), 4),
            '","age":',
            age,
            ',"gender":"',
            gender,
            '","region":"',
            region,
            '","device":"',
            device,
            '","signup_channel":"',
            channel,
            '","timezone":"',
            tz,
            '","consent_push":',
            np.char.lower(consent_push.astype(str)),
            ',"consent_email":',
            np.char.lower(consent_email.astype(str)),
            ',"consent_sms":',
            np.char.lower(consent_sms.astype(str)),
            ',"consent_night":',
            np.char.lower(consent_night.astype(str)),
            "}",
        )
        profiles = pa.table(
            {
                "user_id": pa.array(uid),
                "traits": traits,
                "first_seen": pa.array(self.start_us + (signup * 1e6).astype(np.int64), type=pa.int64()).cast(TS),
                "timezone": pa.array(tz),
            }
        )
        return Chunk(events, profiles, identities)

    def _pick_products(self, rng: np.random.Generator, users: np.ndarray, cum_aff: np.ndarray) -> np.ndarray:
        """A product per view: category from the user's affinity, product by popularity in it."""
        cat = (rng.random(len(users))[:, None] > cum_aff[users]).sum(axis=1).clip(0, len(CATEGORY_NAMES) - 1)
        prod = np.empty(len(users), dtype=np.int64)
        for c, idx in enumerate(self.catalog.by_category):
            m = cat == c
            prod[m] = rng.choice(idx, size=int(m.sum()), p=self.catalog.popularity[c])
        return prod

    def _pages(self, rng: np.random.Generator, ev: _Events, u: np.ndarray, t: np.ndarray) -> None:
        """Web visits: a home page view, then sometimes the event page or an exhibition."""
        ev.add("$page", u, t, '{"name":"홈","url":"https://shop.segmint.kr/"}', typ="page")
        for (name, path), p, dt in ((PAGES[1], 0.45, 25), (PAGES[2], 0.25, 50), (PAGES[3], 0.1, 80)):
            m = rng.random(len(u)) < p
            ev.add(
                "$page",
                u[m],
                t[m] + dt,
                f'{{"name":"{name}","url":"https://shop.segmint.kr{path}"}}',
                typ="page",
            )

    def _funnel(
        self,
        rng: np.random.Generator,
        ev: _Events,
        u: np.ndarray,
        t: np.ndarray,
        prod: np.ndarray,
        qty: np.ndarray,
        checkout: np.ndarray,
        buy: np.ndarray,
        tag: str,
    ) -> None:
        """cart_added for all, checkout_started where `checkout`, order + line item where `buy`."""
        frag = self.product_frag.take(pa.array(prod))
        ev.add("cart_added", u, t, _json("{", frag, ',"quantity":', qty, "}"))
        value = self.catalog.price[prod] * qty
        ev.add(
            "checkout_started",
            u[checkout],
            t[checkout] + 60,
            _json('{"cart_value":', value[checkout], ',"item_count":', qty[checkout], "}"),
        )
        b = np.flatnonzero(buy)
        order_id = np.char.add(f"O{tag}", b.astype(str))
        coupon = rng.random(len(b)) < 0.15
        revenue = np.where(coupon, (value[b] * 0.9 // 100 * 100).astype(np.int64), value[b])
        coupon_json = np.where(coupon, '"SALE20"', "null")
        tb = t[b] + 120
        ev.add(
            "order_completed",
            u[b],
            tb,
            _json(
                '{"order_id":"',
                order_id,
                '","revenue":',
                revenue,
                ',"item_count":',
                qty[b],
                ',"coupon_id":',
                coupon_json,
                "}",
            ),
        )
        ev.add(
            "product_purchased",
            u[b],
            tb + 0.5,
            _json('{"order_id":"', order_id, '",', frag.take(pa.array(b)), ',"quantity":', qty[b], "}"),
        )
        rw = rng.random(len(b)) < 0.2
        rt = tb[rw] + rng.uniform(2, 10, int(rw.sum())) * DAY
        rating = rng.choice([1, 2, 3, 4, 5], size=int(rw.sum()), p=[0.03, 0.05, 0.12, 0.35, 0.45])
        ev.add(
            "review_written",
            u[b][rw],
            rt,
            _json('{"product_id":"', self.catalog.product_id[prod[b][rw]], '","rating":', rating, "}"),
        )

    def _messages(
        self,
        rng: np.random.Generator,
        ev: _Events,
        n: int,
        uid: np.ndarray,
        signup: np.ndarray,
        end1: np.ndarray,
        start2: np.ndarray,
        end2: np.ndarray,
        c_push: np.ndarray,
        c_email: np.ndarray,
        c_sms: np.ndarray,
        push_open: np.ndarray,
    ) -> None:
        """Campaign sends every two days; opens and clicks by channel and per-user propensity."""
        base_open = {"email": 0.2, "kakao": 0.45, "sms": 0.0, "in_app": 0.5}
        for k in range(self.n_campaigns):
            chan = MESSAGE_CHANNELS[k % len(MESSAGE_CHANNELS)]
            t = (k * 2 + 1) * DAY + (10 if k % 2 else 19) * 3600 - KST - self.day_offset
            if t >= self.period:
                continue
            consent = {
                "push": c_push,
                "email": c_email,
                "sms": c_sms,
                "kakao": c_sms,
                "in_app": np.ones(n, dtype=bool),
            }[chan]
            active = ((signup < t) & (t < end1)) | ((start2 < t) & (t < end2))
            reach = 0.5 if chan == "push" else 0.3
            m = consent & (signup < t) & (rng.random(n) < reach) & (active | (chan != "in_app"))
            u = np.flatnonzero(m)
            ts = t + rng.uniform(0, 600, len(u))
            cid = f"CMP-{k + 1:03d}"
            ref = np.char.add(f"{cid}-", uid[u])
            ev.add(
                "message_sent",
                u,
                ts,
                _json(f'{{"channel":"{chan}","campaign_id":"{cid}","message_id_ref":"', ref, '"}'),
            )
            p = push_open[u] if chan == "push" else np.full(len(u), base_open[chan])
            p = np.where(active[u], p, p * 0.3)
            o = rng.random(len(u)) < p
            ot = ts[o] + rng.exponential(2 * 3600, int(o.sum()))
            props = _json(f'{{"channel":"{chan}","campaign_id":"{cid}","message_id_ref":"', ref[o], '"}')
            ev.add("message_opened", u[o], ot, props)
            c = rng.random(int(o.sum())) < 0.25
            ev.add("message_clicked", u[o][c], ot[c] + 20, props.filter(pa.array(c)))

    def _assemble(self, ev: _Events, uid: np.ndarray, platform: np.ndarray, tz: np.ndarray, counter: int) -> pa.Table:
        """One EVENT_SCHEMA table of the chunk: future events dropped, ids numbered in order.

        Rows stay grouped by event name (the order the blocks were generated in), which keeps the
        store's min/max zone maps on `event` tight; no sort, so no copy of the property text.
        """
        user = np.concatenate([b[2] for b in ev.blocks])
        t = np.concatenate([b[3] for b in ev.blocks])
        sizes = [len(b[2]) for b in ev.blocks]
        name_idx = np.repeat(np.arange(len(ev.blocks)), sizes)
        who = np.repeat(np.array([b[5] for b in ev.blocks]), sizes)
        props = pa.chunked_array([b[4] for b in ev.blocks])
        keep = (t >= 0) & (t < self.period)
        if not keep.all():
            mask = pa.array(keep)
            user, t, name_idx, props = user[keep], t[keep], name_idx[keep], props.filter(mask)
            who = who[keep]
        n = len(user)
        names = pa.array([b[0] for b in ev.blocks]).take(pa.array(name_idx))
        types = pa.array([b[1] for b in ev.blocks]).take(pa.array(name_idx))
        ts = pa.array(self.start_us + (t * 1e6).astype(np.int64), type=pa.int64()).cast(TS)
        user_arr = pa.array(user)
        # Only a dozen distinct contexts (platform x time zone): take from those, not from one per user.
        combos, per_user = np.unique(np.char.add(np.char.add(platform, "|"), tz), return_inverse=True)
        plat, zone = np.array([c.split("|") for c in combos]).T
        context = _json('{"device":{"type":"', plat, '"},"timezone":"', zone, '","library":{"name":"segmint-demo"}}')
        context = context.take(pa.array(per_user[user]))
        ids = pc.binary_join_element_wise(
            f"demo-{self.spec.seed}-", pc.cast(pa.array(np.arange(counter, counter + n)), pa.string()), ""
        )
        return pa.table(
            [
                ids,
                types,
                names,
                pc.if_else(pa.array(who == ANONYMOUS), pa.scalar(None, pa.string()), pa.array(uid).take(user_arr)),
                pc.if_else(
                    pa.array(who != KNOWN),
                    pa.array(np.char.add("anon-", uid)).take(user_arr),
                    pa.scalar(None, pa.string()),
                ),
                ts,
                ts,
                props.combine_chunks(),
                context,
                pa.array([SOURCE]).take(pa.array(np.zeros(n, dtype=np.int64))),
            ],
            schema=EVENT_SCHEMA,
        )
