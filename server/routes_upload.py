"""Chunked, resumable file upload into a per-user staging folder (plain Flask routes).

The browser (``assets/chunked_upload.js``) sends every file in 8 MiB chunks::

    POST /upload/start                         -> {"upload_id": ..., "chunk_bytes": ..., "max_file_bytes": ...}
    POST /upload/chunk/<upload_id>?index=I&offset=N&size=S&last=0|1&name=NAME   body: the chunk's bytes
    GET  /upload/status/<upload_id>            -> {"files": [{index, name, size, received, complete}]}
    POST or DELETE /upload/cancel/<upload_id>  -> {"cancelled": true, "removed": bool}

Rules (checked here, whatever the browser claims):
- signed-in users only (401 otherwise); CSRF token in the ``X-CSRFToken`` header (400 otherwise);
- ``upload_id`` must be a UUID; ``index`` a small integer; the user's file name is kept in a JSON
  sidecar and never used as a path: bytes go to
  ``<staging_dir>/uploads/<user id>/<upload_id>/<index>.part``;
- ``offset`` must equal the bytes already received (409 with ``expected`` otherwise, so the client
  can resume); a file larger than ``settings.max_upload_mb`` or a user's staging folder larger than
  the quota is refused with 413; every error is JSON ``{"error": "..."}``;
- the quota counts every staged byte of the user: chunks, sidecars, the ingest's staging copy, each
  file and folder plus ``FILE_OVERHEAD_BYTES`` (so empty files are not free); a user holds at most
  ``MAX_OPEN_UPLOADS`` uploads (the oldest idle for ``IDLE_UPLOAD_SECONDS`` make room) and
  ``MAX_STAGED_FILES`` files at once (429 otherwise).

``staged_files(user_id, upload_id)`` hands the completed files to the ingest job as
``databank.ingest.StagedFile`` and ``discard_upload`` removes them afterwards.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import time
import unicodedata
import uuid
from pathlib import Path

from flask import Blueprint, current_app, jsonify, request
from flask_login import current_user
from flask_wtf.csrf import CSRFError, validate_csrf
from wtforms.validators import ValidationError

from databank.core import settings_of
from databank.ingest import StagedFile, remove_dead_ingests

CHUNK_BYTES = 8 * 1024 * 1024          # what the browser sends per request
READ_BYTES = 1024 * 1024               # what the server reads from the stream at a time
MAX_FILES_PER_UPLOAD = 500
MAX_OPEN_UPLOADS = 8                   # uploads one user may hold at once (one per open upload page is normal)
MAX_STAGED_FILES = 1000                # files one user may hold at once, over all open uploads
FILE_OVERHEAD_BYTES = 4096             # what every staged file or folder costs on disk beyond its bytes
IDLE_UPLOAD_SECONDS = 3600             # at the MAX_OPEN_UPLOADS cap, uploads idle this long make room
STALE_UPLOAD_SECONDS = 24 * 3600       # unfinished uploads older than this are removed
INDEX_RE = re.compile(r"^\d{1,4}$")
CSRF_HEADERS = ("X-CSRFToken", "X-CSRF-Token")

bp = Blueprint("nanoorg_upload", __name__)


class UploadError(ValueError):
    """A staged upload that is missing, incomplete or not this user's."""


# --------------------------------------------------------------------------------------------
# paths and sidecars

def normalise_upload_id(upload_id) -> str | None:
    """The canonical (32 hex digits) form of a UUID upload id, or None if it is not one."""
    if not isinstance(upload_id, str) or not 32 <= len(upload_id) <= 36:
        return None
    try:
        return uuid.UUID(upload_id).hex
    except ValueError:
        return None


def clean_file_name(name) -> str:
    """The user's file name for display and ROI matching: last path component, no control characters."""
    text = unicodedata.normalize("NFC", str(name or ""))
    text = re.split(r"[\\/]", text)[-1]
    text = "".join(ch for ch in text if unicodedata.category(ch)[0] != "C").strip()
    return text[:255]


def uploads_root(settings) -> Path:
    return Path(settings.staging_dir) / "uploads"


def user_dir(settings, user_id) -> Path:
    return uploads_root(settings) / str(int(user_id))


def upload_dir(settings, user_id, upload_id) -> Path:
    canonical = normalise_upload_id(upload_id)
    if canonical is None:
        raise UploadError("This upload id is not valid.")
    return user_dir(settings, user_id) / canonical


