"""Verification of the similarity search on a simulated bank with known classes (docs/SCIENCE.md §2).

Three organisation classes, each at three densities (two datasets per density) and spread over
three "cell types":

- ``csr``: complete spatial randomness;
- ``small_dense``: small dense clusters (Thomas, sigma 30 nm, 70 % of localisations clustered);
- ``large_sparse``: large sparse clusters (Thomas, sigma 120 nm, 60 % clustered).

Inside a class the datasets differ in density the way real acquisitions of the same structure do:
the same cluster pattern (same cluster centre density and size) seen with a different detection or
labelling efficiency, i.e. more or fewer localisations per cluster. That is exactly the difference
thinning removes (docs/SCIENCE.md §2.3: the thinned lambda is density-independent), so

- thinned to 100 loc/um², the search ranks same-class datasets first: precision at k = class size - 1
  (the other members of the query's class) >= 0.9;
- unthinned, lambda inside a class grows with the density difference (docs/SCIENCE.md §2.6: 300 vs 60
  loc/um² gives lambda ~ 8 unthinned and ~ 0.1 thinned).

Fields are small (2 files x 6 x 6 um = 8 tiles per dataset) to keep the test fast. Fingerprints are
computed with the same functions the ingest uses and inserted directly (no file parsing involved).
"""

from __future__ import annotations

import uuid
import zlib
from itertools import combinations

import numpy as np
import pytest
from shapely.geometry import box

from compute import similarity, simulate, tiles
from config import load_settings
from databank import search
from databank import compare
from databank import similarity_index
from databank.core import make_data_app
from tests.databases import database_overrides
from databank.models import DataFile, Dataset, bump_bank_version, db
from databank.store import pack_fingerprints
from databank.users import create_user

FIELD_NM = 6000.0
REFERENCE_DENSITY = 300.0          # cluster parameters below are those at this density
DENSITIES = (150.0, 300.0, 600.0)
PER_DENSITY = 2
CELL_TYPES = ("HeLa", "COS-7", "Jurkat")
CLASSES = {
    "csr": None,
    "small_dense": dict(cluster_radius_nm=30.0, locs_per_cluster=25.0, fraction_clustered=0.7),
    "large_sparse": dict(cluster_radius_nm=120.0, locs_per_cluster=40.0, fraction_clustered=0.6),
}


def simulate_file(organisation: str, density: float, seed: int):
    """One 6 x 6 um field; clustered classes keep their cluster pattern, only localisations per
    cluster scale with density (detection efficiency)."""
    if CLASSES[organisation] is None:
        return simulate.simulate_csr(density, FIELD_NM, FIELD_NM, precision_nm=10.0, seed=seed)
    params = dict(CLASSES[organisation])
    params["locs_per_cluster"] *= density / REFERENCE_DENSITY
    return simulate.simulate_clustered(density, FIELD_NM, FIELD_NM, precision_nm=10.0, seed=seed, **params)


def insert_dataset(owner, title: str, patterns, *, visibility="public", **metadata) -> Dataset:
    """A dataset whose files carry the fingerprints of ``patterns`` (as ingest computes them)."""
    grid = tiles.grid_tiles([box(0.0, 0.0, FIELD_NM, FIELD_NM)])
    files, n_tiles, n_locs = [], 0, 0
    for k, pattern in enumerate(patterns):
        prints = similarity.file_fingerprints(pattern.x, pattern.y, grid, targets=(30, 100), seed=zlib.crc32(title.encode()) + k)
        files.append(DataFile(name=f"cell{k + 1}.csv", storage_key=uuid.uuid4().hex, format="simulated",
                              sha256="0" * 64, size_bytes=0, n_locs=len(pattern),
                              density=len(pattern) / (FIELD_NM ** 2 / 1e6), fingerprints=pack_fingerprints(prints)))
        n_tiles += len(prints.unthinned)
        n_locs += len(pattern)
    dataset = Dataset(owner_id=owner.id, visibility=visibility, storage_key=uuid.uuid4().hex, is_simulated=True,
                      n_files=len(files), n_locs=n_locs, n_tiles=n_tiles,
                      density=n_locs / (len(files) * FIELD_NM ** 2 / 1e6), title=title,
                      modality=metadata.pop("modality", "dSTORM"), software="ThunderSTORM", **metadata)
    dataset.files = files
    db.session.add(dataset)
    bump_bank_version()
    db.session.commit()
    return dataset


