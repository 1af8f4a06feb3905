"""Static segments: snapshots at an as-of time, CSV uploads (with their errors), snapshot-vs-now comparison."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from saved_fixtures import NOW, shop_workspace
from segmint.errors import Conflict, InvalidInput, NotFound
from segmint.segments import saved
from segmint.segments import static as st
from segmint.segments.evaluate import evaluate
from segmint.store.base import WriteBatch
from segmint.store.schema import events_to_arrow
from segmint.workspace import Workspace

ACTIVE = "did app_opened in last 7 days"  # now: u1 (2 days ago), u4 (1 day ago)


@pytest.fixture
def shop(tmp_path: Path) -> Workspace:
    shop_workspace(tmp_path / "shop")
    ws = Workspace(tmp_path / "shop")
    saved.create_segment(ws.appdb, "활성", ACTIVE)
    yield ws
    ws.close()


# ---------------------------------------------------------------- CSV parsing


def test_parse_plain_list_header_bom_and_repeats() -> None:
    p = st.parse_csv(b"u1\nu2\n\nu1\n  u3  \n")
    assert (p.ids, p.rows, p.duplicates, p.column) == (["u1", "u2", "u3"], 4, 1, None)
    p = st.parse_csv("\ufeffname,User_ID\n김,u9\n이,u8\n".encode())
    assert (p.ids, p.column) == (["u9", "u8"], "User_ID")
    p = st.parse_csv(b"a,b\nx,u5\n", column="b")
    assert p.ids == ["u5"]


@pytest.mark.parametrize(("data", "message"), [
    (b"name,user_id\n\xea\xb9\x80,u1\n\xec\x9d\xb4,\nu3\n", "2 bad row(s): line 3: empty user id; line 4: 1 columns, "
     "expected 2"),
    (b"u1\n\xff\xfe\n", "line 2: not UTF-8 text"),
    (b"a,b\nx,y\n", "line 1: 2 columns but no header naming the user id column"),
    (b"\n\n", "no user ids in the file"),
    (b"u1\nbad\x01id\n", "line 2: user id holds a control character"),
    (b"u1\n" + b"x" * 600 + b"\n", "line 2: user id is 600 characters"),
])
def test_bad_csv_rows_are_reported_with_line_numbers(data: bytes, message: str) -> None:
    with pytest.raises(InvalidInput) as e:
        st.parse_csv(data, where="list.csv")
    assert message in e.value.message and e.value.where == "list.csv"


def test_unknown_column_is_named() -> None:
    with pytest.raises(InvalidInput, match="line 1: no column 'uid' in the header"):
        st.parse_csv(b"user_id,x\nu1,2\n", column="uid")


def test_many_errors_are_counted_and_capped() -> None:
    data = b"user_id,x\n" + b"\n".join(b",1" if i % 2 else b"a,b,c" for i in range(50)) + b"\n"
    with pytest.raises(InvalidInput) as e:
        st.parse_csv(data)
    assert e.value.message.startswith("50 bad row(s): line 2: 3 columns, expected 2; line 3: empty user id")
    assert "(and 30 more)" in e.value.message


# ---------------------------------------------------------------- uploads


def test_upload_reports_unknown_ids_and_keeps_or_drops_them(shop: Workspace) -> None:
    data = b"user_id\nu1\nu3\nghost1\nu1\nghost2\n"
    kept = st.upload(shop.appdb, shop.store, "캠페인 대상", data, file_name="list.csv", labels=["봄"])
    assert (kept.count, kept.origin) == (4, "upload")
    assert kept.detail == {"file": "list.csv", "rows": 5, "column": "user_id", "duplicates": 1, "unknown": 2,
                           "unknown_sample": ["ghost1", "ghost2"], "unknown_policy": "keep", "kept": 4}
    assert saved.static_members(shop.appdb, "캠페인 대상") == ["ghost1", "ghost2", "u1", "u3"]
    dropped = st.upload(shop.appdb, shop.store, "정리된 대상", data, unknown="drop")
    assert dropped.count == 2 and dropped.detail["unknown"] == 2
    assert saved.static_members(shop.appdb, "정리된 대상") == ["u1", "u3"]
    assert saved.get_segment(shop.appdb, "캠페인 대상").labels == ["봄"]
    with pytest.raises(Conflict):
        st.upload(shop.appdb, shop.store, "캠페인 대상", data)
    with pytest.raises(InvalidInput, match="none of the 1 user ids is known"):
        st.upload(shop.appdb, shop.store, "빈", b"nobody\n", unknown="drop")
    with pytest.raises(InvalidInput) as e:
        st.upload(shop.appdb, shop.store, "x", data, unknown="maybe")
    assert e.value.where == "unknown"
    with pytest.raises(NotFound):  # a failed upload leaves nothing behind
        saved.get_segment(shop.appdb, "빈")


def test_uploaded_list_cannot_hide_inside_in_segment(shop: Workspace) -> None:
    st.upload(shop.appdb, shop.store, "목록", b"u1\nu2\n")
    with pytest.raises(InvalidInput, match="static"):
        saved.create_segment(shop.appdb, "파생", 'in segment "목록" and did app_opened')


# ---------------------------------------------------------------- snapshots and comparison


def test_snapshot_as_of_a_past_time_and_compare_with_now(shop: Workspace) -> None:
    as_of = NOW - timedelta(days=1, hours=12)  # window (8.5 days ago, 1.5 days ago]: only u1's open
    s = st.snapshot(shop.appdb, shop.store, "3월 프로모션 종료 시점", source="활성", as_of=as_of,
                    description="churned at the end of the March promotion", labels=["march"])
    assert (s.count, s.origin, s.source, s.source_version, s.as_of) == (1, "snapshot", "활성", 1, as_of)
    assert saved.static_members(shop.appdb, "3월 프로모션 종료 시점") == ["u1"]
    seg = saved.get_segment(shop.appdb, "3월 프로모션 종료 시점")
    assert (seg.kind, seg.text, seg.description) == ("static", ACTIVE, "churned at the end of the March promotion")
    c = st.compare(shop.appdb, shop.store, "3월 프로모션 종료 시점")  # against its source, now: u1, u4
    assert (c.against, c.snapshot_count, c.current_count, c.both, c.only_in_snapshot, c.only_now) == \
        ("활성", 1, 2, 1, 0, 1)
    assert c.jaccard == 0.5 and c.only_now_sample == ["u4"] and c.only_in_snapshot_sample == []
    old = st.compare(shop.appdb, shop.store, "3월 프로모션 종료 시점", as_of=NOW - timedelta(days=40))
    assert (old.current_count, old.both, old.only_in_snapshot, old.only_now, old.jaccard) == (1, 0, 1, 1, 0.0)
    assert old.only_now_sample == ["u2"]


def test_snapshot_stays_frozen_while_the_source_moves(shop: Workspace) -> None:
    st.snapshot(shop.appdb, shop.store, "지금 활성", source="활성")
    assert saved.static_members(shop.appdb, "지금 활성") == ["u1", "u4"]
    ts = datetime.now(UTC).replace(tzinfo=None) - timedelta(minutes=1)
    shop.store.write(WriteBatch(events=events_to_arrow([{
        "message_id": "new1", "type": "track", "event": "app_opened", "user_id": "u3", "anonymous_id": None,
        "ts": ts, "received_at": ts, "properties": {}, "source": "test"}])))
    assert evaluate(shop.store, saved.segment_tree(shop.appdb, "활성")) == ["u1", "u3", "u4"]
    assert st.members_of(shop.appdb, shop.store, "지금 활성") == ["u1", "u4"]
    assert st.members_of(shop.appdb, shop.store, "지금 활성", datetime(2000, 1, 1)) == ["u1", "u4"]
    c = st.compare(shop.appdb, shop.store, "지금 활성")
    assert (c.both, c.only_now, c.only_now_sample) == (2, 1, ["u3"])


def test_snapshot_of_a_definition_and_bad_requests(shop: Workspace) -> None:
    s = st.snapshot(shop.appdb, shop.store, "여성 스냅샷", definition='trait gender = "F"')
    assert (s.count, s.source) == (2, None)
    with pytest.raises(InvalidInput, match="say which segment"):
        st.compare(shop.appdb, shop.store, "여성 스냅샷")
    assert st.compare(shop.appdb, shop.store, "여성 스냅샷", against="활성").both == 1  # u1
    with pytest.raises(InvalidInput, match="one of them"):
        st.snapshot(shop.appdb, shop.store, "x")
    with pytest.raises(InvalidInput, match="future"):
        st.snapshot(shop.appdb, shop.store, "x", source="활성", as_of=NOW + timedelta(days=2))
    with pytest.raises(InvalidInput, match="static already"):
        st.snapshot(shop.appdb, shop.store, "x", source="여성 스냅샷")
    with pytest.raises(NotFound):
        st.snapshot(shop.appdb, shop.store, "x", source="없는 세그먼트")
    with pytest.raises(InvalidInput, match="dynamic"):
        st.compare(shop.appdb, shop.store, "활성")
    with pytest.raises(Conflict):
        st.snapshot(shop.appdb, shop.store, "활성", definition="did app_opened")
    names = [(x.name, x.origin) for x in st.list_static(shop.appdb)]
    assert names == [("여성 스냅샷", "snapshot")]


def test_a_static_save_is_listed_as_saved(shop: Workspace) -> None:
    saved.create_segment(shop.appdb, "고정", ACTIVE, kind="static")
    saved.freeze_members(shop.appdb, shop.store, "고정")
    d = st.describe(shop.appdb, "고정")
    assert (d.origin, d.count, d.source) == ("saved", 2, None)


def test_relabelling_keeps_the_frozen_list_and_its_origin(shop: Workspace) -> None:
    st.upload(shop.appdb, shop.store, "목록", b"u1\nghost\n")
    st.snapshot(shop.appdb, shop.store, "스냅", source="활성", as_of=NOW - timedelta(days=1, hours=12))
    for name in ("목록", "스냅"):
        seg, changed = saved.update_segment(shop.appdb, name, labels=["new"], description="relabelled")
        assert changed and seg.version == 2
        saved.freeze_members(shop.appdb, shop.store, name)  # what the API and CLI call after a save
    assert saved.static_members(shop.appdb, "목록") == ["ghost", "u1"]
    assert saved.static_members(shop.appdb, "스냅") == ["u1"]  # not re-evaluated now (u1, u4)
    d = st.describe(shop.appdb, "스냅")
    assert (d.origin, d.source, d.version, d.labels) == ("snapshot", "활성", 2, ["new"])
    saved.update_segment(shop.appdb, "스냅", definition="did app_opened")  # a new definition: frozen anew
    saved.freeze_members(shop.appdb, shop.store, "스냅")
    assert saved.static_members(shop.appdb, "스냅") == ["u1", "u2", "u3", "u4"]
    assert st.describe(shop.appdb, "스냅").origin == "saved"
