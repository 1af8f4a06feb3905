"""Saved segments: create, update (a new version each time), read, list, delete, resolve `in segment`,
and sync a folder of YAML files (segments as code)."""

from __future__ import annotations

import difflib
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, selectinload

from segmint.appdb.segments import SegmentRow, SegmentVersionRow
from segmint.errors import Conflict, InvalidInput, NotFound, PayloadTooLarge, SegmintError
from segmint.segments import model as m
from segmint.segments.dsl import parse_with_names, to_text
from segmint.segments.errors import SegmentSyntaxError, caret
from segmint.segments.validate import Catalog, check_cycles, check_text, ensure_valid, segment_refs

log = logging.getLogger(__name__)
KINDS = ("dynamic", "static")
MAX_TEXT_CHARS = 20_000
MAX_JSON_CHARS = 200_000
MAX_LABELS = 50


@dataclass
class SegmentVersion:
    """One stored version of a segment."""

    version: int
    description: str
    kind: str
    labels: list[str]
    definition: dict[str, Any]
    text: str
    created_at: datetime

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


@dataclass
class SavedSegment:
    """A saved segment as of its current version."""

    name: str
    description: str
    kind: str
    labels: list[str]
    definition: dict[str, Any]
    text: str
    version: int
    created_at: datetime
    updated_at: datetime

    def tree(self) -> m.Condition:
        """The condition tree."""
        return m.condition_from_json(self.definition)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _view(row: SegmentRow, ver: SegmentVersionRow) -> SavedSegment:
    return SavedSegment(row.name, ver.description, ver.kind, list(ver.labels or []), dict(ver.definition), ver.text,
                        ver.version, row.created_at, row.updated_at)


def _current(row: SegmentRow) -> SegmentVersionRow:
    return next(v for v in row.versions if v.version == row.current_version)


# ---------------------------------------------------------------- definitions


def workspace_catalog(ws: Any, store: Any = None) -> Catalog | None:
    """What the workspace knows: events/properties/traits seen in the store plus the taxonomy's, and the
    computed traits (segmint.traits); None when nothing is known yet (a fresh workspace accepts any name)."""
    from segmint.taxonomy.runtime import workspace_taxonomy

    cat = Catalog()
    tax = workspace_taxonomy(ws)
    if tax is not None:
        cat = cat.merge(Catalog.from_taxonomy(tax))
    cat = cat.merge(Catalog.from_store(store if store is not None else ws.store))
    if not (cat.events or cat.traits):
        return None
    from segmint.traits.catalog import trait_names  # computed traits are usable before their first run

    return cat.merge(Catalog({}, trait_names(ws.path)))


def parse_definition(definition: str | Mapping[str, Any], catalog: Catalog | None = None,
                     where: str = "definition") -> tuple[m.Condition, str]:
    """A definition given as text or as a JSON tree -> (tree, canonical text), checked against a catalog."""
    if isinstance(definition, str):
        if len(definition) > MAX_TEXT_CHARS:
            raise PayloadTooLarge(f"segment text is {len(definition)} characters; the limit is {MAX_TEXT_CHARS}",
                                  where=where)
        if not definition.strip():
            raise InvalidInput("the segment definition is empty", where=where)
        try:
            tree, uses = parse_with_names(definition)
        except RecursionError:
            raise InvalidInput("the segment text is nested too deeply", where=where) from None
        check_text(definition, tree, uses, catalog)
    elif isinstance(definition, Mapping):
        size = len(json.dumps(definition, default=str))
        if size > MAX_JSON_CHARS:
            raise PayloadTooLarge(f"segment tree is {size} characters of JSON; the limit is {MAX_JSON_CHARS}",
                                  where=where)
        try:
            tree = m.condition_from_json(dict(definition))
        except ValidationError as exc:
            err = exc.errors()[0]
            loc = ".".join(str(p) for p in err["loc"][1:])
            raise InvalidInput(str(err["msg"]).removeprefix("Value error, "),
                               where=f"{where}.{loc}" if loc else where) from None
        except RecursionError:
            raise InvalidInput("the segment tree is nested too deeply", where=where) from None
        ensure_valid(tree, catalog)
    else:
        raise InvalidInput("a definition is segment text or a JSON tree", where=where)
    try:
        return tree, to_text(tree)
    except RecursionError:
        raise InvalidInput("the segment is nested too deeply", where=where) from None


