"""Ingest: numbers against independent references, and atomicity on failure."""

from __future__ import annotations

import hashlib
import os

import numpy as np
import pandas as pd
import pytest
import shapely
from scipy.spatial import ConvexHull
from sqlalchemy import func, select

from databank.ingest import IngestError, StagedFile, ingest_dataset, plan_upload, sweep_orphans
from databank.metadata import MetadataError
from databank.models import DataFile, Dataset, Roi, Tile, db
from compute import simulate, tiles
from compute.similarity import file_fingerprints
from databank.store import FileStore, pack_fingerprints, unpack_fingerprints

from .conftest import META, rectangle_um, write_csr_file

ROI_A = rectangle_um(0.5, 0.5, 6.5, 6.5)      # 6 x 6 um -> 2 x 2 tiles
ROI_B = rectangle_um(6.8, 0.5, 11.5, 9.8)     # 4.7 x 9.3 um -> 1 x 3 tiles


def staged(paths):
    return [StagedFile(p, p.name) for p in paths]


def counts():
    return tuple(db.session.scalar(select(func.count()).select_from(model)) for model in (Dataset, DataFile, Roi, Tile))


def store_is_empty(settings):
    return not any(settings.store_dir.iterdir()) and not any(settings.staging_dir.iterdir())


def test_ingest_two_rois_statistics_match_independent_computation(app, settings, users, tmp_path):
    paths = write_csr_file(tmp_path / "up", "cell1", rois=[ROI_A, ROI_B])
    dataset = ingest_dataset(staged(paths), META, users["alice"])
    assert (dataset.n_files, len(dataset.files[0].rois)) == (1, 2)
    data_file = dataset.files[0]
    assert [t.roi_index for t in data_file.tiles] == [1, 1, 1, 1, 2, 2, 2]

    raw = pd.read_csv(paths[0])
    x, y = raw["x [nm]"].to_numpy(), raw["y [nm]"].to_numpy()
    union = shapely.union_all([shapely.Polygon(np.array(ROI_A) * 1000), shapely.Polygon(np.array(ROI_B) * 1000)])
    inside = shapely.contains_xy(union, x, y)
    assert data_file.n_locs == len(raw)
    assert data_file.stats["n_locs_roi"] == inside.sum()
    assert data_file.density == pytest.approx(inside.sum() / (union.area / 1e6), rel=1e-9)
    assert data_file.precision_median == pytest.approx(np.median(raw["uncertainty [nm]"][inside]), abs=1e-6)
    for tile in data_file.tiles:   # tile counts against brute-force masks on the original coordinates
        mask = (x >= tile.x0_nm) & (x < tile.x0_nm + 3000) & (y >= tile.y0_nm) & (y < tile.y0_nm + 3000)
        assert tile.n_locs == mask.sum()
        assert tile.kept == (mask.sum() >= 270)

    store = FileStore(settings)
    assert hashlib.sha256(store.original_path(data_file).read_bytes()).hexdigest() == \
        hashlib.sha256(paths[0].read_bytes()).hexdigest() == data_file.sha256
    locs = store.load_locs(data_file)
    np.testing.assert_array_equal(locs.x, x.astype(np.float32))
    assert store.roi_original_path(data_file, data_file.rois[0]).read_bytes() == paths[1].read_bytes()
    assert not any(settings.staging_dir.iterdir())


def test_file_without_roi_falls_back_to_convex_hull(app, users, tmp_path):
    paths = write_csr_file(tmp_path / "up", "noroi")
    dataset = ingest_dataset(staged(paths), META, users["alice"])
    data_file = dataset.files[0]
    assert data_file.roi_source == "auto" and data_file.rois[0].has_original is False
    raw = pd.read_csv(paths[0])
    hull = ConvexHull(raw[["x [nm]", "y [nm]"]].to_numpy())
    assert data_file.rois[0].area_um2 == pytest.approx(hull.volume / 1e6, rel=1e-9)
    assert data_file.stats["density"] == pytest.approx(len(raw) / (hull.volume / 1e6), rel=1e-9)
    assert 4 <= data_file.stats["n_tiles"] <= 9   # corners of the 12 x 12 um field are cut by the hull


def _assert_nothing_written(settings, before):
    assert counts() == before
    assert store_is_empty(settings)


