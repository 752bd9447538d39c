"""Stored XSS through every metadata field (dataset page, databank grid, server-rendered forms) and
CSV formula injection in every CSV export that holds user text (attacks that held, kept held)."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest

from config import PROJECT_ROOT
from databank import datasets, search
from databank.metadata import METADATA_FIELDS
from databank.models import User, db
from tests.web import support
from tests.web.helpers_datasets import as_user, client_as

SCRIPT = '<script>alert(1)</script><img src=x onerror=alert(2)>'
# a payload per field kind that passes validation (stored XSS must survive the checks to matter)
PAYLOADS = {
    "text": SCRIPT, "longtext": SCRIPT + "\n" + SCRIPT,
    "url": 'https://e.example/"><script>alert(3)</script>',
    "email": '<script>alert(4)</script>@e.example',
    "doi": '10.1234/"><script>alert(5)</script>',
}
FORMULAS = {"title": "=HYPERLINK(\"https://evil.example\",\"click\")", "protein": "+1+cmd|' /C calc'!A0",
            "cell_type": "-2+3", "fluorophore": "@SUM(A1:A9)", "tags": "=1+1, tag", "software": "other",
            "uniprot_id": None, "modality": "PALM"}
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _walk(node, found):
    """Every Dash component (type, props) in a serialised layout."""
    if isinstance(node, dict):
        if "type" in node and "props" in node:
            found.append((node["type"], node["props"]))
        for value in node.values():
            _walk(value, found)
    elif isinstance(node, list):
        for value in node:
            _walk(value, found)
    return found


@pytest.fixture(scope="module")
def xss_dataset(bank):
    """Alice's public dataset with a script payload in every free-text metadata field."""
    changes = {f.name: PAYLOADS[f.kind] for f in METADATA_FIELDS if f.kind in PAYLOADS}
    changes["title"] = "XSS " + SCRIPT
    with bank.server.app_context():
        datasets.update_metadata(db.session.get(User, bank.users["alice"]), bank.datasets["public"], changes)
        db.session.remove()
    return bank.datasets["public"], changes


def test_every_text_field_took_a_payload(xss_dataset):
    _, changes = xss_dataset
    kinds = {f.kind for f in METADATA_FIELDS if f.name in changes}
    assert kinds == set(PAYLOADS) and len(changes) >= 15


@pytest.mark.parametrize("user", [None, "dave", "alice"])
def test_dataset_page_renders_every_payload_as_text(bank, xss_dataset, user):
    dataset_id, changes = xss_dataset
    status, text = support.render_page(client_as(bank, user), f"/dataset/{dataset_id}")
    assert status == 200
    components = _walk(json.loads(text), [])
    shown = json.dumps(components)
    for name, value in changes.items():
        assert json.dumps(value.strip())[1:-1] in shown, name           # shown, as data
    for kind, props in components:
        assert kind not in ("Script", "Iframe", "ObjectEl", "Embed"), kind
        assert not props.get("dangerously_allow_html"), kind
        for key in ("href", "src", "srcDoc"):
            if isinstance(props.get(key), str):
                assert re.match(r"^(https?://|/|mailto:|#)", props[key]), (kind, key, props[key])


def test_databank_rows_carry_payloads_only_as_json_data(bank, xss_dataset):
    from callbacks import databank as cb

    with as_user(bank, "dave", "/databank"):
        response, _count = cb.fetch_rows({"startRow": 0, "endRow": 100}, "XSS")
    row = response["rowData"][0]
    assert row["title"] == "XSS " + SCRIPT and row["protein"] == SCRIPT


def test_grid_scripts_never_write_html_from_data():
    """The grid's cell renderers (assets/*.js) build elements, never innerHTML from row values."""
    for path in (PROJECT_ROOT / "assets").glob("*.js"):
        source = path.read_text()
        assert not re.search(r"innerHTML\s*=|outerHTML\s*=|insertAdjacentHTML|dangerouslySetInnerHTML|document\.write",
                             source), path.name


def test_javascript_urls_are_refused_in_link_fields():
    from databank.metadata import MetadataError, clean_metadata

    for field in (f for f in METADATA_FIELDS if f.kind == "url"):
        with pytest.raises(MetadataError) as error:
            clean_metadata({"title": "t", "modality": "PALM", "software": "other",
                            field.name: "javascript:alert(document.cookie)"})
        assert field.name in error.value.errors