def _tree_json(tree: m.Condition) -> dict[str, Any]:
    return tree.model_dump(mode="json", exclude_defaults=False)


def _check_meta(name: str, kind: str | None, labels: Sequence[str] | None) -> None:
    try:
        m.Segment.model_validate({"name": name, "definition": {"kind": "in_segment", "segment": "x"}})
    except ValidationError as exc:
        raise InvalidInput(str(exc.errors()[0]["msg"]).removeprefix("Value error, "), where="name") from None
    if kind is not None and kind not in KINDS:
        raise InvalidInput(f"kind is {kind!r}; expected dynamic or static", where="kind")
    if labels is not None and (len(labels) > MAX_LABELS
                               or any(not isinstance(x, str) or not x or len(x) > 64 for x in labels)):
        raise InvalidInput(f"labels are up to {MAX_LABELS} non-empty strings of <= 64 characters",
                               where="labels")


# ---------------------------------------------------------------- resolution


def resolver(engine: Engine) -> Callable[[str], m.Condition]:
    """A function name -> condition tree of the saved segment (NotFound when there is none)."""
    cache: dict[str, m.Condition] = {}

    def resolve(name: str) -> m.Condition:
        if name not in cache:
            if static_members(engine, name) is not None:  # a frozen list has no definition to inline
                raise InvalidInput(f"segment {name!r} is static (a frozen list of users); `in segment` "
                                   "works on dynamic segments only", where=f"in segment {name!r}")
            cache[name] = get_segment(engine, name).tree()
        return cache[name]

    return resolve


def inline_segments(tree: m.Condition, resolve: Callable[[str], m.Condition],
                    _stack: tuple[str, ...] = ()) -> m.Condition:
    """The tree with every `in segment "x"` replaced by x's own tree (for the SQL compiler)."""
    if isinstance(tree, m.InSegment):
        if tree.segment in _stack:
            from segmint.segments.reference import SegmentCycleError

            raise SegmentCycleError("segments include each other: " + " -> ".join([*_stack, tree.segment]),
                                    where=f"segment {tree.segment!r}")
        return inline_segments(resolve(tree.segment), resolve, (*_stack, tree.segment))
    if isinstance(tree, m.And | m.Or):
        return tree.model_copy(update={"items": [inline_segments(i, resolve, _stack) for i in tree.items]})
    if isinstance(tree, m.Not):
        return tree.model_copy(update={"item": inline_segments(tree.item, resolve, _stack)})
    if isinstance(tree, m.Correlated):
        return tree.model_copy(update={"condition": inline_segments(tree.condition, resolve, _stack)})
    return tree


def _check_refs(engine: Engine, name: str, tree: m.Condition) -> None:
    resolve = resolver(engine)
    for ref in segment_refs(tree):
        if ref != name:
            try:
                resolve(ref)
            except NotFound:
                raise NotFound(f"in segment {ref!r}: no saved segment by that name", where="definition") from None
    check_cycles(name, tree, lambda n: tree if n == name else resolve(n))


# ---------------------------------------------------------------- CRUD


def create_segment(engine: Engine, name: str, definition: str | Mapping[str, Any], *, description: str = "",
                   kind: str = "dynamic", labels: Sequence[str] = (), catalog: Catalog | None = None) -> SavedSegment:
    """Save a new segment (version 1); Conflict when the name is taken."""
    _check_meta(name, kind, labels)
    tree, text = parse_definition(definition, catalog)
    _check_refs(engine, name, tree)
    now = _now()
    with Session(engine) as s, s.begin():
        if s.scalars(select(SegmentRow).where(SegmentRow.name == name)).first() is not None:
            raise Conflict(f"a segment named {name!r} exists already", where="name")
        row = SegmentRow(name=name, current_version=1, created_at=now, updated_at=now)
        ver = SegmentVersionRow(version=1, description=description, kind=kind, labels=list(labels),
                                definition=_tree_json(tree), text=text, created_at=now)
        row.versions.append(ver)
        s.add(row)
        s.flush()
        return _view(row, ver)


def _load(s: Session, name: str) -> SegmentRow:
    row = s.scalars(select(SegmentRow).options(selectinload(SegmentRow.versions))
                    .where(SegmentRow.name == name)).first()
    if row is None:
        raise NotFound(f"no saved segment {name!r}", where="name")
    return row