def _sidecar(folder: Path, index: int) -> Path:
    return folder / f"{index}.json"


def _part(folder: Path, index: int) -> Path:
    return folder / f"{index}.part"


def _read_sidecar(folder: Path, index: int) -> dict | None:
    try:
        return json.loads(_sidecar(folder, index).read_text())
    except (OSError, ValueError):
        return None


def _write_sidecar(folder: Path, index: int, info: dict) -> None:
    tmp = folder / f".{index}.json.tmp"
    tmp.write_text(json.dumps(info))
    os.replace(tmp, _sidecar(folder, index))


def staged_usage(folder: Path) -> tuple[int, int]:
    """(bytes, uploaded files) a user's staging folder holds: every file's size plus FILE_OVERHEAD_BYTES
    per file and folder (sidecars, empty files and the ingest's staging copy included); files = sidecars."""
    total, n_files = 0, 0
    for root, folders, names in os.walk(folder):
        total += FILE_OVERHEAD_BYTES * (len(folders) + len(names))
        for name in names:
            try:
                total += os.stat(os.path.join(root, name)).st_size
            except OSError:
                pass
            n_files += name.endswith(".json") and INDEX_RE.match(name[:-len(".json")]) is not None
    return total, n_files


def _open_uploads(settings, user_id) -> list[Path]:
    folder = user_dir(settings, user_id)
    return [p for p in folder.iterdir() if p.is_dir() and normalise_upload_id(p.name) == p.name] \
        if folder.is_dir() else []


def _last_touched(folder: Path) -> float:
    try:
        return max([folder.stat().st_mtime] + [p.stat().st_mtime for p in folder.iterdir()])
    except OSError:
        return 0.0


def max_file_bytes(settings) -> int:
    return int(settings.max_upload_mb) * 1024 * 1024


def quota_bytes(settings) -> int:
    """Staging space one user may hold at once (``settings.upload_quota_mb``, default 4 files' worth)."""
    quota_mb = settings.upload_quota_mb or 4 * int(settings.max_upload_mb)
    return int(quota_mb) * 1024 * 1024


def _mb(n_bytes: int) -> str:
    return f"{n_bytes / 1024 / 1024:,.1f} MB"


# --------------------------------------------------------------------------------------------
# helpers used by the ingest job and the page callbacks

def staged_files(user_id, upload_id, names=None) -> list[StagedFile]:
    """The completely received files of one of ``user_id``'s uploads, in upload order.

    ``names`` (optional) restricts the result to those file names, all of which must be present.
    Raises UploadError when the upload is missing, belongs to someone else (then it is simply not
    under this user's folder) or a file has not been received completely.
    """
    settings = settings_of()
    folder = upload_dir(settings, user_id, upload_id)
    if not folder.is_dir():
        raise UploadError("The uploaded files were not found on the server (the upload was cancelled, "
                          "already used or expired). Choose the files again.")
    entries = []
    for sidecar in folder.glob("*.json"):
        if not INDEX_RE.match(sidecar.stem):
            continue
        info = _read_sidecar(folder, int(sidecar.stem))
        if info:
            entries.append((int(sidecar.stem), info))
    entries.sort()
    latest = {info["name"]: (index, info) for index, info in entries}   # a file chosen again replaces the older one
    wanted = None if names is None else list(names)
    found = {}
    for name, (index, info) in sorted(latest.items(), key=lambda item: item[1][0]):
        if wanted is not None and name not in wanted:
            continue
        path = _part(folder, index)
        if not info.get("complete") or not path.is_file() or path.stat().st_size != info.get("size"):
            raise UploadError(f"{name}: the file has not been received completely yet "
                              "(wait for its progress bar to finish, or choose it again).")
        found[name] = StagedFile(path=path, name=name)
    if wanted is not None:
        missing = [name for name in wanted if name not in found]
        if missing:
            raise UploadError(f"{missing[0]}: this file has not been uploaded. Choose it again.")
        return [found[name] for name in wanted]
    return list(found.values())


