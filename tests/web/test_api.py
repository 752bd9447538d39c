"""JSON API: listing and filtering, authorisation of every endpoint, errors."""

from __future__ import annotations

import pytest

from tests.web.support import bearer


def ids(response) -> set[int]:
    assert response.status_code == 200, response.text
    return {row["id"] for row in response.json["datasets"]}


@pytest.fixture
def bank(make_user, make_dataset):
    """alice: public, private, shared with bob; carol: private. dave: nothing."""
    alice, bob, carol, dave = (make_user(name) for name in ("alice", "bob", "carol", "dave"))
    datasets = {
        "public": make_dataset(alice, visibility="public", title="Alice public EGFR", protein="EGFR",
                               cell_type="COS-7", density=55.0, n_files=2, tags="receptor, resting"),
        "private": make_dataset(alice, visibility="private", title="Alice private TIGIT", protein="TIGIT",
                                cell_type="Jurkat", density=12.0),
        "shared": make_dataset(alice, visibility="shared", shared_with=[bob], title="Alice shared CD8",
                               protein="CD8", cell_type="Jurkat", density=30.0),
        "carol": make_dataset(carol, visibility="private", title="Carol private LAT", protein="LAT"),
        "carol_public": make_dataset(carol, visibility="public", title="Carol public egfr mutant",
                                     protein="egfr", cell_type="HeLa", density=120.0, drift_correction=True),
    }
    return dict(users=dict(alice=alice, bob=bob, carol=carol, dave=dave), datasets=datasets)


# --------------------------------------------------------------------------------------------
# who sees what

def test_api001_list_shows_only_readable_datasets(client, signed_in, bank):
    d, u = bank["datasets"], bank["users"]
    public = {d["public"], d["carol_public"]}
    assert ids(client.get("/api/datasets")) == public
    assert ids(signed_in(u["alice"]).get("/api/datasets")) == public | {d["private"], d["shared"]}
    assert ids(signed_in(u["bob"]).get("/api/datasets")) == public | {d["shared"]}
    assert ids(signed_in(u["carol"]).get("/api/datasets")) == public | {d["carol"]}
    assert ids(signed_in(u["dave"]).get("/api/datasets")) == public
    listing = client.get("/api/datasets").json
    assert listing["total"] == 2 and listing["offset"] == 0 and listing["limit"] == 100


def test_api002_detail_of_private_and_shared_datasets(client, signed_in, bank):
    d, u = bank["datasets"], bank["users"]
    assert client.get(f"/api/datasets/{d['public']}").status_code == 200
    for dataset in ("private", "shared", "carol"):
        response = client.get(f"/api/datasets/{d[dataset]}")
        assert response.status_code == 404 and response.json["status"] == 404, dataset
    dave = signed_in(u["dave"])
    for dataset in ("private", "shared", "carol"):
        assert dave.get(f"/api/datasets/{d[dataset]}").status_code == 404
    bob = signed_in(u["bob"])
    assert bob.get(f"/api/datasets/{d['shared']}").status_code == 200
    assert bob.get(f"/api/datasets/{d['private']}").status_code == 404
    alice = signed_in(u["alice"])
    record = alice.get(f"/api/datasets/{d['shared']}").json
    assert record["shared_with"] == ["bob"] and record["owner"] == "alice" and record["files"] == []
    # missing and malformed ids look exactly like forbidden ones
    missing = client.get("/api/datasets/999999")
    assert missing.status_code == 404 and missing.json == client.get(f"/api/datasets/{d['carol']}").json
    assert client.get("/api/datasets/abc").status_code == 404


def test_api003_bearer_token_sees_what_its_user_sees(server, client, bank):
    from databank import users

    d = bank["datasets"]
    with server.app_context():
        token = users.create_api_token(users.find_user("bob"), "test")
    assert ids(client.get("/api/datasets", headers=bearer(token))) == {d["public"], d["carol_public"], d["shared"]}
    assert client.get(f"/api/datasets/{d['shared']}", headers=bearer(token)).status_code == 200
    assert client.get(f"/api/datasets/{d['private']}", headers=bearer(token)).status_code == 404


def test_api004_similar_and_self_similarity_check_access_first(client, signed_in, bank):
    d, u = bank["datasets"], bank["users"]
    for endpoint in ("similar", "self-similarity"):
        assert client.get(f"/api/datasets/{d['private']}/{endpoint}").status_code == 404
        assert signed_in(u["dave"]).get(f"/api/datasets/{d['shared']}/{endpoint}").status_code == 404
        assert client.get(f"/api/datasets/999999/{endpoint}").status_code == 404


# --------------------------------------------------------------------------------------------
# filters, search, sort, paging

