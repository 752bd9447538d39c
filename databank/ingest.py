"""Atomic ingest: stage, validate every file, then commit in one transaction.

Every detection file is read with ``compute.formats``, its ``{stem}_ROI*.csv`` polygons are matched
and unit-checked, the file is tiled (3 x 3 um), fingerprinted (unthinned and thinned) and measured.
All of that is written into a private staging folder first. Only when every file has passed are the
database rows added and the staging folder renamed into the store, then the transaction commits.
Any failure removes the staging folder and rolls back: nothing half written remains.

Each ingest has a key (the dataset's storage key) and holds an exclusive ``flock`` on
``<staging root>/ingest-<key>.lock`` from before it writes anything until after it commits or
cleans up; the kernel releases the lock when the process dies. ``cancel_ingest`` marks the
ingest cancelled (it then never commits), waits for that lock, removes what a killed process left
and says truthfully whether the dataset had been committed. ``sweep_orphans`` removes the leftovers
of any ingest whose lock is free.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from sqlalchemy import select

from compute import formats, plausibility, rois, similarity, stats, tiles
from compute.table import OPTIONAL_COLUMNS
from databank.core import settings_of
from databank.metadata import MetadataError, clean_metadata, clean_visibility
from databank.models import DataFile, Dataset, DatasetShare, Roi, Tile, User, bump_bank_version, db
from databank.store import FileStore, pack_fingerprints, sha256_of, write_normalised
from databank.users import resolve_share_users
from databank.datasets import title_taken

Progress = Callable[[float, str], None]
INGEST_KEY_RE = re.compile(r"^[0-9a-f]{32}$")
CANCEL_MARK = b"cancelled\n"
CANCEL_POLL_SECONDS = 0.05
log = logging.getLogger(__name__)


class IngestError(ValueError):
    """An upload that cannot be ingested. ``file`` is the user's file name (None if not file-specific)."""

    def __init__(self, file: str | None, message: str):
        self.file = file
        self.message = message
        super().__init__(f"{file}: {message}" if file and not message.startswith(file) else message)


class IngestCancelled(RuntimeError):
    """The ingest was cancelled before it committed: nothing was added."""


class IngestStillRunning(RuntimeError):
    """cancel_ingest: the ingest did not stop within the wait; it will not commit after the cancel mark."""


@dataclass
class StagedFile:
    path: Path      # where the uploaded bytes are now (server-made name)
    name: str       # the user's file name (used for matching ROIs and in messages only)


@dataclass
class UploadPlan:
    detections: dict[str, list[str]] = field(default_factory=dict)   # detection name -> ROI names
    unmatched_rois: list[str] = field(default_factory=list)
    rejected: dict[str, str] = field(default_factory=dict)           # name -> reason
    misnamed_rois: dict[str, str] = field(default_factory=dict)      # name -> the name the rule wants

    @property
    def ok(self) -> bool:
        return bool(self.detections) and not self.unmatched_rois and not self.rejected and not self.misnamed_rois

    def problems(self) -> list[str]:
        messages = [f"{name}: {reason}" for name, reason in self.rejected.items()]
        messages += [f"{name}: looks like an ROI file but does not follow the naming rule "
                     f"{{DETECTION_FILE_NAME}}_ROI*.csv, so it would be read as a detection file. Fix: rename it "
                     f"to {fix} (or, if it really is a detection file, remove 'ROI' from its name)."
                     for name, fix in self.misnamed_rois.items()]
        messages += [f"{name}: no detection file matches this ROI file. ROI files must be named "
                     f"{{DETECTION_FILE_NAME}}_ROI*.csv, e.g. cell1_ROI_1.csv for cell1.csv."
                     for name in self.unmatched_rois]
        if not self.detections:
            messages.append("No detection file: add at least one localisation file "
                            f"({', '.join(formats.DETECTION_EXTENSIONS)}).")
        return messages


