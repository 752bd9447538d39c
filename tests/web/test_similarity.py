"""Similarity in the web layer: the JSON/CSV API, the dataset-page section's callbacks, the
"search with your own file" page and the Compare page.

Privacy first: a private dataset of another user never appears in anyone else's results (API and
callbacks), and a foreign private query answers "not found". Callbacks are called as functions in
a request context (normal callbacks, ``current_user``) or with a Dash callback context carrying
the signed session cookie (background jobs re-derive the user from it, as in production).
"""

from __future__ import annotations

import contextlib
import csv
import io
from contextvars import copy_context
from pathlib import Path

import pytest
from flask_login import login_user, logout_user

from databank import search
from databank.datasets import delete_dataset, set_visibility
from databank.models import Dataset, User, db
from databank.users import create_api_token
from callbacks import similarity as cb
from callbacks import compare as compare_cb
from callbacks import search_file as search_cb
from components import similarity_section as section
from databank.users import SESSION_GENERATION
from tests.web.support import callback_context
import ids

from .helpers_datasets import (Bank, client_as, find_ids, fresh_bank, ingest, make_files, page_layout,
                               text_of)

DENSE = 12_000        # localisations in a 10 x 10 um field: ~1,080 per tile, enough for 100 loc/um^2


def build_similarity_bank(folder: Path) -> Bank:
    """alice, bob, carol, dave and datasets of every visibility (tables emptied first)."""
    bank = fresh_bank(folder)
    app = bank.app
    with app.server.app_context():
        src = folder / "uploads"
        specs = [
            ("query", "alice", "Alice query EGFR", "public", (), dict(protein="EGFR", cell_type="COS-7",
                                                                       modality="dSTORM", tags="resting")),
            ("alice_private", "alice", "Alice private EGFR", "private", (), dict(protein="EGFR", cell_type="HeLa")),
            ("bob_private", "bob", "Bob private SECRETPROT", "private", (), dict(protein="SECRETPROT",
                                                                                cell_type="SECRETCELL")),
            ("bob_shared", "bob", "Bob shared LAT", "shared", ["alice"], dict(protein="LAT", cell_type="COS-7")),
            ("carol_public", "carol", "Carol public LAT", "public", (), dict(protein="LAT", cell_type="HeLa",
                                                                           tags="treated, drug X")),
        ]
        for k, (key, owner, title, visibility, shared, meta) in enumerate(specs):
            ingest(bank, key, owner, title=title, visibility=visibility, shared_with=shared,
                   files=make_files(src / key, f"cell{k}", n=DENSE, seed=10 + k), **meta)
        # sparse: tiles too poor for thinning to 100 loc/um^2 (but fine unthinned and at 30)
        ingest(bank, "carol_sparse", "carol", title="Carol public sparse EGFR", visibility="public",
               files=make_files(src / "sparse", "sparse", n=4_000, seed=42), protein="EGFR", cell_type="HeLa")
        db.session.remove()
    return bank


@pytest.fixture(scope="module")
def bank(tmp_path_factory):
    return build_similarity_bank(tmp_path_factory.mktemp("similarity"))


def ids_of(bank, *keys):
    return {bank.datasets[k] for k in keys}


def session_cookie(bank, name):
    server = bank.server
    value = server.session_interface.get_signing_serializer(server).dumps(
        {"_user_id": str(bank.users[name]), "_fresh": True, SESSION_GENERATION: 0})   # as sign-in stamps it
    return {server.config.get("SESSION_COOKIE_NAME", "session"): value}


@contextlib.contextmanager
def as_caller(bank, name, *, triggered=None):
    """A request context with ``name`` signed in (None: anonymous) and a Dash callback context whose
    cookies carry that user's signed session (what a background job sees)."""
    with bank.server.test_request_context("/_dash-update-component", method="POST"):
        if name is not None:
            login_user(db.session.get(User, bank.users[name]))
        try:
            with callback_context(cookies=session_cookie(bank, name) if name else {},
                                  triggered_inputs=[{"prop_id": f"{triggered}.n_clicks", "value": 1}] if triggered
                                  else []):
                yield
        finally:
            if name is not None:
                logout_user()
            db.session.remove()


