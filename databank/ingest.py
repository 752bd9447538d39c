"""Atomic ingest: stage, validate every file, then commit in one transaction.

Every detection file is read with ``compute.formats``, its ``{stem}_ROI*.csv`` polygons are matched
and unit-checked, the file is tiled (3 x 3 um), fingerprinted (unthinned and thinned) and measured.
All of that is written into a private staging folder first. Only when every file has passed are the
database rows added and the staging folder renamed into the store, then the transaction commits.
Any failure removes the staging folder and rolls back: nothing half written remains.
"""

from __future__ import annotations

import json
import os
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


class IngestError(ValueError):
    """An upload that cannot be ingested. ``file`` is the user's file name (None if not file-specific)."""

    def __init__(self, file: str | None, message: str):
        self.file = file
        self.message = message
        super().__init__(f"{file}: {message}" if file and not message.startswith(file) else message)


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
                 thinning_targets=similarity.THINNING_TARGETS_PER_UM2) -> FileAnalysis:
    """Read, check, tile, fingerprint and measure one detection file. Raises IngestError naming the file."""
    try:
        table = formats.read_localisations(detection.path, pixel_size_nm=pixel_size_nm, display_name=detection.name)
        if len(table) == 0:
            raise IngestError(detection.name, "no localisations left after dropping invalid rows.")
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
    grid = tiles.grid_tiles(polygons)
    sha = sha256_of(detection.path)
    prints = similarity.file_fingerprints(table.x, table.y, grid, targets=thinning_targets, seed=_seed_for(sha))
    file_stats = stats.file_statistics(table.x, table.y, table.precision, polygons, grid, prints,
                                       roi_source=roi_source, precision_source=table.precision_source)
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
                            thinning_targets=settings.thinning_targets)
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
                         precision_median=a.stats.get("precision_median"), roi_source=a.stats.get("roi_source", "file"),
                         stats_json=json.dumps(a.stats), warnings_json=json.dumps(a.warnings),
                         fingerprints=pack_fingerprints(a.fingerprints))
    data_file.rois = [Roi(index=r["index"], name=r["name"], unit=r["unit"], area_um2=r["area_um2"],
                          vertices_json=json.dumps(r["vertices"]), has_original=r["has_original"]) for r in a.roi_records]
    data_file.tiles = [Tile(**row) for row in a.tile_rows]
    return data_file


def ingest_dataset(files: Sequence[StagedFile], metadata: dict, owner: User, *, visibility: str = "private",
                   shared_with: Sequence[str] = (), pixel_size_nm: float | None = None, is_simulated: bool = False,
                   progress: Progress | None = None, settings=None) -> Dataset:
    """Ingest one dataset atomically and return it (committed). See the module docstring."""
    settings = settings or settings_of()
    report = progress or (lambda fraction, message: None)
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
    dataset_key = uuid.uuid4().hex
    staging = Path(settings.staging_dir) / f"ingest-{dataset_key}"
    final = FileStore(settings).dataset_dir(dataset_key)
    moved = False
    try:
        processed = []
        names = list(plan.detections)
        for number, name in enumerate(names):
            report(number / len(names), f"Reading and analysing {name} ({number + 1} of {len(names)})")
            roi_files = [by_name[r] for r in plan.detections[name]]
            processed.append(_stage_file(by_name[name], roi_files, staging / uuid.uuid4().hex, pixel, settings))
        report(0.95, "Saving the dataset")
        dataset = _dataset_row(meta, owner, visibility, is_simulated, dataset_key, processed)
        dataset.files = [_file_row(p) for p in processed]
        dataset.shares = [DatasetShare(user_id=user.id) for user in share_users]
        db.session.add(dataset)
        bump_bank_version()
        db.session.flush()
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staging, final)
        moved = True
        db.session.commit()
    except BaseException:
        db.session.rollback()
        shutil.rmtree(staging, ignore_errors=True)
        if moved:
            shutil.rmtree(final, ignore_errors=True)
        raise
    report(1.0, f"Done: {len(processed)} file(s), {dataset.n_locs:,} localisations")
    return dataset


def sweep_orphans(settings, *, min_age_s: float = 3600.0) -> list[str]:
    """Remove what an interrupted ingest can leave: staging folders, and store folders that no
    dataset row owns. Only folders older than ``min_age_s`` are touched (an ingest may be running)."""
    now = time.time()
    known = set(db.session.scalars(select(Dataset.storage_key)))
    removed = []
    candidates = list(Path(settings.staging_dir).glob("ingest-*"))
    candidates += [p for p in Path(settings.store_dir).iterdir() if p.name not in known]
    for folder in candidates:
        if folder.is_dir() and now - folder.stat().st_mtime > min_age_s:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(str(folder))
    return removed