def plan_upload(names: Sequence[str]) -> UploadPlan:
    """Sort file names into detection files and their ROI files by the naming rule."""
    plan = UploadPlan()
    seen: set[str] = set()
    roi_names, detection_names = [], []
    for name in names:
        if name in seen:
            plan.rejected[name] = "the same file name appears twice; rename one of them"
            continue
        seen.add(name)
        suffix = Path(name).suffix.lower()
        if rois.is_roi_filename(name):
            roi_names.append(name)
        elif suffix in formats.DETECTION_EXTENSIONS:
            detection_names.append(name)
        else:
            plan.rejected[name] = (f"'{suffix or 'no extension'}' is not a supported file type. Detection files: "
                                   f"{', '.join(formats.DETECTION_EXTENSIONS)}; ROI files: "
                                   "{DETECTION_FILE_NAME}_ROI*.csv")
    plan.misnamed_rois = {name: fix for name in detection_names
                          if (fix := rois.misnamed_roi_fix(name, detection_names)) is not None}
    detection_names = [name for name in detection_names if name not in plan.misnamed_rois]
    plan.detections, plan.unmatched_rois = rois.match_roi_files(detection_names, roi_names)
    return plan


@dataclass
class FileAnalysis:
    """Everything computed from one detection file and its ROIs (nothing written yet)."""
    name: str
    table: object                 # compute.table.LocalisationTable, nm
    polygons: list                # shapely polygons, nm
    roi_records: list[dict]
    grid: object                  # compute.tiles.TileGrid
    fingerprints: object          # compute.similarity.FileFingerprints
    stats: dict
    tile_rows: list[dict]
    warnings: list[str]
    sha256: str


@dataclass
class _ProcessedFile:
    analysis: FileAnalysis
    key: str
    size_bytes: int
    pixel_size_nm: float | None


def _seed_for(sha256: str) -> int:
    """Deterministic thinning seed from the file's content."""
    return int(sha256[:8], 16)


def _read_rois(roi_files: list[StagedFile], table, pixel_size_nm) -> tuple[list, list[dict], list[str]]:
    polygons, records, warnings = [], [], []
    for index, roi_file in enumerate(roi_files, start=1):
        vertices = rois.read_roi_vertices(roi_file.path, display_name=roi_file.name)
        roi = rois.roi_polygon(vertices, table.x, table.y, name=roi_file.name, render_pixel_nm=pixel_size_nm)
        polygons.append(roi.polygon)
        warnings += [f"{roi_file.name}: {w}" for w in roi.warnings]
        records.append(dict(index=index, name=roi_file.name, unit=roi.unit, area_um2=roi.polygon.area / 1e6,
                            vertices=roi.vertices_nm.tolist(), has_original=True))
    return polygons, records, warnings


def _require_spread(name: str, table) -> None:
    """IngestError when the localisations cannot outline an area: one point, or all on one x or y."""
    n = len(table)
    if n < 3:
        raise IngestError(name, f"{name}: the file holds only {n} localisation{'s' if n > 1 else ''}; at least 3 "
                          "spread over an area are needed to measure and tile it. Fix: upload the complete table "
                          "exported by the localisation software.")
    for axis, values in (("x", table.x), ("y", table.y)):
        if values.min() == values.max():
            raise IngestError(name, f"{name}: all {n:,} localisations have the same {axis} ({values[0]:g} nm), so "
                              "they cover no area. Fix: check that the x and y columns hold the coordinates and "
                              "export the table again.")


def _require_tileable_extent(name: str, table) -> None:
    """IngestError when the localisations span more than one tile grid may (``tiles.check_grid_size``),
    checked on their bounds before anything else is computed: a few rows far apart must not make the
    server allocate millions of tiles."""
    bounds = (float(table.x.min()), float(table.y.min()), float(table.x.max()), float(table.y.max()))
    try:
        tiles.check_grid_size([bounds])
    except tiles.GridTooLarge as error:
        raise IngestError(name, f"{name}: cannot tile the area of its localisations: {error}") from error


