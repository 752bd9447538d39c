"""Upload: chunk routes over HTTP (Flask test client), the plan / submit callbacks in a request
context, and the ingest background callback called directly with the session cookie in the Dash
callback context (the way a Diskcache job sees it)."""

from __future__ import annotations

import json
import shutil
import uuid
from contextvars import copy_context
from pathlib import Path

import numpy as np
import pytest
from dash import no_update
from dash.exceptions import PreventUpdate
from flask_login import login_user, logout_user
from sqlalchemy import func, select

from databank.metadata import METADATA_FIELDS
from databank.models import DataFile, Dataset, Roi, db
from databank.users import find_user
from databank import jobs
from server import routes_upload
from tests.web.support import callback_context
from callbacks import upload as cb
from tests.web import support
import ids

MiB = 1024 * 1024


# --------------------------------------------------------------------------------------------
# data written here (independent of the project's readers)

def thunderstorm_csv(path: Path, *, field_um: float = 12.0, density_per_um2: float = 200.0, seed: int = 0) -> Path:
    """ThunderSTORM CSV: uniform points over a field_um x field_um field at the given density."""
    rng = np.random.default_rng(seed)
    n = int(field_um * field_um * density_per_um2)
    x = rng.uniform(0, field_um * 1000, n)
    y = rng.uniform(0, field_um * 1000, n)
    frame = np.sort(rng.integers(1, 3000, n))
    sigma = rng.uniform(5, 25, n)
    lines = ['"id","frame","x [nm]","y [nm]","uncertainty [nm]"']
    lines += [f"{i + 1},{f},{a:.1f},{b:.1f},{s:.2f}" for i, (f, a, b, s) in enumerate(zip(frame, x, y, sigma))]
    path.write_text("\n".join(lines) + "\n")
    return path


def roi_csv(path: Path, vertices_um) -> Path:
    """Fiji polygon export: X,Y in micrometres."""
    path.write_text("X,Y\n" + "".join(f"{x},{y}\n" for x, y in vertices_um))
    return path


# polygons with a horizontal lower and a vertical left edge, so 3 x 3 um tiles fit (5 in all)
ROI_1 = [(0.5, 0.5), (7, 0.5), (6.8, 6), (0.5, 6.2)]
ROI_2 = [(1, 6.5), (11.5, 6.5), (11.3, 11.6), (1, 11.4)]
GOOD_META = {"title": "SLP76 mEos3.2 Jurkat 5 min", "modality": "PALM", "software": "ThunderSTORM",
             "protein": "SLP76", "fluorophore": "mEos3.2", "uniprot_id": "Q13094", "pixel_size_nm": 100,
             "drift_correction": True}


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, bytes]:
    folder = tmp_path_factory.mktemp("upload-files")
    thunderstorm_csv(folder / "cell1.csv")
    roi_csv(folder / "cell1_ROI_1.csv", ROI_1)
    roi_csv(folder / "cell1_ROI_2.csv", ROI_2)
    return {p.name: p.read_bytes() for p in folder.iterdir()}


# --------------------------------------------------------------------------------------------
# app, users, helpers

@pytest.fixture(autouse=True)
def limits(settings):
    """A 2 MB file limit and the default quota for these tests; staging emptied afterwards."""
    saved = settings.max_upload_mb, settings.upload_quota_mb
    settings.max_upload_mb, settings.upload_quota_mb = 2, None
    yield settings
    settings.max_upload_mb, settings.upload_quota_mb = saved
    shutil.rmtree(routes_upload.uploads_root(settings), ignore_errors=True)


def csrf(client) -> dict:
    return {"X-CSRFToken": support.csrf_cookie(client)}


@pytest.fixture
def alice(make_user, signed_in):
    return signed_in(make_user("alice"))


@pytest.fixture
def bob(make_user, signed_in):
    return signed_in(make_user("bob"))


def start(client) -> str:
    response = client.post("/upload/start", headers=csrf(client))
    assert response.status_code == 200, response.json
    return response.json["upload_id"]