def call(bank, name, fn, *args, triggered=None, **kwargs):
    """Run a callback function as ``name`` (in its own contextvars context)."""
    def run():
        with as_caller(bank, name, triggered=triggered):
            return fn(*args, **kwargs)
    return copy_context().run(run)


class Progress(list):
    def __call__(self, value):
        self.append(value)


def run_search(bank, name, dataset_key_or_id, *, target=30, protein=None, cell_type=None, modality=None, tags=None):
    dataset_id = bank.datasets.get(dataset_key_or_id, dataset_key_or_id)
    progress = Progress()
    rows, status = call(bank, name, cb.run_search, progress, 1, target, protein, cell_type, modality, tags,
                        str(dataset_id), server=bank.server)
    return rows, status, progress


# --------------------------------------------------------------------------------------------
# JSON API

def api(bank, name, dataset_key, query="", **headers):
    client = client_as(bank, name)
    dataset_id = bank.datasets.get(dataset_key, dataset_key)
    return client.get(f"/api/datasets/{dataset_id}/similar{query}", headers=headers)


def test_api_anonymous_sees_only_public_datasets(bank):
    response = api(bank, None, "query")
    assert response.status_code == 200, response.text
    body = response.get_json()
    assert set(body) >= {"dataset_id", "target", "bank_version", "results"}
    assert body["dataset_id"] == bank.datasets["query"] and body["target"] == 30
    assert {r["dataset_id"] for r in body["results"]} == ids_of(bank, "carol_public", "carol_sparse")


@pytest.mark.parametrize("name, visible, hidden", [
    ("alice", ("alice_private", "bob_shared", "carol_public", "carol_sparse"), ("bob_private",)),
    ("bob", ("bob_private", "bob_shared", "carol_public", "carol_sparse"), ("alice_private",)),
    ("dave", ("carol_public", "carol_sparse"), ("alice_private", "bob_private", "bob_shared")),
])
def test_api_private_datasets_never_appear_in_other_users_results(bank, name, visible, hidden):
    body = api(bank, name, "query").get_json()
    found = {r["dataset_id"] for r in body["results"]}
    assert found == ids_of(bank, *visible)
    assert not found & ids_of(bank, *hidden)
    assert "SECRETPROT" not in str(body) or name == "bob"


def test_api_foreign_private_query_is_not_found(bank):
    for name in (None, "alice", "carol"):
        response = api(bank, name, "bob_private")
        assert response.status_code == 404 and "SECRET" not in response.text
    assert api(bank, "bob", "bob_private").status_code == 200
    assert api(bank, "alice", "bob_shared").status_code == 200
    assert api(bank, None, 999_999).status_code == 404


def test_api_rejects_bad_parameters(bank):
    for query in ("?target=50", "?target=abc", "?format=xml", "?colour=red", "?density__gt=abc", "?limit=-1",
                  "?protein__gt=3", "?sort=median"):
        response = api(bank, "alice", "query", query)
        assert response.status_code == 400, (query, response.text)
        assert response.get_json()["error"]


def test_api_filters_apply_before_ranking(bank):
    body = api(bank, "alice", "query", "?protein=LAT").get_json()
    assert {r["dataset_id"] for r in body["results"]} == ids_of(bank, "bob_shared", "carol_public")
    body = api(bank, "alice", "query", "?cell_type=hela&protein=EGFR").get_json()      # case-insensitive
    assert {r["dataset_id"] for r in body["results"]} == ids_of(bank, "alice_private", "carol_sparse")
    body = api(bank, "alice", "query", "?tags__contains=drug").get_json()
    assert {r["dataset_id"] for r in body["results"]} == ids_of(bank, "carol_public")
    body = api(bank, "alice", "query", "?modality=dSTORM").get_json()
    assert body["results"] == []
    body = api(bank, "alice", "query", "?density__gte=60").get_json()
    assert ids_of(bank, "carol_sparse").isdisjoint(r["dataset_id"] for r in body["results"])


