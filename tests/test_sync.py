"""`segmint sync`: cursor-paged pulls from a real PostgreSQL (started by the tests) and from SQLite."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import psycopg
import pytest
import yaml
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from pg_server import pg_url  # noqa: F401  (session fixture: a real PostgreSQL server)
from segmint.cli import app
from segmint.errors import InvalidInput
from segmint.sync.definition import SyncDefinition, parse_definition
from segmint.sync.runner import SyncRunner
from segmint.workspace import Workspace

T0 = datetime(2026, 10, 1, 9, 0, 0)


def _count(ws: Workspace, where: str = "true") -> int:
    return ws.store.query(f"SELECT count(*) AS n FROM events WHERE {where}").to_pylist()[0]["n"]


def _orders_def(url: str, *, batch_size: int = 3, name: str = "orders") -> SyncDefinition:
    return SyncDefinition.model_validate(
        {
            "name": name,
            "url": url,
            "batch_size": batch_size,
            "cursor": "updated_at",
            "query": "SELECT id, customer, amount, updated_at FROM orders;",
            "map": {
                "event": "order_completed",
                "columns": {"customer": "user_id", "updated_at": "timestamp", "id": "properties.order_id"},
            },
        }
    )


@pytest.fixture
def pg_orders(pg_url: str) -> str:  # noqa: F811
    """A fresh `orders` and `customers` table in the test PostgreSQL database."""
    with psycopg.connect(pg_url, autocommit=True) as c:
        c.execute("DROP TABLE IF EXISTS orders; DROP TABLE IF EXISTS customers")
        c.execute(
            "CREATE TABLE orders (id serial PRIMARY KEY, customer text, amount numeric(12, 2), "
            "updated_at timestamptz NOT NULL)"
        )
        c.execute("CREATE TABLE customers (id text PRIMARY KEY, tier text, points int, updated_at timestamptz)")
    return pg_url


def _pg_insert_orders(url: str, rows: list[tuple[str, float, datetime]]) -> None:
    with psycopg.connect(url, autocommit=True) as c, c.cursor() as cur:
        cur.executemany(
            "INSERT INTO orders (customer, amount, updated_at) VALUES (%s, %s, %s::timestamp AT TIME ZONE 'UTC')",
            rows,
        )


def test_pg_initial_incremental_and_rerun(workspace: Workspace, pg_orders: str) -> None:
    # 7 orders, two pairs share a timestamp across a page edge (batch size 3)
    times = [
        T0,
        T0 + timedelta(minutes=1),
        T0 + timedelta(minutes=2),
        T0 + timedelta(minutes=2),
        T0 + timedelta(minutes=3),
        T0 + timedelta(minutes=5),
        T0 + timedelta(minutes=5),
    ]
    _pg_insert_orders(pg_orders, [(f"u{i % 3}", 1000 + i, t) for i, t in enumerate(times)])
    d = _orders_def(pg_orders)
    res = SyncRunner(workspace.store, d).run()
    assert (res.rows, res.imported, res.duplicates, res.rejected) == (7, 7, 0, 0)
    assert _count(workspace) == 7
    assert workspace.store.query(
        "SELECT list(CAST(properties->>'order_id' AS INT) ORDER BY ts, properties->>'order_id') AS ids FROM events"
    ).to_pylist() == [{"ids": [1, 2, 3, 4, 5, 6, 7]}]
    first = workspace.store.query("SELECT min(ts)::VARCHAR AS t, any_value(source) AS s FROM events").to_pylist()
    assert first == [{"t": "2026-10-01 09:00:00", "s": "sync"}]

    # re-running reads nothing new
    again = SyncRunner(workspace.store, d).run()
    assert (again.rows, again.imported) == (0, 0)

    # new rows arrive: only they are pulled
    _pg_insert_orders(pg_orders, [("u9", 5.5, T0 + timedelta(hours=1)), ("u9", 6.5, T0 + timedelta(hours=2))])
    inc = SyncRunner(workspace.store, d).run()
    assert (inc.rows, inc.imported) == (2, 2)
    assert _count(workspace) == 9
    assert _count(workspace, "user_id = 'u9'") == 2
    amounts = workspace.store.query(
        "SELECT properties->>'amount' AS a FROM events WHERE user_id = 'u9' ORDER BY ts"
    ).to_pylist()
    assert [float(r["a"]) for r in amounts] == [5.5, 6.5]


def test_pg_crash_between_pages_resumes_without_loss_or_duplicates(workspace: Workspace, pg_orders: str) -> None:
    _pg_insert_orders(pg_orders, [(f"u{i}", i, T0 + timedelta(minutes=i)) for i in range(10)])
    d = _orders_def(pg_orders, batch_size=4)

    def crash(page: int, cursor: object) -> None:
        if page == 2:
            raise KeyboardInterrupt("simulated crash after the second page")

    with pytest.raises(KeyboardInterrupt):
        SyncRunner(workspace.store, d).run(after_page=crash)
    assert _count(workspace) == 8  # two pages of four, each stored with its cursor
    res = SyncRunner(workspace.store, d).run()
    assert (res.rows, res.imported, res.duplicates) == (2, 2, 0)
    assert _count(workspace) == 10
    assert workspace.store.query("SELECT count(DISTINCT properties->>'order_id') AS n FROM events").to_pylist() == [
        {"n": 10}
    ]


def test_pg_traits_sync_updates_profiles(workspace: Workspace, pg_orders: str) -> None:
    with psycopg.connect(pg_orders, autocommit=True) as c:
        c.execute(
            "INSERT INTO customers VALUES ('u1', 'silver', 10, '2026-10-01T00:00:00Z'), "
            "('u2', 'gold', 20, '2026-10-01T00:00:01Z')"
        )
    d = SyncDefinition.model_validate(
        {
            "name": "customers",
            "url": pg_orders,
            "cursor": "updated_at",
            "query": "SELECT id AS user_id, tier, points, updated_at FROM customers",
            "map": {"type": "identify", "columns": {"updated_at": "timestamp"}},
        }
    )
    assert SyncRunner(workspace.store, d).run().imported == 2
    with psycopg.connect(pg_orders, autocommit=True) as c:
        c.execute(
            "UPDATE customers SET tier = 'platinum', points = 99, updated_at = '2026-10-02T00:00:00Z' WHERE id = 'u1'"
        )
    res = SyncRunner(workspace.store, d).run()
    assert (res.rows, res.imported) == (1, 1)
    rows = workspace.store.query(
        "SELECT user_id, traits->>'tier' AS tier, CAST(traits->>'points' AS INT) AS p FROM profiles ORDER BY user_id"
    ).to_pylist()
    assert rows == [
        {"user_id": "u1", "tier": "platinum", "p": 99},
        {"user_id": "u2", "tier": "gold", "p": 20},
    ]


def test_sqlite_sync_with_integer_cursor_and_ties(workspace: Workspace, tmp_path: Path) -> None:
    db = tmp_path / "shop.sqlite"
    eng = create_engine(f"sqlite:///{db}")
    with eng.begin() as c:
        c.execute(text("CREATE TABLE views (seq INTEGER, anon TEXT, page TEXT, at TEXT)"))
        # seq 2 appears three times: a page of 2 must not cut through it
        c.execute(
            text(
                "INSERT INTO views VALUES (1,'a1','home','2026-10-01T00:00:00Z'),"
                "(2,'a1','p1','2026-10-01T00:00:01Z'),(2,'a2','p2','2026-10-01T00:00:02Z'),"
                "(2,'a3','p3','2026-10-01T00:00:03Z'),(3,'a3','p4','2026-10-01T00:00:04Z')"
            )
        )
    d = SyncDefinition.model_validate(
        {
            "name": "views",
            "url": f"sqlite:///{db}",
            "cursor": "seq",
            "batch_size": 2,
            "query": "SELECT * FROM views",
            "map": {"event": "page_viewed", "columns": {"anon": "anonymous_id", "at": "timestamp"}},
        }
    )
    res = SyncRunner(workspace.store, d).run()
    assert (res.rows, res.imported) == (5, 5)
    assert res.cursor == 3
    with eng.begin() as c:
        c.execute(text("INSERT INTO views VALUES (4,'a9','p9','2026-10-02T00:00:00Z')"))
    assert SyncRunner(workspace.store, d).run().imported == 1
    assert SyncRunner(workspace.store, d).run().rows == 0
    assert _count(workspace, "event = 'page_viewed'") == 6


def test_definition_errors_and_bad_cursor(workspace: Workspace, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=r"url: .*unsupported database 'oracle'"):
        parse_definition("name: x\nurl: oracle://h/db\nquery: select 1\n", "x.yaml")
    with pytest.raises(InvalidInput, match=r"query: .*empty query"):
        parse_definition("name: x\nurl: sqlite:///x.db\nquery: ';'\n", "x.yaml")
    db = tmp_path / "s.sqlite"
    with create_engine(f"sqlite:///{db}").begin() as c:
        c.execute(text("CREATE TABLE t (uid TEXT, ev TEXT)"))
        c.execute(text("INSERT INTO t VALUES ('u1', 'x')"))
    d = SyncDefinition.model_validate(
        {
            "name": "t",
            "url": f"sqlite:///{db}",
            "cursor": "nope",
            "query": "SELECT uid AS user_id, ev AS event FROM t",
        }
    )
    with pytest.raises(Exception, match="nope"):
        SyncRunner(workspace.store, d).run()


def test_cli_sync_add_list_run(workspace: Workspace, tmp_path: Path) -> None:
    path = str(workspace.path)
    workspace.close()
    db = tmp_path / "crm.sqlite"
    with create_engine(f"sqlite:///{db}").begin() as c:
        c.execute(text("CREATE TABLE signups (id INTEGER, email_hash TEXT, created TEXT)"))
        c.execute(text("INSERT INTO signups VALUES (1, 'h1', '2026-10-01 00:00:00'), (2, 'h2', '2026-10-02 00:00:00')"))
    spec = tmp_path / "signups.yaml"
    spec.write_text(
        yaml.safe_dump(
            {
                "name": "signups",
                "url": f"sqlite:///{db}",
                "cursor": "id",
                "query": "SELECT * FROM signups",
                "map": {"event": "signed_up", "columns": {"email_hash": "user_id", "created": "timestamp"}},
            }
        )
    )
    runner = CliRunner()
    out = runner.invoke(app, ["-w", path, "sync", "add", str(spec)])
    assert out.exit_code == 0, out.output
    assert (Path(path) / "syncs" / "signups.yaml").exists()
    out = runner.invoke(app, ["-w", path, "sync", "run", "signups"])
    assert out.exit_code == 0, out.output
    assert "2 imported" in out.output
    out = runner.invoke(app, ["-w", path, "sync", "list"])
    assert out.exit_code == 0 and "signups" in out.output and " 2 " in out.output
    out = runner.invoke(app, ["-w", path, "sync", "run", "nosuch"])
    assert out.exit_code == 2 and "no sync named 'nosuch'" in out.output


def test_cli_sync_refuses_while_a_server_holds_the_store(workspace: Workspace) -> None:
    import json
    import os

    from segmint.cli.common import SERVER_FILE

    path = str(workspace.path)
    workspace.close()
    (Path(path) / SERVER_FILE).write_text(json.dumps({"pid": os.getpid(), "url": "http://127.0.0.1:9"}))
    out = CliRunner().invoke(app, ["-w", path, "sync", "run"])
    assert out.exit_code == 2 and "stop it, run the sync" in out.output