def update_segment(engine: Engine, name: str, *, definition: str | Mapping[str, Any] | None = None,
                   description: str | None = None, kind: str | None = None, labels: Sequence[str] | None = None,
                   catalog: Catalog | None = None) -> tuple[SavedSegment, bool]:
    """Change a segment: a new version row when anything differs; returns (segment, changed)."""
    _check_meta(name, kind, labels)
    tree = text = None
    if definition is not None:
        tree, text = parse_definition(definition, catalog)
        _check_refs(engine, name, tree)
    with Session(engine) as s, s.begin():
        row = _load(s, name)
        cur = _current(row)
        new = {"description": cur.description if description is None else description,
               "kind": cur.kind if kind is None else kind,
               "labels": list(cur.labels or []) if labels is None else list(labels),
               "definition": dict(cur.definition) if tree is None else _tree_json(tree),
               "text": cur.text if text is None else text}
        old = {"description": cur.description, "kind": cur.kind, "labels": list(cur.labels or []),
               "definition": dict(cur.definition), "text": cur.text}
        if new == old:
            return _view(row, cur), False
        now = _now()
        # A static segment keeps its frozen members through a relabel or a new description (only a new
        # definition or kind re-freezes them): a snapshot or an uploaded list must not be silently recomputed.
        keep = cur.kind == "static" and new["kind"] == "static" and new["definition"] == old["definition"]
        ver = SegmentVersionRow(version=row.current_version + 1, created_at=now,
                                members=list(cur.members) if keep and cur.members is not None else None, **new)
        row.versions.append(ver)
        row.current_version = ver.version
        row.updated_at = now
        s.flush()
        return _view(row, ver), True


def get_segment(engine: Engine, name: str, version: int | None = None) -> SavedSegment:
    """A saved segment (its current version, or a given one)."""
    with Session(engine) as s:
        row = _load(s, name)
        if version is None:
            return _view(row, _current(row))
        for v in row.versions:
            if v.version == version:
                return _view(row, v)
        raise NotFound(f"segment {name!r} has no version {version}", where="version")


def list_segments(engine: Engine, label: str | None = None) -> list[SavedSegment]:
    """Every saved segment by name (only those with a label, when given)."""
    with Session(engine) as s:
        rows = s.scalars(select(SegmentRow).options(selectinload(SegmentRow.versions))
                         .order_by(SegmentRow.name)).all()
        out = [_view(r, _current(r)) for r in rows]
    return [x for x in out if label is None or label in x.labels]


def segment_versions(engine: Engine, name: str) -> list[SegmentVersion]:
    """Every version of a segment, oldest first."""
    with Session(engine) as s:
        row = _load(s, name)
        return [SegmentVersion(v.version, v.description, v.kind, list(v.labels or []), dict(v.definition), v.text,
                               v.created_at) for v in row.versions]


def delete_segment(engine: Engine, name: str) -> None:
    """Delete a segment and its history; Conflict while another segment refers to it."""
    users = [x.name for x in list_segments(engine) if x.name != name and name in set(segment_refs(x.tree()))]
    if users:
        raise Conflict(f"segment {name!r} is used by {', '.join(sorted(users))}", where="name")
    with Session(engine) as s, s.begin():
        s.delete(_load(s, name))


def save_segment(engine: Engine, name: str, definition: str | Mapping[str, Any], *, description: str = "",
                 kind: str = "dynamic", labels: Sequence[str] = (),
                 catalog: Catalog | None = None) -> tuple[SavedSegment, str]:
    """Create or update; returns (segment, "created" | "updated" | "unchanged")."""
    try:
        get_segment(engine, name)
    except NotFound:
        return create_segment(engine, name, definition, description=description, kind=kind, labels=labels,
                              catalog=catalog), "created"
    seg, changed = update_segment(engine, name, definition=definition, description=description, kind=kind,
                                  labels=labels, catalog=catalog)
    return seg, "updated" if changed else "unchanged"


# ---------------------------------------------------------------- members


class SegmentEvalError(SegmintError):
    """A valid segment whose query failed in the event store (a compiler or engine problem, not bad input)."""

    status_code = 422
    code = "segment_eval_failed"


