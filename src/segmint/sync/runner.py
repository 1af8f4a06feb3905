"""Running a sync: page through the source query by cursor, map each page in DuckDB, store it with the cursor.

Each page is read with `SELECT * FROM (<query>) AS src WHERE <cursor> > :cursor ORDER BY <cursor>
LIMIT :batch` (bound parameters; the user's query is theirs and is only wrapped). When a page is full,
every row sharing its last cursor value is read too, so no row is lost at a page edge. The page's
events and the new cursor are written in ONE store transaction (`WriteBatch.state`), so a crash
between pages resumes from the last stored page: nothing lost, nothing stored twice.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pyarrow as pa
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from segmint.errors import InvalidInput, SegmintError
from segmint.ingest.files import ImportResult, mapping_connection, write_mapped
from segmint.store.base import EventStore
from segmint.sync.definition import SyncDefinition

AfterPage = Callable[[int, Any], None]  # (page number, cursor value) after each stored page


@dataclass
class SyncResult(ImportResult):
    """What one sync run did (rows read, imported, duplicates, rejected, pages, final cursor)."""

    pages: int = 0
    cursor: Any = None


def engine_url(url: str) -> str:
    """SQLAlchemy URL with the driver segmint ships: psycopg (v3) for PostgreSQL, PyMySQL for MySQL."""
    scheme, _sep, rest = url.partition("://")
    base = scheme.split("+", 1)[0].lower()
    if "+" in scheme:
        return url
    if base in ("postgresql", "postgres"):
        return "postgresql+psycopg://" + rest
    if base == "mysql":
        return "mysql+pymysql://" + rest
    return url


def encode_cursor(value: Any) -> str:
    """A cursor value as type-tagged JSON text (stored in the store state)."""
    if isinstance(value, datetime):
        return json.dumps({"t": "datetime", "v": value.isoformat()})
    if isinstance(value, date):
        return json.dumps({"t": "date", "v": value.isoformat()})
    if isinstance(value, Decimal):
        return json.dumps({"t": "decimal", "v": str(value)})
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise InvalidInput(
            f"cursor values must be numbers, text, dates or times, got {type(value).__name__}", where="cursor"
        )
    return json.dumps({"t": type(value).__name__, "v": value})


def decode_cursor(stored: str | None) -> Any:
    """The cursor value back from its stored text (None: start from the beginning)."""
    if not stored:
        return None
    data = json.loads(stored)
    kind, value = data["t"], data["v"]
    if kind == "datetime":
        return datetime.fromisoformat(value)
    if kind == "date":
        return date.fromisoformat(value)
    if kind == "decimal":
        return Decimal(value)
    return value


def _rows_to_arrow(keys: list[str], rows: list[Any]) -> pa.Table:
    columns = list(zip(*rows, strict=True)) if rows else [[] for _ in keys]
    arrays = []
    for col in columns:
        try:
            arrays.append(pa.array(list(col)))
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            arrays.append(pa.array([None if v is None else str(v) for v in col], pa.string()))
    return pa.table(dict(zip(keys, arrays, strict=True)))


class SyncRunner:
    """Runs one sync definition against one event store."""

    def __init__(
        self, store: EventStore, definition: SyncDefinition, *, engine: Engine | None = None
    ) -> None:
        self.store = store
        self.d = definition
        self.engine = engine or create_engine(engine_url(definition.resolved_url()))

    def _page_sql(self, conn: Connection, *, after: bool, equal: bool = False) -> str:
        q = self.d.query
        if self.d.cursor is None:
            return q
        col = conn.dialect.identifier_preparer.quote_identifier(self.d.cursor)
        if equal:
            return f"SELECT * FROM ({q}) AS src WHERE {col} = :cursor"
        where = f" WHERE {col} > :cursor" if after else f" WHERE {col} IS NOT NULL"
        return f"SELECT * FROM ({q}) AS src{where} ORDER BY {col} LIMIT :batch"

    def run(
        self, *, progress: Callable[[int], None] | None = None, after_page: AfterPage | None = None
    ) -> SyncResult:
        """Pull every new row since the stored cursor; returns the counts."""
        result = SyncResult(f"sync {self.d.name}")
        cursor = decode_cursor(self.store.get_state(self.d.state_key))
        try:
            with self.engine.connect() as conn:
                if self.d.cursor is None:
                    self._full(conn, result, progress, after_page)
                else:
                    self._incremental(conn, cursor, result, progress, after_page)
        except SQLAlchemyError as exc:
            detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
            raise SegmintError(f"source database: {detail}", where=f"sync {self.d.name}") from None
        finally:
            self.engine.dispose()
        return result

    def _incremental(
        self,
        conn: Connection,
        cursor: Any,
        result: SyncResult,
        progress: Callable[[int], None] | None,
        after_page: AfterPage | None,
    ) -> None:
        batch = self.d.batch_size
        while True:
            params: dict[str, Any] = {"batch": batch}
            if cursor is not None:
                params["cursor"] = cursor
            res = conn.execution_options(stream_results=True).execute(
                text(self._page_sql(conn, after=cursor is not None)), params
            )
            keys = list(res.keys())
            if self.d.cursor not in keys:
                raise InvalidInput(
                    f"cursor column {self.d.cursor!r} is not in the query's columns: {', '.join(keys)}",
                    where=f"sync {self.d.name}: cursor",
                )
            rows = list(res.fetchall())
            if not rows:
                conn.rollback()
                return
            ci = keys.index(self.d.cursor)
            last = rows[-1][ci]
            if len(rows) == batch:
                # the page may have cut through rows sharing the last value: take all of them
                rows = [r for r in rows if r[ci] != last]
                tail = conn.execution_options(stream_results=True).execute(
                    text(self._page_sql(conn, after=True, equal=True)), {"cursor": last}
                )
                while chunk := tail.fetchmany(batch):
                    rows.extend(chunk)
            conn.rollback()  # end the read transaction; the next page starts fresh
            self._store_page(keys, rows, result, {self.d.state_key: encode_cursor(last)}, progress)
            cursor = last
            result.cursor = cursor
            if after_page:
                after_page(result.pages, cursor)
            if len(rows) < batch:
                return

    def _full(
        self,
        conn: Connection,
        result: SyncResult,
        progress: Callable[[int], None] | None,
        after_page: AfterPage | None,
    ) -> None:
        res = conn.execution_options(stream_results=True).execute(text(self.d.query))
        keys = list(res.keys())
        while rows := res.fetchmany(self.d.batch_size):
            self._store_page(keys, list(rows), result, {}, progress)
            if after_page:
                after_page(result.pages, None)

    def _store_page(
        self,
        keys: list[str],
        rows: list[Any],
        result: SyncResult,
        state: dict[str, str],
        progress: Callable[[int], None] | None,
    ) -> None:
        table = _rows_to_arrow(keys, rows)
        con = mapping_connection()
        try:
            con.register("src", table)
            write_mapped(
                self.store,
                con,
                self.d.map,
                where=f"sync {self.d.name}: page {result.pages + 1} row",
                source="sync",
                result=result,
                progress=progress,
                batch_rows=max(len(rows), 1),
                state=state,
            )
        finally:
            con.close()
        result.pages += 1