@pytest.fixture(scope="module")
def bank(tmp_path_factory):
    settings = load_settings(instance_dir=tmp_path_factory.mktemp("bank") / "instance", seed_demo=False,
                             secret_key="test-secret", **database_overrides())
    app = make_data_app(settings)
    with app.app_context():
        owner = create_user("sim", "sim@example.org", "correct horse battery")
        labels = {}
        seed = 0
        for organisation in CLASSES:
            for density in DENSITIES:
                for rep in range(PER_DENSITY):
                    seed += 1
                    patterns = [simulate_file(organisation, density, 100 * seed + f) for f in range(2)]
                    dataset = insert_dataset(owner, f"{organisation} {density:g} #{rep}", patterns,
                                             protein=f"P-{organisation}", cell_type=CELL_TYPES[seed % 3],
                                             tags=f"simulated, {organisation}")
                    labels[dataset.id] = (organisation, density)
        yield dict(app=app, owner=owner, labels=labels)
        db.session.remove()
        db.engine.dispose()


def test_thinned_search_ranks_same_class_first(bank):
    labels, owner = bank["labels"], bank["owner"]
    k = len(DENSITIES) * PER_DENSITY - 1
    precision = {}
    for dataset_id, (organisation, _) in labels.items():
        rows = search.similar_datasets(owner, dataset_id, target=100)
        assert len(rows) == len(labels) - 1 and all(r["thinned_n_pairs"] > 0 for r in rows)
        means = [r["thinned_mean"] for r in rows]
        assert means == sorted(means)                       # most similar first
        top = [labels[r["dataset_id"]][0] for r in rows[:k]]
        precision[dataset_id] = top.count(organisation) / k
    overall = float(np.mean(list(precision.values())))
    per_class = {c: np.mean([p for d, p in precision.items() if labels[d][0] == c]) for c in CLASSES}
    assert overall >= 0.9, (overall, per_class)
    assert min(per_class.values()) >= 0.8, per_class


def test_unthinned_lambda_grows_with_density_difference(bank):
    labels, owner = bank["labels"], bank["owner"]
    for organisation in CLASSES:
        members = [d for d, (c, _) in labels.items() if c == organisation]
        by_ratio: dict[float, list[tuple[float, float]]] = {}
        for a, b in combinations(members, 2):
            row = next(r for r in search.similar_datasets(owner, a, target=100) if r["dataset_id"] == b)
            ratio = max(labels[a][1], labels[b][1]) / min(labels[a][1], labels[b][1])
            by_ratio.setdefault(ratio, []).append((row["unthinned_mean"], row["thinned_mean"]))
        ratios = sorted(by_ratio)
        assert ratios == [1.0, 2.0, 4.0]
        unthinned = [np.mean([u for u, _ in by_ratio[r]]) for r in ratios]
        thinned = [np.mean([t for _, t in by_ratio[r]]) for r in ratios]
        assert unthinned[0] < unthinned[1] < unthinned[2], (organisation, unthinned)
        assert unthinned[2] > 5.0, (organisation, unthinned)          # far beyond the significance threshold
        # thinning removes the density difference: same-class thinned lambda stays small at every ratio
        assert max(thinned) < 0.5 and thinned[2] < unthinned[2] / 10, (organisation, thinned, unthinned)


def test_metadata_filter_restricts_before_ranking(bank):
    labels, owner = bank["labels"], bank["owner"]
    query = next(iter(labels))
    rows = search.similar_datasets(owner, query, target=100, filters={"cell_type": "HeLa"})
    expected = {d for d in labels if d != query and db.session.get(Dataset, d).cell_type == "HeLa"}
    assert {r["dataset_id"] for r in rows} == expected and rows


def test_own_fingerprints_search_finds_the_class(bank):
    labels, owner = bank["labels"], bank["owner"]
    grid = tiles.grid_tiles([box(0.0, 0.0, FIELD_NM, FIELD_NM)])
    pattern = simulate_file("small_dense", 450.0, seed=99_999)
    prints = similarity.file_fingerprints(pattern.x, pattern.y, grid, targets=(30, 100), seed=5)
    rows = search.search_with_fingerprints(owner, prints, target=100)
    assert len(rows) == len(labels)
    top = [labels[r["dataset_id"]][0] for r in rows[:len(DENSITIES) * PER_DENSITY]]
    assert top.count("small_dense") >= 5


def test_compare_matrix_orders_classes_together(bank):
    labels, owner = bank["labels"], bank["owner"]
    picks = [next(d for d, (c, dens) in labels.items() if c == cls and dens == density)
             for cls in CLASSES for density in (150.0, 600.0)]
    result = compare.compare_datasets(owner, picks, target=100)
    order = [labels[picks[k]][0] for k in result["order"]]
    # each class occupies two neighbouring positions of the hierarchical order
    for cls in CLASSES:
        positions = [k for k, c in enumerate(order) if c == cls]
        assert positions[1] - positions[0] == 1, order
    matrix = np.array(result["thinned_mean"], dtype=float)
    assert np.allclose(matrix, matrix.T) and np.all(np.isfinite(matrix))
    assert set(result["self"]) == {str(p) for p in picks}


