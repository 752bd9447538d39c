"""Every way to reach a private dataset without being allowed to: API list / item / similar /
self-similarity, the owner filter (issue 8 item 10), downloads, forged callback ids and page
paths, and path traversal through upload file names (attacks that held, kept held)."""

from __future__ import annotations

import warnings

import pytest
from flask_login import login_user

import ids
from databank import similarity_index
from databank.models import DataFile, Dataset, db
from tests.web import support
from tests.web.helpers_datasets import as_user, client_as

PRIVATE_TITLES = {"alice": "Alice private EGFR", "carol": "Carol private LAT"}
READERS = (None, "bob", "carol", "dave")


def _unreadable_titles(user):
    """Titles of private datasets ``user`` may not read (and the shared one, for dave / anonymous)."""
    titles = {t for owner, t in PRIVATE_TITLES.items() if owner != user}
    if user not in ("alice", "bob"):
        titles.add("Alice shared CD8")
    return titles


def _file_id(bank, key):
    with bank.server.app_context():
        file_id = db.session.get(Dataset, bank.datasets[key]).files[0].id
        db.session.remove()
    return file_id


@pytest.fixture(scope="module", autouse=True)
def _index(bank):
    with bank.server.app_context():
        similarity_index.bank_index()        # the similarity index of this bank
        db.session.remove()


# --------------------------------------------------------------------------------------------
# API

@pytest.mark.parametrize("user", READERS)
def test_api_list_never_shows_unreadable_datasets(bank, user):
    client = client_as(bank, user)
    titles = {row["title"] for row in client.get("/api/datasets?limit=1000").get_json()["datasets"]}
    assert "Alice public TIGIT" in titles and not titles & _unreadable_titles(user)
    assert client.get("/api/datasets?q=secret-tag").get_json()["total"] == 0      # alice's private tag


@pytest.mark.parametrize("suffix", ["", "/similar", "/self-similarity", "/similar?format=csv"])
def test_api_item_routes_answer_404_for_private_data(bank, suffix):
    url = f"/api/datasets/{bank.datasets['private']}{suffix}"
    for user in READERS:
        response = client_as(bank, user).get(url)
        assert response.status_code == 404, (user, url)
        assert "Alice private" not in response.text
    assert client_as(bank, "alice").get(url).status_code == 200


def test_similarity_results_never_include_unreadable_datasets(bank):
    url = f"/api/datasets/{bank.datasets['public']}/similar"
    for user in READERS + ("alice",):
        rows = client_as(bank, user).get(url).get_json()["results"]
        titles = {row["title"] for row in rows}
        assert not titles & _unreadable_titles(user), user
    alice = {row["title"] for row in client_as(bank, "alice").get(url).get_json()["results"]}
    assert "Alice private EGFR" in alice


@pytest.mark.parametrize("user, owner, expected", [
    ("carol", "carol", {"Carol private LAT"}),
    ("carol", "alice", set()),                        # the public dataset itself is the query, excluded
    ("alice", "alice", {"Alice private EGFR", "Alice shared CD8"}),
    ("alice", "ALICE", {"Alice private EGFR", "Alice shared CD8"}),   # case-insensitive like every text filter
    (None, "carol", set()),
    ("alice", "nobody", set()),
])
def test_owner_filter_on_similar_filters_by_owner(bank, user, owner, expected):
    url = f"/api/datasets/{bank.datasets['public']}/similar?owner={owner}"
    with warnings.catch_warnings():
        warnings.simplefilter("error")                      # no cartesian-product warning either
        response = client_as(bank, user).get(url)
    assert response.status_code == 200
    answer = response.get_json()
    assert {row["title"] for row in answer["results"]} == expected
    assert answer["total"] == len(expected)


# --------------------------------------------------------------------------------------------
# downloads

@pytest.mark.parametrize("kind", ["originals", "gridded", "images", "rois"])
def test_downloads_of_private_data_are_refused(bank, kind):
    dataset_id, file_id = bank.datasets["private"], _file_id(bank, "private")
    urls = [f"/download/dataset/{dataset_id}/{kind}.zip", f"/api/datasets/{dataset_id}/download/{kind}",
            f"/download/file/{file_id}/original", f"/download/file/{file_id}/image.png",
            f"/api/files/{file_id}/download"]
    for url in urls:
        anonymous = client_as(bank, None).get(url, headers={"Accept": "text/html"})
        assert anonymous.status_code in (302, 401) and b"PK" not in anonymous.data[:2], url
        for user in ("bob", "carol", "dave"):
            assert client_as(bank, user).get(url).status_code == 404, (user, url)
    assert client_as(bank, "alice").get(urls[0]).data[:2] == b"PK"


# --------------------------------------------------------------------------------------------
# forged callback ids and page paths

