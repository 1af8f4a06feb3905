"""The explain tree's detail strings (written in English by the reference evaluator) in the UI language.

Each pattern mirrors one detail the evaluator writes (segments/reference.py); anything not matched is shown
as it is, so a new detail string is never lost, only left untranslated.
"""

from __future__ import annotations

import re
from typing import Any

_SOURCE_KO = {"trait": "속성", "computed": "계산 속성", "profile": "프로필"}
_PICK_KO = {"first": "첫", "last": "마지막", "any": "어떤"}
_TS = r"(\d{4}-\d\d-\d\dT[\d:.]+(?:[+-]\d\d:\d\d)?)"


def _ts(value: str) -> str:
    return value.replace("T", " ")[:19]


# (pattern, Korean template); groups are passed to the template by position
_KO: list[tuple[re.Pattern[str], Any]] = [
    (re.compile(r"^(trait|computed|profile) (\S+) = (.*)$", re.S),
     lambda m: f"{_SOURCE_KO[m[1]]} {m[2]} 값: {m[3]}"),
    (re.compile(r"^profile starts (.+), younger than the window$"),
     lambda m: f"프로필 시작 {_ts(m[1])}: 기간보다 최근에 생긴 고객"),
    (re.compile(r"^counts per period \(latest first\) (.*)$", re.S), lambda m: f"기간별 횟수 (최근부터) {m[1]}"),
    (re.compile(r"^(\d+) matching events$"), lambda m: f"조건에 맞는 이벤트 {m[1]}건"),
    (re.compile(r"^(\w+) = (.*), compared with (.*)$", re.S), lambda m: f"{m[1]} = {m[2]}, 비교 값 {m[3]}"),
    (re.compile(r"^no matching event$"), lambda m: "조건에 맞는 이벤트 없음"),
    (re.compile(rf"^(first|last) at {_TS}$"),
     lambda m: f"{'첫' if m[1] == 'first' else '마지막'} 이벤트 시각 {_ts(m[2])}"),
    (re.compile(r"^not followed$"), lambda m: "뒤이은 이벤트 없음 (조건 충족)"),
    (re.compile(r"^all (\d+) starts were followed$"), lambda m: f"시작 {m[1]}건 모두 뒤이은 이벤트가 있음"),
    (re.compile(r"^completed$"), lambda m: "순서 완료"),
    (re.compile(r"^no completed sequence from (\d+) starts$"), lambda m: f"시작 {m[1]}건 중 완료된 순서 없음"),
    (re.compile(r"^(\S+) bound to (.+)$"), lambda m: f"{m[1]} = {m[2]} 이벤트에 연결"),
    (re.compile(r"^no (first|last|any) (\S+) satisfies the condition \((\d+) tried\)$"),
     lambda m: f"조건을 만족하는 {_PICK_KO[m[1]]} {m[2]} 이벤트 없음 ({m[3]}건 확인)"),
    (re.compile(r"^only (\d+) (\S+) messages sent$"), lambda m: f"{m[2]} 메시지가 {m[1]}건만 발송됨"),
    (re.compile(r"^(\d+) of the last (\d+) had (\S+)$"), lambda m: f"최근 {m[2]}건 중 {m[1]}건에 {m[3]} 있음"),
    (re.compile(r"^(\d+) gaps, need (\d+)$"), lambda m: f"구매 간격 {m[1]}개 ({m[2]}개 필요)"),
    (re.compile(r"^(\d+)s since last, median gap (\d+)s$"),
     lambda m: f"마지막 이후 {m[1]}초, 평소 간격 중앙값 {m[2]}초"),
]
_ANCHOR = re.compile(rf"^(\S+) = (\S+) at {_TS}; (.*)$", re.S)


def localize_detail(detail: str, lang: str) -> str:
    """One detail string in the UI language (English as written; Korean by pattern, else unchanged)."""
    if lang != "ko" or not detail:
        return detail
    anchor = _ANCHOR.match(detail)
    if anchor:  # a correlated condition's child: "a = <event ref> at <ts>; <child detail>"
        rest = localize_detail(anchor[4], lang)
        return f"{anchor[1]} = {anchor[2]} ({_ts(anchor[3])}); {rest}"
    for pattern, make in _KO:
        m = pattern.match(detail)
        if m:
            return str(make(m))
    return detail


def localize_tree(node: dict[str, Any], lang: str) -> dict[str, Any]:
    """The explain tree (ExplainNode.to_dict()) with every detail in the UI language."""
    return {**node, "detail": localize_detail(node.get("detail") or "", lang),
            "children": [localize_tree(c, lang) for c in node.get("children") or []]}