def test_api_target_switch_and_ranking(bank):
    at_30 = api(bank, "alice", "query", "?target=30").get_json()
    at_100 = api(bank, "alice", "query", "?target=100").get_json()
    assert at_30["target"] == 30 and at_100["target"] == 100
    sparse = bank.datasets["carol_sparse"]
    row_30 = next(r for r in at_30["results"] if r["dataset_id"] == sparse)
    row_100 = next(r for r in at_100["results"] if r["dataset_id"] == sparse)
    assert row_30["thinned_mean"] is not None and row_30["thinned_n_pairs"] > 0
    assert row_100["thinned_mean"] is None and row_100["thinned_n_pairs"] == 0 and row_100["unthinned_mean"] is not None
    assert at_100["results"][-1]["dataset_id"] == sparse                 # rows without a score come last
    means = [r["thinned_mean"] for r in at_100["results"] if r["thinned_mean"] is not None]
    assert means == sorted(means)                                        # most similar first
    by_unthinned = api(bank, "alice", "query", "?target=100&sort=unthinned").get_json()["results"]
    unthinned = [r["unthinned_mean"] for r in by_unthinned]
    assert unthinned == sorted(unthinned)
    assert len(api(bank, "alice", "query", "?limit=1").get_json()["results"]) == 1


def test_csv_download_only_for_registered_users(bank):
    anonymous = api(bank, None, "query", "?format=csv")
    assert anonymous.status_code == 401
    anonymous_browser = client_as(bank, None).get(f"/download/dataset/{bank.datasets['query']}/similar.csv")
    assert anonymous_browser.status_code == 302 and "/login" in anonymous_browser.headers["Location"]
    response = api(bank, "alice", "query", "?format=csv&target=100&protein=LAT")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    table = list(csv.DictReader(io.StringIO(response.text)))
    assert {int(r["dataset_id"]) for r in table} == ids_of(bank, "bob_shared", "carol_public")
    assert [int(r["rank"]) for r in table] == [1, 2]
    assert set(table[0]) >= {"thinned_lambda_mean", "thinned_lambda_sd", "unthinned_lambda_mean", "thinned_n_pairs",
                             "protein", "cell_type", "modality", "fluorophore", "software"}
    browser = client_as(bank, "dave").get(f"/download/dataset/{bank.datasets['query']}/similar.csv")
    assert browser.status_code == 200 and "SECRETPROT" not in browser.text and "Alice private" not in browser.text
    assert client_as(bank, "dave").get(f"/download/dataset/{bank.datasets['bob_private']}/similar.csv").status_code == 404
    assert api(bank, "alice", "bob_private", "?format=csv").status_code == 404