def send(client, upload_id, index, name, data: bytes, *, chunk=routes_upload.CHUNK_BYTES):
    """Send one file the way chunked_upload.js does; returns the last response."""
    offset, response = 0, None
    while True:
        piece = data[offset:offset + chunk]
        last = int(offset + len(piece) >= len(data))
        response = client.post(f"/upload/chunk/{upload_id}",
                               query_string={"index": index, "offset": offset, "size": len(data), "last": last,
                                             "name": name},
                               data=piece, headers=csrf(client))
        assert response.status_code == 200, response.json
        offset += len(piece)
        if last:
            return response


def stage(client, named: dict[str, bytes]) -> str:
    upload_id = start(client)
    for index, (name, data) in enumerate(named.items()):
        send(client, upload_id, index, name, data)
    return upload_id


def staging_of(settings, user_id, upload_id) -> Path:
    return routes_upload.upload_dir(settings, user_id, upload_id)


def run_job(app, client, request):
    """Call the background callback as a Diskcache job would: the session cookie in ctx.cookies."""
    cookie = client.get_cookie("session")
    cookies = {"session": cookie.value} if cookie else {}
    progress = []

    def run():
        with callback_context(cookies=cookies, triggered_inputs=[{"prop_id": "upload-request.data"}]):
            return cb.run_ingest(progress.append, request)

    with app.server.app_context():
        result = copy_context().run(run)
    return result, progress


def unique_title(metadata=None):
    return dict(metadata or GOOD_META, title=f"{GOOD_META['title']} {uuid.uuid4().hex[:8]}")


def request_for(upload_id, names, metadata=None, **extra):
    return dict(upload_id=upload_id, files=list(names), metadata=unique_title(metadata),
                visibility=extra.get("visibility", "private"), shared_with=extra.get("shared_with", []),
                ingest_key=uuid.uuid4().hex)


def text_of(component) -> str:
    """All text inside a Dash component tree."""
    if component is None:
        return ""
    if isinstance(component, (str, int, float)):
        return str(component)
    if isinstance(component, (list, tuple)):
        return " ".join(text_of(c) for c in component)
    children = getattr(component, "children", None)
    href = getattr(component, "href", None)
    return text_of(children) + (f" [{href}]" if href else "")


def bank_state(settings):
    """What must not change after a failed ingest: row counts and the store's folders."""
    counts = (db.session.scalar(select(func.count(Dataset.id))), db.session.scalar(select(func.count(DataFile.id))),
              db.session.scalar(select(func.count(Roi.id))))
    store = sorted(str(p.relative_to(settings.store_dir)) for p in Path(settings.store_dir).rglob("*"))
    return counts, store


def user_id(app, name):
    with app.server.app_context():
        return find_user(name).id


# --------------------------------------------------------------------------------------------
# chunk route over HTTP

def test_upl001_anonymous_refused(app):
    client = app.server.test_client()
    client.get("/upload")
    uid = uuid.uuid4().hex
    url = f"/upload/chunk/{uid}?index=0&offset=0&size=3&last=1&name=a.csv"
    assert client.post(url, data=b"abc", headers=csrf(client)).status_code == 401
    assert client.post(url, data=b"abc", headers=csrf(client)).json["error"]
    assert client.post(url, data=b"abc").status_code == 400                      # no CSRF header
    assert client.post("/upload/start", headers=csrf(client)).status_code == 401
    assert client.post(f"/upload/cancel/{uid}", headers=csrf(client)).status_code == 401
    assert client.get(f"/upload/status/{uid}").status_code == 401


def test_upl002_csrf_required(alice):
    upload_id = start(alice)
    url = f"/upload/chunk/{upload_id}?index=0&offset=0&size=3&last=1&name=a.csv"
    assert alice.post(url, data=b"abc").status_code == 400
    assert alice.post(url, data=b"abc", headers={"X-CSRFToken": "forged"}).status_code == 400
    assert alice.post("/upload/start").status_code == 400
    assert alice.post(url, data=b"abc", headers=csrf(alice)).status_code == 200


