"""Database models. Large arrays (localisations) live in the file store; the database holds
metadata, statistics, ROI vertices, tile positions and the compact tile fingerprints."""

from __future__ import annotations

import json
from datetime import datetime, timezone

from flask_login import UserMixin
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import (BigInteger, Boolean, DateTime, Float, ForeignKey, Integer, LargeBinary, String, Text,
                        UniqueConstraint)
from sqlalchemy.orm import Mapped, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

from databank.metadata import METADATA_FIELDS

db = SQLAlchemy()


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class User(UserMixin, db.Model):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    email: Mapped[str] = mapped_column(String(255))
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # bumped by logout: a session cookie signed for an older generation no longer signs anyone in
    session_generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    def set_password(self, password: str) -> None:
        self.password_hash = generate_password_hash(password)

    def check_password(self, password: str) -> bool:
        return check_password_hash(self.password_hash, password)


class LoginThrottle(db.Model):
    """Failed-login bookkeeping for one key: 'user:<lower-case name>' (known or not) or 'ip:<address>'."""
    __tablename__ = "login_throttle"
    key: Mapped[str] = mapped_column(String(160), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    blocked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True, index=True)


class ApiToken(db.Model):
    """A personal API token; only its SHA-256 is stored."""
    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    prefix: Mapped[str] = mapped_column(String(12))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    user: Mapped[User] = relationship()


class Dataset(db.Model):
    __tablename__ = "datasets"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    visibility: Mapped[str] = mapped_column(String(16), default="private", index=True)
    storage_key: Mapped[str] = mapped_column(String(64), unique=True)
    is_simulated: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)
    # summary over files, kept for the databank table
    n_files: Mapped[int] = mapped_column(Integer, default=0)
    n_locs: Mapped[int] = mapped_column(Integer, default=0)
    n_tiles: Mapped[int] = mapped_column(Integer, default=0)
    density: Mapped[float | None] = mapped_column(Float, nullable=True)
    # metadata (names and validation: metadata.METADATA_FIELDS)
    title: Mapped[str] = mapped_column(String(500), unique=True, index=True)
    modality: Mapped[str] = mapped_column(String(32), index=True)
    primary_antibody: Mapped[str | None] = mapped_column(String(500))
    primary_antibody_ref: Mapped[str | None] = mapped_column(String(500))
    secondary_antibody: Mapped[str | None] = mapped_column(String(500))
    secondary_antibody_ref: Mapped[str | None] = mapped_column(String(500))
    software: Mapped[str] = mapped_column(String(32))
    fluorophore: Mapped[str | None] = mapped_column(String(500))
    protein: Mapped[str | None] = mapped_column(String(500), index=True)
    uniprot_id: Mapped[str | None] = mapped_column(String(32))
    cell_type: Mapped[str | None] = mapped_column(String(500), index=True)
    tags: Mapped[str | None] = mapped_column(String(500))
    experimental_details: Mapped[str | None] = mapped_column(Text)
    doi: Mapped[str | None] = mapped_column(String(500))
    contact_email: Mapped[str | None] = mapped_column(String(500))
    raw_data_url: Mapped[str | None] = mapped_column(String(500))
    drift_correction: Mapped[bool] = mapped_column(Boolean, default=False)
    blink_correction: Mapped[bool] = mapped_column(Boolean, default=False)
    pixel_size_nm: Mapped[float | None] = mapped_column(Float)
    licence_url: Mapped[str | None] = mapped_column(String(500))
    publication_url: Mapped[str | None] = mapped_column(String(500))
    repository_url: Mapped[str | None] = mapped_column(String(500))

    owner: Mapped[User] = relationship()
    files: Mapped[list["DataFile"]] = relationship(back_populates="dataset", cascade="all, delete-orphan",
                                                   order_by="DataFile.id")
    shares: Mapped[list["DatasetShare"]] = relationship(cascade="all, delete-orphan")

    def metadata_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in METADATA_FIELDS}

    @property
    def shared_with(self) -> list[str]:
        return sorted(share.user.username for share in self.shares)


