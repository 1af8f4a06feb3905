"""The seed-catalog segments (sections A and B) written in the segment language, for the demo and tests."""

from __future__ import annotations

from dataclasses import dataclass

from segmint.segments import model as m
from segmint.segments.dsl import parse


@dataclass(frozen=True)
class SeedSegment:
    """One catalog segment: id, name, what it means, and its text."""

    id: str
    name: str
    description: str
    text: str

    def segment(self) -> m.Segment:
        """The parsed, saved form."""
        return m.Segment(name=self.name, description=self.description, definition=parse(self.text))


SEEDS: list[SeedSegment] = [
    SeedSegment("A1-basic", "쿠폰 미다운로드", "has not downloaded the coupon",
                "did not coupon_downloaded"),
    SeedSegment("A1-advanced", "쿠폰 미다운로드 활성 고객",
                "no coupon download, and visited, viewed products >= 2 times and added to cart "
                "in the last month",
                "did not coupon_downloaded\n"
                "and did app_opened in last 1 month\n"
                "and did product_viewed at least 2 times in last 1 month\n"
                "and did cart_added in last 1 month"),
    SeedSegment("A2-basic", "장바구니 미구매", "has an item in the cart that was not bought since",
                "with any cart_added as cart:\n"
                "  did not product_purchased where product_id = cart.product_id after cart"),
    SeedSegment("A2-advanced", "장바구니 리마인드",
                "a cart item added >= 3 days ago, not bought since; >= 2 views of products of that item's "
                "category; never read that product's reviews",
                "with any cart_added as cart at least 3 days ago:\n"
                "  did not product_purchased where product_id = cart.product_id after cart\n"
                "  and did product_viewed where category = cart.category at least 2 times\n"
                "  and did not review_viewed where product_id = cart.product_id"),
    SeedSegment("A3-basic", "휴면 (1개월 미방문)", "did not visit in the last month",
                "did not app_opened in last 1 month"),
    SeedSegment("A3-advanced", "휴면 이벤트 푸시",
                "no visit and no purchase in the last month, took part in a comment event before, and bought "
                "in the last 3 months",
                "did not app_opened in last 1 month\n"
                "and did not order_completed in last 1 month\n"
                "and did comment_event_joined\n"
                "and did order_completed in last 3 months"),
    SeedSegment("A4-basic", "재구매 유도 (1개월 전 구매)", "bought a product at least a month ago",
                "did order_completed at least 1 month ago"),
    SeedSegment("A4-advanced", "재구매 넛지",
                "last purchase >= 1 month ago; some product bought >= 2 times; that product's category not "
                "browsed in the last 2 weeks",
                "last order_completed at least 1 month ago\n"
                "and (with any product_purchased as item:\n"
                "  did product_purchased where product_id = item.product_id at least 2 times\n"
                "  and did not product_viewed where category = item.category in last 2 weeks)"),
    SeedSegment("B-women-20s", "20대 여성 (뷰티)", "women in their twenties",
                'trait gender = "F" and trait age between 20 and 29'),
    SeedSegment("B-android", "안드로이드 사용자", "Android users only", 'trait device = "Android"'),
    SeedSegment("B-kakao-signup", "카카오 가입",
                "signed up through Kakao", 'trait signup_channel = "kakao"'),
    SeedSegment("B-capital-region", "수도권",
                "lives in Seoul or Gyeonggi", 'trait region in ["서울", "경기"]'),
    SeedSegment("B-cart-no-buy-7d", "7일 내 장바구니 미구매",
                "added to cart in the last 7 days but did not buy",
                "did cart_added in last 7 days not followed by order_completed"),
    SeedSegment("B-event-page-3x", "이벤트 페이지 3회 조회", "viewed the event page at least 3 times",
                'did $page where name = "이벤트 페이지" at least 3 times'),
    SeedSegment("B-push-unopened-5", "푸시 5회 연속 미오픈", "did not open a push message 5 times in a row",
                'last 5 messages on "push" not opened'),
    SeedSegment("B-no-login-14d", "14일 미접속", "no login (app open) for 14 days or more",
                "did not app_opened in last 14 days excluding new profiles"),
    SeedSegment("B-revisit-gap-2x", "방문 주기 2배 초과",
                "time since the last visit >= 2x the user's usual gap",
                "since last app_opened >= 2 * usual gap"),
    SeedSegment("B-funnel-browsing", "탐색 단계", "viewed products in the last 7 days, no cart add",
                "did product_viewed in last 7 days and did not cart_added in last 7 days"),
    SeedSegment("B-funnel-cart", "장바구니 단계", "added to cart in the last 7 days, no checkout",
                "did cart_added in last 7 days and did not checkout_started in last 7 days"),
    SeedSegment("B-funnel-checkout", "결제 직전", "started checkout in the last 7 days, no order",
                "did checkout_started in last 7 days and did not order_completed in last 7 days"),
    SeedSegment("B-new-users", "신규 가입 7일", "installed or signed up within the last 7 days",
                "first app_installed in last 7 days or first signed_up in last 7 days"),
    SeedSegment("B-dormant-30d", "30일 휴면", "no app open for 30 days or more",
                "did not app_opened in last 30 days excluding new profiles"),
    SeedSegment("B-high-value-click", "고가 상품 관심",
                "viewed a product priced >= 2x the user's average cart value",
                "did product_viewed where price >= 2 * (avg cart_value of checkout_started)"),
    SeedSegment("B-premium-category", "프리미엄 카테고리 관심", "often views the premium category (가전)",
                'did product_viewed where category = "가전" at least 5 times in last 30 days'),
    SeedSegment("B-cart-1-3-days", "장바구니 후 1-3일",
                "last cart add between 1 and 3 days ago (campaign timing)",
                "last cart_added at least 1 day ago and not last cart_added at least 3 days ago"),
    SeedSegment("B-recent-push", "최근 방문 (푸시/인앱)", "visited in the last 7 days: push or in-app",
                "did app_opened in last 7 days and trait consent_push = true"),
    SeedSegment("B-long-dormant-email", "장기 휴면 (이메일)", "no visit for 90 days, email consent: email",
                "did not app_opened in last 90 days excluding new profiles and trait consent_email = true"),
    SeedSegment("B-frequency-cap", "푸시 빈도 제한", "fewer than 3 pushes sent in the last 7 days",
                'count of message_sent where channel = "push" in last 7 days < 3'),
]

SEEDS_BY_ID: dict[str, SeedSegment] = {s.id: s for s in SEEDS}