def staged_summary(user_id, upload_id) -> list[dict]:
    """[{index, name, size, received, complete}] of an upload (empty if there is none)."""
    settings = settings_of()
    try:
        folder = upload_dir(settings, user_id, upload_id)
    except UploadError:
        return []
    rows = []
    for sidecar in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        if not INDEX_RE.match(sidecar.stem):
            continue
        index = int(sidecar.stem)
        info = _read_sidecar(folder, index) or {}
        part = _part(folder, index)
        rows.append(dict(index=index, name=info.get("name"), size=info.get("size"),
                         received=part.stat().st_size if part.exists() else 0, complete=bool(info.get("complete"))))
    return sorted(rows, key=lambda r: r["index"])


def discard_upload(user_id, upload_id) -> bool:
    """Remove one of ``user_id``'s staged uploads; True if there was something to remove."""
    settings = settings_of()
    try:
        folder = upload_dir(settings, user_id, upload_id)
    except UploadError:
        return False
    existed = folder.exists()
    shutil.rmtree(folder, ignore_errors=True)
    return existed


def remove_stale_uploads(settings, user_id, max_age: float = STALE_UPLOAD_SECONDS) -> int:
    """Remove a user's unfinished uploads untouched for ``max_age`` seconds."""
    folder = user_dir(settings, user_id)
    removed = 0
    if not folder.is_dir():
        return 0
    now = time.time()
    for child in _open_uploads(settings, user_id):
        if now - _last_touched(child) > max_age:
            shutil.rmtree(child, ignore_errors=True)
            removed += 1
    return removed


# --------------------------------------------------------------------------------------------
# routes

def _error(status: int, message: str, **extra):
    response = jsonify(error=message, **extra)
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    return response


def _guard():
    """401 for anonymous visitors, 400 without a valid CSRF header; None when the request may go on."""
    if not getattr(current_user, "is_authenticated", False):
        return _error(401, "Sign in to upload data.")
    token = next((request.headers.get(h) for h in CSRF_HEADERS if request.headers.get(h)), None)
    try:
        validate_csrf(token)
    except (ValidationError, CSRFError):
        return _error(400, "The CSRF token is missing or invalid. Reload the page and try again.")
    return None


def _int_arg(name: str, default=None):
    raw = request.args.get(name, default)
    if raw is None:
        return None
    try:
        value = int(raw)
    except (TypeError, ValueError):
        return "bad"
    return value if value >= 0 else "bad"


@bp.post("/upload/start")
def start_upload():
    refused = _guard()
    if refused:
        return refused
    settings = settings_of(current_app)
    uid = int(current_user.get_id())
    remove_stale_uploads(settings, uid)
    if user_dir(settings, uid).is_dir():
        remove_dead_ingests(user_dir(settings, uid), settings)     # a killed ingest's copy leaves the quota
    open_uploads = sorted(_open_uploads(settings, uid), key=_last_touched)
    while len(open_uploads) >= MAX_OPEN_UPLOADS and time.time() - _last_touched(open_uploads[0]) > IDLE_UPLOAD_SECONDS:
        shutil.rmtree(open_uploads.pop(0), ignore_errors=True)
    if len(open_uploads) >= MAX_OPEN_UPLOADS:
        return _error(429, f"You have {len(open_uploads)} unfinished uploads (at most {MAX_OPEN_UPLOADS} at once). "
                      "Finish one, press Clear on an upload page you left open, or try again in "
                      f"{IDLE_UPLOAD_SECONDS // 60} minutes when idle uploads make room.")
    upload_id = uuid.uuid4().hex
    (user_dir(settings, uid) / upload_id).mkdir(parents=True, exist_ok=True)
    return jsonify(upload_id=upload_id, chunk_bytes=CHUNK_BYTES, max_file_bytes=max_file_bytes(settings))