def test_index_updates_incrementally_and_matches_full_build(bank):
    owner = bank["owner"]
    before = similarity_index.bank_index()
    added = insert_dataset(owner, "late arrival", [simulate_file("csr", 200.0, 5)], visibility="private",
                           cell_type="HeLa")
    removed_id = next(iter(bank["labels"]))
    removed = db.session.get(Dataset, removed_id)
    db.session.delete(removed)
    bump_bank_version()
    db.session.commit()
    bank["labels"].pop(removed_id)
    after = similarity_index.bank_index()
    assert after is not before and added.id in after.dataset_ids.tolist()
    assert removed_id not in after.dataset_ids.tolist()
    full = similarity_index.build_bank_index(0)
    np.testing.assert_array_equal(after.dataset_ids, full.dataset_ids)
    for choice, tile_set in full.sets.items():
        mine = after.sets[choice]
        np.testing.assert_array_equal(mine.dataset_row, tile_set.dataset_row)
        np.testing.assert_array_equal(mine.file_id, tile_set.file_id)
        width = max(mine.prints.hist.shape[1], tile_set.prints.hist.shape[1])
        pad = lambda h: np.pad(h, ((0, 0), (0, width - h.shape[1])))  # noqa: E731
        np.testing.assert_array_equal(pad(mine.prints.hist), pad(tile_set.prints.hist))
        # the ECDFs carried along (gathered / concatenated, never recomputed) equal fresh ones
        assert "ecdf" in mine.prints.__dict__                   # attached, not computed lazily
        reused = mine.prints.ecdf
        fresh = similarity._ragged_ecdf(mine.prints.hist)
        np.testing.assert_array_equal(reused.length, fresh.length)
        np.testing.assert_array_equal(reused.n_bins, fresh.n_bins)
        np.testing.assert_allclose(reused.values, fresh.values, rtol=0, atol=1e-15)
        np.testing.assert_array_equal(reused.start, fresh.start)
    # a fresh process (no index in memory) loads the on-disk copy of the same content
    similarity_index.wait_for_index_saves()
    saved = list(similarity_index._index_folder().glob("*.npz"))
    assert len(saved) == 1 and saved[0].stem == similarity_index._index_name(similarity_index._bank_files())
    similarity_index.forget_bank_index(memory_only=True)
    assert similarity_index._load_index(saved[0]) is not None
    reloaded = similarity_index.bank_index()
    np.testing.assert_array_equal(reloaded.sets[None].file_id, full.sets[None].file_id)
    assert "ecdf" in reloaded.sets[None].prints.__dict__          # ECDFs come from the disk copy too
    np.testing.assert_array_equal(reloaded.sets[None].prints.ecdf.values, full.sets[None].prints.ecdf.values)


def test_index_never_reuses_tiles_of_a_deleted_file_whose_id_comes_back(bank):
    """SQLite reuses the largest ids after a delete: the index must notice the new file anyway."""
    if db.engine.dialect.name != "sqlite":
        pytest.skip("only SQLite reuses ids (PostgreSQL sequences never do); run with the default database")
    owner = bank["owner"]
    first = insert_dataset(owner, "short-lived", [simulate_file("csr", 200.0, 6)], visibility="private")
    first_ids = (first.id, [f.id for f in first.files])
    similarity_index.bank_index()
    db.session.delete(first)
    bump_bank_version()
    db.session.commit()
    second = insert_dataset(owner, "successor", [simulate_file("small_dense", 600.0, 7)], visibility="private")
    index = similarity_index.bank_index()
    full = similarity_index.build_bank_index(0)
    reused = (second.id, [f.id for f in second.files]) == first_ids     # what SQLite does without AUTOINCREMENT
    assert reused or first_ids[0] != second.id
    tiles, reference = index.tiles_of(second.id, None), full.tiles_of(second.id, None)
    np.testing.assert_array_equal(tiles.prints.n_locs, reference.prints.n_locs)
    np.testing.assert_array_equal(tiles.prints.hist[:, :reference.prints.hist.shape[1]], reference.prints.hist)
    assert reused, "the scenario needs SQLite to reuse the ids (it does without AUTOINCREMENT)"


def test_warm_index_in_the_background(bank):
    similarity_index.forget_bank_index(memory_only=True)
    similarity_index.warm_bank_index(bank["app"]).join(60)
    assert similarity_index._index_cache                               # the next search finds it in memory
