"""Build and load a demo workspace: taxonomy, write key, profiles and events in big Arrow batches."""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from pathlib import Path
from queue import Queue

import pyarrow as pa
import pyarrow.compute as pc
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from segmint.appdb.keys import create_key
from segmint.config import CONFIG_FILE
from segmint.demo.generate import Chunk, DemoSpec, Generator
from segmint.errors import WorkspaceError
from segmint.store.base import WriteBatch
from segmint.taxonomy.model import Taxonomy, load_taxonomy
from segmint.workspace import Workspace

DEMO_FILE = "demo.json"  # marks a demo workspace: the spec it was built from, and its write key
WRITE_ROWS = 1_000_000  # events per store write


@dataclass
class DemoInfo:
    """What a demo workspace was built from."""

    spec: DemoSpec
    write_key: str
    complete: bool

    def to_json(self) -> str:
        """JSON text for demo.json."""
        s = self.spec
        return json.dumps(
            {
                "users": s.users,
                "days": s.days,
                "seed": s.seed,
                "now": s.now.isoformat(),
                "write_key": self.write_key,
                "complete": self.complete,
            }
        )


def demo_taxonomy_text() -> str:
    """The shipped demo taxonomy YAML."""
    return resources.files("segmint.demo").joinpath("taxonomy.yaml").read_text(encoding="utf-8")


def demo_taxonomy() -> Taxonomy:
    """The shipped demo taxonomy, parsed."""
    with resources.as_file(resources.files("segmint.demo").joinpath("taxonomy.yaml")) as path:
        return load_taxonomy(Path(path))


def read_demo_info(path: Path) -> DemoInfo | None:
    """The demo.json of a workspace folder, or None if it is not a demo workspace."""
    file = Path(path) / DEMO_FILE
    if not file.exists():
        return None
    data = json.loads(file.read_text())
    spec = DemoSpec(users=data["users"], days=data["days"], seed=data["seed"], now=datetime.fromisoformat(data["now"]))
    return DemoInfo(spec, data["write_key"], bool(data.get("complete")))


def prepare_workspace(path: Path, *, fresh: bool) -> tuple[Workspace | None, DemoInfo | None]:
    """Open a complete demo workspace for reuse, or clear the folder for a new one.

    Returns (workspace, info) when a complete demo is reused, else (None, None) with the folder ready.
    A folder holding a non-demo workspace (or other files) is never deleted: that is an error.
    """
    path = Path(path)
    info = read_demo_info(path)
    if (path / CONFIG_FILE).exists() and info is None:
        raise WorkspaceError(
            "this folder holds a workspace that is not a demo; choose another --workspace "
            "(the demo never overwrites real data)",
            where=str(path),
        )
    if info is not None and info.complete and not fresh:
        return Workspace(path), info
    if info is not None:  # --fresh, or a load that did not finish
        shutil.rmtree(path)
    elif path.exists() and any(path.iterdir()):
        raise WorkspaceError(
            "folder is not empty and is not a demo workspace; choose another --workspace", where=str(path)
        )
    return None, None


def build_demo(path: Path, spec: DemoSpec, *, progress: bool = True) -> tuple[Workspace, DemoInfo]:
    """Create a demo workspace at `path` and load the generated shop into it."""
    ws = Workspace.init(path, name="데모몰")
    ws.taxonomy_path.write_text(demo_taxonomy_text(), encoding="utf-8")
    key = create_key(ws.appdb, label="demo")
    info = DemoInfo(spec, key.secret or "", complete=False)
    (ws.path / DEMO_FILE).write_text(info.to_json())
    load_demo(ws, spec, progress=progress)
    info.complete = True
    (ws.path / DEMO_FILE).write_text(info.to_json())
    return ws, info


def load_demo(ws: Workspace, spec: DemoSpec, *, progress: bool = True) -> int:
    """Generate the shop and bulk-load it into the workspace store (bypassing the journal); returns events."""
    store = ws.store
    store.ensure_property_columns(demo_taxonomy().typed_columns())
    total = 0
    columns = [
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[events]:,} events"),
    ]
    with Progress(*columns, disable=not progress, transient=False) as bar:
        task = bar.add_task("데모몰 생성", total=spec.users, events=0)
        done = 0
        links: dict[str, str] = {}
        for chunk in _prefetch(Generator(spec).chunks()):
            store.load_profiles(chunk.profiles)
            events = resolve_identities(chunk.events, chunk.identities)
            for start in range(0, events.num_rows, WRITE_ROWS):
                total += store.write(WriteBatch(events=events.slice(start, WRITE_ROWS)))
            links.update(chunk.identities)
            done += chunk.profiles.num_rows
            bar.update(task, completed=done, events=total)
        # Record the links once at the end: with identities in every batch the store would re-scan
        # the whole events table per batch looking for anonymous rows to re-attribute.
        store.write(WriteBatch(identities=links))
    return total


def resolve_identities(events: pa.Table, identities: dict[str, str]) -> pa.Table:
    """Give anonymous events the user their anonymous_id is linked to (what the store does on insert)."""
    if not identities:
        return events
    keys = pa.array(list(identities), pa.string())
    idx = pc.index_in(events["anonymous_id"], value_set=keys)
    linked = pa.array(list(identities.values()), pa.string()).take(idx)
    pos = events.schema.get_field_index("user_id")
    return events.set_column(pos, "user_id", pc.coalesce(events["user_id"], linked))


def _prefetch(chunks: Iterator[Chunk]) -> Iterator[Chunk]:
    """Generate the next chunk in a thread while the store writes this one (numpy, Arrow, DuckDB all
    release the GIL, so the two overlap on two cores)."""
    queue: Queue[Chunk | BaseException | None] = Queue(maxsize=1)

    def produce() -> None:
        try:
            for chunk in chunks:
                queue.put(chunk)
            queue.put(None)
        except BaseException as exc:  # handed to the consumer, which re-raises it
            queue.put(exc)

    thread = threading.Thread(target=produce, name="demo-generator", daemon=True)
    thread.start()
    while (item := queue.get()) is not None:
        if isinstance(item, BaseException):
            raise item
        yield item
    thread.join()
