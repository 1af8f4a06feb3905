"""SQL building blocks for trait queries: bound parameters, property expressions, rule CASE expressions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from segmint.errors import InvalidInput
from segmint.store.base import EventStore
from segmint.store.schema import property_column
from segmint.store.sqltext import json_path, quote_ident
from segmint.traits.config import OPS, Rule


class Query:
    """Collects named parameters ($p1, $p2 ...) while a query is built; the as-of time is `$as_of`."""

    def __init__(self, store: EventStore, as_of: datetime) -> None:
        self.store = store
        self.params: dict[str, Any] = {"as_of": as_of}
        self.typed = store.property_columns()

    def bind(self, value: Any) -> str:
        """A placeholder for a value (never pasted into the SQL text)."""
        name = f"p{len(self.params)}"
        self.params[name] = value
        return "$" + name

    def prop(self, name: str, sqltype: str) -> str:
        """A property as `sqltype`: the typed column p_<name> when the store has it, else from the JSON."""
        if name in self.typed:
            return f"TRY_CAST({quote_ident(property_column(name))} AS {sqltype})"
        return f"TRY_CAST(json_extract_string(properties, {self.bind(json_path(name))}) AS {sqltype})"

    def names(self, names: list[str]) -> str:
        """`(?, ?, ...)` list of bound names for IN; a never-matching list when empty."""
        return "(" + ", ".join(self.bind(n) for n in names) + ")" if names else "(NULL)"

    def events(self, names: list[str]) -> str:
        """WHERE condition: known user, as of the run time, one of these events."""
        return f"user_id IS NOT NULL AND ts <= $as_of AND event IN {self.names(names)}"

    def days_since(self, col: str) -> str:
        """Fractional days from a timestamp expression to the as-of time."""
        return f"(date_diff('second', {col}, $as_of) / 86400.0)"

    def run(self, sql: str) -> Any:
        """Run the query with the collected parameters; returns an Arrow table."""
        return self.store.query(sql, self.params)


def rule_case(q: Query, rules: list[Rule], default: str | None, fields: set[str], where: str) -> str:
    """CASE expression: the first rule whose conditions all hold gives its name, else the default."""
    parts = []
    for i, rule in enumerate(rules):
        conds = []
        for fld, ops in rule.when.items():
            if fld not in fields:
                raise InvalidInput(f"unknown field {fld!r}; use one of {sorted(fields)}", where=f"{where}[{i}].when")
            conds.extend(f"{quote_ident(fld)} {OPS[op]} {q.bind(v)}" for op, v in ops.items())
        parts.append(f"WHEN {' AND '.join(conds) or 'TRUE'} THEN {q.bind(rule.name)}")
    default_sql = "NULL" if default is None else q.bind(default)
    if not parts:
        return f"CAST({default_sql} AS VARCHAR)"
    return f"CAST(CASE {' '.join(parts)} ELSE {default_sql} END AS VARCHAR)"