def _check_plausible(name: str, table, pixel_size_nm: float | None) -> None:
    """Refuse a 'detection file' that is too small to be one, or whose coordinates look like pixels."""
    n_columns = 2 + sum(getattr(table, column) is not None for column in OPTIONAL_COLUMNS)
    problem = plausibility.too_few_problem(len(table), n_columns)
    if problem is None:
        check = plausibility.check_coordinates(table.x, table.y, table.precision)
        problem = plausibility.pixel_problem(check, pixel_size_nm)
    if problem:
        raise IngestError(name, f"{name} {problem}")


def analyse_file(detection: StagedFile, roi_files: list[StagedFile], *, pixel_size_nm: float | None = None,
                 thinning_targets=similarity.THINNING_TARGETS_PER_UM2, thinning_repeats: int = 1,
                 thinning_mode: str = "tile") -> FileAnalysis:
    """Read, check, tile, fingerprint and measure one detection file. Raises IngestError naming the file."""
    try:
        table = formats.read_localisations(detection.path, pixel_size_nm=pixel_size_nm, display_name=detection.name)
        if len(table) == 0:
            raise IngestError(detection.name, "no localisations left after dropping invalid rows.")
        _require_spread(detection.name, table)
        _require_tileable_extent(detection.name, table)
        _check_plausible(detection.name, table, pixel_size_nm)
        polygons, roi_records, warnings = _read_rois(roi_files, table, pixel_size_nm)
    except (formats.FormatError, rois.RoiError) as error:
        raise IngestError(getattr(error, "file", None) or detection.name, str(error)) from error
    roi_source = "file"
    if not polygons:
        hull = rois.auto_roi(table.x, table.y)
        polygons, roi_source = [hull], "auto"
        roi_records = [dict(index=1, name="auto (convex hull of all localisations)", unit="nm",
                            area_um2=hull.area / 1e6, vertices=np.asarray(hull.exterior.coords)[:-1].tolist(),
                            has_original=False)]
    try:
        grid = tiles.grid_tiles(polygons)
    except tiles.GridTooLarge as error:
        regions = "the convex hull of its localisations (no ROI file)" if roi_source == "auto" else "its ROIs"
        raise IngestError(detection.name, f"{detection.name}: cannot tile {regions}: {error}") from error
    sha = sha256_of(detection.path)
    prints = similarity.file_fingerprints(table.x, table.y, grid, targets=thinning_targets, seed=_seed_for(sha),
                                          n_repeats=thinning_repeats, thinning=thinning_mode)
    file_stats = stats.file_statistics(table.x, table.y, table.precision, polygons, grid, prints,
                                       roi_source=roi_source, precision_source=table.precision_source,
                                       frame=table.frame)
    _, offsets = tiles.points_in_tiles(table.x, table.y, grid)
    kept = np.zeros(len(grid.origins), dtype=bool)
    kept[prints.tile_index_unthinned] = True
    tile_rows = [dict(index=int(k), x0_nm=float(x0), y0_nm=float(y0), roi_index=int(grid.roi_index[k]) + 1,
                      n_locs=int(offsets[k + 1] - offsets[k]), kept=bool(kept[k]))
                 for k, (x0, y0) in enumerate(grid.origins)]
    return FileAnalysis(name=detection.name, table=table, polygons=polygons, roi_records=roi_records, grid=grid,
                        fingerprints=prints, stats=file_stats, tile_rows=tile_rows,
                        warnings=list(table.warnings) + warnings, sha256=sha)


def _stage_file(detection: StagedFile, roi_files: list[StagedFile], folder: Path,
                pixel_size_nm: float | None, settings) -> _ProcessedFile:
    """Analyse one detection file and write its original, ROI files and normalised copy into ``folder``."""
    analysis = analyse_file(detection, roi_files, pixel_size_nm=pixel_size_nm,
                            thinning_targets=settings.thinning_targets, thinning_repeats=settings.thinning_repeats,
                            thinning_mode=settings.thinning_mode)
    folder.mkdir(parents=True)
    shutil.copyfile(detection.path, folder / "original")
    for index, roi_file in enumerate(roi_files, start=1):
        shutil.copyfile(roi_file.path, folder / f"roi_{index}.csv")
    write_normalised(folder, analysis.table)
    return _ProcessedFile(analysis=analysis, key=folder.name, size_bytes=detection.path.stat().st_size,
                          pixel_size_nm=pixel_size_nm)


