"""\"Search with your own file\": the user's files are analysed, ranked and never stored.

A query file is kept only until it is fingerprinted, then only its fingerprints (for an hour).
"""

from __future__ import annotations


import json
import shutil
import time
import uuid
from pathlib import Path


from databank.access import user_id_of
from databank.core import settings_of
from databank.store import pack_fingerprints, unpack_fingerprints
from databank.search import cache_key, result_cache, search_with_fingerprints


QUERY_TTL_SECONDS = 3600          # an analysed query file's fingerprints are kept this long (not the file)




_TOKEN_CHARS = set("0123456789abcdef")


class QueryFileError(ValueError):
    """A query file that cannot be used; the message says what to do."""


def _query_root() -> Path:
    return Path(settings_of().staging_dir) / "query"


def _query_user_id(user) -> int:
    uid = user_id_of(user)
    if uid is None:
        raise QueryFileError("Sign in to search the bank with your own file.")
    return uid


def _query_folder(user, token) -> Path:
    uid = _query_user_id(user)
    token = str(token or "")
    if len(token) != 32 or not set(token) <= _TOKEN_CHARS:
        raise QueryFileError("No file chosen (or the choice expired): choose the file again.")
    return _query_root() / str(uid) / token


def _query_key(user, token) -> str:
    return cache_key("query", _query_user_id(user), str(token))


def _sweep_query_folders(now: float | None = None) -> None:
    """Remove query files left behind for longer than QUERY_TTL_SECONDS (abandoned searches)."""
    now = time.time() if now is None else now
    root = _query_root()
    if not root.is_dir():
        return
    for folder in root.glob("*/*"):
        try:
            if now - folder.stat().st_mtime > QUERY_TTL_SECONDS:
                shutil.rmtree(folder, ignore_errors=True)
        except OSError:
            pass


def stage_query_files(user, files) -> dict:
    """Keep one detection file (+ its ``{stem}_ROI*.csv`` files) of a signed-in user until it is analysed.

    ``files``: [(user's file name, bytes)]. The bytes are written under server-made names in the
    user's private staging folder (the user's names are used for ROI matching and messages only),
    replacing any earlier query of that user. Returns {"token", "detection", "rois", "size_bytes"}.
    Raises QueryFileError (anonymous user, not exactly one detection file, bad names, too large).
    """
    from databank.ingest import plan_upload

    uid = _query_user_id(user)
    files = [(str(name), bytes(data)) for name, data in files]
    if not files:
        raise QueryFileError("Choose one detection file, and its ROI files if it has any.")
    total = sum(len(data) for _, data in files)
    limit_mb = settings_of().query_max_mb
    if total > limit_mb * 2 ** 20:
        raise QueryFileError(f"The files hold {total / 2 ** 20:.0f} MB; at most {limit_mb} MB "
                             "can be searched this way. Upload large files to the databank instead.")
    plan = plan_upload([name for name, _ in files])
    if plan.rejected or plan.unmatched_rois or not plan.detections:
        raise QueryFileError(" ".join(plan.problems()))
    if len(plan.detections) != 1:
        raise QueryFileError(f"Choose exactly one detection file (you chose {len(plan.detections)}: "
                             f"{', '.join(plan.detections)}); its ROI files may come with it.")
    _sweep_query_folders()
    user_root = _query_root() / str(uid)
    if user_root.is_dir():
        shutil.rmtree(user_root, ignore_errors=True)        # one pending query per user
    token = uuid.uuid4().hex
    folder = user_root / token
    folder.mkdir(parents=True)
    detection = next(iter(plan.detections))
    manifest = {"detection": None, "rois": []}
    for k, (name, data) in enumerate(files):
        (folder / f"{k:03d}").write_bytes(data)
        entry = {"name": name, "file": f"{k:03d}"}
        if name == detection:
            manifest["detection"] = entry
        elif name in plan.detections[detection]:
            manifest["rois"].append(entry)
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return {"token": token, "detection": detection, "rois": list(plan.detections[detection]), "size_bytes": total}


def analyse_query(user, token, *, pixel_size_nm: float | None = None, progress=None) -> dict:
    """Read, tile and fingerprint a staged query file (``ingest.analyse_file``), keep only its
    fingerprints (cached QUERY_TTL_SECONDS) and delete the file. Returns a summary dict: name,
    n_locs, density, n_tiles, n_tiles_thinned {target: n}, warnings, stats (``file_statistics``). Raises QueryFileError or
    ingest.IngestError (the file is kept then, so the user may retry, e.g. with a pixel size).
    """
    from databank.ingest import StagedFile, analyse_file

    key = _query_key(user, token)
    with result_cache() as cache:
        entry = cache.get(key)
    if entry is not None:
        return entry["summary"]
    folder = _query_folder(user, token)
    manifest_path = folder / "manifest.json"
    if not manifest_path.is_file():
        raise QueryFileError("The chosen file is no longer on the server (it expired): choose it again.")
    manifest = json.loads(manifest_path.read_text())
    if progress:
        progress(0.05, f"Reading {manifest['detection']['name']}")
    detection = StagedFile(folder / manifest["detection"]["file"], manifest["detection"]["name"])
    rois = [StagedFile(folder / r["file"], r["name"]) for r in manifest["rois"]]
    settings = settings_of()      # thinned like the bank's files, as many times
    analysis = analyse_file(detection, rois, pixel_size_nm=pixel_size_nm, thinning_targets=settings.thinning_targets,
                            thinning_repeats=settings.thinning_repeats, thinning_mode=settings.thinning_mode)
    prints = analysis.fingerprints
    summary = {"name": analysis.name, "n_locs": len(analysis.table), "density": analysis.stats.get("density"),
               "n_tiles": len(prints.unthinned), "n_tiles_thinned": {str(t): len(p) for t, p in prints.thinned.items()},
               "roi_source": analysis.stats.get("roi_source"), "n_rois": len(analysis.polygons),
               "warnings": list(analysis.warnings), "stats": analysis.stats}
    with result_cache() as cache:
        cache.set(key, {"fingerprints": pack_fingerprints(prints), "summary": summary}, expire=QUERY_TTL_SECONDS)
    shutil.rmtree(folder, ignore_errors=True)       # the file itself is never kept
    return summary


def search_query(user, token, *, target: int | None = None, filters: dict | None = None,
                 progress=None) -> list[dict]:
    """The ranked table for an analysed query file (``analyse_query``), under ``user``'s access."""
    with result_cache() as cache:
        entry = cache.get(_query_key(user, token))
    if entry is None:
        raise QueryFileError("The analysed file has expired: choose it again.")
    return search_with_fingerprints(user, unpack_fingerprints(entry["fingerprints"]), target=target,
                                    filters=filters, progress=progress)
