"""Limits: request size, metadata field lengths, long text out of lists, and bad input that used to
answer 500 (issue 8 items 6, 8, 9)."""

from __future__ import annotations

import json
import uuid

import pytest

import ids
from databank import datasets
from databank.metadata import LONG_TEXT_FIELDS, METADATA_FIELDS, MetadataError, clean_metadata
from server.routes_upload import CHUNK_BYTES
from tests.web import support

HUGE = "99999999999999999999999"
TEXT_FIELDS = [f for f in METADATA_FIELDS if f.kind in ("text", "longtext")]
GOOD = dict(title="A title", modality="dSTORM", software="ThunderSTORM")   # dSTORM: every field is kept


# --------------------------------------------------------------------------------------------
# item 6: request size

def test_oversized_anonymous_callback_post_gets_413_json(server, settings):
    client = server.test_client()
    token = support.csrf_cookie(client)
    limit = settings.max_request_mb * 1024 * 1024
    body = b'{"output": "x", "inputs": [], "pad": "' + b"a" * limit + b'"}'
    response = client.post("/_dash-update-component", data=body, content_type="application/json",
                           headers={"X-CSRFToken": token})
    assert response.status_code == 413
    assert f"{settings.max_request_mb} MB" in response.get_json()["error"]
    assert "Upload page" in response.get_json()["error"]


def test_oversized_form_post_gets_a_page_not_a_crash(server, settings):
    response = server.test_client().post("/login", data=b"x" * (settings.max_request_mb * 1024 * 1024 + 1),
                                         content_type="application/x-www-form-urlencoded")
    assert response.status_code == 413 and "Request too large" in response.text


def test_chunked_upload_keeps_its_own_per_chunk_limit(server, user, signed_in, settings):
    assert CHUNK_BYTES < settings.max_request_mb * 1024 * 1024    # a chunk always fits the global limit
    client = signed_in(user)
    headers = {"X-CSRFToken": support.csrf_cookie(client)}
    upload_id = client.post("/upload/start", headers=headers).get_json()["upload_id"]
    response = client.post(f"/upload/chunk/{upload_id}?index=0&offset=0&last=0&name=big.csv",
                           data=b"0" * (CHUNK_BYTES + 1), headers=headers)
    assert response.status_code == 413 and "A chunk may hold at most" in response.get_json()["error"]
    fine = client.post(f"/upload/chunk/{upload_id}?index=0&offset=0&last=0&name=big.csv",
                       data=b"0" * 1024, headers=headers)
    assert fine.status_code == 200, fine.text


# --------------------------------------------------------------------------------------------
# item 8: field caps

@pytest.mark.parametrize("field", TEXT_FIELDS, ids=lambda f: f.name)
def test_every_text_field_is_capped_with_a_clear_message(field):
    at_limit = clean_metadata(dict(GOOD, **{field.name: "x" * field.max_length}))
    assert len(at_limit[field.name]) == field.max_length
    with pytest.raises(MetadataError) as error:
        clean_metadata(dict(GOOD, **{field.name: "x" * (field.max_length + 1)}))
    assert error.value.errors == {field.name: f"is {field.max_length + 1:,} characters long; "
                                              f"at most {field.max_length:,} are allowed"}
    assert field.label in str(error.value)


def test_every_field_has_a_cap_no_larger_than_its_column():
    from databank.models import Dataset

    for field in METADATA_FIELDS:
        if field.kind in ("choice", "bool", "float"):      # bounded by their choices / type
            continue
        column = Dataset.__table__.columns[field.name]
        length = getattr(column.type, "length", None)
        assert field.max_length <= (length or 10_000), field.name


def test_cli_ingest_refuses_a_10_mb_field(capsys, monkeypatch, tmp_path):
    from cli import main

    monkeypatch.setenv("NANOORG_INSTANCE", str(tmp_path / "instance"))
    monkeypatch.setenv("NANOORG_SEED_DEMO", "0")
    assert main(["create-user", "cliuser", "--email", "c@example.org", "--password", "long enough pw"]) == 0
    folder = tmp_path / "files"
    support.write_small_files(folder, "cell1")
    meta = tmp_path / "meta.json"
    meta.write_text(json.dumps(dict(GOOD, experimental_details="x" * 10_000_000)))
    capsys.readouterr()
    code = main(["ingest", str(folder), "--metadata", str(meta), "--owner", "cliuser"])
    err = capsys.readouterr().err
    assert code != 0 and "Experimental details: is 10,000,000 characters long; at most 5,000 are allowed" in err


def test_upload_form_reports_an_overlong_field(app, user):
    from flask_login import login_user

    from callbacks import upload as cb
    from databank.users import find_user

    values = dict(GOOD, protein="P" * 201)
    meta_ids = [{"type": ids.Upload.META, "field": k} for k in values]
    with app.server.test_request_context("/upload"):
        login_user(find_user(user.username))
        request, result, errors = cb.submit_upload(1, None, None, list(values.values()), meta_ids, [], [], "private", "")
    assert request is None or request == cb.no_update
    assert errors["errors"]["protein"] == "is 201 characters long; at most 200 are allowed"
    assert "Protein: is 201 characters long" in str(result)


def test_form_inputs_carry_the_caps(app, user):
    from flask_login import login_user

    from databank.users import find_user
    from pages import upload as page

    with app.server.test_request_context("/upload"):
        login_user(find_user(user.username))
        layout = str(page.layout())
    for field in TEXT_FIELDS:
        assert f"maxLength={field.max_length}" in layout, field.name