def test_upl003_offsets_resume_and_409(alice, settings):
    upload_id = start(alice)
    data = bytes(range(256)) * 100
    url = f"/upload/chunk/{upload_id}"
    q = {"index": 0, "size": len(data), "name": "cell1.csv"}
    r = alice.post(url, query_string={**q, "offset": 10, "last": 0}, data=data[10:20], headers=csrf(alice))
    assert r.status_code == 409 and r.json["expected"] == 0
    r = alice.post(url, query_string={**q, "offset": 0, "last": 0}, data=data[:1000], headers=csrf(alice))
    assert r.status_code == 200 and r.json["received"] == 1000
    # the same chunk again (a retry after a lost answer) -> 409 telling where to go on
    r = alice.post(url, query_string={**q, "offset": 0, "last": 0}, data=data[:1000], headers=csrf(alice))
    assert r.status_code == 409 and r.json["expected"] == 1000 and "error" in r.json
    r = alice.post(url, query_string={**q, "offset": 2000, "last": 0}, data=data[2000:3000], headers=csrf(alice))
    assert r.status_code == 409 and r.json["expected"] == 1000
    r = alice.post(url, query_string={**q, "offset": 1000, "last": 1}, data=data[1000:], headers=csrf(alice))
    assert r.status_code == 200 and r.json["complete"] is True
    with alice.application.app_context():
        [staged] = routes_upload.staged_files(find_user("alice").id, upload_id)
    assert staged.name == "cell1.csv" and staged.path.read_bytes() == data and staged.path.name == "0.part"
    # a second "last" chunk after completion
    r = alice.post(url, query_string={**q, "offset": len(data), "last": 1}, data=b"", headers=csrf(alice))
    assert r.status_code == 409


def test_upl004_size_limit_413(alice, settings):
    upload_id = start(alice)
    limit = settings.max_upload_mb * MiB
    url = f"/upload/chunk/{upload_id}"
    # declared size too large: refused before any byte is stored
    r = alice.post(url, query_string={"index": 0, "offset": 0, "size": limit + 1, "last": 0, "name": "big.csv"},
                   data=b"x" * 10, headers=csrf(alice))
    assert r.status_code == 413 and "2 MB" in r.json["error"] and "big.csv" in r.json["error"]
    # no size declared: the bytes themselves cross the limit
    send(alice, upload_id, 1, "big2.csv", b"x" * limit)   # exactly the limit is fine
    r = alice.post(url, query_string={"index": 2, "offset": 0, "last": 0, "name": "big3.csv"},
                   data=b"x" * (limit + 1), headers=csrf(alice))
    assert r.status_code == 413
    # a chunk larger than 8 MiB is refused whatever the limit
    settings.max_upload_mb = 100
    r = alice.post(url, query_string={"index": 3, "offset": 0, "last": 0, "name": "c.csv"},
                   data=b"x" * (routes_upload.CHUNK_BYTES + 1), headers=csrf(alice))
    assert r.status_code == 413


def test_upl005_quota_and_ids(alice, settings):
    settings.upload_quota_mb = 3
    first = stage(alice, {"a.csv": b"x" * (2 * MiB)})
    second = start(alice)
    r = alice.post(f"/upload/chunk/{second}", query_string={"index": 0, "offset": 0, "size": 2 * MiB, "last": 0,
                                                           "name": "b.csv"},
                   data=b"x" * (2 * MiB), headers=csrf(alice))
    assert r.status_code == 413 and "staging space" in r.json["error"]
    assert alice.post(f"/upload/cancel/{first}", headers=csrf(alice)).json["removed"] is True
    # bad ids and indexes
    for bad in ("../../etc", "x" * 32, "0" * 31):
        r = alice.post(f"/upload/chunk/{bad}?index=0&offset=0&last=1&name=a.csv", data=b"a", headers=csrf(alice))
        assert r.status_code in (400, 404, 405)
    r = alice.post(f"/upload/chunk/{second}?index=-1&offset=0&last=1&name=a.csv", data=b"a", headers=csrf(alice))
    assert r.status_code == 400
    r = alice.post(f"/upload/chunk/{second}?index=0&offset=0&last=1", data=b"a", headers=csrf(alice))
    assert r.status_code == 400 and "name" in r.json["error"]