def test_csv_with_api_token(bank):
    with bank.server.app_context():
        token = create_api_token(db.session.get(User, bank.users["bob"]), "script")
        db.session.remove()
    response = bank.server.test_client().get(f"/api/datasets/{bank.datasets['query']}/similar?format=csv",
                                             headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200 and "SECRETPROT" in response.text     # bob's own private dataset


def test_csv_neutralises_spreadsheet_formulas():
    text = search.results_csv([{"dataset_id": 1, "title": "=HYPERLINK(\"x\")", "protein": "+1", "thinned_mean": -0.5}])
    row = next(csv.DictReader(io.StringIO(text)))
    assert row["title"].startswith("'=") and row["protein"] == "'+1" and row["thinned_lambda_mean"] == "-0.5"


# --------------------------------------------------------------------------------------------
# dataset page section: callbacks as functions

def test_search_job_uses_the_cookie_user_and_hides_foreign_private(bank):
    rows, status, progress = run_search(bank, "alice", "query")
    found = {r["dataset_id"] for r in rows}
    assert found == ids_of(bank, "alice_private", "bob_shared", "carol_public", "carol_sparse")
    assert progress and progress[-1][0] == 100 and "compared" in text_of(status)
    rows, _, _ = run_search(bank, None, "query")                               # no cookie: anonymous
    assert {r["dataset_id"] for r in rows} == ids_of(bank, "carol_public", "carol_sparse")
    rows, _, _ = run_search(bank, "bob", "query")
    assert bank.datasets["bob_private"] in {r["dataset_id"] for r in rows}


def test_search_job_refuses_foreign_private_query(bank):
    for name in ("alice", None):
        rows, status, _ = run_search(bank, name, "bob_private")
        assert rows == [] and cb.NOT_FOUND in text_of(status)
    rows, status, _ = run_search(bank, "alice", "not-a-number")
    assert rows == [] and cb.NOT_FOUND in text_of(status)


def test_search_job_filters_and_target(bank):
    rows, _, _ = run_search(bank, "alice", "query", protein="LAT")
    assert {r["dataset_id"] for r in rows} == ids_of(bank, "bob_shared", "carol_public")
    rows, _, _ = run_search(bank, "alice", "query", cell_type="HeLa", tags="drug")
    assert {r["dataset_id"] for r in rows} == ids_of(bank, "carol_public")
    rows, status, _ = run_search(bank, "alice", "query", target=100)
    sparse = next(r for r in rows if r["dataset_id"] == bank.datasets["carol_sparse"])
    assert sparse["thinned_mean"] is None and "100 loc/µm²" in text_of(status)
    rows, status, _ = run_search(bank, "alice", "query", target=55)
    assert rows == [] and "thinning target" in text_of(status)


def test_filter_choices_come_from_readable_datasets_only(bank):
    out = call(bank, "alice", cb.load_choices, str(bank.datasets["query"]))
    proteins = {o["value"] for o in out[0]}
    assert proteins == {"EGFR", "LAT"} and "SECRETCELL" not in str(out)
    assert out[3] == {"protein": "EGFR", "cell_type": "COS-7", "modality": "dSTORM"}
    assert out[4] == "Same protein (EGFR)"
    denied = call(bank, "alice", cb.load_choices, str(bank.datasets["bob_private"]))
    assert denied[:4] == ([], [], [], {})
    bob = call(bank, "bob", cb.load_choices, str(bank.datasets["query"]))
    assert "SECRETPROT" in {o["value"] for o in bob[0]}


def test_quick_filter_buttons(bank):
    own = {"protein": "EGFR", "cell_type": "COS-7", "modality": "dSTORM"}
    out = call(bank, "alice", cb.apply_quick_filters, 1, None, None, None, own, triggered=ids.Similarity.SAME_CELL_TYPE)
    assert out[1] == "COS-7" and all(v is cb.no_update for k, v in enumerate(out) if k != 1)
    assert call(bank, "alice", cb.apply_quick_filters, 1, 1, 1, 1, own, triggered=ids.Similarity.CLEAR_FILTERS) == (None, None, None, "")
    assert cb.build_filters("EGFR", " ", None, " drug ") == {"protein": "EGFR", "tags": {"type": "contains", "filter": "drug"}}


def test_self_similarity_callback(bank):
    thinned, unthinned, table_t, table_u, message = call(bank, "alice", cb.show_self_similarity, 30, True,
                                                         str(bank.datasets["query"]))
    assert message is None
    assert {t.name.split(" (")[0] for t in thinned.data} == {"Within file", "Between files"}
    assert any(shape.x0 == 1.0 for shape in unthinned.layout.shapes)         # the line at lambda = 1
    assert "Tile pairs" in text_of(table_t) and "Within file" in text_of(table_u)
    thinned, _, _, _, message = call(bank, "alice", cb.show_self_similarity, 100, False, str(bank.datasets["query"]))
    assert "100 loc/µm²" in thinned.layout.title.text and len(thinned.data) == 1
    *_, message = call(bank, "carol", cb.show_self_similarity, 30, False, str(bank.datasets["bob_private"]))
    assert cb.NOT_FOUND in text_of(message)


def test_download_callback_only_for_registered_users(bank):
    query = str(bank.datasets["query"])
    data, message = call(bank, None, cb.download_results, 1, query, 30, None, None, None, None, "thinned")
    assert data is cb.no_update and "Log in" in message
    data, message = call(bank, "alice", cb.download_results, 1, query, 100, "LAT", None, None, None, "unthinned")
    table = list(csv.DictReader(io.StringIO(data["content"])))
    assert {int(r["dataset_id"]) for r in table} == ids_of(bank, "bob_shared", "carol_public")
    assert data["filename"].endswith("_unthinned_100.csv")
    data, message = call(bank, "alice", cb.download_results, 1, str(bank.datasets["bob_private"]), 30, None, None,
                         None, None, "thinned")
    assert data is cb.no_update and message == cb.NOT_FOUND


def test_columns_follow_the_metric_switch():
    columns = cb.set_columns("unthinned", 100)
    assert columns[1]["headerName"] == "Unthinned" and columns[1]["children"][0]["sort"] == "asc"
    assert columns[2]["headerName"] == "Thinned (100 loc/µm²)" and "sort" not in columns[2]["children"][0]
    assert cb.set_columns("nonsense", "x")[1]["headerName"].startswith("Thinned")


def test_section_layout(bank):
    with bank.server.test_request_context("/"):
        layout = section.similarity_section(bank.datasets["query"])
    found = find_ids(layout)
    for ident in (ids.Similarity.SELF_THINNED, ids.Similarity.SELF_UNTHINNED, ids.Similarity.GRID, ids.Similarity.TARGET, ids.Similarity.SPLIT, ids.Similarity.METRIC,
                  ids.Similarity.FILTER_PROTEIN, ids.Similarity.FILTER_CELL_TYPE, ids.Similarity.FILTER_MODALITY, ids.Similarity.CANCEL, ids.Similarity.PROGRESS,
                  "sim-download-login"):
        assert ident in found, ident
    text = str(layout)
    assert "/guide/self-similarity" in text and "/guide/similarity" in text


def test_results_change_when_the_bank_changes(bank, tmp_path):
    """Visibility change, new dataset and deletion all reach cached results (bank version)."""
    query = bank.datasets["query"]
    before = {r["dataset_id"] for r in api(bank, "dave", "query").get_json()["results"]}
    with bank.server.app_context():
        extra = ingest(bank, "late", "carol", title="Carol late private", visibility="private",
                       files=make_files(tmp_path / "late", "late", n=DENSE, seed=77))
        carol = db.session.get(User, bank.users["carol"])
        assert extra not in {r["dataset_id"] for r in search.similar_datasets(
            db.session.get(User, bank.users["dave"]), query)}
        set_visibility(carol, extra, "public")
        db.session.remove()
    after = {r["dataset_id"] for r in api(bank, "dave", "query").get_json()["results"]}
    assert after == before | {extra}
    with bank.server.app_context():
        delete_dataset(db.session.get(User, bank.users["carol"]), extra)
        db.session.remove()
    bank.datasets.pop("late")
    assert {r["dataset_id"] for r in api(bank, "dave", "query").get_json()["results"]} == before


# --------------------------------------------------------------------------------------------
# /search: search with your own file

def upload_contents(paths):
    import base64

    return ([f"data:text/csv;base64,{base64.b64encode(Path(p).read_bytes()).decode()}" for p in paths],
            [Path(p).name for p in paths])


def test_own_file_search_is_private_and_stores_nothing(bank, tmp_path):
    files = make_files(tmp_path / "mine", "my cell", n=DENSE, seed=99)
    contents, names = upload_contents([f.path for f in files])
    token, message = call(bank, "alice", search_cb.receive_query_files, contents, names)
    assert token and "Ready" in text_of(message) and "my cell.csv" in text_of(message)
    staged = Path(bank.settings.staging_dir) / "query" / str(bank.users["alice"]) / token
    assert staged.is_dir()
    with bank.server.app_context():
        n_datasets = db.session.query(Dataset).count()
    # bob cannot use alice's token
    rows, status, summary = call(bank, "bob", search_cb.run_query, Progress(), 1, token, 30, None, None, None, None, None,
                                 server=bank.server)
    assert rows == [] and summary is None
    progress = Progress()
    rows, status, summary = call(bank, "alice", search_cb.run_query, progress, 1, token, 100, None, None, None, None, None,
                                 server=bank.server)
    found = {r["dataset_id"] for r in rows}
    assert found == ids_of(bank, "query", "alice_private", "bob_shared", "carol_public", "carol_sparse")
    assert "not in the databank" in text_of(summary) and progress[-1][0] == 100
    assert not staged.exists()                                   # the file itself is gone
    with bank.server.app_context():
        assert db.session.query(Dataset).count() == n_datasets   # nothing was ingested
    # same fingerprints, new filters, no file needed any more
    rows, _, _ = call(bank, "alice", search_cb.run_query, Progress(), 2, token, 30, None, "LAT", None, None, None,
                      server=bank.server)
    assert {r["dataset_id"] for r in rows} == ids_of(bank, "bob_shared", "carol_public")
    data, _ = call(bank, "alice", search_cb.download_query_results, 1, rows, 30, "thinned")
    assert len(list(csv.DictReader(io.StringIO(data["content"])))) == 2


def test_own_file_search_refuses_anonymous_and_bad_files(bank, tmp_path):
    files = make_files(tmp_path / "x", "cellx", n=2000, seed=1)
    contents, names = upload_contents([f.path for f in files])
    token, message = call(bank, None, search_cb.receive_query_files, contents, names)
    assert token is None and "Log in" in text_of(message)
    token, message = call(bank, "alice", search_cb.receive_query_files, contents[1:], names[1:])     # a ROI alone
    assert token is None and "ROI" in text_of(message)
    two = make_files(tmp_path / "y", "celly", n=2000, seed=2)
    contents2, names2 = upload_contents([f.path for f in files + two])
    token, message = call(bank, "alice", search_cb.receive_query_files, contents2, names2)
    assert token is None and "exactly one detection file" in text_of(message)
    rows, status, _ = call(bank, None, search_cb.run_query, Progress(), 1, "0" * 32, 30, None, None, None, None, None,
                           server=bank.server)
    assert rows == [] and "Log in" in text_of(status)
    rows, status, _ = call(bank, "alice", search_cb.run_query, Progress(), 1, "../../etc", 30, None, None, None, None, None,
                           server=bank.server)
    assert rows == [] and "choose the file again" in text_of(status)


def test_search_page_layout(bank):
    layout = page_layout("/search")
    with bank.server.test_request_context("/search"):
        anonymous = layout()
    assert "own-login" in find_ids(anonymous) and "own-upload" not in find_ids(anonymous)
    with bank.server.test_request_context("/search"):
        login_user(db.session.get(User, bank.users["alice"]))
        signed_in = layout()
        logout_user()
    found = find_ids(signed_in)
    assert {"own-upload", "own-run", "own-grid", "own-cancel", "own-progress"} <= set(found)


# --------------------------------------------------------------------------------------------
# /compare

def test_compare_options_are_readable_datasets(bank):
    options, chosen, note = call(bank, "alice", compare_cb.load_compare_options,
                                 f"?ids={bank.datasets['query']},{bank.datasets['bob_private']},"
                                 f"{bank.datasets['carol_public']}")
    values = {o["value"] for o in options}
    assert bank.datasets["bob_private"] not in values and bank.datasets["alice_private"] in values
    assert chosen == [bank.datasets["query"], bank.datasets["carol_public"]]
    assert "1 dataset(s) named in the link are not available" in text_of(note)
    _, _, note = call(bank, "alice", compare_cb.load_compare_options, f"?ids={bank.datasets['query']}")
    assert note is None


def test_compare_link_with_more_than_ten_ids_says_what_is_left_out(bank, monkeypatch):
    """Issue 12 item 11: more than MAX_COMPARE ids in the link were cut silently."""
    from databank import compare

    readable = [bank.datasets[k] for k in ("query", "alice_private", "bob_shared", "carol_public", "carol_sparse")]
    monkeypatch.setattr(compare, "MAX_COMPARE", 3)
    _, chosen, note = call(bank, "alice", compare_cb.load_compare_options, "?ids=" + ",".join(map(str, readable)))
    assert chosen == readable[:3]
    text = text_of(note)
    assert "names 5 datasets; at most 3" in text and f"#{readable[3]}, #{readable[4]} are left out" in text


def test_compare_job(bank):
    picks = [bank.datasets[k] for k in ("query", "carol_public", "bob_shared")]
    heatmap, overlay, message, table = call(bank, "alice", compare_cb.run_compare, Progress(), picks, 30, "thinned",
                                            server=bank.server)
    assert message is None
    z = heatmap.data[0].z
    assert len(z) == 3 and all(len(row) == 3 for row in z)
    assert len(overlay.data) == 3 and "Carol public LAT" in text_of(table)
    denied = call(bank, "alice", compare_cb.run_compare, Progress(), picks + [bank.datasets["bob_private"]], 30, "thinned",
                  server=bank.server)
    assert "not available" in text_of(denied[2])
    few = call(bank, "alice", compare_cb.run_compare, Progress(), picks[:1], 30, "thinned", server=bank.server)
    assert "at least two" in text_of(few[2])
    many = call(bank, "alice", compare_cb.run_compare, Progress(), list(range(1, 13)), 30, "thinned", server=bank.server)
    assert "at most 10" in text_of(many[2])


def test_compare_page_layout(bank):
    with bank.server.test_request_context("/compare"):
        found = find_ids(page_layout("/compare")())
    assert {"cmp-datasets", "cmp-heatmap", "cmp-overlay", "cmp-target", "cmp-cancel"} <= set(found)


# --------------------------------------------------------------------------------------------
# the thread job manager (background callbacks without fork)

def test_thread_job_manager_runs_reports_cancels_and_reports_errors(bank, tmp_path):
    import threading
    import time

    from server.dash_jobs import ThreadJobManager

    manager = ThreadJobManager(tmp_path / "jobs")
    seen = {}

    def job(set_progress, steps):
        from flask import has_app_context

        from server.dash_jobs import job_cookies

        seen["app_context"] = has_app_context()
        seen["cookies"] = dict(job_cookies())
        for k in range(steps):
            set_progress((k, f"step {k}"))
            time.sleep(0.02)
        if steps == 0:
            raise RuntimeError("broken job")
        return ["done", steps]

    spec = manager.make_job_fn(job, True)

    def wait_done(key, job_id, timeout=10.0):
        end = time.time() + timeout
        while manager.job_running(job_id) and not manager.result_ready(key) and time.time() < end:
            time.sleep(0.02)

    with bank.server.test_request_context("/"):
        job_id = manager.call_job_fn("anonymous-k-ok", spec, [3], {"cookies": {"session": "x"}})
        wait_done("anonymous-k-ok", job_id)
        assert manager.job_running(job_id)                 # finished, result not yet collected
        assert manager.get_result("anonymous-k-ok", job_id) == ["done", 3]
        assert not manager.job_running(job_id)             # collected: the job is gone
        assert manager.get_result("anonymous-k-ok", job_id) is manager.UNDEFINED     # collected once only
        assert seen == {"app_context": True, "cookies": {"session": "x"}}

        job_id = manager.call_job_fn("anonymous-k-cancel", spec, [10_000], {})
        end = time.time() + 10
        while not manager.get_progress("anonymous-k-cancel") and time.time() < end:
            time.sleep(0.02)
        manager.terminate_job(job_id)
        end = time.time() + 10
        while manager.job_running(job_id) and time.time() < end:
            time.sleep(0.02)
        assert not manager.job_running(job_id)
        assert manager.get_result("anonymous-k-cancel", job_id) is manager.UNDEFINED      # cancelled: no result

        job_id = manager.call_job_fn("anonymous-k-error", spec, [0], {})
        wait_done("anonymous-k-error", job_id)
        error = manager.get_result("anonymous-k-error", job_id)
        assert "broken job" in error["background_callback_error"]["msg"]
    assert not [t for t in threading.enumerate() if t.name.startswith("nanoorg-job-") and t.is_alive()]


def test_why_no_similarity_on_the_dataset_page_own_file_search_and_api(bank, tmp_path):
    """Issue 12 item 3: a 2 x 2 um field gives no tile, and every place says so instead of '–'."""
    small_roi = [(0.5, 0.5), (2.5, 0.5), (2.5, 2.5), (0.5, 2.5)]
    with bank.server.app_context():
        small = ingest(bank, "small", "carol", title="Carol public small field", visibility="public",
                       files=make_files(tmp_path / "small", "small", n=DENSE, seed=5, roi=small_roi))
        db.session.remove()
    try:
        body = api(bank, "dave", "small").get_json()
        reason = body["no_scores_reason"]
        assert "no 3 × 3 µm tile fits inside the ROI(s)" in reason["unthinned"] and "4.0 µm² of ROI" in reason["unthinned"]
        assert reason["thinned"] == reason["unthinned"] == reason["self"]
        assert all(r["thinned_mean"] is None and r["unthinned_mean"] is None for r in body["results"])
        assert api(bank, "dave", "query").get_json()["no_scores_reason"] == {"unthinned": None, "thinned": None,
                                                                             "self": None}
        # sparse dataset: scores at 30, none at 100, with the reason
        sparse = api(bank, "dave", "carol_sparse", "?target=100").get_json()["no_scores_reason"]
        assert sparse["unthinned"] is None and "900 localisations needed to thin to 100 loc/µm²" in sparse["thinned"]
        # the dataset page: self-similarity message and the search status
        *_, message = call(bank, "dave", cb.show_self_similarity, 30, False, str(small))
        assert "No self-similarity: no 3 × 3 µm tile fits" in text_of(message)
        rows, status, _ = run_search(bank, "dave", small)
        assert "No similarity scores: no 3 × 3 µm tile fits" in text_of(status)
        # own-file search with the same small field
        files = make_files(tmp_path / "mine", "tiny", n=DENSE, seed=6, roi=small_roi)
        contents, names = upload_contents([f.path for f in files])
        token, _ = call(bank, "alice", search_cb.receive_query_files, contents, names)
        rows, status, summary = call(bank, "alice", search_cb.run_query, Progress(), 1, token, 30, None, None, None, None,
                                     None, server=bank.server)
        assert "No similarity scores: no 3 × 3 µm tile fits inside the ROI(s) of your file" in text_of(status)
    finally:
        with bank.server.app_context():
            delete_dataset(db.session.get(User, bank.users["carol"]), small)
            db.session.remove()
        bank.datasets.pop("small")


def test_self_similarity_binning_follows_the_number_of_pairs():
    """Issue 12 item 12: 3-28 pairs in 0.01-wide bins looked like a barcode."""
    import numpy as np

    from components.similarity_figures import MAX_BINS, STRIP_BELOW, bins_for, self_similarity_figure

    rng = np.random.default_rng(1)

    part_max = {}

    def part(n):
        lambdas = rng.gamma(4.0, 0.1, n) * (0.1 if n == 200 else 1.0)     # one narrow set (thinned-like)
        part_max[n] = lambdas.max()
        return {"lambdas": lambdas.tolist(), "within_file": [bool(k % 2) for k in range(n)],
                "summary": {"n_pairs": n}, "n_tiles": 10}

    few = self_similarity_figure(part(12), label="Thinned to 30 loc/µm²")
    assert [t.type for t in few.data] == ["box"] and few.data[0].boxpoints == "all" and len(few.data[0].x) == 12
    assert "each pair shown" in few.layout.title.text
    split = self_similarity_figure(part(STRIP_BELOW - 2), label="Unthinned", split=True)
    assert [len(t.x) for t in split.data] == [14, 14]
    for n in (STRIP_BELOW, 200, 20_000):
        figure = self_similarity_figure(part(n), label="Unthinned")
        (bars,) = figure.data
        occupied = np.count_nonzero(bars.y)
        assert bars.type == "bar" and sum(bars.y) == n
        width = float(bars.width)
        assert np.count_nonzero(np.asarray(bars.x) - width / 2 < max(part_max[n], 0)) <= bins_for(n) + 1
        assert n / occupied >= n / bins_for(n)           # no barcode: occupied bins hold several pairs each
    assert bins_for(27) == 6 and bins_for(200) == 12 and bins_for(10 ** 7) == MAX_BINS
