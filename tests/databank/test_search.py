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