def _dataset_row(meta: dict, owner: User, visibility: str, is_simulated: bool, key: str,
                 processed: list[_ProcessedFile]) -> Dataset:
    file_stats = [p.analysis.stats for p in processed]
    area = sum(s.get("roi_area_um2") or 0.0 for s in file_stats)
    in_roi = sum(s.get("n_locs_roi") or 0 for s in file_stats)
    return Dataset(owner_id=owner.id, visibility=visibility, storage_key=key, is_simulated=is_simulated,
                   n_files=len(processed), n_locs=sum(len(p.analysis.table) for p in processed),
                   n_tiles=sum(s.get("n_tiles_kept") or 0 for s in file_stats),
                   density=(in_roi / area) if area > 0 else None, **meta)


def _file_row(p: _ProcessedFile) -> DataFile:
    a = p.analysis
    data_file = DataFile(name=a.name, storage_key=p.key, format=a.table.source_format, sha256=a.sha256,
                         size_bytes=p.size_bytes, pixel_size_nm=p.pixel_size_nm, n_locs=len(a.table),
                         n_dropped=a.table.n_dropped, density=a.stats.get("density"), coverage=a.stats.get("coverage"),
                         precision_median=a.stats.get("precision_median"),
                         precision_nena_nm=a.stats.get("precision_nena_nm"), roi_source=a.stats.get("roi_source", "file"),
                         stats_json=json.dumps(a.stats), warnings_json=json.dumps(a.warnings),
                         fingerprints=pack_fingerprints(a.fingerprints))
    data_file.rois = [Roi(index=r["index"], name=r["name"], unit=r["unit"], area_um2=r["area_um2"],
                          vertices_json=json.dumps(r["vertices"]), has_original=r["has_original"]) for r in a.roi_records]
    data_file.tiles = [Tile(**row) for row in a.tile_rows]
    return data_file


def new_ingest_key() -> str:
    """A fresh ingest key (also the dataset's storage key): 32 hex digits."""
    return uuid.uuid4().hex


def _lock_path(staging_root: Path, key: str) -> Path:
    if not INGEST_KEY_RE.match(str(key)):
        raise ValueError(f"not an ingest key: {key!r}")
    return Path(staging_root) / f"ingest-{key}.lock"


def _is_cancelled(handle) -> bool:
    return os.fstat(handle.fileno()).st_size > 0


def _hold_lock(lock_path: Path, *, wait_s: float | None = None, mark: bytes = b""):
    """The open lock file at ``lock_path``, exclusively flock-ed; None if another process holds it
    (after waiting up to ``wait_s`` seconds; None = do not wait). ``mark`` is appended first.

    Whoever removes a lock file does so while holding it; a lock taken on a file that was removed or
    replaced meanwhile is dropped and taken again on the current file.
    """
    deadline = time.monotonic() + (wait_s or 0.0)
    while True:
        handle = open(lock_path, "ab")
        try:
            if mark:
                handle.write(mark)
                handle.flush()
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError:
                    if wait_s is None or time.monotonic() > deadline:
                        handle.close()
                        return None
                    time.sleep(CANCEL_POLL_SECONDS)
            try:
                current = os.stat(lock_path).st_ino == os.fstat(handle.fileno()).st_ino
            except FileNotFoundError:
                current = False
        except BaseException:
            handle.close()
            raise
        if current:
            return handle
        handle.close()


