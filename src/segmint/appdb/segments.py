"""Saved segments in the app-state database: one row per segment plus an append-only version history."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, DateTime, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from segmint.appdb.base import Base


class SegmentRow(Base):
    """A saved segment: its name and the number of its current version (definitions live in versions)."""

    __tablename__ = "segments"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True, index=True)
    current_version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)
    versions: Mapped[list[SegmentVersionRow]] = relationship(
        back_populates="segment", cascade="all, delete-orphan", passive_deletes=True,
        order_by="SegmentVersionRow.version")


class SegmentVersionRow(Base):
    """One version of a segment; never changed after it is written (an update adds a new row)."""

    __tablename__ = "segment_versions"
    __table_args__ = (UniqueConstraint("segment_id", "version"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    segment_id: Mapped[int] = mapped_column(ForeignKey("segments.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    description: Mapped[str] = mapped_column(Text, default="")
    kind: Mapped[str] = mapped_column(String(16), default="dynamic")
    labels: Mapped[list] = mapped_column(JSON, default=list)
    definition: Mapped[dict] = mapped_column(JSON)
    text: Mapped[str] = mapped_column(Text)
    members: Mapped[list | None] = mapped_column(JSON, nullable=True)  # static: user_ids frozen at save
    created_at: Mapped[datetime] = mapped_column(DateTime)
    segment: Mapped[SegmentRow] = relationship(back_populates="versions")
