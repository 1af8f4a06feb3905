"""The shape of compiled correlated segments (A2/A4 advanced): pre-aggregated groups joined on hash keys.

The equivalence test checks that the SQL is right; this checks that the correlated seeds keep the plan that
makes them as fast as hand-written SQL (bench/segments.py): no anchor x event join, no per-pair JSON or
regex coercion when the properties are string-typed columns, and event names pruned in every group scan.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

import pytest
import yaml

from segmint.segments import dsl
from segmint.segments.compile import compile_segment

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "segments"
TYPED = {"product_id": "string", "category": "string", "revenue": "number"}  # as the demo taxonomy declares
AS_OF = datetime(2026, 11, 25)


def _sql(name: str, dialect: str, typed: dict[str, str] = TYPED) -> str:
    text = yaml.safe_load((EXAMPLES / name).read_text(encoding="utf-8"))["definition"]
    return compile_segment(dsl.parse(text), AS_OF, dialect=dialect, typed=typed)[0]


@pytest.mark.parametrize("dialect", ["duckdb", "clickhouse"])
@pytest.mark.parametrize("name", ["a2-advanced.yaml", "a4-advanced.yaml"])
def test_correlated_seeds_join_pre_aggregated_groups(name: str, dialect: str) -> None:
    """Anchors join per-user pre-counts on (user_id, key) equalities; events are never joined to anchors."""
    sql = _sql(name, dialect)
    assert not re.search(r"JOIN ev AS", sql), "an anchor x event join is back"
    assert "REGEXP" not in sql.upper() and "properties" not in sql.split(" FROM ev AS")[-1]
    # every pre-count reads one event name before grouping, and is joined on user_id and a key equality
    pre = re.findall(r"(pc\d+) AS \(SELECT .*? FROM ev AS (r\d+) WHERE (.*?) GROUP BY", sql)
    assert pre and all(f"{r}.event = " in where for _, r, where in pre)
    for name_, _, _ in pre:
        assert re.search(rf"LEFT JOIN {name_} AS {name_} ON {name_}.user_id = anc\d+.user_id AND {name_}.k0 = ", sql)
    assert "SUM(" not in sql  # no per-anchor regrouping of the pre-counts


def test_after_anchor_existence_keeps_the_latest_time() -> None:
    """`did not E where key = anchor.key after anchor` groups by the key and keeps MAX(ts), not every ts."""
    sql = _sql("a2-advanced.yaml", "duckdb")
    assert re.search(r"MAX\(r\d+\.ts\) AS k1", sql)
    assert re.search(r"CASE WHEN pc\d+\.k1 > anc\d+\.ts THEN 1 ELSE 0 END", sql)


def test_untyped_anchor_properties_still_compile_by_kind() -> None:
    """Without typed columns the anchor value's JSON kind decides the comparison (CASE per kind)."""
    sql = _sql("a2-advanced.yaml", "duckdb", typed={})
    assert "CASE WHEN anc" in sql and "_a0k = 'num'" in sql