def ingest_dataset(files: Sequence[StagedFile], metadata: dict, owner: User, *, visibility: str = "private",
                   shared_with: Sequence[str] = (), pixel_size_nm: float | None = None, is_simulated: bool = False,
                   progress: Progress | None = None, settings=None, key: str | None = None,
                   staging_root: Path | None = None) -> Dataset:
    """Ingest one dataset atomically and return it (committed). See the module docstring.

    ``key`` (default: a new one) becomes the dataset's storage key and names the ingest for
    ``cancel_ingest``; ``staging_root`` (default ``settings.staging_dir``) is where the staging folder
    ``ingest-<key>`` and its lock file are written (the upload page uses the user's own staging folder,
    so the copy counts against the user's quota). Raises IngestCancelled if cancelled before the commit.
    """
    settings = settings or settings_of()
    key = key or new_ingest_key()
    staging_root = Path(staging_root or settings.staging_dir)
    lock_path = _lock_path(staging_root, key)
    staging_root.mkdir(parents=True, exist_ok=True)
    lock = _hold_lock(lock_path)
    if lock is None:
        raise IngestCancelled(f"ingest {key} is running already")
    with lock:
        try:
            if _is_cancelled(lock):
                raise IngestCancelled("the upload was cancelled before it started")

            def report(fraction: float, message: str) -> None:
                if _is_cancelled(lock):
                    raise IngestCancelled("the upload was cancelled")
                if progress:
                    progress(fraction, message)

            return _ingest_locked(files, metadata, owner, visibility=visibility, shared_with=shared_with,
                                  pixel_size_nm=pixel_size_nm, is_simulated=is_simulated, report=report,
                                  settings=settings, key=key, staging=staging_root / f"ingest-{key}")
        finally:
            lock_path.unlink(missing_ok=True)      # before the lock is released: a waiter sees the end


def _ingest_locked(files, metadata, owner, *, visibility, shared_with, pixel_size_nm, is_simulated, report,
                   settings, key, staging) -> Dataset:
    meta = clean_metadata(metadata)
    visibility, share_names = clean_visibility(visibility, shared_with)
    if title_taken(meta["title"]):
        raise MetadataError({"title": f"a dataset titled '{meta['title']}' exists already; choose a unique title"})
    share_users = resolve_share_users(share_names, owner)
    by_name = {f.name: f for f in files}
    plan = plan_upload([f.name for f in files])
    if not plan.ok:
        first = next(iter([*plan.rejected, *plan.misnamed_rois, *plan.unmatched_rois]), None)
        raise IngestError(first, " ".join(plan.problems()))
    pixel = pixel_size_nm or meta.get("pixel_size_nm")
    final = FileStore(settings).dataset_dir(key)
    moved = False
    started = time.perf_counter()
    log.info("ingest %s started: user %s, title %r, %d file(s)", key, owner.username, meta["title"], len(files))
    try:
        processed = []
        names = list(plan.detections)
        for number, name in enumerate(names):
            report(number / len(names), f"Reading and analysing {name} ({number + 1} of {len(names)})")
            roi_files = [by_name[r] for r in plan.detections[name]]
            processed.append(_stage_file(by_name[name], roi_files, staging / uuid.uuid4().hex, pixel, settings))
        report(0.95, "Saving the dataset")          # the last point where a cancel stops the ingest
        dataset = _dataset_row(meta, owner, visibility, is_simulated, key, processed)
        dataset.files = [_file_row(p) for p in processed]
        dataset.shares = [DatasetShare(user_id=user.id) for user in share_users]
        db.session.add(dataset)
        bump_bank_version()
        db.session.flush()
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staging, final)
        moved = True
        db.session.commit()
    except BaseException as exc:
        db.session.rollback()
        shutil.rmtree(staging, ignore_errors=True)
        if moved:
            shutil.rmtree(final, ignore_errors=True)
        log.warning("ingest %s failed after %.1f s, nothing kept: %s: %s", key,
                    time.perf_counter() - started, type(exc).__name__, exc)
        raise
    log.info("ingest %s done in %.1f s: dataset %d, %d file(s), %d localisations", key,
             time.perf_counter() - started, dataset.id, len(processed), dataset.n_locs)
    try:
        report(1.0, f"Done: {len(processed)} file(s), {dataset.n_locs:,} localisations")
    except IngestCancelled:
        pass                                         # committed already: the dataset stays
    return dataset