def test_upl006_names_are_never_paths(alice, settings, app):
    upload_id = start(alice)
    send(alice, upload_id, 0, "../../../etc/evil.csv", b"1,2\n")
    folder = staging_of(settings, user_id(app, "alice"), upload_id)
    assert sorted(p.name for p in folder.iterdir()) == ["0.json", "0.part"]
    assert json.loads((folder / "0.json").read_text())["name"] == "evil.csv"
    assert not (Path(settings.staging_dir).parent / "etc").exists()


def test_upl007_users_cannot_touch_each_others_uploads(alice, bob, app, settings):
    upload_id = stage(alice, {"a.csv": b"1,2\n"})
    folder = staging_of(settings, user_id(app, "alice"), upload_id)
    # bob cancelling or appending to alice's id only ever reaches his own staging folder
    assert bob.post(f"/upload/cancel/{upload_id}", headers=csrf(bob)).json["removed"] is False
    assert bob.get(f"/upload/status/{upload_id}").json["files"] == []
    assert folder.exists()
    with app.server.app_context():
        with pytest.raises(routes_upload.UploadError):
            routes_upload.staged_files(find_user("bob").id, upload_id)
    assert alice.delete(f"/upload/cancel/{upload_id}", headers=csrf(alice)).status_code == 200
    assert not folder.exists()


def test_upl009_file_chosen_again_replaces_the_older_one(alice, app):
    upload_id = start(alice)
    send(alice, upload_id, 0, "cell1.csv", b"old")
    send(alice, upload_id, 1, "cell1_ROI_1.csv", b"X,Y\n")
    alice.post(f"/upload/chunk/{upload_id}", query_string={"index": 2, "offset": 0, "size": 11, "last": 0,
                                                           "name": "cell1.csv"}, data=b"new", headers=csrf(alice))
    with app.server.app_context():
        uid = find_user("alice").id
        with pytest.raises(routes_upload.UploadError, match="cell1.csv: the file has not been received"):
            routes_upload.staged_files(uid, upload_id, ["cell1.csv"])
        send_rest = alice.post(f"/upload/chunk/{upload_id}", query_string={"index": 2, "offset": 3, "size": 11,
                                                                          "last": 1, "name": "cell1.csv"},
                               data=b"-version", headers=csrf(alice))
        assert send_rest.status_code == 200
        staged = routes_upload.staged_files(uid, upload_id, ["cell1.csv", "cell1_ROI_1.csv"])
        assert [(f.name, f.path.read_bytes()) for f in staged] == [("cell1.csv", b"new-version"),
                                                                  ("cell1_ROI_1.csv", b"X,Y\n")]