class DatasetShare(db.Model):
    __tablename__ = "dataset_shares"
    __table_args__ = (UniqueConstraint("dataset_id", "user_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    user: Mapped[User] = relationship()


class DataFile(db.Model):
    """One detection file of a dataset, with its per-file statistics."""
    __tablename__ = "data_files"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(255))          # the user's file name (never used as a path)
    storage_key: Mapped[str] = mapped_column(String(64), unique=True)
    format: Mapped[str] = mapped_column(String(32))
    sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    pixel_size_nm: Mapped[float | None] = mapped_column(Float, nullable=True)
    n_locs: Mapped[int] = mapped_column(Integer)
    n_dropped: Mapped[int] = mapped_column(Integer, default=0)
    density: Mapped[float | None] = mapped_column(Float, nullable=True)            # loc/um^2 in ROIs
    coverage: Mapped[float | None] = mapped_column(Float, nullable=True)           # 0-1
    precision_median: Mapped[float | None] = mapped_column(Float, nullable=True)   # nm
    precision_nena_nm: Mapped[float | None] = mapped_column(Float, nullable=True)  # nm, NeNA (needs frames)
    roi_source: Mapped[str] = mapped_column(String(16), default="file")
    stats_json: Mapped[str] = mapped_column(Text, default="{}")
    warnings_json: Mapped[str] = mapped_column(Text, default="[]")
    fingerprints: Mapped[bytes] = mapped_column(LargeBinary)   # compute.similarity.FileFingerprints, packed

    dataset: Mapped[Dataset] = relationship(back_populates="files")
    rois: Mapped[list["Roi"]] = relationship(cascade="all, delete-orphan", order_by="Roi.index")
    tiles: Mapped[list["Tile"]] = relationship(cascade="all, delete-orphan", order_by="Tile.index")

    @property
    def stats(self) -> dict:
        return json.loads(self.stats_json or "{}")

    @property
    def warnings(self) -> list[str]:
        return json.loads(self.warnings_json or "[]")


class Roi(db.Model):
    """A polygon region of interest, vertices in nm (JSON list of [x, y])."""
    __tablename__ = "rois"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    file_id: Mapped[int] = mapped_column(ForeignKey("data_files.id", ondelete="CASCADE"), index=True)
    index: Mapped[int] = mapped_column(Integer)               # 1-based, as labelled (ROI 1, ROI 2, ...)
    name: Mapped[str] = mapped_column(String(255))           # original ROI file name, or 'auto'
    unit: Mapped[str] = mapped_column(String(8))             # unit the file was found to be in
    area_um2: Mapped[float] = mapped_column(Float)
    vertices_json: Mapped[str] = mapped_column(Text)
    has_original: Mapped[bool] = mapped_column(Boolean, default=True)

    @property
    def vertices_nm(self) -> list[list[float]]:
        return json.loads(self.vertices_json)


class Tile(db.Model):
    """A 3 x 3 um tile of a file (lower-left corner in nm)."""
    __tablename__ = "tiles"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    file_id: Mapped[int] = mapped_column(ForeignKey("data_files.id", ondelete="CASCADE"), index=True)
    index: Mapped[int] = mapped_column(Integer)
    x0_nm: Mapped[float] = mapped_column(Float)
    y0_nm: Mapped[float] = mapped_column(Float)
    roi_index: Mapped[int] = mapped_column(Integer)
    n_locs: Mapped[int] = mapped_column(Integer)
    kept: Mapped[bool] = mapped_column(Boolean)              # eligible for unthinned similarity


class ContactMessage(db.Model):
    """A message sent with the contact form, kept for the administrators (``nanoorg messages``)."""
    __tablename__ = "contact_messages"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    reply_to: Mapped[str] = mapped_column(String(255))
    body: Mapped[str] = mapped_column(Text)
    # the sender's network address, for the per-sender rate limit (databank.contact)
    client: Mapped[str | None] = mapped_column(String(128), nullable=True, index=True)


class BankState(db.Model):
    """One row: a counter bumped whenever the searchable bank changes (ingest, delete, visibility)."""
    __tablename__ = "bank_state"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(Integer, default=0)


def bank_version() -> int:
    state = db.session.get(BankState, 1)
    return state.version if state else 0


def bump_bank_version() -> int:
    """Mark the bank as changed (call inside the transaction that changes it)."""
    state = db.session.get(BankState, 1)
    if state is None:
        state = BankState(id=1, version=0)
        db.session.add(state)
    state.version += 1
    return state.version
