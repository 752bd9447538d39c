"""Similarity search through the data layer: privacy before ranking, cache invalidation."""

from __future__ import annotations

import numpy as np

from compute import similarity
from databank import search
from databank import compare
from databank.datasets import set_visibility
from databank.ingest import StagedFile, ingest_dataset

from .conftest import META, rectangle_um, write_csr_file


def make(users, tmp_path, owner, title, visibility, seed):
    paths = write_csr_file(tmp_path / title, f"cell{seed}", density=150, seed=seed, rois=[rectangle_um(0.5, 0.5, 9.5, 9.5)])
    return ingest_dataset([StagedFile(p, p.name) for p in paths], dict(META, title=title), users[owner],
                          visibility=visibility)


def test_private_datasets_never_ranked_for_others_and_cache_invalidates(app, users, tmp_path):
    query = make(users, tmp_path, "alice", "Query", "public", 1)
    secret = make(users, tmp_path, "bob", "Secret", "private", 2)
    public = make(users, tmp_path, "carol", "Open", "public", 3)
    assert [r["dataset_id"] for r in search.similar_datasets(users["alice"], query.id)] == [public.id]
    assert {r["dataset_id"] for r in search.similar_datasets(users["bob"], query.id)} == {secret.id, public.id}
    set_visibility(users["bob"], secret.id, "public")        # bumps the bank version -> new results
    assert {r["dataset_id"] for r in search.similar_datasets(users["alice"], query.id)} == {secret.id, public.id}


def test_search_numbers_equal_direct_comparison(app, users, tmp_path):
    a = make(users, tmp_path, "alice", "A", "public", 1)
    b = make(users, tmp_path, "alice", "B", "public", 2)
    row = search.similar_datasets(users["alice"], a.id, target=100)[0]
    sa, sb = compare.dataset_fingerprint_sets(a), compare.dataset_fingerprint_sets(b)
    for label, choice in (("unthinned", None), ("thinned", 100)):
        lambdas = similarity.lambda_matrix(sa[choice][0], sb[choice][0]).ravel()
        assert row[f"{label}_n_pairs"] == lambdas.size
        assert row[f"{label}_mean"] == round(float(np.mean(lambdas)), 4)
        assert row[f"{label}_median"] == round(float(np.median(lambdas)), 4)


def test_self_similarity_pairs(app, users, tmp_path):
    a = make(users, tmp_path, "alice", "A", "public", 1)
    result = search.self_similarity(users["alice"], a.id)
    assert result["unthinned"]["n_tiles"] == 9 and len(result["unthinned"]["lambdas"]) == 36
    assert result["unthinned"]["summary"]["n_pairs"] == 36


def test_search_averages_over_every_stored_thinning(tmp_path):
    """NANOORG_THINNING_REPEATS=3: the bank search averages each pair's lambda over the 3 thinnings
    and reports their spread, equal to compare_repeated on the two datasets' stored tiles."""
    from config import load_settings
    from databank.core import make_data_app
    from databank.models import db
    from databank.users import create_user
    from tests.databases import database_overrides

    settings = load_settings(instance_dir=tmp_path / "instance", seed_demo=False, secret_key="test-secret",
                             thinning_repeats=3, **database_overrides())
    app = make_data_app(settings)
    with app.app_context():
        users = {"alice": create_user("alice", "alice@example.org", "correct horse battery")}
        a = make(users, tmp_path, "alice", "A", "public", 1)
        b = make(users, tmp_path, "alice", "B", "public", 2)
        row = search.similar_datasets(users["alice"], a.id, target=100)[0]
        sa, sb = compare.dataset_fingerprint_sets(a), compare.dataset_fingerprint_sets(b)
        assert len(sa[100]) == len(sb[100]) == 3
        expected = similarity.compare_repeated(sa[100], sb[100], max_pairs=10**9)
        assert row["thinned_n_repeats"] == 3 and row["thinned_n_pairs"] == expected.summary.n_pairs
        assert row["thinned_mean"] == round(expected.summary.mean, 4)
        assert row["thinned_median"] == round(expected.summary.median, 4)
        assert row["thinned_sd_repeats"] == round(expected.sd_repeats, 4) and row["thinned_sd_repeats"] > 0
        single = similarity.lambda_matrix(sa[100][0], sb[100][0]).mean()
        assert row["thinned_mean"] != round(float(single), 4)           # not the first thinning alone
        assert "unthinned_n_repeats" not in row
        own = search.self_similarity(users["alice"], a.id, target=100)["thinned"]
        i, j = np.triu_indices(len(sa[100][0]), k=1)
        per_thinning = np.array([similarity.lambda_matrix(t, t)[i, j] for t in sa[100]])
        assert own["n_repeats"] == 3 and abs(own["summary"]["mean"] - per_thinning.mean()) < 1e-9
        assert abs(own["sd_repeats"] - round(float(per_thinning.mean(axis=1).std(ddof=1)), 4)) < 1e-12
        pair = compare.compare_datasets(users["alice"], [a.id, b.id], target=100)     # the Compare page
        assert pair["thinned_n_repeats"] == 3 and pair["thinned_mean"][0][1] == round(expected.summary.mean, 4)
        from databank import similarity_index
        similarity_index.wait_for_index_saves()
        similarity_index.forget_bank_index(memory_only=True)          # the next reader loads the disk copy
        assert similarity_index.bank_index().thinnings_of(100) == [100, (100, 2), (100, 3)]
        header = search.results_csv([row]).splitlines()[0].split(",")
        assert "thinned_n_thinnings" in header and "thinned_lambda_sd_over_thinnings" in header
        db.session.remove()
        db.engine.dispose()
