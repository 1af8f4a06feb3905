"""Hand-written DuckDB SQL for the seed segments (catalog A1-A4, a few B): proof that the demo holds them.

These queries are deliberately independent of the segment engine: they are the yardstick the demo is
tuned against and that the engine's results can be compared with. Windows are relative to `now`; one
month is 30 days. Parameters are bound ($now, $coupon), never pasted.
"""

from __future__ import annotations

from datetime import datetime

from segmint.store.base import EventStore

COUPON = "SALE20"  # the coupon of A1
VISIT = "event IN ('app_opened', '$page')"

SEGMENTS: dict[str, tuple[str, str]] = {
    "A1_basic": (
        "쿠폰(SALE20) 미다운로드",
        """
        SELECT user_id FROM profiles p WHERE NOT EXISTS (
          SELECT 1 FROM events e WHERE e.event = 'coupon_downloaded' AND e.p_coupon_id = $coupon
            AND e.user_id = p.user_id AND e.ts < $now)""",
    ),
    "A1_advanced": (
        "쿠폰 미다운로드 + 최근 1개월 방문·상품 조회 2회 이상·장바구니 1회 이상",
        f"""
        SELECT user_id FROM profiles p WHERE NOT EXISTS (
          SELECT 1 FROM events e WHERE e.event = 'coupon_downloaded' AND e.p_coupon_id = $coupon
            AND e.user_id = p.user_id AND e.ts < $now)
        AND user_id IN (SELECT user_id FROM events WHERE {VISIT}
                        AND ts >= $now - INTERVAL 30 DAY AND ts < $now)
        AND user_id IN (SELECT user_id FROM events WHERE event = 'product_viewed'
                        AND ts >= $now - INTERVAL 30 DAY AND ts < $now GROUP BY user_id HAVING count(*) >= 2)
        AND user_id IN (SELECT user_id FROM events WHERE event = 'cart_added'
                        AND ts >= $now - INTERVAL 30 DAY AND ts < $now)""",
    ),
    "A2_basic": (
        "장바구니에 담고 아직 구매하지 않은 상품이 있음",
        """
        SELECT DISTINCT c.user_id FROM events c WHERE c.event = 'cart_added' AND c.ts < $now
        AND NOT EXISTS (SELECT 1 FROM events o WHERE o.event = 'product_purchased' AND o.user_id = c.user_id
                        AND o.p_product_id = c.p_product_id AND o.ts >= c.ts AND o.ts < $now)""",
    ),
    "A2_advanced": (
        "3일 전 이상 담은 상품 미구매 + 같은 카테고리 2회 이상 조회 + 그 상품 리뷰 미조회",
        """
        WITH last_cart AS (
          SELECT user_id, p_product_id AS product_id, p_category AS category, ts FROM events
          WHERE event = 'cart_added' AND ts < $now
          QUALIFY row_number() OVER (PARTITION BY user_id ORDER BY ts DESC, message_id DESC) = 1)
        SELECT l.user_id FROM last_cart l
        WHERE l.ts <= $now - INTERVAL 3 DAY
        AND NOT EXISTS (SELECT 1 FROM events o WHERE o.event = 'product_purchased' AND o.user_id = l.user_id
                        AND o.p_product_id = l.product_id AND o.ts >= l.ts AND o.ts < $now)
        AND (SELECT count(*) FROM events v WHERE v.event = 'product_viewed' AND v.user_id = l.user_id
             AND v.p_category = l.category AND v.ts > l.ts AND v.ts < $now) >= 2
        AND NOT EXISTS (SELECT 1 FROM events r WHERE r.event = 'review_viewed' AND r.user_id = l.user_id
                        AND r.p_product_id = l.product_id AND r.ts < $now)""",
    ),
    "A3_basic": (
        "최근 1개월 미방문",
        f"""
        SELECT user_id FROM profiles p WHERE NOT EXISTS (
          SELECT 1 FROM events e WHERE e.{VISIT} AND e.user_id = p.user_id
            AND e.ts >= $now - INTERVAL 30 DAY AND e.ts < $now)""",
    ),
    "A3_advanced": (
        "최근 1개월 미방문·미구매 + 댓글 이벤트 참여 이력 + 최근 3개월 구매",
        f"""
        SELECT user_id FROM profiles p WHERE NOT EXISTS (
          SELECT 1 FROM events e WHERE (e.{VISIT} OR e.event = 'order_completed') AND e.user_id = p.user_id
            AND e.ts >= $now - INTERVAL 30 DAY AND e.ts < $now)
        AND user_id IN (SELECT user_id FROM events WHERE event = 'comment_event_joined' AND ts < $now)
        AND user_id IN (SELECT user_id FROM events WHERE event = 'order_completed'
                        AND ts >= $now - INTERVAL 90 DAY AND ts < $now)""",
    ),
    "A4_basic": (
        "1개월 전 이상에 구매 이력",
        """
        SELECT DISTINCT user_id FROM events
        WHERE event = 'order_completed' AND ts <= $now - INTERVAL 30 DAY""",
    ),
    "A4_advanced": (
        "마지막 구매 1개월 이상 전 + 같은 상품 2회 이상 구매 + 그 카테고리 최근 2주 미조회",
        """
        WITH last_order AS (
          SELECT user_id, max(ts) AS last FROM events WHERE event = 'order_completed' AND ts < $now
          GROUP BY user_id),
        repeated AS (
          SELECT user_id, p_product_id, any_value(p_category) AS category FROM events
          WHERE event = 'product_purchased' AND ts < $now
          GROUP BY user_id, p_product_id HAVING count(DISTINCT p_order_id) >= 2)
        SELECT DISTINCT r.user_id FROM repeated r JOIN last_order l USING (user_id)
        WHERE l.last <= $now - INTERVAL 30 DAY
        AND NOT EXISTS (SELECT 1 FROM events v WHERE v.event = 'product_viewed' AND v.user_id = r.user_id
                        AND v.p_category = r.category AND v.ts >= $now - INTERVAL 14 DAY AND v.ts < $now)""",
    ),
    "B_android": (
        "Android 사용자",
        """
        SELECT user_id FROM profiles WHERE traits->>'device' = 'Android'""",
    ),
    "B_push_ignored_5": (
        "푸시 5회 연속 미열람",
        """
        WITH sends AS (
          SELECT user_id, json_extract_string(properties, '$.message_id_ref') AS ref,
                 row_number() OVER (PARTITION BY user_id ORDER BY ts DESC, message_id DESC) AS k
          FROM events WHERE event = 'message_sent' AND p_channel = 'push' AND ts < $now),
        opens AS (
          SELECT DISTINCT json_extract_string(properties, '$.message_id_ref') AS ref FROM events
          WHERE event = 'message_opened' AND p_channel = 'push' AND ts < $now)
        SELECT s.user_id FROM sends s LEFT JOIN opens o ON o.ref = s.ref WHERE s.k <= 5
        GROUP BY s.user_id HAVING count(*) = 5 AND count(o.ref) = 0""",
    ),
    "B_event_page_3x": (
        "이벤트 페이지 3회 이상 조회",
        """
        SELECT user_id FROM events WHERE event = '$page' AND properties->>'name' = '이벤트 페이지' AND ts < $now
        GROUP BY user_id HAVING count(*) >= 3""",
    ),
    "B_new_7d": (
        "최근 7일 신규 가입",
        """
        SELECT DISTINCT user_id FROM events WHERE event = 'signed_up'
        AND ts >= $now - INTERVAL 7 DAY AND ts < $now""",
    ),
    "B_dormant_30d": (
        "30일 이상 앱 미실행 (휴면)",
        """
        SELECT user_id FROM events WHERE event = 'app_opened' AND ts < $now
        GROUP BY user_id HAVING max(ts) < $now - INTERVAL 30 DAY""",
    ),
}


def segment_members(store: EventStore, name: str, now: datetime) -> set[str]:
    """Members of one seed segment as of `now` (naive UTC)."""
    _, sql = SEGMENTS[name]
    params = {k: v for k, v in (("now", now), ("coupon", COUPON)) if f"${k}" in sql}
    table = store.query(sql, params)
    return set(table.column(0).to_pylist())


def seed_segments(store: EventStore, now: datetime) -> dict[str, set[str]]:
    """Members of every seed segment as of `now`."""
    return {name: segment_members(store, name, now) for name in SEGMENTS}
