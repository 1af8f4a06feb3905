"""UI text in Korean and English: `t(key)` looks a key up in the request's language."""

from __future__ import annotations

from collections.abc import Callable

from starlette.requests import Request

LANGS = ("ko", "en")
DEFAULT = "ko"
LANG_COOKIE = "lang"

CATALOG: dict[str, dict[str, str]] = {
    "ko": {
        "product.tagline": "셀프 호스팅 CRM 세그먼트·타기팅",
        "nav.home": "홈", "nav.events": "이벤트", "nav.settings": "설정", "nav.api_docs": "API 문서",
        "nav.main": "주 메뉴", "lang.switch": "언어", "lang.ko": "한국어", "lang.en": "English",
        "user.logout": "로그아웃", "user.signed_in_as": "로그인 사용자",
        "skip": "본문으로 건너뛰기",
        "login.title": "로그인", "login.email": "이메일", "login.password": "비밀번호",
        "login.submit": "로그인", "login.failed": "이메일 또는 비밀번호가 올바르지 않습니다.",
        "login.throttled": "로그인 시도가 너무 많습니다. 잠시 후 다시 시도하세요.",
        "login.expired": "페이지가 만료되었습니다. 다시 시도하세요.",
        "logout.title": "로그아웃", "logout.confirm": "로그아웃할까요?", "logout.done": "로그아웃되었습니다.",
        "home.overview": "워크스페이스 개요", "home.tz": "시간대", "home.all_utc": "모든 시각은 UTC",
        "home.users": "사용자", "home.profiles": "프로필", "home.events": "이벤트",
        "home.rejected": "거부된 메시지", "home.range": "기간", "home.per_event": "이벤트별 건수",
        "home.empty": "아직 이벤트가 없습니다.",
        "home.empty_hint": "쓰기 키로 POST /v1/batch에 이벤트를 보내거나 segmint demo로 데모 데이터를 만드세요.",
        "home.ingest": "수집 현황", "home.since_start": "(이 서버가 시작된 뒤)",
        "ingest.accepted": "접수", "ingest.stored": "저장", "ingest.duplicates": "중복 제거",
        "ingest.rejected": "거부", "ingest.writer": "쓰기 상태", "ingest.ok": "정상", "ingest.error": "오류",
        "home.next": "다음 단계", "home.next_docs": "API 문서 (OpenAPI): 이벤트 수집, 관리 API",
        "col.event": "이벤트", "col.name": "이름", "col.count": "건수", "col.users": "사용자",
        "col.first": "처음", "col.last": "마지막",
        "events.title": "이벤트와 택소노미", "events.properties": "속성", "events.type": "유형",
        "events.required": "필수", "events.description": "설명",
        "events.no_props": "택소노미에 정의된 속성이 없습니다.",
        "events.volume": "최근 30일 일별 건수", "events.undeclared": "택소노미에 없음",
        "events.violations": "택소노미 위반", "events.field": "필드", "events.kind": "종류",
        "events.reason": "사유", "events.rejected_recent": "최근 거부된 메시지",
        "events.received": "수신 시각", "events.source": "출처", "events.none_rejected": "거부된 메시지가 없습니다.",
        "yes": "예", "no": "아니오",
        "settings.title": "설정", "settings.keys": "쓰기 키", "settings.keys_hint":
            "SDK와 수집 API가 이벤트를 보낼 때 쓰는 키입니다. UI나 관리 API는 열 수 없습니다.",
        "settings.label": "용도", "settings.create": "쓰기 키 만들기", "settings.revoke": "폐기",
        "settings.prefix": "접두사", "settings.created": "생성", "settings.status": "상태",
        "settings.active": "사용 중", "settings.revoked": "폐기됨",
        "settings.new_key": "새 쓰기 키 (지금 한 번만 표시됩니다)", "settings.users": "사용자",
        "settings.email": "이메일", "settings.role": "역할", "settings.last_login": "마지막 로그인",
        "settings.no_keys": "쓰기 키가 없습니다.", "settings.revoked_done": "쓰기 키를 폐기했습니다.",
        "role.admin": "관리자", "role.marketer": "마케터",
        "error.csrf": "보안 토큰이 없거나 올바르지 않습니다. 페이지를 새로 고친 뒤 다시 시도하세요.",
    },
    "en": {
        "product.tagline": "Self-hosted CRM segmentation and targeting",
        "nav.home": "Home", "nav.events": "Events", "nav.settings": "Settings", "nav.api_docs": "API docs",
        "nav.main": "Main menu", "lang.switch": "Language", "lang.ko": "한국어", "lang.en": "English",
        "user.logout": "Sign out", "user.signed_in_as": "Signed in as",
        "skip": "Skip to content",
        "login.title": "Sign in", "login.email": "Email", "login.password": "Password",
        "login.submit": "Sign in", "login.failed": "Wrong email or password.",
        "login.throttled": "Too many sign-in attempts. Try again in a few minutes.",
        "login.expired": "This page expired. Please try again.",
        "logout.title": "Sign out", "logout.confirm": "Sign out now?", "logout.done": "You are signed out.",
        "home.overview": "Workspace overview", "home.tz": "Time zone", "home.all_utc": "all times UTC",
        "home.users": "Users", "home.profiles": "Profiles", "home.events": "Events",
        "home.rejected": "Rejected messages", "home.range": "Range", "home.per_event": "Events by name",
        "home.empty": "No events yet.",
        "home.empty_hint": "Send events to POST /v1/batch with a write key, or run segmint demo for demo data.",
        "home.ingest": "Ingestion", "home.since_start": "(since this server started)",
        "ingest.accepted": "Accepted", "ingest.stored": "Stored", "ingest.duplicates": "Duplicates dropped",
        "ingest.rejected": "Rejected", "ingest.writer": "Writer", "ingest.ok": "OK", "ingest.error": "Error",
        "home.next": "Next steps", "home.next_docs": "API docs (OpenAPI): ingestion, admin API",
        "col.event": "Event", "col.name": "Name", "col.count": "Count", "col.users": "Users",
        "col.first": "First", "col.last": "Last",
        "events.title": "Events and taxonomy", "events.properties": "Properties", "events.type": "Type",
        "events.required": "Required", "events.description": "Description",
        "events.no_props": "No properties declared in the taxonomy.",
        "events.volume": "Daily volume, last 30 days", "events.undeclared": "not in the taxonomy",
        "events.violations": "Taxonomy violations", "events.field": "Field", "events.kind": "Kind",
        "events.reason": "Reason", "events.rejected_recent": "Recently rejected messages",
        "events.received": "Received", "events.source": "Source", "events.none_rejected": "No rejected messages.",
        "yes": "yes", "no": "no",
        "settings.title": "Settings", "settings.keys": "Write keys", "settings.keys_hint":
            "Keys SDKs and the ingestion API use to send events. They do not open the UI or the admin API.",
        "settings.label": "Label", "settings.create": "Create write key", "settings.revoke": "Revoke",
        "settings.prefix": "Prefix", "settings.created": "Created", "settings.status": "Status",
        "settings.active": "active", "settings.revoked": "revoked",
        "settings.new_key": "New write key (shown only this once)", "settings.users": "Users",
        "settings.email": "Email", "settings.role": "Role", "settings.last_login": "Last sign-in",
        "settings.no_keys": "No write keys.", "settings.revoked_done": "Write key revoked.",
        "role.admin": "admin", "role.marketer": "marketer",
        "error.csrf": "Missing or wrong security token. Reload the page and try again.",
    },
}


