"""The one authorisation function, through every data-layer entry point."""

from __future__ import annotations

import pytest
from flask_login import AnonymousUserMixin

from databank.access import AccessDenied, authorise, get_dataset, get_file
from databank.datasets import delete_dataset, list_datasets, set_visibility, update_metadata
from databank.ingest import StagedFile, ingest_dataset
from databank.metadata import MetadataError

from .conftest import META, write_csr_file

ANON = AnonymousUserMixin()


@pytest.fixture
def private_dataset(app, users, tmp_path):
    paths = write_csr_file(tmp_path / "up", "cell", density=60, size_nm=6000)
    return ingest_dataset([StagedFile(p, p.name) for p in paths], META, users["alice"], visibility="private")


def test_private_visible_to_owner_only(users, private_dataset):
    alice, bob = users["alice"], users["bob"]
    assert authorise(alice, private_dataset, "write")
    for user in (bob, ANON, None):
        for action in ("read", "download", "write"):
            assert not authorise(user, private_dataset, action)
        with pytest.raises(AccessDenied):
            get_dataset(user, private_dataset.id)
        with pytest.raises(AccessDenied):
            get_file(user, private_dataset.files[0].id)
        assert list_datasets(user)[1] == 0
    assert list_datasets(alice)[1] == 1


def test_shared_and_public_rules(users, private_dataset):
    alice, bob, carol = users["alice"], users["bob"], users["carol"]
    set_visibility(alice, private_dataset.id, "shared", ["bob"])
    assert authorise(bob, private_dataset, "download") and not authorise(bob, private_dataset, "write")
    assert not authorise(carol, private_dataset, "read") and list_datasets(carol)[1] == 0
    assert list_datasets(bob)[1] == 1
    set_visibility(alice, private_dataset.id, "public")
    assert authorise(ANON, private_dataset, "read") and not authorise(ANON, private_dataset, "download")
    assert authorise(carol, private_dataset, "download") and list_datasets(ANON)[1] == 1


def test_owner_only_actions_refuse_others(users, private_dataset):
    set_visibility(users["alice"], private_dataset.id, "public")
    for action in (lambda u: update_metadata(u, private_dataset.id, {"protein": "X"}),
                   lambda u: set_visibility(u, private_dataset.id, "private"),
                   lambda u: delete_dataset(u, private_dataset.id)):
        for user in (users["bob"], ANON):
            with pytest.raises(AccessDenied):
                action(user)
    with pytest.raises(AccessDenied):
        get_dataset(users["bob"], "1 OR 1=1")


def test_edit_validates_and_delete_removes_files(app, settings, users, private_dataset):
    with pytest.raises(MetadataError):
        update_metadata(users["alice"], private_dataset.id, {"uniprot_id": "not-an-id"})
    update_metadata(users["alice"], private_dataset.id, {"protein": "HER2"})
    assert get_dataset(users["alice"], private_dataset.id).protein == "HER2"
    key = private_dataset.storage_key
    assert (settings.store_dir / key).exists()
    delete_dataset(users["alice"], private_dataset.id)
    assert not (settings.store_dir / key).exists() and list_datasets(users["alice"])[1] == 0


def test_list_search_filter_sort(app, users, tmp_path):
    for k, (protein, cell) in enumerate([("EGFR", "COS-7"), ("LAT", "Jurkat"), ("EGFR", "HeLa")]):
        paths = write_csr_file(tmp_path / f"d{k}", f"f{k}", density=60 + 40 * k, size_nm=6000, seed=k)
        ingest_dataset([StagedFile(p, p.name) for p in paths],
                       dict(META, title=f"{protein} in {cell}", protein=protein, cell_type=cell), users["alice"],
                       visibility="public")
    rows, total = list_datasets(None, search="egfr hela")
    assert total == 1 and rows[0]["title"] == "EGFR in HeLa"
    rows, total = list_datasets(None, filters={"protein": {"filterType": "text", "type": "equals", "filter": "EGFR"}},
                                sort=[{"colId": "density", "sort": "desc"}])
    assert total == 2 and rows[0]["density"] > rows[1]["density"]
    rows, _ = list_datasets(None, sort=[("title", "asc")], offset=1, limit=1)
    assert [r["title"] for r in rows] == ["EGFR in HeLa"]