@pytest.mark.parametrize("bad", ["corrupt", "unmatched_roi", "wrong_type", "duplicate_title", "bad_doi"])
def test_failed_ingest_leaves_nothing_behind(app, settings, users, tmp_path, bad):
    good = write_csr_file(tmp_path / "up", "good", rois=[ROI_A])
    ingest_dataset(staged(write_csr_file(tmp_path / "first", "first")), dict(META, title="Existing"), users["bob"])
    before = counts()
    files, meta = staged(good), dict(META)
    if bad == "corrupt":
        broken = tmp_path / "up" / "broken.csv"
        broken.write_bytes(os.urandom(4000))
        files.append(StagedFile(broken, "broken.csv"))
    elif bad == "unmatched_roi":
        extra = tmp_path / "up" / "other_ROI_1.csv"
        extra.write_text("X,Y\n0,0\n1,0\n1,1\n")
        files.append(StagedFile(extra, extra.name))
    elif bad == "wrong_type":
        image = tmp_path / "up" / "image.png"
        image.write_bytes(b"\x89PNG....")
        files.append(StagedFile(image, image.name))
    elif bad == "duplicate_title":
        meta["title"] = "existing"
    elif bad == "bad_doi":
        meta["doi"] = "not a doi"
    error_type = MetadataError if bad in ("duplicate_title", "bad_doi") else IngestError
    with pytest.raises(error_type) as info:
        ingest_dataset(files, meta, users["alice"])
    if error_type is IngestError:
        expected = {"corrupt": "broken.csv", "unmatched_roi": "other_ROI_1.csv", "wrong_type": "image.png"}[bad]
        assert info.value.file == expected and expected in str(info.value)
    db.session.rollback()
    assert counts() == before
    assert not any(settings.staging_dir.iterdir())
    assert len(list(settings.store_dir.iterdir())) == 1    # only the first dataset's folder


def test_failure_in_second_file_rolls_back_first(app, settings, users, tmp_path):
    good = write_csr_file(tmp_path / "up", "a_good", rois=[ROI_A])
    bad = tmp_path / "up" / "z_bad.csv"
    bad.write_text('"frame","x [nm]","y [nm]"\n')          # header only
    with pytest.raises(IngestError, match="z_bad.csv"):
        ingest_dataset(staged(good) + [StagedFile(bad, bad.name)], META, users["alice"])
    assert counts() == (0, 0, 0, 0)
    assert store_is_empty(settings)


def test_plan_upload_matches_rois_and_reports_problems():
    plan = plan_upload(["cell1.csv", "cell1_ROI_2.csv", "cell1_ROI_10.csv", "cell10.csv", "cell10_ROI_1.csv",
                        "stray_ROI_1.csv", "notes.docx"])
    assert plan.detections == {"cell1.csv": ["cell1_ROI_2.csv", "cell1_ROI_10.csv"], "cell10.csv": ["cell10_ROI_1.csv"]}
    assert plan.unmatched_rois == ["stray_ROI_1.csv"]
    assert list(plan.rejected) == ["notes.docx"]
    assert not plan.ok and len(plan.problems()) == 2


def test_sweep_removes_only_old_orphans(app, settings, users, tmp_path):
    dataset = ingest_dataset(staged(write_csr_file(tmp_path / "up", "keep", density=60, size_nm=6000)), META, users["alice"])
    orphan_stage = settings.staging_dir / "ingest-dead"
    orphan_store = settings.store_dir / "deadbeef"
    fresh = settings.staging_dir / "ingest-running"
    for folder in (orphan_stage, orphan_store, fresh):
        folder.mkdir()
    old = os.stat(orphan_stage).st_mtime - 7200
    os.utime(orphan_stage, (old, old))
    os.utime(orphan_store, (old, old))
    os.utime(settings.store_dir / dataset.storage_key, (old, old))
    removed = sweep_orphans(settings)
    assert sorted(removed) == sorted([str(orphan_stage), str(orphan_store)])
    assert fresh.exists() and (settings.store_dir / dataset.storage_key).exists()


def test_stored_fingerprints_round_trip():
    pattern = simulate.simulate_csr(150, 9000, 9000, seed=3)
    grid = tiles.grid_tiles([shapely.box(0, 0, 9000, 9000)])
    original = file_fingerprints(pattern.x, pattern.y, grid, targets=(30, 100), seed=1)
    restored = unpack_fingerprints(pack_fingerprints(original))
    assert sorted(restored.thinned) == [30, 100]
    pairs = [(original.unthinned, restored.unthinned)] + [(original.thinned[t], restored.thinned[t]) for t in (30, 100)]
    for before, after in pairs:
        np.testing.assert_array_equal(before.hist, after.hist)
        np.testing.assert_array_equal(before.n_locs, after.n_locs)
    np.testing.assert_array_equal(restored.tile_index_thinned[100], original.tile_index_thinned[100])