def test_list_answers_leave_long_text_out(client, user, make_dataset):
    dataset_id = make_dataset(user, visibility="public", experimental_details="d" * 5000)
    listing = client.get("/api/datasets").get_json()
    assert listing["total"] == 1 and LONG_TEXT_FIELDS
    assert all(name not in listing["datasets"][0] for name in LONG_TEXT_FIELDS)
    assert len(client.get("/api/datasets").data) < 2000
    record = client.get(f"/api/datasets/{dataset_id}").get_json()
    assert record["experimental_details"] == "d" * 5000


# --------------------------------------------------------------------------------------------
# item 9: bad input never answers 500

@pytest.mark.parametrize("url", [
    f"/api/datasets/{HUGE}", f"/api/datasets/{HUGE}/similar", f"/api/datasets/{HUGE}/self-similarity",
    "/api/datasets/-5", "/api/datasets/1e3", "/api/datasets/0",
])
def test_huge_or_odd_ids_in_the_api_are_404_json(client, url):
    response = client.get(url)
    assert response.status_code == 404 and response.is_json and response.get_json()["error"]


@pytest.mark.parametrize("query", ["offset=9223372036854775808", "offset=-1", "limit=1e9", f"limit={HUGE}",
                                   "offset=abc", "density__gt=nan-ish"])
def test_out_of_range_query_parameters_are_400_json(client, query):
    response = client.get(f"/api/datasets?{query}")
    assert response.status_code == 400 and response.is_json and response.get_json()["error"]


@pytest.mark.parametrize("url", [f"/api/files/{HUGE}/download", f"/download/file/{HUGE}/original",
                                 f"/download/dataset/{HUGE}/originals.zip", f"/api/datasets/{HUGE}/download/rois"])
def test_huge_ids_in_downloads_are_404(user, signed_in, url):
    response = signed_in(user).get(url)
    assert response.status_code == 404


@pytest.mark.parametrize("path, card", [(f"/dataset/{HUGE}", "dataset-not-found"), (f"/file/{HUGE}", "not-found")])
def test_huge_ids_in_pages_show_the_not_found_card(client, path, card):
    status, text = support.render_page(client, path)
    assert status == 200 and card in text


def _grid(client, request_text: str):
    """The databank grid callback with a raw JSON getRowsRequest (built as text: deep nesting)."""
    body = ('{"output":"..databank-grid.getRowsResponse...databank-count.children..",'
            '"outputs":[{"id":"databank-grid","property":"getRowsResponse"},{"id":"databank-count","property":"children"}],'
            '"inputs":[{"id":"databank-grid","property":"getRowsRequest","value":%s}],'
            '"state":[{"id":"databank-search","property":"value","value":""}],'
            '"changedPropIds":["databank-grid.getRowsRequest"]}' % request_text)
    return client.post("/_dash-update-component", data=body, content_type="application/json",
                       headers={"X-CSRFToken": support.csrf_cookie(client)})


def _nested(depth: int) -> str:
    leaf = '{"filterType":"text","type":"contains","filter":"x"}'
    return '{"operator":"AND","conditions":[' * depth + leaf + "]}" * depth


@pytest.mark.parametrize("request_text, message", [
    ('{"startRow":1e20,"endRow":1.00000000000000001e20}', "the offset must be between 0 and 2147483647"),
    ('{"startRow":0,"endRow":100,"filterModel":{"title":%s}}' % _nested(50), "nested at most 3 levels deep"),
    ('{"startRow":0,"endRow":100,"filterModel":{"title":{"operator":"OR","conditions":[%s]}}}'
     % ",".join('{"filterType":"text","type":"contains","filter":"t%d"}' % k for k in range(3000)),
     "at most 50 conditions"),
    ('{"startRow":0,"endRow":100,"filterModel":{"n_locs":{"filterType":"number","type":"equals","filter":"abc"}}}',
     "No datasets:"),
])
def test_grid_requests_out_of_bounds_get_a_message(client, request_text, message):
    response = _grid(client, request_text)
    assert response.status_code == 200
    answer = response.get_json()["response"]
    assert answer["databank-grid"]["getRowsResponse"] == {"rowData": [], "rowCount": 0}
    assert message in answer["databank-count"]["children"]


def test_a_filter_nested_5000_deep_is_a_400_json_not_a_crash(client):
    response = _grid(client, '{"startRow":0,"endRow":100,"filterModel":{"title":%s}}' % _nested(5000))
    assert response.status_code == 400 and "nested too deeply" in response.get_json()["error"]


def test_filter_bounds_hold_in_the_data_layer(app, user, make_dataset):
    make_dataset(user, visibility="public", title="Findable")
    fine = {"title": {"operator": "OR", "conditions": [{"type": "contains", "filter": "Find"},
                                                        {"type": "contains", "filter": "zzz"}]}}
    with app.server.app_context():
        rows, total = datasets.list_datasets(None, filters=fine)
        assert total == 1 and rows[0]["title"] == "Findable"
        wide = {"title": {"operator": "OR", "conditions": [{"type": "contains", "filter": str(k)}
                                                            for k in range(datasets.MAX_FILTER_CONDITIONS + 1)]}}
        with pytest.raises(ValueError, match="at most"):
            datasets.list_datasets(None, filters=wide)


def test_an_unexpected_api_fault_is_json_not_html(client, monkeypatch):
    def broken(*_args, **_kwargs):
        raise RuntimeError("simulated fault")

    monkeypatch.setattr(datasets, "list_datasets", broken)
    response = client.get("/api/datasets")
    assert response.status_code == 500 and response.is_json
    assert "simulated fault" not in response.text and "<html" not in response.text.lower()


def test_unknown_api_paths_and_methods_are_json(client):
    assert client.get(f"/api/nothing/{uuid.uuid4().hex}").get_json()["status"] == 404
    token = support.csrf_cookie(client)
    response = client.delete("/api/datasets/1", headers={"X-CSRFToken": token})
    assert response.status_code == 405 and response.is_json