def test_api005_filters_by_fields(client, bank):
    d = bank["datasets"]
    assert ids(client.get("/api/datasets?protein=EGFR")) == {d["public"], d["carol_public"]}   # any case
    assert ids(client.get("/api/datasets?protein=EGFR&cell_type=COS-7")) == {d["public"]}
    assert ids(client.get("/api/datasets?cell_type=cos-7")) == {d["public"]}
    assert ids(client.get("/api/datasets?title__contains=mutant")) == {d["carol_public"]}
    assert ids(client.get("/api/datasets?title__startswith=alice")) == {d["public"]}
    assert ids(client.get("/api/datasets?density__gt=100")) == {d["carol_public"]}
    assert ids(client.get("/api/datasets?density__lte=55")) == {d["public"]}
    assert ids(client.get("/api/datasets?n_files=2")) == {d["public"]}
    assert ids(client.get("/api/datasets?owner=carol")) == {d["carol_public"]}
    assert ids(client.get("/api/datasets?drift_correction=true")) == {d["carol_public"]}
    assert ids(client.get("/api/datasets?drift_correction=false")) == {d["public"]}
    assert ids(client.get("/api/datasets?protein=LAT")) == set()          # carol's private one stays hidden


def test_api006_free_text_search_sort_and_paging(client, signed_in, bank):
    d, u = bank["datasets"], bank["users"]
    assert ids(client.get("/api/datasets?q=receptor")) == {d["public"]}
    assert ids(client.get("/api/datasets?q=alice egfr")) == {d["public"]}
    assert ids(client.get("/api/datasets?q=TIGIT")) == set()
    assert ids(signed_in(u["alice"]).get("/api/datasets?q=TIGIT")) == {d["private"]}
    rows = client.get("/api/datasets?sort=-density").json["datasets"]
    assert [r["id"] for r in rows] == [d["carol_public"], d["public"]]
    rows = client.get("/api/datasets?sort=density").json["datasets"]
    assert [r["id"] for r in rows] == [d["public"], d["carol_public"]]
    page = client.get("/api/datasets?sort=title&limit=1&offset=1").json
    assert page["total"] == 2 and len(page["datasets"]) == 1 and page["datasets"][0]["id"] == d["carol_public"]
    assert client.get("/api/datasets?limit=0").json["datasets"] == []


def test_api007_row_keys_are_the_documented_contract(client, bank):
    row = client.get("/api/datasets?title=Alice public EGFR").json["datasets"][0]
    for key in ("id", "title", "protein", "cell_type", "modality", "software", "fluorophore", "uniprot_id", "tags",
                "owner", "visibility", "n_files", "n_locs", "density", "n_tiles", "created", "doi",
                "licence_url", "drift_correction", "pixel_size_nm", "is_simulated"):
        assert key in row, key
    assert row["owner"] == "alice" and row["visibility"] == "public" and row["density"] == 55.0


@pytest.mark.parametrize("query", [
    "limit=abc", "limit=5000", "limit=-1", "offset=-3", "offset=x", "nonsense=1", "protein__gt=x",
    "density__gt=abc", "density__contains=3", "protein__zz=1", "sort=password_hash", "drift_correction=maybe",
    "protein=A&protein=B",
])
def test_api008_bad_parameters_answer_400_with_a_message(client, query):
    response = client.get(f"/api/datasets?{query}")
    assert response.status_code == 400, query
    assert response.json["status"] == 400 and response.json["error"]


def test_api009_errors_are_json(client):
    missing = client.get("/api/nothing/here")
    assert missing.status_code == 404 and missing.is_json
    assert client.get("/api/").status_code == 404
    post = client.post("/api/datasets", json={})
    assert post.status_code in (400, 405) and post.is_json                # CSRF first, else read-only
    assert client.get("/api/datasets", headers={"Authorization": "Bearer bad"}).is_json


# --------------------------------------------------------------------------------------------
# real datasets (ingested)

def test_api010_detail_of_an_ingested_dataset_has_files_rois_tiles(client, signed_in, make_user, ingest):
    owner, other = make_user("owner_i"), make_user("other_i")
    public_id = ingest(owner, visibility="public", title="Ingested public", protein="EGFR", seed=1)
    private_id = ingest(owner, visibility="private", title="Ingested private", seed=2)
    record = client.get(f"/api/datasets/{public_id}").json
    assert record["title"] == "Ingested public" and record["n_files"] == 1 and record["n_rois"] == 1
    (entry,) = record["files"]
    assert entry["name"] == "cell1.csv" and entry["n_locs"] == 3000 and entry["n_rois"] == 1
    assert entry["n_tiles"] >= 1 and entry["density"] > 0 and entry["precision_median"] == pytest.approx(12.5)
    assert "stats" in entry and "warnings" in entry
    assert client.get(f"/api/datasets/{private_id}").status_code == 404
    assert signed_in(other).get(f"/api/datasets/{private_id}").status_code == 404
    assert signed_in(owner).get(f"/api/datasets/{private_id}").status_code == 200

    similar = client.get(f"/api/datasets/{public_id}/similar").json
    assert similar["dataset_id"] == public_id and similar["target"] == 30
    assert private_id not in {row["dataset_id"] for row in similar["results"]}      # anonymous: public only
    owner_similar = signed_in(owner).get(f"/api/datasets/{public_id}/similar?target=100").json
    assert private_id in {row["dataset_id"] for row in owner_similar["results"]}
    assert client.get(f"/api/datasets/{public_id}/similar?target=50").status_code == 400
    selfsim = client.get(f"/api/datasets/{public_id}/self-similarity").json
    assert selfsim["dataset_id"] == public_id and "thinned" in selfsim and "unthinned" in selfsim