def test_stored_repeated_thinnings_round_trip_and_old_blobs_read_as_one_thinning():
    pattern = simulate.simulate_csr(150, 9000, 9000, seed=3)
    grid = tiles.grid_tiles([shapely.box(0, 0, 9000, 9000)])
    original = file_fingerprints(pattern.x, pattern.y, grid, targets=(30, 100), seed=1, n_repeats=3)
    restored = unpack_fingerprints(pack_fingerprints(original))
    for target in (30, 100):
        assert len(restored.repeats(target)) == 3
        for before, after in zip(original.repeats(target), restored.repeats(target)):
            np.testing.assert_array_equal(before.hist, after.hist)
            np.testing.assert_array_equal(before.n_locs, after.n_locs)
    single = file_fingerprints(pattern.x, pattern.y, grid, targets=(30, 100), seed=1)
    old_blob = pack_fingerprints(single)        # what banks stored before repeats existed
    assert unpack_fingerprints(old_blob).extra_repeats == {}
    np.testing.assert_array_equal(unpack_fingerprints(old_blob).thinned[30].hist, restored.thinned[30].hist)


def test_ingest_stores_nena_precision_of_a_blinking_file(app, users, tmp_path):
    from databank.datasets import file_record
    from databank.demo import write_thunderstorm_csv
    folder = tmp_path / "blink"
    folder.mkdir()
    pattern = simulate.simulate_blinking(4000, 12_000.0, 12_000.0, precision_nm=12.0, n_frames=4000, seed=8)
    write_thunderstorm_csv(folder / "blink.csv", pattern)
    dataset = ingest_dataset(staged([folder / "blink.csv"]), META, users["alice"])
    data_file = dataset.files[0]
    assert data_file.precision_nena_nm == pytest.approx(12.0, rel=0.10)
    assert data_file.stats["nena_n_pairs"] > 1000
    assert file_record(data_file)["precision_nena_nm"] == data_file.precision_nena_nm
    csr = ingest_dataset(staged(write_csr_file(tmp_path / "csr", "cell")), dict(META, title="no frames pairs"),
                         users["alice"])
    assert csr.files[0].precision_nena_nm is None      # frames at random: too few adjacent-frame pairs


def test_misnamed_roi_file_is_flagged_by_the_plan_and_refused(app, settings, users, tmp_path):
    """Issue 12 item 1: 'cell7-ROI1.csv' next to 'cell7.csv' is not a 5-localisation detection file."""
    paths = write_csr_file(tmp_path / "up", "cell7")
    polygon = tmp_path / "up" / "cell7-ROI1.csv"
    polygon.write_text("X,Y\n1,1\n5,1\n5,5\n3,6\n1,5\n")
    plan = plan_upload(["cell7.csv", "cell7-ROI1.csv"])
    assert plan.misnamed_rois == {"cell7-ROI1.csv": "cell7_ROI_1.csv"} and not plan.ok
    assert list(plan.detections) == ["cell7.csv"]
    (problem,) = plan.problems()
    assert "cell7_ROI_1.csv" in problem and "{DETECTION_FILE_NAME}_ROI*.csv" in problem
    with pytest.raises(IngestError) as info:
        ingest_dataset(staged(paths + [polygon]), META, users["alice"])
    assert info.value.file == "cell7-ROI1.csv"
    # a polygon under a name without 'ROI' is still refused: too few localisations
    renamed = tmp_path / "up" / "cell7b.csv"
    polygon.rename(renamed)
    with pytest.raises(IngestError, match=r"cell7b.csv holds only 5 localisation\(s\).*_ROI\*\.csv"):
        ingest_dataset(staged(paths + [renamed]), META, users["alice"])
    assert counts() == (0, 0, 0, 0) and store_is_empty(settings)


def test_pixel_coordinates_under_a_plain_header_are_refused(app, settings, users, tmp_path):
    """Issue 12 item 2: x,y in camera pixels (107 nm) with no unit are not read as nm, even with a pixel size."""
    pattern = simulate.simulate_csr(120.0, 15_000, 15_000, seed=4)
    pixels = tmp_path / "pixels.csv"
    pd.DataFrame({"x": pattern.x / 107.0, "y": pattern.y / 107.0}).to_csv(pixels, index=False)
    with pytest.raises(IngestError) as info:
        ingest_dataset(staged([pixels]), dict(META, pixel_size_nm=107), users["alice"], pixel_size_nm=107.0)
    message = str(info.value)
    assert info.value.file == "pixels.csv" and "look like camera pixels" in message
    assert "107 nm (the pixel size in the form)" in message and "x [px]" in message
    assert counts() == (0, 0, 0, 0) and store_is_empty(settings)
    # the fix the message names works: the same numbers with the unit in the header
    pd.DataFrame({"x [px]": pattern.x / 107.0, "y [px]": pattern.y / 107.0}).to_csv(pixels, index=False)
    dataset = ingest_dataset(staged([pixels]), META, users["alice"], pixel_size_nm=107.0)
    assert dataset.files[0].n_locs == len(pattern.x)
    assert dataset.files[0].density == pytest.approx(len(pattern.x) / (dataset.files[0].rois[0].area_um2), rel=1e-6)