@bp.post("/upload/chunk/<upload_id>")
def upload_chunk(upload_id):
    refused = _guard()
    if refused:
        return refused
    settings = settings_of(current_app)
    uid = int(current_user.get_id())
    canonical = normalise_upload_id(upload_id)
    if canonical is None:
        return _error(400, "The upload id is not valid.")
    index, offset, size = _int_arg("index", "0"), _int_arg("offset"), _int_arg("size")
    last = request.args.get("last", "0")
    name = clean_file_name(request.args.get("name"))
    if index == "bad" or index >= MAX_FILES_PER_UPLOAD:
        return _error(400, f"The file index must be a number below {MAX_FILES_PER_UPLOAD}.")
    if offset is None or offset == "bad":
        return _error(400, "The offset parameter is missing or not a number.")
    if size == "bad":
        return _error(400, "The size parameter is not a number.")
    if last not in ("0", "1"):
        return _error(400, "The last parameter must be 0 or 1.")
    if not name:
        return _error(400, "The file name is missing.")
    limit = max_file_bytes(settings)
    length = request.content_length
    if length is None:
        if "chunked" in request.headers.get("Transfer-Encoding", "").lower():
            return _error(411, "The chunk must be sent with a Content-Length.")
        length = 0
    if length > CHUNK_BYTES:
        return _error(413, f"A chunk may hold at most {_mb(CHUNK_BYTES)}.")
    if (size is not None and size > limit) or offset + length > limit:
        return _error(413, f"{name} is larger than the upload limit of {settings.max_upload_mb} MB per file.",
                      limit_bytes=limit)
    if size is not None and offset + length > size:
        return _error(400, f"{name}: the chunk goes past the declared file size.")

    folder = user_dir(settings, uid) / canonical
    if not folder.is_dir():
        return _error(404, "This upload is not open (it was cancelled, used or expired): choose the files again.")
    used, n_files = staged_usage(user_dir(settings, uid))
    info = _read_sidecar(folder, index)
    new_file_cost = 2 * FILE_OVERHEAD_BYTES if info is None else 0      # its sidecar and its .part
    if used + new_file_cost + length > quota_bytes(settings):
        return _error(413, f"Your staging space ({_mb(quota_bytes(settings))}, counting every staged file) is "
                      f"full: {_mb(used)} in use. Finish or cancel your other uploads first.")
    if info is None:
        if n_files >= MAX_STAGED_FILES:
            return _error(429, f"You have {n_files} files waiting in unfinished uploads (at most "
                          f"{MAX_STAGED_FILES} at once). Finish or cancel your other uploads first.")
        if offset != 0:
            return _error(409, f"{name}: the server has no bytes of this file yet.", expected=0)
        info = dict(name=name, size=size, complete=False, started=time.time())
        _write_sidecar(folder, index, info)
    elif info.get("name") != name:
        return _error(409, f"File number {index} of this upload is '{info.get('name')}', not '{name}'.")
    elif info.get("complete"):
        return _error(409, f"{name} has been received completely already.", expected=info.get("size"))
    if size is not None and info.get("size") not in (None, size):
        return _error(409, f"{name}: the file size changed during the upload; choose the file again.")

    part = _part(folder, index)
    with open(part, "ab") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return _error(409, f"{name}: another chunk of this file is being written.", expected=None)
        current = os.fstat(handle.fileno()).st_size
        if offset != current:
            return _error(409, f"{name}: expected the chunk at byte {current}, got {offset}.", expected=current)
        received = 0
        while True:
            piece = request.stream.read(min(READ_BYTES, length - received)) if received < length else b""
            if not piece:
                break
            received += len(piece)
            handle.write(piece)
        handle.flush()
        if received != length:
            handle.truncate(current)
            return _error(400, f"{name}: the chunk was cut short ({received} of {length} bytes); send it again.",
                          expected=current)
        total = current + received
    complete = last == "1"
    if complete:
        if size is not None and total != size:
            return _error(400, f"{name}: {total} bytes received but the file has {size}.", expected=total)
        info.update(size=total, complete=True, finished=time.time())
        _write_sidecar(folder, index, info)
    return jsonify(upload_id=canonical, index=index, received=total, complete=complete)


@bp.get("/upload/status/<upload_id>")
def upload_status(upload_id):
    if not getattr(current_user, "is_authenticated", False):
        return _error(401, "Sign in to upload data.")
    if normalise_upload_id(upload_id) is None:
        return _error(400, "The upload id is not valid.")
    return jsonify(upload_id=normalise_upload_id(upload_id),
                   files=staged_summary(int(current_user.get_id()), upload_id))


@bp.route("/upload/cancel/<upload_id>", methods=["POST", "DELETE"])
def cancel_upload(upload_id):
    refused = _guard()
    if refused:
        return refused
    if normalise_upload_id(upload_id) is None:
        return _error(400, "The upload id is not valid.")
    removed = discard_upload(int(current_user.get_id()), upload_id)
    return jsonify(cancelled=True, removed=removed)


def register(server) -> None:
    """Add the upload routes to the Flask ``server`` (called by ``app.create_app``)."""
    if "nanoorg_upload" not in server.blueprints:
        server.register_blueprint(bp)