@pytest.mark.parametrize("path", ["/login", "/register"])
def test_server_rendered_forms_escape_what_they_echo(bank, path):
    client = client_as(bank, None)
    token = support.form_csrf(client.get(path).text)
    response = client.post(path, data={"username": SCRIPT, "password": "x", "password2": "y",
                                       "email": SCRIPT, "csrf_token": token, "next": '/"><script>alert(9)</script>'})
    assert response.status_code in (200, 429)
    assert "<script>alert" not in response.text and "&lt;script&gt;" in response.text


# --------------------------------------------------------------------------------------------
# CSV formula injection

@pytest.fixture(scope="module")
def formula_dataset(bank):
    """Carol's private dataset given formula-like metadata, then made public."""
    changes = {k: v for k, v in FORMULAS.items() if v is not None}
    with bank.server.app_context():
        carol = db.session.get(User, bank.users["carol"])
        datasets.update_metadata(carol, bank.datasets["carol_private"], changes)
        datasets.set_visibility(carol, bank.datasets["carol_private"], "public")
        db.session.remove()
    return bank.datasets["carol_private"]


def _assert_neutralised(csv_text: str):
    rows = list(csv.DictReader(io.StringIO(csv_text)))
    assert rows, csv_text
    formula_rows = [r for r in rows if r["title"].startswith("'=HYPERLINK")]
    assert len(formula_rows) == 1, csv_text
    for row in rows:
        for header, cell in row.items():
            assert not cell.startswith(FORMULA_START), (header, cell)
    row = formula_rows[0]
    assert row["protein"] == "'" + FORMULAS["protein"] and row["cell_type"] == "'-2+3"
    assert row["fluorophore"] == "'@SUM(A1:A9)" and row["tags"] == "'=1+1, tag"


def test_similarity_csv_from_the_api_neutralises_formulas(bank, formula_dataset):
    response = client_as(bank, "dave").get(f"/api/datasets/{bank.datasets['public']}/similar?format=csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    _assert_neutralised(response.get_data(as_text=True))


def test_similarity_csv_browser_download_neutralises_formulas(bank, formula_dataset):
    response = client_as(bank, "dave").get(f"/download/dataset/{bank.datasets['public']}/similar.csv")
    assert response.status_code == 200
    _assert_neutralised(response.get_data(as_text=True))


def test_similarity_csv_from_the_page_callback_neutralises_formulas(bank, formula_dataset):
    from callbacks import similarity as cb

    with as_user(bank, "dave", f"/dataset/{bank.datasets['public']}"):
        download, _message = cb.download_results(1, bank.datasets["public"], 30, None, None, None, None, "thinned")
    _assert_neutralised(download["content"])


def test_own_file_search_csv_neutralises_formulas(bank, formula_dataset):
    from callbacks import search_file as search_cb

    with as_user(bank, "dave", "/search"):
        rows = search.similar_datasets(None, bank.datasets["public"])
        download, _ = search_cb.download_query_results(1, rows, 30, "thinned")
    _assert_neutralised(download["content"])


def test_csv_cells_keep_numbers_and_plain_text():
    text = search.results_csv([{"dataset_id": 3, "title": "plain", "density": -1.5, "thinned_mean": 0.8}])
    row = next(csv.DictReader(io.StringIO(text)))
    assert row["title"] == "plain" and row["density_loc_per_um2"] == "-1.5" and row["thinned_lambda_mean"] == "0.8"


def test_viewer_result_files_keep_user_file_names_out_of_cells():
    """The viewer's CSV exports name the input file in '#' header lines: a name holding a comma
    must not open a cell that starts a formula."""
    from types import SimpleNamespace

    from databank.analysis_csv import header_lines

    data_file = SimpleNamespace(name='cell,=HYPERLINK("https://evil.example");@SUM(1).csv', sha256="0" * 64)
    region = SimpleNamespace(label="ROI 1", spec=SimpleNamespace(key="roi:1"), area_um2=12.5, n=100)
    text = header_lines(data_file, region, {"eps_nm": 50.0}, what="DBSCAN cluster table")
    for row in csv.reader(io.StringIO(text)):
        assert row and row[0].startswith("#")
        assert not any(cell.lstrip().startswith(FORMULA_START) for cell in row), row
    assert 'HYPERLINK("https://evil.example")' in text                 # the name is still recorded