def test_dataset_owner_callbacks_refuse_a_forged_path(bank):
    from callbacks import dataset as cb

    dataset_id = bank.datasets["private"]
    path = f"/dataset/{dataset_id}"
    with as_user(bank, "bob", path):
        feedback, *_ = cb.save_visibility(1, "public", "", path)
        assert cb.DENIED in str(feedback)
        feedback, navigate = cb.delete_dataset(1, path)
        assert cb.DENIED in str(feedback)
        result = cb.save_metadata(1, ["Stolen title"], [{"type": ids.Dataset.FIELD_TYPE, "name": "title"}], [], [], path)
        assert cb.DENIED in str(result)
    with bank.server.app_context():
        dataset = db.session.get(Dataset, dataset_id)
        assert (dataset.title, dataset.visibility) == ("Alice private EGFR", "private")
        db.session.remove()


def test_similarity_callbacks_refuse_a_forged_dataset_id(bank):
    from callbacks import compare as compare_cb
    from callbacks import similarity as cb
    dataset_id = bank.datasets["private"]
    with as_user(bank, "bob", f"/dataset/{dataset_id}"):
        choices = cb.load_choices(dataset_id)
        assert choices[3] == {} and "EGFR" not in str(choices[3])
        figures = cb.show_self_similarity(30, False, dataset_id)
        assert cb.NOT_FOUND in str(figures[-1])
        download, message = cb.download_results(1, dataset_id, 30, None, None, None, None, "thinned")
        assert message == cb.NOT_FOUND
        options, wanted, _note = compare_cb.load_compare_options(f"?ids={dataset_id},{bank.datasets['public']}")
        assert dataset_id not in wanted and "Alice private" not in str(options)


def test_viewer_file_paths_are_checked_for_every_reader(bank):
    from flask_login import current_user

    from databank.viewer_data import readable_file

    file_id = _file_id(bank, "private")
    for user in READERS:
        with as_user(bank, user, f"/file/{file_id}"):
            assert readable_file(f"/file/{file_id}", current_user) is None, user
            assert readable_file(f"/file/{file_id}", current_user, action="download") is None, user
    with as_user(bank, "alice", f"/file/{file_id}"):
        assert readable_file(f"/file/{file_id}", current_user).id == file_id


@pytest.mark.parametrize("page", ["dataset", "file"])
def test_private_pages_render_as_not_found_for_others(bank, page):
    object_id = bank.datasets["private"] if page == "dataset" else _file_id(bank, "private")
    for user in READERS:
        status, text = support.render_page(client_as(bank, user), f"/{page}/{object_id}")
        assert status == 200 and "not-found" in text and "Alice private" not in text, user
    status, text = support.render_page(client_as(bank, "alice"), f"/{page}/{object_id}")
    assert "cell one" in text or "Alice private EGFR" in text


def test_a_forged_callback_post_for_another_users_dataset(bank):
    """Over HTTP, the visibility callback with bob's session and carol's dataset path is refused."""
    from callbacks import dataset as cb

    client = client_as(bank, "bob")
    output = next(d["output"] for d in client.get("/_dash-dependencies").get_json()
                  if "dataset-visibility-feedback.children" in d["output"])
    dataset_id = bank.datasets["carol_private"]
    body = {"output": output,
            "outputs": [{"id": part.split(".")[0], "property": part.split(".")[1].split("@")[0]}
                        for part in output.strip(".").split("...")],
            "inputs": [{"id": "dataset-visibility-save", "property": "n_clicks", "value": 1}],
            "state": [{"id": "dataset-visibility-choice", "property": "value", "value": "public"},
                      {"id": "dataset-visibility-users", "property": "value", "value": ""},
                      {"id": ids.Dataset.URL, "property": "pathname", "value": f"/dataset/{dataset_id}"}],
            "changedPropIds": ["dataset-visibility-save.n_clicks"]}
    response = client.post("/_dash-update-component", json=body, headers={"X-CSRFToken": support.csrf_cookie(client)})
    assert response.status_code == 200 and cb.DENIED in response.text
    with bank.server.app_context():
        assert db.session.get(Dataset, dataset_id).visibility == "private"
        db.session.remove()


def test_a_callback_post_for_an_unknown_output_is_400_json(bank):
    client = client_as(bank, "bob")
    response = support.dash_post(client, [("no-such-thing", "children")], [("nothing", "n_clicks", 1)])
    assert response.status_code == 400 and "no callback" in response.get_json()["error"]


def test_download_names_of_stored_files_are_sanitised(bank):
    with bank.server.app_context():
        data_file = db.session.get(DataFile, _file_id(bank, "public"))
        data_file.name = "../../etc/passwd\r\nX-Evil: 1"
        db.session.commit()
        file_id = data_file.id
        db.session.remove()
    response = client_as(bank, "dave").get(f"/download/file/{file_id}/original")
    disposition = response.headers["Content-Disposition"]
    assert response.status_code == 200 and ".." not in disposition and "/" not in disposition.split("filename")[1]
    assert "X-Evil" not in response.headers


def test_login_required_pages_do_not_leak_to_anonymous(bank):
    with bank.server.test_request_context("/upload"):
        from pages import upload as page

        assert "upload-submit" not in str(page.layout())
        login_user(bank.user("bob"))
        assert "upload-submit" in str(page.layout())
        db.session.remove()