def test_upl008_hundred_megabytes(alice, settings, app):
    settings.max_upload_mb = 120
    data = bytes(range(251)) * (100 * MiB // 251 + 1)
    upload_id = start(alice)
    response = send(alice, upload_id, 0, "big.csv", data)
    assert response.json["complete"] and response.json["received"] == len(data)
    with app.server.app_context():
        [staged] = routes_upload.staged_files(find_user("alice").id, upload_id)
        assert staged.path.stat().st_size == len(data)
        with open(staged.path, "rb") as handle:
            handle.seek(len(data) - 1000)
            assert handle.read() == data[-1000:]


# --------------------------------------------------------------------------------------------
# page and plan / submit callbacks (request context)

def test_upl010_page_anonymous_and_signed_in(app, make_user):
    from pages import upload as page

    make_user("alice"), make_user("bob")

    with app.server.test_request_context("/upload"):
        anonymous = page.layout()
        assert "/login?next=/upload" in str(anonymous) and "upload-submit" not in str(anonymous)
        login_user(find_user("alice"))
        signed_in = str(page.layout())
        for field in METADATA_FIELDS:
            assert f"'field': '{field.name}'" in signed_in, field.name
        assert "fixed-cell" in signed_in and "upload-drop-zone" in signed_in
        assert "bob" not in signed_in and "upload-share-with" in signed_in   # names are typed, never listed
        # the callbacks refuse anonymous users on the server side
        logout_user()
        assert "Sign in" in text_of(cb.show_plan({"files": [{"index": 0, "name": "a.csv", "size": 1}]})[0])
        request, result, _ = cb.submit_upload(1, {"upload_id": uuid.uuid4().hex, "files": []}, None,
                                              [], [], [], [], "private", [])
        assert request is no_update and "Sign in" in text_of(result)
    client = app.server.test_client()
    assert client.get("/upload").status_code == 200


def test_upl011_plan(app, settings, make_user):
    make_user("alice")
    names = ["cell1.csv", "cell1_ROI_1.csv", "cell1_ROI_2.csv", "cell2.h5", "virus.exe", "photo.png",
             "other_ROI_1.csv"]
    selection = {"nonce": 3, "files": [{"index": i, "name": n, "size": 100} for i, n in enumerate(names)]}
    with app.server.test_request_context("/upload"):
        login_user(find_user("alice"))
        view, plan = cb.show_plan(selection)
        text = text_of(view)
        assert plan == {"ok": False, "send": [], "nonce": 3}
        assert "ROI 1 of cell1.csv" in text and "ROI 2 of cell1.csv" in text
        assert "virus.exe" in text and "photo.png" in text and "not a supported file type" in text
        assert "other_ROI_1.csv" in text and "no detection file" in text
        assert "convex hull" in text                       # cell2.h5 has no ROI file
        good = {"nonce": 4, "files": selection["files"][:4]}
        view, plan = cb.show_plan(good)
        assert plan == {"ok": True, "send": [0, 1, 2, 3], "nonce": 4}
        too_big = {"nonce": 5, "files": [{"index": 0, "name": "cell1.csv", "size": 3 * MiB}]}
        view, plan = cb.show_plan(too_big)
        assert not plan["ok"] and "limit is 2 MB" in text_of(view)


def test_upl011b_misnamed_roi_file_stops_the_plan(app, settings, make_user):
    """Issue 12 item 1: 'cell7-ROI1.csv' was planned as a second detection file and uploaded."""
    make_user("alice")
    names = ["cell7.csv", "cell7-ROI1.csv"]
    selection = {"nonce": 1, "files": [{"index": i, "name": n, "size": 60} for i, n in enumerate(names)]}
    with app.server.test_request_context("/upload"):
        login_user(find_user("alice"))
        view, plan = cb.show_plan(selection)
    text = text_of(view)
    assert plan == {"ok": False, "send": [], "nonce": 1}
    assert "2 detection file(s)" not in text
    assert "rename it to cell7_ROI_1.csv" in text and "{DETECTION_FILE_NAME}_ROI*.csv" in text


def _form(metadata):
    text_fields = [f for f in METADATA_FIELDS if f.kind != "bool"]
    bool_fields = [f for f in METADATA_FIELDS if f.kind == "bool"]
    values = [metadata.get(f.name, "" if f.kind != "float" else None) for f in text_fields]
    field_ids = [{"type": ids.Upload.META, "field": f.name} for f in text_fields]
    bools = [bool(metadata.get(f.name)) for f in bool_fields]
    bool_ids = [{"type": ids.Upload.META_BOOL, "field": f.name} for f in bool_fields]
    return values, field_ids, bools, bool_ids


def test_upl012_submit_checks_before_anything_is_consumed(alice, bob, app, settings, files):
    upload_id = stage(alice, files)
    staged = {"upload_id": upload_id, "files": [{"name": n, "size": len(b)} for n, b in files.items()]}
    selection = {"files": staged["files"]}
    with app.server.test_request_context("/upload"):
        alice_user = find_user("alice")
        login_user(alice_user)
        # nothing chosen yet
        request, result, _ = cb.submit_upload(1, None, None, *_form(GOOD_META), "private", [])
        assert request is no_update and "Choose your detection files" in text_of(result)
        # bad fields: each named, with the reason; the staged files stay for the next try
        bad = dict(GOOD_META, title="", uniprot_id="P1", doi="http://example.org/x")
        request, result, errors = cb.submit_upload(1, staged, selection, *_form(bad), "shared", [])
        text = text_of(result)
        assert request is no_update
        assert "Title: is required" in text and "UniProt ID: is not a UniProt accession" in text
        assert "DOI: is not a DOI" in text and "Share with" in text
        assert set(errors["errors"]) == {"title", "uniprot_id", "doi", "shared_with"}
        assert staging_of(settings, alice_user.id, upload_id).exists()
        # live feedback shows the format errors next to the fields
        values, ids, _, _ = _form(bad)
        invalid, feedback = cb.live_feedback(values, ids, errors)
        by_field = {i["field"]: (bad_, msg) for i, bad_, msg in zip(ids, invalid, feedback)}
        assert by_field["uniprot_id"][0] and "UniProt" in by_field["uniprot_id"][1]
        assert by_field["title"][0] and not by_field["protein"][0]
        # a taken title is refused on submit
        taken = Dataset(owner_id=alice_user.id, storage_key=uuid.uuid4().hex, title=GOOD_META["title"].upper(),
                        modality="PALM", software="SMAP")
        db.session.add(taken)
        db.session.commit()
        request, result, errors = cb.submit_upload(1, staged, selection, *_form(GOOD_META), "private", [])
        assert request is no_update and "exists already" in text_of(result)
        db.session.delete(taken)
        db.session.commit()
        # all good: a request for the job, with the user's choices (no user id in it)
        request, result, errors = cb.submit_upload(1, staged, selection, *_form(GOOD_META), "shared", ["bob"])
        assert request, text_of(result)
        assert request["upload_id"] == upload_id and request["visibility"] == "shared"
        assert request["shared_with"] == ["bob"] and request["metadata"]["title"] == GOOD_META["title"]
        assert "user" not in json.dumps(request)


def test_upl013_callbacks_refuse_anonymous_over_http(app, client, alice):
    """A forged callback POST from a signed-out browser gets no upload request and no plan."""
    outputs = [("upload-request", "data"), ("upload-result", "children"), ("upload-meta-errors", "data")]
    state = [("upload-staged", "data", {"upload_id": uuid.uuid4().hex, "files": [{"name": "a.csv"}]}),
             ("upload-selection", "data", None), [], [], [], [],
             ("upload-visibility", "value", "public"), ("upload-share-with", "value", [])]
    response = support.dash_post(client, outputs, [("upload-submit", "n_clicks", 1)], state)
    assert response.status_code == 200 and "Sign in to upload data" in response.text
    assert "upload_id" not in response.json["response"].get("upload-request", {})
    response = support.dash_post(client, [("upload-plan-view", "children"), ("upload-plan", "data")],
                                 [("upload-selection", "data", {"files": [{"index": 0, "name": "a.csv", "size": 1}]})])
    assert "Sign in" in response.text and '"ok": true' not in response.text
    # without the CSRF header even a signed-in browser is refused
    response = support.dash_post(alice, outputs, [("upload-submit", "n_clicks", 1)], state, csrf=False)
    assert response.status_code == 400


# --------------------------------------------------------------------------------------------
# the ingest job

def test_upl020_ingest_job_creates_dataset(alice, bob, app, settings, files):
    upload_id = stage(alice, files)
    result, progress = run_job(app, alice, request_for(upload_id, files, visibility="shared", shared_with=["bob"]))
    card, errors, consumed = result
    text = text_of(card)
    assert "Dataset uploaded" in text, text
    assert consumed["outcome"] == "done" and consumed["upload_id"] == upload_id
    assert progress[0][1] == "0%" and progress[-1][:2] == (100, "100%") and any("cell1.csv" in p[2] for p in progress)
    with app.server.app_context():
        dataset = db.session.get(Dataset, consumed["dataset_id"])
        assert f"[/dataset/{dataset.id}]" in text
        assert dataset.owner.username == "alice" and dataset.visibility == "shared" and dataset.shared_with == ["bob"]
        assert dataset.protein == "SLP76" and dataset.pixel_size_nm == 100 and dataset.drift_correction is True
        [data_file] = dataset.files
        assert data_file.name == "cell1.csv" and len(data_file.rois) == 2 and data_file.roi_source == "file"
        assert data_file.n_locs == 12 * 12 * 200
        assert data_file.density and data_file.coverage and data_file.precision_median
    assert not staging_of(settings, user_id(app, "alice"), upload_id).exists()


def test_upl021_job_user_comes_from_the_cookie(alice, bob, app, settings, files):
    upload_id = stage(alice, files)
    # bob's session asking for alice's upload id: not found under bob, alice's files untouched
    (card, _, _), _ = run_job(app, bob, request_for(upload_id, files))
    assert "not found" in text_of(card)
    assert staging_of(settings, user_id(app, "alice"), upload_id).exists()
    # no cookie / a forged cookie: treated as signed out
    anonymous = app.server.test_client()
    (card, _, _), _ = run_job(app, anonymous, request_for(upload_id, files))
    assert "Sign in" in text_of(card)
    with app.server.app_context():
        assert jobs.user_id_from_session_cookie({"session": "forged.value.sig"}, app.server) is None
        assert jobs.user_id_from_session_cookie({"session": alice.get_cookie("session").value}, app.server) == find_user("alice").id
    with pytest.raises(PreventUpdate):
        run_job(app, alice, None)


CORRUPT = np.random.default_rng(7).integers(0, 255, 4096, dtype=np.uint8).tobytes()


@pytest.mark.parametrize("case, extra, meta, expected", [
    ("exe", {"virus.exe": b"MZ\x90\x00"}, {}, "virus.exe"),
    ("png", {"photo.png": b"\x89PNG\r\n\x1a\n"}, {}, "photo.png"),
    ("corrupt-csv", {"broken.csv": CORRUPT}, {}, "broken.csv"),
    ("corrupt-h5", {"broken.h5": CORRUPT}, {}, "broken.h5"),
    ("orphan-roi", {"cell9_ROI_1.csv": b"X,Y\n1,1\n2,1\n2,2\n"}, {}, "cell9_ROI_1.csv"),
    ("bad-metadata", {}, {"uniprot_id": "not-an-accession"}, "UniProt ID"),
    ("bad-share", {}, {}, "nobody-here"),
])
def test_upl022_failed_ingest_leaves_nothing(alice, app, settings, files, case, extra, meta, expected):
    with app.server.app_context():
        before = bank_state(settings)
    named = {**files, **extra}
    upload_id = stage(alice, named)
    request = request_for(upload_id, named, dict(GOOD_META, **meta))
    if case == "bad-share":
        request.update(visibility="shared", shared_with=["nobody-here"])
    (card, errors, consumed), progress = run_job(app, alice, request)
    text = text_of(card)
    assert "failed" in text and expected in text, text
    assert consumed["outcome"] == "failed"
    if case == "bad-metadata":
        assert "uniprot_id" in errors["errors"]
    with app.server.app_context():
        assert bank_state(settings) == before
    assert not staging_of(settings, user_id(app, "alice"), upload_id).exists()
    assert not any(p.name.startswith("ingest-") for p in Path(settings.staging_dir).iterdir())


def test_upl023_incomplete_upload_is_refused(alice, app, settings, files):
    upload_id = start(alice)
    data = files["cell1.csv"]
    alice.post(f"/upload/chunk/{upload_id}", query_string={"index": 0, "offset": 0, "size": len(data), "last": 0,
                                                           "name": "cell1.csv"},
               data=data[:100], headers=csrf(alice))
    (card, _, _), _ = run_job(app, alice, request_for(upload_id, ["cell1.csv"]))
    assert "cell1.csv" in text_of(card) and "not been received completely" in text_of(card)
    assert not staging_of(settings, user_id(app, "alice"), upload_id).exists()


def test_upl024_job_slots_bound_concurrency(app, settings):
    messages = []
    with app.server.app_context():
        with jobs.slot(slots=1):
            with pytest.raises(jobs.QueueTimeout):
                with jobs.slot(lambda f, m: messages.append(m), slots=1, timeout=0.3, poll=0.1):
                    pass
        assert messages and messages[0].startswith("Queued")
        with jobs.slot(slots=1):       # released again
            pass
        # a slot held by a dead process is taken over
        cache = jobs._slot_cache(settings)
        cache.set("slot:0", {"host": __import__("socket").gethostname(), "pid": 2 ** 22 + 12345, "token": "x"})
        cache.close()
        with jobs.slot(slots=1, timeout=1):
            pass