def _q(part: str) -> tuple[str, float]:
    bits = [b.strip() for b in part.split(";")]
    q = 1.0
    for b in bits[1:]:
        if b.startswith("q="):
            try:
                q = float(b[2:])
            except ValueError:
                q = 0.0
    return bits[0].lower(), q


def from_accept_language(header: str | None) -> str:
    """ko unless the Accept-Language header ranks English above Korean."""
    best: dict[str, float] = {}
    for part in (header or "").split(","):
        if not part.strip():
            continue
        tag, q = _q(part)
        base = tag.split("-")[0]
        if base in LANGS:
            best[base] = max(best.get(base, 0.0), q)
    return "en" if best.get("en", 0.0) > best.get("ko", 0.0) else DEFAULT


def request_lang(request: Request) -> str:
    """The language of a request: the `lang` cookie, else Accept-Language."""
    cookie = request.cookies.get(LANG_COOKIE)
    if cookie in LANGS:
        return cookie
    return from_accept_language(request.headers.get("accept-language"))


def translator(lang: str) -> Callable[[str], str]:
    """`t(key)` for a language; an unknown key falls back to Korean, then to the key itself."""
    table = CATALOG.get(lang, CATALOG[DEFAULT])

    def t(key: str) -> str:
        return table.get(key) or CATALOG[DEFAULT].get(key, key)

    return t