def guarded(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run an evaluation; an engine error becomes a SegmentEvalError that names it (never a bare 500)."""
    try:
        return fn(*args, **kwargs)
    except SegmintError:
        raise
    except RecursionError:
        raise InvalidInput("the segment is nested too deeply to evaluate", where="definition") from None
    except Exception as exc:  # the engines raise their own error types (duckdb.Error, chDB)
        log.exception("segment evaluation failed")
        raise SegmentEvalError(f"the event store could not run this segment: {type(exc).__name__}: "
                               f"{str(exc).splitlines()[0][:300]}", where="definition") from None


def segment_tree(engine: Engine, name_or_tree: str | m.Condition) -> m.Condition:
    """A saved segment's tree (or a given tree) with nested segments inlined, ready to compile."""
    tree = get_segment(engine, name_or_tree).tree() if isinstance(name_or_tree, str) else name_or_tree
    return inline_segments(tree, resolver(engine))


def static_members(engine: Engine, name: str) -> list[str] | None:
    """The frozen members of a static segment's current version (None: dynamic, or not frozen yet)."""
    with Session(engine) as s:
        ver = _current(_load(s, name))
        return list(ver.members) if ver.kind == "static" and ver.members is not None else None


def freeze_members(engine: Engine, store: Any, name: str, *, as_of: datetime | None = None,
                   members: Sequence[str] | None = None) -> list[str] | None:
    """For a static segment, evaluate it now (or as of a time), or take the given `members`, and store them
    on its current version (once per version); returns them, or None for a dynamic segment."""
    from segmint.segments.evaluate import evaluate

    seg = get_segment(engine, name)
    if seg.kind != "static":
        return None
    frozen = static_members(engine, name)
    if frozen is not None:
        return frozen
    ids = sorted(set(members)) if members is not None else guarded(evaluate, store, segment_tree(engine, name), as_of)
    with Session(engine) as s, s.begin():
        ver = _current(_load(s, name))
        if ver.members is None:
            ver.members = ids
    return ids


def segment_members(ws: Any, name: str, as_of: datetime | None = None) -> list[str]:
    """Member user_ids of a saved segment now (or as of a time), sorted; a static segment's frozen list."""
    from segmint.segments.evaluate import evaluate

    if as_of is None:
        frozen = static_members(ws.appdb, name)
        if frozen is not None:
            return frozen
    return guarded(evaluate, ws.store, segment_tree(ws.appdb, name), as_of)


# ---------------------------------------------------------------- segments as code


@dataclass
class SegmentFile:
    """One YAML file of a segments folder."""

    path: Path
    name: str
    description: str
    kind: str
    labels: list[str]
    definition: str | dict[str, Any]
    origin: TextOrigin | None = None  # where a text definition sits in the file (for error positions)

    def locate(self, where: str | None) -> str:
        """`file:line:column` for a `line:column` of the definition text (else `file: definition WHERE`)."""
        line, _, col = str(where or "").partition(":")
        if self.origin is not None and line.isdigit() and col.isdigit():
            fl, fc = self.origin.locate(int(line), int(col))
            return f"{self.path}:{fl}:{fc}"
        return f"{self.path}: definition {where}" if where else f"{self.path}: definition"


@dataclass(frozen=True)
class TextOrigin:
    """Where a text definition sits in its YAML file: its line 1 is file line `line`; columns shift by
    `indent` (by `first_indent` on its first line)."""

    line: int
    indent: int
    first_indent: int

    def locate(self, line: int, column: int) -> tuple[int, int]:
        """File line and column (1-based) of a line:column (1-based) of the definition text."""
        return self.line + line - 1, column + (self.first_indent if line == 1 else self.indent)


def text_origin(source: str) -> TextOrigin | None:
    """Where the (stripped) `definition` text of a segment YAML file starts, from the YAML node's marks.

    Literal blocks (`|`) and one-line scalars map exactly; a folded (`>`) or multi-line flow scalar has
    no line-for-line mapping (None: positions stay relative to the definition).
    """
    try:
        root = yaml.compose(source)
    except yaml.YAMLError:
        return None
    if not isinstance(root, yaml.MappingNode):
        return None
    node = next((v for k, v in root.value if isinstance(k, yaml.ScalarNode) and k.value == "definition"), None)
    if not isinstance(node, yaml.ScalarNode):
        return None
    raw = node.value
    lead = raw[: len(raw) - len(raw.lstrip())]  # what read_segment_file's strip() takes off the front
    skipped, first = lead.count("\n"), len(lead) - lead.rfind("\n") - 1
    start = node.start_mark
    if node.style == "|":
        lines = source.splitlines()
        body = start.line + 1  # 0-based file line of the block's first line
        content = next((ln for ln in lines[body:] if ln.strip()), "")
        indent = len(content) - len(content.lstrip(" "))
        return TextOrigin(body + skipped + 1, indent, indent + first)
    if start.line == node.end_mark.line and "\n" not in raw:
        quote = 1 if node.style in ('"', "'") else 0
        return TextOrigin(start.line + 1, start.column, start.column + quote + first)
    return None


@dataclass
class Change:
    """What apply does (or would do) to one segment."""

    name: str
    action: str  # created | updated | unchanged | deleted
    diff: str = ""
    source: str | None = None


@dataclass
class ApplyResult:
    """Every change of one apply run."""

    changes: list[Change] = field(default_factory=list)
    dry_run: bool = False

    def counts(self) -> dict[str, int]:
        """How many segments per action."""
        out = {"created": 0, "updated": 0, "unchanged": 0, "deleted": 0}
        for c in self.changes:
            out[c.action] += 1
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"dry_run": self.dry_run, "counts": self.counts(), "changes": [asdict(c) for c in self.changes]}


