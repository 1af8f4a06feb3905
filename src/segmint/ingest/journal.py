"""A durable append-only journal: a 2xx is sent only after the request's records are fsynced here.

Records are framed as <length:4><crc32:4><payload>, in numbered segment files. The writer's position
is committed in the event store in the same transaction as the rows it wrote, so a restart replays
exactly what was not yet stored: nothing acknowledged is lost and nothing is stored twice.
"""

from __future__ import annotations

import os
import struct
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

HEADER = struct.Struct(">II")
SEGMENT_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True, order=True)
class Position:
    """A place in the journal: segment number and byte offset."""

    segment: int
    offset: int

    def __str__(self) -> str:
        return f"{self.segment}:{self.offset}"

    @classmethod
    def parse(cls, text: str | None) -> Position:
        """Inverse of str(); None means the very start."""
        if not text:
            return cls(1, 0)
        seg, off = text.split(":")
        return cls(int(seg), int(off))


class Journal:
    """Append with fsync; read forward from a position; drop segments that are fully consumed."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()  # guards writes to the file and rotation
        self._sync = threading.Condition()  # guards _durable / _syncing (group commit)
        segments = self._segments()
        self._segment = segments[-1] if segments else 1
        self._file = open(self._path(self._segment), "ab")  # noqa: SIM115
        self._truncate_torn_tail()
        self._durable = Position(self._segment, self._file.tell())
        self._syncing = False
        self.syncs = 0  # fsync calls made (group commit makes it smaller than the number of appends)

    def _path(self, segment: int) -> Path:
        return self.folder / f"{segment:08d}.log"

    def _segments(self) -> list[int]:
        return sorted(int(p.stem) for p in self.folder.glob("*.log") if p.stem.isdigit())

    def _truncate_torn_tail(self) -> None:
        """A crash mid-append leaves a partial record that was never acknowledged: cut it off."""
        path = self._path(self._segment)
        good = 0
        with open(path, "rb") as f:
            data = f.read()
        while good + HEADER.size <= len(data):
            length, crc = HEADER.unpack_from(data, good)
            end = good + HEADER.size + length
            if end > len(data) or zlib.crc32(data[good + HEADER.size : end]) != crc:
                break
            good = end
        if good != len(data):
            self._file.truncate(good)
            os.fsync(self._file.fileno())
        self._file.seek(0, os.SEEK_END)

    def append(self, payload: bytes) -> Position:
        """Append one record and return the position just after it, once it is fsynced.

        Group commit: concurrent appends write under a short lock, then share fsyncs; a caller returns
        only when a sync that started after its own write has finished, so its bytes are durable.
        """
        frame = HEADER.pack(len(payload), zlib.crc32(payload)) + payload
        with self._lock:
            if self._file.tell() >= SEGMENT_BYTES:
                self._rotate()
            self._file.write(frame)
            self._file.flush()
            mine = Position(self._segment, self._file.tell())
        self._sync_to(mine)
        return mine

    def _rotate(self) -> None:
        """Close the full segment (fsynced, so all of it is durable) and open the next; holds _lock."""
        self._file.flush()
        os.fsync(self._file.fileno())
        done = Position(self._segment, self._file.tell())
        self._file.close()
        self._segment += 1
        self._file = open(self._path(self._segment), "ab")  # noqa: SIM115
        with self._sync:
            self._durable = max(self._durable, done)
            self._sync.notify_all()

    def _sync_to(self, target: Position) -> None:
        """Return once everything up to `target` is fsynced, leading a sync or waiting for one."""
        with self._sync:
            while self._durable < target:
                if self._syncing:
                    self._sync.wait()
                    continue
                self._syncing = True
                self._sync.release()
                try:
                    with self._lock:  # what is written now (ours and any followers') is covered
                        upto = Position(self._segment, self._file.tell())
                        fd = os.dup(self._file.fileno())  # stays valid if a rotation closes the file
                    try:
                        os.fsync(fd)
                    finally:
                        os.close(fd)
                    self.syncs += 1
                finally:
                    self._sync.acquire()
                    self._syncing = False
                self._durable = max(self._durable, upto)
                self._sync.notify_all()

    def end(self) -> Position:
        """The position after the last durable (fsynced) record; readers never go past it."""
        with self._sync:
            return self._durable

    def read_from(self, pos: Position, max_records: int = 10_000) -> Iterator[tuple[bytes, Position]]:
        """Records after `pos` (with the position after each), up to the current end."""
        end = self.end()
        seg, off = pos.segment, pos.offset
        count = 0
        while (seg, off) < (end.segment, end.offset) and count < max_records:
            path = self._path(seg)
            if not path.exists():
                seg, off = seg + 1, 0
                continue
            limit = end.offset if seg == end.segment else path.stat().st_size
            with open(path, "rb") as f:
                f.seek(off)
                while off < limit and count < max_records:
                    header = f.read(HEADER.size)
                    if len(header) < HEADER.size:
                        return  # cannot happen below the journal's end; never spin
                    length, _crc = HEADER.unpack(header)
                    payload = f.read(length)
                    off += HEADER.size + length
                    count += 1
                    yield payload, Position(seg, off)
            if seg < end.segment and off >= limit:
                seg, off = seg + 1, 0

    def release_before(self, pos: Position) -> None:
        """Delete segment files wholly before `pos` (their records are stored)."""
        for seg in self._segments():
            if seg < pos.segment:
                self._path(seg).unlink(missing_ok=True)

    def close(self) -> None:
        """Close the open segment file."""
        with self._lock:
            self._file.close()