def cancel_ingest(key: str, owner: User, *, staging_root: Path | None = None, settings=None,
                  wait_s: float = 30.0) -> Dataset | None:
    """Cancel ingest ``key`` of ``owner``; the committed Dataset if it finished before, else None.

    Marks the ingest cancelled (from then on it cannot commit), waits up to ``wait_s`` seconds until no
    process holds its lock (the job was killed, stopped at its next step or finished), then removes
    its staging folder and any store folder without a dataset row. Raises IngestStillRunning if the
    ingest is still running after ``wait_s`` (it may have been committing when the mark was set).
    """
    settings = settings or settings_of()
    staging_root = Path(staging_root or settings.staging_dir)
    lock_path = _lock_path(staging_root, key)
    staging_root.mkdir(parents=True, exist_ok=True)
    lock = _hold_lock(lock_path, wait_s=wait_s, mark=CANCEL_MARK)
    if lock is None:
        raise IngestStillRunning("the upload is still being stopped")
    with lock:
        db.session.expire_all()
        dataset = db.session.scalar(select(Dataset).where(Dataset.storage_key == key, Dataset.owner_id == owner.id))
        shutil.rmtree(staging_root / f"ingest-{key}", ignore_errors=True)
        if dataset is None and db.session.scalar(select(Dataset.id).where(Dataset.storage_key == key)) is None:
            shutil.rmtree(FileStore(settings).dataset_dir(key), ignore_errors=True)
        lock_path.unlink(missing_ok=True)
    return dataset


def sweep_orphans(settings, *, min_age_s: float = 3600.0) -> list[str]:
    """Remove what an interrupted ingest can leave: staging folders and lock files (in the staging
    folder and in every user's upload folder), and store folders that no dataset row owns.

    Leftovers of an ingest whose lock file is still there are removed as soon as that lock is free
    (the process died), at any age; a folder without a lock file only when older than ``min_age_s``.
    Nothing of an ingest that is running (its lock is held) is touched.
    """
    staging = Path(settings.staging_dir)
    roots = [staging] + sorted(p for p in (staging / "uploads").glob("*") if p.is_dir())
    removed = []
    for root in roots:
        removed += remove_dead_ingests(root, settings)
    now = time.time()
    known = set(db.session.scalars(select(Dataset.storage_key)))
    live = {p.name[len("ingest-"):-len(".lock")] for root in roots for p in root.glob("ingest-*.lock")}
    candidates = [(p, p.name[len("ingest-"):]) for root in roots for p in root.glob("ingest-*") if p.is_dir()]
    candidates += [(p, p.name) for p in Path(settings.store_dir).iterdir() if p.is_dir() and p.name not in known]
    for folder, key in candidates:
        if key not in live and folder.exists() and now - folder.stat().st_mtime > min_age_s:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(str(folder))
    return removed


def remove_dead_ingests(staging_root: Path, settings) -> list[str]:
    """Remove the staging folder, lock file and uncommitted store folder of every ingest under
    ``staging_root`` whose lock file is not held by a process (it was killed). Returns the folders removed."""
    removed = []
    for lock_path in sorted(Path(staging_root).glob("ingest-*.lock")):
        key = lock_path.name[len("ingest-"):-len(".lock")]
        if not INGEST_KEY_RE.match(key):
            continue
        lock = _hold_lock(lock_path)
        if lock is None:
            continue                                   # running
        with lock:
            folders = [Path(staging_root) / f"ingest-{key}"]
            if db.session.scalar(select(Dataset.id).where(Dataset.storage_key == key)) is None:
                folders.append(FileStore(settings).dataset_dir(key))
            for folder in folders:
                if folder.exists():
                    shutil.rmtree(folder, ignore_errors=True)
                    removed.append(str(folder))
            lock_path.unlink(missing_ok=True)
    return removed