def read_segment_file(path: Path) -> SegmentFile:
    """Read one segment YAML file: name, description, kind, labels, definition (text or tree)."""
    where = str(path)
    try:
        source = path.read_text(encoding="utf-8")
        data = yaml.safe_load(source)
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"not readable YAML: {exc}", where=where) from None
    if not isinstance(data, dict):
        raise InvalidInput("a segment file is a mapping with name and definition", where=where)
    unknown = set(data) - {"name", "description", "kind", "labels", "definition"}
    if unknown:
        raise InvalidInput(f"unknown keys {sorted(unknown)} (name, description, kind, labels, definition)",
                           where=where)
    name, definition = data.get("name"), data.get("definition")
    if not isinstance(name, str) or not name:
        raise InvalidInput("`name` is required (a string)", where=where)
    if not isinstance(definition, str | dict):
        raise InvalidInput("`definition` is required: segment text or a tree", where=f"{where}: definition")
    labels = data.get("labels") or []
    if not isinstance(labels, list):
        raise InvalidInput("`labels` is a list of strings", where=where)
    desc = data.get("description") or ""
    kind = data.get("kind") or "dynamic"
    if not isinstance(desc, str) or not isinstance(kind, str):
        raise InvalidInput("`description` and `kind` are strings", where=where)
    return SegmentFile(path, name, desc.strip(), kind, [str(x) for x in labels],
                       definition.strip() if isinstance(definition, str) else definition,
                       text_origin(source) if isinstance(definition, str) else None)


def read_segment_dir(path: Path) -> list[SegmentFile]:
    """Every *.yaml / *.yml file of a folder (sorted); duplicate names are an error."""
    if not path.is_dir():
        raise NotFound(f"no folder {str(path)!r}", where="path")
    files = sorted([*path.glob("*.yaml"), *path.glob("*.yml")])
    out: list[SegmentFile] = []
    seen: dict[str, Path] = {}
    for f in files:
        sf = read_segment_file(f)
        if sf.name in seen:
            raise InvalidInput(f"segment {sf.name!r} is also defined in {seen[sf.name]}", where=str(f))
        seen[sf.name] = f
        out.append(sf)
    return out


def _order(files: list[SegmentFile], texts: dict[str, m.Condition]) -> list[SegmentFile]:
    """Files ordered so a segment comes after the segments it refers to."""
    by_name = {f.name: f for f in files}
    done: list[SegmentFile] = []
    seen: set[str] = set()

    def visit(f: SegmentFile, stack: tuple[str, ...]) -> None:
        if f.name in seen or f.name in stack:
            return
        for ref in segment_refs(texts[f.name]):
            if ref in by_name:
                visit(by_name[ref], (*stack, f.name))
        seen.add(f.name)
        done.append(f)

    for f in files:
        visit(f, ())
    return done


def _describe(kind: str, description: str, labels: list[str], text: str) -> list[str]:
    return [f"kind: {kind}", f"description: {description}", f"labels: {', '.join(labels)}", "definition:",
            *text.splitlines()]


