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

# Segment list, builder, segment page, explain, user profiles (issue 6, second part).
_MORE: dict[str, dict[str, str]] = {
    "ko": {
        "nav.segments": "세그먼트", "nav.users": "고객 프로필", "role.viewer": "뷰어",
        "settings.set_role": "역할 바꾸기", "settings.role_changed": "역할을 바꿨습니다",
        "error.admin_only": "관리자만 다른 사용자의 역할을 바꿀 수 있습니다 (자신의 역할은 바꿀 수 없습니다).",
        "error.viewer": "뷰어 권한으로는 저장하거나 설정을 바꿀 수 없습니다. 관리자에게 요청하세요.",
        "seg.list_title": "세그먼트", "seg.new": "새 세그먼트", "seg.filter_label": "라벨로 거르기",
        "seg.filter": "거르기", "seg.labels": "라벨", "seg.kind": "종류", "seg.kind_dynamic": "동적",
        "seg.kind_static": "정적", "seg.size": "인원", "seg.last_eval": "마지막 평가", "seg.version": "버전",
        "seg.counting": "계산 중…", "seg.changes": "변화", "seg.not_evaluated": "기록 없음",
        "eval.ok": "정상", "eval.failed": "실패", "eval.running": "진행 중", "eval.kind.sweep": "정기 재계산",
        "eval.kind.event": "이벤트 반영", "eval.kind.edit": "정의 변경",
        "seg.size_hint": "인원은 지금 시각 기준으로 계산합니다 (정적 세그먼트는 고정된 명단). "
                         "마지막 평가는 실시간 평가가 기록한 가입·이탈 시각입니다.",
        "seg.none": "저장된 세그먼트가 없습니다.", "seg.status_error": "오류",
        "seg.status_unsupported": "SQL 미지원",
        "seg.export_csv": "CSV 내보내기", "seg.edit": "빌더에서 편집", "seg.snapshot": "정적 스냅샷 만들기",
        "seg.snapshot_of": "스냅샷:", "seg.frozen": "고정된 명단", "seg.definition": "정의",
        "seg.no_members": "지금 해당하는 고객이 없습니다.", "seg.versions": "버전 기록",
        "panel.growth": "성장 추이 (일별 인원·가입·이탈)", "panel.overlap": "다른 세그먼트와 겹침",
        "panel.profile": "전체 고객 대비 프로필", "panel.no_data": "아직 데이터가 없습니다.",
        "panel.failed": "불러오지 못했습니다",
        "panel.backfill": "지난 90일 채우기 (as-of 재계산)", "panel.backfill_running": "계산 중…",
        "panel.shared": "겹치는 인원", "panel.share_of_this": "이 세그먼트 대비", "panel.jaccard": "자카드",
        "panel.segment": "세그먼트", "panel.trait": "속성", "panel.divergence": "차이 (0-1)",
        "panel.top_value": "가장 두드러진 값", "panel.members_share": "멤버 비율",
        "panel.population_share": "전체 비율",
        "explain.title": "이 고객은 왜 포함(제외)되었나요?", "explain.user": "사용자 ID",
        "explain.submit": "설명 보기", "explain.need_user": "사용자 ID를 입력하세요.",
        "explain.in": "포함", "explain.out": "제외", "explain.true": "참", "explain.false": "거짓",
        "explain.events": "판단 근거 이벤트", "explain.unknown_user": "이 ID의 이벤트나 프로필이 없습니다",
        "explain.frozen": "정적 세그먼트: 포함 여부는 고정된 명단 기준",
        "explain.kind_and": "모두 (AND)", "explain.kind_or": "하나 이상 (OR)", "explain.kind_not": "아님 (NOT)",
        "explain.kind_trait": "속성", "explain.kind_performed": "이벤트 수행", "explain.kind_aggregate": "집계",
        "explain.kind_first": "첫 이벤트", "explain.kind_last": "마지막 이벤트", "explain.kind_sequence": "순서",
        "explain.kind_with": "연관 조건", "explain.kind_streak": "연속 미반응",
        "explain.kind_interval_ratio": "구매 주기", "explain.kind_in_segment": "다른 세그먼트",
        "users.title": "고객 프로필", "users.recent_active": "최근 활동한 고객",
        "users.search_label": "사용자 ID", "users.search": "찾기",
        "users.matches": "이 글자로 시작하는 ID", "users.not_found": "해당하는 사용자가 없습니다",
        "users.back": "← 고객 찾기", "users.segments": "현재 속한 세그먼트", "users.traits": "속성",
        "users.group_declared": "고객 속성 (택소노미)", "users.group_computed": "계산된 속성",
        "users.group_other": "기타 속성", "users.trait": "속성", "users.value": "값",
        "users.no_traits": "속성이 없습니다.", "users.messages": "받은 메시지", "users.when": "시각",
        "users.no_messages": "받은 메시지가 없습니다.", "users.timeline": "이벤트 타임라인",
        "users.recent": "(최근 100건, UTC)",
        "builder.title": "세그먼트 빌더", "builder.edit": "세그먼트 편집", "builder.back": "세그먼트 페이지로",
        "builder.meta": "세그먼트 정보", "builder.labels_hint": "(쉼표로 구분)", "builder.conditions": "조건",
        "builder.tree_hint": "조건을 추가하고 그룹으로 묶으세요. 바꿀 때마다 인원과 텍스트가 갱신됩니다.",
        "builder.text": "세그먼트 텍스트", "builder.text_hint": "텍스트를 고치면 위의 조건 트리가 다시 그려집니다.",
        "builder.advanced": "고급: 기준 시각", "builder.as_of": "기준 시각 (UTC)",
        "builder.as_of_hint": "비워 두면 지금 시각 기준으로 계산합니다.", "builder.preview": "미리보기",
        "builder.count": "해당 인원", "builder.sample": "해당 고객 예시", "builder.sql": "실행한 SQL",
        "builder.save": "세그먼트 저장", "builder.viewer": "뷰어 권한: 미리보기만 할 수 있고 저장할 수 없습니다.",
        "b.and": "모두 만족 (AND)", "b.or": "하나 이상 만족 (OR)", "b.not": "아님 (NOT)", "b.group_op": "그룹",
        "b.add_condition": "+ 조건", "b.add_group": "+ 그룹", "b.remove": "삭제", "b.cond_type": "조건 종류",
        "b.type_performed": "이벤트 수행", "b.type_trait": "고객 속성", "b.type_last": "마지막 이벤트 시점",
        "b.type_first": "첫 이벤트 시점", "b.type_with": "연관 조건 (이벤트 고정)",
        "b.type_in_segment": "다른 세그먼트", "b.event": "이벤트", "b.choose": "선택하세요", "b.freq": "횟수",
        "b.freq_did": "했음 (최소)", "b.freq_not": "하지 않음", "b.freq_lte": "최대", "b.freq_eq": "정확히",
        "b.freq_between": "사이", "b.n": "횟수 값", "b.n2": "최대 횟수", "b.window": "기간",
        "b.win_ever": "전체 기간", "b.win_last": "최근", "b.win_ago": "최소 경과 (이전)", "b.win_between": "날짜 사이",
        "b.win_after": "앵커 이후", "b.win_before": "앵커 이전", "b.win_each": "매 기간", "b.win_calendar": "달력 기준",
        "b.amount": "기간 값", "b.unit": "단위", "b.u_minutes": "분", "b.u_hours": "시간", "b.u_days": "일",
        "b.u_weeks": "주", "b.u_months": "개월", "b.start": "시작 (UTC)", "b.end": "끝 (UTC)", "b.anchor": "앵커",
        "b.within": "이내 (선택)", "b.where": "+ 속성 필터", "b.property": "속성", "b.op": "연산자", "b.value": "값",
        "b.value2": "두 번째 값", "b.value_kind": "값 종류", "b.vk_value": "직접 입력",
        "b.vk_anchor": "앵커 이벤트의 속성", "b.anchor_prop": "앵커 속성",
        "b.op_eq": "같음 (=)", "b.op_ne": "같지 않음 (≠)",
        "b.op_gt": "초과 (>)", "b.op_gte": "이상 (≥)", "b.op_lt": "미만 (<)", "b.op_lte": "이하 (≤)",
        "b.op_between": "사이", "b.op_in": "목록 중 하나", "b.op_not_in": "목록에 없음", "b.op_contains": "포함",
        "b.op_starts_with": "로 시작", "b.op_exists": "값 있음", "b.op_not_exists": "값 없음",
        "b.op_within_last": "최근 이내", "b.op_older_than": "이전", "b.trait": "고객 속성",
        "b.trait_declared": "고객 속성", "b.trait_computed": "계산된 속성", "b.trait_profile": "프로필 필드",
        "b.pick": "고정할 이벤트", "b.pick_first": "처음", "b.pick_last": "마지막", "b.pick_any": "아무",
        "b.anchor_name": "이름 (as)", "b.anchor_then": "고정한 이벤트({name})에 대해 아래 조건:",
        "b.segment": "세그먼트", "b.readonly": "이 조건은 오른쪽 텍스트에서 편집하세요.",
        "b.empty": "조건을 추가하세요.", "b.need_event": "이벤트를 선택하세요.",
        "b.need_trait": "속성을 선택하세요.", "b.ms": "{ms} ms", "b.saving": "저장 중…",
        "b.saved": "저장했습니다 (v{v}).", "b.open": "세그먼트 페이지 열기", "b.need_name": "이름을 입력하세요.",
        "b.line_col": "{line}행 {col}열", "b.suggestion": "제안", "b.apply_suggestion": "제안 적용",
        "b.list_hint": "쉼표로 구분",
    },
    "en": {
        "nav.segments": "Segments", "nav.users": "User profiles", "role.viewer": "viewer",
        "settings.set_role": "Change role", "settings.role_changed": "Role changed",
        "error.admin_only": "Only admins change other users' roles (nobody changes their own).",
        "error.viewer": "Your role is viewer: you can look, but not save or change settings. Ask an admin.",
        "seg.list_title": "Segments", "seg.new": "New segment", "seg.filter_label": "Filter by label",
        "seg.filter": "Filter", "seg.labels": "Labels", "seg.kind": "Kind", "seg.kind_dynamic": "dynamic",
        "seg.kind_static": "static", "seg.size": "Size", "seg.last_eval": "Last evaluation", "seg.version": "Version",
        "seg.counting": "counting…", "seg.changes": "changes", "seg.not_evaluated": "none recorded",
        "eval.ok": "ok", "eval.failed": "failed", "eval.running": "running", "eval.kind.sweep": "sweep",
        "eval.kind.event": "events", "eval.kind.edit": "definition edit",
        "seg.size_hint": "Sizes are counted now (a static segment: its frozen list). Last evaluation is when live "
                         "evaluation last recorded an entry or exit.",
        "seg.none": "No saved segments.", "seg.status_error": "error",
        "seg.status_unsupported": "not in SQL yet",
        "seg.export_csv": "Export CSV", "seg.edit": "Edit in the builder", "seg.snapshot": "Snapshot to static",
        "seg.snapshot_of": "Snapshot of", "seg.frozen": "frozen list", "seg.definition": "Definition",
        "seg.no_members": "No users match now.", "seg.versions": "Version history",
        "panel.growth": "Growth (members, entries, exits per day)", "panel.overlap": "Overlap with other segments",
        "panel.profile": "Profile against the population", "panel.no_data": "No data yet.",
        "panel.failed": "Could not load",
        "panel.backfill": "Fill the last 90 days (as-of recomputation)", "panel.backfill_running": "Computing…",
        "panel.shared": "Shared members", "panel.share_of_this": "Of this segment", "panel.jaccard": "Jaccard",
        "panel.segment": "Segment", "panel.trait": "Trait", "panel.divergence": "Divergence (0-1)",
        "panel.top_value": "Most distinctive value", "panel.members_share": "Members",
        "panel.population_share": "Everyone",
        "explain.title": "Why is this user in or out?", "explain.user": "User ID",
        "explain.submit": "Explain", "explain.need_user": "Enter a user ID.",
        "explain.in": "in", "explain.out": "out", "explain.true": "true", "explain.false": "false",
        "explain.events": "Deciding events", "explain.unknown_user": "no events or profile for this ID",
        "explain.frozen": "static segment: membership is the frozen list",
        "explain.kind_and": "all of (AND)", "explain.kind_or": "any of (OR)", "explain.kind_not": "not",
        "explain.kind_trait": "trait", "explain.kind_performed": "performed", "explain.kind_aggregate": "aggregate",
        "explain.kind_first": "first event", "explain.kind_last": "last event", "explain.kind_sequence": "sequence",
        "explain.kind_with": "correlated", "explain.kind_streak": "streak",
        "explain.kind_interval_ratio": "purchase cycle", "explain.kind_in_segment": "other segment",
        "users.title": "User profiles", "users.recent_active": "Recently active users",
        "users.search_label": "User ID", "users.search": "Find",
        "users.matches": "IDs starting with this", "users.not_found": "No such user",
        "users.back": "← Find a user", "users.segments": "Current segments", "users.traits": "Traits",
        "users.group_declared": "Traits (taxonomy)", "users.group_computed": "Computed traits",
        "users.group_other": "Other traits", "users.trait": "Trait", "users.value": "Value",
        "users.no_traits": "No traits.", "users.messages": "Messages", "users.when": "When",
        "users.no_messages": "No messages.", "users.timeline": "Event timeline",
        "users.recent": "(latest 100, UTC)",
        "builder.title": "Segment builder", "builder.edit": "Edit segment", "builder.back": "Back to the segment page",
        "builder.meta": "Segment", "builder.labels_hint": "(comma-separated)", "builder.conditions": "Conditions",
        "builder.tree_hint": "Add conditions and group them. Size and text update as you edit.",
        "builder.text": "Segment text", "builder.text_hint": "Edit the text and the condition tree is redrawn.",
        "builder.advanced": "Advanced: as of", "builder.as_of": "As of (UTC)",
        "builder.as_of_hint": "Empty: counted as of now.", "builder.preview": "Preview",
        "builder.count": "Members", "builder.sample": "Sample members", "builder.sql": "SQL that ran",
        "builder.save": "Save segment", "builder.viewer": "Viewer role: you can preview but not save.",
        "b.and": "All of (AND)", "b.or": "Any of (OR)", "b.not": "NOT", "b.group_op": "Group",
        "b.add_condition": "+ Condition", "b.add_group": "+ Group", "b.remove": "Remove",
        "b.cond_type": "Condition type",
        "b.type_performed": "Performed an event", "b.type_trait": "User trait", "b.type_last": "Last event time",
        "b.type_first": "First event time", "b.type_with": "Correlated (anchor an event)",
        "b.type_in_segment": "In another segment", "b.event": "Event", "b.choose": "Choose…", "b.freq": "How often",
        "b.freq_did": "did, at least", "b.freq_not": "did not", "b.freq_lte": "at most", "b.freq_eq": "exactly",
        "b.freq_between": "between", "b.n": "Times", "b.n2": "Up to", "b.window": "When",
        "b.win_ever": "ever", "b.win_last": "in the last", "b.win_ago": "at least … ago",
        "b.win_between": "between dates",
        "b.win_after": "after the anchor", "b.win_before": "before the anchor", "b.win_each": "each period",
        "b.win_calendar": "calendar", "b.amount": "Amount", "b.unit": "Unit", "b.u_minutes": "minutes",
        "b.u_hours": "hours", "b.u_days": "days", "b.u_weeks": "weeks", "b.u_months": "months",
        "b.start": "Start (UTC)", "b.end": "End (UTC)", "b.anchor": "Anchor", "b.within": "within (optional)",
        "b.where": "+ Property filter", "b.property": "Property", "b.op": "Operator", "b.value": "Value",
        "b.value2": "Second value", "b.value_kind": "Value kind", "b.vk_value": "a value",
        "b.vk_anchor": "the anchor's property", "b.anchor_prop": "Anchor property",
        "b.op_eq": "equals", "b.op_ne": "does not equal",
        "b.op_gt": "greater than", "b.op_gte": "at least", "b.op_lt": "less than", "b.op_lte": "at most",
        "b.op_between": "between", "b.op_in": "is one of", "b.op_not_in": "is none of", "b.op_contains": "contains",
        "b.op_starts_with": "starts with", "b.op_exists": "is set", "b.op_not_exists": "is not set",
        "b.op_within_last": "within the last", "b.op_older_than": "older than", "b.trait": "Trait",
        "b.trait_declared": "Traits", "b.trait_computed": "Computed traits", "b.trait_profile": "Profile fields",
        "b.pick": "Pick", "b.pick_first": "first", "b.pick_last": "last", "b.pick_any": "any",
        "b.anchor_name": "Name (as)", "b.anchor_then": "and for that event ({name}):",
        "b.segment": "Segment", "b.readonly": "Edit this condition in the text.",
        "b.empty": "Add a condition.", "b.need_event": "Choose an event.",
        "b.need_trait": "Choose a trait.", "b.ms": "{ms} ms", "b.saving": "Saving…",
        "b.saved": "Saved (v{v}).", "b.open": "Open the segment page", "b.need_name": "Enter a name.",
        "b.line_col": "line {line}, column {col}", "b.suggestion": "Did you mean", "b.apply_suggestion": "Apply",
        "b.list_hint": "comma-separated",
    },
}
for _lang, _table in _MORE.items():
    CATALOG[_lang].update(_table)


def js_catalog(lang: str) -> dict[str, str]:
    """The builder's texts (keys starting with `b.`) in a language, for the client script."""
    table = {**CATALOG[DEFAULT], **CATALOG.get(lang, {})}
    return {k: v for k, v in table.items() if k.startswith("b.")}


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