def plan_apply(files: list[SegmentFile], current: Mapping[str, SavedSegment], *, prune: bool = False,
               catalog: Catalog | None = None) -> tuple[list[tuple[SegmentFile, m.Condition]], ApplyResult]:
    """Parse every file and compare with what is saved: the ordered files and the changes (nothing written)."""
    trees: dict[str, m.Condition] = {}
    texts: dict[str, str] = {}
    for f in files:
        try:
            _check_meta(f.name, f.kind, f.labels)
            trees[f.name], texts[f.name] = parse_definition(f.definition, catalog, where=f"{f.path}: definition")
        except SegmentSyntaxError as exc:  # say file:line:column, counted in the YAML file
            if f.origin is None:
                exc.where = f"{f.path}: definition {exc.where}"
                raise
            exc.line, exc.column = f.origin.locate(exc.line, exc.column)
            exc.where = f"{f.path}:{exc.line}:{exc.column}"
            width = max(1, exc.display.rstrip().splitlines()[-1].count("^"))
            exc.display = caret(f.path.read_text(encoding="utf-8"), exc.line, exc.column, width)
            raise
        except SegmintError as exc:  # say which file
            if not str(exc.where or "").startswith(str(f.path)):
                exc.where = f"{f.path}: definition {exc.where}" if exc.where and exc.where[0].isdigit() else \
                    f"{f.path}: {exc.where or 'definition'}"
            raise
    result = ApplyResult()
    ordered = _order(files, trees)
    for f in ordered:
        cur = current.get(f.name)
        if cur is None:
            result.changes.append(Change(f.name, "created", source=str(f.path)))
            continue
        old = _describe(cur.kind, cur.description, cur.labels, cur.text)
        new = _describe(f.kind, f.description, f.labels, texts[f.name])
        same = old == new and cur.definition == _tree_json(trees[f.name])
        diff = "" if same else "\n".join(difflib.unified_diff(old, new, f"{f.name} (saved v{cur.version})",
                                                               f"{f.name} ({f.path.name})", lineterm=""))
        result.changes.append(Change(f.name, "unchanged" if same else "updated", diff, str(f.path)))
    if prune:
        names = {f.name for f in files}
        result.changes += [Change(n, "deleted") for n in sorted(current) if n not in names]
    return [(f, trees[f.name]) for f in ordered], result


def apply_files(engine: Engine, files: list[SegmentFile], *, dry_run: bool = False, prune: bool = False,
                catalog: Catalog | None = None) -> ApplyResult:
    """Sync saved segments to the files: create, update (new versions), and with prune delete the rest."""
    current = {s.name: s for s in list_segments(engine)}
    ordered, result = plan_apply(files, current, prune=prune, catalog=catalog)
    result.dry_run = dry_run
    if dry_run:
        return result
    actions = {c.name: c.action for c in result.changes}
    for f, tree in ordered:
        if actions[f.name] == "created":
            create_segment(engine, f.name, _tree_json(tree), description=f.description, kind=f.kind,
                           labels=f.labels, catalog=None)
        elif actions[f.name] == "updated":
            update_segment(engine, f.name, definition=_tree_json(tree), description=f.description, kind=f.kind,
                           labels=f.labels, catalog=None)
    deleted = [c.name for c in result.changes if c.action == "deleted"]
    for name in _delete_order(engine, deleted):
        delete_segment(engine, name)
    return result


def _delete_order(engine: Engine, names: list[str]) -> list[str]:
    """Names ordered so a segment is deleted before the segments it refers to."""
    refs = {n: set(segment_refs(get_segment(engine, n).tree())) for n in names}
    out: list[str] = []
    pending = set(names)
    while pending:
        free = sorted(n for n in pending if not any(n in refs[o] for o in pending if o != n))
        if not free:  # a cycle cannot be saved; take the rest in name order
            free = sorted(pending)
        out += free
        pending -= set(free)
    return out


def apply_dir(ws: Any, path: Path | str, *, dry_run: bool = False, prune: bool = False,
              catalog: Catalog | str | None = "workspace") -> ApplyResult:
    """Sync a folder of segment YAML files into a workspace (used by `segmint apply` and `segmint demo`)."""
    files = read_segment_dir(Path(path))
    cat = workspace_catalog(ws) if catalog == "workspace" else catalog
    return apply_files(ws.appdb, files, dry_run=dry_run, prune=prune, catalog=cat)  # type: ignore[arg-type]
